"""The Anthropic surface: ``POST /v1/messages`` and ``/v1/messages/count_tokens`` under the ``/v1`` mount
(and ``/hf/v1``). Thin: body, service, response; auth and errors come from :data:`SURFACE`.

Routing is on the path only, so ``?beta=true`` (the SDK's beta client, Claude Code) lands here too. The client
token comes as ``x-api-key`` (SDK ``api_key``) or ``Authorization: Bearer`` (``ANTHROPIC_AUTH_TOKEN``).
``anthropic-version`` and ``anthropic-beta`` are accepted and ignored: betas that cannot apply to Gemini must
not refuse the request.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import GatewayError, NoKeysConfigured, Unauthenticated
from app.protocols.anthropic.errors import render_error
from app.keys.affinity import affinity_hint
from app.routes.access import admitted, client_policy
from app.routes.common import gateway, read_json
from app.routes.responses import to_response
from app.security import bearer
from app.surfaces import Surface, json_response

#: Session headers Claude Code (and others) send; the first present one is the affinity/analytics session.
SESSION_HEADERS = ("x-claude-code-session-id", "x-session-id")


def render(exc: GatewayError) -> Response:
    status, body, headers = render_error(exc)
    return json_response(status, body, headers)


def authenticate(request: Request) -> None:
    gw = gateway(request)
    token = request.headers.get("x-api-key") or bearer(request.headers)
    if client_policy(request, token) is None:
        if not gw.tokens.configured:
            raise Unauthenticated("the gateway has no ALLOWED_TOKENS configured, so it accepts no caller")
        if token:
            raise Unauthenticated("invalid x-api-key")
        raise Unauthenticated("missing client token: send 'x-api-key: <token>' or 'Authorization: Bearer <token>'")
    if not gw.keys.has_keys():
        raise NoKeysConfigured("no API keys are configured: set API_KEYS")


SURFACE = Surface("anthropic", render, authenticate)


def _session(request: Request) -> str | None:
    for name in SESSION_HEADERS:
        if value := request.headers.get(name):
            return value
    return None


async def messages(request: Request) -> Response:
    gw = gateway(request)
    payload = await read_json(request, gw.http.max_request_body)
    model = payload.get("model") if isinstance(payload, dict) else None
    reply = await admitted(request, model, lambda: gw.messages.create(payload, session_id=_session(request),
                                                                          hint=affinity_hint(request.headers)))
    return to_response(reply, keepalive=gw.http.stream_keepalive)


async def count_tokens(request: Request) -> Response:
    gw = gateway(request)
    payload = await read_json(request, gw.http.max_request_body)
    return to_response(await gw.messages.count_tokens(payload))


def routes() -> list[Route]:
    """Paths relative to the ``/v1`` mount."""
    return [SURFACE.route("/messages", messages, ["POST"]),
            SURFACE.route("/messages/count_tokens", count_tokens, ["POST"])]
