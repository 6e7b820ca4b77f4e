"""Responses input items -> Gemini ``contents`` and system parts.

Consecutive model-side items (``reasoning``, an assistant ``message``, ``function_call`` and the other call
kinds) form one ``model`` turn; results (``function_call_output`` ...) and user messages form ``user`` turns.
A ``reasoning`` item's ``encrypted_content`` restores the thought signatures of the items that follow it
(by call id, and ``"text"`` for signed answer text); ``signatures`` (remembered by call id by the service)
fill the gaps for clients that do not echo reasoning items; Gemini 3 gets the documented skip value as a
last resort. A result's function name comes from its call earlier in the input (Gemini needs it).
Hosted-tool records (``web_search_call`` ...) are Gemini-side history the model already used: dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.protocols.openai_chat.errors import RequestError
from app.protocols.openai_chat.messages import SKIP_SIGNATURE, forwardable_id
from app.protocols.openai_responses.carrier import TEXT_KEY, decode_compaction, decode_signatures
from app.protocols.openai_responses.content import Fetched, content_parts
from app.protocols.openai_responses.tools import namespaced_name

__all__ = ["Translated", "call_ids", "is_reference", "translate_items"]

_HOSTED_RECORDS = frozenset({"web_search_call", "file_search_call", "code_interpreter_call",
                             "image_generation_call", "mcp_list_tools", "mcp_call", "tool_search_call"})
COMPACTED_PREFIX = "Summary of the earlier conversation (compacted):\n\n"


@dataclass
class Translated:
    contents: list[dict[str, Any]] = field(default_factory=list)
    system: list[dict[str, Any]] = field(default_factory=list)
    compaction_trigger: bool = False


@dataclass
class _State:
    out: Translated
    signatures: Mapping[str, str]
    names: dict[str, str] = field(default_factory=dict)  # call_id -> function name
    pending: dict[str, str] = field(default_factory=dict)  # signatures from the last reasoning item

    def add(self, role: str, parts: list[dict[str, Any]]) -> None:
        contents = self.out.contents
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": list(parts)})

    def call(self, call_id: Any, name: str, args: dict[str, Any], where: str) -> None:
        if not isinstance(call_id, str) or not call_id:
            raise RequestError("the call needs a non-empty call_id", f"{where}.call_id")
        self.names[call_id] = name
        part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
        if forward := forwardable_id(call_id):
            part["functionCall"]["id"] = forward
        signature = self.pending.pop(call_id, None) or self.signatures.get(call_id)
        if signature:
            part["thoughtSignature"] = signature
        self.add("model", [part])

    def result(self, call_id: Any, output: Any, where: str, fetched: Fetched | None) -> None:
        if not isinstance(call_id, str) or call_id not in self.names:
            raise RequestError(f"no call with call_id {call_id!r} precedes this output in the input",
                               f"{where}.call_id")
        extra: list[dict[str, Any]] = []
        if isinstance(output, list):
            parts = content_parts(output, f"{where}.output", fetched=fetched)
            text = "".join(p.get("text", "") for p in parts)
            extra = [p for p in parts if "text" not in p]
        elif isinstance(output, str):
            text = output
        else:
            text = orjson.dumps(output).decode()
        response: dict[str, Any] = {"name": self.names[call_id], "response": _response_object(text)}
        if forward := forwardable_id(call_id):
            response["id"] = forward
        self.add("user", [{"functionResponse": response}, *extra])


def _response_object(text: str) -> dict[str, Any]:
    """A tool result as Gemini's ``response`` object: a JSON object as-is, anything else as ``output``."""
    if text.lstrip().startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
    return {"output": text}


def _arguments(raw: Any, where: str) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        args = orjson.loads(raw) if isinstance(raw, str) else None
    except orjson.JSONDecodeError:
        raise RequestError("arguments is not valid JSON", f"{where}.arguments") from None
    if not isinstance(args, dict):
        raise RequestError("arguments must be a JSON string encoding an object", f"{where}.arguments")
    return args


def _message(state: _State, item: Mapping[str, Any], where: str, fetched: Fetched | None) -> None:
    role = item.get("role")
    content = item.get("content")
    if role in ("system", "developer"):
        state.out.system.extend(content_parts(content, f"{where}.content", media=False))
    elif role == "user":
        state.add("user", content_parts(content, f"{where}.content", fetched=fetched) or [{"text": " "}])
    elif role == "assistant":
        parts = content_parts(content, f"{where}.content", media=False)
        if parts and (signature := state.pending.pop(TEXT_KEY, None)):
            parts[-1]["thoughtSignature"] = signature
        if parts:
            state.add("model", parts)
    else:
        raise RequestError(f"unknown role {role!r}: use user, assistant, system or developer", f"{where}.role")


