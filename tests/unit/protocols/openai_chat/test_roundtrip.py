"""Tool-call round trips against recorded traffic: the signature Gemini 3 gave on turn 1 goes back on turn 2.

The OpenAI client in these tests behaves like the common case: it keeps only ``id``/``name``/``arguments`` of
each tool call (no ``extra_content``), so the signature must come from what the gateway remembered.
"""

from __future__ import annotations

import json
from typing import Any

from app.protocols.openai_chat.chat import parse_chat_request, tool_call_ids
from app.protocols.openai_chat.response import StreamTranslator, completion_from_gemini
from tests.unit.protocols.openai_chat.fixture_support import request_body, response_json, stream_chunks


def stream_turn(chunks: list[dict]) -> tuple[dict, dict[str, str]]:
    """The assistant message an OpenAI client rebuilds from the stream, and what the gateway remembers."""
    translator = StreamTranslator(model="m", created=1, include_usage=False, completion_id="chatcmpl-x")
    calls: list[dict] = []
    for chunk in chunks:
        for piece in translator.feed(chunk):
            for tc in piece["choices"][0]["delta"].get("tool_calls", []):
                calls.append({"id": tc["id"], "type": "function", "function": tc["function"]})
    translator.finish()
    return {"role": "assistant", "content": None, "tool_calls": calls}, translator.signatures


def remembered(payload: dict, store: dict[str, str]) -> dict[str, str]:
    """What the service does: look up the remembered signature of every tool call id in the request."""
    return {i: store[i] for i in tool_call_ids(payload) if i in store}


def gemini_part(part: dict[str, Any]) -> dict[str, Any]:
    """A recorded request part with snake_case keys normalised and the client's own ids dropped."""
    part = {
        ("functionCall" if k == "function_call" else "functionResponse" if k == "function_response" else k): v
        for k, v in part.items()
    }
    for key in ("functionCall", "functionResponse"):
        if key in part:
            part[key] = {k: v for k, v in part[key].items() if k != "id"}
    return part


def test_pydantic_ai_gemini3_stream_round_trip() -> None:
    cassette = "native/stream-sse__function-call-thoughtSignature-roundtrip__gemini-3-pro__pydantic-ai.yaml"
    first = request_body(cassette, 0)
    assistant, store = stream_turn(stream_chunks(cassette, 0))
    (call,) = assistant["tool_calls"]
    payload = {
        "model": "gemini-3-pro-preview",
        "messages": [
            {"role": "user", "content": first["contents"][0]["parts"][0]["text"]},
            assistant,
            {"role": "tool", "tool_call_id": call["id"], "content": json.dumps({"return_value": "Mexico"})},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_country",
                    "description": "",
                    "parameters": first["tools"][0]["functionDeclarations"][0]["parameters_json_schema"],
                },
            }
        ],
    }
    req = parse_chat_request(payload, signatures=remembered(payload, store))
    recorded = request_body(cassette, 1)
    ours = req.body["contents"]
    assert [c["role"] for c in ours] == [c["role"] for c in recorded["contents"]]
    model_part = ours[1]["parts"][0]
    recorded_part = recorded["contents"][1]["parts"][0]
    assert gemini_part(model_part)["functionCall"] == gemini_part(recorded_part)["functionCall"]
    # pydantic-ai sent the signature back URL-safe; the gateway sends it back exactly as Gemini gave it
    original = stream_chunks(cassette, 0)[0]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert model_part["thoughtSignature"] == original
    assert original.replace("+", "-").replace("/", "_") == recorded_part["thoughtSignature"]
    assert "id" not in model_part["functionCall"]  # minted id stays home
    assert [gemini_part(p) for p in ours[2]["parts"]] == [
        gemini_part(p) for p in recorded["contents"][2]["parts"]
    ]
    assert (
        req.body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]
        == recorded["tools"][0]["functionDeclarations"][0]["parameters_json_schema"]
    )


