"""Issue 12, items 8 and 11 through the real server: keys are checked when added through the admin API (pasted
lists split), and the admin API opens only with its own AUTH_TOKEN."""

from __future__ import annotations

import subprocess
import sys

import requests

from app.keys import key_id
from tests.support.gateway import ROOT, TOKEN, gateway_env, start_gateway

ADMIN = "admin-hardening-token"


def test_admin_add_splits_pasted_lists_and_refuses_bad_keys(fake) -> None:
    with start_gateway(fake.base_url, api_keys=["ok-adh-1"], auth_token=ADMIN) as gw:
        auth = {"Authorization": f"Bearer {ADMIN}"}

        def add(key: str) -> requests.Response:
            return requests.post(gw.url + "/admin/keys", headers=auth, json={"key": key}, timeout=5)

        pasted = add("ok-adh-2\nok-adh-3, ok-adh-4\r\n")
        assert pasted.status_code == 201
        assert pasted.json()["ids"] == [key_id("ok-adh-2"), key_id("ok-adh-3"), key_id("ok-adh-4")]
        for bad, where in [("ok-adh-5\x00x", "key 1 of 1"), ("ok-adh-6 ok-adh-\x07", "key 2 of 2"),
                           ("ok-adh-7\x7f", "key 1 of 1"), ("your-gemini-key-1", "placeholder")]:
            refused = add(bad)
            assert refused.status_code == 400
            message = refused.json()["error"]["message"]
            assert where in message and "ok-adh" not in message   # names the position, never the key
        ids = [k["id"] for k in requests.get(gw.url + "/admin/keys", headers=auth, timeout=5).json()["keys"]]
        assert sorted(ids) == sorted(key_id(f"ok-adh-{n}") for n in (1, 2, 3, 4))   # nothing refused was added
        # Every key of the pasted list serves requests.
        for n in range(8):
            message = {"role": "user", "content": str(n)}
            r = requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), timeout=10,
                              json={"model": "gemini-2.5-flash", "messages": [message]})
            assert r.status_code == 200
        assert {e["api_key"] for e in fake.requests()} == {f"ok-adh-{n}" for n in (1, 2, 3, 4)}


def test_admin_closed_without_auth_token(fake) -> None:
    with start_gateway(fake.base_url, api_keys=["ok-adh-8"], auth_token=None) as gw:
        for headers in ({}, gw.headers(), {"x-admin-token": TOKEN}):
            r = requests.get(gw.url + "/admin/keys", headers=headers, timeout=5)
            assert r.status_code == 401
            assert "closed" in r.json()["error"]["message"]
        assert requests.post(gw.url + "/admin/keys", headers=gw.headers(), json={"key": "ok-x"},
                             timeout=5).status_code == 401
        assert "AUTH_TOKEN is not set: the admin API is closed" in gw.logs()


def test_client_token_never_opens_admin(fake) -> None:
    with start_gateway(fake.base_url, api_keys=["ok-adh-9"], auth_token=ADMIN) as gw:
        for headers in (gw.headers(), {"x-admin-token": TOKEN}):
            assert requests.get(gw.url + "/admin/keys", headers=headers, timeout=5).status_code == 401
        assert requests.get(gw.url + "/admin/keys", headers={"Authorization": f"Bearer {ADMIN}"},
                            timeout=5).status_code == 200
        assert "admin API is closed" not in gw.logs()


def test_bad_key_at_start_is_a_clear_error() -> None:
    env = gateway_env(None, api_keys='["ok-start-1","ok-start-\\u0001two"]', port=0)
    done = subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, env=env, capture_output=True, timeout=30)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert "API_KEYS" in err and "entry 2 of 2" in err and "character 10 (U+0001)" in err
    assert "ok-start" not in err
