"""``DEMO_MODE``: every answer carries ``x-gateway-demo: true``, so nobody mistakes ``make demo``'s fake
upstream for Gemini (the fake's own texts say so too)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEMO_HEADER = (b"x-gateway-demo", b"true")


class DemoLabel:
    """Pure ASGI: adds the header to every HTTP response start, streams untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def labelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), DEMO_HEADER]
            await send(message)

        await self.app(scope, receive, labelled)
