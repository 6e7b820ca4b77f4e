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
from typing import Any

import orjson

from app.errors import GatewayError
from app.observability.events import EventSink
from app.protocols.openai_chat.chat import ChatRequest, media_urls, parse_chat_request, tool_call_ids
from app.keys.affinity import Affinity, body_hint
from app.services.generate import generate
from app.protocols.openai_chat.errors import RequestError, gemini_error_to_openai, scrub, stream_failure
from app.protocols.openai_chat.response import StreamTranslator, completion_from_gemini
from app.protocols.openai_chat.sse import DONE, sse_event
from app.net import SafeFetcher
from app.services.calls import CallRecord, TranslatedStream, relay_keeping_signatures
from app.services.media import fetch_media
from app.services.replies import JsonReply, Reply, StreamReply, upstream_error
from app.services.resources import Caller, ResourceService
from app.services.signatures import SignatureCache
from app.upstream import GeminiClient, UpstreamStream

log = logging.getLogger("gateway.chat")


class ChatService:
    def __init__(self, client: GeminiClient, *, search_models: list[str], code_execution: bool,
                 signatures: SignatureCache, events: EventSink, fetcher: SafeFetcher | None,
                 resources: ResourceService | None = None, affinity: Affinity | None = None) -> None:
        self._client = client
        self._resources = resources
        self._affinity = affinity
        self._search_models = frozenset(search_models)
        self._code_execution = code_execution
        self._signatures = signatures
        self._events = events
        self._fetcher = fetcher

    async def complete(self, payload: Any, *, user_id: str | None = None, session_id: str | None = None,
                       caller: Caller | None = None, hint: str | None = None) -> Reply:
        """A completion or a committed stream; every refusal and failure is raised as a GatewayError.
        ``caller``: who asks (tenancy of the files the request names); ``hint``: the session header's
        affinity hint (``prompt_cache_key`` and ``user`` in the body are weaker hints)."""
        started = time.time()
        req = await self._translate(payload)
        record = CallRecord(self._events, "openai", req.model, req.body, started, stream=req.stream,
                            user_id=user_id or req.user, session_id=session_id)
        try:
            body = orjson.dumps(req.body)
        except orjson.JSONEncodeError as exc:  # translation bounds what it forwards; this is the backstop
            raise RequestError(f"the request cannot be encoded for Gemini: {exc}") from None
        key_id = None
        if self._resources is not None and caller is not None:
            owner = await self._resources.route_body(body, caller)  # file_id parts go to their owner key
            if owner.error is not None:
                status, error = gemini_error_to_openai(owner.error.status, owner.error.body)
                return JsonReply.of(error, status)
            key_id = owner.key_id
        hint = hint or body_hint(payload.get("prompt_cache_key"), payload.get("user"))
        try:
            result = await generate(self._client, req.model, body, stream=req.stream, key_id=key_id,
                                    affinity=self._affinity, hint=hint)
        except GatewayError as exc:
            record.done(exc.status, error=exc.message)
            raise

        if isinstance(result, UpstreamStream):
            translator = StreamTranslator(model=req.requested_model, created=int(started),
                                          include_usage=req.include_usage,
                                          completion_id="chatcmpl-" + secrets.token_urlsafe(18))
            adapter = TranslatedStream(translator, sse_event, stream_failure, keep=record.wants_bodies,
                                       trailer=DONE)
            return StreamReply(relay_keeping_signatures(result, adapter, record, self._signatures, len(body)))
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


def _completion_text(completion: dict[str, Any]) -> str:
    choices = completion.get("choices") or []
    if not choices:
        return ""
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else ""
