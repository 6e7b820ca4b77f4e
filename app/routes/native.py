"""The Gemini-native surface: mounted at ``/v1beta`` and ``/gemini/v1beta`` (and under ``/hf``), plus
``POST /v1/models/{m}:{method}`` for SDKs whose default API version is v1. Errors speak Google's shape."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import GatewayError, NoKeysConfigured, NotFound, PermissionDenied, Unauthenticated
from app.gemini.render import render_error
from app.routes.access import admitted, client_policy
from app.routes.common import gateway, read_body
from app.routes.responses import to_response
from app.security import native_token
from app.gemini.resources import may_reference
from app.keys import tenant_of
from app.keys.affinity import affinity_hint
from app.services.native import strip_key, valid_model
from app.services.resources import BATCH_METHODS, Caller
from app.services.resources import Route as OwnerRoute
from app.surfaces import Surface, json_response

NO_OWNER = OwnerRoute()

_NO_CALLER = ("Method doesn't allow unregistered callers (callers without established identity). Please use API "
              "Key or other form of API consumer identity to call this API.")


def render(exc: GatewayError) -> Response:
    status, body, headers, content_type = render_error(exc)
    return json_response(status, body, headers, content_type)


def authenticate(request: Request) -> None:
    """A client token where a Gemini key would go: ``x-goog-api-key``, ``?key=`` or Bearer."""
    gw = gateway(request)
    query = request.query_params if b"key=" in request.scope.get("query_string", b"") else {}
    token = native_token(request.headers, query)
    if token is None:
        raise PermissionDenied(_NO_CALLER)
    if client_policy(request, token) is None:
        raise Unauthenticated("API key not valid. Please pass a valid API key.")
    if not gw.keys.has_keys():
        raise NoKeysConfigured("no API keys are configured: set API_KEYS")


SURFACE = Surface("native", render, authenticate)


def _caller(request: Request) -> Caller:
    """The tenant of an already authenticated native request (the admin token sees every resource)."""
    gw = gateway(request)
    query = request.query_params if b"key=" in request.scope.get("query_string", b"") else {}
    token = native_token(request.headers, query)
    return Caller(tenant_of(token), admin=gw.admin_guard.configured and gw.admin_guard.check(token))


def _query(request: Request) -> str:
    return strip_key(request.scope.get("query_string", b""))


async def list_models(request: Request) -> Response:
    return to_response(await gateway(request).native.list_models(_query(request)))


async def get_model(request: Request) -> Response:
    name = request.path_params["name"]
    if ":" in name:
        raise NotFound(f"Use POST for {name!r}")
    return to_response(await gateway(request).native.get_model(name.removeprefix("models/"), _query(request)))


async def call_model(request: Request) -> Response:
    gw = gateway(request)
    model, sep, method = request.path_params["name"].removeprefix("models/").rpartition(":")
    if not sep:
        raise NotFound("Expected models/{model}:{method}")
    body = await read_body(request, gw.http.max_request_body)
    if method in BATCH_METHODS and valid_model(model):
        return to_response(await gw.resources.create_batch(model, method, body, _caller(request),
                                                           _query(request)))
    owner = NO_OWNER
    if may_reference(body):  # files and caches live in their key's project; most bodies name none
        owner = await gw.resources.route_body(body, _caller(request))
        if owner.error is not None:
            return to_response(owner.error)
    reply = await admitted(request, model, lambda: gw.native.call(
        model, method, body, _query(request), user_id=request.headers.get("x-user-id"),
        session_id=request.headers.get("x-session-id"), key_id=owner.key_id,
        hint=None if owner.key_id else affinity_hint(request.headers)))
    return to_response(reply, keepalive=None)


def routes() -> list[Route]:
    """Paths relative to a ``/v1beta`` mount."""
    return [SURFACE.route("/models", list_models, ["GET"]),
            SURFACE.route("/models/{name:path}", get_model, ["GET"]),
            SURFACE.route("/models/{name:path}", call_model, ["POST"])]


def v1_routes() -> list[Route]:
    """Native calls under the ``/v1`` mount (``GET /v1/models`` stays OpenAI's)."""
    return [SURFACE.route("/models/{name:path}", call_model, ["POST"])]
