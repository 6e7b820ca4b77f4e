"""Anthropic ``messages`` (and ``system``) -> Gemini ``contents`` + ``systemInstruction``.

Rules and why:

* ``system`` (a string or text blocks) and ``role: "system"`` entries anywhere in ``messages`` become the
  one ``systemInstruction``: Gemini has no system role inside ``contents``.
* Consecutive same-role turns are merged (Anthropic allows them, Gemini wants alternation); an empty user
  turn becomes ``" "`` and an empty conversation one such turn, because Gemini refuses empty text/contents.
* ``image``/``document`` sources: base64 -> ``inlineData``; a URL the service fetched -> ``inlineData``,
  else ``fileData`` and Gemini decides; plain-text documents -> text parts (titled when a title is given).
* ``tool_result`` -> ``functionResponse`` named after the earlier ``tool_use`` with that id (Anthropic does
  not repeat the name); ``{"content": text}`` or the JSON object the text holds, ``{"error": text}`` when
  ``is_error``. Images inside go in ``functionResponse.parts`` on Gemini 3, beside it on older models.
* ``thinking``/``redacted_thinking`` text is not replayed (Gemini does not want its thoughts back); their
  signature is (see :mod:`.signatures`). Server-tool history blocks are dropped: Gemini never produced them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from app.protocols.anthropic.signatures import SKIP_SIGNATURE, unwrap
from app.protocols.openai_chat.errors import RequestError
from app.protocols.openai_chat.families import is_gemini3

__all__ = ["MINTED_PREFIX", "is_minted", "media_urls", "system_parts", "tool_use_ids", "translate_messages"]

MINTED_PREFIX = "toolu_gw_"
_DROPPED_BLOCKS = frozenset({"server_tool_use", "mcp_tool_use", "container_upload", "search_result_location"})
Fetched = Mapping[str, tuple[str, str]]


def is_minted(tool_use_id: str) -> bool:
    """Ids the gateway minted mean nothing to Gemini and are not forwarded as ``functionCall.id``."""
    return tool_use_id.startswith(MINTED_PREFIX)


def _text(block: Mapping[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise RequestError("text blocks need a string 'text'", f"{where}.text")
    return text


def _source_part(block: Mapping[str, Any], where: str, fetched: Fetched | None) -> dict[str, Any] | None:
    """The part for an ``image``/``document`` source (None for an empty text document)."""
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise RequestError("needs a source object", f"{where}.source")
    kind = source.get("type")
    if kind == "base64":
        mime, data = source.get("media_type"), source.get("data")
        if not isinstance(mime, str) or not mime:
            raise RequestError("base64 sources need media_type", f"{where}.source.media_type")
        if not isinstance(data, str) or not data:
            raise RequestError("base64 sources need data", f"{where}.source.data")
        return {"inlineData": {"mimeType": mime, "data": data}}
    if kind == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise RequestError("url sources need an http(s) url", f"{where}.source.url")
        if fetched is not None and url in fetched:
            mime, data = fetched[url]
            return {"inlineData": {"mimeType": mime, "data": data}}
        return {"fileData": {"fileUri": url}}
    if kind == "text" and block.get("type") == "document":
        data = source.get("data")
        if not isinstance(data, str):
            raise RequestError("text sources need a string data", f"{where}.source.data")
        title = block.get("title")
        text = f"{title}\n\n{data}" if isinstance(title, str) and title else data
        return {"text": text} if text else None
    if kind == "file":
        file_id = source.get("file_id")
        if isinstance(file_id, str) and file_id.startswith("files/"):
            return {"fileData": {"fileUri": "https://generativelanguage.googleapis.com/v1beta/" + file_id}}
        raise RequestError("file sources need a Gemini Files API name ('files/…')", f"{where}.source.file_id")
    raise RequestError(f"unsupported source type {kind!r}; use base64, url or text", f"{where}.source.type")


def _document_content(block: Mapping[str, Any], where: str, fetched: Fetched | None) -> list[dict[str, Any]]:
    source = block.get("source")
    if isinstance(source, Mapping) and source.get("type") == "content":
        inner = source.get("content")
        if isinstance(inner, str):
            return [{"text": inner}] if inner else []
        return _plain_blocks(inner, f"{where}.source.content", fetched)
    part = _source_part(block, where, fetched)
    return [part] if part else []


def _plain_blocks(content: Any, where: str, fetched: Fetched | None) -> list[dict[str, Any]]:
    """Parts for text/image/document blocks (tool results, documents of blocks)."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise RequestError("content must be a string or an array of content blocks", where)
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        parts.extend(_plain_block(block, f"{where}.{j}", fetched))
    return parts


