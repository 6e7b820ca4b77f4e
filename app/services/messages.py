"""MessagesService: an Anthropic Messages call (and count_tokens) from request to reply, stream or not.

Modelled on ChatService: translate first (a bad request never reaches the upstream), fetch what translation
cannot (media URLs, remembered signatures), send through the pool, translate back. A stream is committed by
GeminiClient before the client sees a byte; after that a failure becomes an Anthropic ``error`` event
(``overloaded_error``, ``api_error`` …), never a clean ``message_stop``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import aiohttp
import orjson

from app.gemini.framing import SSEDecoder
from app.keys import NoKeyAvailable, Outcome, OutcomeKind, classify
from app.observability.events import EventSink, Interaction
from app.protocols.anthropic.content import media_urls, tool_use_ids
from app.protocols.anthropic.errors import error_body, gemini_error_to_anthropic, request_error
from app.protocols.anthropic.request import MessagesRequest, count_tokens_body, parse_messages_request
from app.protocols.anthropic.response import message_from_gemini
from app.protocols.anthropic.sse import PING, sse_event
from app.protocols.anthropic.stream import MessageStream
from app.protocols.openai_chat.errors import RequestError, UpstreamStreamError
from app.services.media import fetch_media
from app.services.replies import JsonReply, Reply, StreamReply, retry_after_header
from app.services.signatures import SignatureCache
from app.upstream import GeminiClient, UpstreamResponse, UpstreamStream, UpstreamUnavailable

OK = Outcome(OutcomeKind.OK, 200)


def anthropic_error_reply(exc: BaseException | UpstreamResponse) -> JsonReply:
    """Every way a Messages call can fail, in Anthropic's error shape (429 and 529 carry retry-after)."""
    if isinstance(exc, UpstreamResponse):
        status, body = gemini_error_to_anthropic(exc.status, exc.body)
        retry = exc.outcome.retry_after if status in (429, 529) else None
        return JsonReply.of(body, status, retry_after_header(retry))
    if isinstance(exc, RequestError):
        status, body = request_error(exc)
        return JsonReply.of(body, status)
    if isinstance(exc, NoKeyAvailable):
        if exc.no_keys or exc.all_disabled:
            return JsonReply.of(error_body("overloaded_error", exc.message), 529)
        return JsonReply.of(error_body("rate_limit_error", exc.message), 429, retry_after_header(exc.retry_after))
    if isinstance(exc, UpstreamUnavailable):
        return JsonReply.of(error_body("api_error", str(exc)), 502)
    raise TypeError(f"not an error this layer maps: {type(exc).__name__}")


