"""Responses request -> Gemini GenerateContentRequest."""

from __future__ import annotations

import pytest

from app.protocols.openai_chat.errors import RequestError
from app.protocols.openai_chat.messages import SKIP_SIGNATURE
from app.protocols.openai_responses.carrier import encode_signatures
from app.protocols.openai_responses.request import parse_responses_request


def parse(**fields):
    return parse_responses_request({"model": "gemini-2.5-flash", "input": "hi", **fields})


def test_string_input_and_instructions():
    req = parse(instructions="be brief", max_output_tokens=50, temperature=0.3, top_p=0.9, user="u1",
                metadata={"a": "b"}, prompt_cache_key="k")
    assert req.body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert req.body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert req.body["generationConfig"] == {"temperature": 0.3, "topP": 0.9, "maxOutputTokens": 50}
    assert req.store is True and req.affinity == "k"
    assert req.echo["metadata"] == {"a": "b"} and req.echo["user"] == "u1"
    assert "metadata" not in req.body and "user" not in req.body


def test_items_roles_and_parts():
    req = parse(input=[
        {"role": "developer", "content": "rules"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,QUJD", "filename": "a.pdf"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "seen"}]},
    ])
    assert req.body["systemInstruction"] == {"parts": [{"text": "rules"}]}
    user, model = req.body["contents"]
    assert user["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}
    assert user["parts"][2] == {"inlineData": {"mimeType": "application/pdf", "data": "QUJD"}}
    assert model == {"role": "model", "parts": [{"text": "seen"}]}


def test_function_round_trip_restores_signature_from_reasoning_item():
    req = parse_responses_request({"model": "gemini-3-flash-preview", "input": [
        {"role": "user", "content": "weather?"},
        {"type": "reasoning", "id": "rs_1", "summary": [],
         "encrypted_content": encode_signatures({"call_gw_0123456789abcdef0123": "c2lnbmF0dXJl"})},
        {"type": "function_call", "call_id": "call_gw_0123456789abcdef0123", "name": "get_weather",
         "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_gw_0123456789abcdef0123", "output": "sunny"},
    ]})
    _, model, result = req.body["contents"]
    assert model["parts"] == [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                               "thoughtSignature": "c2lnbmF0dXJl"}]
    assert result["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]


def test_gemini3_call_without_any_signature_gets_the_skip_value_and_cache_wins_over_skip():
    items = [{"role": "user", "content": "x"},
             {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "c1", "output": "{\"ok\": true}"}]
    bare = parse_responses_request({"model": "gemini-3-pro-preview", "input": items})
    assert bare.body["contents"][1]["parts"][0]["thoughtSignature"] == SKIP_SIGNATURE
    assert bare.body["contents"][2]["parts"][0]["functionResponse"]["response"] == {"ok": True}
    cached = parse_responses_request({"model": "gemini-3-pro-preview", "input": items}, signatures={"c1": "QQ=="})
    assert cached.body["contents"][1]["parts"][0]["thoughtSignature"] == "QQ=="


def test_output_without_its_call_names_the_field():
    with pytest.raises(RequestError) as caught:
        parse(input=[{"type": "function_call_output", "call_id": "nope", "output": "x"}])
    assert caught.value.param == "input[0].call_id"


def test_tool_kinds_map_to_gemini():
    req = parse(tools=[
        {"type": "function", "name": "get_weather", "parameters": {"$schema": "x", "type": "object"}, "strict": True},
        {"type": "custom", "name": "apply_patch", "description": "patch",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
        {"type": "local_shell"}, {"type": "web_search"}, {"type": "code_interpreter", "container": {}},
    ], tool_choice={"type": "allowed_tools", "mode": "required",
                    "tools": [{"type": "function", "name": "get_weather"}]})
    declarations = req.body["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == ["get_weather", "apply_patch", "local_shell"]
    assert declarations[0]["parametersJsonSchema"] == {"type": "object"}
    assert declarations[1]["parametersJsonSchema"]["required"] == ["input"]
    assert "start: /.+/" in declarations[1]["description"]
    assert req.body["tools"][1:] == [{"googleSearch": {}}, {"codeExecution": {}}]
    assert req.body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY",
                                                                "allowedFunctionNames": ["get_weather"]}}
    assert req.tools.kinds == {"get_weather": "function", "apply_patch": "custom", "local_shell": "local_shell"}


def test_unmappable_tool_is_a_400_naming_it():
    with pytest.raises(RequestError) as caught:
        parse(tools=[{"type": "function", "name": "f"}, {"type": "file_search", "vector_store_ids": []}])
    assert caught.value.param == "tools[1].type" and "file_search" in caught.value.message


def test_structured_output_and_reasoning():
    req = parse(text={"format": {"type": "json_schema", "name": "out", "strict": True,
                                 "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
                reasoning={"effort": "high", "summary": "auto"})
    config = req.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"]["properties"] == {"a": {"type": "integer"}}
    assert config["thinkingConfig"] == {"thinkingBudget": 24576, "includeThoughts": True}
    assert req.summaries


@pytest.mark.parametrize(("fields", "param"), [
    ({"temperature": 3}, "temperature"),
    ({"reasoning": {"effort": "huge"}}, "reasoning.effort"),
    ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
    ({"input": [{"type": "compaction_trigger"}, {"role": "user", "content": "x"}]}, "input[0].type"),
    ({"input": [{"type": "compaction", "encrypted_content": "gAAAA-not-ours"}]}, "input[0].encrypted_content"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"input": 5}, "input"),
    ({"model": None}, "model"),
])
def test_bad_fields_are_named(fields, param):
    with pytest.raises(RequestError) as caught:
        parse(**fields)
    assert caught.value.param == param


def test_history_is_prepended_and_trigger_is_recorded():
    history = [{"type": "message", "role": "user", "content": "first"},
               {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "one"}]}]
    req = parse_responses_request({"model": "gemini-2.5-flash",
                                   "input": [{"role": "user", "content": "second"}, {"type": "compaction_trigger"}]},
                                  history=history)
    assert [c["role"] for c in req.body["contents"]] == ["user", "model", "user"]
    assert req.compaction_trigger
    assert len(req.input_items) == 2


def test_namespace_tools_are_flattened_and_come_back_with_their_namespace():
    from app.protocols.openai_responses.response import envelope, response_from_gemini

    req = parse(tools=[{"type": "namespace", "name": "crm", "description": "CRM tools",
                        "tools": [{"type": "function", "name": "find", "parameters": {"type": "object"}}]}],
                input=[{"role": "user", "content": "x"},
                       {"type": "function_call", "call_id": "c1", "namespace": "crm", "name": "find", "arguments": "{}"},
                       {"type": "function_call_output", "call_id": "c1", "output": "none"}])
    assert req.body["tools"][0]["functionDeclarations"][0]["name"] == "crm__find"
    assert req.body["contents"][1]["parts"][0]["functionCall"]["name"] == "crm__find"
    answer = {"candidates": [{"content": {"parts": [{"functionCall": {"name": "crm__find", "args": {}}}]},
                              "finishReason": "STOP"}]}
    response, _ = response_from_gemini(answer, base=envelope("resp_1", "m", 1, req.echo), tools=req.tools)
    call = response["output"][-1]
    assert (call["type"], call["name"], call["namespace"]) == ("function_call", "find", "crm")