def _item(state: _State, item: Mapping[str, Any], where: str, fetched: Fetched | None) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        _message(state, item, where, fetched)
    elif kind == "reasoning":
        state.pending = decode_signatures(item.get("encrypted_content"))
    elif kind in ("function_call", "custom_tool_call"):
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise RequestError(f"{kind} needs a name", f"{where}.name")
        if isinstance(item.get("namespace"), str) and item["namespace"]:
            name = namespaced_name(item["namespace"], name)
        args = (_arguments(item.get("arguments"), where) if kind == "function_call"
                else {"input": str(item.get("input") or "")})
        state.call(item.get("call_id"), name, args, where)
    elif kind == "local_shell_call":
        action = item.get("action") if isinstance(item.get("action"), Mapping) else {}
        args = {k: action[k] for k in ("command", "working_directory", "timeout_ms") if action.get(k) is not None}
        state.call(item.get("call_id") or item.get("id"), "local_shell", args, where)
    elif kind == "shell_call":
        action = item.get("action") if isinstance(item.get("action"), Mapping) else {}
        args = {k: action[k] for k in ("commands", "timeout_ms") if action.get(k) is not None}
        state.call(item.get("call_id"), "shell", args, where)
    elif kind in ("function_call_output", "custom_tool_call_output", "shell_call_output"):
        state.result(item.get("call_id"), item.get("output"), where, fetched)
    elif kind == "local_shell_call_output":
        state.result(item.get("call_id") or item.get("id"), item.get("output"), where, fetched)
    elif kind in ("compaction", "compaction_summary"):
        summary = decode_compaction(item.get("encrypted_content"))
        if summary is None:
            raise RequestError("this compaction item was not made by this gateway, so its content cannot be "
                               "read", f"{where}.encrypted_content")
        state.add("user", [{"text": COMPACTED_PREFIX + summary}])
    elif kind in _HOSTED_RECORDS:
        return
    elif kind == "item_reference":
        raise RequestError(f"item {item.get('id')!r} is not stored (store: false, expired, or never made here)",
                           f"{where}.id")
    else:
        raise RequestError(f"unsupported input item type {kind!r}", f"{where}.type")


def translate_items(items: Any, *, signatures: Mapping[str, str] | None = None, fetched: Fetched | None = None,
                    gemini3: bool = False, param: str = "input") -> Translated:
    """Contents and system parts for ``input`` (a string or an item array); a RequestError names the field."""
    state = _State(Translated(), signatures or {})
    if isinstance(items, str):
        state.add("user", [{"text": items}] if items else [{"text": " "}])
        return state.out
    if not isinstance(items, list):
        raise RequestError("input must be a string or an array of input items", param)
    last = len(items) - 1
    for i, item in enumerate(items):
        where = f"{param}[{i}]"
        if isinstance(item, str):  # lenient: bare strings are user text
            state.add("user", [{"text": item or " "}])
            continue
        if not isinstance(item, Mapping):
            raise RequestError("each input item must be an object", where)
        if item.get("type") == "compaction_trigger":
            if i != last:
                raise RequestError("compaction_trigger must be the last input item", f"{where}.type")
            state.out.compaction_trigger = True
            continue
        _item(state, item, where, fetched)
    if gemini3:
        _skip_missing_signatures(state.out.contents)
    return state.out


def _skip_missing_signatures(contents: list[dict[str, Any]]) -> None:
    """Gemini 3 refuses a replayed step whose first call lost its signature; the skip value is documented."""
    for content in contents:
        if content["role"] != "model":
            continue
        calls = [p for p in content["parts"] if "functionCall" in p]
        if calls and not any("thoughtSignature" in p for p in calls):
            calls[0]["thoughtSignature"] = SKIP_SIGNATURE


def is_reference(item: Any) -> bool:
    """An ``item_reference`` (typed, or the bare ``{"id": ...}`` form) that the service resolves from the store."""
    return isinstance(item, Mapping) and (item.get("type") == "item_reference" or (
        "type" not in item and "role" not in item and isinstance(item.get("id"), str)))


def call_ids(items: Any) -> list[str]:
    """Call ids of every model call in ``items`` (for the service's signature lookup). Never raises."""
    if not isinstance(items, list):
        return []
    kinds = ("function_call", "custom_tool_call", "local_shell_call", "shell_call")
    return [str(i.get("call_id")) for i in items
            if isinstance(i, Mapping) and i.get("type") in kinds and isinstance(i.get("call_id"), str)]
