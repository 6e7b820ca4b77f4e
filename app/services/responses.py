"""ResponsesService: an OpenAI Responses API call from request to reply, stream or not, plus its state.

The call path is Chat Completions' (ChatService): validate and translate first (a bad request never reaches
the upstream), resolve what translation cannot do itself (``previous_response_id`` history from the store,
image downloads, remembered thought signatures), send through the pool, translate back. Streams are
committed by GeminiClient before the client sees a byte; after that a failure ends with ``error`` +
``response.failed``. ``store`` (default true) keeps the response and the history it answered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from app.gemini.framing import SSEDecoder
from app.keys import NoKeyAvailable, Outcome, OutcomeKind, classify
from app.observability.events import EventSink, Interaction
from app.protocols.openai_chat.errors import RequestError, UpstreamStreamError, gemini_error_to_openai, openai_error_body
from app.protocols.openai_responses.compaction import compacted_response, compaction_item, summary_body, summary_text
from app.protocols.openai_responses.content import image_urls
from app.protocols.openai_responses.ids import new_id
from app.protocols.openai_responses.items import call_ids, is_reference
from app.protocols.openai_responses.output import usage_from_gemini
from app.protocols.openai_responses.request import ResponsesRequest, parse_responses_request
from app.protocols.openai_responses.response import envelope, response_from_gemini
from app.protocols.openai_responses.stream import ResponseStream, sse, whole_items
from app.services.media import fetch_media
from app.services.replies import JsonReply, Reply, StreamReply, openai_error_reply
from app.services.response_store import ResponseStore, StoreUnavailable
from app.services.signatures import SignatureCache
from app.upstream import GeminiClient, UpstreamStream, UpstreamUnavailable

__all__ = ["ResponsesService"]

log = logging.getLogger("gateway.responses")

OK = Outcome(OutcomeKind.OK, 200)
_ITEM = "item:"  # store key prefix of output items kept for item_reference


def _not_found(response_id: str) -> JsonReply:
    return JsonReply.of(openai_error_body(f"No response found with id '{response_id}'.", "invalid_request_error",
                                          None, "not_found"), 404)


def _store_down(exc: StoreUnavailable) -> JsonReply:
    return JsonReply.of(openai_error_body(str(exc), "service_unavailable", None, "store_unavailable"), 503,
                        {"retry-after": "1"})


class ResponsesService:
    def __init__(self, client: GeminiClient, *, store: ResponseStore, signatures: SignatureCache,
                 events: EventSink, image_max_bytes: int, image_timeout: float) -> None:
        self._client = client
        self._store = store
        self._signatures = signatures
        self._events = events
        self._image_max_bytes = image_max_bytes
        self._image_timeout = image_timeout

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
            return _store_down(exc)
        return JsonReply.of(record["response"]) if record else _not_found(response_id)

    async def delete(self, response_id: str) -> Reply:
        try:
            deleted = ":" not in response_id and await self._store.delete(response_id)
        except StoreUnavailable as exc:
            return _store_down(exc)
        if not deleted:
            return _not_found(response_id)
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
            fetched = await fetch_media(self._client.session, urls, max_bytes=self._image_max_bytes,
                                        timeout=self._image_timeout)
        ids = call_ids(everything)
        signatures = await self._signatures.get_many(ids) if ids else None
        return parse_responses_request(payload, history=history, fetched=fetched, signatures=signatures), history

    # -- create --------------------------------------------------------------------------------------------

    async def create(self, payload: Any, *, user_id: str | None = None, session_id: str | None = None) -> Reply:
        started = time.time()
        try:
            req, history = await self._prepare(payload)
        except RequestError as exc:
            return openai_error_reply(exc)
        except StoreUnavailable as exc:
            return _store_down(exc)
        base = envelope(new_id("resp"), req.requested_model, int(started), req.echo)
        if req.compaction_trigger:
            return await self._compact_turn(req, history, base, started)
        body = orjson.dumps(req.body)
        path = f"models/{req.model}:{'streamGenerateContent' if req.stream else 'generateContent'}"
        try:
            if req.stream:
                result = await self._client.stream(path, model=req.model, body=body, query="alt=sse", framing="sse")
            else:
                result = await self._client.call("POST", path, model=req.model, body=body)
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            reply = openai_error_reply(exc)
            self._publish(req, None, started, reply.status, user_id, session_id, None, error=str(exc))
            return reply
        if isinstance(result, UpstreamStream):
            return StreamReply(self._relay(req, history, base, result, started, user_id, session_id, len(body)))
        if result.status != 200:
            reply = openai_error_reply(result)
            self._publish(req, None, started, reply.status, user_id, session_id, result.key_id, error="upstream error")
            return reply
        gemini = orjson.loads(result.body)
        response, signatures = response_from_gemini(gemini, base=base, tools=req.tools)
        if signatures:
            await self._signatures.put_many(signatures)
        await self._save(req, history, response)
        self._publish(req, gemini, started, 200, user_id, session_id, result.key_id,
                      text=_output_text(response), size=len(body) + len(result.body))
        return JsonReply.of(response)

    async def _relay(self, req: ResponsesRequest, history: list[Any], base: dict[str, Any], upstream: UpstreamStream,
                     started: float, user_id: str | None, session_id: str | None, size: int) -> AsyncIterator[bytes]:
        """Gemini SSE in, Responses SSE out; every ending reported to the pool and analytics exactly once."""
        translator = ResponseStream(base, req.tools)
        decoder = SSEDecoder()
        outcome: Outcome | None = None
        error: str | None = None
        try:
            head = b"".join(sse(event) for event in translator.start())
            try:  # one write per upstream read: every event a Gemini chunk produced goes out together
                first = head + self._events_for(decoder.feed(upstream.first), translator)
                head = b""
                yield first
                async for raw in upstream.rest():
                    if out := self._events_for(decoder.feed(raw), translator):
                        yield out
                tail = self._events_for(decoder.flush(), translator)
                closing = translator.finish()
                outcome = OK
            except UpstreamStreamError as exc:
                outcome = classify(exc.status, exc.body)
                _, body = gemini_error_to_openai(exc.status, exc.body)
                error = body["error"]["message"]
                tail = b""
                closing = translator.fail(str(body["error"]["code"] or "server_error"), error, body["error"]["type"])
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                outcome = Outcome(OutcomeKind.TRANSIENT, 0, reason=type(exc).__name__)
                error = f"the upstream stream failed: {type(exc).__name__}"
                tail = b""
                closing = translator.fail("server_error", error)
            yield head + tail + b"".join(sse(event) for event in closing)
            await self._save(req, history, translator.response)
        finally:
            if outcome is None:  # the client went away: not the key's fault
                upstream.abort()
                error = "client disconnected"
            else:
                await upstream.finish(outcome)
            if translator.signatures:
                await self._signatures.put_many(translator.signatures)
            self._publish(req, None, started, 200 if outcome is OK else 502, user_id, session_id, upstream.key_id,
                          text=translator.text, error=error, stream=True, size=size + 2 * len(translator.text))

    @staticmethod
    def _events_for(datas: list[bytes], translator: ResponseStream) -> bytes:
        """The SSE bytes of every event the decoded upstream events produce, joined for one write."""
        out: list[bytes] = []
        for data in datas:
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise UpstreamStreamError(502, {"error": {"code": 502, "status": "BAD_GATEWAY",
                                                          "message": "the upstream sent an unreadable event"}}
                                          ) from None
            out.extend(sse(e) for e in translator.feed(chunk))
        return b"".join(out)

    # -- compaction ----------------------------------------------------------------------------------------

    async def _summarise(self, req: ResponsesRequest) -> tuple[str, dict[str, Any]] | JsonReply:
        """(summary, usage) from one non-stream Gemini call through the pool, or the error reply."""
        body = orjson.dumps(summary_body(req.body))
        try:
            result = await self._client.call("POST", f"models/{req.model}:generateContent", model=req.model, body=body)
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            return openai_error_reply(exc)
        if result.status != 200:
            return openai_error_reply(result)
        gemini = orjson.loads(result.body)
        summary = summary_text(gemini).strip()
        if not summary:
            return JsonReply.of(openai_error_body("Gemini returned an empty summary; the history was not compacted",
                                                  "api_error", None, "compaction_failed"), 502)
        return summary, usage_from_gemini(gemini.get("usageMetadata"))

    async def _compact_turn(self, req: ResponsesRequest, history: list[Any], base: dict[str, Any],
                            started: float) -> Reply:
        """A ``compaction_trigger`` turn: exactly one compaction item, streamed or not."""
        outcome = await self._summarise(req)
        if isinstance(outcome, JsonReply):
            return outcome
        summary, usage = outcome
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
        except RequestError as exc:
            return openai_error_reply(exc)
        except StoreUnavailable as exc:
            return _store_down(exc)
        outcome = await self._summarise(req)
        if isinstance(outcome, JsonReply):
            return outcome
        summary, usage = outcome
        return JsonReply.of(compacted_response([*history, *req.input_items], summary, created=int(time.time()),
                                               usage=usage))

    # -- analytics -----------------------------------------------------------------------------------------

    def _publish(self, req: ResponsesRequest, response: dict[str, Any] | None, started: float, status: int,
                 user_id: str | None, session_id: str | None, key_id: str | None, *, text: str = "",
                 error: str | None = None, stream: bool = False, size: int = 0) -> None:
        if not self._events.enabled:
            return
        self._events.publish(Interaction(
            surface="responses", model=req.model, request=req.body, response=response, started=started,
            finished=time.time(), status=status, stream=stream or req.stream, user_id=user_id or req.user,
            session_id=session_id, key_id=key_id, error=error, output_text=text, size_hint=size))


def _output_text(response: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for item in response.get("output", []) if item.get("type") == "message"
                   for part in item.get("content", []) if part.get("type") == "output_text")


