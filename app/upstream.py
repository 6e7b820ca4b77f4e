"""GeminiClient: the one pooled upstream session, the rotation-and-retry loop and the stream commit.

The transport is aiohttp: measured on this machine class, a minimal relay over one aiohttp ``ClientSession``
reached ~2,000 requests/s at 64 concurrent requests where httpx's default transport collapsed to ~130 (README,
"Why aiohttp"). Callers never see aiohttp types: they get :class:`UpstreamResponse` (a complete answer) or
:class:`UpstreamStream` (a committed stream), or :class:`UpstreamUnavailable` / :class:`app.keys.NoKeyAvailable`.

Retry policy (docs/architecture.md, The key pool): a plain loop over leases from the ``KeyManager`` (which owns waiting
for cooldowns, the fallback to a tried key and the per-key slot). Rotating to a fresh key after a 429 or an
invalid key costs no sleep; a transient failure backs off with full jitter (uniform in 0..min(4, 0.25 * 2^(n-1))
seconds after the n-th attempt, see ``UpstreamConfig``); client errors are final at once; so is a request
that failed the same way on two keys (``app.keys.accounting``: the request's fault, no key charged). Any
exception the transport raises becomes a classified outcome, never a 500. A stream is committed only once the upstream answered 200
and sent its first event, so a failure before that is retried invisibly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
import orjson

from app.errors import UpstreamUnavailable
from app.gemini.framing import JSONArrayDecoder, SSEDecoder
from app.gemini.scrub import scrub, scrub_bytes
from app.keys import KeyManager, Lease, Outcome, OutcomeKind, RequestAccount, classify, classify_exception
from app.net.routes import Route, RouteTable
from app.net.sessions import RouteSessions

log = logging.getLogger("gateway.upstream")

Framing = Literal["json", "sse", "array"]

#: Cooldown bucket for calls that are not about one model (models.list).
MODELS_BUCKET = "_models"

#: The calls a Vertex AI express key can serve (its endpoint has no files, caches, models list or embeddings).
VERTEX_PATH = re.compile(r"^models/[^/:?]+:(generateContent|streamGenerateContent|countTokens)$")
#: A proxy's "authentication required" answer: the route is broken, the key is not at fault.
PROXY_AUTH_REQUIRED = 407
_PROXY_AUTH = Outcome(OutcomeKind.TRANSIENT, 0, None, "proxy_auth_required")
#: Transport failures (by class name, anywhere in the MRO) in which a proxied request never reached Google:
#: the proxy is down or blackholed, refuses us, or cannot reach Google (aiohttp's connector and CONNECT
#: errors, python-socks' errors). Read timeouts and resets are not among them: Google may have caused those.
_ROUTE_FAILURES = frozenset({"ClientConnectorError", "ClientHttpProxyError", "ConnectionTimeoutError",
                             "ProxyError", "ProxyConnectionError", "ProxyTimeoutError"})


def _classify_failure(exc: BaseException, lease: Lease, route: Route) -> Outcome:
    """``classify_exception``, naming a proxied route's own failure ``proxy_*``: the request never reached
    Google, so it is never "the request's fault" (``accounting.signature``), however many keys share the
    dead proxy; the key is charged once another key serves the request, and the prober brings it back
    through the proxy."""
    outcome = classify_exception(exc, lease.key)
    if (route.proxy and outcome.kind is OutcomeKind.TRANSIENT
            and any(cls.__name__ in _ROUTE_FAILURES for cls in type(exc).__mro__)):
        what = outcome.reason if outcome.reason in ("timeout", "connection_error") else "error"
        return Outcome(OutcomeKind.TRANSIENT, 0, None, f"proxy_{what}")
    return outcome


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """What the client needs to know about the upstream, its time limits and its backoff (seconds)."""

    base_url: str
    max_retries: int = 10
    time_out: float = 300.0
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    connections: int = 0
    probe_model: str = "gemini-2.5-flash"
    backoff_base: float = 0.25
    backoff_cap: float = 4.0
    #: Vertex AI express root (``.../v1``): Vertex keys call ``{vertex_base_url}/publishers/google/models/...``.
    vertex_base_url: str = "https://aiplatform.googleapis.com/v1"


@dataclass(slots=True)
class UpstreamResponse:
    """A complete upstream answer: 2xx, a client error, or the last error once retries are spent."""

    status: int
    content_type: str
    body: bytes
    key_id: str | None
    outcome: Outcome
    attempts: int
    #: The upstream's response headers (the resumable upload answers in headers); absent on synthetic answers.
    headers: Mapping[str, str] | None = None

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
    _key: str = field(default="", repr=False)

    def scrub(self, data: bytes) -> bytes:
        """Upstream stream bytes without the calling key (and other secrets): for error events only, the
        happy path is relayed unscanned."""
        return scrub_bytes(data, (self._key,))

    def scrub_text(self, text: str) -> str:
        return scrub(text, (self._key,))

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


class _Retry(Exception):
    """One attempt failed in a way another attempt may fix."""

    def __init__(self, outcome: Outcome, response: UpstreamResponse | None) -> None:
        self.outcome = outcome
        self.response = response


class GeminiClient:
    """Sends Gemini REST calls on pool keys; owns the process's single connection pool."""

    def __init__(self, config: UpstreamConfig, keys: KeyManager, *,
                 on_outcome: Callable[[OutcomeKind, str, float | None], None] | None = None,
                 on_first_event: Callable[[str, float], None] | None = None,
                 on_report: Callable[[str, str, Outcome], None] | None = None,
                 routes: RouteTable | None = None) -> None:
        self.config = config
        self._base = config.base_url.rstrip("/")
        self._vertex = config.vertex_base_url.rstrip("/")
        self.keys = keys
        self.routes = routes or RouteTable()
        self._sessions: RouteSessions | None = None
        self._on_outcome = on_outcome  # (kind, model, seconds since the attempt was sent): metrics
        self._on_first_event = on_first_event  # (model, seconds to a stream's first event): metrics
        self._on_report = on_report  # (key id, model, outcome): the usage history, in memory only

    async def start(self) -> None:
        self._sessions = RouteSessions(self.config.connections)
        self._sessions.get(None)  # the direct session exists from the start

    async def close(self) -> None:
        if self._sessions is not None:
            await self._sessions.close()
            self._sessions = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The direct session (no proxy)."""
        return self.session_for(None)

    def session_for(self, proxy: str | None) -> aiohttp.ClientSession:
        """The session of one outbound route (None = direct)."""
        if self._sessions is None:
            raise RuntimeError("GeminiClient.start() was not awaited")
        return self._sessions.get(proxy)

    # -- public calls -------------------------------------------------------------------------------------

    async def call(self, method: str, path: str, *, model: str, body: bytes | None = None, query: str = "",
                   headers: dict[str, str] | None = None, deadline: float | None = None,
                   key_id: str | None = None, prefer_key: str | None = None) -> UpstreamResponse:
        """A complete (non-stream) call. ``path`` is relative to the API version root, e.g.
        ``models/gemini-2.5-flash:generateContent`` (or an absolute upstream URL, for the upload root).
        ``key_id`` pins the call to one key (the owner of a resource it names); ``prefer_key`` tries that key
        first when it is eligible (conversation affinity)."""
        result = await self._run(method, path, model=model, body=body, query=query, headers=headers,
                                 framing="json", deadline=deadline, key_id=key_id, prefer_key=prefer_key)
        assert isinstance(result, UpstreamResponse)
        return result

    async def stream(self, path: str, *, model: str, body: bytes, query: str = "", framing: Framing = "sse",
                     headers: dict[str, str] | None = None, deadline: float | None = None,
                     key_id: str | None = None, prefer_key: str | None = None) -> UpstreamStream | UpstreamResponse:
        """Open a stream and commit to it after its first event; a final error comes back as a response.
        ``key_id`` / ``prefer_key`` as for :meth:`call`."""
        return await self._run("POST", path, model=model, body=body, query=query, headers=headers,
                               framing=framing, deadline=deadline, key_id=key_id, prefer_key=prefer_key)

    def upload_url(self, path: str) -> str:
        """Absolute upstream URL for the resumable upload, which Google serves at ``/upload/<version>/...``
        beside (not under) the API version root."""
        root, _, version = self._base.rpartition("/")
        return f"{root}/upload/{version}/{path}"

    async def probe(self, lease: Lease) -> Outcome:
        """A quota-free check of one key (models.get), outside the rotation: used to bring disabled keys back."""
        connect = self.config.connect_timeout
        timeout = aiohttp.ClientTimeout(total=connect + 10.0, connect=connect)
        route = self.routes.of(lease.key_id)
        headers = {"x-goog-api-key": lease.key}
        if route.vertex:  # express mode has no models.get: a token count is the cheapest call it has
            request = self.session_for(route.proxy).post(
                f"{self._vertex}/publishers/google/models/{self.config.probe_model}:countTokens",
                data=b'{"contents":[{"role":"user","parts":[{"text":"ping"}]}]}', timeout=timeout,
                headers={**headers, "content-type": "application/json"})
        else:
            request = self.session_for(route.proxy).get(f"{self._base}/models/{self.config.probe_model}",
                                                        timeout=timeout, headers=headers)
        try:
            async with request as resp:
                if route.proxy and resp.status == PROXY_AUTH_REQUIRED:
                    return _PROXY_AUTH
                return classify(resp.status, await resp.read())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any transport failure is an outcome, never a crash
            return _classify_failure(exc, lease, route)

    def deadline(self) -> float:
        return time.monotonic() + self.config.time_out

    # -- the loop -----------------------------------------------------------------------------------------

    async def _run(self, method: str, path: str, *, model: str, body: bytes | None, query: str,
                   headers: dict[str, str] | None, framing: Framing, deadline: float | None,
                   key_id: str | None = None, prefer_key: str | None = None) -> UpstreamResponse | UpstreamStream:
        deadline = deadline or self.deadline()
        base = path if path.startswith(("http://", "https://")) else f"{self._base}/{path}"
        url = base + (f"?{query}" if query else "")
        # A Vertex express key serves model calls only: for any other call it counts as already tried.
        vertex_url = (f"{self._vertex}/publishers/google/{path}" + (f"?{query}" if query else "")
                      if VERTEX_PATH.match(path) else None)
        account = RequestAccount(model, pinned=key_id, prefer=prefer_key)
        if vertex_url is None:
            account.tried.update(self.routes.vertex_ids())
        max_retries = self.config.max_retries
        attempts = 0
        try:
            while True:
                attempts += 1
                lease = await self.keys.lease(account, deadline)
                route = self.routes.of(lease.key_id)
                try:
                    if route.vertex and vertex_url is None:
                        skip = Outcome(OutcomeKind.CLIENT_ERROR, 0, None, "vertex_key_cannot_serve")
                        raise _Retry(skip, None)  # not reported: the key did nothing wrong
                    result = await self._attempt(method, vertex_url if route.vertex else url, lease, route,
                                                 model=model, body=body, headers=headers,
                                                 framing=framing, deadline=deadline, attempts=attempts)
                except _Retry as exc:
                    lease.release()
                    last = exc
                except BaseException:
                    lease.release()
                    raise
                else:
                    if isinstance(result, UpstreamStream):
                        result._release = lease.release  # the slot is held until the stream ends
                    else:
                        lease.release()
                        if result.outcome.kind is not OutcomeKind.OK:
                            account.void()  # a definitive answer about the request: nobody is charged
                    return result
                if account.poisoned or attempts >= max_retries or time.monotonic() >= deadline:
                    break
                pause = self._pause(last.outcome, attempts, deadline)
                if pause:
                    await asyncio.sleep(pause)
        except asyncio.CancelledError:
            raise  # the client left: what was held in the account is nobody's fault
        except BaseException:
            await self.keys.settle(account)
            raise
        await self.keys.settle(account)
        return self._final(last, attempts, account.poisoned)

    @staticmethod
    def _final(last: _Retry, attempts: int, poisoned: bool) -> UpstreamResponse:
        """What the client gets once the attempts are over: the upstream's own last word when there is one."""
        if last.outcome.kind is OutcomeKind.KEY_INVALID:
            # Passing this on would tell the client its own credentials are bad: they are not.
            raise UpstreamUnavailable(f"the upstream rejected every API key tried ({attempts} attempt(s), "
                                      f"last: {last.outcome.reason or last.outcome.status})")
        if last.response is not None:
            return last.response  # the upstream's own last word, honestly reported
        if poisoned:
            raise UpstreamUnavailable(f"the upstream failed this request the same way on two API keys "
                                      f"({last.outcome.reason or last.outcome.status}); not retried further")
        raise UpstreamUnavailable(f"the upstream did not answer after {attempts} attempt(s) "
                                  f"({last.outcome.reason or 'deadline'})")

    def _pause(self, outcome: Outcome, attempts: int, deadline: float) -> float:
        """No sleep to rotate away from a rate-limited or invalid key; full-jitter exponential backoff after a
        transient failure, never past the deadline."""
        if outcome.kind is not OutcomeKind.TRANSIENT:
            return 0.0
        ceiling = min(self.config.backoff_cap, self.config.backoff_base * 2.0 ** min(attempts - 1, 16))
        return min(random.uniform(0.0, ceiling), max(0.0, deadline - time.monotonic()))

    async def _report(self, lease: Lease, outcome: Outcome, started: float | None = None) -> None:
        """Every classified upstream answer passes here once: metrics count it, the lease tells the pool."""
        if self._on_outcome is not None:
            self._on_outcome(outcome.kind, lease.model,
                             None if started is None else time.monotonic() - started)
        if self._on_report is not None:
            self._on_report(lease.key_id, lease.model, outcome)
        await lease.report(outcome)

    async def _attempt(self, method: str, url: str, lease: Lease, route: Route, *, model: str,
                       body: bytes | None,
                       headers: dict[str, str] | None, framing: Framing, deadline: float,
                       attempts: int) -> UpstreamResponse | UpstreamStream:
        req_headers = {"x-goog-api-key": lease.key, "content-type": "application/json"}
        if headers:
            req_headers.update(headers)
        remaining = max(0.001, deadline - time.monotonic())
        cfg = self.config
        timeout = aiohttp.ClientTimeout(total=remaining if framing == "json" else None,
                                        connect=min(cfg.connect_timeout, remaining),
                                        sock_read=min(cfg.read_timeout, remaining))
        started = time.monotonic()
        try:
            resp = await self.session_for(route.proxy).request(method, url, data=body, headers=req_headers,
                                                               timeout=timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any transport failure is an outcome, never a 500
            outcome = _classify_failure(exc, lease, route)
            await self._report(lease, outcome, started)
            raise _Retry(outcome, None) from None

        try:
            if route.proxy and resp.status == PROXY_AUTH_REQUIRED:
                resp.close()
                await self._report(lease, _PROXY_AUTH)
                raise _Retry(_PROXY_AUTH, None)
            if framing == "json" or resp.status != 200:
                payload = await resp.read()
                outcome = classify(resp.status, payload)
                await self._report(lease, outcome, started)
                if resp.status >= 300:  # Google can echo the calling key; no caller ever sees it
                    payload = scrub_bytes(payload, (lease.key,))
                result = UpstreamResponse(resp.status, resp.headers.get("content-type", "application/json"),
                                          payload, lease.key_id, outcome, attempts, resp.headers)
                if outcome.kind is OutcomeKind.OK or not outcome.retryable():
                    return result
                raise _Retry(outcome, result)
            return await self._commit(resp, lease, framing=framing, attempts=attempts, deadline=deadline,
                                      started=started)
        except asyncio.CancelledError:
            resp.close()
            raise
        except _Retry:
            raise
        except Exception as exc:  # noqa: BLE001
            resp.close()
            outcome = classify_exception(exc)
            await self._report(lease, outcome, started)
            raise _Retry(outcome, None) from None
        finally:
            if framing == "json" or resp.status != 200:
                resp.release()

    async def _commit(self, resp: aiohttp.ClientResponse, lease: Lease, *, framing: Framing,
                      attempts: int, deadline: float, started: float) -> UpstreamStream | UpstreamResponse:
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
                    await self._report(lease, outcome, started)
                    raise _Retry(outcome, None)
                break
            seen += chunk
            events = decoder.feed(chunk)
        first = events[0]
        if first.lstrip().startswith(b'{"error"'):
            resp.close()
            status, error_body = _embedded_error(first)
            outcome = classify(status, error_body)
            await self._report(lease, outcome, started)
            result = UpstreamResponse(status, "application/json; charset=UTF-8",
                                      scrub_bytes(error_body, (lease.key,)), lease.key_id, outcome, attempts)
            if outcome.retryable():
                raise _Retry(outcome, result)
            return result
        if self._on_first_event is not None:
            self._on_first_event(lease.model, time.monotonic() - started)
        await lease.commit()

        async def report(outcome: Outcome) -> None:
            await self._report(lease, outcome, started)

        return UpstreamStream(resp.headers.get("content-type", "text/event-stream"), bytes(seen),
                              lease.key_id, attempts, deadline, resp, report, _key=lease.key)


def _embedded_error(event: bytes) -> tuple[int, bytes]:
    """The status and body of a ``{"error": {...}}`` that arrived as a stream event."""
    try:
        obj = orjson.loads(event)
        status = int(obj["error"].get("code") or 500)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return 502, event
    return status, orjson.dumps(obj)
