"""Redis killed and restarted under load: clients never notice, and the gateway goes back to Redis mode.

The test starts its OWN redis-server on a free port (never the shared 6379) without persistence, so the
restarted Redis is empty: anything found there afterwards was written after the outage. The load mixes the
surfaces whose hot path touches Redis (a token with limits on chat and Anthropic messages, a conversation
header, native calls); chat sessions are left out on purpose: they answer 503 while Redis is away rather than
fork a conversation (README, Operations).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
import requests

from app.keys.affinity import affinity_hint
from tests.fake_gemini.process import FakeHandle
from tests.support.gateway import ADMIN_TOKEN, TOKEN, GatewayHandle, start_gateway
from tests.support.own_redis import OwnRedis

MODEL = "gemini-2.5-flash"
WORKERS, MAX_PER_WORKER = 4, 400  # bounded load
STEP = 20  # requests answered in each phase (before, during, after the outage)


def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.02)


def _request(gw: GatewayHandle, secret: str, i: int, tag: str) -> requests.Response:
    kind = i % 4
    text = [{"role": "user", "content": f"q{i}"}]
    if kind == 0:
        return requests.post(gw.v1 + "/chat/completions", json={"model": MODEL, "messages": text}, timeout=30,
                             headers={"Authorization": f"Bearer {secret}"})
    if kind == 1:
        return requests.post(gw.v1 + "/messages", json={"model": MODEL, "max_tokens": 32, "messages": text},
                             headers={"x-api-key": secret, "anthropic-version": "2023-06-01"}, timeout=30)
    if kind == 2:
        return requests.post(gw.v1 + "/chat/completions", json={"model": MODEL, "messages": text}, timeout=30,
                             headers={"Authorization": f"Bearer {TOKEN}", "X-Session-Id": f"conv-{tag}-{i % 3}"})
    return requests.post(f"{gw.url}/v1beta/models/{MODEL}:generateContent", headers={"x-goog-api-key": TOKEN},
                         json={"contents": [{"role": "user", "parts": [{"text": f"q{i}"}]}]}, timeout=30)


def _state(gw: GatewayHandle) -> str:
    return str(gw.health()["redis"]["state"])


def _metric(gw: GatewayHandle, name: str) -> float:
    for line in requests.get(gw.url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_redis_killed_and_restarted_mid_load_every_request_answers(fake: FakeHandle, tmp_path: Path) -> None:
    server = OwnRedis(tmp_path, durable=False)
    server.start()
    tag = uuid.uuid4().hex[:8]
    try:
        with start_gateway(fake.base_url, api_keys=[f"ok-a-{tag}", f"ok-b-{tag}"], redis_url=server.url) as gw:
            limits = {"rpm": 1_000_000, "rpd": 1_000_000, "tpm": 10**9, "tpd": 10**9, "concurrent": 1_000}
            made = requests.post(gw.url + "/admin/api/tokens", json={"name": "outage", "limits": limits},
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
            assert made.status_code == 201, made.text
            secret = made.json()["secret"]
            answers: list[int] = []
            lock = threading.Lock()
            stop = threading.Event()

            def load(worker: int) -> None:
                for n in range(MAX_PER_WORKER):
                    if stop.is_set():
                        return
                    status = _request(gw, secret, worker + WORKERS * n, tag).status_code
                    with lock:
                        answers.append(status)

            with ThreadPoolExecutor(WORKERS) as pool:
                running = [pool.submit(load, w) for w in range(WORKERS)]
                try:
                    _until(lambda: len(answers) >= STEP, "load before the outage")
                    assert _state(gw) == "healthy"
                    server.kill()
                    _until(lambda: _state(gw) != "healthy", "the gateway to notice the outage")
                    mark = len(answers)
                    _until(lambda: len(answers) >= mark + STEP, "load during the outage")
                    server.start()
                    _until(lambda: _state(gw) == "healthy", "the gateway back in Redis mode")
                    mark = len(answers)
                    _until(lambda: len(answers) >= mark + STEP, "load after the outage")
                finally:
                    stop.set()
                for done in running:
                    done.result()
            assert answers and set(answers) == {200}, sorted(set(answers))
            health = gw.health()["redis"]
            assert health["outages"] == 1 and health["errors_total"] >= 1
            assert _metric(gw, "gateway_redis_outages") == 1.0
            assert _metric(gw, 'gateway_redis_state{state="healthy"}') == 1.0
            # Back in Redis mode: the restarted (empty) Redis holds the token's counters and a new binding.
            fresh = requests.post(gw.v1 + "/chat/completions", json={"model": MODEL, "messages": [
                {"role": "user", "content": "after"}]}, headers={"Authorization": f"Bearer {TOKEN}",
                                                                 "X-Session-Id": f"after-{tag}"}, timeout=30)
            assert fresh.status_code == 200
            hint = affinity_hint({"x-session-id": f"after-{tag}"})
            with redis.Redis(port=server.port, decode_responses=True) as raw:
                _until(lambda: bool(raw.keys("gw:lim:*")) and raw.exists(f"gg:aff:{hint}") == 1,
                       "shared state written after the outage", timeout=10)
    finally:
        server.stop()
