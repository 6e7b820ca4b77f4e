"""The Anthropic Messages surface end to end: the real anthropic SDK -> the gateway -> the fake Gemini."""

from __future__ import annotations

import base64

import anthropic
import pytest
import requests

from tests.support.gateway import TOKEN, start_gateway

TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                           "$schema": "http://json-schema.org/draft-07/schema#"}}]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def sdk(gw, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=TOKEN, max_retries=0, timeout=30, **kwargs)


def test_create_text_system_image_and_stop_sequences(gateway, fake):
    message = sdk(gateway).messages.create(
        model="claude-haiku-4-5", max_tokens=200, system=[{"type": "text", "text": "Be brief.",
                                                           "cache_control": {"type": "ephemeral"}}],
        stop_sequences=["END"], extra_body={"temperature": 0.5, "top_k": 40},  # no longer typed by the SDK
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Describe this"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}])
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.model == "claude-haiku-4-5"
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("echo: Describe this")
    assert "[inlineData:image/png]" in message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    sent = fake.requests()[-1]
    assert sent["path"].endswith("models/gemini-flash-latest:generateContent")
    body = sent["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["generationConfig"] == {"maxOutputTokens": 200, "temperature": 0.5, "topK": 40,
                                        "stopSequences": ["END"]}


def test_beta_query_and_bearer_token(gateway, fake):
    """Claude Code's shape: ?beta=true, Authorization: Bearer, betas the gateway cannot apply."""
    resp = requests.post(gateway.url + "/v1/messages?beta=true", timeout=30, headers={
        "Authorization": f"Bearer {TOKEN}", "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"},
        json={"model": "gemini-2.5-flash", "max_tokens": 50, "metadata": {"user_id": "user_abc"},
              "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["content"][0]["text"] == "echo: hi"
    hf = requests.post(gateway.url + "/hf/v1/messages", timeout=30, headers={"x-api-key": TOKEN},
                       json={"model": "gemini-2.5-flash", "max_tokens": 50,
                             "messages": [{"role": "user", "content": "hf"}]})
    assert hf.status_code == 200 and hf.json()["content"][0]["text"] == "echo: hf"


def test_stream_with_thinking(gateway, fake):
    client = sdk(gateway)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=1000,
                                thinking={"type": "enabled", "budget_tokens": 2000},
                                messages=[{"role": "user", "content": "Why is the sky blue?"}]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "thinking" in kinds and "text" in kinds
    thinking, text = final.content[0], final.content[-1]
    assert thinking.type == "thinking" and thinking.thinking.startswith("thinking about: Why is the sky blue?")
    # Gemini signs a text answer on a trailing part, after the text streamed: optional, so not carried.
    assert thinking.signature == ""
    assert text.type == "text" and text.text == "echo: Why is the sky blue?"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    config = fake.requests()[-1]["body"]["generationConfig"]["thinkingConfig"]
    assert config == {"thinkingLevel": "low", "includeThoughts": True}


@pytest.mark.parametrize("thinking", [None, {"type": "enabled", "budget_tokens": 2048}])
def test_tool_loop_on_gemini3_returns_the_signature(gateway, fake, thinking):
    """The client echoes the assistant turn verbatim; Gemini 3 gets its thoughtSignature back (the fake answers
    400 without one). Without thinking the gateway remembers it by tool_use id; with it, the thinking block
    carries it."""
    client = sdk(gateway)
    extra = {"thinking": thinking} if thinking else {}
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.messages.create(model="gemini-3-pro-preview", max_tokens=500, tools=TOOLS, messages=messages,
                                   **extra)
    assert first.stop_reason == "tool_use"
    use = first.content[-1]
    assert use.type == "tool_use" and use.name == "get_weather" and isinstance(use.input, dict)
    assert ("thinking" in [b.type for b in first.content]) == bool(thinking)
    signed = fake.requests()[-1]
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                               "content": '{"temp_c": 21}'}]}]
    second = client.messages.create(model="gemini-3-pro-preview", max_tokens=500, tools=TOOLS,
                                    messages=messages, **extra)
    assert second.stop_reason == "end_turn"
    assert second.content[-1].text == 'tool result: {"temp_c":21}'
    sent = fake.requests()[-1]["body"]
    call_part = next(p for p in sent["contents"][1]["parts"] if "functionCall" in p)
    assert call_part["thoughtSignature"].startswith("ZmFrZS10aG91Z2h0")  # the fake's own, not the skip value
    assert signed["path"].endswith("gemini-3-pro-preview:generateContent")
    assert sent["contents"][2]["parts"][0]["functionResponse"]["name"] == "get_weather"
    assert "$schema" not in str(sent["tools"])


