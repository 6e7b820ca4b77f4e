"""Turn ids: what makes a retried ``send_message`` idempotent.

A client may name a turn (``turn_id`` in the body or an ``Idempotency-Key`` header). The session keeps the
ids of its last few stored turns with their answers, so a retry of a turn that was stored (its answer lost on
the way, or answered 503 while the save landed) is answered from the store and never appended twice. Turns
without a client id get a generated one: the store uses it to find out whether an interrupted save landed.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from .model import TurnRecord

__all__ = ["KEEP_TURNS", "TurnIdError", "digest", "find_turn", "new_turn_id", "parse_turn_id", "remember"]

KEEP_TURNS = 4  # a retry comes right after its turn; older ids are not worth their answers' bytes
_TURN_ID_RE = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces: UUIDs, ULIDs, counters


class TurnIdError(ValueError):
    """A turn id that is not usable; the message names the field."""


def parse_turn_id(body_value: object, header_value: str | None) -> str | None:
    """The client's turn id from the body's ``turn_id`` or the ``Idempotency-Key`` header (they must agree
    when both are given); ``None`` when the client gave none."""
    values: list[tuple[str, object]] = []
    if body_value is not None:
        values.append(("turn_id", body_value))
    if header_value is not None:
        values.append(("Idempotency-Key", header_value))
    for name, value in values:
        if not isinstance(value, str) or not _TURN_ID_RE.fullmatch(value):
            raise TurnIdError(f"{name} must be 1 to 128 printable ASCII characters without spaces")
    if len(values) == 2 and values[0][1] != values[1][1]:
        raise TurnIdError("turn_id and the Idempotency-Key header differ; send one, or the same value in "
                          "both")
    return str(values[0][1]) if values else None


def new_turn_id() -> str:
    return "gw-" + secrets.token_urlsafe(12)


def digest(message: str) -> str:
    """A short fingerprint of the message, so a turn id reused for another message is noticed."""
    return hashlib.sha256(message.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def find_turn(turns: list[TurnRecord], turn_id: str) -> TurnRecord | None:
    return next((t for t in turns if t.id == turn_id), None)


def remember(turns: list[TurnRecord], record: TurnRecord, keep: int = KEEP_TURNS) -> list[TurnRecord]:
    """The last ``keep`` turns with ``record`` appended."""
    return [*turns, record][-keep:]
