"""NativeService: Gemini REST passthrough on pool keys.

Only the key changes hands: the client's body and query (less its ``key``) go upstream byte for byte, and
the upstream's status, content type and framing come back unchanged. Streams are relayed as raw bytes; the
relay only scans them lightly (a finish reason seen, an error event) to classify how the stream ended, and
decodes events only when an analytics exporter wants the assembled response.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from app.gemini.framing import JSONArrayDecoder, SSEDecoder
from app.keys import NoKeyAvailable, Outcome, OutcomeKind, classify
from app.keys.affinity import Affinity
from app.observability.events import EventSink, Interaction
from app.protocols.openai_chat.response import assemble_stream
from app.sessions.history import read_reply
from app.services.replies import JsonReply, Reply, StreamReply, google_error_body, google_error_reply
from app.upstream import MODELS_BUCKET, GeminiClient, UpstreamResponse, UpstreamStream, UpstreamUnavailable

MODEL_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
METHODS = frozenset({"generateContent", "streamGenerateContent", "countTokens", "embedContent",
                     "batchEmbedContents"})
GENERATE = frozenset({"generateContent", "streamGenerateContent"})
OK = Outcome(OutcomeKind.OK, 200)


def valid_model(model: str) -> bool:
    return bool(MODEL_RE.match(model)) and model not in {".", ".."}


def strip_key(query: bytes) -> str:
    """The query without ``key=`` (the gateway token must not travel upstream nor reach a log)."""
    if not query:
        return ""
    parts = [p for p in query.decode("latin-1").split("&") if p and not p.startswith("key=")]
    return "&".join(parts)


class NativeService:
    def __init__(self, client: GeminiClient, events: EventSink, affinity: Affinity | None = None) -> None:
        self._client = client
        self._events = events
        self.affinity = affinity

    async def list_models(self, query: str) -> Reply:
        return await self._plain("GET", "models", MODELS_BUCKET, query)

    async def get_model(self, model: str, query: str) -> Reply:
        if not valid_model(model):
            return _bad_model(model)
        return await self._plain("GET", f"models/{model}", MODELS_BUCKET, query)

    async def _plain(self, method: str, path: str, bucket: str, query: str) -> Reply:
        try:
            resp = await self._client.call(method, path, model=bucket, query=query)
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            return google_error_reply(exc)
        return _passthrough(resp)

    async def call(self, model: str, method: str, body: bytes, query: str, *, user_id: str | None = None,
                   session_id: str | None = None, key_id: str | None = None, hint: str | None = None) -> Reply:
        """``key_id``: the owner of resources the body names (pinned); ``hint``: a conversation's affinity
        hint (its key is preferred while healthy, rebound when it is not)."""
        if not valid_model(model):
            return _bad_model(model)
        if method not in METHODS:
            return JsonReply.of(google_error_body(
                404, f"Method {method!r} is not supported by this gateway; supported: {', '.join(sorted(METHODS))}",
                "NOT_FOUND"), 404)
        started = time.time()
        path = f"models/{model}:{method}"
        binding = await self.affinity.lookup(hint) if hint and self.affinity is not None else None
        prefer = binding.key_id if binding is not None else None
        try:
            if method == "streamGenerateContent":
                framing = "sse" if re.search(r"(^|&)alt=sse(&|$)", query) else "array"
                result = await self._client.stream(path, model=model, body=body, query=query, framing=framing,
                                                   key_id=key_id, prefer_key=prefer)
            else:
                result = await self._client.call("POST", path, model=model, body=body, query=query,
                                                 key_id=key_id, prefer_key=prefer)
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            reply = google_error_reply(exc)
            if method in GENERATE:
                self._publish(model, body, None, started, reply.status, user_id, session_id, None, str(exc))
            return reply
        if hint and self.affinity is not None and result.key_id is not None and \
                (isinstance(result, UpstreamStream) or result.status == 200):
            await self.affinity.settle(hint, binding, result.key_id)
        if isinstance(result, UpstreamStream):
            return StreamReply(self._relay(model, body, result, started, user_id, session_id),
                               content_type=result.content_type)
        if method in GENERATE and self._events.enabled:  # no analytics: the answer is not parsed at all
            response = _json_or_none(result.body) if result.status == 200 else None
            self._publish(model, body, response, started, result.status, user_id, session_id, result.key_id,
                          None if result.status == 200 else result.body.decode(errors="replace")[:500])
        return _passthrough(result)

    async def _relay(self, model: str, body: bytes, upstream: UpstreamStream, started: float,
                     user_id: str | None, session_id: str | None) -> AsyncIterator[bytes]:
        sse = "event-stream" in upstream.content_type
        decoder: SSEDecoder | JSONArrayDecoder | None = None
        if self._wants_bodies():
            decoder = SSEDecoder() if sse else JSONArrayDecoder()
        chunks: list[dict[str, Any]] = []
        scan = _EndScanner()
        outcome: Outcome | None = None
        try:
            yield upstream.first
            scan.feed(upstream.first)
            if decoder is not None:
                chunks.extend(_events(decoder, upstream.first))
            async for raw in upstream.rest():
                yield raw
                scan.feed(raw)
                if decoder is not None:
                    chunks.extend(_events(decoder, raw))
            outcome = scan.outcome()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            outcome = Outcome(OutcomeKind.TRANSIENT, 0, reason=type(exc).__name__)
            # The framing is the upstream's: end it the way Gemini ends a failed stream.
            error = google_error_body(502, f"the upstream stream failed: {type(exc).__name__}", "UNAVAILABLE")
            yield (b"data: " + orjson.dumps(error) + b"\r\n\r\n") if sse else (b",\r\n" + orjson.dumps(error)
                                                                               + b"\n]")
        finally:
            if outcome is None:
                upstream.abort()  # the client left: drop the upstream read, blame no key
            else:
                await upstream.finish(outcome)
            if self._events.enabled:
                ok = outcome is not None and outcome.kind is OutcomeKind.OK
                self._publish(model, body, assemble_stream(chunks) if chunks else None, started,
                              200 if ok else 502, user_id, session_id, upstream.key_id,
                              None if ok else (outcome.reason if outcome else "client disconnected"), True)

    def _wants_bodies(self) -> bool:
        return bool(getattr(self._events, "wants_bodies", False))

    def _publish(self, model: str, body: bytes, response: dict[str, Any] | None, started: float, status: int,
                 user_id: str | None, session_id: str | None, key_id: str | None, error: str | None,
                 stream: bool = False) -> None:
        if not self._events.enabled:
            return
        request = _json_or_none(body) if self._wants_bodies() else None
        self._events.publish(Interaction(
            surface="native", model=model, request=request if isinstance(request, dict) else {},
            response=response, started=started, finished=time.time(), status=status, stream=stream,
            user_id=user_id, session_id=session_id, key_id=key_id, error=error,
            output_text=_text_of(response), size_hint=len(body) + 2 * len(_text_of(response)) + 1024))


class _EndScanner:
    """How a relayed stream ended, from a light scan of its bytes (no JSON parsing)."""

    __slots__ = ("_tail", "finished", "error")

    def __init__(self) -> None:
        self._tail = b""
        self.finished = False
        self.error: bytes | None = None

    def feed(self, chunk: bytes) -> None:
        window = self._tail + chunk
        if not self.finished and b'"finishReason"' in window:
            self.finished = True
        if self.error is None:
            at = window.find(b'{"error"')
            if at >= 0:
                self.error = window[at:at + 2048]
        self._tail = window[-24:]

    def outcome(self) -> Outcome:
        if self.error is not None:
            match = re.search(rb'"code"\s*:\s*(\d{3})', self.error)
            return classify(int(match.group(1)) if match else 502, None)
        if not self.finished:
            return Outcome(OutcomeKind.TRANSIENT, 200, reason="stream ended without a finish reason")
        return OK


def _events(decoder: SSEDecoder | JSONArrayDecoder, raw: bytes) -> list[dict[str, Any]]:
    out = []
    for data in decoder.feed(raw):
        obj = _json_or_none(data)
        if isinstance(obj, dict) and "error" not in obj:
            out.append(obj)
    return out


def _json_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _text_of(response: dict[str, Any] | None) -> str:
    return read_reply(response).text if response else ""


def _passthrough(resp: UpstreamResponse) -> JsonReply:
    return JsonReply(resp.status, resp.body, content_type=resp.content_type)


def _bad_model(model: str) -> JsonReply:
    return JsonReply.of(google_error_body(
        400, f"Invalid model name {model[:80]!r}: use letters, digits, '.', '_' and '-'", "INVALID_ARGUMENT"), 400)
