"""Pieces of a Gemini answer in Responses terms, shared by the whole-response and the stream translators.

* Output items: ``reasoning`` (thought text as summary, thought signatures in ``encrypted_content``),
  ``message`` with ``output_text`` (+ ``url_citation`` annotations from grounding), and one call item per
  ``functionCall``, shaped by the kind of tool that was declared (``function_call``, ``custom_tool_call``,
  ``local_shell_call``, ``shell_call``). Code execution parts become fenced blocks in the text.
* Parts are read by :class:`app.gemini.parts.PartReader`; ``call_id`` is the reader's (Gemini's
  ``functionCall.id`` when given and unused in this answer, else a minted ``call_gw_…``).
* Status: STOP -> completed; MAX_TOKENS -> incomplete/max_output_tokens; safety-type reasons and prompt
  blocks -> incomplete/content_filter; other endings (malformed call ...) -> failed with the reason.
* Usage: input includes cached, output includes reasoning, both detail objects always present.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.gemini.parts import CONTENT_FILTER_REASONS, PartReader, ToolCall, block_refusal, finish_refusal
from app.protocols.openai_responses.ids import mint_tool_call_id, new_id
from app.protocols.openai_responses.tools import ToolSet

__all__ = ["Ending", "call_item", "citations", "ending", "part_reader", "usage_from_gemini", "zero_usage"]


def _count(meta: dict[str, Any], key: str) -> int:
    value = meta.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def zero_usage() -> dict[str, Any]:
    return {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 0,
            "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 0}


def usage_from_gemini(meta: Any) -> dict[str, Any]:
    """Responses usage for ``usageMetadata`` (zeros when absent: Codex refuses a usage without details)."""
    if not isinstance(meta, dict):
        return zero_usage()
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    candidates, thoughts = _count(meta, "candidatesTokenCount"), _count(meta, "thoughtsTokenCount")
    total = _count(meta, "totalTokenCount")
    output = candidates + thoughts
    if thoughts and total and prompt + candidates == total:  # thoughts already folded into candidates
        output = candidates
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": _count(meta, "cachedContentTokenCount")},
            "output_tokens": output, "output_tokens_details": {"reasoning_tokens": thoughts},
            "total_tokens": total or prompt + output}


def part_reader() -> PartReader:
    """The reader of the first candidate's parts (Responses reads one candidate)."""
    return PartReader(mint_tool_call_id)


def call_item(call: ToolCall, tools: ToolSet) -> dict[str, Any]:
    """The output item for one complete Gemini function call, shaped by the kind of tool it was declared as
    (a member of a ``namespace`` tool gets its own name back plus ``namespace``)."""
    call_id, name, args = call.id, call.name, call.args
    kind = tools.kind(name)
    extra: dict[str, Any] = {}
    if name in tools.namespaced:
        namespace, name = tools.namespaced[name]
        extra["namespace"] = namespace
    if kind == "custom":
        raw = args.get("input")
        return {"type": "custom_tool_call", "id": new_id("ctc"), "call_id": call_id, "name": name, **extra,
                "input": raw if isinstance(raw, str) else orjson.dumps(args).decode(), "status": "completed"}
    if kind == "local_shell":
        command = args.get("command")
        action: dict[str, Any] = {"type": "exec", "command": command if isinstance(command, list) else
                                  [str(command or "")], "env": {}}
        for key in ("working_directory", "timeout_ms"):
            if args.get(key) is not None:
                action[key] = args[key]
        return {"type": "local_shell_call", "id": new_id("lsh"), "call_id": call_id, "action": action,
                "status": "completed"}
    if kind == "shell":
        commands = args.get("commands")
        return {"type": "shell_call", "id": new_id("sh"), "call_id": call_id, "status": "completed",
                "action": {"commands": commands if isinstance(commands, list) else [str(commands or "")],
                           "timeout_ms": args.get("timeout_ms"), "max_output_length": None}}
    return {"type": "function_call", "id": new_id("fc"), "call_id": call_id, "name": name, **extra,
            "arguments": orjson.dumps(args).decode(), "status": "completed"}


def citations(text: str, grounding: Any) -> list[dict[str, Any]]:
    """``url_citation`` annotations from ``groundingMetadata`` (byte offsets converted to characters)."""
    if not isinstance(grounding, dict):
        return []
    chunks = grounding.get("groundingChunks") or []
    encoded = text.encode()
    out: list[dict[str, Any]] = []
    for support in grounding.get("groundingSupports") or []:
        segment = support.get("segment") if isinstance(support, dict) else None
        if not isinstance(segment, dict):
            continue
        start = len(encoded[: _count(segment, "startIndex")].decode(errors="ignore"))
        end = len(encoded[: _count(segment, "endIndex")].decode(errors="ignore"))
        for index in support.get("groundingChunkIndices") or []:
            web = chunks[index].get("web") if isinstance(index, int) and 0 <= index < len(chunks) else None
            if isinstance(web, dict) and web.get("uri"):
                out.append({"type": "url_citation", "start_index": start, "end_index": end,
                            "url": web["uri"], "title": str(web.get("title") or "")})
    return out


class Ending:
    """How the response ends: ``status``, ``incomplete_details`` and ``error`` together."""

    __slots__ = ("status", "incomplete", "error", "refusal")

    def __init__(self, status: str, incomplete: str | None = None, error: dict[str, Any] | None = None,
                 refusal: str | None = None) -> None:
        self.status = status
        self.incomplete = incomplete
        self.error = error
        self.refusal = refusal

    def fields(self) -> dict[str, Any]:
        return {"status": self.status,
                "incomplete_details": {"reason": self.incomplete} if self.incomplete else None,
                "error": self.error}


def ending(candidate: dict[str, Any] | None, feedback: Any) -> Ending:
    """The ending for the first candidate's finishReason (or a prompt block when there is none)."""
    if candidate is None:
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            return Ending("incomplete", "content_filter", refusal=block_refusal(feedback))
        return Ending("failed", error={"code": "server_error", "message": "Gemini returned no candidate"})
    reason = candidate.get("finishReason")
    if reason in (None, "STOP"):
        return Ending("completed")
    if reason == "MAX_TOKENS":
        return Ending("incomplete", "max_output_tokens")
    if reason in CONTENT_FILTER_REASONS:
        return Ending("incomplete", "content_filter", refusal=finish_refusal(candidate))
    message = candidate.get("finishMessage")
    text = f"Gemini ended the response with {reason}" + (f": {message}" if isinstance(message, str) else "")
    return Ending("failed", error={"code": "server_error", "message": text})
