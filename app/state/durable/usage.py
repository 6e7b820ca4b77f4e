"""Usage history, aggregated in memory on the request path and written to the store in batches.

Two feeds, both synchronous and O(1): every classified upstream answer (``count_outcome``: one per attempt,
per key x model, so retries show on the key that failed) and every finished call (``count_call``: tokens and
latency per key x model, and requests, outcome and tokens per client token x model). The flusher swaps the
buffer out and upserts it (``DurableStore.flush_usage``); a failed flush puts the rows back.

Token rows count a call's failure by the status the client got: 429 -> rate_limited, other 4xx ->
client_error, 5xx or none -> transient. Key rows count the upstream's own class.
"""

from __future__ import annotations

import contextvars
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from app.keys import Outcome, OutcomeKind, scrub

from .schema import USAGE_COUNTERS

__all__ = ["CallTag", "CURRENT_CALL", "UsageBuffer", "token_counts"]

_INDEX = {name: i for i, name in enumerate(USAGE_COUNTERS)}
_N = len(USAGE_COUNTERS)
_CLASS = {OutcomeKind.RATE_LIMITED: _INDEX["rate_limited"], OutcomeKind.QUOTA_EXHAUSTED: _INDEX["quota_exhausted"],
          OutcomeKind.KEY_INVALID: _INDEX["key_invalid"], OutcomeKind.CLIENT_ERROR: _INDEX["client_error"],
          OutcomeKind.TRANSIENT: _INDEX["transient"]}
MAX_ERRORS_BUFFERED = 10_000
#: Distinct rows held between flushes; beyond it new models fold into OTHER_MODEL, so client-chosen model
#: names cannot grow the buffer without bound.
MAX_ROWS_BUFFERED = 50_000
OTHER_MODEL = "(other)"
#: Models remembered as having served in this process (see ``UsageBuffer.model``).
MAX_SERVED_MODELS = 4096
_MODEL_LEN = 128  # the column's width

UsageKey = tuple[int, str, str, str]   # hour, "key"/"token", subject id, model


@dataclass(slots=True)
class CallTag:
    """Set by a route for the duration of one call, so the usage feed knows the client token behind it and
    the route learns how many tokens the call used (for ``TokenLimiter.record``)."""

    token_id: str
    tokens: int = 0


#: The client token of the call in progress (inherited by the response's streaming task).
CURRENT_CALL: contextvars.ContextVar[CallTag | None] = contextvars.ContextVar("gateway_call", default=None)


@dataclass(slots=True)
class ErrorEntry:
    at: float
    key_id: str
    model: str
    kind: str
    status: int
    reason: str


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def token_counts(response: Any, usage: Any) -> tuple[int, int, int, int]:
    """(input, output, thinking, cached) from Gemini's ``usageMetadata`` or, failing that, OpenAI's ``usage``."""
    meta = response.get("usageMetadata") if isinstance(response, dict) else None
    if isinstance(meta, dict):
        return (_int(meta.get("promptTokenCount")) + _int(meta.get("toolUsePromptTokenCount")),
                _int(meta.get("candidatesTokenCount")), _int(meta.get("thoughtsTokenCount")),
                _int(meta.get("cachedContentTokenCount")))
    if isinstance(usage, dict):
        reasoning = _int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens"))
        return (_int(usage.get("prompt_tokens")), max(0, _int(usage.get("completion_tokens")) - reasoning),
                reasoning, _int((usage.get("prompt_tokens_details") or {}).get("cached_tokens")))
    return 0, 0, 0, 0


@dataclass
class UsageBuffer:
    rows: dict[UsageKey, list[int]] = field(default_factory=dict)
    errors: deque[ErrorEntry] = field(default_factory=lambda: deque(maxlen=MAX_ERRORS_BUFFERED))
    served: set[str] = field(default_factory=set)

    def model(self, model: str, *, ok: bool, client_error: bool) -> str:
        """The model name a row is kept under. Names are the client's choice and each one is a row for up to
        the usage retention: a name that never served in this process and met a client error (an invented
        model answers 404) is kept as ``OTHER_MODEL``, so a flood of made-up names adds no rows."""
        if ok:
            if model not in self.served and len(self.served) < MAX_SERVED_MODELS:
                self.served.add(model)
            return model
        return OTHER_MODEL if client_error and model not in self.served else model

    def _row(self, key: UsageKey) -> list[int]:
        row = self.rows.get(key)
        if row is None:
            hour, kind, subject, model = key
            if len(model) > _MODEL_LEN or len(self.rows) >= MAX_ROWS_BUFFERED:
                folded = (hour, kind, subject, OTHER_MODEL if len(self.rows) >= MAX_ROWS_BUFFERED
                          else model[:_MODEL_LEN])
                row = self.rows.get(folded)
                if row is None:
                    row = self.rows[folded] = [0] * _N
                return row
            row = self.rows[key] = [0] * _N
        return row

    def count_outcome(self, key_id: str, model: str, outcome: Outcome, now: float) -> None:
        kind = outcome.kind
        model = self.model(model, ok=kind is OutcomeKind.OK, client_error=kind is OutcomeKind.CLIENT_ERROR)
        row = self._row((int(now // 3600) * 3600, "key", key_id, model))
        row[0] += 1
        if kind is OutcomeKind.OK:
            row[1] += 1
            return
        row[_CLASS[kind]] += 1
        reason = scrub(outcome.reason or "")[:300]
        self.errors.append(ErrorEntry(now, key_id, model[:_MODEL_LEN], kind.value, outcome.status, reason))

    def count_call(self, *, key_id: str | None, token_id: str | None, model: str, status: int,
                   counts: tuple[int, int, int, int], latency_ms: float, now: float) -> None:
        hour = int(now // 3600) * 3600
        latency = int(latency_ms)
        model = self.model(model, ok=status == 200, client_error=400 <= status < 500 and status != 429)
        if key_id:
            row = self._row((hour, "key", key_id, model))
            for i, v in enumerate(counts):
                row[7 + i] += v
            row[11] += latency
        if token_id:
            row = self._row((hour, "token", token_id, model))
            row[0] += 1
            if status == 200:
                row[1] += 1
            elif status == 429:
                row[2] += 1
            elif 400 <= status < 500:
                row[5] += 1
            else:
                row[6] += 1
            for i, v in enumerate(counts):
                row[7 + i] += v
            row[11] += latency

    def drain(self) -> tuple[dict[UsageKey, list[int]], list[ErrorEntry]]:
        rows, self.rows = self.rows, {}
        errors = list(self.errors)
        self.errors.clear()
        return rows, errors

    def restore(self, rows: dict[UsageKey, list[int]], errors: list[ErrorEntry]) -> None:
        """Put back what a failed flush could not write (added to what came in meanwhile)."""
        for key, values in rows.items():
            row = self._row(key)
            for i, v in enumerate(values):
                row[i] += v
        self.errors.extendleft(reversed(errors))
