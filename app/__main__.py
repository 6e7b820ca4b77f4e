"""``python -m app``: uvicorn with uvloop and httptools, host/port/workers from the settings.

Slow clients are bounded: ``HEADER_TIMEOUT`` (app.serving), ``KEEPALIVE_TIMEOUT`` (uvicorn's idle limit
between requests) and ``BODY_TIMEOUT`` (the app's body reader).
"""

from __future__ import annotations

import sys

import uvicorn

from app.config import SettingsError, load_settings
from app.serving import HeaderDeadlineProtocol


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"gemini-gateway: {exc}", file=sys.stderr)
        return 2
    HeaderDeadlineProtocol.header_timeout = settings.header_timeout
    uvicorn.run("app.asgi:app", host=settings.host,
                port=settings.port, workers=settings.workers, loop="uvloop", http=HeaderDeadlineProtocol,
                timeout_keep_alive=settings.keepalive_timeout,
                log_level=settings.log_level.lower(), access_log=False, proxy_headers=True,
                forwarded_allow_ips="*", timeout_graceful_shutdown=int(settings.shutdown_grace) or None,
                server_header=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
