"""Bounds on client JSON the gateway forwards to Gemini: nesting depth and integer range. Pure.

Why: orjson refuses to serialise values nested more than 254 levels or integers beyond 64 bits, and a body
that passes ``orjson.loads`` can still hold both (it parses up to 1024 levels, and ``1e30`` written where an
integer belongs becomes a huge ``int`` once a translator rounds it). Without these checks such a body ends
as a 500 when the upstream request is encoded. Every surface runs the values it passes through (tool schemas,
tool-call arguments, ``google`` extras, native bodies) through :func:`check_json`, and the integers it reads
through :func:`check_int`, so the client gets a 400 naming the field instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["INT64_MAX", "INT64_MIN", "MAX_BODY_DEPTH", "MAX_DEPTH", "LimitError", "check_int", "check_json"]

#: Nesting levels a forwarded value may have (a JSON Schema a person writes rarely passes 20). The translated
#: Gemini body adds a few levels of its own around it, which keeps the whole far inside orjson's 254.
MAX_DEPTH = 64
#: Nesting levels a whole native request body may have: the forwarded values above plus Gemini's own wrapping
#: (``contents[].parts[].functionCall.args`` is five), and protobuf parsers' usual recursion limit of 100.
MAX_BODY_DEPTH = 100
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class LimitError(ValueError):
    """A value beyond the bounds; ``field`` is its path as the client wrote it (``tools[0].function...``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_int(value: int, field: str) -> int:
    """``value`` when it fits a signed 64-bit integer (Gemini's widest), else :class:`LimitError`."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise LimitError(field, f"integer out of range (must be between {INT64_MIN} and {INT64_MAX})")
    return value


#: A path deeper than this many steps is shortened to its first steps and "…" (an error names a field, it does
#: not echo 200 levels of the client's own input back).
_PATH_STEPS = 8


def _path(field: str, trail: tuple[Any, ...] | None) -> str:
    keys: list[object] = []
    while trail is not None:
        trail, key = trail
        keys.append(key)
    keys.reverse()
    out = field
    for key in keys[:_PATH_STEPS]:
        key = key if isinstance(key, int) else str(key)[:64]
        out = f"{out}[{key}]" if isinstance(key, int) else (f"{out}.{key}" if out else str(key))
    return out + ".…" if len(keys) > _PATH_STEPS else out


def _within(container: dict[str, Any] | list[Any], budget: int) -> bool:
    """The fast pass: no paths, recursion bounded by ``budget`` (at most :data:`MAX_DEPTH` frames)."""
    for child in (container.values() if type(container) is dict else container):
        kind = type(child)
        if kind is dict or kind is list:
            if budget == 0 or not _within(child, budget - 1):
                return False
        elif kind is int and not INT64_MIN <= child <= INT64_MAX:
            return False
    return True


def _locate(value: Any, field: str, max_depth: int) -> None:
    """The slow pass, run only when the fast one failed: find the first offending place and name it."""
    stack: list[tuple[Any, int, tuple[Any, ...] | None]] = [(value, 0, None)]
    while stack:
        item, depth, trail = stack.pop()
        kind = type(item)
        if kind is int:
            if not INT64_MIN <= item <= INT64_MAX:
                raise LimitError(_path(field, trail),
                                 f"integer out of range (must be between {INT64_MIN} and {INT64_MAX})")
        elif kind is dict or kind is list:
            if depth >= max_depth:
                raise LimitError(_path(field, trail), f"nested more than {max_depth} levels deep")
            pairs = item.items() if kind is dict else enumerate(item)
            stack.extend((child, depth + 1, (trail, key)) for key, child in reversed(list(pairs)))


def check_json(value: Any, field: str, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`LimitError` naming the first place in ``value`` nested deeper than ``max_depth`` levels
    (each object or array is one level) or holding an integer outside int64.

    Two passes so the common case stays cheap: a recursive check without bookkeeping (about 5 us per KB of
    nested JSON), and only when it fails an iterative walk that builds the field's path.
    """
    kind = type(value)
    if kind is int:
        check_int(value, field)
    elif kind is dict or kind is list:
        if max_depth < 1 or not _within(value, max_depth - 1):
            _locate(value, field, max_depth)
