"""OpenAI's File object from a Gemini File, and OpenAI file ids to Gemini file names. Pure.

An OpenAI file id is ``file-<gemini file id>``: a bare id that fits in ``/v1/files/{file_id}`` paths (a
Gemini name has a slash) and maps back without any lookup.
"""

from __future__ import annotations

import mimetypes
from typing import Any

from app.gemini.resources import parse_time, valid_id

PREFIX = "file-"


def openai_id(gemini_name: str) -> str:
    return PREFIX + gemini_name.removeprefix("files/")


def gemini_name(file_id: str) -> str | None:
    """``files/<id>`` for ``file-<id>`` or ``files/<id>``; ``None`` when it is neither."""
    rid = file_id[len(PREFIX):] if file_id.startswith(PREFIX) else file_id.removeprefix("files/")
    if rid == file_id and not file_id.startswith("files/"):
        return None
    return f"files/{rid}" if valid_id(rid) else None


def openai_file(gemini: dict[str, Any], purpose: str = "user_data") -> dict[str, Any]:
    """The OpenAI File object for a Gemini File."""
    created = parse_time(str(gemini.get("createTime") or "")) or 0.0
    expires = parse_time(str(gemini.get("expirationTime") or ""))
    state = gemini.get("state")
    out: dict[str, Any] = {
        "id": openai_id(str(gemini.get("name", ""))),
        "object": "file",
        "bytes": int(gemini.get("sizeBytes") or 0),
        "created_at": int(created),
        "filename": gemini.get("displayName") or "",
        "purpose": purpose,
        "status": "error" if state == "FAILED" else ("uploaded" if state == "PROCESSING" else "processed"),
    }
    if expires is not None:
        out["expires_at"] = int(expires)
    return out


def mime_of(filename: str, declared: str | None) -> str:
    """The part's declared type unless it says nothing (octet-stream), else a guess from the name."""
    if declared and declared != "application/octet-stream":
        return declared.split(";")[0].strip()
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
