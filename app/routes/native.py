"""The Gemini-native surface under ``/v1beta``, ``/gemini/v1beta`` and ``/hf/v1beta`` (plus ``POST /v1/models/
{m}:{method}`` for clients whose default API version is v1). Errors here speak Google's error shape."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.routes.common import BodyError, gateway, read_body
from app.routes.metering import metered
from app.routes.responses import to_response
from app.security import native_token
from app.services.native import strip_key
from app.services.replies import JsonReply, google_error_body, retry_after_header
from app.state.limits import Decision

_NO_CALLER = ("Method doesn't allow unregistered callers (callers without established identity). Please use API "
              "Key or other form of API consumer identity to call this API.")


def _token(request: Request) -> str | None:
    query = request.query_params if b"key=" in request.scope.get("query_string", b"") else {}
    return native_token(request.headers, query)


def _denied(request: Request) -> Response | None:
    gw = gateway(request)
    token = _token(request)
    if token is None:
        return to_response(JsonReply.of(google_error_body(403, _NO_CALLER, "PERMISSION_DENIED"), 403))
    policy = gw.tokens.lookup(token)
    if policy is not None and (not policy.enabled or policy.expired(time.time())):
        message = "this token is disabled" if not policy.enabled else "this token has expired"
        return to_response(JsonReply.of(google_error_body(401, message, "UNAUTHENTICATED"), 401))
    if policy is None:
        body = google_error_body(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")
        body["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                     "domain": "googleapis.com",
                                     "metadata": {"service": "generativelanguage.googleapis.com"}}]
        return to_response(JsonReply.of(body, 400))
    if not gw.keys.has_keys():
        return to_response(JsonReply.of(google_error_body(
            503, "no API keys are configured: set API_KEYS", "UNAVAILABLE"), 503))
    return None


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
    policy = gw.tokens.lookup(_token(request))
    assert policy is not None  # _denied let the caller in
    decision = await gw.limiter.check(policy, model)
    if not decision.allowed:
        return _refused(decision)
    reply = await metered(gw.limiter, policy, lambda: gw.native.call(
        model, method, body, _query(request), user_id=request.headers.get("x-user-id"),
        session_id=request.headers.get("x-session-id")))
    return to_response(reply, keepalive=None)


_RPC_STATUS = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}


def _refused(decision: Decision) -> Response:
    """A token refusal in Google's error shape (Retry-After on a spent limit)."""
    headers = retry_after_header(decision.retry_after) if decision.status == 429 else None
    body = google_error_body(decision.status, decision.message, _RPC_STATUS.get(decision.status, "FAILED_PRECONDITION"))
    return to_response(JsonReply.of(body, decision.status, headers))


def routes() -> list[Route]:
    out: list[Route] = []
    for prefix in ("/v1beta", "/gemini/v1beta", "/hf/v1beta"):
        out += [Route(f"{prefix}/models", list_models, methods=["GET"]),
                Route(prefix + "/models/{name:path}", get_model, methods=["GET"]),
                Route(prefix + "/models/{name:path}", call_model, methods=["POST"])]
    out += [Route("/v1/models/{name:path}", call_model, methods=["POST"]),
            Route("/hf/v1/models/{name:path}", call_model, methods=["POST"])]
    return out
