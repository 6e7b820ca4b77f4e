"""ChatService: an OpenAI chat completion from request to reply, stream or not.

Order of work: validate and translate (a bad request never reaches the upstream), resolve what translation
cannot do itself (image downloads, remembered thought signatures), send through the pool, translate back.
For streams the upstream is committed before the client sees a byte (GeminiClient); after that a failure
becomes an OpenAI error event and never a clean ``finish_reason: stop``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from app.gemini.framing import SSEDecoder
from app.keys import NoKeyAvailable, Outcome, OutcomeKind, classify
from app.observability.events import EventSink, Interaction
from app.protocols.openai_chat.chat import ChatRequest, media_urls, parse_chat_request, tool_call_ids
from app.protocols.openai_chat.errors import RequestError, UpstreamStreamError, gemini_error_to_openai, openai_error_body
from app.protocols.openai_chat.response import StreamTranslator, assemble_stream, completion_from_gemini
from app.protocols.openai_chat.sse import DONE, sse_event
from app.services.media import fetch_media
from app.services.replies import JsonReply, Reply, StreamReply, openai_error_reply
from app.services.signatures import SignatureCache
from app.upstream import GeminiClient, UpstreamStream, UpstreamUnavailable

log = logging.getLogger("gateway.chat")

OK = Outcome(OutcomeKind.OK, 200)


class ChatService:
    def __init__(self, client: GeminiClient, *, search_models: list[str], code_execution: bool,
                 signatures: SignatureCache, events: EventSink, image_max_bytes: int,
                 image_timeout: float) -> None:
        self._client = client
        self._search_models = frozenset(search_models)
        self._code_execution = code_execution
        self._signatures = signatures
        self._events = events
        self._image_max_bytes = image_max_bytes
        self._image_timeout = image_timeout

    async def complete(self, payload: Any, *, user_id: str | None = None,
                       session_id: str | None = None) -> Reply:
        started = time.time()
        try:
            req = await self._translate(payload)
        except RequestError as exc:
            return openai_error_reply(exc)
        user_id = user_id or req.user
        body = orjson.dumps(req.body)
        try:
            if req.stream:
                result = await self._client.stream(f"models/{req.model}:streamGenerateContent", model=req.model,
                                                   body=body, query="alt=sse", framing="sse")
            else:
                result = await self._client.call("POST", f"models/{req.model}:generateContent",
                                                 model=req.model, body=body)
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            reply = openai_error_reply(exc)
            self._publish(req, None, started, reply.status, user_id, session_id, None, error=str(exc))
            return reply

        if isinstance(result, UpstreamStream):
            return StreamReply(self._relay(req, result, started, user_id, session_id, len(body)))
        if result.status != 200:
            reply = openai_error_reply(result)
            self._publish(req, None, started, reply.status, user_id, session_id, result.key_id,
                          error=_error_message(reply))
            return reply
        gemini = orjson.loads(result.body)
        completion, signatures = completion_from_gemini(gemini, model=req.requested_model,
                                                        created=int(started))
        if signatures:
            await self._signatures.put_many(signatures)
        self._publish(req, gemini, started, 200, user_id, session_id, result.key_id,
                      text=_completion_text(completion), size=len(body) + len(result.body))
        return JsonReply.of(completion)

    async def _translate(self, payload: Any) -> ChatRequest:
        fetched = None
        if isinstance(payload, dict):
            urls = media_urls(payload)
            if urls:
                fetched = await fetch_media(self._client.session, urls, max_bytes=self._image_max_bytes,
                                            timeout=self._image_timeout)
        ids = tool_call_ids(payload) if isinstance(payload, dict) else []
        signatures = await self._signatures.get_many(ids) if ids else None
        return parse_chat_request(payload, search_models=self._search_models,
                                  code_execution=self._code_execution, fetched_media=fetched,
                                  signatures=signatures)

    async def _relay(self, req: ChatRequest, upstream: UpstreamStream, started: float, user_id: str | None,
                     session_id: str | None, request_size: int) -> AsyncIterator[bytes]:
        """Gemini SSE in, OpenAI SSE out; every ending is reported to the pool and to analytics exactly once."""
        translator = StreamTranslator(model=req.requested_model, created=int(started),
                                      include_usage=req.include_usage,
                                      completion_id="chatcmpl-" + secrets.token_urlsafe(18))
        decoder = SSEDecoder()
        keep: list[dict[str, Any]] | None = [] if getattr(self._events, "wants_bodies", False) else None
        outcome: Outcome | None = None
        error: str | None = None
        try:
            try:
                for out in self._translate_events(decoder.feed(upstream.first), translator, keep):
                    yield out
                async for raw in upstream.rest():
                    for out in self._translate_events(decoder.feed(raw), translator, keep):
                        yield out
                for out in self._translate_events(decoder.flush(), translator, keep):
                    yield out
                for chunk in translator.finish():
                    yield sse_event(chunk)
                outcome = OK
                yield DONE
            except UpstreamStreamError as exc:
                outcome = classify(exc.status, exc.body)
                status, body = gemini_error_to_openai(exc.status, exc.body)
                error = body["error"]["message"]
                yield sse_event(body)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                outcome = Outcome(OutcomeKind.TRANSIENT, 0, reason=type(exc).__name__)
                error = f"the upstream stream failed: {type(exc).__name__}"
                yield sse_event(openai_error_body(error, "api_error", None, "upstream_stream_error"))
        finally:
            if outcome is None:  # the client went away (GeneratorExit/cancellation): not the key's fault
                upstream.abort()
                error = "client disconnected"
            else:
                await upstream.finish(outcome)
            if translator.signatures:
                await self._signatures.put_many(translator.signatures)
            response = assemble_stream(keep) if keep else None
            self._publish(req, response, started, 200 if outcome is OK else 502, user_id, session_id,
                          upstream.key_id, text=translator.text, error=error, stream=True,
                          size=request_size + 2 * len(translator.text) + 1024,
                          extra={"usage": translator.usage} if translator.usage and response is None else None)

    @staticmethod
    def _translate_events(events: list[bytes], translator: StreamTranslator,
                          keep: list[dict[str, Any]] | None) -> list[bytes]:
        out: list[bytes] = []
        for data in events:
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise UpstreamStreamError(502, {"error": {"code": 502, "status": "BAD_GATEWAY",
                                                          "message": "the upstream sent an unreadable event"}}
                                           ) from None
            if keep is not None and isinstance(chunk, dict) and "error" not in chunk:
                keep.append(chunk)
            for piece in translator.feed(chunk):
                out.append(sse_event(piece))
        return out

    def _publish(self, req: ChatRequest, response: dict[str, Any] | None, started: float, status: int,
                 user_id: str | None, session_id: str | None, key_id: str | None, *, text: str = "",
                 error: str | None = None, stream: bool = False, size: int = 0,
                 extra: dict[str, Any] | None = None) -> None:
        if not self._events.enabled:
            return
        self._events.publish(Interaction(
            surface="openai", model=req.model, request=req.body, response=response, started=started,
            finished=time.time(), status=status, stream=stream or req.stream, user_id=user_id,
            session_id=session_id, key_id=key_id, error=error, output_text=text or "", size_hint=size,
            extra=extra or {}))


def _completion_text(completion: dict[str, Any]) -> str:
    choices = completion.get("choices") or []
    if not choices:
        return ""
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else ""


def _error_message(reply: JsonReply) -> str:
    try:
        return str(orjson.loads(reply.body)["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "error"
