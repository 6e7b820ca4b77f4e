"""ResourceService: Gemini's project-scoped resource APIs (files, cachedContents, batches, interactions,
operations) on the pool.

A resource lives in the project of the key that created it (docs/architecture.md, Wire notes), so the
service records ``name -> (key id, tenant)`` from every create answer and pins each later call that names the
resource to that key. Lists ask every key's project and merge what the caller may see. The resumable upload
start picks a key; the ``X-Goog-Upload-URL`` handed back points at the gateway (never at Google, whose URL
could carry a pool key), and the session's chunks follow the key that started it.

Tenancy: the creating client token (hashed) is recorded with the owner; another token gets Google's 404 for
the name, as if it did not exist; the admin token sees everything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import orjson

from app.gemini.framing import SSEDecoder
from app.gemini.resources import DEFAULT_TTL, lifetime, references, references_in, valid_id
from app.keys import OK_OUTCOME, NoKeyAvailable, Outcome, OutcomeKind, Owner, Ownership
from app.keys.affinity import Affinity
from app.services.native import valid_model
from app.services.replies import JsonReply, Reply, StreamReply, google_error_body, google_error_reply
from app.upstream import GeminiClient, UpstreamResponse, UpstreamStream, UpstreamUnavailable

#: Cooldown buckets: resource calls spend no generation quota, so a model's cooldown does not block them.
FILES_BUCKET = "_files"
RESOURCES_BUCKET = "_resources"
#: An upload session outlives any sane upload; Google's own sessions last about a week.
UPLOAD_TTL = 24 * 3600.0
#: Per key and list call: at most this many upstream pages are merged (100 items each).
LIST_PAGES_PER_KEY = 10
#: Headers of the Interactions API forwarded as sent.
INTERACTION_HEADERS = ("api-revision",)
LIST_FIELDS = {"files": "files", "cachedContents": "cachedContents", "batches": "operations"}
BATCH_METHODS = frozenset({"batchGenerateContent", "asyncBatchEmbedContent"})
#: Client headers of the resumable protocol that travel upstream (everything else stays here).
UPLOAD_HEADERS = ("x-goog-upload-protocol", "x-goog-upload-command", "x-goog-upload-offset",
                  "x-goog-upload-header-content-length", "x-goog-upload-header-content-type",
                  "x-goog-upload-file-name", "content-type")
#: Upstream headers of the resumable protocol passed back to the client (the URL is rewritten).
#: (``x-goog-upload-control-url`` is not among them: it is a Google URL, and clients only ever see the gateway.)
UPLOAD_REPLY_HEADERS = ("x-goog-upload-status", "x-goog-upload-chunk-granularity",
                        "x-goog-upload-size-received")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the tenant (hash of the client token; "" for none) and whether it is the admin."""

    tenant: str
    admin: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """Where a generate-style request must go: ``key_id`` pinned (owner) or ``None`` (free choice)."""

    key_id: str | None = None
    error: JsonReply | None = None


def not_found(name: str) -> JsonReply:
    return JsonReply.of(google_error_body(404, f"{name} not found (or not visible to this client token).",
                                          "NOT_FOUND"), 404)


def bad_request(message: str) -> JsonReply:
    return JsonReply.of(google_error_body(400, message, "INVALID_ARGUMENT"), 400)


def _passthrough(resp: UpstreamResponse, headers: dict[str, str] | None = None) -> JsonReply:
    return JsonReply(resp.status, resp.body, headers or {}, content_type=resp.content_type)


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


