"""The fake's project-scoped resource routes: the resumable Files upload, files, cachedContents and batches.

Wire shapes follow reference gemini-files-caches.md: the upload start answers an empty 200 with
``x-goog-upload-url`` and ``x-goog-upload-status: active``; chunks are identified by ``upload_id`` alone (the
Python SDK sends no key with them); a chunk sent with a key of another project is refused with the File 403.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import errors, wire
from .answers import get
from .projects import Owned, file_denied

if TYPE_CHECKING:
    from .server import FakeGemini

PAGE_DEFAULT = 10
PAGE_MAX = 100


def add_routes(app: web.Application, fake: FakeGemini) -> Handlers:
    """Register the resource routes (before the catch-all 404) and return their handlers."""
    handlers = Handlers(fake)
    add = app.router.add_route
    add("POST", "/upload/v1beta/files", handlers.upload)
    add("GET", "/v1beta/files", handlers.list_files)
    add("GET", "/v1beta/files/{id}", handlers.get_file)
    add("DELETE", "/v1beta/files/{id}", handlers.delete_file)
    add("POST", "/v1beta/cachedContents", handlers.create_cache)
    add("GET", "/v1beta/cachedContents", handlers.list_caches)
    add("GET", "/v1beta/cachedContents/{id}", handlers.get_cache)
    add("PATCH", "/v1beta/cachedContents/{id}", handlers.patch_cache)
    add("DELETE", "/v1beta/cachedContents/{id}", handlers.delete_cache)
    add("GET", "/v1beta/batches", handlers.list_batches)
    add("GET", "/v1beta/batches/{id}", handlers.get_batch)
    add("POST", "/v1beta/batches/{id}", handlers.cancel_batch)
    add("DELETE", "/v1beta/batches/{id}", handlers.delete_batch)
    add("POST", "/v1beta/interactions", handlers.create_interaction)
    add("GET", "/v1beta/interactions/{id}", handlers.get_interaction)
    add("DELETE", "/v1beta/interactions/{id}", handlers.delete_interaction)
    add("POST", "/v1beta/interactions/{id}/cancel", handlers.cancel_interaction)
    return handlers


def _page(items: list[dict[str, Any]], field: str, request: web.Request) -> dict[str, Any]:
    """Google's pagination: ``pageSize`` (default 10, max 100) and an opaque ``pageToken``; empty -> ``{}``."""
    try:
        size = min(int(request.query.get("pageSize") or PAGE_DEFAULT), PAGE_MAX)
        start = int(request.query.get("pageToken") or 0)
    except ValueError:
        size, start = PAGE_DEFAULT, 0
    chunk = items[start:start + size]
    out: dict[str, Any] = {field: chunk} if chunk else {}
    if start + size < len(items):
        out["nextPageToken"] = str(start + size)
    return out


