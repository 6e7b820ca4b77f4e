"""What a client may ask for at start_chat: the model name and the generation config, validated once.

Scripts written for Google's Python SDK say ``max_output_tokens``; the REST API wants ``maxOutputTokens``.
Both spellings are accepted and stored in Gemini's camelCase, so every later turn sends them unchanged.
A field that is unknown or of the wrong type is refused at start_chat (400, naming the field) rather than
dropped: a silently ignored ``temperature`` typo would change every answer of the conversation without a word.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from app.gemini.limits import INT64_MAX, INT64_MIN, LimitError, check_json

__all__ = ["ConfigError", "parse_model_name", "parse_generation_config", "FIELDS"]

_MODEL_RE = re.compile(r"(?:models/)?([A-Za-z0-9._-]{1,128})")
_MAX_STOP_SEQUENCES = 5


class ConfigError(ValueError):
    """A start_chat field the gateway will not send upstream; ``field`` names it as the client spelled it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def parse_model_name(value: object, default: str) -> str:
    """The bare model id (``models/`` prefix removed); only ``[A-Za-z0-9._-]`` may enter the upstream URL."""
    if value is None or value == "":
        value = default
    if not isinstance(value, str):
        raise ConfigError("model_name", "must be a string")
    match = _MODEL_RE.fullmatch(value)
    if match is None:
        raise ConfigError("model_name", "must match [A-Za-z0-9._-]+, optionally prefixed with 'models/'")
    return match.group(1)


# -- value checks: each returns the value to send or raises ValueError with the reason -----------------------

def _int(low: int | None = None) -> Callable[[Any], Any]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)  # JSON clients sometimes write 1000.0
            else:
                raise ValueError("must be an integer")
        if low is not None and value < low:
            raise ValueError(f"must be at least {low}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"out of range (at most {INT64_MAX})" if value > 0 else
                             f"out of range (at least {INT64_MIN})")
        return value
    return check


def _number(low: float | None = None, high: float | None = None) -> Callable[[Any], Any]:
    def check(value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError("must be a number")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"must be between {low} and {high}")
        return value
    return check


def _stop_sequences(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise ValueError("must be a string or a list of non-empty strings")
    if len(value) > _MAX_STOP_SEQUENCES:
        raise ValueError(f"at most {_MAX_STOP_SEQUENCES} stop sequences")
    return value


def _one_candidate(value: Any) -> int:
    if _int(1)(value) != 1:
        raise ValueError("must be 1: a chat session keeps one answer per turn")
    return 1


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be an object")
    check_json(value, "")  # stored now, sent with every turn: refuse what could never be encoded
    return value


def _thinking(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be an object")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue
        if key in ("thinking_budget", "thinkingBudget"):
            out["thinkingBudget"] = _int(-1)(item)
        elif key in ("include_thoughts", "includeThoughts"):
            if not isinstance(item, bool):
                raise ValueError(f"{key} must be true or false")
            out["includeThoughts"] = item
        else:
            raise ValueError(f"unknown field {key!r} (known: thinking_budget, include_thoughts)")
    return out


#: snake_case name -> (Gemini camelCase name, check)
FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "max_output_tokens": ("maxOutputTokens", _int(1)),
    "temperature": ("temperature", _number(0.0, 2.0)),
    "top_p": ("topP", _number(0.0, 1.0)),
    "top_k": ("topK", _int(1)),
    "stop_sequences": ("stopSequences", _stop_sequences),
    "candidate_count": ("candidateCount", _one_candidate),
    "presence_penalty": ("presencePenalty", _number()),
    "frequency_penalty": ("frequencyPenalty", _number()),
    "response_mime_type": ("responseMimeType", _text),
    "response_schema": ("responseSchema", _object),
    "seed": ("seed", _int()),
    "thinking_config": ("thinkingConfig", _thinking),
}
_BY_NAME: dict[str, str] = {**{s: s for s in FIELDS}, **{camel: s for s, (camel, _) in FIELDS.items()}}


def parse_generation_config(value: object) -> dict[str, Any]:
    """Gemini's ``generationConfig`` for a client's ``generation_config``; ``None`` fields mean "not set"."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError("generation_config", "must be an object")
    out: dict[str, Any] = {}
    for name, item in value.items():
        snake = _BY_NAME.get(name) if isinstance(name, str) else None
        if snake is None:
            known = ", ".join(FIELDS)
            raise ConfigError(f"generation_config.{name}",
                              f"unknown field (known: {known}; camelCase also accepted)")
        if item is None:
            continue
        camel, check = FIELDS[snake]
        if camel in out:
            raise ConfigError(f"generation_config.{name}", f"given twice (as {snake} and as {camel})")
        try:
            out[camel] = check(item)
        except LimitError as exc:
            where = exc.field if exc.field.startswith("[") else f".{exc.field}"
            raise ConfigError(f"generation_config.{name}{where}", exc.message) from None
        except ValueError as exc:
            raise ConfigError(f"generation_config.{name}", str(exc)) from None
    return out
