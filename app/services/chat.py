"""ChatService: an OpenAI chat completion from request to reply, stream or not.

Order of work: validate and translate (a bad request never reaches the upstream), resolve what translation
cannot do itself (image downloads, remembered thought signatures), send through the pool, translate back.
For streams the upstream is committed before the client sees a byte (GeminiClient); after that a failure
becomes an OpenAI error event and never a clean ``finish_reason: stop``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from app.errors import GatewayError
from app.observability.events import EventSink
from app.protocols.openai_chat.chat import ChatRequest, media_urls, parse_chat_request, tool_call_ids
from app.protocols.openai_chat.errors import gemini_error_to_openai, openai_error_body, scrub
from app.protocols.openai_chat.response import StreamTranslator, completion_from_gemini
from app.protocols.openai_chat.sse import DONE, sse_event
from app.net import SafeFetcher
from app.services.calls import CallRecord, TranslatedStream, relay
from app.services.media import fetch_media
from app.services.replies import JsonReply, Reply, StreamReply, upstream_error
from app.services.signatures import SignatureCache
from app.upstream import GeminiClient, UpstreamStream

log = logging.getLogger("gateway.chat")


def stream_failure(status: int, body: dict[str, Any]) -> bytes:
    """An OpenAI error event for a failure after the commit (Google-shaped ``body``)."""
    if status == 502 and body.get("error", {}).get("status") == "UNAVAILABLE":
        message = str(body["error"].get("message"))
        return sse_event(openai_error_body(message, "api_error", None, "upstream_stream_error"))
    return sse_event(gemini_error_to_openai(status, body)[1])


class ChatService:
    def __init__(self, client: GeminiClient, *, search_models: list[str], code_execution: bool,
                 signatures: SignatureCache, events: EventSink, fetcher: SafeFetcher | None) -> None:
        self._client = client
        self._search_models = frozenset(search_models)
        self._code_execution = code_execution
        self._signatures = signatures
        self._events = events
        self._fetcher = fetcher

    async def complete(self, payload: Any, *, user_id: str | None = None,
                       session_id: str | None = None) -> Reply:
        """A completion or a committed stream; every refusal and failure is raised as a GatewayError."""
        started = time.time()
        req = await self._translate(payload)
        record = CallRecord(self._events, "openai", req.model, req.body, started, stream=req.stream,
                            user_id=user_id or req.user, session_id=session_id)
        body = orjson.dumps(req.body)
        try:
            if req.stream:
                result = await self._client.stream(f"models/{req.model}:streamGenerateContent", model=req.model,
                                                   body=body, query="alt=sse", framing="sse")
            else:
                result = await self._client.call("POST", f"models/{req.model}:generateContent",
                                                 model=req.model, body=body)
        except GatewayError as exc:
            record.done(exc.status, error=exc.message)
            raise

        if isinstance(result, UpstreamStream):
            translator = StreamTranslator(model=req.requested_model, created=int(started),
                                          include_usage=req.include_usage,
                                          completion_id="chatcmpl-" + secrets.token_urlsafe(18))
            adapter = TranslatedStream(translator, sse_event, stream_failure, keep=record.wants_bodies,
                                       trailer=DONE)
            return StreamReply(self._relay(adapter, result, record, len(body)))
        if result.status != 200:
            error = upstream_error(result)
            record.done(error.status, key_id=result.key_id, error=scrub(error.message))
            raise error
        gemini = orjson.loads(result.body)
        completion, signatures = completion_from_gemini(gemini, model=req.requested_model,
                                                        created=int(started))
        if signatures:
            await self._signatures.put_many(signatures)
        record.done(200, key_id=result.key_id, response=gemini, text=_completion_text(completion),
                    size=len(body) + len(result.body))
        return JsonReply.of(completion)

    async def _translate(self, payload: Any) -> ChatRequest:
        fetched = None
        if isinstance(payload, dict):
            urls = media_urls(payload)
            if urls:
                fetched = await fetch_media(self._fetcher, urls)
        ids = tool_call_ids(payload) if isinstance(payload, dict) else []
        signatures = await self._signatures.get_many(ids) if ids else None
        return parse_chat_request(payload, search_models=self._search_models,
                                  code_execution=self._code_execution, fetched_media=fetched,
                                  signatures=signatures)

    async def _relay(self, adapter: TranslatedStream, upstream: UpstreamStream, record: CallRecord,
                     request_size: int) -> AsyncIterator[bytes]:
        try:
            async for out in relay(upstream, adapter, record, request_size):
                yield out
        finally:
            # Signatures seen before a failure or a disconnect are still worth keeping for the next turn.
            if adapter.translator.signatures:
                await self._signatures.put_many(adapter.translator.signatures)


def _completion_text(completion: dict[str, Any]) -> str:
    choices = completion.get("choices") or []
    if not choices:
        return ""
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else ""
