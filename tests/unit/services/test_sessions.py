"""SessionService end to end in process: a stub upstream client, the memory store, a fake clock.

The real-server tests are in tests/e2e/test_sessions.py; these pin the decisions that are awkward to provoke
through the fake (pool states, store outages, concurrency, the exact event).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.errors import AllKeysDisabled, NoKeysConfigured, PoolRateLimited
from app.keys import OK_OUTCOME, Outcome, OutcomeKind
from app.observability.events import Interaction
from app.services.replies import JsonReply
from app.services.sessions import SessionService
from app.sessions import (
    Limits,
    MemoryRateLimiter,
    MemorySessionStore,
    RedisRateLimiter,
    RedisSessionStore,
    Saved,
    StoreUnavailable,
    ValidUsers,
)
from app.upstream import UpstreamResponse, UpstreamUnavailable
from tests.unit.sessions.redis_support import REDIS_URL, redis_prefix

NOW = 1_750_000_000.0
RAW_KEY = "ok-secret-key-123456"

Behaviour = Callable[[dict[str, Any]], Any]


def echo(request: dict[str, Any]) -> dict[str, Any]:
    text = request["contents"][-1]["parts"][0]["text"]
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": "echo: " + text}]},
                            "finishReason": "STOP"}]}


class StubClient:
    """Records each request body; answers with ``behaviour`` (a dict is a 200 body, an exception is raised,
    an ``UpstreamResponse`` is returned as is)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.queue: list[Any] = []
        self.delay = 0.0

    async def call(self, method: str, path: str, *, model: str, body: bytes | None = None,
                   **_: Any) -> UpstreamResponse:
        assert method == "POST" and body is not None
        request = orjson.loads(body)
        self.requests.append(request)
        self.paths.append(path)
        if self.delay:
            await asyncio.sleep(self.delay)
        behaviour = self.queue.pop(0) if self.queue else echo
        result = behaviour(request) if callable(behaviour) else behaviour
        if isinstance(result, BaseException):
            raise result
        if isinstance(result, UpstreamResponse):
            return result
        return UpstreamResponse(200, "application/json", orjson.dumps(result), "key-1", OK_OUTCOME, 1)


class Events:
    enabled = True

    def __init__(self) -> None:
        self.published: list[Interaction] = []

    def publish(self, event: Interaction) -> None:
        self.published.append(event)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def error_response(status: int, message: str, outcome: Outcome | None = None) -> UpstreamResponse:
    body = orjson.dumps({"error": {"code": status, "message": message, "status": "X"}})
    return UpstreamResponse(status, "application/json", body, "key-1",
                            outcome or Outcome(OutcomeKind.TRANSIENT, status), 3)


class Harness:
    def __init__(self, tmp_path: Path, **limits: Any) -> None:
        self.users_file = tmp_path / "users.txt"
        self.users_file.write_text("alice\nbob\n")
        self.client = StubClient()
        self.events = Events()
        self.clock = Clock()
        self.store = MemorySessionStore(Limits(limits.get("ttl", 60.0), limits.get("max_per_user", 5),
                                               limits.get("max_total", 100)), wait=limits.get("wait", 5.0))
        self.service = SessionService(
            client=self.client, store=self.store, limiter=MemoryRateLimiter(2, 1.0),  # type: ignore[arg-type]
            users=ValidUsers(self.users_file, interval=0.0), events=self.events,
            default_model="gemini-2.5-flash", max_history=limits.get("max_history", 100), secrets=[RAW_KEY],
            clock=self.clock)

    async def start(self, user: str = "alice", **fields: Any) -> str:
        reply = await self.service.start_chat({"user_id": user, **fields})
        assert reply.status == 200, reply.body
        return str(orjson.loads(reply.body)["chat_id"])

    async def send(self, chat_id: str, message: str, **fields: Any) -> JsonReply:
        self.clock.now += 1.0  # a fresh rate-limit window for each call unless a test says otherwise
        return await self.service.send_message({"chat_id": chat_id, "message": message, **fields})


def body(reply: JsonReply) -> Any:
    return orjson.loads(reply.body)


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


# -- start_chat ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [None, [], "alice", {}, {"user_id": ""}, {"user_id": 7},
                                     {"user": "alice"}])
async def test_start_chat_without_user_id_is_403(h: Harness, payload: Any) -> None:
    reply = await h.service.start_chat(payload)
    assert (reply.status, body(reply)) == (403, {"error": "user_id is missing"})


async def test_start_chat_unknown_user_is_403(h: Harness) -> None:
    reply = await h.service.start_chat({"user_id": "mallory"})
    assert reply.status == 403 and "not a valid user" in body(reply)["error"]


