"""OpenAI ``messages`` -> Gemini ``contents`` + ``systemInstruction``.

Rules and why:

* ``system``/``developer`` messages, wherever they appear, become ``systemInstruction`` parts: Gemini has
  exactly one system instruction and no system role inside ``contents``.
* Gemini wants ``user``/``model`` turns to alternate, so consecutive same-role turns are merged (tool results
  are user-role ``functionResponse`` parts and merge with a following user message).
* Empty assistant messages carry nothing and are skipped; an empty *user* message becomes ``" "`` so the turn
  structure the client built survives (Gemini refuses empty text). A conversation that is empty after the
  system messages are removed becomes one user turn ``" "`` (Gemini refuses empty ``contents``).
* Assistant ``reasoning_content`` is not replayed: thought text without its signature is useless to Gemini.
* Tool results are matched to the earlier assistant call by ``tool_call_id`` (that is where the function
  name, which OpenAI does not repeat, comes from); an unmatched id is a client bug and is refused.
* Thought signatures (Gemini 3) are re-attached to replayed ``functionCall`` parts: from the tool call's
  ``extra_content.google.thought_signature`` (Google's compat shape), else from ``signatures`` (what the
  gateway remembered when it produced the call). A Gemini 3 model turn whose calls have none gets the
  documented ``skip_thought_signature_validator`` on its first call, so history from clients that drop
  unknown fields still works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from app.protocols.openai_chat.errors import RequestError, bounded
from app.protocols.openai_chat.families import is_gemini3
from app.protocols.openai_chat.ids import is_minted
from app.protocols.openai_chat.parts import content_parts, text_of

__all__ = ["SKIP_SIGNATURE", "forwardable_id", "translate_messages"]

SKIP_SIGNATURE = "skip_thought_signature_validator"


@dataclass
class _Call:
    """An assistant tool call seen earlier in the conversation, waiting for its result."""

    name: str
    forward_id: str | None
    answered: bool = False


def forwardable_id(call_id: Any) -> str | None:
    """The id to send upstream as ``functionCall.id``/``functionResponse.id``, or None (minted or empty)."""
    if isinstance(call_id, str) and call_id and not is_minted(call_id):
        return call_id
    return None


def _signature_of(call: Mapping[str, Any]) -> str | None:
    """A signature the client echoed back: Google's ``extra_content.google`` shape or LiteLLM's field."""
    for holder in (call.get("extra_content"), call.get("provider_specific_fields")):
        if isinstance(holder, Mapping):
            google = holder.get("google", holder)
            sig = google.get("thought_signature") if isinstance(google, Mapping) else None
            if isinstance(sig, str) and sig:
                return sig
    return None


def _arguments(raw: Any, param: str) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return bounded(dict(raw), param)
    if not isinstance(raw, str):
        raise RequestError("function.arguments must be a JSON string", param)
    try:
        args = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError("function.arguments is not valid JSON", param) from None
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise RequestError("function.arguments must encode a JSON object", param)
    return bounded(args, param)


def _tool_response(text: str, param: str) -> dict[str, Any]:
    """A function result as Gemini's ``response`` object: JSON objects as-is, anything else wrapped."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return bounded(value, param)
    return {"content": text}


