"""``strip_key``: the native query reduced to Gemini's own parameters, decoded then re-encoded."""

from __future__ import annotations

import pytest

from app.services.native import strip_key


@pytest.mark.parametrize("query", [b"key=a", b"%6Bey=a", b"k%65y=a", b"KEY=a", b"key[]=a", b"key%5B%5D=a",
                                   b"access_token=a", b"foo=bar", b"=a", b"&&", b"key"])
def test_everything_not_gemini_is_dropped(query: bytes) -> None:
    assert strip_key(query) == ""


def test_gemini_parameters_are_kept_and_re_encoded() -> None:
    assert strip_key(b"alt=sse&key=x&pageSize=5&pageToken=a%2Fb") == "alt=sse&pageSize=5&pageToken=a%2Fb"
    assert strip_key(b"%61lt=sse") == "alt=sse"                  # decoded name, canonical spelling
    assert strip_key(b"alt=sse;key=x") == ""                      # closed value sets: dropped whole
    assert strip_key(b"pageSize=5;key=x&prettyPrint=no") == ""
    assert strip_key(b"pageToken=t;key=x") == "pageToken=t%3Bkey%3Dx"  # free text cannot add a separator
    assert strip_key(b"pageToken=a+b") == "pageToken=a%20b"
    assert strip_key(b"") == ""