class Handlers:
    def __init__(self, fake: FakeGemini) -> None:
        self.fake = fake
        self.projects = fake.projects

    async def _auth(self, request: web.Request) -> tuple[str, Any, web.Response | None]:
        call, failed = await self.fake._authenticated(request)
        return call.key, call.body, failed

    def _json(self, body: Any, status: int = 200) -> web.Response:
        return self.fake._json(status, body)

    def _error(self, reply: errors.ErrorReply) -> web.Response:
        return self.fake._error(reply)

    async def _list(self, request: web.Request, table: Mapping[str, Owned], field: str) -> web.Response:
        """One page of the caller's project's objects of one collection."""
        key, _, failed = await self._auth(request)
        if failed:
            return failed
        project = self.projects.project_of(key)
        return self._json(_page([o.obj for o in table.values() if o.project == project], field, request))

    async def _delete(self, request: web.Request, table: dict[str, Owned],
                      lookup: Callable[[str, str], tuple[Any, errors.ErrorReply | None]], prefix: str) -> web.Response:
        """Delete the named object when the caller's project owns it (else the collection's own 403/404)."""
        key, _, failed = await self._auth(request)
        if failed:
            return failed
        name = prefix + request.match_info["id"]
        _, reply = lookup(key, name)
        if reply:
            return self._error(reply)
        del table[name]
        return self._json({})

    # -- upload ---------------------------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        upload_id = request.query.get("upload_id")
        if upload_id is not None:
            return await self._chunk(request, upload_id)
        key, body, failed = await self._auth(request)
        if failed:
            return failed
        if request.headers.get("X-Goog-Upload-Protocol", "").lower() != "resumable" or \
                request.headers.get("X-Goog-Upload-Command", "").lower() != "start":
            return self._error(errors.invalid_argument("Only the resumable upload protocol is supported here"))
        total = request.headers.get("X-Goog-Upload-Header-Content-Length")
        new_id = self.projects.start_upload(key, body if isinstance(body, dict) else {},
                                            int(total) if total and total.isdigit() else None)
        url = (f"{request.scheme}://{request.host}/upload/v1beta/files?upload_id={new_id}"
               "&upload_protocol=resumable")
        return web.Response(status=200, body=b"", headers={
            "Content-Type": "text/plain; charset=utf-8", "X-Goog-Upload-Status": "active",
            "X-Goog-Upload-URL": url, "X-Goog-Upload-Chunk-Granularity": str(8 * 1024 * 1024)})

    async def _chunk(self, request: web.Request, upload_id: str) -> web.Response:
        call = await self.fake._receive(request)
        upload = self.projects.uploads.get(upload_id)
        if upload is None:
            return web.Response(status=404, text="upload session not found")
        if call.key and self.projects.project_of(call.key) != upload.project:
            return self._error(file_denied(upload_id))
        command = request.headers.get("X-Goog-Upload-Command", "").lower()
        offset = request.headers.get("X-Goog-Upload-Offset")
        if offset is not None and int(offset) != len(upload.data):
            return self._error(errors.invalid_argument(
                f"X-Goog-Upload-Offset {offset} does not match the {len(upload.data)} bytes received"))
        if "upload" in command:
            upload.data += call.raw
        if "finalize" not in command:
            return web.Response(status=200, body=b"", headers={"X-Goog-Upload-Status": "active",
                                                              "Content-Type": "text/plain; charset=utf-8"})
        del self.projects.uploads[upload_id]
        obj = self.projects.finalize(upload)
        return web.Response(status=200, body=wire.pretty_json({"file": obj}),
                            headers={**wire.JSON_HEADERS, "X-Goog-Upload-Status": "final"})

    # -- files ----------------------------------------------------------------------------------------------

    async def list_files(self, request: web.Request) -> web.Response:
        return await self._list(request, self.projects.files, "files")

    async def get_file(self, request: web.Request) -> web.Response:
        key, _, failed = await self._auth(request)
        if failed:
            return failed
        obj, reply = self.projects.file(key, "files/" + request.match_info["id"])
        return self._error(reply) if reply else self._json(obj)

    async def delete_file(self, request: web.Request) -> web.Response:
        return await self._delete(request, self.projects.files, self.projects.file, "files/")

    # -- cachedContents -------------------------------------------------------------------------------------

    async def create_cache(self, request: web.Request) -> web.Response:
        key, body, failed = await self._auth(request)
        if failed:
            return failed
        obj, reply = self.projects.create_cache(key, body if isinstance(body, dict) else {})
        return self._error(reply) if reply else self._json(obj)

    async def list_caches(self, request: web.Request) -> web.Response:
        return await self._list(request, self.projects.caches, "cachedContents")

    async def get_cache(self, request: web.Request) -> web.Response:
        key, _, failed = await self._auth(request)
        if failed:
            return failed
        owned, reply = self.projects.cache(key, "cachedContents/" + request.match_info["id"])
        return self._error(reply) if owned is None or reply else self._json(owned.obj)

    async def patch_cache(self, request: web.Request) -> web.Response:
        key, body, failed = await self._auth(request)
        if failed:
            return failed
        owned, reply = self.projects.cache(key, "cachedContents/" + request.match_info["id"])
        if owned is None or reply:
            return self._error(reply or errors.simple(404, "NOT_FOUND", "not found"))
        obj = self.projects.patch_cache(owned, body if isinstance(body, dict) else {})
        return self._json(obj) if obj else self._error(errors.invalid_argument("Invalid ttl or expireTime"))

    async def delete_cache(self, request: web.Request) -> web.Response:
        return await self._delete(request, self.projects.caches, self.projects.cache, "cachedContents/")

    # -- batches --------------------------------------------------------------------------------------------

    async def create_batch(self, request: web.Request, model: str, method: str) -> web.Response:
        """``models/{m}:batchGenerateContent`` and ``:asyncBatchEmbedContent`` (called from model_call)."""
        key, body, failed = await self._auth(request)
        if failed:
            return failed
        body = body if isinstance(body, dict) else {}
        reply = self.projects.check_files(key, body)
        if reply:
            return self._error(reply)
        if not isinstance(get(body, "batch"), dict):
            return self._error(errors.invalid_argument("* batch: field is required"))
        return self._json(self.projects.create_batch(key, model, body, method == "asyncBatchEmbedContent"))

    async def list_batches(self, request: web.Request) -> web.Response:
        return await self._list(request, self.projects.batches, "operations")

    async def get_batch(self, request: web.Request) -> web.Response:
        key, _, failed = await self._auth(request)
        if failed:
            return failed
        owned, reply = self.projects.batch(key, "batches/" + request.match_info["id"])
        return self._error(reply) if owned is None or reply else self._json(self.projects.poll(owned))

    async def cancel_batch(self, request: web.Request) -> web.Response:
        key, _, failed = await self._auth(request)
        if failed:
            return failed
        name, sep, verb = request.match_info["id"].partition(":")
        if not sep or verb != "cancel":
            return await self.fake.not_found(request)
        owned, reply = self.projects.batch(key, "batches/" + name)
        if owned is None or reply:
            return self._error(reply or errors.simple(404, "NOT_FOUND", "not found"))
        owned.obj["metadata"]["state"] = "BATCH_STATE_CANCELLED"
        owned.obj["done"] = True
        return self._json({})

    async def delete_batch(self, request: web.Request) -> web.Response:
        return await self._delete(request, self.projects.batches, self.projects.batch, "batches/")

    # -- interactions ---------------------------------------------------------------------------------------

    async def create_interaction(self, request: web.Request) -> web.StreamResponse:
        """Create; ``stream: true`` answers SSE events (created, status, step, completed)."""
        key, body, failed = await self._auth(request)
        if failed:
            return failed
        body = body if isinstance(body, dict) else {}
        obj, reply = self.projects.create_interaction(key, body)
        if reply or obj is None:
            return self._error(reply or errors.internal())
        if not body.get("stream"):
            return self._json(obj)
        response = web.StreamResponse(status=200, headers={**wire.COMMON_HEADERS,
                                                           "Content-Type": wire.SSE_CONTENT_TYPE})
        await response.prepare(request)
        events = [{"event_type": "interaction.created", "interaction": {**obj, "status": "in_progress"}},
                  {"event_type": "step.start", "index": 0, "step": {"type": "model_output", "content": []}},
                  {"event_type": "step.delta", "index": 0, "delta": obj["steps"][0]["content"][0]},
                  {"event_type": "step.stop", "index": 0},
                  {"event_type": "interaction.completed", "interaction": obj}]
        for event in events:
            await response.write(wire.sse_event(event))
        await response.write_eof()
        return response

    async def get_interaction(self, request: web.Request) -> web.Response:
        key, _, failed = await self._auth(request)
        if failed:
            return failed
        owned, reply = self.projects.interaction(key, request.match_info["id"])
        return self._error(reply) if owned is None or reply else self._json(owned.obj)

    async def delete_interaction(self, request: web.Request) -> web.Response:
        key, _, failed = await self._auth(request)
        if failed:
            return failed
        owned, reply = self.projects.interaction(key, request.match_info["id"])
        if owned is None or reply:
            return self._error(reply or errors.internal())
        del self.projects.interactions[request.match_info["id"]]
        return self._json({})

    async def cancel_interaction(self, request: web.Request) -> web.Response:
        key, _, failed = await self._auth(request)
        if failed:
            return failed
        owned, reply = self.projects.interaction(key, request.match_info["id"])
        if owned is None or reply:
            return self._error(reply or errors.internal())
        owned.obj["status"] = "cancelled"
        return self._json(owned.obj)
