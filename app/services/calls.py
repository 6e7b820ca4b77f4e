"""The one call path every protocol shares once its request is translated: the interaction record and the
stream relay.

A protocol supplies only what differs: a :class:`StreamAdapter` that turns upstream bytes into its own events
and says how a failure after the commit looks in its protocol. Everything else is decided here, once: every
ending of a stream is reported to the pool exactly once (a client that left blames no key), the client never
sees a clean-looking end after a failure, and exactly one :class:`Interaction` is published per call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson

from app.gemini.assemble import assemble_stream
from app.gemini.errors import StreamBroke
from app.gemini.framing import SSEDecoder
from app.keys import Outcome, OutcomeKind, classify
from app.observability.events import EventSink, Interaction
from app.services.signatures import SignatureCache
from app.upstream import UpstreamStream

__all__ = ["CallRecord", "StreamAdapter", "StreamBroke", "TranslatedStream", "Translator", "relay"]

OK = Outcome(OutcomeKind.OK, 200)


class StreamAdapter(Protocol):
    """One protocol's view of a committed Gemini stream."""

    def feed(self, raw: bytes) -> Iterable[bytes]:
        """Bytes to send for these upstream bytes; raises :class:`StreamBroke` for an error event (after
        yielding what came before it, when it is a generator)."""
        ...

    def finish(self) -> tuple[list[bytes], Outcome]:
        """The closing bytes and how the stream ended (raises :class:`StreamBroke` if it did not end well)."""
        ...

    def failed(self, status: int, body: dict[str, Any]) -> bytes:
        """The protocol's error event for a failure after the commit (Google-shaped ``body``)."""
        ...

    def summary(self) -> tuple[dict[str, Any] | None, str]:
        """For analytics: the assembled Gemini response (``None`` when not kept) and the visible text."""
        ...


class Translator(Protocol):
    """A protocol's pure stream translator: Gemini chunks in, protocol events out."""

    def feed(self, chunk: dict[str, Any]) -> Iterable[Any]: ...

    def finish(self) -> Iterable[Any]: ...

    @property
    def text(self) -> str: ...

    @property
    def signatures(self) -> dict[str, str]: ...


class TranslatedStream:
    """The :class:`StreamAdapter` of every translating protocol: Gemini SSE decoded, each chunk through the
    protocol's translator, each event encoded. ``failed`` renders a failure after the commit; ``trailer`` is
    what the protocol sends after a clean end (OpenAI's ``[DONE]``), ``prelude`` what it sends first (the
    Responses API's ``response.created``)."""

    def __init__(self, translator: Translator, encode: Callable[[Any], bytes],
                 failed: Callable[[int, dict[str, Any]], bytes], *, keep: bool, trailer: bytes = b"",
                 prelude: bytes = b"") -> None:
        self.translator = translator
        self._prelude = prelude
        self._encode = encode
        self._failed = failed
        self._trailer = trailer
        self._decoder = SSEDecoder()
        self._keep: list[dict[str, Any]] | None = [] if keep else None
        self.usage_metadata: dict[str, Any] | None = None  # Gemini's usage is cumulative: the last one counts

    def feed(self, raw: bytes) -> Iterator[bytes]:
        return self._events(self._decoder.feed(raw))

    def finish(self) -> tuple[list[bytes], Outcome]:
        out = list(self._events(self._decoder.flush()))
        out.extend(self._encode(event) for event in self.translator.finish())
        if self._trailer:
            out.append(self._trailer)
        return out, OK

    def failed(self, status: int, body: dict[str, Any]) -> bytes:
        return self._failed(status, body)

    def summary(self) -> tuple[dict[str, Any] | None, str]:
        return (assemble_stream(self._keep) if self._keep else None), self.translator.text

    def _events(self, events: list[bytes]) -> Iterator[bytes]:
        """A generator, so what one read translated before an error event is still sent before the error."""
        if self._prelude:  # the protocol's opening events go out with the first upstream event
            yield self._prelude
            self._prelude = b""
        for data in events:
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise StreamBroke(502, {"error": {"code": 502, "status": "BAD_GATEWAY",
                                                  "message": "the upstream sent an unreadable event"}}) from None
            if isinstance(chunk, dict):
                if "usageMetadata" in chunk:
                    self.usage_metadata = chunk["usageMetadata"]
                if self._keep is not None and "error" not in chunk:
                    self._keep.append(chunk)
            for event in self.translator.feed(chunk):
                yield self._encode(event)