def _plain_block(block: Any, at: str, fetched: Fetched | None) -> list[dict[str, Any]]:
    if not isinstance(block, Mapping):
        raise RequestError("each content block must be an object", at)
    kind = block.get("type")
    if kind == "text":
        text = _text(block, at)
        return [{"text": text}] if text else []
    if kind == "image":
        part = _source_part(block, at, fetched)
        return [part] if part else []
    if kind == "document":
        return _document_content(block, at, fetched)
    if kind == "search_result":
        texts = [str(b.get("text", "")) for b in block.get("content") or [] if isinstance(b, Mapping)]
        return [{"text": "\n".join([str(block.get("title") or ""), *texts]).strip() or " "}]
    raise RequestError(f"unsupported content block type {kind!r} here", f"{at}.type")


def system_parts(system: Any, where: str = "system") -> list[dict[str, Any]]:
    """Parts of a ``system`` value: a string or an array of text blocks (``cache_control`` ignored)."""
    if system is None:
        return []
    if isinstance(system, str):
        return [{"text": system}] if system else []
    if not isinstance(system, list):
        raise RequestError("system must be a string or an array of text blocks", where)
    parts = []
    for j, block in enumerate(system):
        if not isinstance(block, Mapping) or block.get("type", "text") != "text":
            raise RequestError("system blocks must be text blocks", f"{where}.{j}")
        if text := _text(block, f"{where}.{j}"):
            parts.append({"text": text})
    return parts


def _tool_response(text: str, is_error: bool) -> dict[str, Any]:
    if is_error:
        return {"error": text}
    if text.lstrip().startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
    return {"content": text}


