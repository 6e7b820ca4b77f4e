"""The Anthropic surface: ``POST /v1/messages`` and ``/v1/messages/count_tokens`` (and under ``/hf``).

Thin: auth, body, service, response. Routing is on the path only, so ``?beta=true`` (the SDK's beta client,
Claude Code) lands here too. The client token comes as ``x-api-key`` (SDK ``api_key``) or ``Authorization:
Bearer`` (``ANTHROPIC_AUTH_TOKEN``). ``anthropic-version`` and ``anthropic-beta`` are accepted and ignored:
betas that cannot apply to Gemini must not refuse the request.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.protocols.anthropic.errors import error_body
from app.routes.common import BodyError, gateway, read_json
from app.routes.responses import to_response
from app.security import bearer
from app.services.replies import JsonReply

#: Session headers Claude Code (and others) send; the first present one is the affinity/analytics session.
SESSION_HEADERS = ("x-claude-code-session-id", "x-session-id")


def _error(status: int, type_: str, message: str) -> Response:
    return to_response(JsonReply.of(error_body(type_, message), status))


async def _authorised_json(request: Request) -> tuple[Any, Response | None]:
    gw = gateway(request)
    token = request.headers.get("x-api-key") or bearer(request.headers)
    if not gw.tokens.check(token):
        if not gw.tokens.configured:
            return None, _error(401, "authentication_error",
                                "the gateway has no ALLOWED_TOKENS configured, so it accepts no caller")
        if token:
            return None, _error(401, "authentication_error", "invalid x-api-key")
        return None, _error(401, "authentication_error",
                            "missing client token: send 'x-api-key: <token>' or 'Authorization: Bearer <token>'")
    if not gw.keys.has_keys():
        return None, _error(529, "overloaded_error", "no API keys are configured: set API_KEYS")
    try:
        return await read_json(request, gw.settings.max_request_body), None
    except BodyError as exc:
        return None, _error(exc.status, "request_too_large" if exc.status == 413 else "invalid_request_error",
                            str(exc))


def _session(request: Request) -> str | None:
    for name in SESSION_HEADERS:
        if value := request.headers.get(name):
            return value
    return None


async def messages(request: Request) -> Response:
    payload, stop = await _authorised_json(request)
    if stop is not None:
        return stop
    gw = gateway(request)
    reply = await gw.messages.create(payload, session_id=_session(request))
    return to_response(reply, keepalive=gw.settings.stream_keepalive)


async def count_tokens(request: Request) -> Response:
    payload, stop = await _authorised_json(request)
    if stop is not None:
        return stop
    return to_response(await gateway(request).messages.count_tokens(payload))


def routes(prefix: str) -> list[Route]:
    return [
        Route(f"{prefix}/messages", messages, methods=["POST"]),
        Route(f"{prefix}/messages/count_tokens", count_tokens, methods=["POST"]),
    ]
