"""Streams that fail honestly, disconnects that cancel, keys that heal, shutdowns that let streams finish."""

from __future__ import annotations

import signal
import threading
import time

import openai
import pytest
import requests

from tests.support.gateway import TOKEN, start_gateway

MSG = [{"role": "user", "content": "one two three four five six seven eight nine ten"}]


def sdk(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TOKEN, max_retries=0, timeout=30)


def consume(gw) -> tuple[str, list[str | None]]:
    text, finishes = "", []
    for chunk in sdk(gw).chat.completions.create(model="gemini-2.5-flash", messages=MSG, stream=True):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finishes.append(chunk.choices[0].finish_reason)
    return text, finishes


def wait_for(predicate, timeout: float = 10.0) -> bool:
    """Poll a condition (bounded); the tests assert on the condition, never on how long it took."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize("behaviour,params", [
    ("midstream", {}),                      # data: {"error": ...} after partial text
    ("truncated", {}),                      # the stream closes without a finishReason
    ("truncated", {"abort": True}),         # the connection is reset mid-body
])
def test_stream_failures_reach_the_sdk_as_errors(fake, behaviour, params):
    with start_gateway(fake.base_url, api_keys=["ok-s1"]) as gw:
        fake.script("ok-s1", behaviour, **params)
        seen: list[str] = []
        with pytest.raises(openai.APIError):
            for chunk in sdk(gw).chat.completions.create(model="gemini-2.5-flash", messages=MSG, stream=True):
                if chunk.choices:
                    seen.append(chunk.choices[0].finish_reason or "")
                    assert chunk.choices[0].finish_reason != "stop"  # never a fake clean ending
        assert "stop" not in seen


def test_midstream_error_event_shape(fake):
    with start_gateway(fake.base_url, api_keys=["midstream-m1"]) as gw:
        resp = requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), timeout=30,
                             json={"model": "gemini-2.5-flash", "messages": MSG, "stream": True})
        events = [e for e in resp.text.split("\n\n") if e.strip()]
        assert events[-1].startswith('data: {"error"')
        assert "[DONE]" not in resp.text
        assert "high demand" in events[-1]  # Gemini's own message reaches the client
        # A 503 mid-stream is classified as usual: retried elsewhere next time, never held against the key.
        assert gw.health()["keys"]["active"] == 1


def test_read_timeout_mid_stream_is_an_error(fake):
    with start_gateway(fake.base_url, api_keys=["ok-t1"], read_timeout=0.5) as gw:
        fake.script("ok-t1", "ok", chunk_delay=3.0)
        with pytest.raises(openai.APIError):
            consume(gw)


def test_failure_before_commit_is_retried_invisibly(fake):
    with start_gateway(fake.base_url, api_keys=["ok-u1", "ok-u2"]) as gw:
        fake.script("ok-u1", "unavail", times=1)
        fake.script("ok-u2", "unavail", times=1)
        text, finishes = consume(gw)
        assert text == "echo: " + MSG[0]["content"] and finishes[-1] == "stop"
        assert len(fake.requests()) == 3


def test_client_disconnect_cancels_upstream(fake):
    with start_gateway(fake.base_url, api_keys=["ok-d1"]) as gw:
        fake.script("ok-d1", "ok", chunk_delay=0.5)
        resp = requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), stream=True, timeout=30,
                             json={"model": "gemini-2.5-flash", "stream": True,
                                   "messages": [{"role": "user", "content": "[[long]] tell me everything"}]})
        first = next(resp.iter_lines())
        assert first.startswith(b"data: ")
        resp.close()                                  # the client goes away mid-stream
        assert wait_for(lambda: fake.stats()["disconnects"] >= 1)
        assert fake.stats()["open_streams"] == 0
        keys = gw.health()["keys"]
        assert keys["active"] == 1                    # a departed client is not the key's fault


def test_disabled_keys_are_probed_back_and_cooling_keys_are_not(fake):
    with start_gateway(fake.base_url, api_keys=["ok-p1", "rpm-p2"], check_interval=0.3, max_wait=0) as gw:
        fake.script("ok-p1", "invalid", times=2)      # the request, then the first probe, fail
        r = requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), timeout=30,
                          json={"model": "gemini-2.5-flash", "messages": MSG})
        assert r.status_code == 429                   # ok-p1 disabled, rpm-p2 cooling
        assert wait_for(lambda: gw.health()["keys"]["active"] == 1)
        assert gw.health()["prober"]["revived"] == 1
        r = requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), timeout=30,
                          json={"model": "gemini-2.5-flash", "messages": MSG})
        assert r.status_code == 200
        probes = [q for q in fake.requests() if q["method"] == "GET"]
        assert probes and all(q["api_key"] == "ok-p1" for q in probes)      # never the cooling key
        assert all("/models/" in q["path"] for q in probes)                # models.get: no quota spent


def test_graceful_shutdown_lets_an_open_stream_finish(fake):
    with start_gateway(fake.base_url, api_keys=["ok-g1"], shutdown_grace=20) as gw:
        fake.script("ok-g1", "ok", chunk_delay=0.2)
        result: dict[str, object] = {}

        def client() -> None:
            result["text"], result["finishes"] = consume(gw)

        thread = threading.Thread(target=client)
        thread.start()
        assert wait_for(lambda: fake.stats()["open_streams"] == 1)
        gw.process.send_signal(signal.SIGTERM)
        thread.join(30)
        assert result["text"] == "echo: " + MSG[0]["content"]
        assert result["finishes"][-1] == "stop"
        # uvicorn exits by re-raising the signal once shutdown is complete.
        assert gw.process.wait(30) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in gw.logs()
        with pytest.raises(requests.ConnectionError):  # no longer accepting
            requests.get(gw.url + "/health", timeout=2)


def test_request_body_limit(fake):
    with start_gateway(fake.base_url, api_keys=["ok-b1"], max_request_body=2048) as gw:
        r = requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), timeout=30,
                          json={"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x" * 5000}]})
        assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
        r = requests.post(gw.url + "/v1beta/models/gemini-2.5-flash:generateContent", timeout=30,
                          headers={"x-goog-api-key": TOKEN}, json={"contents": [{"parts": [{"text": "y" * 5000}]}]})
        assert r.status_code == 413
        assert fake.requests() == []
