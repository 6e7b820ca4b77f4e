"""Message content parts of the Responses API -> Gemini parts.

``input_text``/``output_text``/``refusal`` are text; ``input_image`` takes an https or data URL (or a Gemini
Files API name as ``file_id``); ``input_file`` takes ``file_data`` (data URL or bare base64), ``file_url`` or
a Gemini ``file_id``. OpenAI Files ids (``file-...``) mean nothing to Gemini and are refused by name. Web
image URLs are fetched by the service before translation (``fetched``), as on Chat Completions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.protocols.openai_chat.errors import RequestError
from app.protocols.openai_chat.parts import FILES_API_BASE, guess_mime, parse_data_url
from app.protocols.openai_chat.parts import url_part

__all__ = ["content_parts", "image_urls"]

Fetched = Mapping[str, tuple[str, str]]


def _file_ref(file_id: Any, param: str, mime: str | None) -> dict[str, Any]:
    if not isinstance(file_id, str) or not file_id:
        raise RequestError("file_id must be a non-empty string", param)
    if file_id.startswith("files/"):
        uri = FILES_API_BASE + file_id
    elif file_id.startswith(("https://", "http://", "gs://")):
        uri = file_id
    else:
        raise RequestError("file_id must be a Gemini Files API name ('files/...') or URI; OpenAI file ids "
                           "are not known to Gemini", param)
    ref: dict[str, Any] = {"fileUri": uri}
    if mime:
        ref["mimeType"] = mime
    return {"fileData": ref}


def _url(url: str, param: str, fetched: Fetched | None) -> dict[str, Any]:
    """Chat Completions' rule for a URL-referenced medium (inline when fetched, else ``fileData``)."""
    return url_part(url, param, fetched)


def _image(part: Mapping[str, Any], where: str, fetched: Fetched | None) -> dict[str, Any]:
    url = part.get("image_url")
    if isinstance(url, Mapping):  # lenient: the Chat Completions shape
        url = url.get("url")
    if isinstance(url, str) and url:
        return _url(url, f"{where}.image_url", fetched)
    if part.get("file_id") is not None:
        return _file_ref(part.get("file_id"), f"{where}.file_id", None)
    raise RequestError("input_image needs image_url or file_id", f"{where}.image_url")


def _file(part: Mapping[str, Any], where: str, fetched: Fetched | None) -> dict[str, Any]:
    filename = part.get("filename") if isinstance(part.get("filename"), str) else None
    data = part.get("file_data")
    if isinstance(data, str) and data:
        if data.startswith("data:"):
            mime, payload = parse_data_url(data, f"{where}.file_data")
        else:
            mime, payload = (guess_mime(filename) if filename else None) or "application/pdf", data
        return {"inlineData": {"mimeType": mime, "data": payload}}
    if isinstance(part.get("file_url"), str) and part["file_url"]:
        return _url(part["file_url"], f"{where}.file_url", fetched)
    if part.get("file_id") is not None:
        return _file_ref(part.get("file_id"), f"{where}.file_id", guess_mime(filename) if filename else None)
    raise RequestError("input_file needs file_data, file_url or file_id", where)


def content_parts(content: Any, where: str, *, fetched: Fetched | None = None,
                  media: bool = True) -> list[dict[str, Any]]:
    """Gemini parts for a message ``content`` (string or part list); empty text is dropped."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise RequestError("content must be a string or an array of content parts", where)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        if not isinstance(part, Mapping):
            raise RequestError("each content part must be an object", at)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise RequestError("text parts need a string 'text'", f"{at}.text")
            if text:
                parts.append({"text": text})
        elif kind == "refusal":
            if isinstance(part.get("refusal"), str) and part["refusal"]:
                parts.append({"text": part["refusal"]})
        elif kind in ("input_image", "input_file") and media:
            parts.append(_image(part, at, fetched) if kind == "input_image" else _file(part, at, fetched))
        else:
            allowed = "input_text, input_image, input_file" if media else "text"
            raise RequestError(f"unsupported content part type {kind!r} here; use {allowed}", f"{at}.type")
    return parts


def image_urls(items: Any) -> list[str]:
    """Every web (http/https) image URL in the input items, for the service to fetch. Never raises."""
    urls: dict[str, None] = {}
    if not isinstance(items, list):
        return []
    for item in items:
        content = item.get("content") if isinstance(item, Mapping) else None
        if isinstance(item, Mapping) and item.get("type") == "function_call_output":
            content = item.get("output")
        if not isinstance(content, list):
            continue
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "input_image":
                url = part.get("image_url")
                if isinstance(url, str) and url.startswith(("http://", "https://")):
                    urls[url] = None
    return list(urls)
