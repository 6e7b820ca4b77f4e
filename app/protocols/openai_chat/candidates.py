"""What one Gemini candidate means in OpenAI terms: finish reasons, tool calls, images, refusals.

Shared by the whole-response translator and the stream translator so both produce the same message for the
same parts, which both read with :class:`app.gemini.parts.PartReader`. Decisions:

* ``finish_reason``: any function call in the answer -> ``tool_calls`` (Gemini ends tool turns with STOP);
  STOP -> ``stop``; MAX_TOKENS -> ``length``; safety-type reasons (SAFETY, RECITATION, LANGUAGE, OTHER,
  BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_*, NO_IMAGE) -> ``content_filter``; everything else
  (MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, TOO_MANY_TOOL_CALLS, MISSING_THOUGHT_SIGNATURE,
  MALFORMED_RESPONSE, unknown values) -> ``stop``. Whenever the mapping loses information the Gemini value
  is kept in the choice as ``native_finish_reason`` so the client can still tell what happened.
* A ``content_filter`` ending carries a human-readable reason in ``message.refusal`` (OpenAI's field for
  "the model declined"), built from the finish/block reason, its message and the blocked safety categories.
* Tool call ids: the reader's (Gemini's when usable, else a minted ``call_gw_…`` id). The call's thought
  signature is reported to the caller (to remember) and also put on the tool call as
  ``extra_content.google.thought_signature``, Google's compat shape, so clients that echo tool calls verbatim
  round-trip it without the gateway's memory.
* Code execution arrives from the reader as fenced blocks in the text; thought text is ``reasoning_content``.
* Output images (``inlineData``; the reader leaves thought drafts out) become ``message.images`` data URLs
  (the convention OpenRouter/LiteLLM use).
"""

from __future__ import annotations

from typing import Any

import orjson

from app.gemini.parts import CONTENT_FILTER_REASONS, Media, PartReader, ToolCall
from app.protocols.openai_chat.ids import mint_tool_call_id

__all__ = [
    "logprobs_from_gemini",
    "map_finish_reason",
    "native_reason",
    "output_image",
    "part_reader",
    "tool_call",
]

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


def part_reader(used_ids: set[str]) -> PartReader:
    """A reader for one choice; ``used_ids`` is shared by every choice of the answer."""
    return PartReader(mint_tool_call_id, used_ids)


def tool_call(call: ToolCall) -> dict[str, Any]:
    """An OpenAI tool call for a complete Gemini function call."""
    out: dict[str, Any] = {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": orjson.dumps(call.args).decode()},
    }
    if call.signature:
        out["extra_content"] = {"google": {"thought_signature": call.signature}}
    return out


def output_image(media: Media) -> dict[str, Any] | None:
    """An ``images`` entry (data URL) for a generated image, else None (audio has no place in a message)."""
    if not media.mime.startswith("image/"):
        return None
    return {"type": "image_url", "image_url": {"url": f"data:{media.mime};base64,{media.data}"}}


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
