"""The OpenAI Responses API (and legacy completions): routes of the OpenAI surface under the ``/v1`` mount.
Thin: body, service, response; auth and errors come from the OpenAI surface."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.keys.affinity import affinity_hint
from app.routes.access import admitted
from app.routes.common import gateway
from app.routes.openai import SURFACE, body_of
from app.routes.responses import to_response

__all__ = ["routes"]


def _session(request: Request) -> str | None:
    headers = request.headers
    return headers.get("x-session-id") or headers.get("session-id") or headers.get("session_id")


async def create(request: Request) -> Response:
    payload = await body_of(request)
    gw = gateway(request)
    model = payload.get("model") if isinstance(payload, dict) else None
    reply = await admitted(request, model, lambda: gw.responses.create(
        payload, user_id=request.headers.get("x-user-id"), session_id=_session(request),
        hint=affinity_hint(request.headers)))
    return to_response(reply, keepalive=gw.http.stream_keepalive)


async def compact(request: Request) -> Response:
    return to_response(await gateway(request).responses.compact(await body_of(request)))


async def retrieve(request: Request) -> Response:
    return to_response(await gateway(request).responses.retrieve(request.path_params["response_id"]))


async def delete(request: Request) -> Response:
    return to_response(await gateway(request).responses.delete(request.path_params["response_id"]))


async def completions(request: Request) -> Response:
    gw = gateway(request)
    payload = await body_of(request)
    model = payload.get("model") if isinstance(payload, dict) else None
    reply = await admitted(request, model, lambda: gw.completions.complete(payload))
    return to_response(reply, keepalive=gw.http.stream_keepalive)


def routes() -> list[Route]:
    """Paths relative to the ``/v1`` mount."""
    return [
        SURFACE.route("/responses", create, ["POST"]),
        SURFACE.route("/responses/compact", compact, ["POST"]),
        SURFACE.route("/responses/{response_id}", retrieve, ["GET"]),
        SURFACE.route("/responses/{response_id}", delete, ["DELETE"]),
        SURFACE.route("/completions", completions, ["POST"]),
    ]