class ResourceService:
    def __init__(self, client: GeminiClient, ownership: Ownership, affinity: Affinity | None = None) -> None:
        self._client = client
        self.ownership = ownership
        self._affinity = affinity

    # -- routing of requests that name resources ----------------------------------------------------------

    async def route(self, names: list[str], caller: Caller) -> Route:
        """The one key that owns every named resource, a 404 for a resource the caller may not see, or a 400
        when they belong to different keys. Unknown names do not pin (the upstream judges them)."""
        if not names:
            return Route()
        owners = await self.ownership.owners(names)
        for name, owner in owners.items():
            if not owner.visible_to(caller.tenant, caller.admin):
                return Route(error=not_found(name))
        keys = {owner.key_id for owner in owners.values()}
        if len(keys) > 1:
            listing = ", ".join(f"{name} (key {owner.key_id})" for name, owner in sorted(owners.items()))
            return Route(error=bad_request(
                "This request names resources created through different API keys of the gateway's pool, and "
                f"Google keeps each key's resources in its own project: {listing}. Use resources created in one "
                "conversation (or upload them again together)."))
        return Route(key_id=next(iter(keys)) if keys else None)

    async def route_body(self, raw: bytes, caller: Caller) -> Route:
        """``route`` for the resources a raw Gemini body names (no parse unless a marker is present)."""
        return await self.route(references_in(raw), caller)

    # -- resumable upload ---------------------------------------------------------------------------------

    async def upload_start(self, body: bytes, headers: Mapping[str, str], caller: Caller,
                           gateway_base: str, hint: str | None = None) -> JsonReply:
        """``X-Goog-Upload-Command: start``: a key is chosen here and the session stays on it. With an
        affinity ``hint`` the conversation's key is preferred, so files uploaded in one conversation land in
        one project and can be used together."""
        binding = await self._affinity.lookup(hint) if hint and self._affinity is not None else None
        if headers.get("x-goog-upload-protocol", "").lower() != "resumable":
            return bad_request("Only the resumable upload protocol is supported: send "
                               "X-Goog-Upload-Protocol: resumable and X-Goog-Upload-Command: start")
        try:
            resp = await self._client.call("POST", self._client.upload_url("files"), model=FILES_BUCKET,
                                           body=body, headers=_pick(headers, UPLOAD_HEADERS),
                                           prefer_key=binding.key_id if binding else None)
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            return google_error_reply(exc)
        upstream_url = (resp.headers or {}).get("x-goog-upload-url")
        if resp.status != 200 or not upstream_url or resp.key_id is None:
            return _passthrough(resp)
        upload_id = (parse_qs(urlsplit(upstream_url).query).get("upload_id") or [""])[0]
        if not upload_id:
            return JsonReply.of(google_error_body(502, "the upstream upload URL had no upload_id", "UNAVAILABLE"),
                                502)
        await self.ownership.record(f"uploads/{upload_id}", resp.key_id, caller.tenant, UPLOAD_TTL)
        if hint and self._affinity is not None:
            await self._affinity.settle(hint, binding, resp.key_id)
        out = _pick(resp.headers or {}, UPLOAD_REPLY_HEADERS)
        out["x-goog-upload-url"] = (f"{gateway_base}/upload/v1beta/files?"
                                    + urlencode({"upload_id": upload_id, "upload_protocol": "resumable"}))
        return JsonReply(200, b"", out, content_type="text/plain; charset=utf-8")

    async def upload_chunk(self, upload_id: str, body: bytes, headers: Mapping[str, str],
                           caller: Caller | None) -> JsonReply:
        """A chunk (``upload``, ``upload, finalize``, ``query``): the ``upload_id`` names the session and its key;
        ``caller`` is ``None`` when the client sent no token (the Python SDK sends none with chunks)."""
        if not upload_id or len(upload_id) > 512 or not upload_id.isprintable():
            return not_found("upload session")
        session = await self.ownership.owner(f"uploads/{upload_id}")
        if session is None or (caller is not None and not session.visible_to(caller.tenant, caller.admin)):
            return not_found("upload session")
        query = urlencode({"upload_id": upload_id, "upload_protocol": "resumable"})
        try:
            resp = await self._client.call("POST", self._client.upload_url("files"), model=FILES_BUCKET,
                                           body=body, query=query, key_id=session.key_id,
                                           headers=_pick(headers, UPLOAD_HEADERS))
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            return google_error_reply(exc)
        out = _pick(resp.headers or {}, UPLOAD_REPLY_HEADERS)
        if out.get("x-goog-upload-status") == "final" and resp.status == 200:
            await self.ownership.forget(f"uploads/{upload_id}")
            await self._record_created(resp.body, session.key_id, session.tenant, wrapper="file")
        return _passthrough(resp, out)

    async def upload_bytes(self, data: bytes, mime_type: str, display_name: str, caller: Caller,
                           hint: str | None = None) -> JsonReply:
        """A whole file in one start + finalize pair (the OpenAI files route); answers ``{"file": File}``."""
        meta = orjson.dumps({"file": {"displayName": display_name[:512], "mimeType": mime_type}})
        start = await self.upload_start(meta, {
            "x-goog-upload-protocol": "resumable", "x-goog-upload-command": "start",
            "x-goog-upload-header-content-length": str(len(data)),
            "x-goog-upload-header-content-type": mime_type, "content-type": "application/json"}, caller, "", hint)
        url = start.headers.get("x-goog-upload-url")
        if start.status != 200 or not url:
            return start
        upload_id = parse_qs(urlsplit(url).query)["upload_id"][0]
        return await self.upload_chunk(upload_id, data, {
            "x-goog-upload-command": "upload, finalize", "x-goog-upload-offset": "0",
            "content-type": mime_type}, caller)

    # -- get / delete / patch of one resource -------------------------------------------------------------

    async def get(self, name: str, caller: Caller, query: str = "") -> JsonReply:
        return await self._on_owner("GET", name, caller, query=query)

    async def delete(self, name: str, caller: Caller) -> JsonReply:
        reply = await self._on_owner("DELETE", name, caller)
        if reply.status == 200:
            await self.ownership.forget(name)
        return reply

    async def patch_cache(self, name: str, body: bytes, caller: Caller, query: str) -> JsonReply:
        owner, reply = await self._owner_of(name, caller)
        if owner is None:
            return reply  # type: ignore[return-value]
        reply = await self._send("PATCH", name, owner.key_id, body=body, query=query)
        if reply.status == 200 and isinstance(obj := _json(reply.body), dict):
            await self.ownership.record(name, owner.key_id, owner.tenant, lifetime(name, obj, time.time()))
        return reply

    async def cancel_batch(self, name: str, caller: Caller) -> JsonReply:
        owner, reply = await self._owner_of(name, caller)
        if owner is None:
            return reply  # type: ignore[return-value]
        return await self._send("POST", f"{name}:cancel", owner.key_id, body=b"{}")

    async def _on_owner(self, method: str, name: str, caller: Caller, query: str = "") -> JsonReply:
        owner, reply = await self._owner_of(name, caller)
        if owner is None:
            return reply  # type: ignore[return-value]
        return await self._send(method, name, owner.key_id, query=query)

    async def _owner_of(self, name: str, caller: Caller) -> tuple[Owner | None, JsonReply | None]:
        collection, _, rid = name.partition("/")
        if not valid_id(rid):
            return None, bad_request(f"Invalid resource name {name[:100]!r}: expected {collection}/<id> with "
                                     "letters, digits, '-' and '_'")
        owner = await self.ownership.owner(name)
        if owner is None or not owner.visible_to(caller.tenant, caller.admin):
            return None, not_found(name)
        return owner, None

    async def _send(self, method: str, path: str, key_id: str, *, body: bytes | None = None,
                    query: str = "") -> JsonReply:
        try:
            resp = await self._client.call(method, path, model=RESOURCES_BUCKET, body=body, query=query,
                                           key_id=key_id)
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            return google_error_reply(exc)
        return _passthrough(resp)

    # -- create -------------------------------------------------------------------------------------------

    async def create_cache(self, body: bytes, caller: Caller, query: str) -> JsonReply:
        """``cachedContents.create``: on the owner of the files it names, else any key; the new cache is
        recorded until its ``expireTime``."""
        obj = _json(body)
        if not isinstance(obj, dict):
            return bad_request("The request body must be a JSON object (a CachedContent).")
        model = obj.get("model")
        if not isinstance(model, str) or not model.startswith("models/") or not valid_model(model[7:]):
            return bad_request("cachedContent.model is required: 'models/<model id>'.")
        target = await self.route(references(obj), caller)
        if target.error is not None:
            return target.error
        return await self._create("cachedContents", model[7:], body, caller, query, target.key_id)

    async def create_batch(self, model: str, method: str, body: bytes, caller: Caller, query: str) -> JsonReply:
        """``models/{m}:batchGenerateContent`` / ``:asyncBatchEmbedContent``: inline requests may name files."""
        target = await self.route_body(body, caller)
        if target.error is not None:
            return target.error
        return await self._create(f"models/{model}:{method}", model, body, caller, query, target.key_id)

    async def _create(self, path: str, bucket: str, body: bytes, caller: Caller, query: str,
                      key_id: str | None) -> JsonReply:
        try:
            resp = await self._client.call("POST", path, model=bucket, body=body, query=query, key_id=key_id)
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            return google_error_reply(exc)
        if resp.status == 200 and resp.key_id is not None:
            await self._record_created(resp.body, resp.key_id, caller.tenant)
        return _passthrough(resp)

    async def _record_created(self, body: bytes, key_id: str, tenant: str, wrapper: str | None = None) -> None:
        obj = _json(body)
        if wrapper is not None and isinstance(obj, dict):
            obj = obj.get(wrapper)
        name = obj.get("name") if isinstance(obj, dict) else None
        if isinstance(name, str) and "/" in name:
            await self.ownership.record(name, key_id, tenant, lifetime(name, obj, time.time()))

    # -- interactions -------------------------------------------------------------------------------------

    async def create_interaction(self, body: bytes, caller: Caller, query: str,
                                 headers: Mapping[str, str]) -> Reply:
        """``POST interactions``: a continuation (``previous_interaction_id``) goes to the key of the chain;
        ``stream: true`` relays the upstream's event stream as bytes. The new id is recorded with its key."""
        obj = _json(body)
        if not isinstance(obj, dict):
            return bad_request("The request body must be a JSON object (an interaction).")
        names = references(obj)
        previous = obj.get("previous_interaction_id")
        if previous is not None:
            if not isinstance(previous, str) or not valid_id(previous):
                return bad_request("previous_interaction_id must be an interaction id.")
            names.append(f"interactions/{previous}")
        target = await self.route(names, caller)
        if target.error is not None:
            return target.error
        model = obj.get("model")
        bucket = model.removeprefix("models/") if isinstance(model, str) and valid_model(
            model.removeprefix("models/")) else RESOURCES_BUCKET
        extra = _pick(headers, INTERACTION_HEADERS)
        try:
            if obj.get("stream") is True:
                result = await self._client.stream("interactions", model=bucket, body=body, query=query,
                                                   framing="sse", headers=extra, key_id=target.key_id)
            else:
                result = await self._client.call("POST", "interactions", model=bucket, body=body, query=query,
                                                 headers=extra, key_id=target.key_id)
        except (NoKeyAvailable, UpstreamUnavailable) as exc:
            return google_error_reply(exc)
        if isinstance(result, UpstreamStream):
            await self._record_interaction(first_event(result.first), result.key_id, caller.tenant)
            return StreamReply(_relay(result), content_type=result.content_type)
        if result.status == 200 and result.key_id is not None:
            await self._record_interaction(_json(result.body), result.key_id, caller.tenant)
        return _passthrough(result)

    async def cancel_interaction(self, name: str, caller: Caller) -> JsonReply:
        owner, reply = await self._owner_of(name, caller)
        if owner is None:
            return reply  # type: ignore[return-value]
        return await self._send("POST", f"{name}/cancel", owner.key_id, body=b"{}")

    async def _record_interaction(self, obj: Any, key_id: str, tenant: str) -> None:
        if isinstance(obj, dict) and isinstance(obj.get("interaction"), dict):
            obj = obj["interaction"]  # a stream's interaction.created event
        rid = obj.get("id") if isinstance(obj, dict) else None
        if isinstance(rid, str) and valid_id(rid):  # store:false interactions have no id
            await self.ownership.record(f"interactions/{rid}", key_id, tenant, DEFAULT_TTL)

    # -- lists merged across the pool ---------------------------------------------------------------------

    async def list(self, collection: str, caller: Caller, page_size: int | None,
                   page_token: str | None) -> JsonReply:
        """Every key's list, merged and filtered to what the caller may see, paged by the gateway.

        A list costs one upstream call per key (projects shared by several keys are deduplicated by name);
        keys that cannot answer now are skipped."""
        field = LIST_FIELDS[collection]
        try:
            start = int(page_token) if page_token else 0
        except ValueError:
            return bad_request("Invalid page token.")
        size = min(max(page_size or 10, 1), 100)
        keys = self._client.keys.key_ids
        pages = await asyncio.gather(*(self._list_key(collection, field, kid) for kid in keys))
        seen: dict[str, dict[str, Any]] = {}
        for items in pages:
            for item in items:
                name = item.get("name")
                if isinstance(name, str) and name not in seen:
                    seen[name] = item
        owners = await self.ownership.owners(list(seen))
        visible = [item for name, item in seen.items()
                   if (owner := owners.get(name)) is not None and owner.visible_to(caller.tenant, caller.admin)
                   or (owner is None and caller.admin)]
        chunk = visible[start:start + size]
        out: dict[str, Any] = {field: chunk} if chunk else {}
        if start + size < len(visible):
            out["nextPageToken"] = str(start + size)
        return JsonReply.of(out)

    async def _list_key(self, collection: str, field: str, key_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = ""
        for _ in range(LIST_PAGES_PER_KEY):
            query = urlencode({"pageSize": 100, **({"pageToken": token} if token else {})})
            try:
                resp = await self._client.call("GET", collection, model=RESOURCES_BUCKET, query=query,
                                               key_id=key_id)
            except (NoKeyAvailable, UpstreamUnavailable):
                break
            obj = _json(resp.body) if resp.status == 200 else None
            if not isinstance(obj, dict):
                break
            items += [i for i in obj.get(field) or [] if isinstance(i, dict)]
            token = obj.get("nextPageToken") or ""
            if not token:
                break
        return items


def first_event(raw: bytes) -> Any:
    """The JSON of the first SSE event in ``raw`` (``None`` if it is not one)."""
    events = SSEDecoder().feed(raw)
    return _json(events[0]) if events else None


async def _relay(upstream: UpstreamStream) -> AsyncIterator[bytes]:
    """Bytes through unchanged; a failure after the commit ends the stream with an ``error`` event."""
    outcome: Outcome | None = None
    try:
        yield upstream.first
        async for raw in upstream.rest():
            yield raw
        outcome = OK_OUTCOME
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        outcome = Outcome(OutcomeKind.TRANSIENT, 0, reason=type(exc).__name__)
        error = {"event_type": "error", "error": {"code": 502, "message": "the upstream stream failed"}}
        yield b"data: " + orjson.dumps(error) + b"\n\n"
    finally:
        if outcome is None:
            upstream.abort()  # the client left: drop the upstream read, blame no key
        else:
            await upstream.finish(outcome)


def _pick(headers: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        value = headers.get(name)
        if value is not None:
            out[name] = value
    return out


