"""The chat sessions API through the real server (``python -m app``) and the fake Gemini upstream.

The client below is written the way the seed API's users write theirs: plain ``requests`` calls with
``raise_for_status`` and nothing else, so these tests prove such scripts work unchanged against the gateway.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from tests.fake_gemini.process import FakeHandle
from tests.support.gateway import GatewayHandle, start_gateway

KEYS = ["ok-sess-alpha-41c2", "ok-sess-beta-9d07"]
USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
DEFAULT_MODEL = "gemini-2.5-flash"


# -- the simple script, as its users write it ----------------------------------------------------------------


def start_chat(base: str, user_id: str, model_name: str | None = None,
               generation_config: dict[str, Any] | None = None) -> str:
    payload = {"user_id": user_id, "model_name": model_name, "generation_config": generation_config}
    response = requests.post(f"{base}/start_chat", json=payload, timeout=30)
    response.raise_for_status()
    return str(response.json()["chat_id"])


def send_message(base: str, chat_id: str, message: str) -> str:
    payload = {"chat_id": chat_id, "message": message}
    response = requests.post(f"{base}/send_message", json=payload, timeout=30)
    response.raise_for_status()
    return str(response.json()["response"])


def end_chat(base: str, chat_id: str) -> str:
    response = requests.post(f"{base}/end_chat", json={"chat_id": chat_id}, timeout=30)
    response.raise_for_status()
    return str(response.json()["message"])


def post(base: str, path: str, payload: Any = None, *, data: bytes | None = None) -> requests.Response:
    if data is not None:
        return requests.post(base + path, data=data, headers={"content-type": "application/json"}, timeout=30)
    return requests.post(base + path, json=payload, timeout=30)


def generate_calls(fake: FakeHandle) -> list[dict[str, Any]]:
    return [r for r in fake.requests() if r["path"].endswith(":generateContent")]


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > end:
            return value
        time.sleep(interval)


# -- gateways ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sessions")


@pytest.fixture(scope="module")
def users_file(folder: Path) -> Path:
    path = folder / "valid_users.txt"
    path.write_text("# who may start a chat\n" + "\n".join(USERS) + "\n\n")
    return path


@pytest.fixture(scope="module")
def gw(fake_server: FakeHandle, folder: Path, users_file: Path) -> Iterator[GatewayHandle]:
    log = folder / "interactions.jsonl"
    with start_gateway(fake_server.base_url, api_keys=KEYS, valid_users_file=str(users_file),
                       interaction_log=str(log)) as handle:
        handle.interaction_log = log  # type: ignore[attr-defined]
        yield handle


# -- the contract --------------------------------------------------------------------------------------------


def test_simple_script_start_two_messages_end(gw: GatewayHandle, fake: FakeHandle) -> None:
    chat_id = start_chat(gw.url, "alice", DEFAULT_MODEL, {"max_output_tokens": 1000, "temperature": 0.7,
                                                          "top_p": 0.9})
    first = send_message(gw.url, chat_id, "What is the capital of California?")
    second = send_message(gw.url, chat_id, "What about New Jersey?")
    assert first == "echo: What is the capital of California?"
    assert second == "echo: What about New Jersey?"
    assert isinstance(end_chat(gw.url, chat_id), str)

    calls = generate_calls(fake)
    assert len(calls) == 2
    assert calls[-1]["path"] == f"/v1beta/models/{DEFAULT_MODEL}:generateContent"
    assert calls[-1]["body"]["contents"] == [
        {"role": "user", "parts": [{"text": "What is the capital of California?"}]},
        {"role": "model", "parts": [{"text": "echo: What is the capital of California?"}]},
        {"role": "user", "parts": [{"text": "What about New Jersey?"}]},
    ]
    assert calls[-1]["api_key"] in KEYS


def test_start_chat_403(gw: GatewayHandle) -> None:
    for payload in ({}, {"user_id": ""}, {"model_name": DEFAULT_MODEL}, {"user_id": "mallory"}, ["alice"]):
        response = post(gw.url, "/start_chat", payload)
        assert response.status_code == 403, payload
        assert set(response.json()) == {"error"}
    assert post(gw.url, "/start_chat", data=b"not json").status_code == 403
    assert post(gw.url, "/start_chat", data=b"").status_code == 403


def test_start_chat_400_names_the_bad_field(gw: GatewayHandle) -> None:
    response = post(gw.url, "/start_chat", {"user_id": "bob", "generation_config": {"temprature": 0.5}})
    assert response.status_code == 400 and "generation_config.temprature" in response.json()["error"]
    response = post(gw.url, "/start_chat", {"user_id": "bob", "model_name": "../admin"})
    assert response.status_code == 400 and "model_name" in response.json()["error"]


def test_send_message_and_end_chat_404(gw: GatewayHandle, fake: FakeHandle) -> None:
    for path in ("/send_message", "/end_chat"):
        for payload in ({}, {"message": "hi"}, {"chat_id": ""}, {"chat_id": "x" * 32, "message": "hi"},
                        {"chat_id": "no/such/chat", "message": "hi"}):
            response = post(gw.url, path, payload)
            assert response.status_code == 404, (path, payload)
            assert set(response.json()) == {"error"}
        assert post(gw.url, path, data=b"{oops").status_code == 404

    chat_id = start_chat(gw.url, "bob")
    end_chat(gw.url, chat_id)
    assert post(gw.url, "/send_message", {"chat_id": chat_id, "message": "hi"}).status_code == 404
    assert post(gw.url, "/end_chat", {"chat_id": chat_id}).status_code == 404
    assert generate_calls(fake) == []


def test_third_call_within_a_second_is_429_with_retry_after(gw: GatewayHandle) -> None:
    chat_id = start_chat(gw.url, "carol")
    responses = [post(gw.url, "/send_message", {"chat_id": chat_id, "message": f"m{i}"}) for i in range(3)]
    statuses = [r.status_code for r in responses]
    assert statuses[:2] == [200, 200] and 429 in statuses, statuses
    limited = next(r for r in responses if r.status_code == 429)
    assert int(limited.headers["retry-after"]) >= 1
    assert "rate limit" in limited.json()["error"]


def test_rate_limit_is_per_user_across_sessions(gw: GatewayHandle) -> None:
    one, two = start_chat(gw.url, "dave"), start_chat(gw.url, "dave")
    other = start_chat(gw.url, "erin")
    statuses = [post(gw.url, "/send_message", {"chat_id": c, "message": "hi"}).status_code
                for c in (one, two, one)]
    assert statuses[:2] == [200, 200] and statuses[2] == 429
    assert post(gw.url, "/send_message", {"chat_id": other, "message": "hi"}).status_code == 200


def test_generation_config_and_model_reach_the_upstream(gw: GatewayHandle, fake: FakeHandle) -> None:
    chat_id = start_chat(gw.url, "frank", "models/gemini-2.5-pro",
                         {"max_output_tokens": 64, "temperature": 0.3, "topP": 0.8, "top_k": 20,
                          "stop_sequences": ["END"], "seed": 42})
    send_message(gw.url, chat_id, "hello")
    call = generate_calls(fake)[-1]
    assert call["path"] == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert call["body"]["generationConfig"] == {"maxOutputTokens": 64, "temperature": 0.3, "topP": 0.8,
                                                "topK": 20, "stopSequences": ["END"], "seed": 42}


def test_hf_prefix(gw: GatewayHandle, fake: FakeHandle) -> None:
    base = gw.url + "/hf"
    chat_id = start_chat(base, "grace")
    assert send_message(base, chat_id, "via the worker") == "echo: via the worker"
    end_chat(base, chat_id)
    assert post(base, "/send_message", {"chat_id": chat_id, "message": "hi"}).status_code == 404
    assert post(base, "/start_chat", {"user_id": "mallory"}).status_code == 403


def test_users_file_is_reloaded_without_restart(gw: GatewayHandle, users_file: Path) -> None:
    newcomer = f"new-{uuid.uuid4().hex[:8]}"
    assert post(gw.url, "/start_chat", {"user_id": newcomer}).status_code == 403
    users_file.write_text(users_file.read_text() + newcomer + "  # added while running\n")
    def accepted() -> requests.Response | None:
        response = post(gw.url, "/start_chat", {"user_id": newcomer})
        return response if response.status_code == 200 else None

    response = wait_for(accepted, timeout=5)
    assert response, "the new user was not accepted within 5 s"
    assert "chat_id" in response.json()


def test_interaction_log_line(gw: GatewayHandle) -> None:
    """The issue's JSON log line, written by the analytics exporter from the session's interaction event."""
    chat_id = start_chat(gw.url, "heidi")
    answer = send_message(gw.url, chat_id, "log me")
    log: Path = gw.interaction_log  # type: ignore[attr-defined]

    def mine() -> list[dict[str, Any]]:
        if not log.exists():
            return []
        lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.strip()]
        return [line for line in lines if line.get("chat_id") == chat_id]

    records = wait_for(mine, timeout=10)
    assert len(records) == 1, records
    record = records[0]
    assert record["user_id"] == "heidi"
    assert record["message"] == "log me"
    assert record["output_length"] == len(answer)
    assert record["model"] == DEFAULT_MODEL
    assert record["status"] == 200
    assert isinstance(record["latency_ms"], (int, float)) and record["latency_ms"] >= 0
    stamp = record["timestamp"]
    assert stamp.endswith("Z") or stamp.endswith("+00:00")
    time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")


# -- gateways of their own -----------------------------------------------------------------------------------


def test_log_messages_off_keeps_the_message_out(fake_server: FakeHandle, folder: Path,
                                                users_file: Path) -> None:
    log = folder / "quiet.jsonl"
    with start_gateway(fake_server.base_url, api_keys=KEYS, valid_users_file=str(users_file),
                       interaction_log=str(log), log_messages="false") as gw:
        chat_id = start_chat(gw.url, "ivan")
        send_message(gw.url, chat_id, "a secret")
        lines = wait_for(lambda: log.exists() and [orjson.loads(x) for x in log.read_bytes().splitlines()
                                                  if chat_id.encode() in x], timeout=10)
    assert lines and lines[0]["output_length"] == len("echo: a secret")
    assert b"a secret" not in log.read_bytes()


def test_session_expires_after_ttl(fake_server: FakeHandle, users_file: Path) -> None:
    with start_gateway(fake_server.base_url, api_keys=KEYS, valid_users_file=str(users_file),
                       session_ttl=1) as gw:
        chat_id = start_chat(gw.url, "judy")
        assert send_message(gw.url, chat_id, "quick") == "echo: quick"
        time.sleep(1.5)
        response = post(gw.url, "/send_message", {"chat_id": chat_id, "message": "too late"})
        assert response.status_code == 404
        assert "expired" in response.json()["error"]
        assert post(gw.url, "/end_chat", {"chat_id": chat_id}).status_code == 404


def test_failed_turn_leaves_history_unchanged(fake_server: FakeHandle, fake: FakeHandle,
                                              users_file: Path) -> None:
    key = f"ok-solo-{uuid.uuid4().hex[:8]}"
    with start_gateway(fake_server.base_url, api_keys=[key], valid_users_file=str(users_file),
                       max_retries=1) as gw:
        chat_id = start_chat(gw.url, "alice")
        assert send_message(gw.url, chat_id, "first") == "echo: first"
        time.sleep(1.0)  # keep clear of the rate limit: this test is about history
        fake.script(key, "internal", times=1)
        failed = post(gw.url, "/send_message", {"chat_id": chat_id, "message": "LOST TURN"})
        assert failed.status_code == 500 and set(failed.json()) == {"error"}
        assert key not in failed.text
        assert send_message(gw.url, chat_id, "second") == "echo: second"
    last = generate_calls(fake)[-1]["body"]
    assert last["contents"] == [
        {"role": "user", "parts": [{"text": "first"}]},
        {"role": "model", "parts": [{"text": "echo: first"}]},
        {"role": "user", "parts": [{"text": "second"}]},
    ]
    assert "LOST TURN" not in orjson.dumps(last).decode()


def test_redis_backed_sessions(fake_server: FakeHandle, fake: FakeHandle, folder: Path) -> None:
    """The same script over REDIS_URL: sessions and the rate limit live in Redis (CI starts one)."""
    user = f"redis-{uuid.uuid4().hex[:8]}"
    users = folder / "redis_users.txt"
    users.write_text(user + "\n")
    keys = [f"ok-redis-{uuid.uuid4().hex[:8]}"]
    with start_gateway(fake_server.base_url, api_keys=keys, valid_users_file=str(users),
                       redis_url="redis://127.0.0.1:6379/0") as gw:
        chat_id = start_chat(gw.url, user)
        assert send_message(gw.url, chat_id, "one") == "echo: one"
        assert send_message(gw.url, chat_id, "two") == "echo: two"
        assert post(gw.url, "/send_message", {"chat_id": chat_id, "message": "three"}).status_code == 429
        assert generate_calls(fake)[-1]["body"]["contents"][:2] == [
            {"role": "user", "parts": [{"text": "one"}]}, {"role": "model", "parts": [{"text": "echo: one"}]}]
        end_chat(gw.url, chat_id)
        assert post(gw.url, "/end_chat", {"chat_id": chat_id}).status_code == 404
