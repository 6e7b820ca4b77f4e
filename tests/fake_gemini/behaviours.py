"""Which behaviour an API key gets: a control override, else the key's prefix convention, else ``ok``.

Keys are plain strings chosen by tests (never real-looking ``AIza...`` keys); the prefix says what the key
does, so a gateway configured with ``ok-1,rpm-2,invalid-3`` already has a realistic pool without scripting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

BEHAVIOURS: tuple[str, ...] = (
    "ok",
    "invalid",
    "rpm",
    "rpd",
    "unavail",
    "internal",
    "slow",
    "midstream",
    "truncated",
    "denied",
)
# Errors raised by the key check in front of every authenticated route (models.list/get included).
KEY_ERRORS = frozenset({"invalid", "denied"})
# rpm, rpd, unavail and internal only affect model calls (generate, stream, countTokens, embeddings), so that
# models.get stays a free probe of a cooling key.
STREAM_ONLY = frozenset({"midstream", "truncated"})
WILDCARD = "*"

_DURATION_RE = re.compile(r"\d+(\.\d+)?s")


@dataclass(frozen=True)
class Script:
    """A behaviour and its knobs. ``times`` counts the requests it still acts on (None: until reset)."""

    behaviour: str = "ok"
    delay: float | None = None
    retry_delay: str | None = None
    chunk_delay: float | None = None
    abort: bool = False
    times: int | None = None


OK = Script()


class ScriptError(ValueError):
    """A control request that names an unknown behaviour or a bad parameter."""


def by_convention(key: str) -> str:
    """The behaviour a key's prefix asks for; any other key is ``ok``."""
    for name in BEHAVIOURS:
        if key.startswith(name):
            return name
    return "ok"


def parse_script(payload: dict[str, Any]) -> tuple[str, Script]:
    """Validate a ``/_control/script`` body into ``(key, Script)``."""
    key = payload.get("key")
    if not isinstance(key, str) or not key:
        raise ScriptError("'key' must be a non-empty string ('*' for every key without its own script)")
    behaviour = payload.get("behaviour", payload.get("behavior", "ok"))
    if behaviour not in BEHAVIOURS:
        raise ScriptError(f"unknown behaviour {behaviour!r}; one of {', '.join(BEHAVIOURS)}")
    delay = _optional_float(payload, "delay")
    chunk_delay = _optional_float(payload, "chunk_delay")
    retry_delay = payload.get("retry_delay")
    if retry_delay is not None:
        if isinstance(retry_delay, (int, float)):
            retry_delay = f"{retry_delay}s"
        if not isinstance(retry_delay, str) or not _DURATION_RE.fullmatch(retry_delay):
            raise ScriptError("'retry_delay' must be a protobuf duration such as '12s' or '0.5s'")
    times = payload.get("times")
    if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
        raise ScriptError("'times' must be a positive integer")
    return key, Script(behaviour, delay, retry_delay, chunk_delay, bool(payload.get("abort", False)), times)


def _optional_float(payload: dict[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ScriptError(f"'{name}' must be a non-negative number of seconds")
    return float(value)


class Behaviours:
    """Per-key overrides on top of the prefix conventions."""

    def __init__(self) -> None:
        self._overrides: dict[str, Script] = {}

    def set(self, key: str, script: Script) -> None:
        """Install an override. ``ok`` on a key whose convention is already ok simply clears it."""
        if script.behaviour == "ok" and script == replace(OK, behaviour="ok") and by_convention(key) == "ok":
            self._overrides.pop(key, None)
            return
        self._overrides[key] = script

    def resolve(self, key: str) -> tuple[Script, str | None]:
        """The script for ``key`` and the override slot it came from (None for a convention)."""
        if key in self._overrides:
            return self._overrides[key], key
        if WILDCARD in self._overrides:
            return self._overrides[WILDCARD], WILDCARD
        return Script(by_convention(key)), None

    def acted(self, slot: str | None) -> None:
        """Count one use of an override with ``times``; it reverts to the convention when used up."""
        if slot is None or slot not in self._overrides:
            return
        script = self._overrides[slot]
        if script.times is None:
            return
        if script.times <= 1:
            del self._overrides[slot]
        else:
            self._overrides[slot] = replace(script, times=script.times - 1)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The overrides, for ``GET /_control/stats``."""
        return {k: {f: getattr(v, f) for f in v.__dataclass_fields__} for k, v in self._overrides.items()}

    def clear(self) -> None:
        self._overrides.clear()
