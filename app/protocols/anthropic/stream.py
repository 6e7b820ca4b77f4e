"""Gemini response chunks -> Anthropic stream events ``(name, data)``, in the exact recorded order.

``message_start``, ``ping``, then per block ``content_block_start`` / ``content_block_delta``* /
``content_block_stop`` (blocks never interleave; indexes count from 0), then ``message_delta`` (stop reason,
usage) and ``message_stop``. A whole (non-stream) answer is fed as one chunk and assembled by
:mod:`.response`, so both paths say the same thing for the same parts.

* Parts are read by :class:`app.gemini.parts.PartReader`. Thoughts -> one ``thinking`` block
  (``thinking_delta``s); text (code execution included, fenced by the reader) -> a ``text`` block; each
  complete call -> a ``tool_use`` block with one ``input_json_delta`` holding the whole JSON, its id Gemini's
  or a minted ``toolu_gw_…``. Output media has no Anthropic response block and is left out.
* Signatures (see :mod:`.signatures`): with thinking on, a signature closes the open thinking block with a
  ``signature_delta`` (or opens an empty one) before the part it signed. A text signature that arrives after
  its text already streamed (Gemini sends it on a trailing empty part) cannot precede it and is dropped:
  Gemini only requires signatures on function calls. Every signed call is listed in :attr:`signatures`.
* ``stop_reason``: any tool_use -> ``tool_use``; MAX_TOKENS -> ``max_tokens``; safety-type reasons and a
  blocked prompt -> ``refusal``; else ``end_turn``. Gemini does not say which stop sequence matched.
* A chunk with ``error``, or an end without finishReason, raises UpstreamStreamError: the service turns it
  into an ``error`` event, never a clean stop.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from app.gemini.parts import CONTENT_FILTER_REASONS, PartReader, Text, Thought, ToolCall
from app.protocols.anthropic.content import MINTED_PREFIX
from app.protocols.anthropic.signatures import wrap
from app.protocols.openai_chat.errors import UpstreamStreamError

__all__ = ["Event", "MessageStream", "mint_message_id", "usage_from_gemini"]

Event = tuple[str, dict[str, Any]]


def mint_message_id() -> str:
    return "msg_gw_" + os.urandom(12).hex()


def _mint_tool_use_id() -> str:
    return MINTED_PREFIX + os.urandom(12).hex()


def _count(meta: dict[str, Any], key: str) -> int:
    value = meta.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def usage_from_gemini(meta: Any) -> dict[str, Any]:
    """Anthropic usage: input is the uncached prompt, cache reads apart, output includes thinking."""
    meta = meta if isinstance(meta, dict) else {}
    cached = _count(meta, "cachedContentTokenCount")
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    return {"input_tokens": max(0, prompt - cached), "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cached,
            "output_tokens": _count(meta, "candidatesTokenCount") + _count(meta, "thoughtsTokenCount")}


def _failure(message: str, status: int = 502) -> UpstreamStreamError:
    return UpstreamStreamError(status, {"error": {"code": status, "message": message, "status": "BAD_GATEWAY"}})


class MessageStream:
    """One stream's state; :meth:`feed` every Gemini chunk in order, then :meth:`finish`."""

    def __init__(self, *, model: str, thinking: bool, message_id: str | None = None) -> None:
        self.message_id = message_id or mint_message_id()
        self._model = model
        self._thinking = thinking
        self._started = False
        self._index = -1
        self._open: str | None = None          # kind of the open block
        self._open_signed = False              # the open thinking block already has its signature
        self._reader = PartReader(_mint_tool_use_id)
        self._tool_uses = 0
        self._reason: str | None = None
        self._blocked = False
        self._meta: dict[str, Any] = {}
        self.signatures: dict[str, str] = {}   # tool_use id -> Gemini signature
        self.text_parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    # -- blocks ---------------------------------------------------------------------------------------------

    def _close(self, out: list[Event]) -> None:
        if self._open is not None:
            out.append(("content_block_stop", {"type": "content_block_stop", "index": self._index}))
            self._open = None

    def _start(self, out: list[Event], kind: str, shell: dict[str, Any]) -> None:
        self._close(out)
        self._index += 1
        self._open = kind
        self._open_signed = False
        out.append(("content_block_start", {"type": "content_block_start", "index": self._index,
                                            "content_block": shell}))

    def _delta(self, out: list[Event], delta: dict[str, Any]) -> None:
        out.append(("content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}))

    def _sign(self, out: list[Event], signature: str) -> None:
        """Put ``signature`` on a thinking block just before the part it signs (thinking mode only)."""
        if self._open != "thinking" or self._open_signed:
            self._start(out, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
        self._delta(out, {"type": "signature_delta", "signature": wrap(signature)})
        self._open_signed = True
        self._close(out)

    # -- parts ----------------------------------------------------------------------------------------------

    def _thought(self, out: list[Event], thought: Thought) -> None:
        if not self._thinking:
            return
        if self._open != "thinking" or self._open_signed:
            self._start(out, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
        if thought.text:
            self._delta(out, {"type": "thinking_delta", "thinking": thought.text})
        if thought.signature:
            self._delta(out, {"type": "signature_delta", "signature": wrap(thought.signature)})
            self._open_signed = True

    def _text(self, out: list[Event], text: Text) -> None:
        if self._thinking and text.signature and self._open != "text":
            self._sign(out, text.signature)
        if not text.text:
            return
        if self._open != "text":
            self._start(out, "text", {"type": "text", "text": ""})
        self._delta(out, {"type": "text_delta", "text": text.text})
        self.text_parts.append(text.text)

    def _tool_use(self, out: list[Event], call: ToolCall) -> None:
        if call.signature:
            if self._thinking:
                self._sign(out, call.signature)
            self.signatures[call.id] = call.signature
        self._start(out, "tool_use", {"type": "tool_use", "id": call.id, "name": call.name, "input": {}})
        self._delta(out, {"type": "input_json_delta", "partial_json": orjson.dumps(call.args).decode()})
        self._close(out)
        self._tool_uses += 1

    # -- chunks ---------------------------------------------------------------------------------------------

    def _message_start(self, out: list[Event]) -> None:
        self._started = True
        usage = usage_from_gemini(self._meta)
        usage["output_tokens"] = 0
        out.append(("message_start", {"type": "message_start", "message": {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self._model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage}}))
        out.append(("ping", {"type": "ping"}))

    def feed(self, chunk: Any) -> list[Event]:
        """Events for one Gemini chunk (possibly none)."""
        if not isinstance(chunk, dict):
            raise _failure("the upstream sent a stream event that is not a JSON object")
        error = chunk.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            status = code if isinstance(code, int) and code >= 400 else 502
            raise UpstreamStreamError(status, chunk if isinstance(error, dict) else
                                      {"error": {"code": status, "message": str(error)}})
        if isinstance(chunk.get("usageMetadata"), dict):
            self._meta = chunk["usageMetadata"]
        out: list[Event] = []
        if not self._started:
            self._message_start(out)
        if self._reason is not None:
            return out
        candidates = chunk.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            feedback = chunk.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self._blocked = True
                self._reason = str(feedback["blockReason"])
            return out
        candidate = candidates[0] if isinstance(candidates[0], dict) else {}
        for event in self._reader.read(candidate):
            if isinstance(event, Text):
                self._text(out, event)
            elif isinstance(event, Thought):
                self._thought(out, event)
            elif isinstance(event, ToolCall):
                self._tool_use(out, event)
        if candidate.get("finishReason"):
            self._reason = str(candidate["finishReason"])
        return out

    def stop_reason(self) -> str:
        if self._tool_uses:
            return "tool_use"
        if self._reason == "MAX_TOKENS":
            return "max_tokens"
        if self._blocked or self._reason in CONTENT_FILTER_REASONS:
            return "refusal"
        return "end_turn"

    def finish(self, *, require_reason: bool = True) -> list[Event]:
        """The closing events after the upstream ended cleanly; raises when a stream never finished."""
        if self._reason is None and require_reason:
            raise _failure("upstream stream ended without a finish reason")
        out: list[Event] = []
        if not self._started:
            self._message_start(out)
        self._close(out)
        out.append(("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": self.stop_reason(), "stop_sequence": None},
                                      "usage": usage_from_gemini(self._meta)}))
        out.append(("message_stop", {"type": "message_stop"}))
        return out
