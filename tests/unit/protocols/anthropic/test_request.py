"""Anthropic request bodies (recorded ones first) -> Gemini requests; refusals name the field."""

from __future__ import annotations

import pytest

from app.protocols.anthropic.content import tool_use_ids
from app.protocols.anthropic.errors import gemini_error_to_anthropic, request_error
from app.protocols.anthropic.models import resolve_model
from app.protocols.anthropic.request import count_tokens_body, parse_messages_request
from app.protocols.anthropic.response import message_from_gemini
from app.protocols.anthropic.signatures import SKIP_SIGNATURE, wrap
from app.protocols.openai_chat.errors import RequestError
from tests.unit.protocols.anthropic.support import request_body, response_body

ROUNDTRIP = "nonstream__thinking-tool_use-roundtrip__claude-sonnet-4__pydantic-ai.yaml"
PARALLEL = "nonstream__text-plus-4-parallel-tool_use__roundtrip__claude-haiku-4-5__pydantic-ai.yaml"


def test_recorded_thinking_tool_roundtrip_on_gemini3_gets_skip_for_a_foreign_signature():
    payload = {**request_body(ROUNDTRIP, 1), "model": "gemini-3-pro-preview"}
    req = parse_messages_request(payload)
    model_turn, result_turn = req.body["contents"][1], req.body["contents"][2]
    # The Anthropic signature is not Gemini's: the text is not signed with it, the call gets the skip value.
    assert model_turn["parts"][0] == {"text": payload["messages"][1]["content"][1]["text"]}
    assert model_turn["parts"][1]["thoughtSignature"] == SKIP_SIGNATURE
    assert model_turn["parts"][1]["functionCall"] == {"name": "get_user_country", "args": {},
                                                      "id": "toolu_01YGzqpRE16Vricda3Aqcejo"}
    assert result_turn["parts"] == [{"functionResponse": {"name": "get_user_country", "id":
                                     "toolu_01YGzqpRE16Vricda3Aqcejo", "response": {"content": "Mexico"}}}]
    assert req.body["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "low", "includeThoughts": True}
    assert req.body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert req.thinking and not req.stream


def test_own_signature_in_thinking_block_goes_back_on_the_next_part():
    payload = request_body(ROUNDTRIP, 1)
    payload["model"] = "gemini-3-flash-preview"
    payload["messages"][1]["content"][0]["signature"] = wrap("R2VtaW5p")
    parts = parse_messages_request(payload).body["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == "R2VtaW5p"          # the text right after the thinking block
    assert parts[1]["thoughtSignature"] == SKIP_SIGNATURE      # no signature of its own: Gemini 3 skip value
    payload["messages"][1]["content"].insert(2, {"type": "thinking", "thinking": "", "signature": wrap("Q2FsbA==")})
    parts = parse_messages_request(payload).body["contents"][1]["parts"]
    assert parts[1]["thoughtSignature"] == "Q2FsbA=="


def test_remembered_signature_by_tool_use_id():
    payload = {**request_body(ROUNDTRIP, 1), "model": "gemini-3-pro-preview"}
    payload["messages"][1]["content"] = payload["messages"][1]["content"][1:]  # thinking dropped by the client
    ids = tool_use_ids(payload)
    assert ids == ["toolu_01YGzqpRE16Vricda3Aqcejo"]
    parts = parse_messages_request(payload, signatures={ids[0]: "c2F2ZWQ="}).body["contents"][1]["parts"]
    assert parts[1]["thoughtSignature"] == "c2F2ZWQ="


def test_recorded_four_parallel_results_in_one_user_turn():
    payload = request_body(PARALLEL, 1)
    req = parse_messages_request({**payload, "model": "gemini-2.5-flash"})
    contents = req.body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert len([p for p in contents[1]["parts"] if "functionCall" in p]) == 4
    assert len(contents[2]["parts"]) == 4 and all("functionResponse" in p for p in contents[2]["parts"])
    assert req.body["systemInstruction"]["parts"][0]["text"] == payload["system"]


def test_content_blocks_and_system_role_entries():
    req = parse_messages_request({"model": "gemini-3-pro-preview", "max_tokens": 10, "messages": [
        {"role": "system", "content": "late system"},
        {"role": "user", "content": [
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
            {"type": "document", "title": "Notes", "source": {"type": "text", "media_type": "text/plain",
                                                              "data": "abc"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            {"type": "text", "text": "read", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_gw_1", "name": "look", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_gw_1", "is_error": True,
                                      "content": [{"type": "text", "text": "boom"},
                                                  {"type": "image", "source": {"type": "base64",
                                                   "media_type": "image/png", "data": "iVBO"}}]}]}],
        "system": [{"type": "text", "text": "first"}]},
        fetched={"https://example.com/a.png": ("image/png", "QUJD")})
    assert req.body["systemInstruction"] == {"parts": [{"text": "first"}, {"text": "late system"}]}
    user = req.body["contents"][0]["parts"]
    assert user == [{"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}, {"text": "Notes\n\nabc"},
                    {"inlineData": {"mimeType": "image/png", "data": "QUJD"}}, {"text": "read"}]
    call = req.body["contents"][1]["parts"][0]
    assert "id" not in call["functionCall"] and call["thoughtSignature"] == SKIP_SIGNATURE  # minted id
    response = req.body["contents"][2]["parts"][0]["functionResponse"]
    assert response["response"] == {"error": "boom"}
    assert response["parts"] == [{"inlineData": {"mimeType": "image/png", "data": "iVBO"}}]


def test_tools_choice_and_sampling():
    req = parse_messages_request({
        "model": "claude-3-5-haiku-latest", "max_tokens": 64, "temperature": 0.2, "top_p": 0.9, "top_k": 5,
        "stop_sequences": ["\n\nHuman:"], "thinking": {"type": "disabled"},
        "tools": [{"name": "f", "input_schema": {"$schema": "x", "type": "object", "properties": {"a": {}}},
                   "cache_control": {"type": "ephemeral"}, "strict": True},
                  {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        "tool_choice": {"type": "tool", "name": "f"}, "messages": [{"role": "user", "content": "x"}]})
    assert req.model == "gemini-flash-latest"
    assert req.body["tools"] == [{"functionDeclarations": [{"name": "f", "parametersJsonSchema": {
        "type": "object", "properties": {"a": {}}}}]}, {"googleSearch": {}}]
    assert req.body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}}
    assert req.body["generationConfig"] == {"maxOutputTokens": 64, "temperature": 0.2, "topP": 0.9, "topK": 5,
                                            "stopSequences": ["\n\nHuman:"],
                                            "thinkingConfig": {"thinkingLevel": "minimal"}}


@pytest.mark.parametrize(("thinking", "model", "config"), [
    ({"type": "enabled", "budget_tokens": 50000}, "gemini-2.5-flash",
     {"thinkingBudget": 24576, "includeThoughts": True}),
    ({"type": "adaptive"}, "gemini-2.5-pro", {"thinkingBudget": -1, "includeThoughts": True}),
    ({"type": "enabled", "budget_tokens": 20000, "display": "omitted"}, "gemini-3-pro-preview",
     {"thinkingLevel": "high", "includeThoughts": False}),
    ({"type": "disabled"}, "gemini-2.5-pro", {"thinkingBudget": 128}),
])
def test_thinking_config(thinking, model, config):
    req = parse_messages_request({"model": model, "max_tokens": 10, "thinking": thinking,
                                  "messages": [{"role": "user", "content": "x"}]})
    assert req.body["generationConfig"]["thinkingConfig"] == config


@pytest.mark.parametrize(("patch", "field"), [
    ({"max_tokens": None}, "max_tokens"), ({"temperature": 1.5}, "temperature"), ({"model": None}, "model"),
    ({"messages": []}, "messages"), ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools.0.type"),
    ({"tool_choice": {"type": "tool", "name": "nope"}}, "tool_choice.name"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x"}]}]},
     "messages.0.content.0.tool_use_id"),
    ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
])
def test_refusals_name_the_field(patch, field):
    payload = {"model": "gemini-2.5-flash", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    payload.update(patch)
    payload = {k: v for k, v in payload.items() if v is not None}
    with pytest.raises(RequestError) as exc:
        parse_messages_request(payload)
    status, body = request_error(exc.value)
    assert status == 400 and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["message"].startswith(field + ":")


def test_count_tokens_body_counts_system_and_tools():
    model, requested, body = count_tokens_body({"model": "claude-opus-4-1", "system": "s", "messages": [
        {"role": "user", "content": "x"}], "tools": [{"name": "f", "input_schema": {"type": "object"}}]})
    assert (model, requested) == ("gemini-pro-latest", "claude-opus-4-1")
    inner = body["generateContentRequest"]
    assert inner["model"] == "models/gemini-pro-latest" and inner["tools"] == [
        {"functionDeclarations": [{"name": "f"}]}] and "systemInstruction" in inner


def test_model_map_order_and_passthrough():
    assert resolve_model("claude-sonnet-4-5-20250929") == "gemini-pro-latest"
    assert resolve_model("claude-haiku-4-5-20251001") == "gemini-flash-latest"
    assert resolve_model("gemini-2.5-flash") == "gemini-2.5-flash"
    assert resolve_model("Claude-Opus-4", [("claude-*", "gemini-2.5-pro")]) == "gemini-2.5-pro"


def test_message_has_the_recorded_shape():
    recorded = response_body("nonstream__text__system-string__claude-3-opus__pydantic-ai.yaml")
    message, _ = message_from_gemini({"candidates": [{"content": {"parts": [{"text": "Paris."}]},
                                                      "finishReason": "STOP"}],
                                      "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 3}},
                                     model="claude-3-opus-20240229", thinking=False)
    assert set(recorded) - {"usage"} <= set(message)
    assert {"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"} <= set(
        message["usage"])
    assert message["content"] == [{"type": "text", "text": "Paris."}] and message["stop_reason"] == "end_turn"


@pytest.mark.parametrize(("status", "google_status", "expected"), [
    (503, "UNAVAILABLE", (529, "overloaded_error")), (429, "RESOURCE_EXHAUSTED", (429, "rate_limit_error")),
    (404, "NOT_FOUND", (404, "not_found_error")), (500, "INTERNAL", (500, "api_error")),
    (403, "PERMISSION_DENIED", (403, "permission_error")), (400, "INVALID_ARGUMENT", (400, "invalid_request_error")),
])
def test_gemini_errors_in_anthropic_shape(status, google_status, expected):
    out_status, body = gemini_error_to_anthropic(status, {"error": {"code": status, "message": "m",
                                                                    "status": google_status}})
    assert (out_status, body["error"]["type"]) == expected and body["type"] == "error"


def test_recorded_404_body_shape_matches():
    from tests.unit.protocols.anthropic.support import interactions
    recorded = interactions("404__not_found_error__count_tokens-unknown-model__pydantic-ai.yaml")[0]["response"]
    import json
    body = recorded.get("parsed_body") or json.loads(recorded["body"]["string"])
    _, ours = gemini_error_to_anthropic(404, {"error": {"code": 404, "message": "models/x is not found",
                                                        "status": "NOT_FOUND"}})
    assert set(ours) <= set(body) and set(ours["error"]) == set(body["error"])
