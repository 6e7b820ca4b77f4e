"""Legacy ``/v1/completions`` through the shared call path (pool, retries, stream commit)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson

from app.gemini.framing import SSEDecoder
from app.keys import NoKeyAvailable, Outcome, OutcomeKind, classify
from app.protocols.openai_chat.errors import RequestError, UpstreamStreamError, gemini_error_to_openai, openai_error_body
from app.protocols.openai_chat.sse import DONE, sse_event
from app.protocols.openai_legacy.completions import (CompletionRequest, chunk_from_gemini, completion_from_gemini,
                                                     parse_completion_request)
from app.services.replies import JsonReply, Reply, StreamReply, openai_error_reply
from app.upstream import GeminiClient, UpstreamStream, UpstreamUnavailable

__all__ = ["CompletionsService"]

OK = Outcome(OutcomeKind.OK, 200)


class CompletionsService:
    def __init__(self, client: GeminiClient) -> None:
        self._client = client

    async def complete(self, payload: object) -> Reply:
        try:
            req = parse_completion_request(payload)
        except RequestError as exc:
            return openai_error_reply(exc)
        body = orjson.dumps(req.body)
        try:
            if req.stream:
                result = await self._client.stream(f"models/{req.model}:streamGenerateContent", model=req.model,
                                                   body=body, query="alt=sse", framing="sse")
            else:
                result = await self._client.call("POST", f"models/{req.model}:generateContent", model=req.model,
                                                 body=body)
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            return openai_error_reply(exc)
        completion_id = "cmpl-" + secrets.token_urlsafe(18)
        if isinstance(result, UpstreamStream):
            return StreamReply(self._relay(req, result, completion_id))
        if result.status != 200:
            return openai_error_reply(result)
        return JsonReply.of(completion_from_gemini(orjson.loads(result.body), completion_id=completion_id,
                                                   model=req.requested_model, created=int(time.time()),
                                                   echo=req.echo_prompt))

    async def _relay(self, req: CompletionRequest, upstream: UpstreamStream, completion_id: str
                     ) -> AsyncIterator[bytes]:
        decoder = SSEDecoder()
        created = int(time.time())
        echo = req.echo_prompt
        outcome: Outcome | None = None
        try:
            try:
                for data in decoder.feed(upstream.first):
                    yield sse_event(self._chunk(data, req, completion_id, created, echo))
                    echo = None
                async for raw in upstream.rest():
                    for data in decoder.feed(raw):
                        yield sse_event(self._chunk(data, req, completion_id, created, echo))
                        echo = None
                for data in decoder.flush():
                    yield sse_event(self._chunk(data, req, completion_id, created, echo))
                    echo = None
                outcome = OK
                yield DONE
            except UpstreamStreamError as exc:
                outcome = classify(exc.status, exc.body)
                yield sse_event(gemini_error_to_openai(exc.status, exc.body)[1])
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                outcome = Outcome(OutcomeKind.TRANSIENT, 0, reason=type(exc).__name__)
                yield sse_event(openai_error_body(f"the upstream stream failed: {type(exc).__name__}", "api_error",
                                                  None, "upstream_stream_error"))
        finally:
            if outcome is None:
                upstream.abort()
            else:
                await upstream.finish(outcome)

    @staticmethod
    def _chunk(data: bytes, req: CompletionRequest, completion_id: str, created: int, echo: str | None) -> dict:
        chunk = orjson.loads(data)
        if isinstance(chunk, dict) and chunk.get("error") is not None:
            code = chunk["error"].get("code") if isinstance(chunk["error"], dict) else None
            raise UpstreamStreamError(code if isinstance(code, int) else 500, chunk)
        return chunk_from_gemini(chunk, completion_id=completion_id, model=req.requested_model, created=created,
                                 echo=echo)

