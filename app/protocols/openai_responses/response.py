"""The Response object: its envelope (request parameters echoed) and the whole answer of a non-stream call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.gemini.parts import Text, Thought, ToolCall
from app.protocols.openai_responses.carrier import TEXT_KEY, encode_signatures
from app.protocols.openai_responses.ids import new_id
from app.protocols.openai_responses.output import (
    Ending,
    call_item,
    citations,
    ending,
    part_reader,
    usage_from_gemini,
)
from app.protocols.openai_responses.tools import ToolSet

__all__ = ["envelope", "response_from_gemini"]


def envelope(response_id: str, model: str, created: int, echo: Mapping[str, Any]) -> dict[str, Any]:
    """A Response in progress with no output yet: the snapshot ``response.created`` carries."""
    return {"id": response_id, "object": "response", "created_at": created, "status": "in_progress",
            "background": False, "error": None, "incomplete_details": None, "max_tool_calls": None,
            "model": model, "output": [], "top_logprobs": 0, **echo, "usage": None}


def message_item(text: str, annotations: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": new_id("msg"), "role": "assistant", "status": status,
            "content": [{"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}]}


def reasoning_item(summary: str, signatures: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "reasoning", "id": new_id("rs"),
                            "summary": [{"type": "summary_text", "text": summary}] if summary else []}
    if signatures:
        item["encrypted_content"] = encode_signatures(signatures)
    return item


def response_from_gemini(resp: Mapping[str, Any], *, base: dict[str, Any],
                         tools: ToolSet) -> tuple[dict[str, Any], dict[str, str]]:
    """(the finished Response, {call_id: thought signature}) for one GenerateContentResponse."""
    candidates = resp.get("candidates") or []
    candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else None
    thoughts: list[str] = []
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    signatures: dict[str, str] = {}
    for event in part_reader().read(candidate, final=True) if candidate is not None else ():
        if isinstance(event, Thought):
            thoughts.append(event.text)
        elif isinstance(event, ToolCall):
            calls.append(call_item(event, tools))
            if event.signature:
                signatures[event.id] = event.signature
        elif isinstance(event, Text):
            text.append(event.text)
            if event.signature:
                signatures[TEXT_KEY] = event.signature  # the answer's own signature, put back on its text
    end: Ending = ending(candidate, resp.get("promptFeedback"))
    output: list[dict[str, Any]] = []
    if thoughts or signatures:
        output.append(reasoning_item("".join(thoughts), signatures))
    joined = "".join(text)
    if end.refusal and not joined:
        output.append({"type": "message", "id": new_id("msg"), "role": "assistant", "status": "completed",
                       "content": [{"type": "refusal", "refusal": end.refusal}]})
    elif joined or not calls:
        output.append(message_item(joined, citations(joined, (candidate or {}).get("groundingMetadata")),
                                   "completed" if end.status == "completed" else "incomplete"))
    output.extend(calls)
    response = {**base, **end.fields(), "output": output, "usage": usage_from_gemini(resp.get("usageMetadata"))}
    return response, {k: v for k, v in signatures.items() if k != TEXT_KEY}
