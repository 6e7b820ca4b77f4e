"""MessagesService: an Anthropic Messages call (and count_tokens) from request to reply, stream or not.

Modelled on ChatService: translate first (a bad request never reaches the upstream), fetch what translation
cannot (media URLs, remembered signatures), send through the pool, translate back. A stream is committed by
GeminiClient before the client sees a byte; after that a failure becomes an Anthropic ``error`` event
(``overloaded_error``, ``api_error`` …), never a clean ``message_stop``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from app.errors import GatewayError, UpstreamError
from app.gemini.errors import StreamBroke
from app.observability.events import EventSink
from app.protocols.anthropic.content import media_urls, tool_use_ids
from app.protocols.anthropic.errors import error_body, gemini_error_to_anthropic, render_error
from app.protocols.anthropic.request import MessagesRequest, count_tokens_body, parse_messages_request
from app.protocols.anthropic.response import message_from_gemini
from app.protocols.anthropic.sse import PING, sse_event
from app.protocols.anthropic.stream import MessageStream
from app.protocols.openai_chat.errors import scrub
from app.net import SafeFetcher
from app.keys.affinity import Affinity, body_hint
from app.services.calls import CallRecord, TranslatedStream, relay_keeping_signatures
from app.services.generate import generate
from app.services.media import fetch_media
from app.services.replies import JsonReply, Reply, StreamReply, upstream_error
from app.services.signatures import SignatureCache
from app.upstream import GeminiClient, UpstreamResponse, UpstreamStream


def anthropic_error_reply(exc: GatewayError | UpstreamResponse) -> JsonReply:
    """A failure in Anthropic's error shape (the surface's one renderer)."""
    error = upstream_error(exc) if isinstance(exc, UpstreamResponse) else exc
    status, body, headers = render_error(error)
    return JsonReply.of(body, status, headers)


def stream_failure(status: int, body: dict[str, Any]) -> bytes:
    """An Anthropic ``error`` event for a failure after the commit (Google-shaped ``body``)."""
    if status == 502 and body.get("error", {}).get("status") == "UNAVAILABLE":
        return sse_event("error", error_body("api_error", str(body["error"].get("message"))))
    return sse_event("error", gemini_error_to_anthropic(status, body)[1])


def _event(named: tuple[str, dict[str, Any]]) -> bytes:
    return sse_event(*named)


class MessagesService:
    def __init__(self, client: GeminiClient, *, model_map: Sequence[tuple[str, str]], signatures: SignatureCache,
                 events: EventSink, fetcher: SafeFetcher | None, affinity: Affinity | None = None) -> None:
        self._client = client
        self._affinity = affinity
        self._model_map = tuple(model_map)
        self._signatures = signatures
        self._events = events
        self._fetcher = fetcher

    async def create(self, payload: Any, *, session_id: str | None = None, hint: str | None = None) -> Reply:
        """``hint``: the session header's affinity hint (``metadata.user_id`` is a weaker one)."""
        started = time.time()
        req = await self._translate(payload)
        record = CallRecord(self._events, "anthropic", req.model, req.body, started, stream=req.stream,
                            user_id=req.user_id, session_id=session_id)
        body = orjson.dumps(req.body)
        try:
            result = await generate(self._client, req.model, body, stream=req.stream, affinity=self._affinity,
                                    hint=hint or body_hint(user=req.user_id))
        except GatewayError as exc:
            record.done(exc.status, error=exc.message)
            raise
        if isinstance(result, UpstreamStream):
            translator = MessageStream(model=req.requested_model, thinking=req.thinking)
            adapter = TranslatedStream(translator, _event, stream_failure, keep=record.wants_bodies)
            return StreamReply(relay_keeping_signatures(result, adapter, record, self._signatures, len(body)), ping=PING)
        if result.status != 200:
            error = upstream_error(result)
            record.done(error.status, key_id=result.key_id, error=scrub(error.message))
            raise error
        gemini = orjson.loads(result.body)
        try:
            message, signatures = message_from_gemini(gemini, model=req.requested_model, thinking=req.thinking)
        except StreamBroke as exc:
            record.done(exc.status, key_id=result.key_id, error=str(exc))
            raise UpstreamError(exc.status, orjson.dumps(exc.body), key_id=result.key_id) from None
        if signatures:
            await self._signatures.put_many(signatures)
        text = "".join(b.get("text", "") for b in message["content"] if b.get("type") == "text")
        record.done(200, key_id=result.key_id, response=gemini, text=text, size=len(body) + len(result.body))
        return JsonReply.of(message)

    async def count_tokens(self, payload: Any) -> Reply:
        ids = tool_use_ids(payload)
        signatures = await self._signatures.get_many(ids) if ids else None
        model, _, body = count_tokens_body(payload, model_map=self._model_map, signatures=signatures)
        result = await self._client.call("POST", f"models/{model}:countTokens", model=model,
                                         body=orjson.dumps(body))
        if result.status != 200:
            raise upstream_error(result)
        total = orjson.loads(result.body).get("totalTokens", 0)
        return JsonReply.of({"input_tokens": total if isinstance(total, int) else 0})

    async def _translate(self, payload: Any) -> MessagesRequest:
        fetched = None
        urls = media_urls(payload)
        if urls:
            fetched = await fetch_media(self._fetcher, urls, param="source.url")
        ids = tool_use_ids(payload)
        signatures = await self._signatures.get_many(ids) if ids else None
        return parse_messages_request(payload, model_map=self._model_map, fetched=fetched, signatures=signatures)
