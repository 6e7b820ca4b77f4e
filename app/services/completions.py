"""Legacy ``/v1/completions`` through the shared call path (pool, retries, stream commit, analytics)."""

from __future__ import annotations

import secrets
import time

import orjson

from app.errors import GatewayError
from app.observability.events import EventSink
from app.protocols.openai_chat.errors import scrub, stream_failure
from app.protocols.openai_chat.sse import DONE, sse_event
from app.protocols.openai_legacy.completions import CompletionStream, completion_from_gemini, parse_completion_request
from app.services.calls import CallRecord, TranslatedStream, relay
from app.services.replies import JsonReply, Reply, StreamReply, upstream_error
from app.upstream import GeminiClient, UpstreamStream

__all__ = ["CompletionsService"]


class CompletionsService:
    def __init__(self, client: GeminiClient, events: EventSink) -> None:
        self._client = client
        self._events = events

    async def complete(self, payload: object) -> Reply:
        started = time.time()
        req = parse_completion_request(payload)
        record = CallRecord(self._events, "openai", req.model, req.body, started, stream=req.stream)
        body = orjson.dumps(req.body)
        try:
            if req.stream:
                result = await self._client.stream(f"models/{req.model}:streamGenerateContent", model=req.model,
                                                   body=body, query="alt=sse", framing="sse")
            else:
                result = await self._client.call("POST", f"models/{req.model}:generateContent", model=req.model,
                                                 body=body)
        except GatewayError as exc:
            record.done(exc.status, error=exc.message)
            raise
        completion_id = "cmpl-" + secrets.token_urlsafe(18)
        if isinstance(result, UpstreamStream):
            translator = CompletionStream(completion_id=completion_id, model=req.requested_model,
                                          created=int(started), echo=req.echo_prompt)
            adapter = TranslatedStream(translator, sse_event, stream_failure, keep=record.wants_bodies,
                                       trailer=DONE)
            return StreamReply(relay(result, adapter, record, len(body)))
        if result.status != 200:
            error = upstream_error(result)
            record.done(error.status, key_id=result.key_id, error=scrub(error.message))
            raise error
        gemini = orjson.loads(result.body)
        completion = completion_from_gemini(gemini, completion_id=completion_id, model=req.requested_model,
                                            created=int(started), echo=req.echo_prompt)
        text = "".join(str(c.get("text") or "") for c in completion.get("choices") or ())
        record.done(200, key_id=result.key_id, response=gemini, text=text, size=len(body) + len(result.body))
        return JsonReply.of(completion)
