"""The OpenAI Responses API through the real server: the openai SDK and the OpenAI Agents SDK, fake Gemini upstream."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
import requests
from pydantic import BaseModel

from tests.support.gateway import TOKEN

FLASH = "gemini-2.5-flash"
GEMINI3 = "gemini-3-flash-preview"
WEATHER = {"type": "function", "name": "get_weather", "description": "weather for a city", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}}


def client(gw, prefix: str = "/v1") -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + prefix, api_key=TOKEN, max_retries=0, timeout=20)


def generate_calls(fake) -> list[dict]:
    return [r for r in fake.requests() if "generateContent" in r["path"] or "streamGenerateContent" in r["path"]]


def test_create_text(gateway, fake):
    resp = client(gateway).responses.create(model=FLASH, input="hello there", instructions="be brief",
                                            max_output_tokens=100, temperature=0.2, metadata={"k": "v"})
    assert resp.status == "completed" and resp.output_text == "echo: hello there"
    assert resp.id.startswith("resp_") and resp.model == FLASH and resp.metadata == {"k": "v"}
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens_details.reasoning_tokens == 0
    assert resp.usage.input_tokens_details.cached_tokens == 0
    body = generate_calls(fake)[-1]["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    assert body["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 100}


def test_hf_alias_and_openai_shaped_errors(gateway, fake):
    assert client(gateway, "/hf/v1").responses.create(model=FLASH, input="hi").output_text == "echo: hi"
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).responses.create(model=FLASH, input="x", tools=[{"type": "file_search",
                                                                          "vector_store_ids": ["vs_1"]}])
    assert caught.value.body["param"] == "tools[0].type"
    anonymous = requests.post(gateway.v1 + "/responses", json={"model": FLASH, "input": "x"}, timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"


def test_function_tool_round_trip(gateway, fake):
    api = client(gateway)
    first = api.responses.create(model=FLASH, input="weather in Paris?", tools=[WEATHER], store=False)
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "x"}
    second = api.responses.create(model=FLASH, tools=[WEATHER], store=False, input=[
        {"role": "user", "content": "weather in Paris?"}, *[i.model_dump(exclude_none=True) for i in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}])
    assert second.output_text == 'tool result: {"output":"sunny, 21C"}'
    sent = generate_calls(fake)[-1]["body"]["contents"]
    assert sent[1]["parts"][0]["functionCall"]["name"] == "get_weather"
    assert sent[2]["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_custom_and_shell_tools_answer_in_their_own_items(gateway, fake):
    def create(**body):
        resp = requests.post(gateway.v1 + "/responses", headers=gateway.headers(), timeout=20,
                             json={"model": FLASH, "store": False, **body})
        assert resp.status_code == 200, resp.text
        return resp.json()

    patch = {"type": "custom", "name": "apply_patch", "description": "apply a patch",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
    first = create(input="fix the bug", tools=[patch])
    call = first["output"][-1]
    assert call["type"] == "custom_tool_call" and call["name"] == "apply_patch" and call["input"] == "x"
    second = create(tools=[patch], input=["fix the bug", call,
                                          {"type": "custom_tool_call_output", "call_id": call["call_id"],
                                           "output": "applied"}])
    assert second["output"][-1]["content"][0]["text"] == 'tool result: {"output":"applied"}'
    shell = create(input="list files", tools=[{"type": "local_shell"}])["output"][-1]
    assert shell["type"] == "local_shell_call" and shell["action"]["type"] == "exec"
    assert isinstance(shell["action"]["command"], list)


class Capital(BaseModel):
    country: str
    capital: str
    population: int


def test_parse_structured_output(gateway, fake):
    parsed = client(gateway).responses.parse(model=FLASH, input="capital of France", text_format=Capital)
    assert isinstance(parsed.output_parsed, Capital)
    config = generate_calls(fake)[-1]["body"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert set(config["responseJsonSchema"]["properties"]) == {"country", "capital", "population"}


def test_stream(gateway, fake):
    with client(gateway).responses.stream(model=FLASH, input="stream this please",
                                          reasoning={"effort": "low", "summary": "auto"}) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == final.output_text == "echo: stream this please"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.usage.output_tokens_details.reasoning_tokens > 0


def test_previous_response_id_get_and_delete(gateway, fake):
    api = client(gateway)
    first = api.responses.create(model=FLASH, input="my name is Ada")
    second = api.responses.create(model=FLASH, input="what is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    contents = generate_calls(fake)[-1]["body"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"][0]["text"] == "echo: my name is Ada"
    assert api.responses.retrieve(second.id).output_text == second.output_text
    api.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        api.responses.retrieve(first.id)
    with pytest.raises(openai.BadRequestError) as caught:
        api.responses.create(model=FLASH, input="again", previous_response_id=first.id)
    assert caught.value.body["param"] == "previous_response_id"


def test_item_reference_resolves_stored_items(gateway, fake):
    api = client(gateway)
    first = api.responses.create(model=GEMINI3, input="weather in Rome?", tools=[WEATHER])
    reasoning, call = first.output
    second = api.responses.create(model=GEMINI3, tools=[WEATHER], input=[
        {"role": "user", "content": "weather in Rome?"}, {"type": "item_reference", "id": reasoning.id},
        {"type": "item_reference", "id": call.id},
        {"type": "function_call_output", "call_id": call.call_id, "output": "rainy"}])
    assert second.output_text.startswith("tool result:")
    replayed = generate_calls(fake)[-1]["body"]["contents"][1]["parts"][0]
    assert replayed["functionCall"]["name"] == "get_weather"
    assert replayed["thoughtSignature"].startswith("ZmFrZS10aG91Z2h0")
    with pytest.raises(openai.BadRequestError) as caught:
        api.responses.create(model=FLASH, input=[{"type": "item_reference", "id": "rs_unknown"}])
    assert caught.value.body["param"] == "input[0].id"
    with pytest.raises(openai.NotFoundError):
        api.responses.retrieve("item:" + call.id)


def test_store_false_keeps_nothing(gateway, fake):
    api = client(gateway)
    resp = api.responses.create(model=FLASH, input="forget me", store=False)
    assert resp.store is False and resp.output_text == "echo: forget me"
    with pytest.raises(openai.NotFoundError):
        api.responses.retrieve(resp.id)
    with pytest.raises(openai.BadRequestError):
        api.responses.create(model=FLASH, input="x", previous_response_id=resp.id)


def test_gemini3_tool_loop_carries_the_thought_signature(gateway, fake):
    """The fake refuses a Gemini 3 replay without the call's signature, as Gemini does."""
    api = client(gateway)
    first = api.responses.create(model=GEMINI3, input="weather in Rome?", tools=[WEATHER], store=False,
                                 include=["reasoning.encrypted_content"])
    kinds = [item.type for item in first.output]
    assert kinds == ["reasoning", "function_call"]
    call = first.output[1]
    second = api.responses.create(model=GEMINI3, tools=[WEATHER], store=False, input=[
        {"role": "user", "content": "weather in Rome?"}, *[i.model_dump(exclude_none=True) for i in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "rainy"}])
    assert second.status == "completed" and second.output_text.startswith("tool result:")
    replayed = generate_calls(fake)[-1]["body"]["contents"][1]["parts"][0]
    assert replayed["thoughtSignature"].startswith("ZmFrZS10aG91Z2h0")  # the fake's own, not the skip value


