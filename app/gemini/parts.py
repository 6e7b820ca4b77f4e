"""What a Gemini candidate says, read once for every protocol (docs/architecture.md, "Parts of a candidate").

:class:`PartReader` turns a candidate's ``content.parts`` (a whole answer, or one stream chunk after another)
into a few typed values: :class:`Text`, :class:`Thought`, :class:`ToolCall`, :class:`Media`, :class:`FileRef`.
The Gemini facts live here and nowhere else:

* A part is a thought when it carries ``thought: true``. Thought text is a :class:`Thought`; so is thought
  code (code the model ran while thinking and usually runs again in the answer). Thought media (the interim
  drafts of an image model) is not output and is skipped.
* ``thoughtSignature`` stays with the part it rode on: a text part's signs that text; an empty text part
  (Gemini 3 sends one last) is ``Text("", signature)`` and signs the answer before it; a function call's is
  the call's. Only the first of parallel calls is signed; the others carry ``None``.
* ``executableCode``/``codeExecutionResult`` become Markdown fenced blocks in the text (every text protocol
  shows them so), each starting on its own line, also when the text before it arrived in another chunk.
* Function calls come out whole, Vertex's streamed argument pieces reassembled; a finishReason closes a call
  still open. A call keeps Gemini's ``id`` when it is non-empty and not used yet in this answer, else it gets
  one from the protocol's ``mint`` (the prefix is the protocol's: its request side recognises its own ids).

Hot path: one reader per candidate per stream, a list per chunk and one small tuple per part; nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from app.gemini.assemble import PartialCalls

__all__ = [
    "CONTENT_FILTER_REASONS",
    "Event",
    "FileRef",
    "Media",
    "PartReader",
    "Text",
    "Thought",
    "ToolCall",
    "answer_text",
    "block_refusal",
    "candidate_parts",
    "finish_refusal",
    "output_media",
]

#: finishReasons meaning Gemini withheld or cut the content on policy grounds.
CONTENT_FILTER_REASONS = frozenset({
    "SAFETY", "RECITATION", "LANGUAGE", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "NO_IMAGE",
})


class Text(NamedTuple):
    """Answer text (code execution included, as fenced blocks); ``text`` may be "" when only signed."""

    text: str
    signature: str | None


class Thought(NamedTuple):
    """Thought-summary text (or thought code, fenced)."""

    text: str
    signature: str | None


class ToolCall(NamedTuple):
    """One complete function call; ``id`` is Gemini's or freshly minted, unique within the answer."""

    id: str
    name: str
    args: dict[str, Any]
    signature: str | None


class Media(NamedTuple):
    """Output bytes (``inlineData``): an image, audio; ``data`` is Gemini's base64 as sent."""

    mime: str
    data: str
    signature: str | None


class FileRef(NamedTuple):
    """Output by reference (``fileData``)."""

    mime: str
    uri: str


Event = Text | Thought | ToolCall | Media | FileRef

_NO_LANGUAGE = "language_unspecified"
_new = tuple.__new__  # builds a Text/Thought without the Python-level NamedTuple constructor (hot path)


def _signature(part: dict[str, Any]) -> str | None:
    value = part.get("thoughtSignature")
    return value if isinstance(value, str) and value else None


