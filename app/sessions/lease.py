"""The turn lock of one chat: a short lease, renewed while the turn runs, whose token fences the save.

A turn holds its chat's lease from before it reads the history until after it saved the new one. The lease
is short (seconds) so that a holder that died (a killed replica, a Redis restart that kept the lock key)
blocks the chat only briefly; a live holder renews it in the background. Every save carries the lease's
``token`` (the fencing token) and the store refuses it unless that token still holds the lease, so a turn that
lost its lease (its renewals failed, or someone else took the chat meanwhile) can never overwrite the history.

Waiting for a lease is bounded: past ``wait`` seconds the caller gets :class:`ChatBusy` (the API answers 409)
instead of hanging behind a turn that may never finish.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ChatBusy", "Lease", "Saved"]


class ChatBusy(Exception):
    """Another turn of the chat held its lease for longer than the caller may wait."""


class Saved(enum.Enum):
    """What a conditional history save did."""

    SAVED = "saved"
    GONE = "gone"    # the session ended, expired or was evicted meanwhile
    LOST = "lost"    # the caller's lease no longer holds the chat (fenced off)
    STALE = "stale"  # the history changed since the caller read it (its expected version is not current)


@dataclass(eq=False, slots=True)
class Lease:
    """A held turn lock. ``lost`` turns true when the store refused a renewal or when no renewal succeeded for
    a whole lease period (the holder can no longer know it still holds it)."""

    chat_id: str
    token: str
    valid_until: float = math.inf  # time.monotonic() by which the lease has surely lapsed without a renewal
    refused: bool = False
    clock_offset_ms: float = 0.0   # the store's clock minus ours, where the store has its own clock (Redis)
    #: the history as the store handed it to this turn, where the store can then save only the change (Redis)
    stored: list[Any] | None = field(default=None, repr=False)
    renewer: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def lost(self) -> bool:
        return self.refused or time.monotonic() >= self.valid_until
