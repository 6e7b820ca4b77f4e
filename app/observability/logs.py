"""Process logging: one line a record on stderr, and nothing that could hold a key or a token."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str) -> None:
    root = logging.getLogger()
    if getattr(root, "_gateway_configured", False):
        root.setLevel(level)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root._gateway_configured = True  # type: ignore[attr-defined]
    # These libraries log what must never reach a log at debug level (aiohttp: full URLs; aiosqlite and
    # SQLAlchemy: statement parameters, i.e. pool keys and token digests): quiet whatever LOG_LEVEL says.
    for name in ("aiohttp", "aiosqlite", "sqlalchemy", "asyncpg"):
        logging.getLogger(name).setLevel(logging.WARNING)
