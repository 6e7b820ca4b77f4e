"""The OpenAI surface through the real server, driven by the openai SDK."""

from __future__ import annotations

import base64
import struct

import openai
import pytest
import requests

from tests.support.gateway import TOKEN, start_gateway


def client(gw, prefix: str = "/v1", token: str = TOKEN) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + prefix, api_key=token, max_retries=0, timeout=20)


def test_models_list_and_get(gateway, fake):
    models = client(gateway).models.list()
    ids = [m.id for m in models.data]
    assert "gemini-2.5-flash" in ids
    assert not any(i.startswith("models/") for i in ids)
    assert "gemini-2.5-flash-search" in ids  # MODEL_SEARCH default
    got = client(gateway).models.retrieve("gemini-2.5-flash")
    assert got.id == "gemini-2.5-flash"
    with pytest.raises(openai.NotFoundError):
        client(gateway).models.retrieve("no-such-model")


def test_models_are_cached(gateway, fake):
    client(gateway).models.list()
    client(gateway).models.list()
    listing_calls = [r for r in fake.requests() if r["path"].endswith("/models")]
    assert len(listing_calls) <= 1


def test_chat_non_stream(gateway, fake):
    resp = client(gateway).chat.completions.create(
        model="gemini-2.5-flash", temperature=0.3, top_p=0.9, max_tokens=200, stop=["END"],
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}])
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "echo: hello there"
    assert choice.finish_reason == "stop"
    assert resp.usage.total_tokens > 0 and resp.usage.prompt_tokens > 0
    assert resp.model == "gemini-2.5-flash"
    sent = fake.requests()[-1]
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent["api_key"] in {"ok-alpha-7f3a9c", "ok-beta-2b8d1e"}
    assert "key" not in sent["query"]
    body = sent["body"]
    assert body["systemInstruction"]["parts"][0]["text"] == "be brief"
    cfg = body["generationConfig"]
    assert cfg["temperature"] == 0.3 and cfg["topP"] == 0.9 and cfg["maxOutputTokens"] == 200
    assert cfg["stopSequences"] == ["END"]


def test_max_completion_tokens_and_length(gateway, fake):
    resp = client(gateway).chat.completions.create(
        model="gemini-2.5-flash", max_completion_tokens=2,
        messages=[{"role": "user", "content": "tell me a rather long story please"}])
    assert fake.requests()[-1]["body"]["generationConfig"]["maxOutputTokens"] == 2
    assert resp.choices[0].finish_reason == "length"


