"""OpenAI message content parts -> Gemini ``Part`` objects (text, images, audio, files).

Translation does no I/O. Image URLs on http(s) are fetched by the service *before* translation
(:func:`media_urls` lists them; the results come back as ``fetched_media``) because Gemini cannot fetch
arbitrary web URLs in ``inlineData``. A URL the service did not fetch (too large, failed, or deliberately
skipped) is sent as ``fileData {fileUri, mimeType}`` and Gemini decides. URLs Gemini reads natively, Files API
URIs and YouTube links, are never pre-fetched.
"""

from __future__ import annotations

import base64
import posixpath
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from app.protocols.openai_chat.errors import RequestError

__all__ = ["FILES_API_BASE", "content_parts", "guess_mime", "media_urls", "parse_data_url", "text_of"]

FILES_API_BASE = "https://generativelanguage.googleapis.com/v1beta/"

_MIME_BY_EXT = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif",
    "heic": "image/heic", "heif": "image/heif", "bmp": "image/bmp",
    "pdf": "application/pdf", "txt": "text/plain", "md": "text/md", "csv": "text/csv", "html": "text/html",
    "json": "application/json", "xml": "text/xml", "py": "text/x-python", "js": "text/javascript",
    "mp3": "audio/mp3", "wav": "audio/wav", "ogg": "audio/ogg", "flac": "audio/flac", "aac": "audio/aac",
    "aiff": "audio/aiff", "m4a": "audio/m4a", "opus": "audio/ogg",
    "mp4": "video/mp4", "mpeg": "video/mpeg", "mpg": "video/mpg", "mov": "video/mov", "avi": "video/avi",
    "webm": "video/webm", "wmv": "video/wmv", "flv": "video/x-flv", "3gp": "video/3gpp",
}
_YOUTUBE_HOSTS = frozenset({"youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be"})
_DATA_URL_RE = re.compile(r"data:([^,]*?),(.*)", re.DOTALL)


def guess_mime(name: str) -> str | None:
    """Media type from a file name or URL path extension; None when unknown."""
    path = urlsplit(name).path if "://" in name else name
    ext = posixpath.splitext(path)[1].lower().lstrip(".")
    return _MIME_BY_EXT.get(ext)


