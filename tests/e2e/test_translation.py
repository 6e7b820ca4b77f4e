"""OpenAI-compatibility end to end: what agent frameworks and chat UIs rely on, through the real server."""

from __future__ import annotations

import base64
import json

import openai
import pydantic
import pytest
import requests

from tests.support.gateway import TOKEN

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}}}]


def sdk(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TOKEN, max_retries=0, timeout=30)


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-3-pro-preview"])
def test_two_turn_tool_loop_non_stream(gateway, fake, model):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = sdk(gateway).chat.completions.create(model=model, messages=messages, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.id and call.type == "function" and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)
    # The client sends the turn back knowing nothing about thought signatures.
    messages += [{"role": "assistant", "content": None, "tool_calls": [
                     {"id": call.id, "type": "function",
                      "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
                 {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}]
    second = sdk(gateway).chat.completions.create(model=model, messages=messages, tools=TOOLS)
    assert second.choices[0].finish_reason == "stop"
    assert "tool result" in second.choices[0].message.content
    sent = fake.requests()[-1]["body"]
    model_turn, tool_turn = sent["contents"][1], sent["contents"][2]
    fc = model_turn["parts"][0]
    assert fc["functionCall"]["name"] == "get_weather"
    if model.startswith("gemini-3"):
        assert fc.get("thoughtSignature")            # restored, so Gemini 3 does not answer 400
    assert tool_turn["parts"][0]["functionResponse"] == {"name": "get_weather", "response": {"temp_c": 21},
                                                          **({"id": fc["functionCall"]["id"]}
                                                             if "id" in fc["functionCall"] else {})}
    decl = sent["tools"][0]["functionDeclarations"][0]
    assert "$schema" not in json.dumps(decl)


def test_two_turn_tool_loop_stream(gateway, fake):
    model = "gemini-3-pro-preview"
    messages = [{"role": "user", "content": "Weather in Rome?"}]
    calls: dict[int, dict] = {}
    finish = None
    for chunk in sdk(gateway).chat.completions.create(model=model, messages=messages, tools=TOOLS, stream=True):
        if not chunk.choices:
            continue
        for tc in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(tc.index, {"id": tc.id, "name": "", "arguments": ""})
            entry["name"] += tc.function.name or ""
            entry["arguments"] += tc.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"                    # the STOP came in a later chunk than the call
    assert list(calls) == [0] and calls[0]["id"] and calls[0]["name"] == "get_weather"
    messages += [{"role": "assistant", "tool_calls": [{"id": calls[0]["id"], "type": "function", "function": {
                     "name": "get_weather", "arguments": calls[0]["arguments"]}}]},
                 {"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny"}]
    text = "".join(c.choices[0].delta.content or "" for c in sdk(gateway).chat.completions.create(
        model=model, messages=messages, tools=TOOLS, stream=True) if c.choices)
    assert text.startswith("tool result")
    sent = fake.requests()[-1]["body"]
    assert sent["contents"][1]["parts"][0].get("thoughtSignature")
    assert sent["contents"][2]["parts"][0]["functionResponse"]["response"] == {"content": "sunny"}


def test_tool_choice_mapping(gateway, fake):
    c = sdk(gateway)
    c.chat.completions.create(model="gemini-2.5-flash", tools=TOOLS, tool_choice="required",
                              messages=[{"role": "user", "content": "x"}])
    assert fake.requests()[-1]["body"]["toolConfig"]["functionCallingConfig"]["mode"] == "ANY"
    c.chat.completions.create(model="gemini-2.5-flash", tools=TOOLS,
                              tool_choice={"type": "function", "function": {"name": "get_weather"}},
                              messages=[{"role": "user", "content": "x"}])
    cfg = fake.requests()[-1]["body"]["toolConfig"]["functionCallingConfig"]
    assert cfg == {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    resp = c.chat.completions.create(model="gemini-2.5-flash", tools=TOOLS, tool_choice="none",
                                     messages=[{"role": "user", "content": "x"}])
    assert resp.choices[0].finish_reason == "stop" and not resp.choices[0].message.tool_calls


class Person(pydantic.BaseModel):
    name: str
    age: int
    tags: list[str]


def test_beta_parse_with_pydantic(gateway, fake):
    parsed = sdk(gateway).beta.chat.completions.parse(
        model="gemini-2.5-flash", response_format=Person,
        messages=[{"role": "user", "content": "Invent a person"}])
    person = parsed.choices[0].message.parsed
    assert isinstance(person, Person)
    cfg = fake.requests()[-1]["body"]["generationConfig"]
    assert cfg["responseMimeType"] == "application/json"
    assert cfg["responseJsonSchema"]["properties"]["age"]["type"] == "integer"


def test_json_object_mode(gateway, fake):
    resp = sdk(gateway).chat.completions.create(model="gemini-2.5-flash", response_format={"type": "json_object"},
                                                messages=[{"role": "user", "content": "json please"}])
    assert fake.requests()[-1]["body"]["generationConfig"]["responseMimeType"] == "application/json"
    assert resp.choices[0].message.content is not None


def test_image_message_data_url(gateway, fake):
    # http(s) image URLs are fetched by app.net.SafeFetcher: tests/e2e/test_ssrf.py.
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfakeimage").decode()
    sdk(gateway).chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]}])
    parts = fake.requests()[-1]["body"]["contents"][0]["parts"]
    assert parts[0] == {"text": "what is in these?"}
    assert parts[1]["inlineData"] == {"mimeType": "image/png", "data": png}


