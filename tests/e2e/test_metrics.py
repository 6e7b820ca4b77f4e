"""/metrics after real traffic: parses with the Prometheus client's parser, histograms have buckets, counters
end in _total, process metrics are there, and ``promtool check metrics`` has nothing to say."""

from __future__ import annotations

import shutil
import subprocess

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import ADMIN_TOKEN, TOKEN, start_gateway

BODY = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hello"}]}


def test_metrics_after_traffic(fake) -> None:
    with start_gateway(fake.base_url, api_keys=["ok-m-1", "rpm-m-2"]) as gw:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        limited = requests.post(gw.url + "/admin/api/tokens", headers=admin, timeout=5,
                                json={"name": "tight", "limits": {"rpm": 1}}).json()["secret"]
        for secret in (TOKEN, limited, limited):
            requests.post(gw.v1 + "/chat/completions", json=BODY, timeout=10,
                          headers={"Authorization": f"Bearer {secret}"})
        with requests.post(gw.v1 + "/chat/completions", json={**BODY, "stream": True}, headers=gw.headers(),
                           timeout=10, stream=True) as streamed:
            assert b"[DONE]" in streamed.content
        text = requests.get(gw.url + "/metrics", timeout=5).text

    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("gateway_request_duration_seconds", "gateway_upstream_duration_seconds",
                 "gateway_stream_first_token_seconds"):
        assert families[name].type == "histogram", name
        buckets = [s for s in families[name].samples if s.name.endswith("_bucket")]
        assert buckets and any(s.labels["le"] == "+Inf" and s.value >= 1 for s in buckets), name
    chat = [s for s in families["gateway_request_duration_seconds"].samples
            if s.name.endswith("_count") and s.labels.get("route") == "/chat/completions"]
    assert {s.labels["status"] for s in chat} >= {"200", "429"}
    upstream = {(s.labels["model"], s.labels["outcome"]) for s in families["gateway_upstream_duration_seconds"].samples}
    assert ("gemini-2.5-flash", "ok") in upstream
    assert families["gateway_requests"].type == "counter"
    assert "gateway_requests_total" in text and "gateway_analytics_events_total" in text
    refusals = [s for s in families["gateway_token_limit_refusals"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in refusals) >= 1
    pool = {(s.labels["model"], s.labels["state"]): s.value for s in families["gateway_pool_keys"].samples}
    assert pool[("*", "eligible")] + pool[("*", "cooling")] == 2
    assert "process_resident_memory_bytes" in families and "python_info" in families

    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `make browser` installs Debian's prometheus package"
    check = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check
