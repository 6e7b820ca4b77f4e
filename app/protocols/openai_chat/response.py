"""Gemini ``GenerateContentResponse`` -> OpenAI ``chat.completion`` (streams: :mod:`app.protocols.openai_chat.stream`).

The translator never raises on odd-but-real shapes (docs/architecture.md, Wire notes): missing ``candidates`` (prompt blocked),
``content`` without ``parts`` (MAX_TOKENS after thinking ate the budget), ``content: {}`` (SAFETY), missing
``index``. Decisions on content:

* ``message.content``: the joined non-thought text; ``None`` when the answer is only tool calls or was
  filtered without any text; ``""`` otherwise when there is no text (e.g. MAX_TOKENS spent on thinking —
  what OpenAI's own reasoning models return in that case).
* ``message.reasoning_content``: the joined thought-summary text, only when Gemini sent thought parts.
* A prompt block (no candidates + ``promptFeedback.blockReason``) is one choice with ``content: None``,
  ``finish_reason: content_filter`` and the reason in ``message.refusal``.

Returns the signatures to remember alongside the completion: ``{tool_call_id: thoughtSignature}``.
"""

from __future__ import annotations

import os
from typing import Any

from app.gemini.assemble import assemble_stream
from app.gemini.parts import Media, Text, Thought, ToolCall, block_refusal, finish_refusal
from app.protocols.openai_chat.candidates import (
    logprobs_from_gemini,
    map_finish_reason,
    native_reason,
    output_image,
    part_reader,
    tool_call,
)
from app.protocols.openai_chat.stream import StreamTranslator
from app.protocols.openai_chat.usage import usage_from_gemini, zero_usage

__all__ = ["StreamTranslator", "assemble_stream", "completion_from_gemini"]


def _choice(candidate: dict[str, Any], position: int, used_ids: set[str],
            signatures: dict[str, str]) -> dict[str, Any]:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for event in part_reader(used_ids).read(candidate, final=True):
        if isinstance(event, Text):
            texts.append(event.text)
        elif isinstance(event, Thought):
            thoughts.append(event.text)
        elif isinstance(event, ToolCall):
            calls.append(tool_call(event))
            if event.signature:
                signatures[event.id] = event.signature
        elif isinstance(event, Media) and (image := output_image(event)) is not None:
            images.append(image)

    reason = candidate.get("finishReason")
    finish = map_finish_reason(reason, bool(calls))
    text = "".join(texts)
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if not text and (calls or finish == "content_filter"):
        message["content"] = None
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    if images:
        message["images"] = images
    message["refusal"] = finish_refusal(candidate) if finish == "content_filter" else None
    index = candidate.get("index")
    choice: dict[str, Any] = {
        "index": index if isinstance(index, int) else position,
        "message": message,
        "logprobs": logprobs_from_gemini(candidate),
        "finish_reason": finish,
    }
    if (native := native_reason(reason)) is not None:
        choice["native_finish_reason"] = native
    return choice


def completion_from_gemini(resp: dict[str, Any], *, model: str, created: int,
                           completion_id: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """(OpenAI ``chat.completion``, ``{tool_call_id: thoughtSignature}``) for one Gemini response.

    ``model`` is echoed as sent by the client; the id is ``chatcmpl-<responseId>`` unless ``completion_id``
    is given (or a random one when Gemini sent no responseId).
    """
    if not isinstance(resp, dict):
        resp = {}
    signatures: dict[str, str] = {}
    used_ids: set[str] = set()
    candidates = resp.get("candidates")
    choices: list[dict[str, Any]] = []
    if isinstance(candidates, list):
        for position, candidate in enumerate(candidates):
            if isinstance(candidate, dict):
                choices.append(_choice(candidate, position, used_ids, signatures))
    if not choices:
        raw_feedback = resp.get("promptFeedback")
        feedback: dict[str, Any] = raw_feedback if isinstance(raw_feedback, dict) else {}
        blocked = bool(feedback.get("blockReason"))
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": None if blocked else "",
                        "refusal": block_refusal(feedback) if blocked else None},
            "logprobs": None,
            "finish_reason": "content_filter" if blocked else "stop",
        }
        if blocked:
            choice["native_finish_reason"] = str(feedback["blockReason"])
        choices.append(choice)
    response_id = resp.get("responseId")
    if completion_id is None:
        completion_id = "chatcmpl-" + (response_id if isinstance(response_id, str) and response_id
                                       else os.urandom(12).hex())
    completion = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": usage_from_gemini(resp.get("usageMetadata")) or zero_usage(),
    }
    return completion, signatures
