"""``python -m bench.variant``: the gateway exactly as ``python -m app`` runs it, with its stream response
swapped for one of the stock ones it was measured against (``BENCH_STREAM_IMPL``: ``starlette`` or
``sse_starlette``; ``lean`` changes nothing). Bench-only: production code carries no switch."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from starlette.responses import Response

from app.routes import responses

STREAM_IMPLS = ("lean", "starlette", "sse_starlette")


def starlette_stream(body: AsyncIterator[bytes], *, media_type: str, headers: dict[str, str],
                     keepalive: float | None, ping: bytes = b"") -> Response:
    """Starlette's StreamingResponse: an anyio task group per stream, no keep-alive pings."""
    from starlette.responses import StreamingResponse
    return StreamingResponse(body, media_type=media_type, headers=headers)


def sse_starlette_stream(body: AsyncIterator[bytes], *, media_type: str, headers: dict[str, str],
                         keepalive: float | None, ping: bytes = b"") -> Response:
    """sse-starlette's EventSourceResponse: task group, ping task, send lock, shutdown watcher."""
    from sse_starlette import EventSourceResponse
    return EventSourceResponse(body, headers=headers, media_type=media_type, sep="\n", ping=keepalive or 0)


def install(impl: str) -> None:
    if impl not in STREAM_IMPLS:
        raise ValueError(f"BENCH_STREAM_IMPL must be one of {', '.join(STREAM_IMPLS)}, not {impl!r}")
    if impl == "starlette":
        responses.StreamBody = starlette_stream  # type: ignore[assignment,misc]
    elif impl == "sse_starlette":
        responses.StreamBody = sse_starlette_stream  # type: ignore[assignment,misc]


if __name__ == "__main__":
    install(os.environ.get("BENCH_STREAM_IMPL", "lean").strip().lower() or "lean")
    from app.__main__ import main
    raise SystemExit(main())