def _read_natively(url: str) -> bool:
    """URLs Gemini fetches itself through ``fileData``: Files API URIs and YouTube videos."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return (host == "generativelanguage.googleapis.com" and "/files/" in parts.path) or host in _YOUTUBE_HOSTS


def _is_web_url(url: str) -> bool:
    return url.startswith(("http://", "https://")) and not _read_natively(url)


def parse_data_url(url: str, param: str) -> tuple[str, str]:
    """(mime type, base64 data) of a ``data:`` URL; percent-encoded payloads are re-encoded as base64."""
    match = _DATA_URL_RE.fullmatch(url)
    if match is None:
        raise RequestError("malformed data URL", param)
    meta, payload = match.groups()
    fields = [f.strip() for f in meta.split(";")]
    mime = fields[0].lower()
    if not mime:
        raise RequestError("data URL must name a media type, e.g. data:image/png;base64,…", param)
    if "base64" in (f.lower() for f in fields[1:]):
        data = payload.strip()
    else:
        data = base64.b64encode(unquote_to_bytes(payload)).decode("ascii")
    if not data:
        raise RequestError("data URL carries no data", param)
    return mime, data


def _image_url(part: Mapping[str, Any], param: str) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        raise RequestError("image_url.url must be a non-empty string", f"{param}.image_url.url")
    return url


def url_part(url: str, param: str, fetched: Mapping[str, tuple[str, str]] | None,
              default_mime: str | None = None) -> dict[str, Any]:
    """A URL-referenced medium: inline when the service fetched it, else ``fileData``."""
    if url.startswith("data:"):
        mime, data = parse_data_url(url, param)
        return {"inlineData": {"mimeType": mime, "data": data}}
    if fetched is not None and url in fetched:
        mime, data = fetched[url]
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("http://", "https://", "gs://")):
        file_data: dict[str, Any] = {"fileUri": url}
        guessed = guess_mime(url) or default_mime
        if guessed and not _read_natively(url):
            file_data["mimeType"] = guessed
        return {"fileData": file_data}
    raise RequestError(f"unsupported URL scheme in {url[:40]!r}: use a data: or http(s) URL", param)


def _audio_part(part: Mapping[str, Any], param: str) -> dict[str, Any]:
    audio = part.get("input_audio")
    if not isinstance(audio, Mapping):
        raise RequestError("input_audio must be an object with data and format", f"{param}.input_audio")
    data, fmt = audio.get("data"), audio.get("format")
    if not isinstance(data, str) or not data:
        raise RequestError("input_audio.data must be base64 audio", f"{param}.input_audio.data")
    if not isinstance(fmt, str) or not re.fullmatch(r"[A-Za-z0-9.+-]{1,20}", fmt):
        raise RequestError("input_audio.format must be an audio format such as 'wav' or 'mp3'",
                           f"{param}.input_audio.format")
    return {"inlineData": {"mimeType": f"audio/{fmt.lower()}", "data": data}}


def _file_part(part: Mapping[str, Any], param: str) -> dict[str, Any]:
    file = part.get("file")
    if not isinstance(file, Mapping):
        raise RequestError("file must be an object with file_data or file_id", f"{param}.file")
    filename = file.get("filename") if isinstance(file.get("filename"), str) else None
    declared = file.get("format") if isinstance(file.get("format"), str) else None
    file_data, file_id = file.get("file_data"), file.get("file_id")
    if isinstance(file_data, str) and file_data:
        if file_data.startswith("data:"):
            mime, data = parse_data_url(file_data, f"{param}.file.file_data")
        else:  # bare base64, as OpenAI's reference describes the field
            mime = declared or (guess_mime(filename) if filename else None) or "application/pdf"
            data = file_data
        return {"inlineData": {"mimeType": mime, "data": data}}
    if isinstance(file_id, str) and file_id:
        if file_id.startswith("files/"):
            uri = FILES_API_BASE + file_id
        elif file_id.startswith("file-"):  # an id from the gateway's own /v1/files
            uri = FILES_API_BASE + "files/" + file_id[5:]
        elif file_id.startswith(("https://", "http://", "gs://")):
            uri = file_id
        else:
            raise RequestError("file_id must be an id from /v1/files ('file-…'), a Gemini Files API name "
                               "('files/…') or a URI",
                               f"{param}.file.file_id")
        file_ref: dict[str, Any] = {"fileUri": uri}
        known = declared or (guess_mime(filename) if filename else None)
        if known:
            file_ref["mimeType"] = known
        return {"fileData": file_ref}
    raise RequestError("file needs file_data (a data URL) or file_id", f"{param}.file")


def content_parts(content: Any, param: str, *, fetched: Mapping[str, tuple[str, str]] | None = None,
                  media: bool = True) -> list[dict[str, Any]]:
    """Gemini parts for one message ``content`` (string, list of parts, or None).

    Empty text is dropped (Gemini refuses empty text parameters). With ``media=False`` (system, assistant
    and tool messages) only text is accepted; ``refusal`` parts of replayed assistant messages count as text.
    """
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise RequestError("content must be a string or an array of content parts", param)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if isinstance(part, str):  # lenient: some clients send bare strings inside the array
            if part:
                parts.append({"text": part})
            continue
        if not isinstance(part, Mapping):
            raise RequestError("each content part must be an object", where)
        kind = part.get("type", "text" if "text" in part else None)
        if kind in ("text", "refusal", "input_text", "output_text"):
            text = part.get("text") if kind != "refusal" else part.get("refusal")
            if not isinstance(text, str):
                raise RequestError("text parts need a string 'text'", f"{where}.text")
            if text:
                parts.append({"text": text})
            continue
        if not media:
            raise RequestError(f"content part type {kind!r} is not allowed in this message; only text is",
                               f"{where}.type")
        if kind == "image_url":
            parts.append(url_part(_image_url(part, where), f"{where}.image_url.url", fetched))
        elif kind == "input_audio":
            parts.append(_audio_part(part, where))
        elif kind == "file":
            parts.append(_file_part(part, where))
        else:
            raise RequestError(f"unsupported content part type {kind!r}; use text, image_url, input_audio "
                               "or file", f"{where}.type")
    return parts


def text_of(content: Any, param: str) -> str:
    """The text of a text-only content (tool results), parts joined without separator."""
    return "".join(p["text"] for p in content_parts(content, param, media=False))


def media_urls(payload: Any) -> list[str]:
    """Every http(s) image URL in ``payload`` the service should fetch before translation (deduplicated).

    Never raises: a malformed payload simply yields fewer URLs and is rejected later by the parser.
    """
    if not isinstance(payload, Mapping):
        return []
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return []
    urls: dict[str, None] = {}
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if not isinstance(content, list):
            continue
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") != "image_url":
                continue
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            if isinstance(url, str) and _is_web_url(url):
                urls[url] = None
    return list(urls)
