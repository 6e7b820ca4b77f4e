"""Which keys serve what (issue 20): weights, tiers and per-key model lists, through the real gateway against
the fake upstream, counted at the fake."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import anthropic
import openai
import pytest
import requests

from app.keys import key_id
from tests.support.gateway import ADMIN_TOKEN, TOKEN, start_gateway

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def chat(gw, model: str = "gemini-2.5-flash", text: str = "hello", session: requests.Session | None = None,
         headers: dict[str, str] | None = None):
    return (session or requests).post(gw.v1 + "/chat/completions", headers={**gw.headers(), **(headers or {})},
                                      timeout=30,
                                      json={"model": model, "messages": [{"role": "user", "content": text}]})


def served(fake) -> Counter:
    """Model calls the fake received, per key."""
    return Counter(r["api_key"] for r in fake.requests() if ":generateContent" in r["path"])


def models_by_key(fake) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in fake.requests():
        if ":generateContent" in r["path"]:
            out.setdefault(r["api_key"], set()).add(r["path"].rsplit("/", 1)[1].split(":")[0])
    return out


def listed(gw) -> dict[str, dict]:
    rows = requests.get(gw.url + "/admin/api/keys", headers=ADMIN, timeout=10).json()["keys"]
    return {row["id"]: row for row in rows}


def test_a_thousand_requests_split_one_to_three(fake):
    light, heavy = "ok-weight-1", "ok-weight-3"
    with start_gateway(fake.base_url, api_keys=[light, heavy], key_weights=f"{heavy}=3") as gw:
        local = threading.local()

        def one(i: int) -> int:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            return chat(gw, text=f"w{i}", session=local.session).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(one, range(1000), timeout=180))
        assert statuses == [200] * 1000
        counts = served(fake)
        assert sum(counts.values()) == 1000
        assert abs(counts[heavy] / 1000 - 0.75) <= 0.02, counts
        rows = listed(gw)
        assert (rows[key_id(heavy)]["weight"], rows[key_id(light)]["weight"]) == (3, 1)


def wait_active(gw, ids: list[str], timeout: float = 20.0) -> None:
    """Until the admin list shows every id active again (its cooldown over); bounded."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        answer = requests.get(gw.url + "/admin/keys", headers=ADMIN, timeout=5).json()
        rows = {r["id"]: r for r in answer["keys"]}
        if all(rows[kid]["state"] == "active" for kid in ids):
            return
        threading.Event().wait(0.1)
    raise AssertionError(f"keys still cooling after {timeout} s: {rows}")


def test_tier_two_serves_only_while_tier_one_is_cooling(fake):
    first, second, reserve = "ok-tier1-a", "ok-tier1-b", "ok-tier2-c"
    with start_gateway(fake.base_url, api_keys=[first, second, reserve], max_wait=0) as gw:
        # The reserve key is moved to tier 2 in the admin API (validated, then seen by the pool at once).
        bad = requests.patch(gw.url + f"/admin/api/keys/{key_id(reserve)}", headers=ADMIN, json={"tier": 0},
                             timeout=10)
        assert bad.status_code == 400 and "'tier'" in bad.json()["error"]["message"]
        ok = requests.patch(gw.url + f"/admin/api/keys/{key_id(reserve)}", headers=ADMIN, json={"tier": 2},
                            timeout=10)
        assert ok.status_code == 200, ok.text
        assert listed(gw)[key_id(reserve)]["tier"] == 2
        for i in range(10):
            assert chat(gw, text=f"a{i}").status_code == 200
        assert served(fake) == {first: 5, second: 5}

        for key in (first, second):  # tier 1 answers one 429 each, with a short RetryInfo
            fake.script(key, "rpm", times=1, retry_delay="2s")
        for i in range(6):
            assert chat(gw, text=f"b{i}").status_code == 200
        during = served(fake)
        assert during[reserve] == 6 and during[first] == during[second] == 6  # each one 429, then cooling

        wait_active(gw, [key_id(first), key_id(second)])
        fake.reset()
        for i in range(10):
            assert chat(gw, text=f"c{i}").status_code == 200
        assert served(fake) == {first: 5, second: 5}  # back on tier 1, not once on tier 2

        # A conversation that fell back to tier 2 (Claude Code and Codex send a session id on every turn)
        # goes back to tier 1 with everyone else, and stays there.
        for key in (first, second):
            fake.script(key, "rpm", times=1, retry_delay="2s")
        session = {"X-Session-Id": "conversation-1"}
        for i in range(3):
            assert chat(gw, text=f"s{i}", headers=session).status_code == 200
        assert served(fake)[reserve] >= 1
        wait_active(gw, [key_id(first), key_id(second)])
        fake.reset()
        for i in range(4):
            assert chat(gw, text=f"t{i}", headers=session).status_code == 200
        assert served(fake)[reserve] == 0 and len(set(served(fake))) == 1  # back, and bound anew


