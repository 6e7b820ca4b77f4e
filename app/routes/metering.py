"""Per-token accounting around one call, shared by every surface that enforces token limits.

A route checks ``gw.limiter.check(policy, model)`` first (and answers a refusal in its own protocol's shape),
then runs the call through :func:`metered`: the call's token rides along in ``CURRENT_CALL`` so the usage feed
counts it and reports the tokens used, and the limiter gets its ``record`` exactly once, when a JSON reply is
ready or when a stream ends, however it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from app.services.replies import Reply, StreamReply
from app.state.durable.usage import CURRENT_CALL, CallTag
from app.state.limits import TokenLimiter
from app.state.policy import TokenPolicy


async def metered(limiter: TokenLimiter, policy: TokenPolicy, call: Callable[[], Awaitable[Reply]]) -> Reply:
    tag = CallTag(policy.id)
    CURRENT_CALL.set(tag)  # this request's own task (a stream's body runs in it too): nothing to reset
    if not policy.limits.any:
        # Nothing to record or free for an unlimited token: the usage feed still sees the tag, and streams
        # pass through without one more generator around every chunk.
        return await call()
    try:
        reply = await call()
    except BaseException:
        await limiter.record(policy, tag.tokens)
        raise
    if isinstance(reply, StreamReply):
        reply.body = _settle_after(reply.body, limiter, policy, tag)
    else:
        await limiter.record(policy, tag.tokens)
    return reply


async def _settle_after(body: AsyncIterator[bytes], limiter: TokenLimiter, policy: TokenPolicy,
                        tag: CallTag) -> AsyncIterator[bytes]:
    """Relay a stream, then return its concurrency slot and count its tokens."""
    CURRENT_CALL.set(tag)
    try:
        async for chunk in body:
            yield chunk
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()  # a client disconnect must still reach the relay (it aborts the upstream)
        await limiter.record(policy, tag.tokens)
