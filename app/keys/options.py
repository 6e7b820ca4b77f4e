"""The pool's knobs from the settings, as one frozen slice handed to :class:`app.keys.KeyManager`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PoolOptions"]


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """``MAX_FAILURES``, ``MAX_WAIT`` (seconds) and ``MAX_CONCURRENT_PER_KEY`` (0 = unlimited)."""

    max_failures: int = 3
    max_wait: float = 0.0
    max_concurrent: int = 0
