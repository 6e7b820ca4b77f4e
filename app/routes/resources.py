"""Gemini's resource APIs on the native surface: the resumable upload (``/upload/v1beta/files``), files,
cachedContents, batches, interactions and operations; at the root, under ``/gemini`` and under ``/hf``. Google's error shape.

Auth as for the native surface (``x-goog-api-key``, ``?key=`` or Bearer); the admin token also works and sees
every resource. Upload chunks may come without a token (the Python SDK sends none): their ``upload_id``,
handed out by the start call, identifies the session.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.keys import tenant_of
from app.keys.affinity import affinity_hint
from app.routes.common import BodyError, gateway, read_body
from app.routes.responses import to_response
from app.security import native_token
from app.services.native import strip_key
from app.services.replies import JsonReply, google_error_body
from app.services.resources import Caller

PREFIXES = ("", "/gemini", "/hf")


def _error(status: int, message: str, rpc: str) -> Response:
    return to_response(JsonReply.of(google_error_body(status, message, rpc), status))


def caller_of(request: Request, *, optional: bool = False) -> Caller | Response | None:
    """The caller's tenant, or the refusal to send. ``optional``: no token at all gives ``None``."""
    gw = gateway(request)
    query = request.query_params if b"key=" in request.scope.get("query_string", b"") else {}
    token = native_token(request.headers, query)
    if token is None:
        if optional:
            return None
        return _error(403, "Method doesn't allow unregistered callers (callers without established identity). "
                           "Please use API Key or other form of API consumer identity to call this API.",
                      "PERMISSION_DENIED")
    if gw.admin_guard.configured and gw.admin_guard.check(token):
        return Caller(tenant_of(token), admin=True)
    if not gw.tokens.check(token):
        return _error(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")
    if not gw.keys.has_keys():
        return _error(503, "no API keys are configured: set API_KEYS", "UNAVAILABLE")
    return Caller(tenant_of(token))


def _query(request: Request) -> str:
    return strip_key(request.scope.get("query_string", b""))


async def _body(request: Request) -> bytes | Response:
    try:
        return await read_body(request, gateway(request).settings.max_request_body)
    except BodyError as exc:
        return _error(exc.status, str(exc), "INVALID_ARGUMENT")


def _prefix(request: Request) -> str:
    path: str = request.url.path
    for prefix in PREFIXES[1:]:
        if path.startswith(prefix + "/"):
            return prefix
    return ""


async def upload(request: Request) -> Response:
    upload_id = request.query_params.get("upload_id")
    caller = caller_of(request, optional=upload_id is not None)
    if isinstance(caller, Response):
        return caller
    body = await _body(request)
    if isinstance(body, Response):
        return body
    service = gateway(request).resources
    if upload_id is not None:
        return to_response(await service.upload_chunk(upload_id, body, request.headers, caller))
    assert caller is not None
    if request.headers.get("x-goog-upload-command", "").lower() != "start":
        return _error(400, "A new upload needs X-Goog-Upload-Command: start (chunks carry ?upload_id=)",
                      "INVALID_ARGUMENT")
    base = f"{request.url.scheme}://{request.url.netloc}{_prefix(request)}"
    return to_response(await service.upload_start(body, request.headers, caller, base,
                                                  hint=affinity_hint(request.headers)))


def _one(collection: str):  # type: ignore[no-untyped-def]
    """GET / DELETE / PATCH / POST(:cancel) on ``{collection}/{id}``."""

    async def handler(request: Request) -> Response:
        caller = caller_of(request)
        if isinstance(caller, Response):
            return caller
        service = gateway(request).resources
        rid: str = request.path_params["id"]
        name = f"{collection}/{rid}"
        if request.method == "GET":
            return to_response(await service.get(name, caller, _query(request)))
        if request.method == "DELETE":
            return to_response(await service.delete(name, caller))
        if request.method == "PATCH" and collection == "cachedContents":
            body = await _body(request)
            if isinstance(body, Response):
                return body
            return to_response(await service.patch_cache(name, body, caller, _query(request)))
        if request.method == "POST" and collection == "interactions" and request.url.path.endswith("/cancel"):
            return to_response(await service.cancel_interaction(name, caller))
        if request.method == "POST" and collection == "batches" and rid.endswith(":cancel"):
            return to_response(await service.cancel_batch(f"batches/{rid.removesuffix(':cancel')}", caller))
        return _error(404, f"{request.method} {collection}/{{id}} is not a method of this API", "NOT_FOUND")

    return handler


def _many(collection: str):  # type: ignore[no-untyped-def]
    """GET (list, merged across the pool) and, for cachedContents, POST (create) on ``{collection}``."""

    async def handler(request: Request) -> Response:
        caller = caller_of(request)
        if isinstance(caller, Response):
            return caller
        service = gateway(request).resources
        if request.method == "POST":
            body = await _body(request)
            if isinstance(body, Response):
                return body
            return to_response(await service.create_cache(body, caller, _query(request)))
        size = request.query_params.get("pageSize")
        if size is not None and not size.isdigit():
            return _error(400, f"Invalid value at 'page_size' (TYPE_INT32), \"{size[:40]}\"", "INVALID_ARGUMENT")
        return to_response(await service.list(collection, caller, int(size) if size else None,
                                              request.query_params.get("pageToken")))

    return handler


async def create_interaction(request: Request) -> Response:
    caller = caller_of(request)
    if isinstance(caller, Response):
        return caller
    body = await _body(request)
    if isinstance(body, Response):
        return body
    gw = gateway(request)
    reply = await gw.resources.create_interaction(body, caller, _query(request), request.headers)
    return to_response(reply, keepalive=None)


def routes() -> list[Route]:
    out: list[Route] = []
    for prefix in PREFIXES:
        v = f"{prefix}/v1beta"
        out += [
            Route(f"{prefix}/upload/v1beta/files", upload, methods=["POST"]),
            Route(f"{v}/files", _many("files"), methods=["GET"]),
            Route(v + "/files/{id}", _one("files"), methods=["GET", "DELETE"]),
            Route(f"{v}/cachedContents", _many("cachedContents"), methods=["GET", "POST"]),
            Route(v + "/cachedContents/{id}", _one("cachedContents"), methods=["GET", "PATCH", "DELETE"]),
            Route(f"{v}/batches", _many("batches"), methods=["GET"]),
            Route(v + "/batches/{id}", _one("batches"), methods=["GET", "DELETE", "POST"]),
            Route(v + "/operations/{id}", _one("operations"), methods=["GET", "DELETE"]),
            Route(f"{v}/interactions", create_interaction, methods=["POST"]),
            Route(v + "/interactions/{id}", _one("interactions"), methods=["GET", "DELETE"]),
            Route(v + "/interactions/{id}/cancel", _one("interactions"), methods=["POST"]),
        ]
    return out
