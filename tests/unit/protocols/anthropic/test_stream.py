"""Gemini chunks -> Anthropic events: the recorded Anthropic grammar, signatures, stop reasons, failures."""

from __future__ import annotations

import orjson
import pytest

from app.protocols.anthropic.sse import sse_event
from app.protocols.anthropic.stream import MessageStream
from app.protocols.openai_chat.errors import UpstreamStreamError
from tests.unit.protocols.anthropic.support import recorded_events, sse_events, shape
from tests.unit.protocols.openai_chat.fixture_support import stream_chunks

THINKING_SSE = "stream__thinking-signature-then-text__claude-sonnet-4__raw-body__pydantic-ai.sse"
TOOLS_SSE = "stream__text-then-2-parallel-tool_use__claude-3-5-haiku__turn1__raw-body__llm-anthropic.sse"


def run(chunks, *, thinking: bool) -> list:
    stream = MessageStream(model="claude-x", thinking=thinking)
    events = [e for chunk in chunks for e in stream.feed(chunk)]
    return events + stream.finish()


def test_thinking_then_text_has_the_recorded_grammar():
    chunks = [
        {"candidates": [{"content": {"parts": [{"text": "Let me", "thought": True}]}}],
         "usageMetadata": {"promptTokenCount": 9}},
        {"candidates": [{"content": {"parts": [{"text": " think.", "thought": True}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "Hello", "thoughtSignature": "c2ln"}]}}]},
        {"candidates": [{"content": {"parts": [{"text": " there"}]}, "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 2, "thoughtsTokenCount": 3}},
    ]
    ours = run(chunks, thinking=True)
    assert shape(ours) == shape(recorded_events(THINKING_SSE))
    signature = [d for n, d in ours if n == "content_block_delta" and d["delta"]["type"] == "signature_delta"]
    assert signature[0]["delta"]["signature"] == "gemini-sig:c2ln"
    assert ours[-2][1]["usage"]["output_tokens"] == 5 and ours[-2][1]["delta"]["stop_reason"] == "end_turn"


def test_text_then_parallel_tool_use_matches_recorded_grammar():
    chunks = [
        {"candidates": [{"content": {"parts": [{"text": "I'll help"}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "a", "args": {}}},
                                               {"functionCall": {"name": "b", "args": {"x": 1}}}]}}]},
        {"candidates": [{"content": {"parts": [{"text": ""}]}, "finishReason": "STOP"}]},
    ]
    ours = run(chunks, thinking=False)
    assert shape(ours) == shape(recorded_events(TOOLS_SSE))
    starts = [d["content_block"] for n, d in ours if n == "content_block_start"]
    assert [b["type"] for b in starts] == ["text", "tool_use", "tool_use"]
    assert len({b["id"] for b in starts[1:]}) == 2 and all(b["id"].startswith("toolu_") for b in starts[1:])
    indexes = [d["index"] for n, d in ours if n == "content_block_start"]
    assert indexes == [0, 1, 2]
    assert ours[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_recorded_gemini3_signed_call_is_remembered_and_rides_in_a_thinking_block():
    chunks = stream_chunks("native/stream-sse__function-call-thoughtSignature__gemini-3-pro__turn1__raw-body__pydantic-ai.sse")
    signed = next(p for c in chunks for p in c["candidates"][0]["content"]["parts"] if "thoughtSignature" in p)
    stream = MessageStream(model="claude-x", thinking=True)
    events = [e for chunk in chunks for e in stream.feed(chunk)] + stream.finish()
    uses = [d["content_block"] for n, d in events if n == "content_block_start"
            and d["content_block"]["type"] == "tool_use"]
    assert stream.signatures == {uses[0]["id"]: signed["thoughtSignature"]}
    kinds = shape(events)
    assert kinds.index("delta:signature_delta") < kinds.index("start:tool_use")
    # Without thinking no thinking block appears, but the signature is still remembered by id.
    quiet = MessageStream(model="claude-x", thinking=False)
    quiet_events = [e for chunk in chunks for e in quiet.feed(chunk)] + quiet.finish()
    assert "start:thinking" not in shape(quiet_events) and list(quiet.signatures.values()) == [
        signed["thoughtSignature"]]


@pytest.mark.parametrize(("reason", "expected"), [("MAX_TOKENS", "max_tokens"), ("SAFETY", "refusal"),
                                                  ("STOP", "end_turn"), ("RECITATION", "refusal")])
def test_stop_reasons(reason, expected):
    events = run([{"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}], thinking=False)
    assert events[-2][1]["delta"]["stop_reason"] == expected


def test_blocked_prompt_is_a_refusal():
    events = run([{"promptFeedback": {"blockReason": "SAFETY"}}], thinking=False)
    assert [n for n, _ in events] == ["message_start", "ping", "message_delta", "message_stop"]
    assert events[-2][1]["delta"]["stop_reason"] == "refusal"


def test_error_chunk_and_missing_finish_raise():
    stream = MessageStream(model="m", thinking=False)
    stream.feed({"candidates": [{"content": {"parts": [{"text": "a"}]}}]})
    with pytest.raises(UpstreamStreamError) as exc:
        stream.feed({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
    assert exc.value.status == 503
    with pytest.raises(UpstreamStreamError):
        stream.finish()


def test_usage_separates_cached_input():
    events = run([{"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}],
                   "usageMetadata": {"promptTokenCount": 1500, "cachedContentTokenCount": 1111,
                                     "candidatesTokenCount": 7, "thoughtsTokenCount": 3}}], thinking=False)
    start_usage = events[0][1]["message"]["usage"]
    assert start_usage["input_tokens"] == 389 and start_usage["cache_read_input_tokens"] == 1111
    assert events[-2][1]["usage"] == {"input_tokens": 389, "cache_creation_input_tokens": 0,
                                      "cache_read_input_tokens": 1111, "output_tokens": 10}


def test_sse_framing_has_event_lines_and_parses_back():
    events = run([{"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}],
                 thinking=False)
    raw = b"".join(sse_event(n, d) for n, d in events)
    assert sse_events(raw) == [(n, orjson.loads(orjson.dumps(d))) for n, d in events]
    assert raw.startswith(b"event: message_start\ndata: ")
