"""How each key reaches Google (issue 20): per-key HTTP and SOCKS5 proxies, a default proxy, ``direct``, a dead
proxy, and Vertex AI express keys, through the real gateway, the fake upstream and proxies on loopback."""

from __future__ import annotations

import threading

import anthropic
import openai
import requests

from app.keys import key_id
from tests.support.gateway import ADMIN_TOKEN, TOKEN, start_gateway
from tests.support.proxies import HttpProxy, Socks5Proxy, dead_port

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SECRET = "pr0xy-s3cret"


def chat(gw, text: str = "hello", **kw) -> requests.Response:
    return requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), timeout=30,
                         json={"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": text}], **kw})


def admin(gw, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, gw.url + "/admin/api" + path, headers=ADMIN, timeout=10, **kw)


def listed(gw) -> dict[str, dict]:
    return {row["id"]: row for row in admin(gw, "GET", "/keys").json()["keys"]}


def test_keys_go_through_their_own_proxy_and_direct_keys_do_not(fake):
    keys = ["ok-via-http", "ok-via-socks", "ok-direct", "ok-default"]
    with HttpProxy("gw", SECRET) as http_proxy, Socks5Proxy("gw", SECRET) as socks, HttpProxy() as default:
        proxies = {"ok-via-http": http_proxy.url, "ok-via-socks": socks.url, key_id("ok-direct"): "direct"}
        with start_gateway(fake.base_url, api_keys=keys, outbound_proxy=default.url,
                           key_proxies=",".join(f"{k}={v}" for k, v in proxies.items())) as gw:
            for i in range(8):
                assert chat(gw, f"q{i}").status_code == 200
            stream = chat(gw, "streamed", stream=True)
            assert stream.status_code == 200 and "echo: streamed" in stream.text.replace('"', '"')
            seen = {r["api_key"] for r in fake.requests()}
            assert seen == set(keys)
            # The HTTP proxy saw every request of its key, with the credentials from the URL, and no other key.
            assert {e["key"] for e in http_proxy.log} == {"ok-via-http"}
            assert all(e["authorised"] for e in http_proxy.log)
            assert len(http_proxy.log) == sum(r["api_key"] == "ok-via-http" for r in fake.requests())
            # The SOCKS5 proxy tunnelled to the fake, authenticated.
            assert socks.log and all(e["target"] == f"127.0.0.1:{fake.port}" and e["user"] == "gw"
                                     for e in socks.log)
            # OUTBOUND_PROXY carries only the key with no route of its own; "direct" bypasses it.
            assert {e["key"] for e in default.log} == {"ok-default"}
            rows = listed(gw)
            assert rows[key_id("ok-via-http")]["proxy"] == f"http://127.0.0.1:{http_proxy.port}"
            assert rows[key_id("ok-via-socks")]["proxy"] == f"socks5://127.0.0.1:{socks.port}"
            assert rows[key_id("ok-direct")]["proxy"] == "direct"
            assert rows[key_id("ok-default")]["proxy"] == f"http://127.0.0.1:{default.port}"
            assert {r["kind"] for r in rows.values()} == {"gemini"}
            assert sorted(gw.health()["outbound_proxies"]) == sorted(
                [f"http://127.0.0.1:{http_proxy.port}", f"socks5://127.0.0.1:{socks.port}",
                 f"http://127.0.0.1:{default.port}"])
            surfaces = [admin(gw, "GET", "/keys").text, requests.get(gw.url + "/health", timeout=5).text,
                        admin(gw, "GET", "/settings").text]
            metrics = requests.get(gw.url + "/metrics", timeout=5)
            if metrics.status_code == 200:
                surfaces.append(metrics.text)
            assert not any(SECRET in text for text in surfaces)
        assert SECRET not in gw.logs() and not any(k in gw.logs() for k in keys)


def test_a_dead_proxy_fails_over_and_its_key_comes_back_with_the_proxy(fake):
    port = dead_port()
    with start_gateway(fake.base_url, api_keys=["ok-behind-dead", "ok-live"], max_wait=0, check_interval=0.2,
                       key_proxies=f"ok-behind-dead=socks5://127.0.0.1:{port}") as gw:
        kid = key_id("ok-behind-dead")
        for i in range(6):
            r = chat(gw, f"d{i}")
            assert r.status_code == 200, r.text
        assert {r["api_key"] for r in fake.requests()} == {"ok-live"}
        # The route failed, not the key: transient failures only, never "invalid".
        row = listed(gw)[kid]
        assert row["enabled"] is True and row["state"] == "disabled", row
        assert "transient failures (last: proxy_connection_error)" in row["reason"], row
        # The proxy's health is the key's health: once the proxy is up, the key's probe passes through it.
        with Socks5Proxy(port=port) as revived:
            for _ in range(100):
                if listed(gw)[kid]["state"] == "active":
                    break
                threading.Event().wait(0.1)
            assert listed(gw)[kid]["state"] == "active"
            assert revived.log
            fake.reset()
            for i in range(4):
                assert chat(gw, f"back{i}").status_code == 200
            assert {r["api_key"] for r in fake.requests()} == {"ok-behind-dead", "ok-live"}


