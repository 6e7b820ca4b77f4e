"""The chat sessions API (placeholder until the sessions routes land)."""

from __future__ import annotations

from starlette.routing import Route


def routes() -> list[Route]:
    return []
