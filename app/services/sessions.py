"""Chat sessions for clients that keep no history (placeholder until the sessions service lands)."""

from __future__ import annotations

from typing import Any


class SessionService:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def build_sessions(gateway: Any) -> SessionService:
    return SessionService()
