"""The OpenAI surface (mounted at ``/v1``, and ``/hf/v1`` through the ``/hf`` alias). Thin: body, service,
response; auth and error rendering come from :data:`SURFACE`.

Plain Starlette routes rather than FastAPI's dependency-solving ones: these are the hot paths (bench/).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import GatewayError, NoKeysConfigured, NotFound, Unauthenticated
from app.protocols.openai_chat.errors import render_error
from app.protocols.openai_chat.models import models_from_gemini
from app.protocols.openai_media.models import ALIASES, alias_entries
from app.routes.access import admitted, client_policy
from app.routes.common import gateway, read_json
from app.routes.responses import to_response
from app.keys import tenant_of
from app.keys.affinity import affinity_hint
from app.keys.manager import not_served
from app.security import bearer
from app.services.resources import Caller
from app.services.replies import JsonReply
from app.surfaces import Surface, json_response


def render(exc: GatewayError) -> Response:
    status, body, headers = render_error(exc)
    return json_response(status, body, headers)


def authenticate(request: Request) -> None:
    """A client token as ``Authorization: Bearer``; with no pool keys at all, say so before anything else."""
    gw = gateway(request)
    if client_policy(request, bearer(request.headers)) is not None:
        if not gw.keys.has_keys():
            raise NoKeysConfigured("no API keys are configured: set API_KEYS")
        return
    if not gw.tokens.configured:
        raise Unauthenticated("the gateway has no ALLOWED_TOKENS configured, so it accepts no caller")
    if request.headers.get("authorization"):
        raise Unauthenticated("invalid bearer token")
    raise Unauthenticated("missing bearer token: send 'Authorization: Bearer <token>'")


SURFACE = Surface("openai", render, authenticate)


async def body_of(request: Request) -> Any:
    """The JSON body, within ``MAX_REQUEST_BODY``; refusals are rendered by the surface."""
    return await read_json(request, gateway(request).http.max_request_body)


async def chat_completions(request: Request) -> Response:
    payload = await body_of(request)
    gw = gateway(request)
    model = payload.get("model") if isinstance(payload, dict) else None
    reply = await admitted(request, model, lambda: gw.chat.complete(
        payload, user_id=request.headers.get("x-user-id"), session_id=request.headers.get("x-session-id"),
        caller=Caller(tenant_of(bearer(request.headers))), hint=affinity_hint(request.headers)))
    return to_response(reply, keepalive=gw.http.stream_keepalive)


async def embeddings(request: Request) -> Response:
    payload = await body_of(request)
    model = payload.get("model") if isinstance(payload, dict) else None
    return to_response(await admitted(request, model, lambda: gateway(request).embeddings.embed(payload)))


async def _listing(request: Request) -> dict[str, Any]:
    gw = gateway(request)
    created = int(time.time())
    listing = models_from_gemini(await gw.catalog.served(), search_models=gw.http.model_search, created=created)
    media = gw.media.models  # OpenAI's media names, each listed while its route's Gemini model may be served
    served_names = {name for route, names in ALIASES.items() if gw.keys.may_serve(media.default(route))
                    for name in names}
    listing["data"].extend(e for e in alias_entries(media, created) if e["id"] in served_names)
    return listing


async def list_models(request: Request) -> Response:
    return to_response(JsonReply.of(await _listing(request)))


async def get_model(request: Request) -> Response:
    wanted = request.path_params["model_id"].removeprefix("models/")
    if not gateway(request).keys.may_serve(wanted):
        raise not_served(wanted)
    for entry in (await _listing(request))["data"]:
        if entry["id"] == wanted:
            return to_response(JsonReply.of(entry))
    raise NotFound(f"The model '{wanted}' does not exist", param="model", code="model_not_found")


def routes() -> list[Route]:
    """Paths relative to the ``/v1`` mount."""
    return [
        SURFACE.route("/chat/completions", chat_completions, ["POST"]),
        SURFACE.route("/embeddings", embeddings, ["POST"]),
        SURFACE.route("/models", list_models, ["GET"]),
        SURFACE.route("/models/{model_id:path}", get_model, ["GET"]),
    ]
