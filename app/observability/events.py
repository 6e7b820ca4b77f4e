"""The interaction event: one record per model call, whatever surface it came through.

Every surface (OpenAI chat, native generate, chat sessions) builds exactly one :class:`Interaction` when a call
ends and hands it to :meth:`EventSink.publish`, which never blocks and never raises; exporters (Reconify,
JSON lines, the interaction log line) read from the sink's queues off the request path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Surface = Literal["openai", "native", "session", "anthropic"]


@dataclass(slots=True)
class Interaction:
    surface: Surface
    model: str
    request: dict[str, Any]            # the Gemini request JSON as sent upstream
    response: dict[str, Any] | None    # the Gemini response JSON (assembled for streams), None on failure
    started: float                     # epoch seconds
    finished: float
    status: int                        # HTTP status the client got (200 for a stream that ended cleanly)
    stream: bool = False
    user_id: str | None = None
    session_id: str | None = None
    key_id: str | None = None
    error: str | None = None
    output_text: str = ""              # visible model text, for log lines and output_length
    message: str | None = None         # the user's message (sessions)
    extra: dict[str, Any] = field(default_factory=dict)
    size_hint: int = 0                 # bytes of request + response JSON when the producer knows them cheaply
                                       # (len of the body it sent/received); bounds analytics queue memory

    @property
    def latency_ms(self) -> float:
        return round((self.finished - self.started) * 1000.0, 1)


class EventSink(Protocol):
    """Where producers hand their events. ``publish`` is O(1), synchronous, and never raises."""

    @property
    def enabled(self) -> bool:
        """False when no exporter is configured: producers may skip building the event altogether."""
        ...

    @property
    def wants_bodies(self) -> bool:
        """True only when an exporter ships request/response JSON (Reconify, the analytics JSONL file).

        Producers assemble a stream's final response (and parse a passthrough body) only when this is True:
        the interaction log line alone needs none of it, and assembling costs per-chunk work on the hot path.
        """
        ...

    def publish(self, event: Interaction) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def stats(self) -> dict[str, Any]: ...


class NullSink:
    """No exporters configured: nothing is assembled and nothing is kept."""

    enabled = False
    wants_bodies = False

    def publish(self, event: Interaction) -> None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {"enabled": False, "published": 0, "dropped": 0, "exporters": {}}