def test_chat_stream_with_usage(gateway, fake):
    stream = client(gateway).chat.completions.create(
        model="gemini-2.5-flash", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "count the words in this sentence"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: count the words in this sentence"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert fake.requests()[-1]["query"].get("alt") == "sse"


def test_stream_raw_sse_ends_with_done(gateway, fake):
    resp = requests.post(gateway.v1 + "/chat/completions", headers=gateway.headers(), stream=True, timeout=20,
                         json={"model": "gemini-2.5-flash", "stream": True,
                               "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/event-stream")
    raw = resp.content.decode()
    events = [e for e in raw.split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)


def _decode_b64(vec: str) -> list[float]:
    raw = base64.b64decode(vec)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def test_embeddings_float_base64_and_dimensions(gateway, fake):
    c = client(gateway)
    floats = c.embeddings.create(model="gemini-embedding-001", input=["a cat", "a dog"],
                                 encoding_format="float", dimensions=8)
    assert [d.index for d in floats.data] == [0, 1]
    assert all(len(d.embedding) == 8 for d in floats.data)
    sent = fake.requests()[-1]
    assert sent["path"] == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent["body"]["requests"][0]["outputDimensionality"] == 8
    # The SDK's default is base64; it decodes back to the same floats.
    default = c.embeddings.create(model="gemini-embedding-001", input=["a cat", "a dog"], dimensions=8)
    assert [round(x, 5) for x in default.data[0].embedding] == [round(x, 5) for x in floats.data[0].embedding]
    raw = requests.post(gateway.v1 + "/embeddings", headers=gateway.headers(), timeout=20,
                        json={"model": "gemini-embedding-001", "input": "a cat", "encoding_format": "base64",
                              "dimensions": 8}).json()
    assert isinstance(raw["data"][0]["embedding"], str)
    assert [round(x, 5) for x in _decode_b64(raw["data"][0]["embedding"])] == \
        [round(x, 5) for x in floats.data[0].embedding]


def test_hf_prefix(gateway, fake):
    c = client(gateway, "/hf/v1")
    assert c.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "x"}]
                                     ).choices[0].message.content == "echo: x"
    assert any(m.id == "gemini-2.5-flash" for m in c.models.list().data)


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_auth_401_in_openai_shape(gateway, fake, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for path in ("/v1/models", "/hf/v1/chat/completions"):
        method = requests.get if path.endswith("models") else requests.post
        resp = method(gateway.url + path, headers=headers, json={}, timeout=10)
        assert resp.status_code == 401
        err = resp.json()["error"]
        assert err["type"] == "invalid_request_error" and err["message"]
        assert "sk-test-token" not in resp.text
    with pytest.raises(openai.AuthenticationError):
        client(gateway, token=token or "x").chat.completions.create(
            model="gemini-2.5-flash", messages=[{"role": "user", "content": "x"}])
    assert fake.requests() == []


def test_bad_request_names_field_before_upstream(gateway, fake):
    resp = requests.post(gateway.v1 + "/chat/completions", headers=gateway.headers(), timeout=10,
                         json={"model": "gemini-2.5-flash", "messages": []})
    assert resp.status_code == 400
    assert resp.json()["error"]["param"] == "messages"
    resp = requests.post(gateway.v1 + "/chat/completions", headers=gateway.headers(), timeout=10,
                         data=b"{not json")
    assert resp.status_code == 400 and "JSON" in resp.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError):
        client(gateway).chat.completions.create(model="gemini-2.5-flash",
                                                messages=[{"role": "user", "content": "x"}], temperature="hot")
    assert fake.requests() == []


def test_health_and_root_are_open(gateway):
    health = requests.get(gateway.url + "/health", timeout=5).json()
    assert health["keys"]["total"] == 2 and health["status"] == "ok"
    assert "ok-alpha-7f3a9c" not in str(health)
    assert requests.get(gateway.url + "/", timeout=5).status_code == 200


def test_cors_preflight(gateway):
    resp = requests.options(gateway.v1 + "/chat/completions", timeout=5, headers={
        "Origin": "https://example.org", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] in ("*", "https://example.org")


def test_no_keys_configured(fake):
    with start_gateway(fake.base_url, api_keys="") as gw:
        health = gw.health()
        assert health["status"] == "no_keys" and "no API keys" in health["message"]
        resp = requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), timeout=10,
                             json={"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]})
        assert resp.status_code == 503
        assert "no API keys are configured" in resp.json()["error"]["message"]


def test_malformed_setting_stops_startup(fake):
    with start_gateway(fake.base_url, wait=False, max_retries="many") as gw:
        assert gw.process.wait(20) != 0
        assert "MAX_RETRIES" in gw.logs()


def test_embeddings_over_100_inputs_are_split(gateway, fake):
    inputs = [f"text {i}" for i in range(230)]
    out = client(gateway).embeddings.create(model="gemini-embedding-001", input=inputs, dimensions=4,
                                            encoding_format="float")
    assert [d.index for d in out.data] == list(range(230))
    calls = [r for r in fake.requests() if r["path"].endswith(":batchEmbedContents")]
    assert [len(c["body"]["requests"]) for c in calls] == [100, 100, 30] or \
        sorted(len(c["body"]["requests"]) for c in calls) == [30, 100, 100]


def test_metrics(gateway, fake):
    client(gateway).chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "m"}])
    text = requests.get(gateway.url + "/metrics", timeout=5).text
    assert 'gateway_upstream_answers_total{outcome="ok"}' in text
    assert 'gateway_requests_total{status="2xx",surface="openai"}' in text
    assert 'gateway_keys{state="active"} 2.0' in text
    assert "ok-alpha-7f3a9c" not in text