def test_streamed_tool_use_round_trip(gateway, fake):
    client = sdk(gateway)
    messages = [{"role": "user", "content": "Weather in Rome?"}]
    with client.messages.stream(model="gemini-3-flash-preview", max_tokens=300, tools=TOOLS,
                                messages=messages) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    use = first.content[-1]
    assert use.type == "tool_use" and use.input == {"city": use.input["city"]}
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}]
    with client.messages.stream(model="gemini-3-flash-preview", max_tokens=300, tools=TOOLS,
                                messages=messages) as stream:
        text = "".join(stream.text_stream)
    assert text == 'tool result: {"content":"sunny"}'


def test_count_tokens(gateway, fake):
    count = sdk(gateway).messages.count_tokens(model="claude-sonnet-4-5", system="one two",
                                               messages=[{"role": "user", "content": "three four five"}])
    assert count.input_tokens == 5
    sent = fake.requests()[-1]
    assert sent["path"].endswith("models/gemini-pro-latest:countTokens")


def test_errors_in_anthropic_shape(gateway, fake):
    bad = anthropic.Anthropic(base_url=gateway.url, api_key="wrong", max_retries=0, timeout=30)
    with pytest.raises(anthropic.AuthenticationError) as denied:
        bad.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert denied.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.BadRequestError) as invalid:
        sdk(gateway).messages.create(model="claude-haiku-4-5", max_tokens=0,
                                     messages=[{"role": "user", "content": "x"}])
    assert invalid.value.body["error"]["type"] == "invalid_request_error"
    assert invalid.value.body["error"]["message"].startswith("max_tokens:")
    with pytest.raises(anthropic.BadRequestError) as server_tool:
        sdk(gateway).messages.create(model="claude-haiku-4-5", max_tokens=10,
                                     tools=[{"type": "bash_20250124", "name": "bash"}],
                                     messages=[{"role": "user", "content": "x"}])
    assert "bash_20250124" in server_tool.value.body["error"]["message"]
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk(gateway).messages.count_tokens(model="gemini-does-not-exist", messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["error"]["type"] == "not_found_error"


def test_pool_rate_limited_is_429_with_retry_after(fake):
    with start_gateway(fake.base_url, api_keys=["rpm-x1", "rpm-x2"], max_wait=0) as gw:
        with pytest.raises(anthropic.RateLimitError) as limited:
            sdk(gw).messages.create(model="claude-haiku-4-5", max_tokens=10,
                                    messages=[{"role": "user", "content": "x"}])
    assert limited.value.status_code == 429
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    assert int(limited.value.response.headers["retry-after"]) >= 1


def test_midstream_failure_is_an_error_event(fake):
    with start_gateway(fake.base_url, api_keys=["midstream-m1"]) as gw:
        resp = requests.post(gw.url + "/v1/messages", timeout=30, headers={"x-api-key": TOKEN}, json={
            "model": "gemini-2.5-flash", "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "tell me a long story please"}]})
    body = resp.text
    assert resp.status_code == 200
    assert "event: message_start" in body and "event: error" in body
    assert "message_stop" not in body
    assert '"overloaded_error"' in body
