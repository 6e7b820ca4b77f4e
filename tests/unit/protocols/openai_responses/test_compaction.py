"""Compaction pieces, the opaque carriers, and legacy completions."""

from __future__ import annotations

from app.protocols.openai_legacy.completions import completion_from_gemini, parse_completion_request
from app.protocols.openai_responses.carrier import (decode_compaction, decode_signatures, encode_compaction,
                                                    encode_signatures)
from app.protocols.openai_responses.compaction import SUMMARY_INSTRUCTION, compacted_response, summary_body
from app.protocols.openai_responses.items import COMPACTED_PREFIX, translate_items


def test_carriers_round_trip_and_ignore_foreign_content():
    assert decode_signatures(encode_signatures({"call_1": "U0k="})) == {"call_1": "U0k="}
    assert decode_signatures("gAAAAABpPDIUph8czEXz") == {} and decode_signatures(None) == {}
    assert decode_compaction(encode_compaction("the summary")) == "the summary"
    assert decode_compaction(encode_signatures({"a": "b"})) is None


def test_summary_request_keeps_history_and_forbids_calls():
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "systemInstruction": {"parts": []},
            "tools": [{"functionDeclarations": [{"name": "f"}]}], "generationConfig": {"responseMimeType": "x"}}
    out = summary_body(body)
    assert out["contents"][0] == body["contents"][0] and out["contents"][-1]["parts"][0]["text"] == SUMMARY_INSTRUCTION
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}} and "generationConfig" not in out
    assert len(body["contents"]) == 1  # the caller's body is untouched


def test_compacted_response_keeps_user_messages_and_one_compaction_item_that_expands():
    items = [{"role": "user", "content": "Hello!"},
             {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]},
             {"type": "function_call_output", "call_id": "c", "output": "x"},
             {"role": "user", "content": [{"type": "input_text", "text": "How are you?"}]}]
    resp = compacted_response(items, "they greeted", created=1, usage={"input_tokens": 1})
    assert resp["object"] == "response.compaction"
    assert [i["type"] for i in resp["output"]] == ["message", "message", "compaction"]
    assert resp["output"][0]["content"] == [{"type": "input_text", "text": "Hello!"}]
    contents = translate_items(resp["output"]).contents
    assert contents[-1]["parts"][-1]["text"] == COMPACTED_PREFIX + "they greeted"


def test_legacy_completion_translation():
    req = parse_completion_request({"model": "gemini-2.5-flash", "prompt": ["say hi"], "max_tokens": 5,
                                    "echo": True, "logprobs": 2})
    assert req.body["contents"] == [{"role": "user", "parts": [{"text": "say hi"}]}]
    assert req.body["generationConfig"]["maxOutputTokens"] == 5
    out = completion_from_gemini({"candidates": [{"content": {"parts": [{"text": " hi"}]}, "finishReason": "MAX_TOKENS"}]},
                                 completion_id="cmpl-1", model="m", created=1, echo=req.echo_prompt)
    assert out["choices"][0] == {"text": "say hi hi", "index": 0, "logprobs": None, "finish_reason": "length"}
    assert out["usage"]["total_tokens"] == 0
