"""Reassembling what Gemini streams in pieces: function calls whose arguments arrive in parts (Vertex
``partialArgs``/``willContinue``), and a whole stream into one GenerateContentResponse (for analytics).
Pure wire knowledge, shared by every protocol."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

__all__ = ["PartialCalls", "assemble_stream"]


_PATH_TOKEN = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def _set_path(target: dict[str, Any], path: str, value: Any, append: bool) -> None:
    """Set ``$.a.b[0]`` in ``target``; strings are appended when ``append`` (streamed string pieces)."""
    keys: list[str | int] = [m.group(1) if m.group(1) is not None else int(m.group(2))
                             for m in _PATH_TOKEN.finditer(path[1:] if path.startswith("$") else path)]
    if not keys:
        return
    node: Any = target
    for key, nxt in pairwise(keys):
        empty: Any = [] if isinstance(nxt, int) else {}
        if isinstance(key, int):
            while len(node) <= key:
                node.append(None)
            if node[key] is None:
                node[key] = empty
            node = node[key]
        else:
            node = node.setdefault(key, empty)
    last = keys[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
        current = node[last]
        node[last] = current + value if append and isinstance(current, str) else value
    else:
        current = node.get(last)
        node[last] = current + value if append and isinstance(current, str) else value


class PartialCalls:
    """Reassembles function calls whose arguments arrive in pieces (Vertex ``partialArgs``/``willContinue``).

    Whole calls (the Gemini API's only shape) pass straight through. A call that opens with ``willContinue``
    collects ``partialArgs`` until an empty ``functionCall`` (or the finish) closes it.
    """

    def __init__(self) -> None:
        self._pending: tuple[dict[str, Any], str | None] | None = None

    def feed(self, part: dict[str, Any]) -> list[tuple[dict[str, Any], str | None]]:
        """Complete (functionCall, signature) pairs released by this part."""
        call = part.get("functionCall")
        if not isinstance(call, dict):
            return []
        signature = part.get("thoughtSignature") if isinstance(part.get("thoughtSignature"), str) else None
        done: list[tuple[dict[str, Any], str | None]] = []
        if call.get("name"):
            done.extend(self.flush())
            whole = {k: v for k, v in call.items() if k not in ("willContinue", "partialArgs")}
            if call.get("willContinue") or call.get("partialArgs"):
                whole.setdefault("args", {})
                self._pending = (whole, signature)
                self._apply(call.get("partialArgs"))
            else:
                done.append((whole, signature))
            return done
        if self._pending is None:
            return done
        self._apply(call.get("partialArgs"))
        if not call.get("willContinue") and not call.get("partialArgs"):
            done.extend(self.flush())
        return done

    def _apply(self, pieces: Any) -> None:
        if self._pending is None or not isinstance(pieces, list):
            return
        args = self._pending[0].setdefault("args", {})
        for piece in pieces:
            if not isinstance(piece, dict) or not isinstance(piece.get("jsonPath"), str):
                continue
            path = piece["jsonPath"]
            if "stringValue" in piece:
                _set_path(args, path, str(piece["stringValue"]), append=True)
            elif "numberValue" in piece:
                _set_path(args, path, piece["numberValue"], append=False)
            elif "boolValue" in piece:
                _set_path(args, path, bool(piece["boolValue"]), append=False)
            elif "nullValue" in piece:
                _set_path(args, path, None, append=False)

    def flush(self) -> list[tuple[dict[str, Any], str | None]]:
        """Release a call still open (the finish closes it)."""
        if self._pending is None:
            return []
        pending, self._pending = self._pending, None
        return [pending]


def _merge_part(parts: list[dict[str, Any]], part: dict[str, Any]) -> None:
    """Append ``part``, joining text onto a previous text part of the same kind (thought or not).

    Two signatures are never merged into one part; otherwise the result has the shape of a non-stream
    answer (one text part, signed once), which is what analytics wants to see.
    """
    if isinstance(part.get("text"), str) and parts:
        last = parts[-1]
        if (isinstance(last.get("text"), str) and bool(last.get("thought")) == bool(part.get("thought"))
                and not ("thoughtSignature" in last and "thoughtSignature" in part)):
            last["text"] += part["text"]
            if "thoughtSignature" in part:
                last["thoughtSignature"] = part["thoughtSignature"]
            return
    if part.get("text") == "" and "thoughtSignature" not in part:
        return
    parts.append(dict(part))


_CANDIDATE_KEYS = ("finishReason", "finishMessage", "safetyRatings", "citationMetadata", "groundingMetadata")


def assemble_stream(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """One GenerateContentResponse from a stream's chunks (for analytics).

    Per candidate: text joined (thought and answer text kept apart, parts in order), streamed function-call
    pieces reassembled, the last finishReason/finishMessage/safetyRatings; the last usageMetadata;
    ``modelVersion``/``responseId``/``promptFeedback`` as last seen. Error chunks are skipped.
    """
    merged: dict[int, dict[str, Any]] = {}
    assemblers: dict[int, PartialCalls] = {}
    out: dict[str, Any] = {}
    for chunk in chunks:
        if not isinstance(chunk, dict) or "error" in chunk:
            continue
        for key in ("usageMetadata", "modelVersion", "responseId", "promptFeedback"):
            if chunk.get(key) is not None:
                out[key] = chunk[key]
        candidates = chunk.get("candidates")
        for position, candidate in enumerate(candidates if isinstance(candidates, list) else ()):
            if not isinstance(candidate, dict):
                continue
            raw_index = candidate.get("index")
            index = raw_index if isinstance(raw_index, int) else position
            target = merged.setdefault(index, {"content": {"role": "model", "parts": []}, "index": index})
            assembler = assemblers.setdefault(index, PartialCalls())
            parts = target["content"]["parts"]
            content = candidate.get("content")
            for part in (content.get("parts") or []) if isinstance(content, dict) else ():
                if not isinstance(part, dict):
                    continue
                if "functionCall" in part:
                    for call, signature in assembler.feed(part):
                        whole: dict[str, Any] = {"functionCall": call}
                        if signature:
                            whole["thoughtSignature"] = signature
                        parts.append(whole)
                else:
                    _merge_part(parts, part)
            for key in _CANDIDATE_KEYS:
                if candidate.get(key) is not None:
                    target[key] = candidate[key]
    for index, assembler in assemblers.items():
        for call, signature in assembler.flush():
            merged[index]["content"]["parts"].append(
                {"functionCall": call, **({"thoughtSignature": signature} if signature else {})})
    if merged:
        out["candidates"] = [merged[i] for i in sorted(merged)]
    return out