async def test_start_chat_bad_config_is_400_naming_the_field(h: Harness) -> None:
    reply = await h.service.start_chat({"user_id": "alice", "generation_config": {"temprature": 1}})
    assert reply.status == 400 and body(reply)["error"].startswith("generation_config.temprature:")
    reply = await h.service.start_chat({"user_id": "alice", "model_name": "../../x"})
    assert reply.status == 400 and body(reply)["error"].startswith("model_name:")


async def test_start_chat_returns_an_unguessable_chat_id(h: Harness) -> None:
    ids = {await h.start() for _ in range(3)}
    assert len(ids) == 3 and all(len(i) >= 32 for i in ids)


async def test_total_cap_is_503(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_total=1)
    await h.start("alice")
    reply = await h.service.start_chat({"user_id": "bob"})
    assert reply.status == 503 and "maximum" in body(reply)["error"]


# -- send_message --------------------------------------------------------------------------------------------


async def test_conversation_carries_history_and_config(h: Harness) -> None:
    chat = await h.start(model_name="models/gemini-2.5-pro", generation_config={"max_output_tokens": 50})
    first = await h.send(chat, "What is the capital of California?")
    assert (first.status, body(first)) == (200, {"response": "echo: What is the capital of California?"})
    second = await h.send(chat, "What about New Jersey?")
    assert body(second) == {"response": "echo: What about New Jersey?"}
    assert h.client.paths == ["models/gemini-2.5-pro:generateContent"] * 2
    assert h.client.requests[1] == {
        "contents": [{"role": "user", "parts": [{"text": "What is the capital of California?"}]},
                     {"role": "model", "parts": [{"text": "echo: What is the capital of California?"}]},
                     {"role": "user", "parts": [{"text": "What about New Jersey?"}]}],
        "generationConfig": {"maxOutputTokens": 50}}


@pytest.mark.parametrize("payload", [None, [], {}, {"chat_id": ""}, {"message": "hi"}])
async def test_send_without_chat_id_is_404(h: Harness, payload: Any) -> None:
    reply = await h.service.send_message(payload)
    assert (reply.status, body(reply)) == (404, {"error": "chat_id is missing"})


@pytest.mark.parametrize("chat_id", ["x" * 32, "short", "../../etc", 42, "a b c d e f g h i j k l m n o p"])
async def test_send_to_unknown_chat_is_404(h: Harness, chat_id: Any) -> None:
    reply = await h.service.send_message({"chat_id": chat_id, "message": "hi"})
    assert reply.status == 404 and "unknown chat_id" in body(reply)["error"]
    assert h.client.requests == []


async def test_a_chat_is_its_users_only(h: Harness) -> None:
    chat = await h.start("alice")
    reply = await h.send(chat, "hi", user_id="bob")
    assert reply.status == 404 and "unknown chat_id" in body(reply)["error"]
    reply = await h.service.end_chat({"chat_id": chat, "user_id": "bob"})
    assert reply.status == 404
    assert (await h.send(chat, "hi", user_id="alice")).status == 200


@pytest.mark.parametrize("message", [None, "", "   ", 5, ["hi"]])
async def test_send_without_message_is_400(h: Harness, message: Any) -> None:
    chat = await h.start()
    reply = await h.service.send_message({"chat_id": chat, "message": message})
    assert reply.status == 400 and "message" in body(reply)["error"]


async def test_revoked_user_is_403(h: Harness) -> None:
    chat = await h.start("alice")
    h.users_file.write_text("bob\n")
    reply = await h.send(chat, "hi")
    assert reply.status == 403 and h.client.requests == []


async def test_expired_chat_is_404(h: Harness) -> None:
    chat = await h.start()
    h.clock.now += 61
    assert (await h.service.send_message({"chat_id": chat, "message": "hi"})).status == 404


async def test_rate_limit_is_per_user_across_chats(h: Harness) -> None:
    one, two, other = await h.start("alice"), await h.start("alice"), await h.start("bob")
    h.clock.now += 10
    results = [await h.service.send_message({"chat_id": c, "message": "hi"}) for c in (one, two, one)]
    assert [r.status for r in results] == [200, 200, 429]
    assert results[2].headers == {"retry-after": "1"}
    assert "at most 2 send_message calls per 1 second" in body(results[2])["error"]
    assert len(h.client.requests) == 2  # the refused call never reached the model
    assert (await h.service.send_message({"chat_id": other, "message": "hi"})).status == 200
    h.clock.now += 1.0
    assert (await h.service.send_message({"chat_id": one, "message": "hi"})).status == 200


# -- failed turns --------------------------------------------------------------------------------------------


