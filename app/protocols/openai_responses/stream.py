"""Gemini stream chunks -> the Responses SSE event sequence (docs/architecture.md, Wire notes).

``response.created`` and ``response.in_progress`` first, then each output item in turn (items never
interleave): added, its deltas, its done events; then exactly one terminal event. Every event has a
``sequence_number`` counting from 0. Thought text opens a ``reasoning`` item (summary events); a signed
function call gets its signature on the reasoning item before it (or on a signature-only one); a text
signature that arrives at the end goes on a trailing signature-only reasoning item. Parts are read by
:class:`app.gemini.parts.PartReader`, which hands over whole calls, so each call item gets one
arguments delta. A stream without a finish reason, or an error after the commit, ends with ``error`` +
``response.failed``, never with ``response.completed``.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.gemini.parts import Text, Thought, ToolCall
from app.protocols.openai_chat.errors import UpstreamStreamError
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

__all__ = ["ResponseStream", "sse", "whole_items"]

NO_FINISH = "the upstream stream ended without a finish reason"


def sse(event: dict[str, Any]) -> bytes:
    """One SSE event: ``event:`` line, one-line JSON ``data:``, blank line."""
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


class ResponseStream:
    """Stateful translator for one stream: :meth:`start`, :meth:`feed` every chunk, then :meth:`finish`."""

    def __init__(self, base: dict[str, Any], tools: ToolSet, *, summaries: bool = True) -> None:
        self.response = dict(base)
        self._tools = tools
        self._summaries = summaries
        self._seq = 0
        self._output: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None   # the item being streamed
        self._text: list[str] = []                  # the open item's text (summary or output_text)
        self._reader = part_reader()
        self._text_signature: str | None = None
        self._candidate: dict[str, Any] | None = None
        self._feedback: Any = None
        self._usage_meta: Any = None
        self.signatures: dict[str, str] = {}
        self.text_parts: list[str] = []

    # -- events -------------------------------------------------------------------------------------------

    def _ev(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event

    def start(self) -> list[dict[str, Any]]:
        snapshot = {**self.response, "output": []}
        return [self._ev("response.created", response=snapshot),
                self._ev("response.in_progress", response=snapshot)]

    def _index(self) -> int:
        return len(self._output)

    def _open_item(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        self._open = item
        self._text = []
        return [self._ev("response.output_item.added", output_index=self._index(), item=dict(item))]

    def _close(self) -> list[dict[str, Any]]:
        item, self._open = self._open, None
        if item is None:
            return []
        index, item_id, text = self._index(), item["id"], "".join(self._text)
        events: list[dict[str, Any]] = []
        if item["type"] == "reasoning":
            if item["summary"]:
                part = {"type": "summary_text", "text": text}
                item["summary"] = [part]
                events += [self._ev("response.reasoning_summary_text.done", item_id=item_id, output_index=index,
                                    summary_index=0, text=text),
                           self._ev("response.reasoning_summary_part.done", item_id=item_id,
                                    output_index=index, summary_index=0, part=part)]
        elif item["type"] == "message":
            annotations = citations(text, (self._candidate or {}).get("groundingMetadata"))
            for n, annotation in enumerate(annotations):
                events.append(self._ev("response.output_text.annotation.added", item_id=item_id,
                                       output_index=index, content_index=0, annotation_index=n,
                                       annotation=annotation))
            part = {"type": "output_text", "text": text, "annotations": annotations, "logprobs": []}
            item["content"] = [part]
            item["status"] = "completed"
            events += [self._ev("response.output_text.done", item_id=item_id, output_index=index,
                                content_index=0, text=text, logprobs=[]),
                       self._ev("response.content_part.done", item_id=item_id, output_index=index,
                                content_index=0, part=part)]
        events.append(self._ev("response.output_item.done", output_index=index, item=item))
        self._output.append(item)
        return events

    def _thought(self, text: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if self._open is None or self._open["type"] != "reasoning":
            events += self._close()
            item = {"type": "reasoning", "id": new_id("rs"), "summary": []}
            events += self._open_item(item)
        item = self._open
        assert item is not None
        if not self._summaries or not text:
            self._text.append(text)
            return events
        if not item["summary"]:
            item["summary"] = [{"type": "summary_text", "text": ""}]
            events.append(self._ev("response.reasoning_summary_part.added", item_id=item["id"],
                                   output_index=self._index(), summary_index=0,
                                   part={"type": "summary_text", "text": ""}))
        self._text.append(text)
        events.append(self._ev("response.reasoning_summary_text.delta", item_id=item["id"],
                               output_index=self._index(), summary_index=0, delta=text))
        return events

    def _visible(self, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        events: list[dict[str, Any]] = []
        if self._open is None or self._open["type"] != "message":
            events += self._close()
            item = {"type": "message", "id": new_id("msg"), "role": "assistant", "status": "in_progress",
                    "content": []}
            events += self._open_item(item)
            events.append(self._ev("response.content_part.added", item_id=item["id"], output_index=self._index(),
                                   content_index=0, part={"type": "output_text", "text": "", "annotations": [],
                                                          "logprobs": []}))
        assert self._open is not None
        self._text.append(text)
        self.text_parts.append(text)
        return events + [self._ev("response.output_text.delta", item_id=self._open["id"],
                                  output_index=self._index(), content_index=0, delta=text, logprobs=[])]

    def _signature_carrier(self, signatures: dict[str, str]) -> list[dict[str, Any]]:
        """Put ``signatures`` on the open reasoning item, else on a signature-only one of its own."""
        if self._open is not None and self._open["type"] == "reasoning":
            self._open["encrypted_content"] = encode_signatures(signatures)
            return self._close()
        events = self._close()
        item = {"type": "reasoning", "id": new_id("rs"), "summary": [],
                "encrypted_content": encode_signatures(signatures)}
        return events + self._open_item(item) + self._close()

    def _call(self, call: ToolCall) -> list[dict[str, Any]]:
        item = call_item(call, self._tools)
        events: list[dict[str, Any]] = []
        if call.signature:
            self.signatures[call.id] = call.signature
            events += self._signature_carrier({call.id: call.signature})
        else:
            events += self._close()
        index, item_id = self._index(), item["id"]
        if item["type"] == "function_call":
            events += self._open_item({**item, "arguments": "", "status": "in_progress"})
            events += [self._ev("response.function_call_arguments.delta", item_id=item_id, output_index=index,
                                delta=item["arguments"]),
                       self._ev("response.function_call_arguments.done", item_id=item_id, output_index=index,
                                name=item["name"], arguments=item["arguments"])]
        elif item["type"] == "custom_tool_call":
            events += self._open_item({**item, "input": "", "status": "in_progress"})
            events += [self._ev("response.custom_tool_call_input.delta", item_id=item_id, output_index=index,
                                delta=item["input"]),
                       self._ev("response.custom_tool_call_input.done", item_id=item_id, output_index=index,
                                input=item["input"])]
        else:
            events += self._open_item({**item, "status": "in_progress"})
        self._open = item
        return events + self._close()

    # -- input ---------------------------------------------------------------------------------------------

    def feed(self, chunk: Any) -> list[dict[str, Any]]:
        """Events for one Gemini chunk; an ``{"error": ...}`` chunk raises UpstreamStreamError."""
        if not isinstance(chunk, dict):
            raise UpstreamStreamError(502, {"error": {"code": 502, "message": "unreadable upstream event"}})
        if chunk.get("error") is not None:
            error = chunk["error"]
            code = error.get("code") if isinstance(error, dict) else None
            raise UpstreamStreamError(code if isinstance(code, int) else 500, chunk)
        if chunk.get("usageMetadata") is not None:
            self._usage_meta = chunk["usageMetadata"]
        if chunk.get("promptFeedback") is not None:
            self._feedback = chunk["promptFeedback"]
        candidates = chunk.get("candidates") or []
        candidate = candidates[0] if candidates and isinstance(candidates[0], dict) else None
        if candidate is None:
            return []
        if self._candidate is None:
            self._candidate = {}
        for key in ("finishReason", "finishMessage", "safetyRatings", "groundingMetadata"):
            if candidate.get(key) is not None:
                self._candidate[key] = candidate[key]
        events: list[dict[str, Any]] = []
        for event in self._reader.read(candidate):
            if isinstance(event, Text):
                events += self._visible(event.text)
                if event.signature:
                    self._text_signature = event.signature
            elif isinstance(event, Thought):
                events += self._thought(event.text)
            elif isinstance(event, ToolCall):
                events += self._call(event)
        return events

    def _ending(self) -> Ending:
        if self._candidate is None or "finishReason" not in self._candidate:
            if self._candidate is None and self._feedback:
                return ending(None, self._feedback)
            return Ending("failed", error={"code": "server_error", "message": NO_FINISH})
        return ending(self._candidate, self._feedback)

    def finish(self) -> list[dict[str, Any]]:
        """Close the open item and send the terminal event (completed, incomplete or failed)."""
        end = self._ending()
        if end.status == "failed":
            return self.fail(end.error["code"] if end.error else "server_error",
                             end.error["message"] if end.error else NO_FINISH)
        events = self._close()
        if self._text_signature:
            events += self._signature_carrier({TEXT_KEY: self._text_signature})
        if end.refusal and not self.text_parts:
            item = {"type": "message", "id": new_id("msg"), "role": "assistant", "status": "completed",
                    "content": [{"type": "refusal", "refusal": end.refusal}]}
            events += self._open_item({**item, "content": []})
            self._open = item
            events += self._close()
        elif not any(i["type"] != "reasoning" for i in self._output):
            events += self._empty_message()
        self.response.update(end.fields(), output=self._output, usage=usage_from_gemini(self._usage_meta))
        kind = "response.completed" if end.status == "completed" else "response.incomplete"
        return events + [self._ev(kind, response=self.response)]

    def _empty_message(self) -> list[dict[str, Any]]:
        item = {"type": "message", "id": new_id("msg"), "role": "assistant", "status": "in_progress",
                "content": []}
        events = self._open_item(item)
        events.append(self._ev("response.content_part.added", item_id=item["id"], output_index=self._index(),
                               content_index=0, part={"type": "output_text", "text": "", "annotations": [],
                                                      "logprobs": []}))
        return events + self._close()

    def fail(self, code: str, message: str, type_: str = "server_error") -> list[dict[str, Any]]:
        """``error`` then ``response.failed``: the honest end of a stream that broke after the commit."""
        self._open = None
        self.response.update(status="failed", error={"code": code, "message": message}, output=self._output,
                             incomplete_details=None, usage=usage_from_gemini(self._usage_meta))
        error = {"type": type_, "code": code, "message": message, "param": None}
        return [self._ev("error", code=code, message=message, param=None, error=error),
                self._ev("response.failed", response=self.response)]

    @property
    def text(self) -> str:
        return "".join(self.text_parts)


def whole_items(base: dict[str, Any], items: list[dict[str, Any]], usage: dict[str, Any]) -> list[dict[str, Any]]:
    """A complete stream for items known in advance (a compaction): added/done per item, then completed."""
    stream = ResponseStream(base, ToolSet())
    events = stream.start()
    for item in items:
        events += stream._open_item(item)
        events += stream._close()
    stream.response.update(status="completed", output=stream._output, usage=usage)
    return events + [stream._ev("response.completed", response=stream.response)]
