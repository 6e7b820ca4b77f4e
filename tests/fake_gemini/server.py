"""The fake Gemini REST API (v1beta and v1) as an aiohttp application, plus its ``/_control/`` API.

aiohttp rather than the gateway's Starlette/uvicorn stack, so a bug shared by both cannot cancel out. Request
flow for a model call mirrors Google's front end: auth (key present, no Bearer) -> per-key behaviour (key
errors, quota) -> model lookup -> body validation -> backend errors -> answer. See the package docstring for
the behaviours, the magic prompts and the control API.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from aiohttp import web

from . import answers, errors, fixtures, media, resources, validation, vertex, wire
from .behaviours import KEY_ERRORS, STREAM_ONLY, Behaviours, Script, ScriptError, parse_script
from .catalog import Catalog, PageTokenError
from .projects import Projects

Framing = Literal["json", "sse", "array"]
StreamEnd = Literal["eof", "close", "abort"]

LOGGED_HEADERS = ("content-type", "x-goog-api-key", "authorization", "user-agent", "x-goog-api-client")
IMPLEMENTED_METHODS = frozenset(
    {"generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"}
)
# Real Gemini RPCs the fake does not implement: answered with the JSON 404 Google gives unsupported models.
OTHER_API_METHODS = frozenset(
    {
        "batchGenerateContent",
        "asyncBatchEmbedContent",
        "countTextTokens",
        "generateAnswer",
        "predict",
        "predictLongRunning",
        "bidiGenerateContent",
        "createCachedContent",
    }
)
# The model capability each RPC needs (streaming and batch embedding report the base method, as recorded).
REQUIRED_METHOD = {
    "generateContent": "generateContent",
    "streamGenerateContent": "generateContent",
    "countTokens": "countTokens",
    "embedContent": "embedContent",
    "batchEmbedContents": "embedContent",
}
SMALL_EMBEDDING_MODELS = {"text-embedding-004": 768}
DEMO_LABEL = "[DEMO: fake Gemini, not Google] "
ARRAY_STREAM_HEADERS = {**wire.COMMON_HEADERS, "Content-Type": wire.JSON_CONTENT_TYPE}


@dataclass
class Options:
    """Process-wide knobs (CLI flags / env in ``__main__``)."""

    chunk_delay: float = 0.0
    slow_delay: float = 2.0
    retry_delay: str | None = None  # None: the fixture's RetryInfo ("58s")
    words_per_chunk: int = answers.DEFAULT_WORDS_PER_CHUNK
    log_limit: int = 10_000  # 0 disables the request log (benchmarks)
    extra_models: list[str] = field(default_factory=list)
    demo: bool = False  # every answer's text starts with DEMO_LABEL (make demo)


@dataclass
class Call:
    """What one received request carried, parsed once."""

    key: str
    raw: bytes
    body: Any
    json_error: bool


class FakeGemini:
    """State shared by every handler: scripts, queue, request log and stream statistics."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.catalog = Catalog.load(self.options.extra_models)
        self.behaviours = Behaviours()
        self.queue: deque[dict[str, Any]] = deque()
        self.log: deque[dict[str, Any]] = deque(maxlen=max(self.options.log_limit, 1))
        self.counts: Counter[str] = Counter()
        self.disconnects = 0
        self.open_streams = 0
        self.streams_started = 0
        self.streams_completed = 0
        self.projects = Projects()
        self.resources: resources.Handlers | None = None

    # ------------------------------------------------------------------------------------------------ app

    def make_app(self) -> web.Application:
        """The aiohttp application with the API routes, the control routes and Google's HTML 404."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        add = app.router.add_route
        add("GET", "/_control/requests", self.control_requests)
        add("GET", "/_control/stats", self.control_stats)
        add("POST", "/_control/script", self.control_script)
        add("POST", "/_control/enqueue", self.control_enqueue)
        add("POST", "/_control/reset", self.control_reset)
        add("POST", "/_control/project", self.control_project)
        self.resources = resources.add_routes(app, self)
        vertex.add_routes(app, self)
        add("GET", "/{version:v1beta|v1}/models", self.list_models)
        add("GET", "/{version:v1beta|v1}/models/{model}", self.get_model)
        add("POST", "/{version:v1beta|v1}/models/{target}", self.model_call)
        add("GET", "/{version:v1beta|v1}/tunedModels", self.list_tuned_models)
        add("*", "/{tail:.*}", self.not_found)
        return app

    # ------------------------------------------------------------------------------------------- plumbing

    async def _receive(self, request: web.Request) -> Call:
        """Read, parse and log one request; the key comes from ``x-goog-api-key`` or ``?key=``."""
        raw = await request.read()
        key = request.headers.get("x-goog-api-key") or request.query.get("key") or ""
        body: Any = None
        json_error = False
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                json_error = True
        self.counts[key] += 1
        if self.options.log_limit > 0:
            headers = request.headers
            self.log.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": dict(request.query),
                    "api_key": key or None,
                    "headers": {h: headers[h] for h in LOGGED_HEADERS if h in headers},
                    "body": body,
                    "raw_body": raw.decode("utf-8", errors="replace"),
                    "time": time.time(),
                }
            )
        return Call(key, raw, body, json_error)

    @staticmethod
    def _auth_error(request: web.Request, call: Call) -> errors.ErrorReply | None:
        """Bearer is for OAuth on native paths (401); no key at all is an unregistered caller (403)."""
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            return errors.bearer_rejected()
        if not call.key:
            return errors.unregistered_caller()
        return None

    @staticmethod
    def _json(status: int, body: Any) -> web.Response:
        return web.Response(body=wire.pretty_json(body), status=status, headers=wire.JSON_HEADERS)

    @staticmethod
    def _error(reply: errors.ErrorReply, framing: Framing = "json") -> web.Response:
        """An error before any answer byte: plain JSON, except the JSON-array stream wraps it in ``[...]``.

        On ``alt=sse`` Google keeps ``text/event-stream`` on the un-framed JSON error body (recorded in
        errors/404__streamGenerateContent-alt-sse-unknown-model__js-genai.json in the shared fixtures).
        """
        status, body = reply
        if framing == "array":
            return web.Response(body=wire.pretty_json([body]), status=status, headers=ARRAY_STREAM_HEADERS)
        headers = wire.SSE_HEADERS if framing == "sse" else wire.JSON_HEADERS
        return web.Response(body=wire.pretty_json(body), status=status, headers=headers)

    async def _key_phase(self, script: Script, slot: str | None) -> errors.ErrorReply | None:
        """Per-key effects every authenticated route sees: the slow delay and key-level errors."""
        if script.behaviour == "slow":
            self.behaviours.acted(slot)
            await asyncio.sleep(self.options.slow_delay if script.delay is None else script.delay)
        if script.behaviour in KEY_ERRORS:
            self.behaviours.acted(slot)
            return errors.api_key_invalid() if script.behaviour == "invalid" else errors.service_disabled()
        return None

    def _quota_error(self, script: Script, slot: str | None, model: str) -> errors.ErrorReply | None:
        """429s scripted for model calls (checked before the body, like a quota in front of the backend)."""
        if script.behaviour == "rpm":
            self.behaviours.acted(slot)
            return errors.rate_limited_per_minute(model, script.retry_delay or self.options.retry_delay)
        if script.behaviour == "rpd":
            self.behaviours.acted(slot)
            return errors.quota_exhausted_per_day(model, script.retry_delay)
        return None

    def _backend_error(self, script: Script, slot: str | None) -> errors.ErrorReply | None:
        """503/500 scripted for model calls (after validation: the backend failed a valid request)."""
        if script.behaviour not in ("unavail", "internal"):
            return None
        self.behaviours.acted(slot)
        return errors.unavailable() if script.behaviour == "unavail" else errors.internal()

    # ------------------------------------------------------------------------------------------- catch-all

    async def not_found(self, request: web.Request) -> web.Response:
        """Google's front end answers unrouted paths with an HTML 404."""
        await self._receive(request)
        return web.Response(
            body=errors.not_found_html(request.path),
            status=404,
            headers={**wire.COMMON_HEADERS, "Content-Type": "text/html; charset=UTF-8"},
        )

    # ---------------------------------------------------------------------------------------------- models

    async def _authenticated(self, request: web.Request) -> tuple[Call, web.Response | None]:
        call = await self._receive(request)
        reply = self._auth_error(request, call)
        if reply is None:
            script, slot = self.behaviours.resolve(call.key)
            reply = await self._key_phase(script, slot)
            if reply is None and script.behaviour == "ok":
                self.behaviours.acted(slot)
        return call, (self._error(reply) if reply else None)

    async def list_models(self, request: web.Request) -> web.Response:
        """``models.list`` with Google's pagination."""
        _, failed = await self._authenticated(request)
        if failed:
            return failed
        raw_size = request.query.get("pageSize")
        try:
            size = int(raw_size) if raw_size else None
        except ValueError:
            message = f"Invalid value at 'page_size' (TYPE_INT32), \"{raw_size}\""
            return self._error(
                errors.invalid_argument(message, [{"field": "page_size", "description": message}])
            )
        try:
            page = self.catalog.page(size, request.query.get("pageToken"))
        except PageTokenError:
            return self._error(errors.simple(400, "INVALID_ARGUMENT", "Invalid page token."))
        return self._json(200, page)

    async def get_model(self, request: web.Request) -> web.Response:
        """``models.get``: the Model object or a 404."""
        if ":" in request.match_info["model"]:
            return await self.not_found(request)
        _, failed = await self._authenticated(request)
        if failed:
            return failed
        model_id = request.match_info["model"]
        model = self.catalog.get(model_id)
        if model is None:
            return self._error(errors.model_not_found(model_id, "get", request.match_info["version"]))
        return self._json(200, model)

    async def list_tuned_models(self, request: web.Request) -> web.Response:
        """``tunedModels.list``: nobody has tuned models here; Google answers an empty object."""
        _, failed = await self._authenticated(request)
        return failed or self._json(200, {})

    # ------------------------------------------------------------------------------------------ model calls

    async def model_call(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1beta/models/{model}:{method}`` for every implemented RPC."""
        model, sep, method = request.match_info["target"].rpartition(":")
        version = request.match_info["version"]
        if not sep or not model or (method not in IMPLEMENTED_METHODS and method not in OTHER_API_METHODS):
            return await self.not_found(request)
        if method in ("batchGenerateContent", "asyncBatchEmbedContent") and self.resources is not None:
            return await self.resources.create_batch(request, model, method)
        framing: Framing = "json"
        if method == "streamGenerateContent":
            framing = "sse" if request.query.get("alt") == "sse" else "array"
        call = await self._receive(request)
        reply = self._auth_error(request, call)
        if reply:
            return self._error(reply, framing)
        script, slot = self.behaviours.resolve(call.key)
        reply = await self._key_phase(script, slot)
        if reply:
            return self._error(reply, framing)
        required = REQUIRED_METHOD.get(method, method)
        if method not in IMPLEMENTED_METHODS or not self.catalog.supports(model, required):
            return self._error(errors.model_not_found(model, required, version), framing)
        reply = self._quota_error(script, slot, model)
        if reply:
            return self._error(reply, framing)
        if call.json_error:
            return self._error(errors.invalid_json("Unexpected token."), framing)
        body = call.body if call.body is not None else {}
        if method in ("generateContent", "streamGenerateContent"):
            reply = validation.validate_generate(model, body)
        elif method == "countTokens":
            reply = validation.validate_count_tokens(body)
        else:
            reply = validation.validate_embed(body, batch=method == "batchEmbedContents")
        if reply:
            return self._error(reply, framing)
        reply = self.projects.check_refs(call.key, body)
        if reply:
            return self._error(reply, framing)
        reply = self._backend_error(script, slot)
        if reply:
            return self._error(reply, framing)
        if method == "countTokens":
            self._acted_ok(script, slot)
            return self._json(200, answers.count_tokens_response(body))
        if method in ("embedContent", "batchEmbedContents"):
            self._acted_ok(script, slot)
            return self._json(200, self._embed(model, body, batch=method == "batchEmbedContents"))
        if method == "generateContent":
            self._acted_ok(script, slot)
            return self._generate(model, body)
        return await self._stream_generate(request, model, body, framing, script, slot)

    def _acted_ok(self, script: Script, slot: str | None) -> None:
        """An ``ok`` override with ``times`` is used up by answered calls."""
        if script.behaviour == "ok":
            self.behaviours.acted(slot)

    def _embed(self, model: str, body: dict[str, Any], batch: bool) -> dict[str, Any]:
        default_dims = SMALL_EMBEDDING_MODELS.get(model)

        def values(request: dict[str, Any]) -> dict[str, Any]:
            dims = answers.get(request, "outputDimensionality") or default_dims
            return {
                "values": answers.embedding_values(
                    answers.content_text(answers.get(request, "content")), dims
                )
            }

        if batch:
            return {"embeddings": [values(r) for r in body["requests"]]}
        return {"embedding": values(body)}

    def _answer(self, model: str, body: dict[str, Any]) -> answers.Answer:
        """The default answer, its text labelled as a demo when the fake runs as ``make demo``'s upstream."""
        answer = answers.build_answer(model, body)
        if self.options.demo:
            for cand in answer.candidates:
                for part in cand.parts:
                    if isinstance(part.get("text"), str) and not part.get("thought"):
                        part["text"] = DEMO_LABEL + part["text"]
                        break
        return answer

    def _generate(self, model: str, body: dict[str, Any]) -> web.Response:
        """A non-stream answer: the next queued response if any, an image or audio answer for image and TTS
        models, else the default answer."""
        if self.queue:
            return self._queued_single(self.queue.popleft())
        media_body = media.media_answer(model, body, DEMO_LABEL if self.options.demo else "")
        if media_body is not None:
            return self._json(200, media_body)
        return self._json(200, answers.to_response(self._answer(model, body)))

    def _queued_single(self, entry: dict[str, Any]) -> web.Response:
        status, body, chunks = _queued_parts(entry)
        if chunks is not None:
            for chunk in chunks:
                if isinstance(chunk, dict) and "error" in chunk:
                    return self._json(int(chunk["error"].get("code", 500)), chunk)
            return self._json(status, answers.merge_chunks(chunks))
        return self._json(status, body)

    # --------------------------------------------------------------------------------------------- streams

    async def _stream_generate(
        self,
        request: web.Request,
        model: str,
        body: dict[str, Any],
        framing: Framing,
        script: Script,
        slot: str | None,
    ) -> web.StreamResponse:
        """A streamed answer, shaped by the key's behaviour (ok, midstream error, truncation)."""
        delay = self.options.chunk_delay if script.chunk_delay is None else script.chunk_delay
        behaviour = script.behaviour
        if behaviour in STREAM_ONLY:
            self.behaviours.acted(slot)
            answer = answers.build_answer(model, body)
            chunks = answers.to_chunks(answer, words_per_chunk=1)
            if behaviour == "midstream":
                sent = [answers.strip_finish(c) for c in chunks[: max(1, min(2, len(chunks) - 1))]]
                segments = _encode(sent, framing) + _encode([errors.unavailable()[1]], framing, first=False)
                return await self._write_stream(request, framing, segments, delay, "close")
            sent = [answers.strip_finish(c) for c in chunks[: max(1, len(chunks) - 1)]]
            end: StreamEnd = "abort" if script.abort else "close"
            return await self._write_stream(request, framing, _encode(sent, framing), delay, end)
        self._acted_ok(script, slot)
        if self.queue:
            return await self._queued_stream(request, self.queue.popleft(), framing, delay)
        answer = self._answer(model, body)
        chunks = answers.to_chunks(answer, words_per_chunk=self.options.words_per_chunk)
        return await self._write_stream(request, framing, _encode(chunks, framing), delay, "eof")

    async def _queued_stream(
        self, request: web.Request, entry: dict[str, Any], framing: Framing, delay: float
    ) -> web.StreamResponse:
        status, body, chunks = _queued_parts(entry)
        recorded = entry.get("_recorded")
        if chunks is None:
            if status != 200:
                return self._error((status, body), "sse" if framing == "sse" else "array")
            chunks = [body]
        if isinstance(recorded, fixtures.Recorded) and recorded.raw_events:
            if recorded.raw_format == "sse" and framing == "sse":
                return await self._write_stream(request, framing, list(recorded.raw_events), delay, "eof")
            if recorded.raw_format == "json-array" and framing == "array":
                segments = [
                    (wire.JSON_ARRAY_OPEN if i == 0 else wire.JSON_ARRAY_SEPARATOR) + element
                    for i, element in enumerate(recorded.raw_events)
                ]
                return await self._write_stream(request, framing, segments, delay, "eof")
        return await self._write_stream(request, framing, _encode(chunks, framing), delay, "eof")

    async def _write_stream(
        self,
        request: web.Request,
        framing: Framing,
        segments: list[bytes],
        delay: float,
        end: StreamEnd,
    ) -> web.StreamResponse:
        """Write each segment as its own network write, then end the way the scenario needs.

        ``eof``: a clean end (JSON arrays get their closing bracket); ``close``: the same, then the connection
        is closed; ``abort``: the socket is dropped mid-body (no closing bracket, no final chunk). A client
        that goes away mid-stream shows up as a write error or a cancelled handler and is counted.
        """
        headers = wire.SSE_HEADERS if framing == "sse" else ARRAY_STREAM_HEADERS
        response = web.StreamResponse(status=200, headers=headers)
        if end != "eof":
            response.force_close()
        self.open_streams += 1
        self.streams_started += 1
        try:
            await response.prepare(request)
            for index, segment in enumerate(segments):
                if index and delay:
                    await asyncio.sleep(delay)
                await response.write(segment)
            if end == "abort":
                await asyncio.sleep(0.05)  # let the written chunks leave before the reset
                if request.transport is not None:
                    request.transport.abort()
                self.streams_completed += 1
                return response
            if framing == "array":
                await response.write(wire.JSON_ARRAY_CLOSE if segments else b"[]")
            await response.write_eof()
            self.streams_completed += 1
        except ConnectionError:
            self.disconnects += 1
        except asyncio.CancelledError:
            self.disconnects += 1
            raise
        finally:
            self.open_streams -= 1
        return response

    # -------------------------------------------------------------------------------------------- control

    async def control_script(self, request: web.Request) -> web.Response:
        """``POST /_control/script``: install a per-key behaviour."""
        try:
            payload = await request.json()
            key, script = parse_script(payload if isinstance(payload, dict) else {})
        except (ValueError, ScriptError) as exc:
            return self._json(400, {"error": str(exc)})
        self.behaviours.set(key, script)
        return self._json(200, {"ok": True, "key": key, "behaviour": script.behaviour, "times": script.times})

    async def control_project(self, request: web.Request) -> web.Response:
        """``POST /_control/project`` ``{"key", "project"}``: put a key in a Google Cloud project (default: its
        own)."""
        payload = await request.json()
        if not isinstance(payload, dict) or not isinstance(payload.get("key"), str) \
                or not isinstance(payload.get("project"), str):
            return self._json(400, {"error": "need {'key': str, 'project': str}"})
        self.projects.assigned[payload["key"]] = payload["project"]
        return self._json(200, {"ok": True})

    async def control_enqueue(self, request: web.Request) -> web.Response:
        """``POST /_control/enqueue``: canned answers for the next generate/stream calls, in order."""
        try:
            payload = await request.json()
            entries = [_check_queue_entry(e) for e in payload["responses"]]
        except (ValueError, KeyError, TypeError, fixtures.FixtureError) as exc:
            return self._json(400, {"error": f"bad enqueue payload: {exc}"})
        self.queue.extend(entries)
        return self._json(200, {"ok": True, "queued": len(self.queue)})

    async def control_requests(self, request: web.Request) -> web.Response:
        """``GET /_control/requests[?key=...]``: the request log, oldest first."""
        key = request.query.get("key")
        entries = [e for e in self.log if key is None or e["api_key"] == key]
        return web.Response(body=orjson.dumps(entries), headers={"Content-Type": "application/json"})

    async def control_stats(self, request: web.Request) -> web.Response:
        """``GET /_control/stats``: request counts per key and stream bookkeeping."""
        return self._json(
            200,
            {
                "requests": dict(self.counts),
                "total_requests": sum(self.counts.values()),
                "disconnects": self.disconnects,
                "open_streams": self.open_streams,
                "streams_started": self.streams_started,
                "streams_completed": self.streams_completed,
                "queued": len(self.queue),
                "overrides": self.behaviours.snapshot(),
            },
        )

    async def control_reset(self, request: web.Request) -> web.Response:
        """``POST /_control/reset``: forget the log, the counters, the overrides and the queue."""
        self.behaviours.clear()
        self.projects.clear()
        self.queue.clear()
        self.log.clear()
        self.counts.clear()
        self.disconnects = 0
        self.streams_started = 0
        self.streams_completed = 0
        return self._json(200, {"ok": True})


def _encode(chunks: list[Any], framing: Framing, first: bool = True) -> list[bytes]:
    """Frame chunks as SSE events or as JSON-array pieces (``first`` says whether ``[`` opens the array)."""
    if framing == "sse":
        return [wire.sse_event(c) for c in chunks]
    return [wire.json_array_piece(c, first and i == 0) for i, c in enumerate(chunks)]


def _check_queue_entry(entry: Any) -> dict[str, Any]:
    """Validate one enqueued answer; fixtures are loaded now so a typo fails the control call, not a test."""
    if not isinstance(entry, dict):
        raise TypeError("each response must be an object")
    kinds = [k for k in ("body", "stream", "fixture") if k in entry]
    if len(kinds) != 1:
        raise ValueError("each response needs exactly one of 'body', 'stream' or 'fixture'")
    if "stream" in entry and not isinstance(entry["stream"], list):
        raise TypeError("'stream' must be a list of chunk objects")
    checked = dict(entry)
    if "fixture" in entry:
        checked["_recorded"] = fixtures.load(str(entry["fixture"]), int(entry.get("interaction", 0)))
    return checked


def _queued_parts(entry: dict[str, Any]) -> tuple[int, Any, list[Any] | None]:
    """``(status, body, chunks)`` of a queued answer; chunks is None for a single-body answer."""
    recorded = entry.get("_recorded")
    if isinstance(recorded, fixtures.Recorded):
        status = int(entry.get("status", recorded.status))
        return status, recorded.body, list(recorded.chunks) if recorded.chunks is not None else None
    if "stream" in entry:
        return int(entry.get("status", 200)), None, list(entry["stream"])
    return int(entry.get("status", 200)), entry["body"], None


async def start_in_loop(
    options: Options | None = None, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int, FakeGemini]:
    """Start the fake inside the running event loop (for in-process use); returns the bound port."""
    fake = FakeGemini(options)
    runner = web.AppRunner(fake.make_app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, int(bound), fake