def test_unreachable_image_url_is_a_400(gateway, fake):
    with pytest.raises(openai.BadRequestError) as info:
        sdk(gateway).chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/nothing.png"}}]}])
    assert "image_url" in str(info.value)


def test_reasoning_content(gateway, fake):
    resp = sdk(gateway).chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "user", "content": "think first"}],
        extra_body={"extra_body": {"google": {"thinking_config": {"include_thoughts": True,
                                                                  "thinking_budget": 1024}}}})
    msg = resp.choices[0].message
    assert msg.content == "echo: think first"
    assert getattr(msg, "reasoning_content", None)
    assert resp.usage.completion_tokens_details.reasoning_tokens > 0
    cfg = fake.requests()[-1]["body"]["generationConfig"]["thinkingConfig"]
    assert cfg == {"includeThoughts": True, "thinkingBudget": 1024}
    deltas = [c.choices[0].delta for c in sdk(gateway).chat.completions.create(
        model="gemini-2.5-flash", stream=True, messages=[{"role": "user", "content": "think first"}],
        extra_body={"google": {"thinking_config": {"include_thoughts": True}}}) if c.choices]
    assert any(getattr(d, "reasoning_content", None) for d in deltas)


def test_reasoning_effort(gateway, fake):
    sdk(gateway).chat.completions.create(model="gemini-2.5-flash", reasoning_effort="low",
                                         messages=[{"role": "user", "content": "x"}])
    assert fake.requests()[-1]["body"]["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 1024


def test_safety_block_and_prompt_block(gateway, fake):
    resp = sdk(gateway).chat.completions.create(model="gemini-2.5-flash",
                                                messages=[{"role": "user", "content": "[[safety]] x"}])
    assert resp.choices[0].finish_reason == "content_filter"
    blocked = sdk(gateway).chat.completions.create(model="gemini-2.5-flash",
                                                   messages=[{"role": "user", "content": "[[block]] x"}])
    assert blocked.choices[0].finish_reason == "content_filter"
    assert blocked.choices[0].message.content is None
    assert blocked.choices[0].message.refusal


def test_n_seed_penalties_and_dropped_fields(gateway, fake):
    resp = sdk(gateway).chat.completions.create(
        model="gemini-2.5-flash", n=2, seed=7, presence_penalty=0.5, frequency_penalty=0.25, user="u-1",
        store=False, parallel_tool_calls=False, metadata={"a": "b"}, messages=[{"role": "user", "content": "hi"}])
    assert [c.index for c in resp.choices] == [0, 1]
    body = fake.requests()[-1]["body"]
    cfg = body["generationConfig"]
    assert cfg["candidateCount"] == 2 and cfg["seed"] == 7
    assert cfg["presencePenalty"] == 0.5 and cfg["frequencyPenalty"] == 0.25
    assert not {"user", "store", "metadata", "parallel_tool_calls"} & set(body)


def test_search_model_and_system_developer_messages(gateway, fake):
    sdk(gateway).chat.completions.create(model="gemini-2.5-flash-search", messages=[
        {"role": "system", "content": "sys"}, {"role": "developer", "content": "dev"},
        {"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    sent = fake.requests()[-1]
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert {"googleSearch": {}} in sent["body"]["tools"]
    assert [p["text"] for p in sent["body"]["systemInstruction"]["parts"]] == ["sys", "dev"]
    assert len(sent["body"]["contents"]) == 1                       # consecutive user turns merged


def test_400_names_the_field(gateway, fake):
    r = requests.post(gateway.v1 + "/chat/completions", headers=gateway.headers(), timeout=10, json={
        "model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"},
                                                  {"role": "tool", "tool_call_id": "nope", "content": "y"}]})
    assert r.status_code == 400 and r.json()["error"]["param"].startswith("messages[1]")
    with pytest.raises(openai.BadRequestError) as info:
        sdk(gateway).chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "x"}],
                                             stop=["a", "b", "c", "d", "e", "f"])
    assert info.value.body["param"] == "stop"
    assert fake.requests() == []


def test_upstream_400_keeps_geminis_message(gateway, fake):
    leaked = "AIza" + "SyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"  # key-shaped, not real; split for leak scanners
    fake.enqueue({"status": 400, "body": {"error": {
        "code": 400, "status": "INVALID_ARGUMENT", "message": f"Invalid value at 'x' for key={leaked}"}}})
    with pytest.raises(openai.BadRequestError) as info:
        sdk(gateway).chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "x"}])
    assert "Invalid value at 'x'" in str(info.value)
    assert "AIzaSyDaGmWKa4" not in str(info.value)                 # keys scrubbed
