"""uvicorn's httptools protocol with a deadline for request headers (issue 12, item 12).

uvicorn bounds only the idle time between requests (``timeout_keep_alive``); a client that connects and then
sends nothing, or trickles its headers a byte at a time, holds the connection for ever. This protocol arms a
timer when a connection opens and when a new request begins, disarms it when the headers are complete, and on
expiry answers 408 and closes. Body pauses are bounded by the app (``BODY_TIMEOUT``, app.routes.common).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_LATE = b'{"error":{"message":"the request headers did not arrive in time","code":408}}'
_TIMEOUT_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(_LATE)).encode() + b"\r\nconnection: close\r\n\r\n" + _LATE)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """Set :attr:`header_timeout` before serving (``app.__main__``); a module-level class so that uvicorn's
    worker processes can import it. Unset, it reads ``HEADER_TIMEOUT`` from the settings once per process."""

    header_timeout: float | None = None
    _header_timer: asyncio.TimerHandle | None = None

    @classmethod
    def _timeout(cls) -> float:
        if cls.header_timeout is None:
            from app.config import load_settings
            cls.header_timeout = load_settings().header_timeout
        return cls.header_timeout

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_timer is None:  # runs from the connection or the request's first byte, not each byte
            self._header_timer = self.loop.call_later(self._timeout(), self._headers_late)

    def _disarm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_TIMEOUT_408)
        self.transport.close()