@dataclass(slots=True)
class CallRecord:
    """One model call's interaction, published once by :meth:`done`; free when no exporter is configured."""

    events: EventSink
    surface: str
    model: str
    request: dict[str, Any]
    started: float
    stream: bool = False
    user_id: str | None = None
    session_id: str | None = None
    _published: bool = False

    @property
    def wants_bodies(self) -> bool:
        return bool(getattr(self.events, "wants_bodies", False))

    def done(self, status: int, *, key_id: str | None = None, response: dict[str, Any] | None = None,
             text: str = "", error: str | None = None, size: int = 0, usage: dict[str, Any] | None = None) -> None:
        """``usage``: Gemini's ``usageMetadata`` when ``response`` is not kept (usage history counts tokens)."""
        if self._published or not self.events.enabled:
            return
        self._published = True
        extra = {"usageMetadata": usage} if usage is not None and response is None else {}
        self.events.publish(Interaction(
            surface=self.surface, model=self.model, request=self.request, response=response,  # type: ignore[arg-type]
            started=self.started, finished=time.time(), status=status, stream=self.stream, user_id=self.user_id,
            session_id=self.session_id, key_id=key_id, error=error, output_text=text or "",
            size_hint=size or 2 * len(text) + 1024, extra=extra))


async def relay_keeping_signatures(upstream: UpstreamStream, adapter: TranslatedStream, record: CallRecord,
                                   signatures: SignatureCache, request_size: int = 0) -> AsyncIterator[bytes]:
    """:func:`relay`, then the thought signatures the stream carried are remembered for the next turn, even
    after a failure or a disconnect (clients that drop them get them put back)."""
    try:
        async for out in relay(upstream, adapter, record, request_size):
            yield out
    finally:
        if adapter.translator.signatures:
            await signatures.put_many(adapter.translator.signatures)


def _drain(pieces: Iterable[bytes]) -> tuple[bytes, StreamBroke | None]:
    """Everything one upstream read produced, joined for one write (one send per read, whatever the number of
    events), and the failure that ended it, so what came before an error event still goes out first."""
    out: list[bytes] = []
    try:
        for piece in pieces:
            out.append(piece)
    except StreamBroke as exc:
        return b"".join(out), exc
    return b"".join(out), None


def _transport_failure(exc: BaseException) -> tuple[Outcome, dict[str, Any]]:
    name = type(exc).__name__
    body = {"error": {"code": 502, "message": f"the upstream stream failed: {name}", "status": "UNAVAILABLE"}}
    return Outcome(OutcomeKind.TRANSIENT, 0, reason=name), body


async def relay(upstream: UpstreamStream, adapter: StreamAdapter, record: CallRecord,
                request_size: int = 0) -> AsyncIterator[bytes]:
    """Send a committed stream through ``adapter``; report its ending to the pool and to analytics once."""
    outcome: Outcome | None = None
    error: str | None = None
    try:
        try:
            out, broke = _drain(adapter.feed(upstream.first))
            if out:
                yield out
            async for raw in upstream.rest():
                if broke is not None:
                    break
                out, broke = _drain(adapter.feed(raw))
                if out:
                    yield out
            if broke is not None:
                raise broke
            tail, outcome = adapter.finish()
            if tail:
                yield b"".join(tail)
        except StreamBroke as exc:
            outcome = classify(exc.status, exc.body)
            body = orjson.loads(upstream.scrub(orjson.dumps(exc.body)))  # Google may echo the calling key
            error = upstream.scrub_text(str(exc))
            yield adapter.failed(exc.status, body)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            outcome, body = _transport_failure(exc)
            error = body["error"]["message"]
            yield adapter.failed(502, body)
    finally:
        if outcome is None:  # the client went away (GeneratorExit/cancellation): not the key's fault
            upstream.abort()
            error = "client disconnected"
        else:
            await upstream.finish(outcome)
            if error is None and outcome.kind is not OutcomeKind.OK:
                error = outcome.reason or "the stream did not end properly"
        response, text = adapter.summary()
        record.done(200 if error is None else 502, key_id=upstream.key_id, response=response, text=text,
                    error=error, size=request_size + 2 * len(text) + 1024,
                    usage=getattr(adapter, "usage_metadata", None))
