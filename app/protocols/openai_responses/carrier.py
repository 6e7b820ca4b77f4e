"""The opaque ``encrypted_content`` strings the gateway hands out and reads back.

A reasoning item carries Gemini ``thoughtSignature``s to the next turn: ``{call_id: signature}`` for function
calls and the key ``"text"`` for a signed answer text. A compaction item carries a Gemini-written summary of
the transcript it replaced. Both are base64url JSON behind a marker, so the gateway recognises its own and
treats anything else (OpenAI's real ciphertext, replayed from another provider) as absent, never as an error.
Not encrypted: the signatures are Google's own opaque tokens and the summary is the client's own history.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

__all__ = ["TEXT_KEY", "decode_compaction", "decode_signatures", "encode_compaction", "encode_signatures"]

TEXT_KEY = "text"
_REASONING = "gwr1."
_COMPACTION = "gwc1."


def _encode(marker: str, obj: Any) -> str:
    return marker + base64.urlsafe_b64encode(orjson.dumps(obj)).decode("ascii")


def _decode(marker: str, value: Any) -> Any:
    if not isinstance(value, str) or not value.startswith(marker):
        return None
    try:
        return orjson.loads(base64.urlsafe_b64decode(value[len(marker):]))
    except (binascii.Error, ValueError):
        return None


def encode_signatures(signatures: dict[str, str]) -> str:
    return _encode(_REASONING, signatures)


def decode_signatures(value: Any) -> dict[str, str]:
    """The signatures in a reasoning item's ``encrypted_content``; {} for anything the gateway did not write."""
    found = _decode(_REASONING, value)
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}


def encode_compaction(summary: str) -> str:
    return _encode(_COMPACTION, {"summary": summary})


def decode_compaction(value: Any) -> str | None:
    """The summary inside a compaction item, or None when it is not one of the gateway's."""
    found = _decode(_COMPACTION, value)
    summary = found.get("summary") if isinstance(found, dict) else None
    return summary if isinstance(summary, str) else None
