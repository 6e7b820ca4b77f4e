"""Gemini chunks -> Responses SSE events, compared with recorded OpenAI streams for event shapes."""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest

from app.protocols.openai_chat.errors import UpstreamStreamError
from app.protocols.openai_responses.carrier import TEXT_KEY, decode_signatures
from app.protocols.openai_responses.request import parse_responses_request
from app.protocols.openai_responses.response import envelope
from app.protocols.openai_responses.stream import ResponseStream, sse
from tests.unit.protocols.openai_responses.conftest import recorded_stream_events

IGNORED = {"obfuscation"}


def stream_for(**fields):
    req = parse_responses_request({"model": "gemini-3-flash-preview", "input": "hi", **fields})
    return ResponseStream(envelope("resp_x", "gemini-3-flash-preview", 1, req.echo), req.tools)


def chunk(parts, finish=None):
    candidate = {"content": {"role": "model", "parts": parts}}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}


def run(stream, chunks):
    events = stream.start()
    for c in chunks:
        events += stream.feed(c)
    return events + stream.finish()


def test_event_keys_match_recorded_streams():
    recorded = defaultdict(set)
    for event in recorded_stream_events():
        recorded[event["type"]] |= set(event) - IGNORED
    stream = stream_for(tools=[{"type": "function", "name": "f"}])
    events = run(stream, [chunk([{"text": "hmm", "thought": True}]), chunk([{"text": "Hello "}]),
                          chunk([{"text": "there"}]),
                          chunk([{"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "U0k="}],
                                "STOP")])
    seen = {e["type"] for e in events}
    assert seen >= {"response.created", "response.in_progress", "response.output_item.added",
                    "response.reasoning_summary_part.added", "response.reasoning_summary_text.delta",
                    "response.output_text.delta", "response.function_call_arguments.done",
                    "response.completed"}
    for event in events:
        if event["type"] in recorded:
            assert recorded[event["type"]] <= set(event), event["type"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_items_never_interleave_and_output_matches_done_items():
    stream = stream_for(tools=[{"type": "function", "name": "f"}])
    events = run(stream, [chunk([{"text": "think", "thought": True}]), chunk([{"text": "a"}]),
                          chunk([{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "U0k="}], "STOP")])
    opened = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    closed = [e["output_index"] for e in events if e["type"] == "response.output_item.done"]
    assert opened == closed == list(range(len(opened)))
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert [i["type"] for i in final["output"]] == ["reasoning", "message", "reasoning", "function_call"]
    call = final["output"][3]
    assert decode_signatures(final["output"][2]["encrypted_content"]) == {call["call_id"]: "U0k="}
    assert stream.signatures == {call["call_id"]: "U0k="}
    assert final["output"][1]["content"][0]["text"] == "a"
    assert final["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}


def test_trailing_text_signature_gets_a_carrier():
    events = run(stream_for(), [chunk([{"text": "hi"}]), chunk([{"text": "", "thoughtSignature": "VFg="}], "STOP")])
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["message", "reasoning"]
    assert decode_signatures(final["output"][1]["encrypted_content"]) == {TEXT_KEY: "VFg="}


def test_max_tokens_ends_incomplete():
    events = run(stream_for(), [chunk([{"text": "cut"}], "MAX_TOKENS")])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_no_finish_reason_fails_honestly():
    events = run(stream_for(), [chunk([{"text": "half"}])])
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1]["response"]["status"] == "failed"
    assert "finish reason" in events[-2]["message"]


def test_error_chunk_raises_and_fail_reports_it():
    stream = stream_for()
    stream.start()
    with pytest.raises(UpstreamStreamError):
        stream.feed({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})
    error, failed = stream.fail("rate_limit_exceeded", "quota")
    assert error["error"]["code"] == "rate_limit_exceeded" and error["code"] == "rate_limit_exceeded"
    assert failed["response"]["error"] == {"code": "rate_limit_exceeded", "message": "quota"}


def test_sse_framing():
    frame = sse({"type": "response.created", "sequence_number": 0})
    head, data, blank = frame.split(b"\n", 2)
    assert head == b"event: response.created" and orjson.loads(data[6:])["sequence_number"] == 0
    assert blank == b"\n"