def candidate_parts(candidate: Any) -> list[Any]:
    """The candidate's parts; [] for the shapes without any (``content`` absent, ``{}``, no ``parts``)."""
    content = candidate.get("content") if isinstance(candidate, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


def answer_text(parts: list[Any]) -> str:
    """The plain answer text of ``parts``: text parts joined, thoughts left out, nothing rendered."""
    return "".join(p["text"] for p in parts
                   if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought"))


def _fenced(part: dict[str, Any], lead: bool) -> str:
    if "executableCode" in part:
        block = part["executableCode"] or {}
        language = str(block.get("language") or "").lower()
        language = "" if language == _NO_LANGUAGE else language
        body = str(block.get("code") or "")
    else:
        block = part["codeExecutionResult"] or {}
        language = "output"
        body = str(block.get("output") or "")
    return ("\n" if lead else "") + f"```{language}\n{body.rstrip()}\n```\n"


class PartReader:
    """Reads one candidate's parts, chunk after chunk (or once for a whole answer).

    ``mint`` makes a call id when Gemini gave none (or a duplicate); ``used`` is the set of ids already
    given in this answer, shared by the readers of every candidate of one response.
    """

    __slots__ = ("_calls", "_mint", "_used", "_text_at_line", "_thought_at_line")

    def __init__(self, mint: Callable[[], str], used: set[str] | None = None) -> None:
        self._calls: PartialCalls | None = None     # made on the first call: most answers have none
        self._mint = mint
        self._used = used
        self._text_at_line = True      # the answer text so far ends a line (a fenced block may start here)
        self._thought_at_line = True

    def read(self, candidate: dict[str, Any], *, final: bool = False) -> list[Event]:
        """The values of this candidate's parts, in order; calls still open are closed by a finishReason
        (or ``final``: the whole answer has been read)."""
        out: list[Event] = []
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict):
                continue
            # Text first and inline: it is nearly every part of every stream chunk (docs: hot path).
            text = part.get("text")
            if isinstance(text, str):
                signature = part.get("thoughtSignature")
                signature = signature if isinstance(signature, str) and signature else None
                if part.get("thought"):
                    if text:
                        self._thought_at_line = text[-1] == "\n"
                    out.append(_new(Thought, (text, signature)))
                else:
                    if text:
                        self._text_at_line = text[-1] == "\n"
                    out.append(_new(Text, (text, signature)))
            else:
                self._other(part, out)
        if self._calls is not None and (final or candidate.get("finishReason")):
            for call, signature in self._calls.flush():
                out.append(self._call(call, signature))
        return out

    def read_parts(self, parts: list[Any], *, final: bool = False) -> list[Event]:
        """The values of bare ``parts`` (not wrapped in a candidate)."""
        return self.read({"content": {"parts": parts}}, final=final)

    def _other(self, part: dict[str, Any], out: list[Event]) -> None:
        if "functionCall" in part:
            if self._calls is None:
                self._calls = PartialCalls()
            for call, signature in self._calls.feed(part):
                out.append(self._call(call, signature))
        elif "executableCode" in part or "codeExecutionResult" in part:
            if part.get("thought"):
                out.append(Thought(_fenced(part, not self._thought_at_line), _signature(part)))
                self._thought_at_line = True
            else:
                out.append(Text(_fenced(part, not self._text_at_line), _signature(part)))
                self._text_at_line = True
        elif part.get("thought"):
            if (signature := _signature(part)) is not None:
                out.append(Thought("", signature))
        elif isinstance(blob := part.get("inlineData"), dict):
            out.append(Media(str(blob.get("mimeType") or ""), str(blob.get("data") or ""), _signature(part)))
        elif isinstance(ref := part.get("fileData"), dict):
            out.append(FileRef(str(ref.get("mimeType") or ""), str(ref.get("fileUri") or "")))

    def _call(self, call: dict[str, Any], signature: str | None) -> ToolCall:
        if self._used is None:
            self._used = set()
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id or call_id in self._used:
            call_id = self._mint()
        self._used.add(call_id)
        args = call.get("args")
        name = str(call.get("name") or "")
        return ToolCall(call_id, name, args if isinstance(args, dict) else {}, signature)


def _no_id() -> str:
    return ""


def output_media(parts: list[Any]) -> list[Media]:
    """The output media of a whole answer's ``parts``, by the reader's rule (thought drafts left out)."""
    return [e for e in PartReader(_no_id).read_parts(parts) if isinstance(e, Media)]


def _blocked_categories(ratings: Any) -> list[str]:
    if not isinstance(ratings, list):
        return []
    return [str(r.get("category")) for r in ratings
            if isinstance(r, dict) and r.get("blocked") and r.get("category")]


def _refusal(lead: str, reason: Any, ratings: Any, message: Any) -> str:
    text = f"{lead}: {reason}"
    categories = _blocked_categories(ratings)
    if categories:
        text += f" ({', '.join(categories)})"
    if isinstance(message, str) and message:
        text += f". {message}"
    return text


def finish_refusal(candidate: dict[str, Any]) -> str:
    """Why Gemini stopped a candidate with a content-filter reason, in words for the client."""
    return _refusal("Gemini stopped the response", candidate.get("finishReason"), candidate.get("safetyRatings"),
                    candidate.get("finishMessage"))


def block_refusal(feedback: dict[str, Any]) -> str:
    """Why Gemini refused the prompt (no candidates, ``promptFeedback.blockReason``)."""
    return _refusal("Gemini blocked the prompt", feedback.get("blockReason"), feedback.get("safetyRatings"),
                    feedback.get("blockReasonMessage"))