FAILURES = [
    (error_response(500, "Internal error encountered."), 500, "upstream HTTP 500"),
    (error_response(400, f"API key not valid: {RAW_KEY}"), 500, "upstream HTTP 400"),
    (error_response(429, "Resource exhausted", Outcome(OutcomeKind.RATE_LIMITED, 429, 7.2)), 429,
     "out of quota"),
    (PoolRateLimited("all 2 keys cooling for gemini-2.5-flash", retry_after=12.0), 429, "cooling down"),
    (AllKeysDisabled("all keys disabled"), 503, "no API key"),
    (NoKeysConfigured("no keys configured"), 503, "no API key"),
    (UpstreamUnavailable("connection refused after 3 attempts"), 500, "could not be reached"),
    ({"promptFeedback": {"blockReason": "SAFETY"}}, 500, "blockReason: SAFETY"),
    (UpstreamResponse(200, "application/json", b"not json", "key-1", OK_OUTCOME, 1), 500, "not valid JSON"),
]


@pytest.mark.parametrize(("failure", "status", "says"), FAILURES)
async def test_failed_turn_leaves_history_unchanged(h: Harness, failure: Any, status: int, says: str) -> None:
    chat = await h.start()
    await h.send(chat, "first")
    h.client.queue.append(failure)
    reply = await h.send(chat, "this one fails")
    assert reply.status == status and says in body(reply)["error"]
    assert RAW_KEY not in reply.body.decode()
    retry = await h.send(chat, "again")
    assert retry.status == 200
    assert h.client.requests[-1]["contents"] == [
        {"role": "user", "parts": [{"text": "first"}]}, {"role": "model", "parts": [{"text": "echo: first"}]},
        {"role": "user", "parts": [{"text": "again"}]}]


async def test_pool_cooling_has_retry_after(h: Harness) -> None:
    chat = await h.start()
    h.client.queue.append(PoolRateLimited("cooling", retry_after=12.2))
    reply = await h.send(chat, "hi")
    assert reply.status == 429 and reply.headers == {"retry-after": "13"}
    h.client.queue.append(error_response(429, "quota", Outcome(OutcomeKind.RATE_LIMITED, 429, 7.2)))
    reply = await h.send(chat, "hi")
    assert reply.status == 429 and reply.headers == {"retry-after": "8"}


