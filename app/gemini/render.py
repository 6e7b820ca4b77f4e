"""Gateway errors in Google's own error shape, for the native surface.

The native surface answers what Google would: the upstream's own error body passes through (scrubbed of pool
keys), and errors the gateway decides itself take Google's envelope and canonical status names. A caller's
bad token gets exactly what Google sends for a bad API key, so google-genai reports it the same way.
"""

from __future__ import annotations

from typing import Any

from app.errors import GatewayError, Unauthenticated, UpstreamError
from app.gemini.errors import google_error_body

_RPC_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
               409: "ABORTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
               502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

_BAD_KEY_DETAILS = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                     "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]


def render_error(exc: GatewayError) -> tuple[int, bytes | dict[str, Any], dict[str, str], str]:
    """(status, body, headers, content type); ``body`` is bytes only for an upstream answer passed on."""
    if isinstance(exc, UpstreamError):
        return exc.status, exc.body, exc.headers() if exc.status == 429 else {}, exc.content_type
    if type(exc) is Unauthenticated:  # a bad caller token: exactly Google's answer for a bad key
        body = google_error_body(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")
        body["error"]["details"] = _BAD_KEY_DETAILS
        return 400, body, {}, "application/json"
    rpc = _RPC_STATUS.get(exc.status, "UNKNOWN")
    return exc.status, google_error_body(exc.status, exc.message, rpc), exc.headers(), "application/json"
