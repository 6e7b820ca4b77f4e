"""Who may call, and how much: a client token's policy (enabled, expiry, model allowlist, limits), shared by
every surface that takes client tokens.

A surface's authentication calls :func:`client_policy` with the secret it found where its protocol puts one;
the policy rides in the request's scope. A route then runs its model call through :func:`admitted`, which
checks the token's limits for that model (a refusal is raised, so each surface answers in its own shape) and
meters the call: its tokens and its concurrency slot are settled once, when a reply is ready or when a stream
ends.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request

from app.errors import PermissionDenied, RequestRejected, Unauthenticated
from app.routes.common import gateway
from app.routes.metering import metered
from app.services.replies import Reply
from app.state.limits import Decision
from app.state.policy import TokenPolicy

POLICY_KEY = "gateway.token"


class TokenUnusable(Unauthenticated):
    """A known client token that is disabled or expired (not a bad key: no protocol's "invalid key" shape)."""


class TokenRateLimited(RequestRejected):
    """The client token spent one of its own limits (requests, tokens or concurrency), not the pool's."""

    status = 429
    code = "token_rate_limited"


def client_policy(request: Request, secret: str | None) -> TokenPolicy | None:
    """The caller's policy (kept in the scope for :func:`admitted`), ``None`` for an unknown secret; a disabled
    or expired token is refused here."""
    policy = gateway(request).tokens.lookup(secret)
    if policy is None:
        return None
    if not policy.enabled:
        raise TokenUnusable("this token is disabled", code="token_disabled")
    if policy.expired(time.time()):
        raise TokenUnusable("this token has expired", code="token_expired")
    request.scope[POLICY_KEY] = policy
    return policy


def _refusal(decision: Decision) -> RequestRejected:
    code = decision.code or None
    if decision.status == 403:
        return PermissionDenied(decision.message, param="model", code=code)
    if decision.status == 401:
        return TokenUnusable(decision.message, code=code)
    return TokenRateLimited(decision.message, retry_after=decision.retry_after, code=code)


async def admitted(request: Request, model: object, call: Callable[[], Awaitable[Reply]]) -> Reply:
    """Run ``call`` within the caller token's limits for ``model``; callers without a policy (the admin token on
    the resource routes) are not metered."""
    policy: TokenPolicy | None = request.scope.get(POLICY_KEY)
    if policy is None:
        return await call()
    limiter = gateway(request).limiter
    decision = await limiter.check(policy, model if isinstance(model, str) else "")
    if not decision.allowed:
        gateway(request).metrics.token_refused(decision.code or f"status_{decision.status}")
        raise _refusal(decision)
    return await metered(limiter, policy, call)