def test_compact_and_expand(gateway, fake):
    api = client(gateway)
    history = [{"role": "user", "content": "Hello!"},
               {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi."}]},
               {"role": "user", "content": "How are you?"}]
    compacted = api.responses.compact(model=FLASH, input=history)
    kinds = [item.type for item in compacted.output]
    assert kinds == ["message", "message", "compaction"]
    assert generate_calls(fake)[-1]["body"]["contents"][-1]["parts"][0]["text"].startswith("You are compacting")
    follow = api.responses.create(model=FLASH, input=[*[i.model_dump(exclude_none=True, warnings=False) for i in compacted.output],
                                                      {"role": "user", "content": "go on"}])
    assert follow.status == "completed"
    sent = generate_calls(fake)[-1]["body"]["contents"]
    assert any("compacted" in p.get("text", "") for c in sent for p in c["parts"])


def test_compaction_trigger_streams_exactly_one_compaction_item(gateway, fake):
    with client(gateway).responses.stream(model=FLASH, input=[{"role": "user", "content": "long session"},
                                                              {"type": "compaction_trigger"}]) as stream:
        events = list(stream)
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [item.type for item in done] == ["compaction"] and events[-1].type == "response.completed"


def test_legacy_completions(gateway, fake):
    api = client(gateway)
    resp = api.completions.create(model=FLASH, prompt="say hi", max_tokens=50)
    assert resp.choices[0].text == "echo: say hi" and resp.choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].text for c in api.completions.create(model=FLASH, prompt="stream hi", stream=True)
                   if c.choices)
    assert text == "echo: stream hi"