def test_keys_behind_one_dead_proxy_never_fail_a_request_another_route_can_serve(fake):
    # OUTBOUND_PROXY dies; two keys use it, one is direct. A request meeting both proxied keys failed "the
    # same way" on two keys, was taken for the request's fault and answered 502, and no key was ever charged:
    # the 502s went on for good. The route's failure is the route's: the direct key serves every request.
    dead = f"http://gw:{SECRET}@127.0.0.1:{dead_port()}"
    with start_gateway(fake.base_url, api_keys=["ok-proxied-1", "ok-proxied-2", "ok-direct-1"], max_wait=0,
                       outbound_proxy=dead, key_proxies="ok-direct-1=direct", check_interval=60) as gw:
        codes = [chat(gw, f"r{i}").status_code for i in range(12)]
        assert codes == [200] * 12
        assert {r["api_key"] for r in fake.requests()} == {"ok-direct-1"}
        rows = listed(gw)
        for key in ("ok-proxied-1", "ok-proxied-2"):  # charged with evidence, so benched until the probe
            row = rows[key_id(key)]
            assert row["state"] == "disabled" and "proxy_connection_error" in row["reason"], row
        assert SECRET not in gw.logs() and SECRET not in admin(gw, "GET", "/keys").text


def test_admin_patch_sets_and_clears_a_keys_proxy_and_kind(fake):
    with HttpProxy() as proxy, start_gateway(fake.base_url, api_keys=["ok-patched"],
                                                      vertex_base_url=fake.url + "/v1") as gw:
        kid = key_id("ok-patched")
        assert chat(gw).status_code == 200 and proxy.log == []
        r = admin(gw, "PATCH", f"/keys/{kid}", json={"proxy": "http://op:hidden@127.0.0.1:%d" % proxy.port})
        assert r.status_code == 200 and r.json()["done"] == "updated"
        assert chat(gw).status_code == 200
        assert [e["key"] for e in proxy.log] == ["ok-patched"]
        row = listed(gw)[kid]
        assert row["proxy"] == f"http://127.0.0.1:{proxy.port}" and "hidden" not in admin(gw, "GET", "/keys").text
        assert admin(gw, "PATCH", f"/keys/{kid}", json={"proxy": None}).status_code == 200
        assert chat(gw).status_code == 200 and len(proxy.log) == 1
        bad = admin(gw, "PATCH", f"/keys/{kid}", json={"proxy": "ftp://h:21"})
        assert bad.status_code == 400 and "'proxy'" in bad.text
        bad = admin(gw, "PATCH", f"/keys/{kid}", json={"kind": "azure"})
        assert bad.status_code == 400 and "'kind'" in bad.text
        assert admin(gw, "PATCH", f"/keys/{kid}", json={}).status_code == 400
        assert admin(gw, "PATCH", f"/keys/{kid}", json={"kind": "vertex"}).status_code == 200
        assert listed(gw)[kid]["kind"] == "vertex"
        assert chat(gw).status_code == 200
        assert fake.requests()[-1]["path"] == "/v1/publishers/google/models/gemini-2.5-flash:generateContent"


def test_a_vertex_express_key_serves_every_surface(fake):
    with start_gateway(fake.base_url, api_keys=["ok-vertex-1"], key_kinds="ok-vertex-1=vertex",
                       vertex_base_url=fake.url + "/v1") as gw:
        assert listed(gw)[key_id("ok-vertex-1")]["kind"] == "vertex"
        console = requests.get(gw.url + "/admin/keys", headers=ADMIN, timeout=10).json()["keys"]
        assert [(k["id"], k["kind"], k["proxy"]) for k in console] == [(key_id("ok-vertex-1"), "vertex", "direct")]
        oa = openai.OpenAI(base_url=gw.v1, api_key=TOKEN, max_retries=0, timeout=30)
        reply = oa.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content == "echo: hi"
        text = "".join(c.choices[0].delta.content or "" for c in oa.chat.completions.create(
            model="gemini-2.5-flash", stream=True, messages=[{"role": "user", "content": "flow"}]) if c.choices)
        assert text == "echo: flow"
        an = anthropic.Anthropic(base_url=gw.url, api_key=TOKEN, max_retries=0, timeout=30)
        message = an.messages.create(model="gemini-2.5-flash", max_tokens=100,
                                     messages=[{"role": "user", "content": "claude"}])
        assert message.content[0].text == "echo: claude"
        native = requests.post(gw.url + "/v1beta/models/gemini-2.5-flash:generateContent",
                               headers={"x-goog-api-key": TOKEN}, timeout=30,
                               json={"contents": [{"role": "user", "parts": [{"text": "native"}]}]})
        assert native.status_code == 200
        assert native.json()["candidates"][0]["content"]["parts"][0]["text"] == "echo: native"
        sse = requests.post(gw.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
                            headers={"x-goog-api-key": TOKEN}, timeout=30,
                            json={"contents": [{"role": "user", "parts": [{"text": "native stream"}]}]})
        assert sse.status_code == 200 and "native" in sse.text
        count = requests.post(gw.url + "/v1beta/models/gemini-2.5-flash:countTokens",
                              headers={"x-goog-api-key": TOKEN}, timeout=30,
                              json={"contents": [{"role": "user", "parts": [{"text": "count me"}]}]})
        assert count.status_code == 200 and count.json()["totalTokens"] > 0
        paths = [r["path"] for r in fake.requests()]
        assert len(paths) == 6
        assert all(p.startswith("/v1/publishers/google/models/gemini-2.5-flash:") for p in paths), paths
        assert {r["api_key"] for r in fake.requests()} == {"ok-vertex-1"}


def test_calls_express_mode_cannot_serve_skip_vertex_keys(fake):
    with start_gateway(fake.base_url, api_keys=["ok-vertex-2", "ok-gemini-2"], key_kinds="ok-vertex-2=vertex",
                       vertex_base_url=fake.url + "/v1") as gw:
        for _ in range(3):
            r = requests.post(gw.v1 + "/embeddings", headers=gw.headers(), timeout=30,
                              json={"model": "gemini-embedding-001", "input": "vector"})
            assert r.status_code == 200, r.text
        assert {r["api_key"] for r in fake.requests()} == {"ok-gemini-2"}
        health = gw.health()["keys"]
        assert health["disabled"] == 0 and health["cooling"] == 0
