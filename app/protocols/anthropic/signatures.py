"""How Gemini thought signatures survive a trip through an Anthropic client.

Gemini 3 refuses a replayed ``functionCall`` without the ``thoughtSignature`` it came with. Anthropic clients
echo the assistant turn verbatim, and the one opaque field they keep is a thinking block's ``signature``. So:

* When thinking was requested, every signature Gemini sends becomes the ``signature`` of a thinking block
  placed right before the part it signed (an empty thinking block when Gemini sent no thought text, as
  Anthropic does with ``display: "omitted"``). On replay a thinking block's signature goes back on the next
  text or ``functionCall`` part of the same assistant message.
* Signatures are prefixed (:data:`PREFIX`) so a real Anthropic signature from a conversation that started on
  Claude is recognised and dropped instead of being sent to Gemini as garbage.
* Every signed call is also remembered by its ``tool_use`` id by the service (clients with thinking off get
  no thinking blocks at all); a Gemini 3 turn that still has none gets Gemini's documented skip value.
"""

from __future__ import annotations

__all__ = ["PREFIX", "SKIP_SIGNATURE", "unwrap", "wrap"]

PREFIX = "gemini-sig:"
SKIP_SIGNATURE = "skip_thought_signature_validator"


def wrap(signature: str) -> str:
    """The Anthropic ``signature`` for a Gemini ``thoughtSignature``."""
    return PREFIX + signature


def unwrap(signature: object) -> str | None:
    """The Gemini signature inside an Anthropic one, or None (empty, foreign or not a string)."""
    if isinstance(signature, str) and signature.startswith(PREFIX) and len(signature) > len(PREFIX):
        return signature[len(PREFIX):]
    return None
