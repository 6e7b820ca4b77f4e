"""The OpenAI surface, mounted under ``/v1`` and ``/hf/v1``. Thin: auth, body, service, response.

Plain Starlette routes rather than FastAPI's dependency-solving ones: these are the hot paths (bench/).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.keys import NoKeyAvailable
from app.protocols.openai_chat.errors import openai_error_body
from app.protocols.openai_chat.models import models_from_gemini
from app.routes.common import BodyError, gateway, read_json
from app.routes.responses import to_response
from app.security import bearer
from app.routes.metering import metered
from app.services.replies import JsonReply, openai_error_reply, retry_after_header
from app.state.limits import Decision
from app.state.policy import TokenPolicy
from app.upstream import UpstreamResponse, UpstreamUnavailable

_DECISION_TYPE = {401: "invalid_request_error", 403: "invalid_request_error", 429: "rate_limit_error"}


def _error(status: int, message: str, type_: str, code: str | None = None, param: str | None = None,
           headers: dict[str, str] | None = None) -> Response:
    reply = JsonReply.of(openai_error_body(message, type_, param, code), status, headers)
    return to_response(reply)


def _refused(decision: Decision) -> Response:
    return _error(decision.status, decision.message, _DECISION_TYPE.get(decision.status, "invalid_request_error"),
                  decision.code, "model" if decision.status == 403 else None,
                  retry_after_header(decision.retry_after) if decision.status == 429 else None)


def _denied(request: Request) -> Response | None:
    return _caller(request)[1]


def _caller(request: Request) -> tuple[TokenPolicy | None, Response | None]:
    """The caller's token policy, or the response that refuses the caller."""
    gw = gateway(request)
    policy = gw.tokens.lookup(bearer(request.headers))
    if policy is not None:
        if not policy.enabled or policy.expired(time.time()):
            return None, _error(401, "this token is disabled" if not policy.enabled else "this token has expired",
                                "invalid_request_error", "invalid_api_key")
        if not gw.keys.has_keys():
            return None, _error(503, "no API keys are configured: set API_KEYS", "service_unavailable",
                                "no_keys_configured")
        return policy, None
    if not gw.tokens.configured:
        message = "the gateway has no ALLOWED_TOKENS configured, so it accepts no caller"
    elif request.headers.get("authorization"):
        message = "invalid bearer token"
    else:
        message = "missing bearer token: send 'Authorization: Bearer <token>'"
    return None, _error(401, message, "invalid_request_error", "invalid_api_key")


async def _authorised_json(request: Request) -> tuple[Any, Response | None]:
    """The caller checked and the JSON body read, or the error response that stops the request."""
    if (denied := _denied(request)) is not None:
        return None, denied
    try:
        return await read_json(request, gateway(request).settings.max_request_body), None
    except BodyError as exc:
        return None, _error(exc.status, str(exc), "invalid_request_error")


async def chat_completions(request: Request) -> Response:
    policy, stop = _caller(request)
    if stop is not None:
        return stop
    assert policy is not None
    gw = gateway(request)
    try:
        payload = await read_json(request, gw.settings.max_request_body)
    except BodyError as exc:
        return _error(exc.status, str(exc), "invalid_request_error")
    model = payload.get("model") if isinstance(payload, dict) else None
    decision = await gw.limiter.check(policy, model if isinstance(model, str) else "")
    if not decision.allowed:
        return _refused(decision)
    reply = await metered(gw.limiter, policy, lambda: gw.chat.complete(
        payload, user_id=request.headers.get("x-user-id"), session_id=request.headers.get("x-session-id")))
    return to_response(reply, keepalive=gw.settings.stream_keepalive)


async def embeddings(request: Request) -> Response:
    payload, stop = await _authorised_json(request)
    if stop is not None:
        return stop
    return to_response(await gateway(request).embeddings.embed(payload))


async def _catalog(request: Request) -> list[dict] | Response:
    gw = gateway(request)
    try:
        models = await gw.catalog.models()
    except (NoKeyAvailable, UpstreamUnavailable) as exc:
        return to_response(openai_error_reply(exc))
    if isinstance(models, UpstreamResponse):
        return to_response(openai_error_reply(models))
    return models


async def list_models(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    models = await _catalog(request)
    if isinstance(models, Response):
        return models
    listing = models_from_gemini(models, search_models=gateway(request).settings.model_search,
                                 created=int(time.time()))
    return to_response(JsonReply.of(listing))


async def get_model(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    wanted = request.path_params["model_id"].removeprefix("models/")
    models = await _catalog(request)
    if isinstance(models, Response):
        return models
    listing = models_from_gemini(models, search_models=gateway(request).settings.model_search,
                                 created=int(time.time()))
    for entry in listing["data"]:
        if entry["id"] == wanted:
            return to_response(JsonReply.of(entry))
    return _error(404, f"The model '{wanted}' does not exist", "invalid_request_error", "model_not_found",
                  "model")


def routes(prefix: str) -> list[Route]:
    return [
        Route(f"{prefix}/chat/completions", chat_completions, methods=["POST"]),
        Route(f"{prefix}/embeddings", embeddings, methods=["POST"]),
        Route(f"{prefix}/models", list_models, methods=["GET"]),
        Route(prefix + "/models/{model_id:path}", get_model, methods=["GET"]),
    ]