def test_midstream_failure_ends_with_response_failed(fake):
    from tests.support.gateway import start_gateway

    with start_gateway(fake.base_url, api_keys=["midstream-1"], max_retries=1) as gw:
        resp = requests.post(gw.v1 + "/responses", headers=gw.headers(), stream=True, timeout=20,
                             json={"model": FLASH, "input": "[[long]] go", "stream": True})
        assert resp.status_code == 200
        events = [json.loads(line[6:]) for line in resp.iter_lines(decode_unicode=True)
                  if line.startswith("data: ")]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-2:] == ["error", "response.failed"] and "response.completed" not in kinds
    assert events[-1]["response"]["status"] == "failed" and events[-1]["response"]["error"]["message"]


def test_pool_errors_keep_the_chat_rules(fake):
    from tests.support.gateway import start_gateway

    body = {"model": FLASH, "input": "hi"}
    with start_gateway(fake.base_url, api_keys=["rpm-r1", "rpm-r2"], max_wait=0) as gw:
        resp = requests.post(gw.v1 + "/responses", headers=gw.headers(), json=body, timeout=20)
        assert resp.status_code == 429 and int(resp.headers["retry-after"]) >= 1
        assert resp.json()["error"]["type"] == "rate_limit_error"
        streamed = requests.post(gw.v1 + "/responses", headers=gw.headers(), json={**body, "stream": True},
                                 timeout=20)
        assert streamed.status_code == 429 and streamed.headers["content-type"].startswith("application/json")
    with start_gateway(fake.base_url, api_keys=["invalid-r3"]) as gw:
        resp = requests.post(gw.v1 + "/responses", headers=gw.headers(), json=body, timeout=20)
        assert resp.status_code == 503 and "disabled" in resp.json()["error"]["message"]


# ---------------------------------------------------------------------------------------------- Agents SDK


def _agent(gw):
    from agents import Agent, OpenAIResponsesModel, function_tool

    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city or 'the city'}"

    api = openai.AsyncOpenAI(base_url=gw.v1, api_key=TOKEN, max_retries=0, timeout=20)
    agent = Agent(name="forecaster", instructions="Use the tool, then answer.", tools=[get_weather],
                  model=OpenAIResponsesModel(model=GEMINI3, openai_client=api))
    return agent, calls


def test_agents_sdk_runner_run(gateway, fake):
    from agents import Runner, set_tracing_disabled

    set_tracing_disabled(True)
    agent, calls = _agent(gateway)
    result = asyncio.run(Runner.run(agent, "weather in Oslo?"))
    assert len(calls) == 1
    assert result.final_output.startswith("tool result:") and "sunny" in result.final_output
    assert len(generate_calls(fake)) == 2


def test_agents_sdk_runner_run_streamed(gateway, fake):
    from agents import Runner, set_tracing_disabled

    set_tracing_disabled(True)
    agent, calls = _agent(gateway)

    async def go():
        result = Runner.run_streamed(agent, "weather in Lima?")
        kinds = [event.type async for event in result.stream_events()]
        return result, kinds

    result, kinds = asyncio.run(go())
    assert len(calls) == 1 and "raw_response_event" in kinds
    assert "sunny" in result.final_output
