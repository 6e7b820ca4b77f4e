"""SessionService: the chat sessions API (start_chat, send_message, end_chat) from payload to reply.

Status codes follow the seed API's contract: start_chat 403 for a missing or unknown user_id, send_message
and end_chat 404 for a missing or unknown chat_id, send_message 429 past the user's rate, 500 on errors. Where
the contract is silent the gateway says what it means rather than squeezing it into those codes
(docs/sessions.md):

* 400 for a bad ``model_name``/``generation_config``/``turn_id`` (naming the field) or a missing/empty
  ``message``;
* 403 on send_message when the chat's user was removed from the valid-users file (access is revoked at once);
* 429 with ``Retry-After`` also when every pool key is cooling (the pool, not the user, is out of quota), and
  503 when no key is usable at all or the total session cap is reached;
* 500 for every other failure of the model call (an upstream error, no answer, a blocked prompt);
* 409 with ``Retry-After`` when another message of the same chat is still being answered after a few seconds
  of waiting (the turn lease, ``app.sessions.lease``), or when a ``turn_id`` is reused for another message;
* 503 with ``Retry-After`` when the session store is unreachable or the turn lost its lease: nothing was kept.

Every error body is ``{"error": "<message>"}``. A turn's history is saved only after the model answered, under
the chat's lease, and only onto the version of the history the turn read; so a failed turn leaves the
conversation exactly as it was and a retry is clean. A turn may carry an id (``turn_id`` or an
``Idempotency-Key`` header): a retry of a turn that was stored is answered from the store. A waiting turn
whose client left is dropped before it runs; a turn whose client left while the model answered is not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.errors import NoKeyAvailable, UpstreamUnavailable
from app.keys import scrub
from app.keys.affinity import Affinity
from app.observability.events import EventSink, Interaction
from app.services.replies import JsonReply, retry_after_header
from app.sessions import (
    Begun,
    ChatBusy,
    ConfigError,
    Lease,
    Limits,
    MemoryRateLimiter,
    MemorySessionStore,
    RateLimiter,
    RedisRateLimiter,
    RedisSessionStore,
    Saved,
    Session,
    SessionLimitReached,
    SessionStore,
    StoreUnavailable,
    TurnIdError,
    TurnRecord,
    ValidUsers,
    append_exchange,
    build_request,
    digest,
    find_turn,
    looks_like_chat_id,
    new_chat_id,
    new_turn_id,
    parse_generation_config,
    parse_model_name,
    parse_turn_id,
    read_reply,
    user_turn,
    window_for,
)
from app.state.redis_link import RedisLink
from app.upstream import GeminiClient, UpstreamResponse

log = logging.getLogger("gateway.sessions")

__all__ = ["SessionService", "SessionsConfig", "build_sessions"]

_UNKNOWN_CHAT = "unknown chat_id: the chat does not exist, has ended or has expired"
_BUSY = ("another message of this chat is still being answered; send this one after it has its answer "
         "(retry after Retry-After seconds)")
_NOT_KEPT = "the session store failed during this turn, so nothing was kept; retry"
_RETRY = {"retry-after": "1"}
_MAX_ERROR_TEXT = 500


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JsonReply:
    return JsonReply.of({"error": message}, status, headers)


class SessionService:
    def __init__(self, *, client: GeminiClient, store: SessionStore, limiter: RateLimiter, users: ValidUsers,
                 events: EventSink, default_model: str, max_history: int, secrets: Sequence[str] = (),
                 clock: Callable[[], float] = time.time, affinity: Affinity | None = None) -> None:
        self._client = client
        self._affinity = affinity  # a chat stays on one key while it is healthy (implicit cache per project)
        self.store = store
        self.limiter = limiter
        self.users = users
        self._events = events
        self._default_model = default_model
        self._max_history = max_history
        self._secrets = tuple(secrets)  # raw pool keys: scrubbed from upstream messages for clients
        self._clock = clock
        self._sweeper: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.users.refresh(force=True)  # log a missing users file at start-up, not at the first request
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="sessions-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.store.close()
        await self.limiter.close()

    async def _sweep_forever(self) -> None:
        """Expired sessions are never served (lookups check), but the memory they hold is given back here."""
        interval = min(60.0, max(1.0, self.store.limits.ttl))
        while True:
            await asyncio.sleep(interval)
            try:
                now = self._clock()
                await self.store.sweep(now)
                await self.limiter.sweep(now)
            except StoreUnavailable:
                pass  # already logged by the store
            except Exception:  # noqa: BLE001 - the sweeper must outlive any one failure
                log.exception("session sweep failed")

    # -- the API ---------------------------------------------------------------------------------------------

    async def start_chat(self, payload: Any) -> JsonReply:
        try:
            return await self._start_chat(payload)
        except Exception as exc:  # noqa: BLE001 - the contract promises a 500, in our error shape
            return self._internal(exc, "start_chat")

    async def send_message(self, payload: Any, *, idempotency_key: str | None = None,
                           left: asyncio.Event | None = None) -> JsonReply:
        """``idempotency_key`` is the ``Idempotency-Key`` header; ``left`` is set when the client disconnects
        (the turn is then dropped, or not kept)."""
        try:
            return await self._send_message(payload, idempotency_key, left or asyncio.Event())
        except Exception as exc:  # noqa: BLE001
            return self._internal(exc, "send_message")

    async def end_chat(self, payload: Any) -> JsonReply:
        try:
            return await self._end_chat(payload)
        except Exception as exc:  # noqa: BLE001
            return self._internal(exc, "end_chat")

    @staticmethod
    def _internal(exc: Exception, what: str) -> JsonReply:
        if isinstance(exc, StoreUnavailable):
            # A transient outage of the shared store, said plainly; the client may retry.
            return _error(503, str(exc), {"retry-after": "5"})
        log.exception("%s failed", what)
        return _error(500, "internal error")

    async def _start_chat(self, payload: Any) -> JsonReply:
        user_id = payload.get("user_id") if isinstance(payload, dict) else None
        if not isinstance(user_id, str) or not user_id:
            return _error(403, "user_id is missing")
        if not self.users.contains(user_id):
            return _error(403, "user_id is not a valid user")
        try:
            model = parse_model_name(payload.get("model_name"), self._default_model)
            config = parse_generation_config(payload.get("generation_config"))
        except ConfigError as exc:
            return _error(400, str(exc))
        now = self._clock()
        session = Session(chat_id=new_chat_id(), user_id=user_id, model=model, generation_config=config,
                          created=now)
        try:
            evicted = await self.store.create(session, now)
        except SessionLimitReached as exc:
            return _error(503, f"{exc}; end unused chats or try again later")
        if evicted:
            log.info("user reached SESSION_MAX_PER_USER: %d least recently used chat(s) ended", len(evicted))
        return JsonReply.of({"chat_id": session.chat_id})

    async def _find(self, payload: Any, now: float) -> Session | JsonReply:
        """The payload's chat, or the 404 reply. A ``user_id`` in the payload (optional) must be the owner's:
        a chat of someone else answers exactly like an unknown one."""
        chat_id = payload.get("chat_id") if isinstance(payload, dict) else None
        if chat_id is None or chat_id == "":
            return _error(404, "chat_id is missing")
        if not looks_like_chat_id(chat_id):
            return _error(404, _UNKNOWN_CHAT)
        session = await self.store.load(chat_id, now)
        claimed = payload.get("user_id")
        if session is None or (isinstance(claimed, str) and claimed and claimed != session.user_id):
            return _error(404, _UNKNOWN_CHAT)
        return session

    async def _send_message(self, payload: Any, idempotency_key: str | None,
                            left: asyncio.Event) -> JsonReply:
        """One ``begin`` (load, rate limit, lease: one Redis round trip), the model call, one save that also
        releases the lease. The answers keep the contract's order: 404, 403, 400, a stored turn, 429."""
        now = self._clock()
        chat_id = payload.get("chat_id") if isinstance(payload, dict) else None
        if chat_id is None or chat_id == "":
            return _error(404, "chat_id is missing")
        if not looks_like_chat_id(chat_id):
            return _error(404, _UNKNOWN_CHAT)
        message = payload.get("message")
        problem: JsonReply | None = None
        turn_id: str | None = None
        if not isinstance(message, str) or not message.strip():
            problem = _error(400, "message must be a non-empty string")
        else:
            try:
                turn_id = parse_turn_id(payload.get("turn_id"), idempotency_key)
            except TurnIdError as exc:
                problem = _error(400, str(exc))
        claimed = payload.get("user_id")
        try:
            begun = await self._begin(chat_id, now, claimed if isinstance(claimed, str) and claimed else None,
                                      turn_id, problem is None, left)
        except ChatBusy:
            return _error(409, _BUSY, _RETRY)
        if begun is None:
            log.info("a waiting send_message was dropped: its client left")
            return _error(499, "the client left while the turn waited; it was not run")
        lease = begun.lease
        try:
            session = begun.session
            if session is None:
                return _error(404, _UNKNOWN_CHAT)
            if not self.users.contains(session.user_id):
                return _error(403, "this chat's user_id is no longer a valid user")
            if problem is not None:
                return problem
            assert isinstance(message, str)
            if turn_id is not None and (stored := self._stored(session, turn_id, message)) is not None:
                return stored  # a retry of a stored turn (or the same turn sent twice at once): not run again
            if begun.wait is not None:
                per = f"{self.limiter.window:g} second" + ("" if self.limiter.window == 1 else "s")
                refusal = f"rate limit exceeded: at most {self.limiter.limit} send_message calls per {per} per user"
                return _error(429, refusal, {"retry-after": str(max(1, math.ceil(begun.wait)))})
            if lease is None:  # (begin takes the lease whenever it lets a turn run)
                return _error(409, _BUSY, _RETRY)
            return await self._turn(session, message, turn_id or new_turn_id(), lease, left)
        finally:
            if lease is not None:  # a no-op after a save, which releases the lease in the same step
                await self.store.release(lease)

    async def _begin(self, chat_id: str, now: float, claimed: str | None, turn_id: str | None, go: bool,
                     left: asyncio.Event) -> Begun | None:
        """The store's ``begin``, or ``None`` if the client left first (the wait is abandoned, nothing runs)."""
        if left.is_set():
            return None
        beginning = asyncio.ensure_future(self.store.begin(chat_id, now, claimed=claimed, turn_id=turn_id,
                                                           go=go, limiter=self.limiter))
        gone = asyncio.ensure_future(left.wait())
        try:
            await asyncio.wait({beginning, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not beginning.done():
                beginning.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beginning
        if beginning.cancelled():
            return None
        begun = beginning.result()  # raises ChatBusy / StoreUnavailable as they are
        if left.is_set():
            if begun.lease is not None:
                await self.store.release(begun.lease)
            return None
        return begun

    @staticmethod
    def _stored(session: Session, turn_id: str, message: str) -> JsonReply | None:
        """The answer of a stored turn with this id; a 409 if the id was used for another message."""
        turn = find_turn(session.turns, turn_id)
        if turn is None:
            return None
        if turn.digest != digest(message):
            return _error(409, "turn_id was already used in this chat for a different message")
        return JsonReply.of({"response": turn.response})

    async def _end_chat(self, payload: Any) -> JsonReply:
        now = self._clock()
        found = await self._find(payload, now)
        if isinstance(found, JsonReply):
            return found
        if not await self.store.delete(found.chat_id, now):
            return _error(404, _UNKNOWN_CHAT)
        return JsonReply.of({"message": "Chat session ended."})

    # -- one turn --------------------------------------------------------------------------------------------

    async def _turn(self, session: Session, message: str, turn_id: str, lease: Lease,
                    left: asyncio.Event) -> JsonReply:
        request = build_request(session.history, message, session.generation_config)
        body = orjson.dumps(request)
        started = time.time()

        def done(reply: JsonReply, *, key_id: str | None = None, response: dict[str, Any] | None = None,
                 text: str = "", error: str | None = None) -> JsonReply:
            if self._events.enabled:
                # Stored turns may be orjson.Fragments (the Redis store's, spliced unparsed into ``body``): an
                # exporter that ships bodies gets plain JSON read back from the bytes sent; the others, none.
                plain = request
                if session.history and type(session.history[0]) is orjson.Fragment:
                    plain = orjson.loads(body) if getattr(self._events, "wants_bodies", False) else {}
                self._events.publish(Interaction(
                    surface="session", model=session.model, request=plain, response=response,
                    started=started, finished=time.time(), status=reply.status, user_id=session.user_id,
                    session_id=session.chat_id, key_id=key_id, error=error, output_text=text,
                    message=message, size_hint=len(body) + 2 * len(text) + 1024))
            return reply

        # The chat's key binding rides in the session itself: no lookup, and the save records it.
        bound = session.key_id if self._affinity is not None and self._affinity.enabled else ""
        try:
            result = await self._client.call("POST", f"models/{session.model}:generateContent",
                                             model=session.model, body=body, prefer_key=bound or None)
        except NoKeyAvailable as exc:
            if exc.status == 503:
                return done(_error(503, f"no API key can serve the request: {exc.message}"),
                            error=exc.message)
            return done(_error(429, f"every API key is cooling down: {exc.message}",
                               retry_after_header(exc.retry_after)), error=exc.message)
        except UpstreamUnavailable as exc:
            return done(_error(500, f"the model could not be reached: {exc}"), error=str(exc))
        used = ""
        if self._affinity is not None and self._affinity.enabled and result.status == 200 and result.key_id:
            self._affinity.note(bound or None, result.key_id)
            used = result.key_id if result.key_id != bound else ""
        if result.status == 429:  # the last key tried was out of quota too: the pool is limited, not the user
            why = self._upstream_message(result)
            reply = _error(429, f"every API key is out of quota: {why}",
                           retry_after_header(result.outcome.retry_after))
            return done(reply, key_id=result.key_id, error=why)
        if result.status != 200:
            why = self._upstream_message(result)
            return done(_error(500, f"the model call failed (upstream HTTP {result.status}): {why}"),
                        key_id=result.key_id, error=why)
        try:
            response = orjson.loads(result.body)
        except orjson.JSONDecodeError:
            return done(_error(500, "the model's answer is not valid JSON"), key_id=result.key_id,
                        error="unreadable upstream answer")
        answer = read_reply(response)
        gemini = response if isinstance(response, dict) else None
        if answer.turn is None:
            problem = answer.problem or "no answer"
            return done(_error(500, problem), key_id=result.key_id, response=gemini, error=problem)
        history = append_exchange(session.history, user_turn(message), answer.turn, self._max_history)
        if left.is_set():  # nobody will read this answer: keeping it would duplicate the client's retry
            log.info("a send_message client left while the model answered; the turn was not kept")
            return done(_error(499, "the client left before the answer; the turn was not kept"),
                        key_id=result.key_id, response=gemini, text=answer.text, error="client left")
        record = TurnRecord(turn_id, digest(message), answer.text)
        try:
            saved = await self.store.save_history(session.chat_id, history, self._clock(), lease=lease,
                                                  expect=session.version, turn=record, key_id=used,
                                                  release=True)
        except StoreUnavailable as exc:
            return done(_error(503, f"{exc}; nothing was kept, retry", {"retry-after": "5"}),
                        key_id=result.key_id, response=gemini, text=answer.text, error=str(exc))
        if saved is Saved.GONE:  # ended (or evicted) while the model was answering: the answer stands
            log.info("a chat ended during its turn; the answer is returned and not kept")
        elif saved is not Saved.SAVED:  # lease lost or history moved on: storing now could fork or duplicate
            log.warning("a turn's save was refused (%s); the client is told to retry", saved.value)
            return done(_error(503, _NOT_KEPT, _RETRY), key_id=result.key_id, response=gemini,
                        text=answer.text, error=f"save refused ({saved.value})")
        return done(JsonReply.of({"response": answer.text}), key_id=result.key_id, response=gemini,
                    text=answer.text)

    def _upstream_message(self, result: UpstreamResponse) -> str:
        """Google's error message, scrubbed of keys (it can echo them) and kept short."""
        message: str | None = None
        try:
            body = orjson.loads(result.body)
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict) and isinstance(error.get("message"), str):
                message = error["message"]
        except orjson.JSONDecodeError:
            pass
        if message is None:
            message = result.body[:_MAX_ERROR_TEXT].decode("utf-8", "replace") or "no details"
        return scrub(message, self._secrets)[:_MAX_ERROR_TEXT]


@dataclass(frozen=True, slots=True)
class SessionsConfig:
    """The settings the chat sessions API uses (README, settings table)."""

    valid_users_file: str = "valid_users.txt"
    valid_users: tuple[str, ...] = ()
    default_model: str = "gemini-2.5-flash"
    ttl: float = 1800.0
    max_per_user: int = 20
    max_total: int = 10000
    max_history: int = 100
    user_rate_limit: float = 2.0
    #: The pool's keys, only to scrub them from upstream messages shown to a user.
    secrets: tuple[str, ...] = field(default=(), repr=False)


def build_sessions(config: SessionsConfig, *, client: GeminiClient, events: EventSink,
                   redis: RedisLink | None = None, affinity: Affinity | None = None) -> SessionService:
    """The sessions service over the process's upstream client and events; in Redis when there is a link."""
    limits = Limits(ttl=config.ttl, max_per_user=config.max_per_user, max_total=config.max_total)
    limit, window = window_for(config.user_rate_limit)
    store: SessionStore
    limiter: RateLimiter
    if redis is not None:
        # A short lease renewed while the turn runs: a dead holder blocks its chat for seconds, not TIME_OUT.
        store = RedisSessionStore(redis.url, limits, link=redis)
        limiter = RedisRateLimiter(redis.url, limit, window, link=redis)
    else:
        store = MemorySessionStore(limits)
        limiter = MemoryRateLimiter(limit, window)
    return SessionService(client=client, store=store, limiter=limiter,
                          users=ValidUsers(config.valid_users_file, extra=config.valid_users), events=events,
                          default_model=config.default_model, max_history=config.max_history,
                          secrets=config.secrets, affinity=affinity)
