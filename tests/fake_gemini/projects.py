"""Google Cloud projects in the fake: every key belongs to one, and files, caches and batches live in the project
of the key that created them (reference gemini-files-caches.md §4).

A key's project is the key itself unless ``/_control/project`` assigned one, so a pool of distinct keys is a
pool of distinct projects by default. A request that names another project's resource gets Google's 403 (the
same text as for a missing one). State is plain dicts: the fake is one process on one event loop.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import errors
from .answers import get

FILE_TTL = 48 * 3600.0
DEFAULT_CACHE_TTL = 3600.0
FILE_URI_RE = re.compile(r"/v1(?:beta)?/(files/[a-z0-9-]{1,40})$")
TTL_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)s\s*$")


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def file_denied(file_id: str) -> errors.ErrorReply:
    return errors.simple(403, "PERMISSION_DENIED",
                         f"You do not have permission to access the File {file_id} or it may not exist.")


def cache_denied() -> errors.ErrorReply:
    return errors.simple(403, "PERMISSION_DENIED", "CachedContent not found (or permission denied)")


def batch_denied(name: str) -> errors.ErrorReply:
    return errors.simple(403, "PERMISSION_DENIED",
                         f"You do not have permission to access the Batch {name} or it may not exist.")


@dataclass
class Upload:
    project: str
    meta: dict[str, Any]
    total: int | None
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Owned:
    project: str
    obj: dict[str, Any]
    expires: float
    polls: int = 0


class Projects:
    """Resources per project, and the ownership checks Google's front end applies."""

    def __init__(self, base_url: str = "https://generativelanguage.googleapis.com") -> None:
        self.base_url = base_url
        self.assigned: dict[str, str] = {}
        self.uploads: dict[str, Upload] = {}
        self.files: dict[str, Owned] = {}
        self.caches: dict[str, Owned] = {}
        self.batches: dict[str, Owned] = {}
        self.interactions: dict[str, Owned] = {}
        self._ids = itertools.count(1)

    def clear(self) -> None:
        self.assigned.clear()
        self.uploads.clear()
        self.files.clear()
        self.caches.clear()
        self.batches.clear()
        self.interactions.clear()

    def project_of(self, key: str) -> str:
        return self.assigned.get(key, key)

    def new_id(self, prefix: str) -> str:
        digest = hashlib.sha256(f"{prefix}{next(self._ids)}{time.time()}".encode()).hexdigest()
        return f"{prefix}{digest[:12]}"

    # -- files ----------------------------------------------------------------------------------------------

    def start_upload(self, key: str, meta: dict[str, Any], total: int | None) -> str:
        upload_id = "AGQB" + self.new_id("u")
        self.uploads[upload_id] = Upload(self.project_of(key), meta, total)
        return upload_id

    def finalize(self, upload: Upload) -> dict[str, Any]:
        now = time.time()
        meta = get(upload.meta, "file") or {}
        name = get(meta, "name") or f"files/{self.new_id('f')}"
        file_id = name.removeprefix("files/")
        obj = {
            "name": name, "displayName": get(meta, "displayName") or "",
            "mimeType": get(meta, "mimeType") or "application/octet-stream",
            "sizeBytes": str(len(upload.data)), "createTime": rfc3339(now), "updateTime": rfc3339(now),
            "expirationTime": rfc3339(now + FILE_TTL),
            "sha256Hash": base64.b64encode(hashlib.sha256(upload.data).digest()).decode(),
            "uri": f"{self.base_url}/v1beta/files/{file_id}", "state": "ACTIVE", "source": "UPLOADED",
        }
        self.files[name] = Owned(upload.project, obj, now + FILE_TTL)
        return obj

    def file(self, key: str, name: str) -> tuple[dict[str, Any] | None, errors.ErrorReply | None]:
        owned = self.files.get(name)
        if owned is None or owned.project != self.project_of(key) or owned.expires < time.time():
            return None, file_denied(name.removeprefix("files/"))
        return owned.obj, None

    # -- caches ---------------------------------------------------------------------------------------------

    def create_cache(self, key: str, body: dict[str, Any]) -> tuple[dict[str, Any] | None, errors.ErrorReply | None]:
        model = get(body, "model")
        if not isinstance(model, str) or not model.startswith("models/"):
            return None, errors.invalid_argument("* CreateCachedContentRequest.cached_content.model: "
                                                 "model is required and must be models/{model}")
        reply = self.check_files(key, body)
        if reply:
            return None, reply
        now = time.time()
        expires = _expiry(body, now)
        if expires is None:
            return None, errors.invalid_argument("Invalid ttl or expireTime")
        name = f"cachedContents/{self.new_id('c')}"
        obj = {"name": name, "model": model, "displayName": get(body, "displayName") or "",
               "createTime": rfc3339(now), "updateTime": rfc3339(now), "expireTime": rfc3339(expires),
               "usageMetadata": {"totalTokenCount": 2048}}
        self.caches[name] = Owned(self.project_of(key), obj, expires)
        return obj, None

    def cache(self, key: str, name: str) -> tuple[Owned | None, errors.ErrorReply | None]:
        owned = self.caches.get(name)
        if owned is None or owned.project != self.project_of(key) or owned.expires < time.time():
            return None, cache_denied()
        return owned, None

    def patch_cache(self, owned: Owned, body: dict[str, Any]) -> dict[str, Any] | None:
        now = time.time()
        expires = _expiry(body, now)
        if expires is None:
            return None
        owned.expires = expires
        owned.obj.update(expireTime=rfc3339(expires), updateTime=rfc3339(now))
        return owned.obj

    # -- batches --------------------------------------------------------------------------------------------

    def create_batch(self, key: str, model: str, body: dict[str, Any], embed: bool) -> dict[str, Any]:
        now = time.time()
        name = f"batches/{self.new_id('b')}"
        batch = get(body, "batch") or {}
        kind = "EmbedContentBatch" if embed else "GenerateContentBatch"
        obj = {"name": name, "metadata": {
            "@type": f"type.googleapis.com/google.ai.generativelanguage.v1main.{kind}",
            "model": f"models/{model}", "displayName": get(batch, "displayName") or "",
            "state": "BATCH_STATE_PENDING", "createTime": rfc3339(now), "updateTime": rfc3339(now), "name": name}}
        self.batches[name] = Owned(self.project_of(key), obj, now + FILE_TTL)
        return obj

    def batch(self, key: str, name: str) -> tuple[Owned | None, errors.ErrorReply | None]:
        owned = self.batches.get(name)
        if owned is None or owned.project != self.project_of(key):
            return None, batch_denied(name)
        return owned, None

    def poll(self, owned: Owned) -> dict[str, Any]:
        """A batch runs for one poll, then succeeds (unless cancelled)."""
        owned.polls += 1
        meta = owned.obj["metadata"]
        if owned.polls >= 2 and meta["state"] in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
            meta["state"] = "BATCH_STATE_SUCCEEDED"
            meta["endTime"] = rfc3339(time.time())
            owned.obj["done"] = True
        elif meta["state"] == "BATCH_STATE_PENDING":
            meta["state"] = "BATCH_STATE_RUNNING"
        return owned.obj

    # -- interactions ---------------------------------------------------------------------------------------

    def create_interaction(self, key: str, body: dict[str, Any]) -> tuple[dict[str, Any] | None,
                                                                          errors.ErrorReply | None]:
        previous = get(body, "previous_interaction_id")
        if isinstance(previous, str):
            _, reply = self.interaction(key, previous)
            if reply:
                return None, reply
        now = time.time()
        text = get(body, "input")
        answer = f"echo: {text}" if isinstance(text, str) else "echo: (structured input)"
        obj = {"id": f"v1_{self.new_id('i')}", "object": "interaction", "model": get(body, "model"),
               "status": "completed", "created": rfc3339(now), "updated": rfc3339(now),
               "steps": [{"type": "model_output", "content": [{"type": "text", "text": answer}]}],
               "usage": {"total_input_tokens": 1, "total_output_tokens": len(answer.split()), "total_tokens": 3}}
        if isinstance(previous, str):
            obj["previous_interaction_id"] = previous
        if get(body, "store") is not False:
            self.interactions[obj["id"]] = Owned(self.project_of(key), obj, now + FILE_TTL)
        return obj, None

    def interaction(self, key: str, interaction_id: str) -> tuple[Owned | None, errors.ErrorReply | None]:
        owned = self.interactions.get(interaction_id)
        if owned is None or owned.project != self.project_of(key):
            return None, errors.simple(404, "NOT_FOUND", f"Interaction {interaction_id} not found.")
        return owned, None

    # -- references in a generate body -----------------------------------------------------------------------

    def check_files(self, key: str, body: Any) -> errors.ErrorReply | None:
        """403 for the first referenced file the key's project does not own."""
        for uri in file_uris(body):
            match = FILE_URI_RE.search(uri)
            if match is None:
                continue
            _, reply = self.file(key, match.group(1))
            if reply:
                return reply
        return None

    def check_refs(self, key: str, body: Any) -> errors.ErrorReply | None:
        """Files anywhere in the body and the ``cachedContent`` must belong to the key's project."""
        reply = self.check_files(key, body)
        if reply:
            return reply
        cached = get(body, "cachedContent") if isinstance(body, dict) else None
        if isinstance(cached, str):
            _, reply = self.cache(key, cached)
            return reply
        return None


def file_uris(node: Any) -> list[str]:
    """Every ``fileData.fileUri`` (either spelling) anywhere in a JSON value."""
    found: list[str] = []
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            data = cur.get("fileData") or cur.get("file_data")
            if isinstance(data, dict):
                uri = data.get("fileUri") or data.get("file_uri")
                if isinstance(uri, str):
                    found.append(uri)
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return found


def _expiry(body: dict[str, Any], now: float) -> float | None:
    ttl = get(body, "ttl")
    if isinstance(ttl, str):
        match = TTL_RE.match(ttl)
        return now + float(match.group(1)) if match else None
    expire = get(body, "expireTime")
    if isinstance(expire, str):
        try:
            return datetime.fromisoformat(expire.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return now + DEFAULT_CACHE_TTL