class _Builder:
    def __init__(self, model: str, fetched: Fetched | None, signatures: Mapping[str, str] | None) -> None:
        self.model = model
        self.fetched = fetched
        self.signatures = signatures or {}
        self.contents: list[dict[str, Any]] = []
        self.system: list[dict[str, Any]] = []
        self.calls: dict[str, str] = {}  # tool_use id -> function name

    def add(self, role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if self.contents and self.contents[-1]["role"] == role:
            self.contents[-1]["parts"].extend(parts)
        else:
            self.contents.append({"role": role, "parts": parts})

    def user(self, content: Any, where: str) -> None:
        if isinstance(content, str):
            self.add("user", [{"text": content or " "}])
            return
        if not isinstance(content, list):
            raise RequestError("content must be a string or an array of content blocks", where)
        responses: list[dict[str, Any]] = []
        parts: list[dict[str, Any]] = []
        for j, block in enumerate(content):
            at = f"{where}.{j}"
            if not isinstance(block, Mapping):
                raise RequestError("each content block must be an object", at)
            kind = block.get("type")
            if kind == "tool_result":
                responses.extend(self._tool_result(block, at, parts))
            elif kind in ("thinking", "redacted_thinking") or _dropped(kind):
                continue
            else:
                parts.extend(_plain_block(block, at, self.fetched))
        self.add("user", responses + parts or [{"text": " "}])

    def _tool_result(self, block: Mapping[str, Any], at: str, siblings: list[dict[str, Any]]
                     ) -> list[dict[str, Any]]:
        use_id = block.get("tool_use_id")
        if not isinstance(use_id, str) or use_id not in self.calls:
            raise RequestError("tool_result matches no earlier tool_use block (tool_use_id)", f"{at}.tool_use_id")
        inner = _plain_blocks(block.get("content") or [], f"{at}.content", self.fetched)
        text = "".join(p["text"] for p in inner if "text" in p)
        media = [p for p in inner if "text" not in p]
        response: dict[str, Any] = {"name": self.calls[use_id],
                                    "response": _tool_response(text, bool(block.get("is_error")))}
        if not is_minted(use_id):
            response["id"] = use_id
        if media and is_gemini3(self.model):
            response["parts"] = media
        else:
            siblings.extend(media)
        return [{"functionResponse": response}]

    def assistant(self, content: Any, where: str) -> None:
        if isinstance(content, str):
            self.add("model", [{"text": content}] if content else [])
            return
        if not isinstance(content, list):
            raise RequestError("content must be a string or an array of content blocks", where)
        parts: list[dict[str, Any]] = []
        pending: str | None = None  # a thinking block's signature, for the next part
        for j, block in enumerate(content):
            at = f"{where}.{j}"
            if not isinstance(block, Mapping):
                raise RequestError("each content block must be an object", at)
            kind = block.get("type")
            if kind == "thinking":
                pending = unwrap(block.get("signature")) or pending
            elif kind == "redacted_thinking":
                pending = unwrap(block.get("data")) or pending
            elif kind == "text":
                if text := _text(block, at):
                    part: dict[str, Any] = {"text": text}
                    if pending:
                        part["thoughtSignature"], pending = pending, None
                    parts.append(part)
            elif kind == "tool_use":
                parts.append(self._tool_use(block, at, pending))
                pending = None
            elif _dropped(kind):
                continue
            else:
                raise RequestError(f"unsupported assistant content block type {kind!r}", f"{at}.type")
        calls = [p for p in parts if "functionCall" in p]
        if calls and is_gemini3(self.model) and not any("thoughtSignature" in p for p in calls):
            calls[0]["thoughtSignature"] = SKIP_SIGNATURE
        self.add("model", parts)

    def _tool_use(self, block: Mapping[str, Any], at: str, pending: str | None) -> dict[str, Any]:
        use_id, name, args = block.get("id"), block.get("name"), block.get("input")
        if not isinstance(use_id, str) or not use_id:
            raise RequestError("tool_use blocks need an id", f"{at}.id")
        if not isinstance(name, str) or not name:
            raise RequestError("tool_use blocks need a name", f"{at}.name")
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise RequestError("tool_use input must be an object", f"{at}.input")
        call: dict[str, Any] = {"name": name, "args": dict(args)}
        if not is_minted(use_id):
            call["id"] = use_id
        self.calls[use_id] = name
        part: dict[str, Any] = {"functionCall": call}
        signature = pending or self.signatures.get(use_id)
        if signature:
            part["thoughtSignature"] = signature
        return part


def _dropped(kind: Any) -> bool:
    return isinstance(kind, str) and (kind in _DROPPED_BLOCKS or kind.endswith("_tool_result"))


def translate_messages(messages: Any, system: Any, *, model: str, fetched: Fetched | None = None,
                       signatures: Mapping[str, str] | None = None
                       ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(contents, systemInstruction or None); a RequestError names the offending field."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("must be a non-empty array of messages", "messages")
    builder = _Builder(model, fetched, signatures)
    builder.system.extend(system_parts(system))
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, Mapping):
            raise RequestError("each message must be an object", where)
        role, content = message.get("role"), message.get("content")
        if content is None:
            raise RequestError("Field required", f"{where}.content")
        if role == "user":
            builder.user(content, f"{where}.content")
        elif role == "assistant":
            builder.assistant(content, f"{where}.content")
        elif role == "system":
            builder.system.extend(system_parts(content, f"{where}.content"))
        else:
            raise RequestError(f"unknown role {role!r}: use user, assistant or system", f"{where}.role")
    contents = builder.contents or [{"role": "user", "parts": [{"text": " "}]}]
    return contents, ({"parts": builder.system} if builder.system else None)


def _blocks(payload: Any) -> list[Mapping[str, Any]]:
    """Every content block of every message, nested tool_result/document content included. Never raises."""
    out: list[Mapping[str, Any]] = []
    stack = [m.get("content") for m in payload.get("messages") or [] if isinstance(m, Mapping)] \
        if isinstance(payload, Mapping) and isinstance(payload.get("messages"), list) else []
    while stack:
        content = stack.pop()
        if not isinstance(content, list):
            continue
        for block in content:
            if isinstance(block, Mapping):
                out.append(block)
                stack.append(block.get("content"))
                source = block.get("source")
                if isinstance(source, Mapping):
                    stack.append(source.get("content"))
    return out


def media_urls(payload: Any) -> list[str]:
    """http(s) image/document URLs the service should fetch before translation (deduplicated)."""
    urls: dict[str, None] = {}
    for block in _blocks(payload):
        source = block.get("source")
        if block.get("type") in ("image", "document") and isinstance(source, Mapping) \
                and source.get("type") == "url" and isinstance(source.get("url"), str) \
                and source["url"].startswith(("http://", "https://")):
            urls[source["url"]] = None
    return list(urls)


def tool_use_ids(payload: Any) -> list[str]:
    """Ids of every ``tool_use`` block, so the service can look up remembered signatures."""
    return [b["id"] for b in _blocks(payload)
            if b.get("type") == "tool_use" and isinstance(b.get("id"), str) and b["id"]]