async def test_store_outage_is_a_503_in_the_error_shape(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    async def down(*_: Any) -> None:
        raise StoreUnavailable("the session store is unavailable (ConnectionError)")

    monkeypatch.setattr(h.store, "load", down)
    monkeypatch.setattr(h.store, "create", down)
    for reply in (await h.service.start_chat({"user_id": "alice"}),
                  await h.service.send_message({"chat_id": "x" * 32, "message": "hi"}),
                  await h.service.end_chat({"chat_id": "x" * 32})):
        assert reply.status == 503 and reply.headers == {"retry-after": "5"}
        assert body(reply) == {"error": "the session store is unavailable (ConnectionError)"}


async def test_unexpected_errors_are_a_500_in_the_error_shape(h: Harness,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    chat = await h.start()
    h.client.queue.append(RuntimeError("boom"))
    reply = await h.send(chat, "hi")
    assert (reply.status, body(reply)) == (500, {"error": "internal error"})


# -- history cap, concurrency, end_chat ----------------------------------------------------------------------


async def test_history_cap(tmp_path: Path) -> None:
    h = Harness(tmp_path, max_history=4)
    chat = await h.start()
    for i in range(4):
        await h.send(chat, f"m{i}")
    sent = h.client.requests[-1]["contents"]
    assert [c["parts"][0]["text"] for c in sent] == ["m1", "echo: m1", "m2", "echo: m2", "m3"]


async def test_concurrent_turns_of_one_chat_are_serialised(h: Harness) -> None:
    chat = await h.start()
    h.client.delay = 0.05
    h.clock.now += 5
    first, second = await asyncio.gather(h.service.send_message({"chat_id": chat, "message": "one"}),
                                         h.service.send_message({"chat_id": chat, "message": "two"}))
    assert first.status == second.status == 200
    assert [len(r["contents"]) for r in h.client.requests] == [1, 3]  # the second saw the first exchange
    final = await h.store.load(chat, h.clock.now)
    assert final is not None and len(final.history) == 4


async def test_end_chat(h: Harness) -> None:
    chat = await h.start()
    reply = await h.service.end_chat({"chat_id": chat})
    assert reply.status == 200 and isinstance(body(reply)["message"], str)
    assert (await h.service.end_chat({"chat_id": chat})).status == 404
    assert (await h.send(chat, "hi")).status == 404
    assert (await h.service.end_chat({})).status == 404
    assert (await h.service.end_chat(None)).status == 404


# -- the interaction event -----------------------------------------------------------------------------------


async def test_one_event_per_turn_with_the_session_fields(h: Harness) -> None:
    chat = await h.start("alice", model_name="gemini-2.5-pro")
    await h.send(chat, "hello")
    h.client.queue.append(error_response(500, "Internal"))
    await h.send(chat, "fails")
    h.clock.now += 0.1
    await h.service.send_message({"chat_id": chat, "message": "rate limited?"})
    await h.service.send_message({"chat_id": chat, "message": "rate limited!"})
    ok, failed, limited_ok = h.events.published[:3]
    assert len(h.events.published) == 3  # the 429 published nothing: it never reached the model
    assert (ok.surface, ok.model, ok.status, ok.user_id, ok.session_id, ok.key_id) == (
        "session", "gemini-2.5-pro", 200, "alice", chat, "key-1")
    assert (ok.message, ok.output_text, ok.error) == ("hello", "echo: hello", None)
    assert ok.request == h.client.requests[0] and ok.response is not None
    assert ok.finished >= ok.started
    assert (failed.status, failed.message, failed.output_text, failed.response) == (500, "fails", "", None)
    assert failed.error and "Internal" in failed.error
    assert limited_ok.status == 200


async def test_no_event_when_the_sink_is_disabled(h: Harness) -> None:
    h.events.enabled = False
    chat = await h.start()
    await h.send(chat, "hello")
    assert h.events.published == []


# -- busy chats, departed clients, idempotent turns (issue 12, items 4 and 5) -------------------------------


def texts(history: list[dict[str, Any]]) -> list[str]:
    return [c["parts"][0]["text"] for c in history]


async def history_of(h: Harness, chat: str) -> list[str]:
    session = await h.store.load(chat, h.clock.now)
    assert session is not None
    return texts(session.history)


async def test_a_retried_turn_id_is_answered_from_the_store(h: Harness) -> None:
    chat = await h.start()
    first = await h.send(chat, "hello", turn_id="turn-1")
    again = await h.send(chat, "hello", turn_id="turn-1")
    assert first.status == again.status == 200 and body(again) == body(first) == {"response": "echo: hello"}
    assert len(h.client.requests) == 1  # the retry never reached the model
    assert await history_of(h, chat) == ["hello", "echo: hello"]


async def test_the_idempotency_key_header_is_a_turn_id(h: Harness) -> None:
    chat = await h.start()
    h.clock.now += 1
    first = await h.service.send_message({"chat_id": chat, "message": "hi"}, idempotency_key="k-1")
    h.clock.now += 1
    again = await h.service.send_message({"chat_id": chat, "message": "hi", "turn_id": "k-1"})
    assert first.status == again.status == 200 and len(h.client.requests) == 1


async def test_a_turn_id_reused_for_another_message_is_409(h: Harness) -> None:
    chat = await h.start()
    assert (await h.send(chat, "one", turn_id="t")).status == 200
    reused = await h.send(chat, "two", turn_id="t")
    assert reused.status == 409 and "different message" in body(reused)["error"]
    assert await history_of(h, chat) == ["one", "echo: one"]


@pytest.mark.parametrize(("fields", "key", "names"), [({"turn_id": 5}, None, "turn_id"),
                                                       ({"turn_id": "a b"}, None, "turn_id"),
                                                       ({}, "x" * 200, "Idempotency-Key"),
                                                       ({"turn_id": "a"}, "b", "differ")])
async def test_bad_turn_ids_are_400_naming_the_field(h: Harness, fields: dict[str, Any], key: str | None,
                                                     names: str) -> None:
    chat = await h.start()
    h.clock.now += 1
    reply = await h.service.send_message({"chat_id": chat, "message": "m", **fields}, idempotency_key=key)
    assert reply.status == 400 and names in body(reply)["error"] and not h.client.requests


async def test_a_second_message_waits_a_bounded_time_then_is_busy(tmp_path: Path) -> None:
    h = Harness(tmp_path, wait=0.2)
    chat = await h.start()
    h.client.delay = 1.0
    h.clock.now += 5
    first, second = await asyncio.gather(h.service.send_message({"chat_id": chat, "message": "slow"}),
                                         h.service.send_message({"chat_id": chat, "message": "next"}))
    assert first.status == 200
    assert second.status == 409 and second.headers["retry-after"] == "1"
    assert "still being answered" in body(second)["error"]
    assert len(h.client.requests) == 1 and await history_of(h, chat) == ["slow", "echo: slow"]


async def test_the_same_turn_sent_twice_at_once_runs_once(h: Harness) -> None:
    chat = await h.start()
    h.client.delay = 0.1
    h.clock.now += 5
    payload = {"chat_id": chat, "message": "once", "turn_id": "dup"}
    first, second = await asyncio.gather(h.service.send_message(payload), h.service.send_message(payload))
    assert first.status == second.status == 200 and body(first) == body(second)
    assert len(h.client.requests) == 1 and await history_of(h, chat) == ["once", "echo: once"]


async def test_a_waiting_turn_whose_client_left_is_never_run(h: Harness) -> None:
    chat = await h.start()
    h.client.delay = 0.3
    h.clock.now += 5
    left = asyncio.Event()
    running = asyncio.create_task(h.service.send_message({"chat_id": chat, "message": "first"}))
    waiting = asyncio.create_task(h.service.send_message({"chat_id": chat, "message": "ABANDONED"},
                                                         left=left))
    await asyncio.sleep(0.05)
    left.set()
    assert (await waiting).status == 499
    assert (await running).status == 200
    assert [r["contents"][-1]["parts"][0]["text"] for r in h.client.requests] == ["first"]
    assert await history_of(h, chat) == ["first", "echo: first"]
    assert len(h.store._locks) == 0  # nothing left holding or waiting


async def test_a_turn_whose_client_left_during_the_model_call_is_not_kept(h: Harness) -> None:
    chat = await h.start()
    h.client.delay = 0.2
    left = asyncio.Event()
    h.clock.now += 1
    turn = asyncio.create_task(h.service.send_message({"chat_id": chat, "message": "gone"}, left=left))
    await asyncio.sleep(0.05)
    left.set()
    assert (await turn).status == 499
    assert len(h.client.requests) == 1 and await history_of(h, chat) == []
    assert h.events.published[-1].status == 499


@pytest.mark.parametrize("refusal", [Saved.LOST, Saved.STALE])
async def test_a_refused_save_is_503_and_changes_nothing(h: Harness, monkeypatch: pytest.MonkeyPatch,
                                                         refusal: Saved) -> None:
    chat = await h.start()

    async def refused(*_: Any, **__: Any) -> Saved:
        return refusal

    monkeypatch.setattr(h.store, "save_history", refused)
    reply = await h.send(chat, "m")
    assert reply.status == 503 and reply.headers["retry-after"] == "1"
    assert "nothing was kept" in body(reply)["error"]
    assert await history_of(h, chat) == []


async def test_a_store_failure_during_the_save_is_503_and_says_nothing_was_kept(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    chat = await h.start()

    async def down(*_: Any, **__: Any) -> Saved:
        raise StoreUnavailable("the session store is unavailable (TimeoutError)")

    monkeypatch.setattr(h.store, "save_history", down)
    reply = await h.send(chat, "m")
    assert reply.status == 503 and "nothing was kept" in body(reply)["error"]
    assert reply.headers["retry-after"] == "5"


async def test_with_the_redis_store_turns_resend_the_stored_history_and_events_stay_plain_json(
        tmp_path: Path) -> None:
    """The Redis store hands stored turns out unparsed (orjson Fragments): the upstream request still carries
    the whole capped history, and an event that ships bodies gets plain JSON equal to what was sent."""
    async with redis_prefix() as prefix:
        h = Harness(tmp_path)
        store = RedisSessionStore(REDIS_URL, Limits(60.0, 5, 100), prefix=prefix)
        limiter = RedisRateLimiter(REDIS_URL, 100, 1.0, prefix=prefix + "rl:")
        h.store = store  # type: ignore[assignment]
        h.service = SessionService(client=h.client, store=store, limiter=limiter,  # type: ignore[arg-type]
                                   users=ValidUsers(h.users_file, interval=0.0), events=h.events,
                                   default_model="gemini-2.5-flash", max_history=4, clock=h.clock)
        try:
            chat = await h.start()
            for i in range(2):
                assert (await h.send(chat, f"m{i}")).status == 200
            assert h.events.published[-1].request == {}  # no exporter wants bodies: nothing decoded
            h.events.wants_bodies = True  # type: ignore[attr-defined]
            assert (await h.send(chat, "m2")).status == 200
            assert texts(h.client.requests[-1]["contents"]) == ["m0", "echo: m0", "m1", "echo: m1", "m2"]
            event = h.events.published[-1]
            assert event.request == h.client.requests[-1]  # plain JSON values: no Fragment for redaction
            assert await history_of(h, chat) == ["m1", "echo: m1", "m2", "echo: m2"]
        finally:
            await h.service.stop()
