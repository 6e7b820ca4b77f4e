"""The Gemini-native surface under ``/v1beta``, ``/gemini/v1beta`` and ``/hf/v1beta`` (plus ``POST /v1/models/
{m}:{method}`` for clients whose default API version is v1). Errors here speak Google's error shape."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.gemini.resources import may_reference
from app.keys import tenant_of
from app.keys.affinity import affinity_hint
from app.routes.common import BodyError, gateway, read_body
from app.routes.responses import to_response
from app.security import native_token
from app.services.native import strip_key, valid_model
from app.services.replies import JsonReply, google_error_body
from app.services.resources import BATCH_METHODS, Caller
from app.services.resources import Route as OwnerRoute

NO_OWNER = OwnerRoute()

_NO_CALLER = ("Method doesn't allow unregistered callers (callers without established identity). Please use API "
              "Key or other form of API consumer identity to call this API.")


def _denied(request: Request) -> Response | None:
    gw = gateway(request)
    query = request.query_params if b"key=" in request.scope.get("query_string", b"") else {}
    token = native_token(request.headers, query)
    if token is None:
        return to_response(JsonReply.of(google_error_body(403, _NO_CALLER, "PERMISSION_DENIED"), 403))
    if not gw.tokens.check(token):
        body = google_error_body(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")
        body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                     "domain": "googleapis.com",
                                     "metadata": {"service": "generativelanguage.googleapis.com"}}]
        return to_response(JsonReply.of(body, 400))
    if not gw.keys.has_keys():
        return to_response(JsonReply.of(google_error_body(
            503, "no API keys are configured: set API_KEYS", "UNAVAILABLE"), 503))
    return None


def _caller(request: Request) -> Caller:
    """The tenant of an already authenticated native request (the admin token sees every resource)."""
    gw = gateway(request)
    query = request.query_params if b"key=" in request.scope.get("query_string", b"") else {}
    token = native_token(request.headers, query)
    return Caller(tenant_of(token), admin=gw.admin_guard.configured and gw.admin_guard.check(token))


def _query(request: Request) -> str:
    return strip_key(request.scope.get("query_string", b""))


async def list_models(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    return to_response(await gateway(request).native.list_models(_query(request)))


async def get_model(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    name = request.path_params["name"]
    if ":" in name:
        return to_response(JsonReply.of(google_error_body(404, f"Use POST for {name!r}", "NOT_FOUND"), 404))
    return to_response(await gateway(request).native.get_model(name.removeprefix("models/"), _query(request)))


async def call_model(request: Request) -> Response:
    if (denied := _denied(request)) is not None:
        return denied
    gw = gateway(request)
    model, sep, method = request.path_params["name"].removeprefix("models/").rpartition(":")
    if not sep:
        return to_response(JsonReply.of(google_error_body(
            404, "Expected models/{model}:{method}", "NOT_FOUND"), 404))
    try:
        body = await read_body(request, gw.settings.max_request_body)
    except BodyError as exc:
        return to_response(JsonReply.of(google_error_body(exc.status, str(exc), "INVALID_ARGUMENT"), exc.status))
    if method in BATCH_METHODS and valid_model(model):
        return to_response(await gw.resources.create_batch(model, method, body, _caller(request),
                                                           _query(request)))
    owner = NO_OWNER
    if may_reference(body):  # files and caches live in their key's project; most bodies name none
        owner = await gw.resources.route_body(body, _caller(request))
        if owner.error is not None:
            return to_response(owner.error)
    reply = await gw.native.call(model, method, body, _query(request),
                                 user_id=request.headers.get("x-user-id"),
                                 session_id=request.headers.get("x-session-id"), key_id=owner.key_id,
                                 hint=None if owner.key_id else affinity_hint(request.headers))
    return to_response(reply, keepalive=None)


def routes() -> list[Route]:
    out: list[Route] = []
    for prefix in ("/v1beta", "/gemini/v1beta", "/hf/v1beta"):
        out += [Route(f"{prefix}/models", list_models, methods=["GET"]),
                Route(prefix + "/models/{name:path}", get_model, methods=["GET"]),
                Route(prefix + "/models/{name:path}", call_model, methods=["POST"])]
    out += [Route("/v1/models/{name:path}", call_model, methods=["POST"]),
            Route("/hf/v1/models/{name:path}", call_model, methods=["POST"])]
    return out
