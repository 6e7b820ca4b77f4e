"""The fixture readers themselves: SSE splitting of recorded bodies (tests/fixtures/gemini)."""

from __future__ import annotations

from tests.unit.protocols.openai_chat.fixture_support import *  # noqa: F403 - the helpers under test

def test_sse_splitter_reads_crlf_framing_of_a_real_body() -> None:
    chunks = stream_chunks("native/stream-sse__text__gemini-2.0-flash__raw-body__pydantic-ai.sse")
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks] == [
        "The",
        " capital of France",
        " is Paris.\n",
    ]


def test_sse_splitter_handles_lf_multiline_and_comments() -> None:
    body = b': keep-alive\n\ndata: {"a":\ndata: 1}\n\nevent: x\ndata: [DONE]'
    assert list(iter_sse_data(body)) == [b'{"a":\n1}', b"[DONE]"]


def test_cassette_sse_body_matches_derived_raw_body() -> None:
    from_cassette = stream_chunks(
        "native/stream-sse__function-call-thoughtSignature-roundtrip__gemini-3-pro__pydantic-ai.yaml"
    )
    raw = stream_chunks(
        "native/stream-sse__function-call-thoughtSignature__gemini-3-pro__turn1__raw-body__pydantic-ai.sse"
    )
    assert from_cassette == raw
