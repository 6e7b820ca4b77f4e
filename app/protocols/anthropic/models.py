"""Client model names -> Gemini models: Claude Code asks for ``claude-*`` tiers, the pool serves Gemini.

``ANTHROPIC_MODEL_MAP`` is an ordered list of (glob pattern, Gemini model); the first pattern that matches
(case-insensitive) wins. Names no pattern matches (``gemini-*`` above all) pass through unchanged and are
validated like any other model name before they enter an upstream URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

__all__ = ["DEFAULT_MODEL_MAP", "resolve_model"]

#: Claude Code's main model (opus/sonnet) -> a pro model, its small fast model (haiku) -> a flash model.
DEFAULT_MODEL_MAP: tuple[tuple[str, str], ...] = (
    ("claude-*opus*", "gemini-pro-latest"),
    ("claude-*sonnet*", "gemini-pro-latest"),
    ("claude-*haiku*", "gemini-flash-latest"),
    ("claude-*", "gemini-flash-latest"),
)


def resolve_model(name: str, model_map: Sequence[tuple[str, str]] = DEFAULT_MODEL_MAP) -> str:
    """The Gemini model for a client model name (``models/`` prefixes are left to the caller)."""
    lowered = name.lower()
    for pattern, target in model_map:
        if fnmatchcase(lowered, pattern.lower()):
            return target
    return name
