"""OpenAI's media routes on the OpenAI surface (``/v1/images/...``, ``/v1/audio/...``). Thin: read the JSON
body or the multipart form within ``MAX_REQUEST_BODY``, hand it to
:class:`~app.services.media_gen.MediaGenService`.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import InvalidRequest
from app.protocols.openai_media.images import parse_image_request
from app.protocols.openai_media.transcription import audio_mime, parse_transcription_request
from app.routes.access import admitted
from app.routes.common import gateway, read_body
from app.routes.openai import SURFACE, body_of
from app.routes.responses import to_response

MAX_FILES = 16
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")


async def _form(request: Request) -> tuple[dict[str, Any], list[tuple[str, UploadFile]]]:
    """Text fields and uploaded files of a multipart body, whole body within the gateway's limit."""
    limit = gateway(request).http.max_request_body
    if "multipart/form-data" not in request.headers.get("content-type", ""):
        raise InvalidRequest("this route takes a multipart/form-data body")
    await read_body(request, limit)
    try:
        form = await request.form(max_files=MAX_FILES, max_fields=100, max_part_size=limit)
    except HTTPException as exc:
        raise InvalidRequest(f"the multipart body is unreadable: {exc.detail}") from None
    fields: dict[str, Any] = {}
    files: list[tuple[str, UploadFile]] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            files.append((name, value))
        else:
            fields[name] = value
    return fields, files


def _image_mime(upload: UploadFile, data: bytes) -> str:
    """The image's type from its bytes (a client's declared type is often octet-stream)."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    declared = (upload.content_type or "").split(";")[0].lower()
    if declared in IMAGE_TYPES:
        return declared
    raise InvalidRequest("image must be a PNG, JPEG or WebP file", param="image")


async def image_generations(request: Request) -> Response:
    payload = await body_of(request)
    if not isinstance(payload, dict):
        raise InvalidRequest("the request body must be a JSON object")
    req = parse_image_request(payload)
    media = gateway(request).media
    model = payload.get("model")
    return to_response(await admitted(request, model, lambda: media.images(req, model)))


async def image_edits(request: Request) -> Response:
    fields, files = await _form(request)
    if any(name == "mask" for name, _ in files):
        fields["mask"] = "file"
    images = []
    for name, upload in files:
        if name in ("image", "image[]"):
            data = await upload.read()
            images.append((_image_mime(upload, data), data))
    if not images:
        raise InvalidRequest("image is required: one or more input images as multipart files", param="image")
    req = parse_image_request(fields, tuple(images))
    media = gateway(request).media
    model = fields.get("model")
    return to_response(await admitted(request, model, lambda: media.images(req, model)))


async def speech(request: Request) -> Response:
    payload = await body_of(request)
    if not isinstance(payload, dict):
        raise InvalidRequest("the request body must be a JSON object")
    media = gateway(request).media
    return to_response(await admitted(request, payload.get("model"), lambda: media.speech(payload)))


async def transcriptions(request: Request) -> Response:
    fields, files = await _form(request)
    upload = next((f for name, f in files if name == "file"), None)
    data = await upload.read() if upload is not None else None
    mime = audio_mime(upload.filename, upload.content_type) if upload is not None and data else ""
    req = parse_transcription_request(fields, data, mime)
    media = gateway(request).media
    return to_response(await admitted(request, fields.get("model"),
                                      lambda: media.transcribe(req, fields.get("model"))))


def routes() -> list[Route]:
    """Paths relative to the ``/v1`` mount."""
    return [
        SURFACE.route("/images/generations", image_generations, ["POST"]),
        SURFACE.route("/images/edits", image_edits, ["POST"]),
        SURFACE.route("/audio/speech", speech, ["POST"]),
        SURFACE.route("/audio/transcriptions", transcriptions, ["POST"]),
    ]
