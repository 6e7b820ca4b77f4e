"""The OpenAI Responses API routes (and legacy completions), mounted beside the OpenAI routes under ``/v1`` and
``/hf/v1``. Thin: auth and body through the OpenAI surface's helper, then the service."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.routes.common import gateway
from app.routes.openai import _authorised_json, _denied
from app.routes.responses import to_response

__all__ = ["routes"]


def _session(request: Request) -> str | None:
    headers = request.headers
    return headers.get("x-session-id") or headers.get("session-id") or headers.get("session_id")


async def create(request: Request) -> Response:
    payload, stop = await _authorised_json(request)
    if stop is not None:
        return stop
    gw = gateway(request)
    reply = await gw.responses.create(payload, user_id=request.headers.get("x-user-id"), session_id=_session(request))
    return to_response(reply, keepalive=gw.settings.stream_keepalive)


async def compact(request: Request) -> Response:
    payload, stop = await _authorised_json(request)
    if stop is not None:
        return stop
    return to_response(await gateway(request).responses.compact(payload))


async def retrieve(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    return to_response(await gateway(request).responses.retrieve(request.path_params["response_id"]))


async def delete(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    return to_response(await gateway(request).responses.delete(request.path_params["response_id"]))


async def completions(request: Request) -> Response:
    payload, stop = await _authorised_json(request)
    if stop is not None:
        return stop
    gw = gateway(request)
    return to_response(await gw.completions.complete(payload), keepalive=gw.settings.stream_keepalive)


def routes(prefix: str) -> list[Route]:
    return [
        Route(f"{prefix}/responses", create, methods=["POST"]),
        Route(f"{prefix}/responses/compact", compact, methods=["POST"]),
        Route(prefix + "/responses/{response_id}", retrieve, methods=["GET"]),
        Route(prefix + "/responses/{response_id}", delete, methods=["DELETE"]),
        Route(f"{prefix}/completions", completions, methods=["POST"]),
    ]
