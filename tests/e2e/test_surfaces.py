"""Surfaces as mounts: unknown routes and failures answer in the caller's protocol, and /metrics labels each
request by the surface that served it (issue 11)."""

from __future__ import annotations

import re
import time

import openai
import pytest
import requests

from app.keys.quota_time import next_pacific_midnight
from tests.support.gateway import TOKEN, start_gateway


def metric(gw, name: str, **labels: str) -> float:
    text = requests.get(gw.url + "/metrics", timeout=10).text
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.match(rf"{name}\{{(.*)\}} (\S+)$", line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            return float(m.group(2))
    return 0.0


@pytest.mark.parametrize("prefix", ["", "/hf"])
def test_unknown_openai_route_is_a_json_404_naming_it(gateway, prefix):
    before = metric(gateway, "gateway_unknown_routes_total", surface="openai")
    r = requests.post(gateway.url + prefix + "/v1/assistants/xyz", headers=gateway.headers(), json={}, timeout=10)
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "POST" in error["message"] and f"{prefix}/v1/assistants/xyz" in error["message"]
    assert error["code"] == "unknown_route"
    assert metric(gateway, "gateway_unknown_routes_total", surface="openai") == before + 1


def test_unknown_route_reaches_openai_sdk_as_not_found(gateway):
    client = openai.OpenAI(base_url=gateway.v1, api_key=TOKEN, max_retries=0)
    with pytest.raises(openai.NotFoundError) as info:
        client.batches.list()
    assert "no route for GET /v1/batches" in str(info.value)


@pytest.mark.parametrize("path", ["/v1beta/tunedModels", "/gemini/v1beta/corpora/x", "/hf/v1beta/nope"])
def test_unknown_native_route_is_googles_404(gateway, path):
    r = requests.get(gateway.url + path, headers={"x-goog-api-key": TOKEN}, timeout=10)
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == 404 and error["status"] == "NOT_FOUND" and path in error["message"]


def test_unknown_root_route_is_json(gateway):
    r = requests.delete(gateway.url + "/wp-login.php", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_route"
    assert metric(gateway, "gateway_unknown_routes_total", surface="ops") >= 1


def test_native_call_under_v1_is_counted_as_native(gateway):
    before_native = metric(gateway, "gateway_requests_total", surface="native", status="2xx")
    before_openai = metric(gateway, "gateway_requests_total", surface="openai", status="2xx")
    r = requests.post(gateway.url + "/v1/models/gemini-2.5-flash:generateContent",
                      headers={"x-goog-api-key": TOKEN}, timeout=10,
                      json={"contents": [{"parts": [{"text": "hi"}]}]})
    assert r.status_code == 200, r.text
    assert metric(gateway, "gateway_requests_total", surface="native", status="2xx") == before_native + 1
    assert metric(gateway, "gateway_requests_total", surface="openai", status="2xx") == before_openai


def test_hf_alias_serves_every_surface(gateway):
    assert requests.get(gateway.url + "/hf", timeout=10).json()["status"] == "ok"
    assert requests.get(gateway.url + "/hf/health", timeout=10).json()["keys"]["total"] == 2
    r = requests.get(gateway.url + "/hf/v1beta/models", headers={"x-goog-api-key": TOKEN}, timeout=10)
    assert r.status_code == 200 and r.json()["models"]


def _until_pacific_midnight() -> float:
    """Seconds to the next midnight US Pacific, stepping past it when it is only moments away (a cooldown set
    then would end before the test reads it)."""
    left = next_pacific_midnight(time.time()) - time.time()
    if left < 10:
        time.sleep(left + 1)
        left = next_pacific_midnight(time.time()) - time.time()
    return left


def test_pool_out_of_daily_quota_says_insufficient_quota_everywhere(fake):
    left = _until_pacific_midnight()
    with start_gateway(fake.base_url, api_keys=["rpd-a1", "rpd-b2"], max_wait=0) as gw:
        body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}
        first = requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), json=body, timeout=10)
        # Both keys answered with a per-day 429: the upstream's last word, translated.
        assert first.status_code == 429 and first.json()["error"]["code"] == "insufficient_quota"
        again = requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), json=body, timeout=10)
        error = again.json()["error"]
        # Now the pool itself knows: every key waits for Pacific midnight.
        assert again.status_code == 429 and error["code"] == "insufficient_quota", error
        assert "daily quota" in error["message"]
        assert left - 60 <= int(again.headers["retry-after"]) <= left + 1  # until Pacific midnight
        assert again.headers["x-should-retry"] == "false"
        native = requests.post(gw.url + "/v1beta/models/gemini-2.5-flash:generateContent",
                               headers={"x-goog-api-key": TOKEN}, timeout=10,
                               json={"contents": [{"parts": [{"text": "hi"}]}]})
        assert native.status_code == 429 and native.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert left - 60 <= int(native.headers["retry-after"]) <= left + 1
