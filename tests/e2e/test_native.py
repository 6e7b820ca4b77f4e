"""Native Gemini passthrough through the real server, driven by the google-genai SDK, requests and curl."""

from __future__ import annotations

import subprocess

import orjson
import pytest
import requests
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.support.gateway import TOKEN, start_gateway

POOL = ["ok-n1-5e1c", "ok-n2-9a7f"]


@pytest.fixture(scope="module")
def gw(fake_server):
    with start_gateway(fake_server.base_url, api_keys=POOL) as handle:
        yield handle


_CLIENTS: list[genai.Client] = []  # the SDK closes its HTTP client when the Client object is collected


def sdk(gw, prefix: str = "", api_key: str = TOKEN) -> genai.Client:
    client = genai.Client(api_key=api_key, http_options=types.HttpOptions(
        base_url=gw.url + prefix, api_version="v1beta", timeout=20_000))
    _CLIENTS.append(client)
    return client


def test_generate_content(gw, fake):
    resp = sdk(gw).models.generate_content(model="gemini-2.5-flash", contents="hello native")
    assert resp.text == "echo: hello native"
    sent = fake.requests()[-1]
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent["api_key"] in POOL and TOKEN not in orjson.dumps(sent).decode()


def test_generate_content_stream(gw, fake):
    pieces = [c.text for c in sdk(gw).models.generate_content_stream(
        model="gemini-2.5-flash", contents="one two three four five six")]
    assert len(pieces) > 1
    assert "".join(p or "" for p in pieces) == "echo: one two three four five six"
    assert fake.requests()[-1]["query"].get("alt") == "sse"


def test_multi_turn_chat(gw, fake):
    chat = sdk(gw).chats.create(model="gemini-2.5-flash")
    assert chat.send_message("first question").text == "echo: first question"
    assert chat.send_message("second question").text == "echo: second question"
    contents = fake.requests()[-1]["body"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"][0]["text"] == "echo: first question"


def test_count_tokens_embed_and_models(gw, fake):
    client = sdk(gw)
    assert client.models.count_tokens(model="gemini-2.5-flash", contents="a b c").total_tokens > 0
    emb = client.models.embed_content(model="gemini-embedding-001", contents=["x", "y"],
                                      config=types.EmbedContentConfig(output_dimensionality=16))
    assert len(emb.embeddings) == 2 and len(emb.embeddings[0].values) == 16
    names = [m.name for m in client.models.list(config={"page_size": 10})]
    assert "models/gemini-2.5-flash" in names
    assert client.models.get(model="gemini-2.5-flash").name == "models/gemini-2.5-flash"


def test_passthrough_is_byte_for_byte(gw, fake):
    raw = (b'{"contents": [{"role": "user", "parts": [{"text": "exact \\u00e9 bytes"}]}],\n'
           b' "generationConfig": {"temperature": 0.1}, "safetySettings": []}')
    query = "?key=" + TOKEN + "&prettyPrint=false&foo=bar"
    resp = requests.post(gw.url + "/v1beta/models/gemini-2.5-flash:generateContent" + query,
                         data=raw, headers={"content-type": "application/json"}, timeout=20)
    assert resp.status_code == 200
    sent = fake.requests()[-1]
    assert sent["raw_body"].encode() == raw              # nothing injected, nothing dropped
    # The gateway token never travels upstream; only parameters Gemini defines do (strip_key's allow-list).
    assert sent["query"] == {"prettyPrint": "false"}
    assert sent["api_key"] in POOL


def test_upstream_status_and_framing_unchanged(gw, fake):
    # An upstream client error comes back with Gemini's own status and body.
    resp = requests.post(gw.url + "/v1beta/models/no-such-model:generateContent",
                         headers={"x-goog-api-key": TOKEN}, json={"contents": [{"parts": [{"text": "x"}]}]},
                         timeout=20)
    assert resp.status_code == 404 and resp.json()["error"]["status"] == "NOT_FOUND"
    # The JSON-array stream (no alt=sse) stays a JSON array.
    resp = requests.post(gw.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                         headers={"x-goog-api-key": TOKEN},
                         json={"contents": [{"parts": [{"text": "array framing please"}]}]}, timeout=20)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    items = resp.json()
    assert isinstance(items, list) and items[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "".join(p["text"] for i in items for p in i["candidates"][0]["content"]["parts"]) == \
        "echo: array framing please"


@pytest.mark.parametrize("prefix", ["/gemini", "/hf"])
def test_other_prefixes(gw, fake, prefix):
    assert sdk(gw, prefix).models.generate_content(model="gemini-2.5-flash", contents="p").text == "echo: p"


def test_v1_api_version(gw, fake):
    client = genai.Client(api_key=TOKEN, http_options=types.HttpOptions(base_url=gw.url, api_version="v1"))
    assert client.models.generate_content(model="gemini-2.5-flash", contents="v1 please").text == "echo: v1 please"


def test_auth_errors_in_google_shape(gw, fake):
    resp = requests.post(gw.url + "/v1beta/models/gemini-2.5-flash:generateContent",
                         json={"contents": [{"parts": [{"text": "x"}]}]}, timeout=10)
    assert resp.status_code == 403 and resp.json()["error"]["status"] == "PERMISSION_DENIED"
    with pytest.raises(genai_errors.ClientError) as info:
        sdk(gw, api_key="wrong-token").models.generate_content(model="gemini-2.5-flash", contents="x")
    assert info.value.code == 400
    assert fake.requests() == []


@pytest.mark.parametrize("name", ["..%2F..%2Fetc", "gemini%3Fx=1", "a%2Fb", "bad$name"])
def test_model_names_validated(gw, fake, name):
    resp = requests.post(gw.url + f"/v1beta/models/{name}:generateContent", headers={"x-goog-api-key": TOKEN},
                         json={"contents": [{"parts": [{"text": "x"}]}]}, timeout=10)
    assert resp.status_code in (400, 404)
    assert fake.requests() == []


def test_curl(gw, fake):
    out = subprocess.run(
        ["curl", "-sS", "-H", f"x-goog-api-key: {TOKEN}", "-H", "content-type: application/json",
         "-d", '{"contents":[{"parts":[{"text":"from curl"}]}]}',
         gw.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"],
        capture_output=True, check=True, timeout=30).stdout.decode()
    events = [line[6:] for line in out.splitlines() if line.startswith("data: ")]
    assert events and "".join(
        p.get("text", "") for e in events for p in orjson.loads(e)["candidates"][0]["content"].get("parts", [])
    ) == "echo: from curl"


def test_pool_heals_native_calls(fake):
    with start_gateway(fake.base_url, api_keys=["invalid-p1", "rpm-p2", "ok-p3"], max_wait=0) as gw:
        client = sdk(gw)
        for i in range(5):
            assert client.models.generate_content(model="gemini-2.5-flash", contents=f"n{i}").text == f"echo: n{i}"
        text = "".join(c.text or "" for c in client.models.generate_content_stream(
            model="gemini-2.5-flash", contents="streamed"))
        assert text == "echo: streamed"
        keys = [r["api_key"] for r in fake.requests()]
        assert keys.count("invalid-p1") == 1 and keys.count("rpm-p2") == 1
        assert gw.health()["keys"]["disabled"] == 1
