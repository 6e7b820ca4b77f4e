"""GeminiClient: the one pooled upstream session, the rotation-and-retry loop and the stream commit.

The transport is aiohttp: measured on this machine class, a minimal relay over one aiohttp ``ClientSession``
reached ~2,000 requests/s at 64 concurrent requests where httpx's default transport collapsed to ~130 (README,
"Why aiohttp"). Callers never see aiohttp types: they get :class:`UpstreamResponse` (a complete answer) or
:class:`UpstreamStream` (a committed stream), or :class:`UpstreamUnavailable` / :class:`app.keys.NoKeyAvailable`.

Retry policy (DESIGN.md, The key pool): rotating to a fresh key after a 429 or an invalid key costs no sleep;
transient failures back off with jitter (tenacity); client errors are final at once. A stream is committed only
once the upstream answered 200 and sent its first event, so a failure before that is retried invisibly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from app.gemini.framing import JSONArrayDecoder, SSEDecoder
from app.keys import KeyManager, Lease, NoKeyAvailable, Outcome, OutcomeKind, classify, classify_exception

log = logging.getLogger("gateway.upstream")

Framing = Literal["json", "sse", "array"]

#: Cooldown bucket for calls that are not about one model (models.list).
MODELS_BUCKET = "_models"


@dataclass(slots=True)
class UpstreamResponse:
    """A complete upstream answer: 2xx, a client error, or the last error once retries are spent."""

    status: int
    content_type: str
    body: bytes
    key_id: str | None
    outcome: Outcome
    attempts: int

    def json(self) -> object:
        return orjson.loads(self.body)


@dataclass(slots=True)
class UpstreamStream:
    """A committed stream: status 200 and at least the first event already read into ``first``."""

    content_type: str
    first: bytes
    key_id: str
    attempts: int
    deadline: float
    _resp: aiohttp.ClientResponse
    _report: Callable[[Outcome], Awaitable[None]]
    _release: Callable[[], None] | None = None
    _reported: bool = field(default=False)

    async def rest(self) -> AsyncIterator[bytes]:
        """The raw bytes after ``first``, as they arrive; the request's overall deadline still holds."""
        content = self._resp.content
        while True:
            chunk = await content.readany()
            if not chunk:
                return
            if time.monotonic() > self.deadline:
                raise asyncio.TimeoutError("the request's overall deadline (TIME_OUT) passed mid-stream")
            yield chunk

    async def finish(self, outcome: Outcome) -> None:
        """Report how the stream ended (ok, mid-stream error, truncation) and release the connection."""
        if not self._reported:
            self._reported = True
            await self._report(outcome)
        self._resp.release()
        self._free()

    def abort(self) -> None:
        """Drop the upstream connection without blaming the key (the client went away)."""
        self._reported = True
        self._resp.close()
        self._free()

    def _free(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


class UpstreamUnavailable(Exception):
    """No upstream answer at all (network errors or the deadline) after every allowed attempt."""


class _Retry(Exception):
    """One attempt failed in a way another attempt may fix."""

    def __init__(self, outcome: Outcome, response: UpstreamResponse | None) -> None:
        self.outcome = outcome
        self.response = response


class GeminiClient:
    """Sends Gemini REST calls on pool keys; owns the process's single connection pool."""

    def __init__(self, *, base_url: str, keys: KeyManager, max_retries: int, time_out: float,
                 connect_timeout: float, read_timeout: float, max_wait: float, connections: int,
                 max_per_key: int = 0, probe_model: str = "gemini-2.5-flash",
                 on_outcome: Callable[[OutcomeKind], None] | None = None,
                 on_report: Callable[[str, str, Outcome], None] | None = None) -> None:
        self._base = base_url.rstrip("/")
        self.keys = keys
        self._max_retries = max_retries
        self._time_out = time_out
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_wait = max_wait
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._backoff = wait_random_exponential(multiplier=0.25, max=4.0)
        self._max_per_key = max_per_key
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._probe_model = probe_model
        self._on_outcome = on_outcome
        self._on_report = on_report  # (key id, model, outcome): usage history, memory only

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._connections, limit_per_host=self._connections,
                                         ttl_dns_cache=300, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",),
            json_serialize=lambda o: orjson.dumps(o).decode())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("GeminiClient.start() was not awaited")
        return self._session

    # -- public calls -------------------------------------------------------------------------------------

    async def call(self, method: str, path: str, *, model: str, body: bytes | None = None, query: str = "",
                   headers: dict[str, str] | None = None, deadline: float | None = None) -> UpstreamResponse:
        """A complete (non-stream) call. ``path`` is relative to the API version root, e.g.
        ``models/gemini-2.5-flash:generateContent``."""
        result = await self._run(method, path, model=model, body=body, query=query, headers=headers,
                                 framing="json", deadline=deadline)
        assert isinstance(result, UpstreamResponse)
        return result

    async def stream(self, path: str, *, model: str, body: bytes, query: str = "", framing: Framing = "sse",
                     headers: dict[str, str] | None = None,
                     deadline: float | None = None) -> UpstreamStream | UpstreamResponse:
        """Open a stream and commit to it after its first event; a final error comes back as a response."""
        return await self._run("POST", path, model=model, body=body, query=query, headers=headers,
                               framing=framing, deadline=deadline)

    async def probe(self, lease: Lease) -> Outcome:
        """A quota-free check of one key (models.get), outside the rotation: used to bring disabled keys back."""
        timeout = aiohttp.ClientTimeout(total=self._connect_timeout + 10.0, connect=self._connect_timeout)
        try:
            async with self.session.get(f"{self._base}/models/{self._probe_model}", timeout=timeout,
                                        headers={"x-goog-api-key": lease.key}) as resp:
                return classify(resp.status, await resp.read())
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return classify_exception(exc)

    def deadline(self) -> float:
        return time.monotonic() + self._time_out

    # -- the loop -----------------------------------------------------------------------------------------

    async def _run(self, method: str, path: str, *, model: str, body: bytes | None, query: str,
                   headers: dict[str, str] | None, framing: Framing,
                   deadline: float | None) -> UpstreamResponse | UpstreamStream:
        deadline = deadline or self.deadline()
        url = f"{self._base}/{path}" + (f"?{query}" if query else "")
        tried: set[str] = set()
        attempts = 1

        async def once() -> UpstreamResponse | UpstreamStream:
            lease = await self._lease(model, tried, deadline)
            tried.add(lease.key_id)
            release = await self._take_slot(lease.key_id) if self._max_per_key else None
            try:
                result = await self._attempt(method, url, lease, model=model, body=body, headers=headers,
                                             framing=framing, deadline=deadline, attempts=attempts)
                if isinstance(result, UpstreamStream) and release is not None:
                    result._release, release = release, None  # held until the stream ends
                return result
            finally:
                if release is not None:
                    release()

        # The first attempt runs bare: the common case pays nothing for the retry machinery.
        try:
            return await once()
        except _Retry as exc:
            last = exc

        def stop(state: RetryCallState) -> bool:
            return attempts >= self._max_retries or time.monotonic() >= deadline

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else last
            return self._pause(exc, state, deadline)

        if self._max_retries > 1 and time.monotonic() < deadline:
            first_wait = wait(RetryCallState(None, None, (), {}))
            if first_wait:
                await asyncio.sleep(first_wait)
            retrying = AsyncRetrying(stop=stop, wait=wait, retry=retry_if_exception_type(_Retry), reraise=True)
            try:
                async for attempt in retrying:
                    with attempt:
                        attempts += 1
                        try:
                            return await once()
                        except _Retry as exc:
                            last = exc
                            raise
            except _Retry as exc:
                last = exc
        if last.outcome.kind is OutcomeKind.KEY_INVALID:
            # Passing this on would tell the client its own credentials are bad: they are not.
            raise UpstreamUnavailable(f"the upstream rejected every API key tried ({attempts} attempt(s), "
                                      f"last: {last.outcome.reason or last.outcome.status})")
        if last.response is not None:
            return last.response  # the upstream's own last word, honestly reported
        raise UpstreamUnavailable(f"the upstream did not answer after {attempts} attempt(s) "
                                  f"({last.outcome.reason or 'deadline'})")

    def _pause(self, exc: BaseException | None, state: RetryCallState, deadline: float) -> float:
        """No sleep to rotate away from a rate-limited or invalid key; jittered backoff after a transient
        failure, never past the deadline."""
        if isinstance(exc, _Retry) and exc.outcome.kind is OutcomeKind.TRANSIENT:
            return min(self._backoff(state), max(0.0, deadline - time.monotonic()))
        return 0.0

    async def _report(self, lease: Lease, model: str, outcome: Outcome) -> None:
        """Every classified upstream answer passes here once: the pool acts on it, metrics count it."""
        if self._on_outcome is not None:
            self._on_outcome(outcome.kind)
        if self._on_report is not None:
            self._on_report(lease.key_id, model, outcome)
        await self.keys.report(lease, model, outcome)

    async def _take_slot(self, key_id: str) -> Callable[[], None]:
        """Bound concurrent upstream requests per key (``MAX_CONCURRENT_PER_KEY``) so a burst queues here
        instead of piling onto one key."""
        slot = self._slots.get(key_id)
        if slot is None:
            slot = self._slots[key_id] = asyncio.Semaphore(self._max_per_key)
        await slot.acquire()
        return slot.release

    async def _lease(self, model: str, tried: set[str], deadline: float) -> Lease:
        """The next eligible key, preferring one not tried yet; waits for a cooldown within ``MAX_WAIT``."""
        while True:
            try:
                return await self.keys.acquire(model, tried)
            except NoKeyAvailable as exc:
                if tried and not exc.no_keys and not exc.all_disabled and exc.retry_after is None:
                    try:  # every untried key is gone: a tried one that failed transiently may still serve
                        return await self.keys.acquire(model, ())
                    except NoKeyAvailable as again:
                        exc = again
                remaining = deadline - time.monotonic()
                if exc.retry_after is not None and exc.retry_after <= min(self._max_wait, remaining):
                    await asyncio.sleep(max(exc.retry_after, 0.05))
                    continue
                raise exc

    async def _attempt(self, method: str, url: str, lease: Lease, *, model: str, body: bytes | None,
                       headers: dict[str, str] | None, framing: Framing, deadline: float,
                       attempts: int) -> UpstreamResponse | UpstreamStream:
        req_headers = {"x-goog-api-key": lease.key, "content-type": "application/json"}
        if headers:
            req_headers.update(headers)
        remaining = max(0.001, deadline - time.monotonic())
        timeout = aiohttp.ClientTimeout(total=remaining if framing == "json" else None,
                                        connect=min(self._connect_timeout, remaining),
                                        sock_read=min(self._read_timeout, remaining))
        try:
            resp = await self.session.request(method, url, data=body, headers=req_headers, timeout=timeout)
        except asyncio.CancelledError:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            outcome = classify_exception(exc)
            await self._report(lease, model, outcome)
            raise _Retry(outcome, None) from None

        try:
            if framing == "json" or resp.status != 200:
                payload = await resp.read()
                outcome = classify(resp.status, payload)
                await self._report(lease, model, outcome)
                result = UpstreamResponse(resp.status, resp.headers.get("content-type", "application/json"),
                                          payload, lease.key_id, outcome, attempts)
                if outcome.kind is OutcomeKind.OK or not outcome.retryable():
                    return result
                raise _Retry(outcome, result)
            return await self._commit(resp, lease, model=model, framing=framing, attempts=attempts,
                                      deadline=deadline)
        except asyncio.CancelledError:
            resp.close()
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            resp.close()
            outcome = classify_exception(exc)
            await self._report(lease, model, outcome)
            raise _Retry(outcome, None) from None
        finally:
            if framing == "json" or resp.status != 200:
                resp.release()

    async def _commit(self, resp: aiohttp.ClientResponse, lease: Lease, *, model: str, framing: Framing,
                      attempts: int, deadline: float) -> UpstreamStream | UpstreamResponse:
        """Read until the first event; an error or an empty stream before it is retried on another key."""
        decoder: SSEDecoder | JSONArrayDecoder = SSEDecoder() if framing == "sse" else JSONArrayDecoder()
        seen = bytearray()
        events: list[bytes] = []
        while not events:
            chunk = await resp.content.readany()
            if not chunk:
                if isinstance(decoder, SSEDecoder):
                    events = decoder.flush()
                if not events:
                    resp.close()
                    outcome = Outcome(OutcomeKind.TRANSIENT, 200, reason="empty stream")
                    await self._report(lease, model, outcome)
                    raise _Retry(outcome, None)
                break
            seen += chunk
            events = decoder.feed(chunk)
        first = events[0]
        if first.lstrip().startswith(b'{"error"'):
            resp.close()
            status, error_body = _embedded_error(first)
            outcome = classify(status, error_body)
            await self._report(lease, model, outcome)
            result = UpstreamResponse(status, "application/json; charset=UTF-8", error_body, lease.key_id,
                                      outcome, attempts)
            if outcome.retryable():
                raise _Retry(outcome, result)
            return result

        async def report(outcome: Outcome) -> None:
            await self._report(lease, model, outcome)

        return UpstreamStream(resp.headers.get("content-type", "text/event-stream"), bytes(seen),
                              lease.key_id, attempts, deadline, resp, report)


def _embedded_error(event: bytes) -> tuple[int, bytes]:
    """The status and body of a ``{"error": {...}}`` that arrived as a stream event."""
    try:
        obj = orjson.loads(event)
        status = int(obj["error"].get("code") or 500)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return 502, event
    return status, orjson.dumps(obj)