class _Builder:
    """Accumulates contents while remembering calls (for tool results) and merging same-role turns."""

    def __init__(self, signatures: Mapping[str, str] | None) -> None:
        self.contents: list[dict[str, Any]] = []
        self.system: list[dict[str, Any]] = []
        self.calls: dict[str, list[_Call]] = {}
        self.signatures = signatures or {}

    def add(self, role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if self.contents and self.contents[-1]["role"] == role:
            self.contents[-1]["parts"].extend(parts)
        else:
            self.contents.append({"role": role, "parts": parts})

    def call_part(self, call: Any, param: str, message_sig: str | None) -> dict[str, Any]:
        """A ``functionCall`` part for one assistant tool call; also registers the call for its result."""
        if not isinstance(call, Mapping):
            raise RequestError("each tool call must be an object", param)
        if call.get("type", "function") != "function":
            raise RequestError("only function tool calls are supported", f"{param}.type")
        function = call.get("function")
        if not isinstance(function, Mapping):
            raise RequestError("tool call needs a function object", f"{param}.function")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise RequestError("function.name must be a non-empty string", f"{param}.function.name")
        call_id = call.get("id")
        if call_id is not None and not isinstance(call_id, str):
            raise RequestError("tool call id must be a string", f"{param}.id")
        args = _arguments(function.get("arguments"), f"{param}.function.arguments")
        fc: dict[str, Any] = {"name": name, "args": args}
        forward = forwardable_id(call_id)
        if forward:
            fc["id"] = forward
        part: dict[str, Any] = {"functionCall": fc}
        sig = _signature_of(call) or (self.signatures.get(call_id) if call_id else None) or message_sig
        if sig:
            part["thoughtSignature"] = sig
        self.calls.setdefault(call_id or "", []).append(_Call(name, forward))
        return part

    def answer(self, call_id: str, param: str) -> _Call:
        candidates = self.calls.get(call_id)
        if not candidates:
            raise RequestError(f"tool message with tool_call_id {call_id[:80]!r} matches no earlier "
                               "assistant tool call", param)
        for candidate in candidates:
            if not candidate.answered:
                candidate.answered = True
                return candidate
        return candidates[-1]  # answered twice: let the model see both results


def _assistant(builder: _Builder, message: Mapping[str, Any], where: str) -> None:
    parts = content_parts(message.get("content"), f"{where}.content", media=False)
    tool_calls = message.get("tool_calls")
    legacy = message.get("function_call")
    message_sig = _signature_of(message)
    calls: list[dict[str, Any]] = []
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise RequestError("tool_calls must be an array", f"{where}.tool_calls")
        for k, call in enumerate(tool_calls):
            calls.append(builder.call_part(call, f"{where}.tool_calls[{k}]", message_sig if k == 0 else None))
    elif legacy is not None:
        calls.append(builder.call_part({"type": "function", "function": legacy}, f"{where}.function_call",
                                       message_sig))
    builder.add("model", parts + calls)


def _tool_result(builder: _Builder, message: Mapping[str, Any], where: str, role: str) -> None:
    text = text_of(message.get("content"), f"{where}.content")
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str):
            raise RequestError("tool messages need a string tool_call_id", f"{where}.tool_call_id")
        call = builder.answer(call_id, f"{where}.tool_call_id")
        name, forward = call.name, call.forward_id
    else:  # legacy role "function": matched by name, never had an id
        legacy_name = message.get("name")
        if not isinstance(legacy_name, str) or not legacy_name:
            raise RequestError("function messages need the function name", f"{where}.name")
        name = legacy_name
        forward = None
    response: dict[str, Any] = {"name": name, "response": _tool_response(text, f"{where}.content")}
    if forward:
        response["id"] = forward
    builder.add("user", [{"functionResponse": response}])


def _apply_skip_signatures(contents: list[dict[str, Any]]) -> None:
    for content in contents:
        if content["role"] != "model":
            continue
        calls = [p for p in content["parts"] if "functionCall" in p]
        if calls and not any("thoughtSignature" in p for p in calls):
            calls[0]["thoughtSignature"] = SKIP_SIGNATURE


def translate_messages(messages: Any, *, model: str, fetched_media: Mapping[str, tuple[str, str]] | None,
                       signatures: Mapping[str, str] | None,
                       ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(contents, systemInstruction or None) for OpenAI ``messages``; a RequestError names the field."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages must be a non-empty array", "messages")
    builder = _Builder(signatures)
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise RequestError("each message must be an object", where)
        role = message.get("role")
        if role in ("system", "developer"):
            builder.system.extend(content_parts(message.get("content"), f"{where}.content", media=False))
        elif role == "user":
            if message.get("content") is None:
                raise RequestError("user messages need content", f"{where}.content")
            parts = content_parts(message["content"], f"{where}.content", fetched=fetched_media)
            builder.add("user", parts or [{"text": " "}])
        elif role == "assistant":
            _assistant(builder, message, where)
        elif role in ("tool", "function"):
            _tool_result(builder, message, where, role)
        else:
            raise RequestError(f"unknown role {role!r}: use system, developer, user, assistant or tool",
                               f"{where}.role")
    contents = builder.contents or [{"role": "user", "parts": [{"text": " "}]}]
    if is_gemini3(model):
        _apply_skip_signatures(contents)
    system = {"parts": builder.system} if builder.system else None
    return contents, system
