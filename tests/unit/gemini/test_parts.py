"""The one reader of a Gemini candidate's parts, over recorded traffic (tests/fixtures/gemini/SOURCES.md)."""

from __future__ import annotations

import base64
import itertools
from typing import Any

from app.gemini.parts import (
    CONTENT_FILTER_REASONS,
    Event,
    FileRef,
    Media,
    PartReader,
    Text,
    Thought,
    ToolCall,
    answer_text,
    block_refusal,
    candidate_parts,
    finish_refusal,
    output_media,
)
from tests.unit.protocols.openai_chat.fixture_support import response_json, stream_chunks


def minter(prefix: str = "id_") -> Any:
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"


def read_stream(name: str, reader: PartReader | None = None) -> list[list[Event]]:
    """The reader's values per recorded chunk (first candidate)."""
    reader = reader or PartReader(minter())
    return [reader.read(chunk["candidates"][0]) for chunk in stream_chunks(name) if chunk.get("candidates")]


def flat(per_chunk: list[list[Event]]) -> list[Event]:
    return [event for events in per_chunk for event in events]


# -- tool loops with thought signatures ----------------------------------------------------------------------


def test_streamed_signed_call_then_trailing_empty_text() -> None:
    name = "native/stream-sse__function-call-thoughtSignature__gemini-3-pro__turn1__raw-body__pydantic-ai.sse"
    signature = stream_chunks(name)[0]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    events = read_stream(name)
    # Gemini gave no id: the protocol's minter makes one; the signature stays on the call it rode on.
    assert events == [[ToolCall("id_1", "get_country", {}, signature)], [Text("", None)]]


def test_vertex_thought_then_parallel_calls_reassembled_only_first_signed() -> None:
    name = "vertex/stream-chunks__thought-then-parallel-calls-partialArgs__gemini-3-flash__vercel-ai.jsonl"
    events = flat(read_stream(name))
    assert isinstance(events[0], Thought) and events[0].text.startswith("**Processing User Requests**")
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [(c.name, c.args) for c in calls] == [("read_theme", {}), ("read_screen", {"id": "A"}),
                                                 ("read_screen", {"id": "B"}), ("read_screen", {"id": "C"})]
    assert calls[0].signature and all(c.signature is None for c in calls[1:])
    assert [c.id for c in calls] == ["id_1", "id_2", "id_3", "id_4"]
    assert events[-1] == Text("", None)


def test_an_open_streamed_call_is_closed_by_the_finish_reason() -> None:
    reader = PartReader(minter())
    assert reader.read({"content": {"parts": [{"functionCall": {"name": "f", "willContinue": True}}]}}) == []
    closing = {"content": {"parts": []}, "finishReason": "STOP"}
    assert reader.read(closing) == [ToolCall("id_1", "f", {}, None)]


def test_a_whole_answer_closes_open_calls_when_final() -> None:
    reader = PartReader(minter())
    candidate = {"content": {"parts": [{"functionCall": {"name": "f", "willContinue": True}}]}}
    assert reader.read(candidate, final=True) == [ToolCall("id_1", "f", {}, None)]


def test_non_stream_signed_call() -> None:
    response = response_json("native/generate__function-call__gemini-3-pro__vercel-ai.json")
    part = response["candidates"][0]["content"]["parts"][0]
    events = PartReader(minter()).read(response["candidates"][0], final=True)
    assert events == [ToolCall("id_1", part["functionCall"]["name"], part["functionCall"]["args"],
                               part["thoughtSignature"])]


def test_call_ids_keep_geminis_unless_empty_or_already_used_in_the_answer() -> None:
    used: set[str] = set()
    first, second = PartReader(minter("a"), used), PartReader(minter("b"), used)
    parts = [{"functionCall": {"name": "f", "id": "g1"}}, {"functionCall": {"name": "f", "id": ""}},
             {"functionCall": {"name": "f", "id": "g1"}}, {"functionCall": {"name": "f", "args": [1]}}]
    assert [c.id for c in first.read_parts(parts)] == ["g1", "a1", "a2", "a3"]
    # the readers of one answer's candidates share the ids already given
    assert [c.id for c in second.read_parts([{"functionCall": {"name": "f", "id": "g1"}}])] == ["b1"]
    assert first.read_parts(parts[3:])[0].args == {}  # args that are not an object count as none


# -- thoughts, text and signatures ---------------------------------------------------------------------------


def test_thinking_stream_thought_then_text_then_signed_empty_text() -> None:
    name = "native/stream-json-array__thinking__gemini-flash-latest__decoded-body__llm-gemini.txt"
    signature = stream_chunks(name)[-1]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    events = flat(read_stream(name))
    assert [type(e) for e in events] == [Thought, Text, Text]
    assert events[1] == Text("Scoop", None)
    assert events[2] == Text("", signature)  # the trailing empty part signs the answer before it


def test_text_with_its_own_signature() -> None:
    response = response_json("native/generate__text-with-thoughtSignature__gemini-3-pro__vercel-ai.json")
    part = response["candidates"][0]["content"]["parts"][0]
    expected = [Text(part["text"], part["thoughtSignature"])]
    assert PartReader(minter()).read(response["candidates"][0]) == expected


