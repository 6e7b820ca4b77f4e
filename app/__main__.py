"""``python -m app``: uvicorn with uvloop and httptools, host/port/workers from the settings.

Slow clients are bounded: ``HEADER_TIMEOUT`` (app.serving), ``KEEPALIVE_TIMEOUT`` (uvicorn's idle limit
between requests) and ``BODY_TIMEOUT`` (the app's body reader).

With ``WORKERS`` > 1 and no ``REDIS_URL`` this process (uvicorn's master) makes the workers' bus file before
spawning them and removes it when they are gone (app/state/worker_bus.py; docs/architecture.md, "Workers").
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

import uvicorn

from app.config import SettingsError, load_settings
from app.serving import HeaderDeadlineProtocol
from app.state.worker_bus import ENV, WorkerBus


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"gemini-gateway: {exc}", file=sys.stderr)
        return 2
    HeaderDeadlineProtocol.header_timeout = settings.header_timeout
    try:
        bus = WorkerBus.create(settings.data_dir or None) if settings.workers > 1 and not settings.redis_url else None
    except OSError as exc:  # read-only or full: say so once and stop, rather than start workers that cannot agree
        print(f"gemini-gateway: WORKERS={settings.workers} without REDIS_URL needs a writable DATA_DIR for the "
              f"workers' bus file; it cannot be made in {settings.data_dir or tempfile.gettempdir()!r} "
              f"({type(exc).__name__}: {exc.strerror or exc})", file=sys.stderr)
        return 2
    os.environ.pop(ENV, None)  # never a bus inherited from elsewhere
    if bus is not None:
        os.environ[ENV] = bus  # inherited by the spawned workers
    try:
        uvicorn.run("app.asgi:app", host=settings.host,
                    port=settings.port, workers=settings.workers, loop="uvloop", http=HeaderDeadlineProtocol,
                    timeout_keep_alive=settings.keepalive_timeout,
                    log_level=settings.log_level.lower(), access_log=False, proxy_headers=True,
                    forwarded_allow_ips="*", timeout_graceful_shutdown=int(settings.shutdown_grace) or None,
                    server_header=False)
    finally:
        if bus is not None:
            with contextlib.suppress(OSError):
                os.unlink(bus)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
