"""Chat sessions on a bad day, through the real server: Redis killed and restarted with its AOF while chats
are mid-turn, Redis stalled while a turn saves, a replica killed while it holds a chat's lease, a client that
gives up while its turn waits (issue 12, items 4 and 5).

Each test starts its OWN redis-server on a free loopback port in a temp dir (never the shared one on 6379),
with ``--appendfsync always`` so that every answered turn survives the kill and the test can demand each turn
exactly once. Every call has a client timeout, so a call that hangs fails the test instead of stalling it.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from tests.fake_gemini.process import FakeHandle
from tests.support.gateway import start_gateway
from tests.support.own_redis import OwnRedis

CALL_TIMEOUT = 20.0  # far above the gateway's few seconds of waiting, far below a TIME_OUT-long hang
ANSWERED = {200, 409, 503}  # success, busy, store unavailable: never a 500, never a hang


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def users(tmp_path: Path) -> tuple[Path, list[str]]:
    names = [f"u{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    path = tmp_path / "users.txt"
    path.write_text("\n".join(names) + "\n")
    return path, names


@pytest.fixture
def slow_key(fake: FakeHandle) -> str:
    """A key whose answers take 1 s, so turns are mid-flight when the fault strikes."""
    key = f"slow-{uuid.uuid4().hex[:8]}"
    fake.script(key, "slow", delay=1.0)
    return key


def post(base: str, path: str, payload: dict[str, Any], headers: dict[str, str] | None = None,
         timeout: float = CALL_TIMEOUT) -> requests.Response:
    return requests.post(base + path, json=payload, headers=headers, timeout=timeout)


def start_chat(base: str, user: str) -> str:
    response = post(base, "/start_chat", {"user_id": user})
    assert response.status_code == 200, response.text
    return str(response.json()["chat_id"])


@contextmanager
def running(target: Any, *args: Any) -> Iterator[threading.Thread]:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        thread.join(60)
        assert not thread.is_alive(), "a client thread hung"


def test_redis_killed_and_restarted_with_aof_mid_turn(fake: FakeHandle, own_redis: OwnRedis,
                                                       users: tuple[Path, list[str]], slow_key: str) -> None:
    users_file, names = users
    with start_gateway(fake.base_url, api_keys=[slow_key], valid_users_file=str(users_file),
                       redis_url=own_redis.url, user_rate_limit=100) as gw:
        chats = [start_chat(gw.url, name) for name in names]
        statuses: list[int] = []
        failures: list[str] = []
        lock = threading.Lock()

        def converse(index: int, chat_id: str) -> None:
            """Three messages, each retried as told until it is answered; even chats name their turns."""
            try:
                for n in range(3):
                    message = f"chat{index}-m{n}"
                    payload: dict[str, Any] = {"chat_id": chat_id, "message": message}
                    if index % 2 == 0:
                        payload["turn_id"] = f"{chat_id[:8]}-{n}"
                    end = time.monotonic() + 45
                    while True:
                        try:
                            response = post(gw.url, "/send_message", payload)
                        except requests.ConnectionError as exc:  # not expected: the gateway stays up
                            with lock:
                                failures.append(f"{message}: {exc!r}")
                            return
                        with lock:
                            statuses.append(response.status_code)
                        if response.status_code == 200:
                            assert response.json() == {"response": f"echo: {message}"}
                            break
                        if response.status_code not in ANSWERED or time.monotonic() > end:
                            with lock:
                                failures.append(f"{message}: {response.status_code} {response.text}")
                            return
                        assert set(response.json()) == {"error"}
                        time.sleep(float(response.headers.get("retry-after", "1")) / 4)
            except Exception as exc:  # noqa: BLE001 - reported below, in the main thread
                with lock:
                    failures.append(f"chat {index}: {exc!r}")

        threads = [threading.Thread(target=converse, args=(i, chat), daemon=True)
                   for i, chat in enumerate(chats)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)   # every chat's first turn is waiting for the model
        own_redis.kill()
        time.sleep(1.5)   # the model answers while Redis is gone: saves fail, clients get 503 and retry
        own_redis.start()  # same port, same AOF
        for thread in threads:
            thread.join(90)
            assert not thread.is_alive(), "a client hung"
        assert not failures, failures
        assert any(status != 200 for status in statuses), "the fault struck no turn: the test proved nothing"
        for index, chat_id in enumerate(chats):  # each turn exactly once, in order
            expected = [text for n in range(3) for text in (f"chat{index}-m{n}", f"echo: chat{index}-m{n}")]
            assert own_redis.history(chat_id) == expected
        assert "Traceback" not in gw.logs()


def test_a_turn_answered_503_during_a_redis_stall_is_never_stored(
        fake: FakeHandle, own_redis: OwnRedis, users: tuple[Path, list[str]], slow_key: str) -> None:
    """The save is sent while Redis is stopped; the client gets 503 and retries as told (no turn id). When
    Redis wakes up the queued save must not land, or the retry would put the message in twice."""
    users_file, names = users
    with start_gateway(fake.base_url, api_keys=[slow_key], valid_users_file=str(users_file),
                       redis_url=own_redis.url, user_rate_limit=100) as gw:
        chat_id = start_chat(gw.url, names[2])
        payload = {"chat_id": chat_id, "message": "said once"}
        answers: list[requests.Response] = []
        with running(lambda: answers.append(post(gw.url, "/send_message", payload))):
            time.sleep(0.5)  # the turn has read the history and waits for the model
            own_redis.pause()
            try:
                time.sleep(4.5)  # the save goes out and times out (and so does its one retry): 503
            finally:
                own_redis.resume()
        assert answers[0].status_code == 503, answers[0].text
        assert "nothing was kept" in answers[0].json()["error"]
        retry = post(gw.url, "/send_message", payload)
        assert retry.status_code == 200, retry.text
    assert own_redis.history(chat_id) == ["said once", "echo: said once"]


def test_a_replica_killed_mid_turn_blocks_its_chat_for_seconds_only(
        fake: FakeHandle, own_redis: OwnRedis, users: tuple[Path, list[str]], slow_key: str) -> None:
    users_file, names = users
    settings: dict[str, Any] = {"api_keys": [slow_key], "valid_users_file": str(users_file),
                                "redis_url": own_redis.url, "user_rate_limit": 100}
    with (start_gateway(fake.base_url, **settings) as doomed,
          start_gateway(fake.base_url, **settings) as other):
        chat_id = start_chat(doomed.url, names[0])

        def lost_turn() -> None:
            with pytest.raises(requests.ConnectionError):
                post(doomed.url, "/send_message", {"chat_id": chat_id, "message": "DIES WITH ITS REPLICA"})

        with running(lost_turn):
            time.sleep(0.5)  # the turn holds the chat's lease and waits for the model
            doomed.stop(signal.SIGKILL)
        statuses = []
        while True:  # the lease lapses within seconds: busy answers come fast, then the turn runs
            response = post(other.url, "/send_message", {"chat_id": chat_id, "message": "after"})
            statuses.append(response.status_code)
            if response.status_code != 409:
                break
            time.sleep(float(response.headers["retry-after"]))
            assert len(statuses) < 15, statuses
        assert response.status_code == 200, response.text
        assert own_redis.history(chat_id) == ["after", "echo: after"]


def test_a_waiting_turn_whose_client_gave_up_is_dropped(fake: FakeHandle, users: tuple[Path, list[str]],
                                                        slow_key: str) -> None:
    users_file, names = users
    with start_gateway(fake.base_url, api_keys=[slow_key], valid_users_file=str(users_file),
                       user_rate_limit=100) as gw:
        chat_id = start_chat(gw.url, names[0])
        first: list[requests.Response] = []
        one = {"chat_id": chat_id, "message": "one"}
        with running(lambda: first.append(post(gw.url, "/send_message", one))):
            time.sleep(0.3)  # "one" holds the chat and waits for the model
            with pytest.raises(requests.Timeout):  # this client gives up while its turn waits, and leaves
                post(gw.url, "/send_message", {"chat_id": chat_id, "message": "ABANDONED"}, timeout=0.3)
        assert first[0].status_code == 200
        time.sleep(0.5)  # were it still queued, the abandoned turn would run now
        second = post(gw.url, "/send_message", {"chat_id": chat_id, "message": "two"})
        assert second.json() == {"response": "echo: two"}
    sent = [r["body"]["contents"][-1]["parts"][0]["text"] for r in fake.requests(slow_key)
            if r["path"].endswith(":generateContent")]
    assert sent == ["one", "two"]
    last = [r for r in fake.requests(slow_key) if r["path"].endswith(":generateContent")][-1]
    assert "ABANDONED" not in orjson.dumps(last["body"]).decode()


def test_a_retried_turn_id_is_answered_from_the_store_over_http(fake: FakeHandle, own_redis: OwnRedis,
                                                                 users: tuple[Path, list[str]]) -> None:
    users_file, names = users
    key = f"ok-idem-{uuid.uuid4().hex[:8]}"
    with start_gateway(fake.base_url, api_keys=[key], valid_users_file=str(users_file),
                       redis_url=own_redis.url, user_rate_limit=100) as gw:
        chat_id = start_chat(gw.url, names[1])
        payload = {"chat_id": chat_id, "message": "only once"}
        headers = {"Idempotency-Key": "3f7c1a52-9e1b-4c3e-8f0a-2d6b9e4f1c88"}
        first = post(gw.url, "/send_message", payload, headers)
        retry = post(gw.url, "/send_message", payload, headers)
        assert first.status_code == retry.status_code == 200 and retry.json() == first.json()
        reused = post(gw.url, "/send_message", {**payload, "message": "another"}, headers)
        assert reused.status_code == 409 and set(reused.json()) == {"error"}
        bad = post(gw.url, "/send_message", {**payload, "turn_id": "has spaces"})
        assert bad.status_code == 400 and "turn_id" in bad.json()["error"]
    assert own_redis.history(chat_id) == ["only once", "echo: only once"]
    assert len([r for r in fake.requests(key) if r["path"].endswith(":generateContent")]) == 1
