"""Gemini answer -> Response object (non-stream), checked against a recorded OpenAI response's shape."""

from __future__ import annotations

from app.protocols.openai_responses.carrier import decode_signatures
from app.protocols.openai_responses.request import parse_responses_request
from app.protocols.openai_responses.response import envelope, response_from_gemini
from tests.unit.protocols.openai_responses.conftest import recorded_text_response

USAGE = {"promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 3, "totalTokenCount": 17,
         "cachedContentTokenCount": 6}


def answer(parts, finish="STOP", **extra):
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, **extra}],
            "usageMetadata": USAGE}


def build(resp, **fields):
    req = parse_responses_request({"model": "gemini-3-flash-preview", "input": "hi", **fields})
    return response_from_gemini(resp, base=envelope("resp_x", req.requested_model, 1, req.echo),
                                tools=req.tools)


def test_text_response_has_every_field_a_real_one_has():
    response, _ = build(answer([{"text": "Paris."}]))
    recorded = recorded_text_response()
    assert set(recorded) - set(response) <= {"billing"}
    assert set(recorded["output"][0]) <= set(response["output"][0])
    assert response["status"] == "completed" and response["output"][0]["content"][0]["text"] == "Paris."
    assert response["usage"] == {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 6},
                                 "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 3},
                                 "total_tokens": 17}


def test_usage_details_present_when_gemini_sends_no_usage():
    resp = answer([{"text": "x"}])
    del resp["usageMetadata"]
    response, _ = build(resp)
    assert response["usage"]["input_tokens_details"] == {"cached_tokens": 0}
    assert response["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}


def test_thoughts_and_signed_calls_become_reasoning_then_calls():
    response, signatures = build(answer([
        {"text": "pondering", "thought": True},
        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "U0lH"},
        {"functionCall": {"name": "apply_patch", "args": {"input": "*** Begin Patch"}}},
    ]), tools=[{"type": "function", "name": "get_weather"}, {"type": "custom", "name": "apply_patch"}])
    reasoning, call, custom = response["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "pondering"}]
    assert decode_signatures(reasoning["encrypted_content"]) == {call["call_id"]: "U0lH"}
    assert signatures == {call["call_id"]: "U0lH"}
    assert call["type"] == "function_call" and call["arguments"] == '{"city":"Oslo"}'
    assert call["id"].startswith("fc_") and call["call_id"] != custom["call_id"]
    assert custom["type"] == "custom_tool_call" and custom["input"] == "*** Begin Patch"


def test_max_tokens_is_incomplete_and_safety_is_content_filter():
    response, _ = build(answer([{"text": "cut"}], "MAX_TOKENS"))
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    blocked, _ = build(answer([], "SAFETY"))
    assert blocked["incomplete_details"] == {"reason": "content_filter"}
    assert blocked["output"][-1]["content"][0]["type"] == "refusal"
    malformed, _ = build(answer([], "MALFORMED_FUNCTION_CALL", finishMessage="bad call"))
    assert malformed["status"] == "failed" and "MALFORMED_FUNCTION_CALL" in malformed["error"]["message"]


def test_grounding_becomes_url_citations_with_character_offsets():
    text = "Café is open. Tea too."
    grounding = {"groundingChunks": [{"web": {"uri": "https://a.example", "title": "A"}}],
                 "groundingSupports": [{"segment": {"startIndex": 0, "endIndex": len("Café is open.".encode())},
                                        "groundingChunkIndices": [0]}]}
    response, _ = build(answer([{"text": text}], groundingMetadata=grounding))
    annotation = response["output"][0]["content"][0]["annotations"][0]
    assert annotation == {"type": "url_citation", "start_index": 0, "end_index": 13, "url": "https://a.example",
                          "title": "A"}
