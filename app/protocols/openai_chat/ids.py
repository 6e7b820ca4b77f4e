"""Tool-call ids the gateway mints, and how to recognise them on the way back.

The Gemini API usually returns ``functionCall`` parts without an ``id`` (every recorded Gemini API fixture),
while OpenAI clients need a non-empty, unique ``tool_calls[].id`` to pair results with calls. The gateway
mints ``call_gw_<20 hex>`` for those. Such an id means nothing to Gemini, so the request translator must not
forward it as ``functionCall.id``/``functionResponse.id``; any other id is assumed to have come from Gemini
(or from a client that rewrote it; recorded traffic shows Gemini 2.0 and 3 accept arbitrary ids) and is
forwarded so Gemini can pair parallel calls of the same function.
"""

from __future__ import annotations

import os
import re

__all__ = ["MINTED_PREFIX", "is_minted", "mint_tool_call_id"]

MINTED_PREFIX = "call_gw_"
_MINTED_RE = re.compile(r"call_gw_[0-9a-f]{20}")


def mint_tool_call_id() -> str:
    """A fresh id such as ``call_gw_3f9a0c1d2e4b5a6978ab`` (28 chars: short enough for strict clients)."""
    return MINTED_PREFIX + os.urandom(10).hex()


def is_minted(tool_call_id: str) -> bool:
    """True when the id was minted by this gateway (never sent upstream)."""
    return _MINTED_RE.fullmatch(tool_call_id) is not None