@pytest.fixture(scope="module")
def listed_gateway(fake_server):
    flash_only, no_pro, pro_only = "ok-flash-only", "ok-no-pro", "ok-pro-only"
    with start_gateway(fake_server.base_url, api_keys=[flash_only, no_pro, pro_only],
                       key_models=f'{{"{flash_only}": ["gemini-2.5-flash*"], '
                                  f'"{key_id(pro_only)}": "gemini-2.5-pro"}}',
                       key_exclude_models=f"{no_pro}=gemini-2.5-pro|gemini-2.0-*") as gw:
        yield gw, (flash_only, no_pro, pro_only)


def test_a_key_is_never_sent_a_model_its_lists_exclude(fake, listed_gateway):
    gw, (flash_only, no_pro, pro_only) = listed_gateway
    for i in range(6):
        assert chat(gw, "gemini-2.5-flash", f"f{i}").status_code == 200
        assert chat(gw, "gemini-2.5-pro", f"p{i}").status_code == 200
        assert chat(gw, "gemini-2.5-flash-lite", f"l{i}").status_code == 200
    seen = models_by_key(fake)
    assert seen == {flash_only: {"gemini-2.5-flash", "gemini-2.5-flash-lite"},
                    no_pro: {"gemini-2.5-flash", "gemini-2.5-flash-lite"},
                    pro_only: {"gemini-2.5-pro"}}
    # Tried even as the last resort? Make the only pro key fail: the answer is honest, no other key is used.
    fake.reset()
    fake.script(pro_only, "rpm", times=1, retry_delay="30s")
    r = chat(gw, "gemini-2.5-pro", "cooling")
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
    assert set(served(fake)) == {pro_only}
    row = listed(gw)[key_id(flash_only)]
    assert row["models"] == ["gemini-2.5-flash*"] and row["exclude_models"] == []


def test_no_key_may_serve_the_model_answers_404_in_each_protocol(fake, listed_gateway):
    gw, _ = listed_gateway
    oa = openai.OpenAI(base_url=gw.v1, api_key=TOKEN, max_retries=0, timeout=30)
    with pytest.raises(openai.NotFoundError) as info:
        oa.chat.completions.create(model="gemini-2.0-flash", messages=[{"role": "user", "content": "x"}])
    error = info.value.body
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "gemini-2.0-flash" in error["message"]
    an = anthropic.Anthropic(base_url=gw.url, api_key=TOKEN, max_retries=0, timeout=30)
    with pytest.raises(anthropic.NotFoundError) as ainfo:
        an.messages.create(model="gemini-2.0-flash", max_tokens=10,
                           messages=[{"role": "user", "content": "x"}])
    assert ainfo.value.body["error"]["type"] == "not_found_error"
    native = requests.post(gw.url + "/v1beta/models/gemini-2.0-flash:generateContent", timeout=30,
                           headers={"x-goog-api-key": TOKEN}, json={"contents": [{"parts": [{"text": "x"}]}]})
    assert native.status_code == 404 and native.json()["error"]["status"] == "NOT_FOUND"
    assert "gemini-2.0-flash" in native.json()["error"]["message"]
    assert served(fake) == Counter()  # nothing reached the upstream


def test_model_listings_leave_out_what_no_key_may_be_sent(fake):
    # A listing that advertises a model every key's lists exclude invites calls that can only be 404s.
    with start_gateway(fake.base_url, api_keys=["ok-pro-a", "ok-pro-b"],
                       key_models="ok-pro-a=gemini-2.5-pro,ok-pro-b=gemini-2.5-pro|gemini-2.0-*",
                       key_exclude_models="ok-pro-b=gemini-2.0-flash-lite*") as gw:
        openai_ids = [m["id"] for m in requests.get(gw.v1 + "/models", headers=gw.headers(), timeout=30)
                      .json()["data"]]
        # Media aliases (gpt-image-1, tts-1, whisper-1) are served by flash models no key may be sent.
        assert openai_ids == ["gemini-2.5-pro", "gemini-2.5-pro-search", "gemini-2.0-flash", "gemini-2.0-flash-001"]
        native = requests.get(gw.url + "/v1beta/models", headers={"x-goog-api-key": TOKEN}, timeout=30).json()
        assert [m["name"] for m in native["models"]] == [
            "models/gemini-2.5-pro", "models/gemini-2.0-flash", "models/gemini-2.0-flash-001"]
        assert native["nextPageToken"]  # paging still walks the upstream's list
        refused = requests.get(gw.v1 + "/models/gemini-2.5-flash", headers=gw.headers(), timeout=30)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "model_not_found"
        refused = requests.get(gw.url + "/v1beta/models/gemini-2.5-flash", headers={"x-goog-api-key": TOKEN},
                               timeout=30)
        assert refused.status_code == 404 and refused.json()["error"]["status"] == "NOT_FOUND"
        assert requests.get(gw.url + "/v1beta/models/gemini-2.5-pro", headers={"x-goog-api-key": TOKEN},
                            timeout=30).json()["name"] == "models/gemini-2.5-pro"
