"""A whole Gemini answer -> one Anthropic Message, by assembling the stream translator's events.

Going through :class:`.stream.MessageStream` keeps one set of rules for blocks, signatures and stop reasons.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.protocols.anthropic.stream import Event, MessageStream

__all__ = ["assemble", "message_from_gemini"]


def assemble(events: list[Event]) -> dict[str, Any]:
    """The Message an Anthropic SDK would accumulate from ``events``."""
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    for name, data in events:
        if name == "message_start":
            message = {**data["message"], "content": []}
        elif name == "content_block_start":
            message["content"].append(dict(data["content_block"]))
        elif name == "content_block_delta":
            block, delta = message["content"][data["index"]], data["delta"]
            kind = delta["type"]
            if kind == "text_delta":
                block["text"] += delta["text"]
            elif kind == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif kind == "signature_delta":
                block["signature"] = delta["signature"]
            elif kind == "input_json_delta":
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
        elif name == "content_block_stop" and data["index"] in partial:
            text = partial.pop(data["index"])
            message["content"][data["index"]]["input"] = orjson.loads(text) if text else {}
        elif name == "message_delta":
            message.update(data["delta"])
            message["usage"] = {**message.get("usage", {}), **data["usage"]}
    return message


def message_from_gemini(response: Any, *, model: str, thinking: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """(Anthropic Message, {tool_use id: Gemini signature} to remember). UpstreamStreamError on an error."""
    stream = MessageStream(model=model, thinking=thinking)
    events = stream.feed(response)
    events += stream.finish(require_reason=False)
    return assemble(events), stream.signatures
