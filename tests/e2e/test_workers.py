"""``WORKERS=2``: one gateway, two uvicorn worker processes, with and without Redis.

What one worker learns about a key (invalid, out of its daily quota) or what the operator does to it, the
other honours. Without Redis that travels through the master's bus file and holds at the very next pick; with
Redis, through Redis (each worker its own link and subscription), within its stated staleness bound, which the
tests await by watching each worker's /health rather than by sleeping.

Which worker answers is the kernel's choice (the workers share one listening socket); every request here
opens a new connection, and /health names the worker's pid, so a test can see both workers and ask each.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.fake_gemini.process import FakeHandle
from tests.support.gateway import ADMIN_TOKEN, ROOT, GatewayHandle, free_port, gateway_env, start_gateway

REDIS_URL = "redis://127.0.0.1:6379/0"
MODEL = "gemini-2.5-flash"
#: Bounds: seconds to await both workers' /health, requests in the concurrent load, their concurrency.
WAIT, LOAD, THREADS = 30.0, 120, 8


def chat(gw: GatewayHandle, text: str) -> requests.Response:
    return requests.post(gw.v1 + "/chat/completions", headers=gw.headers(), timeout=30,
                         json={"model": MODEL, "messages": [{"role": "user", "content": text}]})


def used(fake: FakeHandle, key: str) -> int:
    return sum(1 for r in fake.requests(key) if r["path"].endswith(":generateContent"))


def per_worker(gw: GatewayHandle, until: Callable[[dict], bool] = lambda h: True) -> dict[int, dict]:
    """Each worker's /health (new connections until both answered, each meeting ``until``; a worker still
    starting on a loaded machine is awaited up to ``WAIT`` seconds)."""
    seen: dict[int, dict] = {}
    end = time.monotonic() + WAIT
    while time.monotonic() < end:
        health = gw.health()
        if until(health):
            seen[health["worker"]["pid"]] = health
        if len(seen) == 2:
            return seen
        time.sleep(0.01)  # poll interval
    raise AssertionError(f"not both workers answered as awaited within {WAIT} s: {seen}")


def load(gw: GatewayHandle) -> list[int]:
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(lambda i: chat(gw, f"load {i}").status_code, range(LOAD)))


def admin(gw: GatewayHandle, path: str) -> requests.Response:
    return requests.post(gw.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)


def _found_by_one_never_used_by_other(fake: FakeHandle, behaviour: str, state: str, **settings: object) -> None:
    tag = uuid.uuid4().hex[:12]
    bad = f"{behaviour}-{tag}"
    with start_gateway(fake.base_url, api_keys=[f"ok-a-{tag}", f"ok-b-{tag}", bad], workers=2,
                       **settings) as gw:
        assert {h["worker"]["of"] for h in per_worker(gw).values()} == {2}
        for i in range(30):  # one worker's round-robin meets the key within three of its picks
            assert chat(gw, f"warm {i}").status_code == 200
            if used(fake, bad):
                break
        assert used(fake, bad) == 1
        if settings.get("redis_url"):
            per_worker(gw, until=lambda h: h["keys"][state] == 1)  # Redis: within its bound, awaited here
        # Without Redis nothing is awaited: the other worker's next pick reads the bus.
        assert load(gw) == [200] * LOAD  # no request lost
        assert used(fake, bad) == 1  # and none went to the key: unshared, the other worker would have tried it
        assert all(h["keys"][state] == 1 for h in per_worker(gw).values())


@pytest.mark.parametrize(("behaviour", "state"), [("invalid", "disabled"), ("rpd", "cooling")])
def test_a_key_found_bad_by_one_worker_is_never_used_by_the_other(fake: FakeHandle, behaviour: str,
                                                                   state: str) -> None:
    _found_by_one_never_used_by_other(fake, behaviour, state)


def test_a_key_found_invalid_is_never_used_by_the_other_worker_with_redis(fake: FakeHandle) -> None:
    _found_by_one_never_used_by_other(fake, "invalid", "disabled", redis_url=REDIS_URL)


@pytest.mark.parametrize("redis_url", [None, REDIS_URL], ids=["memory", "redis"])
def test_an_operator_disable_and_enable_apply_to_both_workers(fake: FakeHandle, redis_url: str | None) -> None:
    tag = uuid.uuid4().hex[:12]
    keys = [f"ok-a-{tag}", f"ok-b-{tag}", f"ok-c-{tag}"]
    with start_gateway(fake.base_url, api_keys=keys, workers=2, redis_url=redis_url) as gw:
        listed = requests.get(gw.url + "/admin/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                              timeout=10).json()["keys"]
        target = next(k["id"] for k in listed if k["id"].startswith("ok-c"))
        assert admin(gw, f"/admin/keys/{target}/disable").status_code == 200  # answered by one worker
        per_worker(gw, until=lambda h: h["keys"]["disabled"] == 1)
        before = used(fake, keys[2])
        assert load(gw) == [200] * LOAD
        assert used(fake, keys[2]) == before
        assert admin(gw, f"/admin/keys/{target}/enable").status_code == 200
        per_worker(gw, until=lambda h: h["keys"]["disabled"] == 0)
        assert load(gw) == [200] * LOAD
        assert used(fake, keys[2]) > before


def test_the_durable_admin_api_disable_reaches_both_workers_by_their_poll(fake: FakeHandle) -> None:
    tag = uuid.uuid4().hex[:12]
    keys = [f"ok-a-{tag}", f"ok-b-{tag}", f"ok-c-{tag}"]
    with start_gateway(fake.base_url, api_keys=keys, workers=2, state_poll_interval=0.2) as gw:
        per_worker(gw)
        rows = requests.get(gw.url + "/admin/api/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                            timeout=10).json()["keys"]
        target = next(k["id"] for k in rows if k["id"].startswith("ok-c"))
        assert admin(gw, f"/admin/api/keys/{target}/disable").status_code == 200
        per_worker(gw, until=lambda h: h["keys"]["total"] == 2)  # out of both pools (the version poll)
        before = used(fake, keys[2])
        assert load(gw) == [200] * LOAD
        assert used(fake, keys[2]) == before


@pytest.mark.parametrize("where", ["not-a-directory", "full-disk"])
def test_a_data_dir_that_cannot_hold_the_bus_stops_start_up_with_one_clear_message(tmp_path, where: str) -> None:
    # Not a traceback, not workers started without a bus: one line naming what is needed, exit status 2.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    data_dir = blocker / "data" if where == "not-a-directory" else tmp_path
    env = gateway_env(None, api_keys=["ok-a"], workers=2, data_dir=str(data_dir), port=free_port())
    # A file-size limit of 0 makes the 16-byte header's write fail as a full disk does (EFBIG for ENOSPC).
    limit = (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))) if where == "full-disk" else None
    done = subprocess.run([sys.executable, "-m", "app"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, preexec_fn=limit)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "needs a writable DATA_DIR for the workers' bus file" in done.stderr
    assert not list(tmp_path.glob("workers-*.bus"))  # nothing left behind
