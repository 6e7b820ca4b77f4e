"""Model names: validation before they enter an upstream URL, and which Gemini generation a name belongs to.

Two request features depend on the generation: thinking control (Gemini 2.5 takes ``thinkingBudget``,
Gemini 3 takes ``thinkingLevel`` and rejects a budget of 0) and thought signatures (Gemini 3 rejects replayed
function calls without one). The moving aliases ``gemini-flash-latest``, ``gemini-flash-lite-latest`` and
``gemini-pro-latest`` are treated as Gemini 3: the recorded ``gemini-flash-latest`` stream reports
``modelVersion: gemini-3.6-flash`` (fixture ``stream-json-array__thinking__gemini-flash-latest``).
"""

from __future__ import annotations

import re

from app.protocols.openai_chat.errors import RequestError

__all__ = ["bare_model", "is_gemini3", "is_gemini25", "is_pro"]

_MODEL_RE = re.compile(r"(?:models/)?([A-Za-z0-9._-]+)")
_LATEST_ALIASES = frozenset({"gemini-flash-latest", "gemini-flash-lite-latest", "gemini-pro-latest"})


def bare_model(value: object, param: str = "model") -> str:
    """The bare Gemini model id (``models/`` prefix removed); RequestError when missing or unsafe."""
    if not isinstance(value, str) or not value:
        raise RequestError("you must provide a model parameter", param,
                           "missing_model" if value is None else None)
    match = _MODEL_RE.fullmatch(value)
    if match is None:
        raise RequestError(f"invalid model name {value[:100]!r}: only letters, digits, '.', '_' and '-' are "
                           "allowed, with an optional 'models/' prefix", param, "invalid_model")
    return match.group(1)


def is_gemini3(model: str) -> bool:
    """Gemini 3.x (including the ``-latest`` aliases): thinkingLevel and mandatory thought signatures."""
    return model.startswith("gemini-3") or model in _LATEST_ALIASES


def is_gemini25(model: str) -> bool:
    """Gemini 2.5.x: thinkingBudget."""
    return model.startswith("gemini-2.5")


def is_pro(model: str) -> bool:
    """Pro variants cannot switch thinking off and have no ``minimal`` level."""
    return "-pro" in model
