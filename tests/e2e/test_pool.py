"""The key pool through the real server: bad keys are routed around and not hammered."""

from __future__ import annotations

import openai
import pytest
import requests

from app.keys import key_id
from tests.support.gateway import TOKEN, start_gateway

MSG = [{"role": "user", "content": "hello"}]


def chat(gw, model: str = "gemini-2.5-flash", **kw) -> requests.Response:
    return requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), timeout=30,
                         json={"model": model, "messages": MSG, **kw})


def counts(fake) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in fake.requests():
        out[r["api_key"]] = out.get(r["api_key"], 0) + 1
    return out


def test_mixed_pool_serves_every_request(fake):
    keys = ["invalid-k1", "rpm-k2", "rpd-k3", "ok-k4"]
    with start_gateway(fake.base_url, api_keys=keys, max_wait=0) as gw:
        c = openai.OpenAI(base_url=gw.v1, api_key=TOKEN, max_retries=0)
        for i in range(12):
            r = c.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": f"q{i}"}])
            assert r.choices[0].message.content == f"echo: q{i}"
        for i in range(3):  # streams go through the same pool
            text = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
                model="gemini-2.5-flash", stream=True, messages=[{"role": "user", "content": f"s{i}"}])
                if ch.choices)
            assert text == f"echo: s{i}"
        seen = counts(fake)
        # Each bad key was tried once, then left alone while disabled or cooling.
        assert seen.get("invalid-k1") == 1 and seen.get("rpm-k2") == 1 and seen.get("rpd-k3") == 1
        assert seen["ok-k4"] == 15
        health = gw.health()
        assert health["keys"] == {"total": 4, "active": 1, "cooling": 2, "disabled": 1}
        # The raw keys never reach the logs.
        logs = gw.logs()
        assert not any(k in logs for k in keys)


def test_cooldown_is_per_model(fake):
    with start_gateway(fake.base_url, api_keys=["ok-a1", "ok-a2"], max_wait=0) as gw:
        fake.script("ok-a1", "rpm", times=1)
        assert chat(gw).status_code == 200          # ok-a1 429s on flash, ok-a2 answers
        for _ in range(4):
            assert chat(gw).status_code == 200
        flash = [r["api_key"] for r in fake.requests() if "gemini-2.5-flash:" in r["path"]]
        assert flash.count("ok-a1") == 1            # cooling for flash
        for _ in range(2):
            assert chat(gw, model="gemini-2.5-pro").status_code == 200
        pro = [r["api_key"] for r in fake.requests() if "gemini-2.5-pro:" in r["path"]]
        assert "ok-a1" in pro                       # but not for pro


def test_client_errors_do_not_penalise_keys(fake):
    with start_gateway(fake.base_url, api_keys=["ok-c1", "ok-c2"], max_failures=2) as gw:
        for _ in range(10):
            resp = chat(gw, model="no-such-model")
            assert resp.status_code == 404
            assert resp.json()["error"]["type"] == "not_found_error"
        assert len(fake.requests()) == 10           # no retries for a client error
        assert gw.health()["keys"]["active"] == 2
        assert chat(gw).status_code == 200


def test_all_keys_cooling_gives_429_with_retry_after(fake):
    with start_gateway(fake.base_url, api_keys=["rpm-d1", "rpm-d2"], max_wait=0) as gw:
        resp = chat(gw)
        assert resp.status_code == 429
        assert int(resp.headers["retry-after"]) >= 1
        assert resp.json()["error"]["type"] == "rate_limit_error"
        before = len(fake.requests())
        resp = chat(gw)                              # no request is sent while every key cools
        assert resp.status_code == 429 and len(fake.requests()) == before == 2
        with pytest.raises(openai.RateLimitError):
            openai.OpenAI(base_url=gw.v1, api_key=TOKEN, max_retries=0).chat.completions.create(
                model="gemini-2.5-flash", messages=MSG)


def test_all_keys_disabled_gives_503(fake):
    with start_gateway(fake.base_url, api_keys=["invalid-e1", "denied-e2"]) as gw:
        resp = chat(gw)
        assert resp.status_code == 503
        assert "disabled" in resp.json()["error"]["message"]
        assert len(fake.requests()) == 2
        assert chat(gw).status_code == 503 and len(fake.requests()) == 2
        assert gw.health()["keys"]["disabled"] == 2


ADMIN = "admin-token-for-pool-tests"


def admin_keys(gw) -> dict[str, dict]:
    resp = requests.get(gw.url + "/admin/keys", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    return {k["id"]: k for k in resp.json()["keys"]}


def test_transient_errors_retry_on_another_key(fake):
    with start_gateway(fake.base_url, api_keys=["ok-f1", "ok-f2"], max_failures=3, auth_token=ADMIN) as gw:
        fake.script("ok-f1", "internal", times=1)
        resp = chat(gw)
        assert resp.status_code == 200              # the second key answers after the first one's 500
        assert [r["api_key"] for r in fake.requests()] == ["ok-f1", "ok-f2"]
        state = admin_keys(gw)
        # The same request succeeded elsewhere: the evidence points at ok-f1, which is charged one failure.
        assert state[key_id("ok-f1")]["failures"] == 1 and state[key_id("ok-f2")]["failures"] == 0
        assert gw.health()["keys"]["active"] == 2


def test_a_poison_request_leaves_a_three_key_pool_serving(fake):
    keys = ["ok-p1", "ok-p2", "ok-p3"]
    # MAX_FAILURES=1 is the harshest pool: a single charge would disable a key.
    with start_gateway(fake.base_url, api_keys=keys, max_failures=1, check_interval=3600,
                       auth_token=ADMIN) as gw:
        for _ in range(4):  # more poison requests than the pool has keys
            fake.script("*", "internal")  # Gemini fails this request on every key
            before = len(fake.requests())
            resp = chat(gw)
            fake.script("*", "ok")
            assert resp.status_code == 500 and resp.json()["error"]["type"] == "api_error"
            tried = [r["api_key"] for r in fake.requests()[before:]]
            assert len(tried) == 2 and len(set(tried)) == 2  # the same 500 on two keys: not retried further
        assert gw.health()["keys"] == {"total": 3, "active": 3, "cooling": 0, "disabled": 0}
        assert all(entry["failures"] == 0 for entry in admin_keys(gw).values())  # nobody was charged
        client = openai.OpenAI(base_url=gw.v1, api_key=TOKEN, max_retries=0)
        before = len(fake.requests())
        for i in range(6):
            r = client.chat.completions.create(model="gemini-2.5-flash",
                                               messages=[{"role": "user", "content": f"after {i}"}])
            assert r.choices[0].message.content == f"echo: after {i}"
        assert {r["api_key"] for r in fake.requests()[before:]} == set(keys)  # every key still serves


def test_transient_errors_exhausted_report_the_upstream_error(fake):
    with start_gateway(fake.base_url, api_keys=["internal-g1"], max_retries=3, max_failures=10) as gw:
        resp = chat(gw)
        assert resp.status_code == 500
        assert resp.json()["error"]["type"] == "api_error"
        assert len(fake.requests()) == 3


def test_pool_key_rejections_are_not_reported_as_the_clients_credentials(fake):
    with start_gateway(fake.base_url, api_keys=["ok-h1", "ok-h2"], max_retries=2) as gw:
        fake.script("ok-h1", "invalid", times=1)
        fake.script("ok-h2", "invalid", times=1)
        resp = chat(gw)
        assert resp.status_code != 401                       # the client's token is fine
        assert resp.status_code in (502, 503)
        assert "rejected" in resp.json()["error"]["message"] or "disabled" in resp.json()["error"]["message"]
