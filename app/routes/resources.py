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
from app.routes.common import gateway, read_body
from app.routes.native import SURFACE, authenticate
from app.routes.responses import to_response
from app.security import native_token
from app.services.native import strip_key
from app.services.replies import JsonReply, google_error_body
from app.services.resources import Caller

PREFIXES = ("", "/gemini", "/hf")


def _error(status: int, message: str, rpc: str) -> Response:
    return to_response(JsonReply.of(google_error_body(status, message, rpc), status))


def caller_of(request: Request, *, optional: bool = False) -> Caller | None:
    """The caller's tenant (the admin token sees every resource); ``optional``: no token at all gives
    ``None`` (upload chunks). Refusals are raised, in the native surface's shape."""
    gw = gateway(request)
    query = request.query_params if b"key=" in request.scope.get("query_string", b"") else {}
    token = native_token(request.headers, query)
    if token is None and optional:
        return None
    if token is not None and gw.admin_guard.configured and gw.admin_guard.check(token):
        return Caller(tenant_of(token), admin=True)
    authenticate(request)
    return Caller(tenant_of(token))


def _query(request: Request) -> str:
    return strip_key(request.scope.get("query_string", b""))


async def _body(request: Request) -> bytes:
    return await read_body(request, gateway(request).http.max_request_body)


def _prefix(request: Request) -> str:
    path: str = request.url.path
    for prefix in PREFIXES[1:]:
        if path.startswith(prefix + "/"):
            return prefix
    return ""


async def upload(request: Request) -> Response:
    upload_id = request.query_params.get("upload_id")
    caller = caller_of(request, optional=upload_id is not None)
    body = await _body(request)
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
        assert caller is not None
        service = gateway(request).resources
        rid: str = request.path_params["id"]
        name = f"{collection}/{rid}"
        if request.method == "GET":
            return to_response(await service.get(name, caller, _query(request)))
        if request.method == "DELETE":
            return to_response(await service.delete(name, caller))
        if request.method == "PATCH" and collection == "cachedContents":
            body = await _body(request)
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
        assert caller is not None
        service = gateway(request).resources
        if request.method == "POST":
            body = await _body(request)
            return to_response(await service.create_cache(body, caller, _query(request)))
        size = request.query_params.get("pageSize")
        if size is not None and not size.isdigit():
            return _error(400, f"Invalid value at 'page_size' (TYPE_INT32), \"{size[:40]}\"", "INVALID_ARGUMENT")
        return to_response(await service.list(collection, caller, int(size) if size else None,
                                              request.query_params.get("pageToken")))

    return handler


async def create_interaction(request: Request) -> Response:
    caller = caller_of(request)
    assert caller is not None
    body = await _body(request)
    gw = gateway(request)
    reply = await gw.resources.create_interaction(body, caller, _query(request), request.headers)
    return to_response(reply, keepalive=None)


def routes() -> list[Route]:
    """Paths relative to a ``/v1beta`` mount; each handler checks its caller (the admin token works too)."""
    route = SURFACE.route
    return [
        route("/files", _many("files"), ["GET"], auth=False),
        route("/files/{id}", _one("files"), ["GET", "DELETE"], auth=False),
        route("/cachedContents", _many("cachedContents"), ["GET", "POST"], auth=False),
        route("/cachedContents/{id}", _one("cachedContents"), ["GET", "PATCH", "DELETE"], auth=False),
        route("/batches", _many("batches"), ["GET"], auth=False),
        route("/batches/{id}", _one("batches"), ["GET", "DELETE", "POST"], auth=False),
        route("/operations/{id}", _one("operations"), ["GET", "DELETE"], auth=False),
        route("/interactions", create_interaction, ["POST"], auth=False),
        route("/interactions/{id}", _one("interactions"), ["GET", "DELETE"], auth=False),
        route("/interactions/{id}/cancel", _one("interactions"), ["POST"], auth=False),
    ]


def upload_routes() -> list[Route]:
    """Paths relative to an ``/upload/v1beta`` mount."""
    return [SURFACE.route("/files", upload, ["POST"], auth=False)]