class MessagesService:
    def __init__(self, client: GeminiClient, *, model_map: Sequence[tuple[str, str]], signatures: SignatureCache,
                 events: EventSink, image_max_bytes: int, image_timeout: float) -> None:
        self._client = client
        self._model_map = tuple(model_map)
        self._signatures = signatures
        self._events = events
        self._image_max_bytes = image_max_bytes
        self._image_timeout = image_timeout

    async def create(self, payload: Any, *, session_id: str | None = None) -> Reply:
        started = time.time()
        try:
            req = await self._translate(payload)
        except RequestError as exc:
            return anthropic_error_reply(exc)
        body = orjson.dumps(req.body)
        try:
            if req.stream:
                result = await self._client.stream(f"models/{req.model}:streamGenerateContent", model=req.model,
                                                   body=body, query="alt=sse", framing="sse")
            else:
                result = await self._client.call("POST", f"models/{req.model}:generateContent",
                                                 model=req.model, body=body)
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            reply = anthropic_error_reply(exc)
            self._publish(req, None, started, reply.status, session_id, None, error=str(exc))
            return reply
        if isinstance(result, UpstreamStream):
            return StreamReply(self._relay(req, result, started, session_id, len(body)), ping=PING)
        if result.status != 200:
            reply = anthropic_error_reply(result)
            self._publish(req, None, started, reply.status, session_id, result.key_id, error="upstream error")
            return reply
        gemini = orjson.loads(result.body)
        try:
            message, signatures = message_from_gemini(gemini, model=req.requested_model, thinking=req.thinking)
        except UpstreamStreamError as exc:
            return anthropic_error_reply(UpstreamResponse(exc.status, "application/json", orjson.dumps(exc.body),
                                                          result.key_id, result.outcome, result.attempts))
        if signatures:
            await self._signatures.put_many(signatures)
        text = "".join(b.get("text", "") for b in message["content"] if b.get("type") == "text")
        self._publish(req, gemini, started, 200, session_id, result.key_id, text=text,
                      size=len(body) + len(result.body))
        return JsonReply.of(message)

    async def count_tokens(self, payload: Any) -> Reply:
        try:
            ids = tool_use_ids(payload)
            signatures = await self._signatures.get_many(ids) if ids else None
            model, _, body = count_tokens_body(payload, model_map=self._model_map, signatures=signatures)
        except RequestError as exc:
            return anthropic_error_reply(exc)
        try:
            result = await self._client.call("POST", f"models/{model}:countTokens", model=model,
                                             body=orjson.dumps(body))
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            return anthropic_error_reply(exc)
        if result.status != 200:
            return anthropic_error_reply(result)
        total = orjson.loads(result.body).get("totalTokens", 0)
        return JsonReply.of({"input_tokens": total if isinstance(total, int) else 0})

    async def _translate(self, payload: Any) -> MessagesRequest:
        fetched = None
        urls = media_urls(payload)
        if urls:
            fetched = await fetch_media(self._client.session, urls, max_bytes=self._image_max_bytes,
                                        timeout=self._image_timeout)
        ids = tool_use_ids(payload)
        signatures = await self._signatures.get_many(ids) if ids else None
        return parse_messages_request(payload, model_map=self._model_map, fetched=fetched, signatures=signatures)

    async def _relay(self, req: MessagesRequest, upstream: UpstreamStream, started: float,
                     session_id: str | None, request_size: int) -> AsyncIterator[bytes]:
        """Gemini SSE in, Anthropic SSE out; every ending is reported to the pool and analytics once."""
        translator = MessageStream(model=req.requested_model, thinking=req.thinking)
        decoder = SSEDecoder()
        outcome: Outcome | None = None
        error: str | None = None
        try:
            try:
                for out in _translate(decoder.feed(upstream.first), translator):
                    yield out
                async for raw in upstream.rest():
                    for out in _translate(decoder.feed(raw), translator):
                        yield out
                for out in _translate(decoder.flush(), translator):
                    yield out
                yield b"".join(sse_event(name, data) for name, data in translator.finish())
                outcome = OK
            except UpstreamStreamError as exc:
                outcome = classify(exc.status, exc.body)
                _, body = gemini_error_to_anthropic(exc.status, exc.body)
                error = body["error"]["message"]
                yield sse_event("error", body)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                outcome = Outcome(OutcomeKind.TRANSIENT, 0, reason=type(exc).__name__)
                error = f"the upstream stream failed: {type(exc).__name__}"
                yield sse_event("error", error_body("api_error", error))
        finally:
            if outcome is None:  # the client went away: not the key's fault
                upstream.abort()
                error = "client disconnected"
            else:
                await upstream.finish(outcome)
            if translator.signatures:
                await self._signatures.put_many(translator.signatures)
            self._publish(req, None, started, 200 if outcome is OK else 502, session_id, upstream.key_id,
                          text=translator.text, error=error, stream=True,
                          size=request_size + 2 * len(translator.text) + 1024)

    def _publish(self, req: MessagesRequest, response: dict[str, Any] | None, started: float, status: int,
                 session_id: str | None, key_id: str | None, *, text: str = "", error: str | None = None,
                 stream: bool = False, size: int = 0) -> None:
        if not self._events.enabled:
            return
        self._events.publish(Interaction(
            surface="anthropic", model=req.model, request=req.body, response=response, started=started,
            finished=time.time(), status=status, stream=stream or req.stream, user_id=req.user_id,
            session_id=session_id, key_id=key_id, error=error, output_text=text, size_hint=size))


def _translate(events: list[bytes], translator: MessageStream) -> Iterator[bytes]:
    """A generator, so that what was translated before a failing event is still sent before the error."""
    for data in events:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamStreamError(502, {"error": {"code": 502, "status": "BAD_GATEWAY",
                                                      "message": "the upstream sent an unreadable event"}}) from None
        pieces = translator.feed(chunk)
        if pieces:
            yield b"".join(sse_event(name, piece) for name, piece in pieces)
