"""Ids the Responses surface hands out: ``resp_``, ``msg_``, ``fc_``, ``rs_``, ``cmp_`` ... and call ids.

Call ids reuse the Chat Completions minting (``call_gw_``) so both surfaces agree on which ids never go to
Gemini as ``functionCall.id``.
"""

from __future__ import annotations

import os

from app.protocols.openai_chat.ids import is_minted, mint_tool_call_id

__all__ = ["is_minted", "mint_tool_call_id", "new_id"]


def new_id(prefix: str) -> str:
    """``<prefix>_<32 hex>``: random, so ids from different replicas never collide."""
    return f"{prefix}_{os.urandom(16).hex()}"
