"""Resource names a Gemini body references, and how long created resources live."""

from __future__ import annotations

import orjson

from app.gemini.resources import FILE_TTL, file_name_of, lifetime, may_reference, references, references_in, valid_id

URI = "https://generativelanguage.googleapis.com/v1beta/files/"


def test_file_uri_to_name_ignores_other_uris() -> None:
    assert file_name_of(URI + "abc-123") == "files/abc-123"
    assert file_name_of("files/abc") == "files/abc"
    assert file_name_of("https://www.youtube.com/watch?v=x") is None
    assert file_name_of(URI + "../models") is None


def test_every_file_anywhere_and_the_cache_are_collected() -> None:
    body = {
        "cachedContent": "cachedContents/c1",
        "systemInstruction": {"parts": [{"file_data": {"file_uri": URI + "sys"}}]},
        "contents": [
            {"role": "user", "parts": [{"fileData": {"fileUri": URI + "a", "mimeType": "image/png"}},
                                       {"fileData": {"fileUri": URI + "b"}}, {"fileData": {"fileUri": URI + "a"}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "parts": [
                {"fileData": {"fileUri": URI + "tool"}}]}}]},
        ],
    }
    found = references(body)
    assert found[0] == "cachedContents/c1"
    assert sorted(found[1:]) == ["files/a", "files/b", "files/sys", "files/tool"]
    assert references_in(orjson.dumps(body)) == found


def test_plain_bodies_are_not_parsed() -> None:
    raw = b'{"contents":[{"parts":[{"text":"hello"}]}]}'
    assert not may_reference(raw)
    assert references_in(raw) == []
    assert references_in(b"files/ not json") == []


def test_lifetimes() -> None:
    now = 1_780_000_000.0
    assert lifetime("files/x", {}, now) == FILE_TTL
    cache = {"expireTime": "2026-05-28T14:47:16.701652823Z"}
    from app.gemini.resources import parse_time
    at = parse_time(cache["expireTime"])
    assert at is not None and abs(lifetime("cachedContents/x", cache, at - 120.0) - 120.0) < 1e-3
    assert lifetime("cachedContents/x", {"ttl": "300s"}, now) == 300.0
    assert valid_id("abc-1") and not valid_id("../x") and not valid_id("")
