"""Gemini stream chunks -> OpenAI ``chat.completion.chunk`` dicts, and stream chunks -> one response.

Rules (docs/architecture.md, "Streaming" and "Wire notes"):

* ``id`` and ``created`` are fixed for the stream; the first delta of each choice carries ``role``.
* Text, thought text (``reasoning_content``) and whole tool calls are sent as they arrive; each tool call
  is one delta with a stable per-choice ``index`` and an id minted once.
* ``finish_reason`` is sent on the chunk translated from Gemini's final chunk and decided over the whole
  stream: Gemini 2.5/3 send the call first and an empty ``STOP`` chunk later, which still ends in
  ``tool_calls``.
* A chunk with a top-level ``error`` is an upstream failure, never a silent stop: :class:`UpstreamStreamError`
  with the Google-shaped body. So is a stream that ends before every choice saw a finishReason.
* ``finish()`` returns the trailing usage chunk (``choices: []``) when ``include_usage`` was requested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.gemini.parts import Media, PartReader, Text, Thought, ToolCall, block_refusal, finish_refusal
from app.protocols.openai_chat.candidates import (
    logprobs_from_gemini,
    map_finish_reason,
    native_reason,
    output_image,
    part_reader,
    tool_call,
)
from app.protocols.openai_chat.errors import UpstreamStreamError
from app.protocols.openai_chat.usage import usage_from_gemini, zero_usage

__all__ = ["StreamTranslator"]

NO_FINISH_MESSAGE = "upstream stream ended without a finish reason"


def _failure(message: str) -> UpstreamStreamError:
    return UpstreamStreamError(502, {"error": {"code": 502, "message": message, "status": "BAD_GATEWAY"}})


@dataclass
class _Choice:
    """Per-choice stream state."""

    reader: PartReader
    started: bool = False
    tool_calls: int = 0
    finish: str | None = None
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)


class StreamTranslator:
    """Stateful translator for one stream; feed every Gemini chunk in order, then call :meth:`finish`."""

    def __init__(self, *, model: str, created: int, include_usage: bool, completion_id: str) -> None:
        self._id = completion_id
        self._created = created
        self._model = model
        self._include_usage = include_usage
        self._choices: dict[int, _Choice] = {}
        self._used_ids: set[str] = set()
        self._signatures: dict[str, str] = {}
        self._usage: dict[str, Any] | None = None

    # -- public state, for the service and analytics ------------------------------------------------------

    @property
    def signatures(self) -> dict[str, str]:
        """``{tool_call_id: thoughtSignature}`` for every signed tool call sent so far."""
        return self._signatures

    @property
    def usage(self) -> dict[str, Any] | None:
        """The last OpenAI usage seen (Gemini's usage is cumulative), or None."""
        return self._usage

    @property
    def text(self) -> str:
        """The content text streamed so far for choice 0."""
        choice = self._choices.get(0)
        return "".join(choice.text) if choice else ""

    @property
    def reasoning(self) -> str:
        """The thought-summary text streamed so far for choice 0."""
        choice = self._choices.get(0)
        return "".join(choice.reasoning) if choice else ""

    @property
    def finish_reason(self) -> str | None:
        """Choice 0's OpenAI finish reason, once sent."""
        choice = self._choices.get(0)
        return choice.finish if choice else None

    # -- translation ----------------------------------------------------------------------------------------

    def _envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                "model": self._model, "choices": choices}

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None,
               extra: dict[str, Any] | None = None, logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": index, "delta": delta, "logprobs": logprobs,
                                  "finish_reason": finish}
        if extra:
            choice.update(extra)
        return self._envelope([choice])

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """OpenAI chunks for one Gemini chunk (possibly none, e.g. an empty keep-alive text part)."""
        if not isinstance(chunk, dict):
            raise _failure("the upstream sent a stream event that is not a JSON object")
        error = chunk.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            status = code if isinstance(code, int) and code >= 400 else 502
            raise UpstreamStreamError(status, chunk if isinstance(error, dict) else
                                      {"error": {"code": status, "message": str(error), "status": "UNKNOWN"}})
        usage = usage_from_gemini(chunk.get("usageMetadata"))
        if usage is not None:
            self._usage = usage
        candidates = chunk.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            return self._blocked(chunk.get("promptFeedback"))
        out: list[dict[str, Any]] = []
        for position, candidate in enumerate(candidates):
            if isinstance(candidate, dict):
                piece = self._candidate(candidate, position)
                if piece is not None:
                    out.append(piece)
        return out

    def _blocked(self, feedback: Any) -> list[dict[str, Any]]:
        if not isinstance(feedback, dict) or not feedback.get("blockReason"):
            return []
        state = self._state(0)
        if state.finish is not None:
            return []
        state.finish = "content_filter"
        delta = {"role": "assistant", "content": None, "refusal": block_refusal(feedback)}
        state.started = True
        native = {"native_finish_reason": str(feedback["blockReason"])}
        return [self._chunk(0, delta, "content_filter", native)]

    def _state(self, index: int) -> _Choice:
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _Choice(part_reader(self._used_ids))
        return state

    def _candidate(self, candidate: dict[str, Any], position: int) -> dict[str, Any] | None:
        index = candidate.get("index")
        index = index if isinstance(index, int) else position
        state = self._state(index)
        if state.finish is not None:
            return None  # nothing may follow a finish for this choice
        texts: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        images: list[dict[str, Any]] = []
        for event in state.reader.read(candidate):
            if isinstance(event, Text):
                if event.text:
                    texts.append(event.text)
            elif isinstance(event, Thought):
                if event.text:
                    thoughts.append(event.text)
            elif isinstance(event, ToolCall):
                calls.append(self._tool_call(state, event))
            elif isinstance(event, Media) and (image := output_image(event)) is not None:
                images.append(image)
        reason = candidate.get("finishReason")

        delta: dict[str, Any] = {}
        if texts:
            delta["content"] = "".join(texts)
            state.text.append(delta["content"])
        if thoughts:
            delta["reasoning_content"] = "".join(thoughts)
            state.reasoning.append(delta["reasoning_content"])
        if calls:
            delta["tool_calls"] = calls
        if images:
            delta["images"] = images
        logprobs = logprobs_from_gemini(candidate)
        finish: str | None = None
        extra: dict[str, Any] | None = None
        if reason:
            finish = map_finish_reason(reason, state.tool_calls > 0)
            state.finish = finish
            if finish == "content_filter":
                delta["refusal"] = finish_refusal(candidate)
            if (native := native_reason(reason)) is not None:
                extra = {"native_finish_reason": native}
        if not delta and finish is None and logprobs is None:
            return None
        if not state.started:
            delta = {"role": "assistant", **delta}
            state.started = True
        return self._chunk(index, delta, finish, extra, logprobs)

    def _tool_call(self, state: _Choice, call: ToolCall) -> dict[str, Any]:
        if call.signature:
            self._signatures[call.id] = call.signature
        out = {"index": state.tool_calls, **tool_call(call)}
        state.tool_calls += 1
        return out

    def finish(self) -> list[dict[str, Any]]:
        """Trailing chunks after the upstream closed cleanly; raises when the answer never finished."""
        if not self._choices or any(c.finish is None for c in self._choices.values()):
            raise _failure(NO_FINISH_MESSAGE)
        if not self._include_usage:
            return []
        return [{**self._envelope([]), "usage": self._usage or zero_usage()}]
