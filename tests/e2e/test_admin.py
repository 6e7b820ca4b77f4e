"""The admin API and page: AUTH_TOKEN only, keys by id only, actions that really change the pool."""

from __future__ import annotations

import requests

from app.keys import key_id
from tests.support.gateway import start_gateway

ADMIN = "admin-secret-token"


def test_admin_api(fake):
    with start_gateway(fake.base_url, api_keys=["ok-adm-1", "invalid-adm-2"], auth_token=ADMIN) as gw:
        auth = {"Authorization": f"Bearer {ADMIN}"}
        assert requests.get(gw.url + "/admin/keys", timeout=5).status_code == 401
        assert requests.get(gw.url + "/admin/keys", headers=gw.headers(), timeout=5).status_code == 401
        listing = requests.get(gw.url + "/admin/keys", headers=auth, timeout=5).json()
        assert [k["id"] for k in listing["keys"]] == [key_id("ok-adm-1"), key_id("invalid-adm-2")]
        assert "ok-adm-1" not in str(listing)

        kid = key_id("ok-adm-1")
        assert requests.post(f"{gw.url}/admin/keys/{kid}/disable", headers=auth, timeout=5).status_code == 200
        states = {k["id"]: k["state"] for k in requests.get(gw.url + "/admin/keys", headers=auth, timeout=5)
                  .json()["keys"]}
        assert states[kid] == "disabled"
        r = requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), timeout=10,
                          json={"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 503                   # the other key is invalid: nothing left to serve
        check = requests.post(f"{gw.url}/admin/keys/{kid}/check", headers=auth, timeout=10).json()
        assert check["check"] == "ok"                 # a passing check puts the key back
        r = requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), timeout=10,
                          json={"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "y"}]})
        assert r.status_code == 200

        added = requests.post(gw.url + "/admin/keys", headers=auth, json={"key": "ok-adm-3"}, timeout=5).json()
        assert added["id"] == key_id("ok-adm-3")
        assert requests.delete(f"{gw.url}/admin/keys/{kid}", headers=auth, timeout=5).status_code == 200
        ids = [k["id"] for k in requests.get(gw.url + "/admin/keys", headers=auth, timeout=5).json()["keys"]]
        assert kid not in ids and key_id("ok-adm-3") in ids
        assert requests.post(gw.url + "/admin/keys/nope/enable", headers=auth, timeout=5).status_code == 404
        page = requests.get(gw.url + "/admin", timeout=5)
        assert page.status_code == 200 and "Key pool" in page.text
