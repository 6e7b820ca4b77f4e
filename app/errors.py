"""The gateway's one error tree (the habit of httpx's ``_exceptions.py``).

Services and the pool raise these; each surface renders them once, in its own protocol's shape
(``app/surfaces.py``), so a failure is decided in one place and spoken in every language. No flags to decode:
the class says what happened, ``status`` what HTTP status it is, ``code`` the stable machine-readable reason.

::

    GatewayError
    ├── RequestRejected            the caller's request is refused before any upstream call
    │   ├── InvalidRequest         400, ``param`` names the field
    │   ├── PayloadTooLarge        413
    │   ├── Unauthenticated        401
    │   ├── PermissionDenied       403
    │   └── NotFound               404 (an unknown route, model or resource)
    │       └── ModelNotServed     404: no pool key may be sent this model (the keys' model lists)
    ├── NoKeyAvailable             the pool cannot serve the request now
    │   ├── NoKeysConfigured       503
    │   ├── AllKeysDisabled        503
    │   ├── PoolRateLimited        429 + Retry-After (every usable key cooling)
    │   ├── PoolQuotaExhausted     429 + Retry-After until Pacific midnight (``insufficient_quota``)
    │   ├── PoolExhausted          503 (every usable key was tried for this request)
    │   └── OwnerUnavailable       the key owning a named resource: OwnerDisabled 503, OwnerCooling 429
    ├── UpstreamUnavailable        502: no upstream answer at all after every allowed attempt
    ├── UpstreamError              the upstream's own error answer (status + Google's body), translated
    └── InternalError              500: a bug; rendered in the surface's shape, logged with its trace
"""

from __future__ import annotations

import math
from typing import Any

from app.gemini.errors import GoogleError, parse_error

__all__ = [
    "AllKeysDisabled",
    "GatewayError",
    "InternalError",
    "InvalidRequest",
    "ModelNotServed",
    "NoKeyAvailable",
    "NoKeysConfigured",
    "NotFound",
    "OwnerCooling",
    "OwnerDisabled",
    "OwnerUnavailable",
    "PayloadTooLarge",
    "PermissionDenied",
    "PoolExhausted",
    "PoolQuotaExhausted",
    "PoolRateLimited",
    "RequestRejected",
    "Unauthenticated",
    "UpstreamError",
    "UpstreamUnavailable",
]


class GatewayError(Exception):
    """Base: ``message`` is safe to show a client (ids and counts, never a key)."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        if code is not None:
            self.code = code

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"retry-after": str(max(1, math.ceil(self.retry_after)))}


class RequestRejected(GatewayError):
    """Refused before any upstream call: the caller can fix it."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after, code=code)
        self.param = param


class InvalidRequest(RequestRejected):
    status = 400
    code = "invalid_request"


class PayloadTooLarge(RequestRejected):
    status = 413
    code = "request_too_large"


class Unauthenticated(RequestRejected):
    status = 401
    code = "invalid_api_key"


class PermissionDenied(RequestRejected):
    status = 403
    code = "permission_denied"


class NotFound(RequestRejected):
    status = 404
    code = "not_found"


class ModelNotServed(NotFound):
    """Every pool key's model allowlist or blocklist excludes the requested model (or the key that owns a
    named resource may not serve it). Not a wait: no key will serve it until an operator changes the lists.
    OpenAI's own answer for a model one cannot use is this 404 ``model_not_found``."""

    code = "model_not_found"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


class NoKeyAvailable(GatewayError):
    """The pool has no key for this request now; the subclass says why."""

    status = 503
    code = "no_keys_available"


class NoKeysConfigured(NoKeyAvailable):
    status = 503
    code = "no_keys_configured"


class AllKeysDisabled(NoKeyAvailable):
    status = 503
    code = "no_keys_available"


class PoolRateLimited(NoKeyAvailable):
    status = 429
    code = "rate_limit_exceeded"


class PoolQuotaExhausted(NoKeyAvailable):
    """Every usable key is out of its daily quota: retrying before Pacific midnight is pointless, which is what
    OpenAI's ``insufficient_quota`` tells SDKs (they do not retry it)."""

    status = 429
    code = "insufficient_quota"


class PoolExhausted(NoKeyAvailable):
    status = 503
    code = "no_keys_available"


class OwnerUnavailable(NoKeyAvailable):
    """The one key that can serve the request (it owns a resource the request names) cannot serve it now:
    sending the request to another key would only earn Google's 403."""


class OwnerDisabled(OwnerUnavailable):
    status = 503
    code = "owner_key_unavailable"


class OwnerCooling(OwnerUnavailable):
    status = 429
    code = "rate_limit_exceeded"


class UpstreamUnavailable(GatewayError):
    status = 502
    code = "upstream_unavailable"


class UpstreamError(GatewayError):
    """The upstream's own final error answer (a client error, or the last one once retries are spent).

    ``body`` is Google's raw error body (the native surface passes it on, scrubbed); ``error`` its parse,
    which every other surface translates from.
    """

    def __init__(self, status: int, body: bytes, content_type: str = "application/json",
                 retry_after: float | None = None, key_id: str | None = None) -> None:
        self.error: GoogleError = parse_error(body)
        super().__init__(self.error.message or self.error.raw_text or f"upstream error {status}",
                         retry_after=retry_after, code=self.error.status or None)
        self.status = status
        self.body = body
        self.content_type = content_type
        self.key_id = key_id


class InternalError(GatewayError):
    status = 500
    code = "internal_error"


def describe(exc: BaseException) -> dict[str, Any]:
    """A log-safe summary of an error (class and code; never the message, which may quote a request)."""
    return {"error": type(exc).__name__, "code": getattr(exc, "code", None)}
