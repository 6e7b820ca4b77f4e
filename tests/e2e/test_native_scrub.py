"""Pool keys never leave in upstream errors (issue 12, item 9): native generate, countTokens, streams (before
and after the commit, SSE and JSON array), the OpenAI surface, the analytics file and the logs.

The upstream is tests/support/echo_upstream.py: every error it sends quotes the calling key, and the keys
have the formats a shape regex would miss (an ``AQ.`` auth key, a free-form key).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from app.keys import key_id
from tests.support.echo_upstream import echo_upstream
from tests.support.gateway import GatewayHandle, start_gateway

AQ_KEY = "AQ." + "Ab8RN6K" + "zq3VwTgPp0xYh_5mL2cNd"  # built in pieces: not a real key, nor scanner bait
ODD_KEY = "pool-secret-" + "q1w2e3r4t5y6u7"
KEYS = (AQ_KEY, ODD_KEY)
IDS = tuple(key_id(k) for k in KEYS)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    log = tmp_path_factory.mktemp("scrub") / "analytics.jsonl"
    with (
        echo_upstream() as url,
        start_gateway(url, api_keys=list(KEYS), analytics_jsonl=str(log), log_level="DEBUG") as handle,
    ):
        handle.interaction_log = log  # type: ignore[attr-defined]
        yield handle


def _clean(text: str) -> None:
    for key in KEYS:
        assert key not in text


def _native(gw: GatewayHandle, target: str, query: str = "") -> requests.Response:
    return requests.post(
        f"{gw.url}/v1beta/models/{target}{query}",
        json={"contents": [{"parts": [{"text": "hi"}]}]},
        headers={"x-goog-api-key": gw.token},
        timeout=10,
    )


@pytest.mark.parametrize(
    "target",
    [
        "gemini-2.5-flash:generateContent",
        "gemini-2.5-flash:countTokens",
        "gemini-2.5-flash:streamGenerateContent",
    ],
)
def test_native_error_bodies_are_scrubbed(gw: GatewayHandle, target: str) -> None:
    resp = _native(gw, target, "?alt=sse" if "stream" in target else "")
    assert resp.status_code == 400
    _clean(resp.text)
    assert any(i in resp.text for i in IDS)  # the echo happened and names the key by its id
    assert resp.json()["error"]["status"] == "INVALID_ARGUMENT"  # still Google's JSON
    assert "key=[redacted]&x=1" in resp.text


@pytest.mark.parametrize("query", ["?alt=sse", ""])
def test_native_midstream_error_event_is_scrubbed(gw: GatewayHandle, query: str) -> None:
    resp = _native(gw, "midstream-model:streamGenerateContent", query)
    assert resp.status_code == 200
    assert "partial" in resp.text and '"error"' in resp.text
    _clean(resp.text)
    assert any(i in resp.text for i in IDS)


def test_openai_surface_scrubs_pool_keys_of_any_format(gw: GatewayHandle) -> None:
    body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}
    resp = requests.post(gw.v1 + "/chat/completions", json=body, headers=gw.headers(), timeout=10)
    assert resp.status_code == 400
    _clean(resp.text)
    stream = requests.post(
        gw.v1 + "/chat/completions",
        json={**body, "model": "midstream-model", "stream": True},
        headers=gw.headers(),
        timeout=10,
    )
    assert stream.status_code == 200 and '"error"' in stream.text
    _clean(stream.text)


def test_analytics_and_logs_never_hold_a_pool_key(gw: GatewayHandle) -> None:
    _native(gw, "gemini-2.5-flash:generateContent")
    _native(gw, "midstream-model:streamGenerateContent", "?alt=sse")
    gw.stop()  # flushes the analytics file
    log: Path = gw.interaction_log  # type: ignore[attr-defined]
    records = log.read_text()
    assert "api_key:[redacted]" in records  # the error field was recorded, scrubbed
    _clean(records)
    _clean(gw.logs())
