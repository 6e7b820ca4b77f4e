"""OpenAI ``/v1/files`` (upload, list, get, delete, content) backed by Gemini's Files API on the pool.

The file lands in one key's project and its owner is recorded, so a later ``file_id`` part in Chat
Completions is sent with that key. ``content`` is refused: Gemini does not serve uploaded bytes back.
"""

from __future__ import annotations

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.keys import tenant_of
from app.keys.affinity import affinity_hint
from app.protocols.openai_chat.errors import gemini_error_to_openai, openai_error_body
from app.protocols.openai_files import gemini_name, mime_of, openai_file, openai_id
from app.routes.common import gateway
from app.routes.openai import SURFACE
from app.routes.responses import to_response
from app.security import bearer
from app.services.replies import JsonReply
from app.services.resources import Caller


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> Response:
    kind = "invalid_request_error" if status < 500 else "api_error"
    return to_response(JsonReply.of(openai_error_body(message, kind, param, code), status))


def _caller(request: Request) -> Caller:
    return Caller(tenant_of(bearer(request.headers)))


def _translated(reply: JsonReply) -> Response | None:
    """``None`` when the Gemini reply is a success, else the OpenAI error to send."""
    if reply.status == 200:
        return None
    status, body = gemini_error_to_openai(reply.status, reply.body)
    return to_response(JsonReply.of(body, status, reply.headers))


async def create(request: Request) -> Response:
    gw = gateway(request)
    limit = gw.http.max_request_body
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        return _error(413, f"the upload is larger than the limit of {limit} bytes (MAX_REQUEST_BODY)", "file")
    try:
        form = await request.form(max_part_size=limit)
    except Exception as exc:  # noqa: BLE001 - multipart parse errors have several types
        return _error(400, f"expected a multipart/form-data body with a 'file' part: {type(exc).__name__}", "file")
    try:
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, UploadFile):
            return _error(400, "missing the 'file' part (multipart/form-data)", "file")
        if not isinstance(purpose, str) or not purpose:
            return _error(400, "missing the 'purpose' field", "purpose")
        data = await upload.read()
        filename = upload.filename or "upload"
        mime = mime_of(filename, upload.content_type)
    finally:
        await form.close()
    if len(data) > limit:
        return _error(413, f"the upload is larger than the limit of {limit} bytes (MAX_REQUEST_BODY)", "file")
    reply = await gw.resources.upload_bytes(data, mime, filename, _caller(request),
                                            hint=affinity_hint(request.headers))
    if (failed := _translated(reply)) is not None:
        return failed
    gemini = orjson.loads(reply.body).get("file") or {}
    return to_response(JsonReply.of(openai_file(gemini, purpose)))


async def list_files(request: Request) -> Response:
    limit = request.query_params.get("limit", "100")
    if not limit.isdigit() or not 1 <= int(limit) <= 10000:
        return _error(400, "limit must be an integer from 1 to 10000", "limit")
    reply = await gateway(request).resources.list("files", _caller(request), 100, None)
    if (failed := _translated(reply)) is not None:
        return failed
    files = [openai_file(f) for f in orjson.loads(reply.body).get("files") or []][:int(limit)]
    return to_response(JsonReply.of({"object": "list", "data": files, "has_more": False,
                                     "first_id": files[0]["id"] if files else None,
                                     "last_id": files[-1]["id"] if files else None}))


async def one(request: Request) -> Response:
    file_id: str = request.path_params["file_id"]
    name = gemini_name(file_id)
    if name is None:
        return _error(404, f"No such File object: {file_id[:80]}", "file_id")
    service = gateway(request).resources
    if request.method == "DELETE":
        reply = await service.delete(name, _caller(request))
        if (failed := _translated(reply)) is not None:
            return failed
        return to_response(JsonReply.of({"id": openai_id(name), "object": "file", "deleted": True}))
    reply = await service.get(name, _caller(request))
    if (failed := _translated(reply)) is not None:
        return failed
    return to_response(JsonReply.of(openai_file(orjson.loads(reply.body))))


async def content(request: Request) -> Response:
    return _error(400, "Gemini's Files API does not serve uploaded bytes back, so file content cannot be "
                       "downloaded through this gateway", "file_id")


def routes() -> list[Route]:
    """Paths relative to the ``/v1`` mount."""
    return [
        SURFACE.route("/files", create, ["POST"]),
        SURFACE.route("/files", list_files, ["GET"]),
        SURFACE.route("/files/{file_id}", one, ["GET", "DELETE"]),
        SURFACE.route("/files/{file_id}/content", content, ["GET"]),
    ]
