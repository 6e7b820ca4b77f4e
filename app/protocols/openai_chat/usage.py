"""Gemini ``usageMetadata`` -> OpenAI ``usage``.

Gemini counts visible output (``candidatesTokenCount``) and thinking (``thoughtsTokenCount``) separately and
its ``totalTokenCount`` includes both plus tool-use prompt tokens (docs/architecture.md, Wire notes). OpenAI's contract is
``total = prompt + completion`` with reasoning *inside* completion, so:

* ``prompt_tokens`` = promptTokenCount + toolUsePromptTokenCount (tool results, e.g. search, are input);
* ``completion_tokens`` = candidatesTokenCount + thoughtsTokenCount, unless the server already folded thoughts
  into candidates (seen on Vertex: prompt + candidates == total) — then candidates alone;
* ``total_tokens`` = totalTokenCount (or the sum when absent);
* ``completion_tokens_details.reasoning_tokens`` = thoughtsTokenCount,
  ``prompt_tokens_details.cached_tokens`` = cachedContentTokenCount (both always present, 0 when absent).
"""

from __future__ import annotations

from typing import Any

__all__ = ["usage_from_gemini", "zero_usage"]

_COUNT_KEYS = ("promptTokenCount", "candidatesTokenCount", "totalTokenCount", "thoughtsTokenCount")


def _count(meta: dict[str, Any], key: str) -> int:
    value = meta.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage(prompt: int, completion: int, total: int, cached: int, reasoning: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def zero_usage() -> dict[str, Any]:
    """Usage for an answer that reported none (e.g. a Vertex prompt block)."""
    return _usage(0, 0, 0, 0, 0)


def usage_from_gemini(meta: Any) -> dict[str, Any] | None:
    """OpenAI usage for ``usageMetadata``; None when it holds no token counts at all."""
    if not isinstance(meta, dict) or not any(k in meta for k in _COUNT_KEYS):
        return None
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    candidates = _count(meta, "candidatesTokenCount")
    thoughts = _count(meta, "thoughtsTokenCount")
    total = meta.get("totalTokenCount")
    completion = candidates + thoughts
    if thoughts and isinstance(total, int) and prompt + candidates == total:
        completion = candidates
    if not isinstance(total, int) or isinstance(total, bool):
        total = prompt + completion
    return _usage(prompt, completion, total, _count(meta, "cachedContentTokenCount"), thoughts)
