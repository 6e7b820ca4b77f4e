"""Compaction (``/v1/responses/compact`` and the ``compaction_trigger`` input item), pure parts.

The gateway asks Gemini for a faithful summary of the transcript (the request's own translated contents,
plus one instruction), and answers with the user messages kept and exactly one ``compaction`` item whose
opaque ``encrypted_content`` holds that summary (see :mod:`carrier`); when the item comes back in a later
``input`` it is expanded into a user turn that carries the summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.gemini.parts import answer_text, candidate_parts
from app.protocols.openai_responses.carrier import encode_compaction
from app.protocols.openai_responses.ids import new_id

__all__ = ["SUMMARY_INSTRUCTION", "compacted_response", "compaction_item", "kept_user_messages", "summary_body",
           "summary_text"]

SUMMARY_INSTRUCTION = (
    "You are compacting the conversation above so that it can continue in a fresh context. Write a faithful, "
    "complete summary for the assistant that will continue the work: the user's goals and constraints, every "
    "decision made, the current state of the task (files, commands, results, errors), tool calls that matter "
    "and their outcomes, and what remains to be done next. Keep names, paths, numbers and code identifiers "
    "exact. Do not invent anything. Write the summary only, no preamble."
)


def summary_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A GenerateContentRequest that asks for the summary of ``body``'s conversation (no tools, no format)."""
    contents = [dict(c, parts=list(c["parts"])) for c in body.get("contents", [])]
    contents.append({"role": "user", "parts": [{"text": SUMMARY_INSTRUCTION}]})
    out: dict[str, Any] = {"contents": contents}
    if "systemInstruction" in body:
        out["systemInstruction"] = body["systemInstruction"]
    if "tools" in body:  # calls in the history must still resolve against their declarations
        out["tools"] = body["tools"]
        out["toolConfig"] = {"functionCallingConfig": {"mode": "NONE"}}
    return out


def summary_text(resp: Mapping[str, Any]) -> str:
    """The visible text of a Gemini answer (thoughts left out)."""
    candidates = resp.get("candidates") or []
    return answer_text(candidate_parts(candidates[0] if candidates else None))


def compaction_item(summary: str) -> dict[str, Any]:
    return {"type": "compaction", "id": new_id("cmp"), "encrypted_content": encode_compaction(summary)}


def kept_user_messages(items: list[Any]) -> list[dict[str, Any]]:
    """The user messages of the history, as ``input_text`` messages (what OpenAI keeps, docs/architecture.md, Wire notes)."""
    kept: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            item = {"role": "user", "content": item}
        if not isinstance(item, Mapping) or item.get("type", "message") != "message" or item.get("role") != "user":
            continue
        content = item.get("content")
        parts = [{"type": "input_text", "text": content}] if isinstance(content, str) else [
            p for p in content or [] if isinstance(p, Mapping)]
        kept.append({"type": "message", "id": new_id("msg"), "role": "user", "status": "completed",
                     "content": parts})
    return kept


def compacted_response(items: list[Any], summary: str, *, created: int,
                       usage: dict[str, Any]) -> dict[str, Any]:
    return {"id": new_id("resp"), "object": "response.compaction", "created_at": created,
            "output": [*kept_user_messages(items), compaction_item(summary)], "usage": usage}
