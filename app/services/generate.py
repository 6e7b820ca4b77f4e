"""Sending one generate call through the pool, keeping a conversation on its key.

Every surface that generates (chat, Responses, Messages, native) sends the same way: a call pinned to the owner
of the resources it names (``key_id``), or else preferring the key its conversation's affinity hint is bound to,
and rebinding the hint to whichever key served. One place, so that a coding agent's turns land on one key
(Gemini's implicit prompt cache is per project) whichever protocol it speaks.
"""

from __future__ import annotations

from app.keys.affinity import Affinity
from app.upstream import GeminiClient, Framing, UpstreamResponse, UpstreamStream

__all__ = ["generate"]


async def generate(client: GeminiClient, model: str, body: bytes, *, stream: bool, query: str = "alt=sse",
                   framing: Framing = "sse", method: str | None = None, key_id: str | None = None,
                   affinity: Affinity | None = None, hint: str | None = None) -> UpstreamResponse | UpstreamStream:
    """``models/{model}:{method}`` (``generateContent`` or ``streamGenerateContent`` by ``stream`` unless
    ``method`` names another); a stream that failed before committing comes back as a response."""
    method = method or ("streamGenerateContent" if stream else "generateContent")
    path = f"models/{model}:{method}"
    if key_id is not None or not hint:
        affinity = None  # a pinned call is not the conversation's choice: neither read nor rebind
    binding = await affinity.lookup(hint) if affinity is not None and hint else None
    prefer = binding.key_id if binding is not None else None
    result: UpstreamResponse | UpstreamStream
    if stream:
        result = await client.stream(path, model=model, body=body, query=query, framing=framing, key_id=key_id,
                                     prefer_key=prefer)
    else:
        result = await client.call("POST", path, model=model, body=body, query=query, key_id=key_id,
                                   prefer_key=prefer)
    served = isinstance(result, UpstreamStream) or result.status == 200
    if affinity is not None and hint and result.key_id is not None and served:
        await affinity.settle(hint, binding, result.key_id)
    return result