def test_thoughts_and_answer_of_a_whole_response() -> None:
    name = "native/generate__thinking-includeThoughts-multiturn__gemini-3-pro__pydantic-ai.yaml"
    response = response_json(name)
    events = PartReader(minter()).read(response["candidates"][0], final=True)
    parts = response["candidates"][0]["content"]["parts"]
    assert [type(e) for e in events] == [Thought if p.get("thought") else Text for p in parts]
    assert "".join(e.text for e in events if isinstance(e, Text)) == answer_text(parts)


def test_thought_media_is_a_draft_and_a_signature_only_thought_keeps_its_signature() -> None:
    parts = [{"thought": True, "inlineData": {"mimeType": "image/png", "data": "AA=="}},
             {"thought": True, "thoughtSignature": "sig"}, {"thought": True}]
    assert PartReader(minter()).read_parts(parts) == [Thought("", "sig")]


# -- code execution ------------------------------------------------------------------------------------------


def test_streamed_code_execution_becomes_fenced_text_on_its_own_lines() -> None:
    name = "native/stream-sse__code-execution-signed__gemini-3-flash__pydantic-ai.yaml"
    first = stream_chunks(name)[0]["candidates"][0]["content"]["parts"][0]
    events = flat(read_stream(name))
    assert events[0] == Text("```python\nresult = 65465 - 6544 * 65464 - 6 + 1.02255\nprint(result)\n```\n",
                             first["thoughtSignature"])
    assert events[1] == Text("", None)
    assert events[2] == Text("```output\n-428330955.97745\n```\n", None)
    assert "".join(e.text for e in events if isinstance(e, Text)).endswith("is **-428,330,955.97745**.")


def test_code_blocks_start_a_line_also_after_text_of_an_earlier_chunk() -> None:
    reader = PartReader(minter())
    assert reader.read({"content": {"parts": [{"text": "Let me run it."}]}}) == [Text("Let me run it.", None)]
    code = {"executableCode": {"language": "LANGUAGE_UNSPECIFIED", "code": "x\n\n"}}
    assert reader.read({"content": {"parts": [code]}}) == [Text("\n```\nx\n```\n", None)]
    thought = {"thought": True, "codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1\n"}}
    assert reader.read({"content": {"parts": [thought]}}) == [Thought("```output\n1\n```\n", None)]


def test_whole_code_execution_answer_keeps_each_signature_on_its_part() -> None:
    response = response_json("native/generate__code-execution-signed__gemini-3-flash__pydantic-ai.yaml")
    parts = response["candidates"][0]["content"]["parts"]
    events = PartReader(minter()).read(response["candidates"][0], final=True)
    assert len(events) == len(parts) and all(isinstance(e, Text) for e in events)
    assert [e.signature for e in events] == [p.get("thoughtSignature") for p in parts]
    assert [e.text.lstrip("\n").split("\n", 1)[0] for e in events][:4] == [
        "```python", "```output", "```python", "```output"]
    assert events[-1].text == parts[-1]["text"]


# -- media ---------------------------------------------------------------------------------------------------


def test_streamed_image_keeps_its_signature() -> None:
    name = "native/stream-sse__image-thoughtSignature-then-empty-STOP__gemini-3-pro-image__vercel-ai.sse"
    image = Media("image/jpeg", "AA==", "live-image-thought-signature")
    assert read_stream(name) == [[image], [Text("", None)]]


def test_speech_audio_and_file_references() -> None:
    # No small public recording of a TTS answer exists: this is the shape Gemini's TTS models answer with
    # (README, media routes: 24 kHz 16-bit mono PCM in inlineData).
    pcm = base64.b64encode(b"\x00\x01" * 8).decode()
    parts = [{"inlineData": {"mimeType": "audio/L16;codec=pcm;rate=24000", "data": pcm}},
             {"fileData": {"mimeType": "video/mp4", "fileUri": "https://example.test/v.mp4"}}]
    assert PartReader(minter()).read_parts(parts) == [
        Media("audio/L16;codec=pcm;rate=24000", pcm, None),
        FileRef("video/mp4", "https://example.test/v.mp4")]
    assert output_media(parts) == [Media("audio/L16;codec=pcm;rate=24000", pcm, None)]


# -- odd shapes, endings -------------------------------------------------------------------------------------


def test_candidates_without_parts_read_as_nothing() -> None:
    names = ("native/generate__finish-MAX_TOKENS-no-parts-thinking-ate-budget__gemini-2.5-pro__pydantic-ai.yaml",
             "native/generate__finish-SAFETY-empty-content__gemini-1.5-flash__pydantic-ai.yaml")
    for name in names:
        candidate = response_json(name)["candidates"][0]
        assert candidate_parts(candidate) == []
        assert PartReader(minter()).read(candidate, final=True) == []
    assert candidate_parts(None) == [] and candidate_parts({"content": {"parts": "x"}}) == []


def test_refusal_words_from_recorded_blocks() -> None:
    safety = "native/generate__finish-SAFETY-empty-content__gemini-1.5-flash__pydantic-ai.yaml"
    candidate = response_json(safety)["candidates"][0]
    assert candidate["finishReason"] in CONTENT_FILTER_REASONS
    assert finish_refusal(candidate).startswith("Gemini stopped the response: SAFETY (HARM_CATEGORY_")
    armor = "vertex/generate__promptFeedback-blockReason-MODEL_ARMOR__vertex__pydantic-ai.yaml"
    feedback = response_json(armor, 1)["promptFeedback"]  # interaction 0 is Vertex's OAuth exchange
    assert block_refusal(feedback).startswith("Gemini blocked the prompt: MODEL_ARMOR. ")