def test_llm_gemini_json_array_round_trip_matches_recorded_request() -> None:
    cassette = "native/stream-json-array__function-call-roundtrip__gemini-3-flash__llm-gemini.yaml"
    assistant, store = stream_turn(
        stream_chunks(
            "native/stream-json-array__function-call-roundtrip__gemini-3-flash__turn1__decoded-body__llm-gemini.txt"
        )
    )
    call_id = assistant["tool_calls"][0]["id"]
    payload = {
        "model": "gemini-3-flash-preview",
        "messages": [
            {"role": "user", "content": "What is 5 times 3?"},
            assistant,
            {"role": "tool", "tool_call_id": call_id, "content": '{"output": "15"}'},
        ],
    }
    ours = parse_chat_request(payload, signatures=remembered(payload, store)).body["contents"]
    recorded = request_body(cassette, 1)["contents"]
    recorded_model = [
        gemini_part(p) for p in recorded[1]["parts"] if p.get("text") != ""
    ]  # llm sends a blank text
    assert [gemini_part(p) for p in ours[1]["parts"]] == recorded_model
    assert [gemini_part(p) for p in ours[2]["parts"]] == [gemini_part(p) for p in recorded[2]["parts"]]
    assert ours[0] == recorded[0]


def test_non_stream_round_trip_with_client_echoing_extra_content() -> None:
    resp = response_json("native/generate__function-call__gemini-3-pro__vercel-ai.json")
    completion, store = completion_from_gemini(resp, model="gemini-3-pro-preview", created=1)
    message = completion["choices"][0]["message"]
    (call,) = message["tool_calls"]
    # a client that echoes the whole message back needs no memory on the gateway side
    echoed = {
        "model": "gemini-3-pro-preview",
        "messages": [
            {"role": "user", "content": "weather in SF?"},
            message,
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
        ],
    }
    part = parse_chat_request(echoed).body["contents"][1]["parts"][0]
    assert part["thoughtSignature"] == store[call["id"]]
    assert part["functionCall"] == {"name": "weather", "args": {"location": "San Francisco"}}


def test_lost_signature_falls_back_to_the_skip_literal() -> None:
    resp = response_json("native/generate__function-call__gemini-3-pro__vercel-ai.json")
    completion, _ = completion_from_gemini(resp, model="gemini-3-pro-preview", created=1)
    call = completion["choices"][0]["message"]["tool_calls"][0]
    stripped = {"id": call["id"], "type": "function", "function": call["function"]}
    payload = {
        "model": "gemini-3-pro-preview",
        "messages": [
            {"role": "user", "content": "weather in SF?"},
            {"role": "assistant", "tool_calls": [stripped]},
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
        ],
    }
    part = parse_chat_request(payload, signatures={}).body["contents"][1]["parts"][0]
    assert part["thoughtSignature"] == "skip_thought_signature_validator"


def test_googles_compat_layer_message_shape_is_accepted() -> None:
    cassette = (
        "openai_compat/"
        "chat-completions__tool-call-empty-id-extra_content-thought_signature__gemini-2.5-pro__pydantic-ai.yaml"
    )
    compat = response_json(cassette, 0)
    message = compat["choices"][0]["message"]  # id '' and the signature on the *message* (2025 shape)
    request = request_body(cassette, 0)
    payload = {
        **request,
        "messages": [*request["messages"], message, {"role": "tool", "tool_call_id": "", "content": "Noon"}],
    }
    req = parse_chat_request(payload)
    assert req.model == "gemini-2.5-pro-preview-05-06"
    contents = req.body["contents"]
    assert contents[1]["parts"] == [
        {
            "functionCall": {"name": "get_current_time", "args": {}},
            "thoughtSignature": message["extra_content"]["google"]["thought_signature"],
        }
    ]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_current_time", "response": {"content": "Noon"}}}
    ]
    assert req.body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert req.body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"] == {
        "additionalProperties": False,
        "properties": {},
        "type": "object",
    }


def test_pydantic_ai_multi_turn_gemini20_history_translates() -> None:
    cassette = "native/stream-sse__function-calls-multi-turn__gemini-2.0-flash__pydantic-ai.yaml"
    recorded = request_body(cassette, 2)
    messages: list[dict] = [
        {"role": "system", "content": "You are a helpful chatbot."},
        {"role": "user", "content": "What is the temperature of the capital of France?"},
    ]
    for n, result in ((0, "Paris"), (1, "30°C")):
        assistant, _ = stream_turn(stream_chunks(cassette, n))
        messages.append(assistant)
        messages.append(
            {
                "role": "tool",
                "tool_call_id": assistant["tool_calls"][0]["id"],
                "content": json.dumps({"return_value": result}, ensure_ascii=False),
            }
        )
    body = parse_chat_request({"model": "gemini-2.0-flash", "messages": messages}).body
    assert body["systemInstruction"]["parts"] == recorded["systemInstruction"]["parts"]
    assert [[gemini_part(p) for p in c["parts"]] for c in body["contents"]] == [
        [gemini_part(p) for p in c["parts"]] for c in recorded["contents"]
    ]
