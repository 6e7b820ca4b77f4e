"""NativeService: Gemini REST passthrough on pool keys.

Only the key changes hands: the client's body and query (less its ``key``) go upstream byte for byte, and
the upstream's status, content type and framing come back unchanged. Streams are relayed as raw bytes; the
relay only scans them lightly (a finish reason seen, an error event) to classify how the stream ended, and
decodes events only when an analytics exporter wants the assembled response.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote_plus

import orjson

from app.errors import GatewayError, InvalidRequest, NotFound
from app.gemini.errors import google_error_body
from app.gemini.framing import JSONArrayDecoder, SSEDecoder
from app.gemini.limits import MAX_BODY_DEPTH, LimitError, check_json
from app.keys import Outcome, OutcomeKind, classify
from app.keys.affinity import Affinity
from app.keys.manager import not_served
from app.observability.events import EventSink, NullSink
from app.gemini.assemble import assemble_stream
from app.services.calls import CallRecord, relay
from app.services.replies import JsonReply, Reply, StreamReply
from app.sessions.history import read_reply
from app.services.generate import generate
from app.upstream import MODELS_BUCKET, Framing, GeminiClient, UpstreamResponse, UpstreamStream

MODEL_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
METHODS = frozenset({"generateContent", "streamGenerateContent", "countTokens", "embedContent",
                     "batchEmbedContents"})
GENERATE = frozenset({"generateContent", "streamGenerateContent"})
OK = Outcome(OutcomeKind.OK, 200)


def valid_model(model: str) -> bool:
    return bool(MODEL_RE.match(model)) and model not in {".", ".."}


#: Query parameters Gemini defines on the routes this surface relays; every other parameter is dropped.
#: An allow-list, not a ``key`` deny-list: a deny-list has to foresee every spelling a server decodes
#: (``%6Bey``, ``k%65y``, ``key[]``, ``access_token``...), an allow-list does not (issue 12, item 6).
#: A parameter with a closed set of values keeps only those (``alt=sse;key=...`` is dropped whole).
FORWARDED_PARAMS: dict[str, re.Pattern[str] | None] = {
    "alt": re.compile(r"^(sse|json|proto|media)$"), "prettyPrint": re.compile(r"^(true|false)$"),
    "pageSize": re.compile(r"^\d{1,6}$"), "$.xgafv": re.compile(r"^[12]$"),
    "pageToken": None, "fields": None, "filter": None, "updateMask": None,
    "uploadType": re.compile(r"^(media|multipart|resumable)$"),
    "upload_protocol": re.compile(r"^[a-z]{1,16}$"),
}


def strip_key(query: bytes) -> str:
    """The client's query reduced to the parameters Gemini defines, re-encoded canonically.

    Names and values are percent-decoded before the check and re-encoded after it, so no spelling of
    ``key`` (nor of any other credential parameter) reaches the upstream or a log.
    """
    if not query:
        return ""
    kept: list[str] = []
    for pair in query.decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        name, value = unquote_plus(name), unquote_plus(value)
        if name not in FORWARDED_PARAMS:
            continue
        rule = FORWARDED_PARAMS[name]
        if rule is None or rule.match(value):
            kept.append(f"{name}={quote(value, safe='')}")
    return "&".join(kept)


class NativeStream:
    """The native surface's :class:`StreamAdapter`: the upstream's bytes pass unchanged. They are only scanned
    lightly for how the stream ended, and decoded only when an exporter wants the assembled response."""

    def __init__(self, sse: bool, keep_bodies: bool, scrub: Callable[[bytes], bytes]) -> None:
        self._sse = sse
        self._scrub = scrub
        self._held = bytearray()
        self._scan = _EndScanner()
        self._decoder: SSEDecoder | JSONArrayDecoder | None = None
        if keep_bodies:
            self._decoder = SSEDecoder() if sse else JSONArrayDecoder()
        self._chunks: list[dict[str, Any]] = []

    def feed(self, raw: bytes) -> list[bytes]:
        self._scan.feed(raw)
        if self._decoder is not None:
            self._chunks.extend(_events(self._decoder, raw))
        if self._scan.error is None:
            return [raw]
        # From the chunk where an error event starts, the rest (the error ends the stream) is held and sent
        # scrubbed: Google's message can echo the calling key. Chunks before it go out unscanned.
        self._held += raw
        return []

    def finish(self) -> tuple[list[bytes], Outcome]:
        return self._release(), self._scan.outcome()

    def failed(self, status: int, body: dict[str, Any]) -> bytes:
        # The framing is the upstream's: end it the way Gemini ends a failed stream.
        data = orjson.dumps(body)
        tail = (b"data: " + data + b"\r\n\r\n") if self._sse else (b",\r\n" + data + b"\n]")
        return b"".join(self._release()) + tail

    def _release(self) -> list[bytes]:
        held, self._held = bytes(self._held), bytearray()
        return [self._scrub(held)] if held else []

    def summary(self) -> tuple[dict[str, Any] | None, str]:
        response = assemble_stream(self._chunks) if self._chunks else None
        return response, _text_of(response)


class NativeService:
    def __init__(self, client: GeminiClient, events: EventSink, affinity: Affinity | None = None) -> None:
        self._client = client
        self._events = events
        self.affinity = affinity

    async def list_models(self, query: str) -> Reply:
        reply = _passthrough(await self._client.call("GET", "models", model=MODELS_BUCKET, query=query))
        return _served_only(reply, self._client.keys.may_serve)

    async def get_model(self, model: str, query: str) -> Reply:
        _check_model(model)
        if not self._client.keys.may_serve(model):
            raise not_served(model)
        return await self._plain("GET", f"models/{model}", MODELS_BUCKET, query)

    async def _plain(self, method: str, path: str, bucket: str, query: str) -> Reply:
        return _passthrough(await self._client.call(method, path, model=bucket, query=query))

    async def call(self, model: str, method: str, body: bytes, query: str, *, user_id: str | None = None,
                   session_id: str | None = None, key_id: str | None = None, hint: str | None = None) -> Reply:
        """``key_id``: the owner of resources the body names (pinned); ``hint``: a conversation's affinity
        hint (its key is preferred while healthy, rebound when it is not)."""
        _check_model(model)
        if method not in METHODS:
            raise NotFound(f"Method {method!r} is not supported by this gateway; supported: "
                           f"{', '.join(sorted(METHODS))}")
        if (refused := _unreadable(body)) is not None:
            return refused
        generating = method in GENERATE
        record = CallRecord(self._events if generating else NullSink(), "native", model, {}, time.time(),
                            stream=method == "streamGenerateContent", user_id=user_id, session_id=session_id)
        if generating and record.wants_bodies:
            request = _json_or_none(body)
            record.request = request if isinstance(request, dict) else {}
        stream = method == "streamGenerateContent"
        framing: Framing = "sse" if not stream or re.search(r"(^|&)alt=sse(&|$)", query) else "array"
        try:
            result = await generate(self._client, model, body, stream=stream, query=query, framing=framing,
                                    method=method, key_id=key_id, affinity=self.affinity, hint=hint)
        except GatewayError as exc:
            record.done(exc.status, error=exc.message)
            raise
        if isinstance(result, UpstreamStream):
            adapter = NativeStream("event-stream" in result.content_type, record.wants_bodies, result.scrub)
            return StreamReply(relay(result, adapter, record, len(body)), content_type=result.content_type)
        if generating and self._events.enabled:  # no analytics: the answer is not parsed at all
            ok = result.status == 200
            response = _json_or_none(result.body) if ok else None
            record.done(result.status, key_id=result.key_id, response=response, text=_text_of(response),
                        error=None if ok else result.body.decode(errors="replace")[:500],
                        size=len(body) + len(result.body))
        return _passthrough(result)


class _EndScanner:
    """How a relayed stream ended, from a light scan of its bytes (no JSON parsing)."""

    __slots__ = ("_tail", "finished", "error")

    def __init__(self) -> None:
        self._tail = b""
        self.finished = False
        self.error: bytes | None = None

    def feed(self, chunk: bytes) -> None:
        window = self._tail + chunk
        if not self.finished and b'"finishReason"' in window:
            self.finished = True
        if self.error is None:
            at = window.find(b'{"error"')
            if at >= 0:
                self.error = window[at:at + 2048]
        self._tail = window[-24:]

    def outcome(self) -> Outcome:
        if self.error is not None:
            match = re.search(rb'"code"\s*:\s*(\d{3})', self.error)
            return classify(int(match.group(1)) if match else 502, None)
        if not self.finished:
            return Outcome(OutcomeKind.TRANSIENT, 200, reason="stream ended without a finish reason")
        return OK


def _events(decoder: SSEDecoder | JSONArrayDecoder, raw: bytes) -> list[dict[str, Any]]:
    out = []
    for data in decoder.feed(raw):
        obj = _json_or_none(data)
        if isinstance(obj, dict) and "error" not in obj:
            out.append(obj)
    return out


def _json_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _text_of(response: dict[str, Any] | None) -> str:
    return read_reply(response).text if response else ""


def _served_only(reply: JsonReply, may_serve: Callable[[str], bool]) -> JsonReply:
    """A models page without the models no key may be sent (KEY_MODELS / KEY_EXCLUDE_MODELS); the page token
    stays, so paging still walks Google's whole list. Untouched when every model is served."""
    if reply.status != 200:
        return reply
    try:
        page = orjson.loads(reply.body)
        models = page["models"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return reply
    if not isinstance(models, list):
        return reply
    kept = [m for m in models if not isinstance(m, dict) or may_serve(str(m.get("name", "")))]
    if len(kept) == len(models):
        return reply
    return JsonReply(200, orjson.dumps({**page, "models": kept}), content_type=reply.content_type)


def _passthrough(resp: UpstreamResponse) -> JsonReply:
    return JsonReply(resp.status, resp.body, content_type=resp.content_type)


def _unreadable(body: bytes) -> JsonReply | None:
    """Google's 400 for a body the gateway itself could not handle: not JSON, nested deeper than
    :data:`MAX_BODY_DEPTH`, or an integer beyond int64 (``fieldViolations`` names the place). One orjson
    parse, about 2 ms per MB; an empty body is Google's to judge."""
    if not body.strip():
        return None
    try:
        check_json(orjson.loads(body), "", MAX_BODY_DEPTH)
    except orjson.JSONDecodeError as exc:
        return _invalid_argument(f"Invalid JSON payload received. {exc}", None)
    except LimitError as exc:
        field = exc.field or "body"
        return _invalid_argument(f"Invalid JSON payload received. {field}: {exc.message}", field)
    return None


def _invalid_argument(message: str, field: str | None) -> JsonReply:
    body = google_error_body(400, message, "INVALID_ARGUMENT")
    if field is not None:
        body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                     "fieldViolations": [{"field": field, "description": message}]}]
    return JsonReply.of(body, 400)


def _check_model(model: str) -> None:
    if not valid_model(model):
        raise InvalidRequest(f"Invalid model name {model[:80]!r}: use letters, digits, '.', '_' and '-'",
                             param="model")
