"""What one Gemini candidate means in OpenAI terms: finish reasons, tool calls, text pieces, refusals.

Shared by the whole-response translator and the stream translator so both produce the same message for the
same parts. Decisions:

* ``finish_reason``: any function call in the answer -> ``tool_calls`` (Gemini ends tool turns with STOP);
  STOP -> ``stop``; MAX_TOKENS -> ``length``; safety-type reasons (SAFETY, RECITATION, LANGUAGE, OTHER,
  BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_*, NO_IMAGE) -> ``content_filter``; everything else
  (MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, TOO_MANY_TOOL_CALLS, MISSING_THOUGHT_SIGNATURE,
  MALFORMED_RESPONSE, unknown values) -> ``stop``. Whenever the mapping loses information the Gemini value
  is kept in the choice as ``native_finish_reason`` so the client can still tell what happened.
* A ``content_filter`` ending carries a human-readable reason in ``message.refusal`` (OpenAI's field for
  "the model declined"), built from the finish/block reason, its message and the blocked safety categories.
* Tool call ids: Gemini's ``functionCall.id`` when it gave a non-empty one not used yet in this answer, else a
  minted ``call_gw_…`` id. The call's thought signature is reported to the caller (to remember) and also put
  on the tool call as ``extra_content.google.thought_signature``, Google's compat shape, so clients that echo
  tool calls verbatim round-trip it without the gateway's memory.
* ``executableCode``/``codeExecutionResult`` (the codeExecution tool) become fenced blocks in the content.
* Output images (``inlineData``) become ``message.images`` data URLs (the convention OpenRouter/LiteLLM use).
"""

from __future__ import annotations

from typing import Any

import orjson

from app.gemini.assemble import PartialCalls
from app.protocols.openai_chat.ids import mint_tool_call_id

__all__ = [
    "CONTENT_FILTER_REASONS",
    "PartialCalls",
    "TextTail",
    "block_refusal",
    "finish_refusal",
    "logprobs_from_gemini",
    "map_finish_reason",
    "native_reason",
    "output_image",
    "tool_call",
]

CONTENT_FILTER_REASONS = frozenset({
    "SAFETY", "RECITATION", "LANGUAGE", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "NO_IMAGE",
})
_LOSSLESS = frozenset({"STOP", "MAX_TOKENS"})


def map_finish_reason(reason: Any, has_tool_calls: bool) -> str:
    """OpenAI finish_reason for a Gemini finishReason (None counts as STOP)."""
    if has_tool_calls:
        return "tool_calls"
    if reason == "MAX_TOKENS":
        return "length"
    if reason in CONTENT_FILTER_REASONS:
        return "content_filter"
    return "stop"


def native_reason(reason: Any) -> str | None:
    """The Gemini finishReason when OpenAI's vocabulary cannot express it, else None."""
    return reason if isinstance(reason, str) and reason not in _LOSSLESS else None


def _blocked_categories(ratings: Any) -> list[str]:
    if not isinstance(ratings, list):
        return []
    return [str(r.get("category")) for r in ratings
            if isinstance(r, dict) and r.get("blocked") and r.get("category")]


def finish_refusal(candidate: dict[str, Any]) -> str:
    """Why Gemini stopped a candidate with a safety-type reason, for ``message.refusal``."""
    reason = candidate.get("finishReason")
    text = f"Gemini stopped the response: {reason}"
    categories = _blocked_categories(candidate.get("safetyRatings"))
    if categories:
        text += f" ({', '.join(categories)})"
    message = candidate.get("finishMessage")
    if isinstance(message, str) and message:
        text += f". {message}"
    return text


def block_refusal(feedback: dict[str, Any]) -> str:
    """Why Gemini refused the prompt (no candidates, ``promptFeedback.blockReason``)."""
    text = f"Gemini blocked the prompt: {feedback.get('blockReason')}"
    categories = _blocked_categories(feedback.get("safetyRatings"))
    if categories:
        text += f" ({', '.join(categories)})"
    message = feedback.get("blockReasonMessage")
    if isinstance(message, str) and message:
        text += f". {message}"
    return text


def tool_call(call: dict[str, Any], signature: str | None, used_ids: set[str]) -> dict[str, Any]:
    """An OpenAI tool call for a complete Gemini ``functionCall`` (id unique within ``used_ids``)."""
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id or call_id in used_ids:
        call_id = mint_tool_call_id()
    used_ids.add(call_id)
    args = call.get("args")
    out: dict[str, Any] = {
        "id": call_id,
        "type": "function",
        "function": {"name": str(call.get("name") or ""),
                     "arguments": orjson.dumps(args if isinstance(args, dict) else {}).decode()},
    }
    if signature:
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def output_image(part: dict[str, Any]) -> dict[str, Any] | None:
    """An ``images`` entry (data URL) for a generated image part, else None."""
    blob = part.get("inlineData")
    if not isinstance(blob, dict) or not str(blob.get("mimeType", "")).startswith("image/"):
        return None
    url = f"data:{blob['mimeType']};base64,{blob.get('data', '')}"
    return {"type": "image_url", "image_url": {"url": url}}


class TextTail:
    """Formats code-execution parts as fenced blocks that start on their own line, across chunks too."""

    def __init__(self) -> None:
        self.ends_with_newline = True

    def text(self, value: str) -> str:
        if value:
            self.ends_with_newline = value.endswith("\n")
        return value

    def code(self, part: dict[str, Any]) -> str:
        if "executableCode" in part:
            block = part["executableCode"] or {}
            language = str(block.get("language") or "").lower()
            language = "" if language == "language_unspecified" else language
            body = str(block.get("code") or "")
        else:
            block = part["codeExecutionResult"] or {}
            language = "output"
            body = str(block.get("output") or "")
        lead = "" if self.ends_with_newline else "\n"
        self.ends_with_newline = True
        return f"{lead}```{language}\n{body.rstrip()}\n```\n"


def logprobs_from_gemini(candidate: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI ``choice.logprobs`` from ``logprobsResult`` (chosen tokens + their top alternatives)."""
    result = candidate.get("logprobsResult")
    if not isinstance(result, dict):
        return None
    chosen = result.get("chosenCandidates") or []
    tops = result.get("topCandidates") or []
    content = []
    for i, token in enumerate(chosen):
        if not isinstance(token, dict):
            continue
        text = str(token.get("token", ""))
        alternatives = tops[i].get("candidates", []) if i < len(tops) and isinstance(tops[i], dict) else []
        content.append({
            "token": text,
            "logprob": token.get("logProbability", 0.0),
            "bytes": list(text.encode()),
            "top_logprobs": [{"token": str(a.get("token", "")), "logprob": a.get("logProbability", 0.0),
                              "bytes": list(str(a.get("token", "")).encode())}
                             for a in alternatives if isinstance(a, dict)],
        })
    return {"content": content, "refusal": None}
