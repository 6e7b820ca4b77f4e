"""ResponsesService: an OpenAI Responses API call from request to reply, stream or not, plus its state.

The call path is Chat Completions' (ChatService): validate and translate first (a bad request never reaches
the upstream), resolve what translation cannot do itself (``previous_response_id`` history from the store,
image downloads, remembered thought signatures), send through the pool, translate back. Streams are
committed by GeminiClient before the client sees a byte; after that a failure ends with ``error`` +
``response.failed``. ``store`` (default true) keeps the response and the history it answered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from app.errors import GatewayError, NotFound
from app.net import SafeFetcher
from app.observability.events import EventSink
from app.protocols.openai_chat.errors import RequestError, gemini_error_to_openai, scrub
from app.protocols.openai_responses.compaction import compacted_response, compaction_item, summary_body, summary_text
from app.protocols.openai_responses.content import image_urls
from app.protocols.openai_responses.ids import new_id
from app.protocols.openai_responses.items import call_ids, is_reference
from app.protocols.openai_responses.output import usage_from_gemini
from app.protocols.openai_responses.request import ResponsesRequest, parse_responses_request
from app.protocols.openai_responses.response import envelope, response_from_gemini
from app.protocols.openai_responses.stream import ResponseStream, sse, whole_items
from app.keys.affinity import Affinity, body_hint
from app.services.calls import CallRecord, TranslatedStream, relay_keeping_signatures
from app.services.generate import generate
from app.services.media import fetch_media
from app.services.replies import JsonReply, Reply, StreamReply, upstream_error
from app.services.response_store import ResponseStore, StoreUnavailable
from app.services.signatures import SignatureCache
from app.upstream import GeminiClient, UpstreamStream

__all__ = ["ResponsesService"]

log = logging.getLogger("gateway.responses")

_ITEM = "item:"  # store key prefix of output items kept for item_reference


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"No response found with id '{response_id}'.", code="not_found")


class StoreDown(GatewayError):
    """The response store (Redis) did not answer: retry soon."""

    status = 503
    code = "store_unavailable"


def _store_down(exc: StoreUnavailable) -> StoreDown:
    return StoreDown(str(exc), retry_after=1.0)


def stream_failure(translator: ResponseStream, status: int, body: dict[str, Any]) -> bytes:
    """``error`` + ``response.failed`` for a failure after the commit (Google-shaped ``body``)."""
    if status == 502 and body.get("error", {}).get("status") == "UNAVAILABLE":
        events = translator.fail("server_error", str(body["error"].get("message")))
    else:
        error = gemini_error_to_openai(status, body)[1]["error"]
        events = translator.fail(str(error["code"] or "server_error"), error["message"], error["type"])
    return b"".join(sse(event) for event in events)


class CompactionFailed(GatewayError):
    status = 502
    code = "compaction_failed"


class ResponsesService:
    def __init__(self, client: GeminiClient, *, store: ResponseStore, signatures: SignatureCache,
                 events: EventSink, fetcher: SafeFetcher | None, affinity: Affinity | None = None) -> None:
        self._client = client
        self._affinity = affinity
        self._store = store
        self._signatures = signatures
        self._events = events
        self._fetcher = fetcher

    # -- state ---------------------------------------------------------------------------------------------

    async def _record(self, response_id: str) -> dict[str, Any] | None:
        """A stored response's record; item records (``item:`` keys) are never answered as responses."""
        if ":" in response_id:
            return None
        return await self._store.get(response_id)

    async def retrieve(self, response_id: str) -> Reply:
        try:
            record = await self._record(response_id)
        except StoreUnavailable as exc:
            raise _store_down(exc) from None
        if not record:
            raise _not_found(response_id)
        return JsonReply.of(record["response"])

    async def delete(self, response_id: str) -> Reply:
        try:
            deleted = ":" not in response_id and await self._store.delete(response_id)
        except StoreUnavailable as exc:
            raise _store_down(exc) from None
        if not deleted:
            raise _not_found(response_id)
        return JsonReply.of({"id": response_id, "object": "response.deleted", "deleted": True})

    async def _history(self, payload: Any) -> list[Any]:
        previous = payload.get("previous_response_id") if isinstance(payload, dict) else None
        if previous is None:
            return []
        if not isinstance(previous, str) or not previous:
            raise RequestError("previous_response_id must be a non-empty string", "previous_response_id")
        record = await self._record(previous)
        if record is None:
            raise RequestError(f"Previous response with id '{previous}' not found (it was never stored, was "
                               "deleted or expired).", "previous_response_id", "previous_response_not_found")
        return [*record["history"], *record["response"]["output"]]

    async def _save(self, req: ResponsesRequest, history: list[Any], response: dict[str, Any]) -> None:
        """Keep the response (for previous_response_id, GET) and each output item (for item_reference)."""
        if not req.store or response.get("status") == "failed":
            return
        try:
            await self._store.put(response["id"], {"response": response, "history": [*history, *req.input_items]})
            for item in response.get("output") or []:
                if isinstance(item.get("id"), str):
                    await self._store.put(_ITEM + item["id"], {"item": item})
        except StoreUnavailable:
            pass  # logged by the store; the answer still goes out

    async def _resolve_references(self, payload: Any) -> Any:
        """The payload with every stored ``item_reference`` replaced by its item (unknown ones are left for the
        translator, which names them)."""
        items = payload.get("input") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not any(is_reference(i) for i in items):
            return payload
        resolved: list[Any] = []
        for item in items:
            record = await self._store.get(_ITEM + item["id"]) if is_reference(item) else None
            resolved.append(record["item"] if record else
                            ({"type": "item_reference", **item} if is_reference(item) else item))
        return {**payload, "input": resolved}

    async def _prepare(self, payload: Any) -> tuple[ResponsesRequest, list[Any]]:
        history = await self._history(payload)
        payload = await self._resolve_references(payload)
        items = payload.get("input") if isinstance(payload, dict) else None
        everything = [*history, *(items if isinstance(items, list) else [])]
        fetched = None
        if urls := image_urls(everything):
            fetched = await fetch_media(self._fetcher, urls, param="input")
        ids = call_ids(everything)
        signatures = await self._signatures.get_many(ids) if ids else None
        return parse_responses_request(payload, history=history, fetched=fetched, signatures=signatures), history

    # -- create --------------------------------------------------------------------------------------------

    async def create(self, payload: Any, *, user_id: str | None = None, session_id: str | None = None,
                     hint: str | None = None) -> Reply:
        """``hint``: the session header's affinity hint (``prompt_cache_key`` and ``user`` are weaker ones)."""
        started = time.time()
        try:
            req, history = await self._prepare(payload)
        except StoreUnavailable as exc:
            raise _store_down(exc) from None
        base = envelope(new_id("resp"), req.requested_model, int(started), req.echo)
        if req.compaction_trigger:
            return await self._compact_turn(req, history, base)
        record = CallRecord(self._events, "responses", req.model, req.body, started, stream=req.stream,
                            user_id=user_id or req.user, session_id=session_id)
        body = orjson.dumps(req.body)
        hint = hint or body_hint(payload.get("prompt_cache_key"), payload.get("user"))
        try:
            result = await generate(self._client, req.model, body, stream=req.stream, affinity=self._affinity,
                                    hint=hint)
        except GatewayError as exc:
            record.done(exc.status, error=exc.message)
            raise
        if isinstance(result, UpstreamStream):
            translator = ResponseStream(base, req.tools)
            adapter = TranslatedStream(translator, sse, lambda status, error: stream_failure(translator, status, error),
                                       keep=record.wants_bodies,
                                       prelude=b"".join(sse(event) for event in translator.start()))
            return StreamReply(self._relay(req, history, adapter, translator, result, record, len(body)))
        if result.status != 200:
            error = upstream_error(result)
            record.done(error.status, key_id=result.key_id, error=scrub(error.message))
            raise error
        gemini = orjson.loads(result.body)
        response, signatures = response_from_gemini(gemini, base=base, tools=req.tools)
        if signatures:
            await self._signatures.put_many(signatures)
        await self._save(req, history, response)
        record.done(200, key_id=result.key_id, response=gemini, text=_output_text(response),
                    size=len(body) + len(result.body))
        return JsonReply.of(response)

    async def _relay(self, req: ResponsesRequest, history: list[Any], adapter: TranslatedStream,
                     translator: ResponseStream, upstream: UpstreamStream, record: CallRecord,
                     size: int) -> AsyncIterator[bytes]:
        async for out in relay_keeping_signatures(upstream, adapter, record, self._signatures, size):
            yield out
        await self._save(req, history, translator.response)  # the stream ended, well or not

    # -- compaction ----------------------------------------------------------------------------------------

    async def _summarise(self, req: ResponsesRequest) -> tuple[str, dict[str, Any]]:
        """(summary, usage) from one non-stream Gemini call through the pool."""
        body = orjson.dumps(summary_body(req.body))
        result = await self._client.call("POST", f"models/{req.model}:generateContent", model=req.model, body=body)
        if result.status != 200:
            raise upstream_error(result)
        gemini = orjson.loads(result.body)
        summary = summary_text(gemini).strip()
        if not summary:
            raise CompactionFailed("Gemini returned an empty summary; the history was not compacted")
        return summary, usage_from_gemini(gemini.get("usageMetadata"))

    async def _compact_turn(self, req: ResponsesRequest, history: list[Any], base: dict[str, Any]) -> Reply:
        """A ``compaction_trigger`` turn: exactly one compaction item, streamed or not."""
        summary, usage = await self._summarise(req)
        item = compaction_item(summary)
        if req.stream:
            events = whole_items(base, [item], usage)

            async def body() -> AsyncIterator[bytes]:
                for event in events:
                    yield sse(event)
            return StreamReply(body())
        response = {**base, "status": "completed", "output": [item], "usage": usage}
        await self._save(req, history, response)
        return JsonReply.of(response)

    async def compact(self, payload: Any) -> Reply:
        """``POST /v1/responses/compact``: the user messages kept plus one compaction item."""
        if isinstance(payload, dict):
            payload = {k: v for k, v in payload.items() if k not in ("stream", "store")}
        try:
            req, history = await self._prepare(payload)
        except StoreUnavailable as exc:
            raise _store_down(exc) from None
        summary, usage = await self._summarise(req)
        return JsonReply.of(compacted_response([*history, *req.input_items], summary, created=int(time.time()),
                                               usage=usage))

def _output_text(response: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for item in response.get("output", []) if item.get("type") == "message"
                   for part in item.get("content", []) if part.get("type") == "output_text")


