"""Recorded Gemini streams (SSE, JSON array, JSONL, replay) -> OpenAI chat.completion.chunk sequences."""

from __future__ import annotations

import json

import pytest

from app.protocols.openai_chat.errors import UpstreamStreamError, gemini_error_to_openai
from app.protocols.openai_chat.ids import is_minted
from app.protocols.openai_chat.response import StreamTranslator, assemble_stream, completion_from_gemini
from app.protocols.openai_chat.sse import DONE, sse_event
from tests.unit.protocols.openai_chat.fixture_support import path, response_json, stream_chunks

CID = "chatcmpl-test"
CREATED = 1_700_000_000


def run(
    chunks: list[dict], include_usage: bool = True, model: str = "client-model"
) -> tuple[list[dict], StreamTranslator]:
    translator = StreamTranslator(
        model=model, created=CREATED, include_usage=include_usage, completion_id=CID
    )
    out: list[dict] = []
    for chunk in chunks:
        out.extend(translator.feed(chunk))
    out.extend(translator.finish())
    return out, translator


def content_chunks(out: list[dict]) -> list[dict]:
    return [c for c in out if c["choices"]]


def joined(out: list[dict], key: str) -> str:
    return "".join(c["choices"][0]["delta"].get(key) or "" for c in content_chunks(out))


def finishes(out: list[dict]) -> list[str]:
    return [c["choices"][0]["finish_reason"] for c in content_chunks(out) if c["choices"][0]["finish_reason"]]


def assert_envelope(out: list[dict], model: str = "client-model") -> None:
    for chunk in out:
        assert chunk["id"] == CID
        assert chunk["created"] == CREATED
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == model
    firsts = content_chunks(out)
    assert firsts[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("role" not in c["choices"][0]["delta"] for c in firsts[1:])
    # the finish reason is on the last content chunk, once
    assert firsts[-1]["choices"][0]["finish_reason"] is not None
    assert all(c["choices"][0]["finish_reason"] is None for c in firsts[:-1])


def test_sse_text_stream_gemini20() -> None:
    chunks = stream_chunks("native/stream-sse__text__gemini-2.0-flash__raw-body__pydantic-ai.sse")
    out, translator = run(chunks)
    assert_envelope(out)
    assert [c["choices"][0]["delta"].get("content") for c in content_chunks(out)] == [
        "The",
        " capital of France",
        " is Paris.\n",
    ]
    assert finishes(out) == ["stop"]
    assert all(c["choices"][0]["index"] == 0 for c in content_chunks(out))  # Gemini 2.0 sends no index
    usage_chunk = out[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 13  # promptTokenCount changed on the last chunk
    assert usage_chunk["usage"]["completion_tokens"] == 8
    assert usage_chunk["usage"]["total_tokens"] == 21
    assert translator.text == "The capital of France is Paris.\n"
    assert translator.finish_reason == "stop"
    assert translator.usage == usage_chunk["usage"]
    assert translator.signatures == {}


def test_without_include_usage_there_is_no_usage_chunk() -> None:
    chunks = stream_chunks("native/stream-sse__text__gemini-2.0-flash__raw-body__pydantic-ai.sse")
    out, translator = run(chunks, include_usage=False)
    assert all(c["choices"] for c in out)
    assert all("usage" not in c for c in out)
    assert translator.usage is not None  # still known for analytics


def test_sse_include_thoughts_stream_gives_reasoning_deltas() -> None:
    chunks = stream_chunks(
        "native/stream-sse__thinking-includeThoughts__gemini-2.5-pro__raw-body__pydantic-ai.sse"
    )
    out, translator = run(chunks)
    assert_envelope(out)
    deltas = [c["choices"][0]["delta"] for c in content_chunks(out)]
    assert all("reasoning_content" in d and "content" not in d for d in deltas[:4])
    assert deltas[0]["reasoning_content"].startswith("**Clarifying User Goals**")
    assert deltas[4]["content"].startswith("This is a great question!")
    thought_text = "".join(
        p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"] if p.get("thought")
    )
    answer_text = "".join(
        p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"] if not p.get("thought")
    )
    assert joined(out, "reasoning_content") == translator.reasoning == thought_text
    assert joined(out, "content") == translator.text == answer_text
    assert finishes(out) == ["stop"]
    assert out[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 787
    assert out[-1]["usage"]["completion_tokens"] == 469 + 787
    assert out[-1]["usage"]["total_tokens"] == 1290
    assert translator.signatures == {}  # the signature rode on a text part


@pytest.mark.parametrize(
    "name",
    [
        "native/stream-sse__function-call-thoughtSignature__gemini-3-pro__turn1__raw-body__pydantic-ai.sse",
        "native/stream-chunks__function-call-then-empty-STOP__gemini-3-pro__vercel-ai.jsonl",
        "native/stream-json-array__function-call-roundtrip__gemini-3-flash__turn1__decoded-body__llm-gemini.txt",
    ],
)
def test_call_then_separate_stop_chunk_ends_in_tool_calls(name: str) -> None:
    chunks = stream_chunks(name)
    assert "finishReason" not in chunks[0]["candidates"][0]  # the call and the STOP come apart
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    out, translator = run(chunks)
    assert_envelope(out)
    first = content_chunks(out)[0]["choices"][0]
    (call,) = first["delta"]["tool_calls"]
    recorded = chunks[0]["candidates"][0]["content"]["parts"][0]
    assert call["index"] == 0
    assert call["type"] == "function"
    assert is_minted(call["id"])
    assert call["function"]["name"] == recorded["functionCall"]["name"]
    assert json.loads(call["function"]["arguments"]) == recorded["functionCall"]["args"]
    assert call["extra_content"]["google"]["thought_signature"] == recorded["thoughtSignature"]
    assert first["finish_reason"] is None
    last = content_chunks(out)[-1]["choices"][0]
    assert last["finish_reason"] == "tool_calls"
    assert last["delta"] == {}  # the trailing empty text is not sent
    assert translator.signatures == {call["id"]: recorded["thoughtSignature"]}
    assert translator.finish_reason == "tool_calls"
    assert translator.text == ""


def test_json_array_argument_order_is_kept() -> None:
    out, _ = run(
        stream_chunks(
            "native/stream-json-array__function-call-roundtrip__gemini-3-flash__turn1__decoded-body__llm-gemini.txt"
        )
    )
    assert (
        content_chunks(out)[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        == '{"y":3,"x":5}'
    )


def test_json_array_second_turn_text_and_last_usage() -> None:
    out, translator = run(
        stream_chunks(
            "native/stream-json-array__function-call-roundtrip__gemini-3-flash__turn2__decoded-body__llm-gemini.txt"
        )
    )
    assert_envelope(out)
    assert translator.text == "5 times 3 is 15."
    assert finishes(out) == ["stop"]
    assert out[-1]["usage"]["prompt_tokens"] == 121
    assert out[-1]["usage"]["total_tokens"] == 130


def test_json_array_thinking_stream_of_latest_alias() -> None:
    out, translator = run(
        stream_chunks("native/stream-json-array__thinking__gemini-flash-latest__decoded-body__llm-gemini.txt")
    )
    assert_envelope(out)
    assert translator.reasoning.startswith("**Considering the Constraint**")
    assert translator.text == "Scoop"
    assert finishes(out) == ["stop"]
    assert out[-1]["usage"]["completion_tokens"] == 2 + 291


@pytest.mark.parametrize(
    "name",
    [
        "native/stream-chunks__text__gemini-3-pro__vercel-ai.jsonl",
        "native/stream-chunks__reasoning__gemini-3-pro__vercel-ai.jsonl",
    ],
)
def test_gemini3_text_stream_with_trailing_signed_empty_text(name: str) -> None:
    chunks = stream_chunks(name)
    out, translator = run(chunks)
    assert_envelope(out)
    expected = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert translator.text == expected == joined(out, "content")
    last = content_chunks(out)[-1]["choices"][0]
    assert last["finish_reason"] == "stop" and last["delta"] == {}
    meta = chunks[-1]["usageMetadata"]
    assert out[-1]["usage"]["completion_tokens"] == meta["candidatesTokenCount"] + meta["thoughtsTokenCount"]


def test_replay_stream_max_tokens() -> None:
    name = "native/stream-sse__finish-MAX_TOKENS-thinkingBudget-50__gemini-2.5-flash__js-genai.json"
    out, translator = run(stream_chunks(name))
    assert_envelope(out)
    assert finishes(out) == ["length"]
    assert translator.text.startswith(
        "The sky is blue primarily due to a phenomenon called **Rayleigh Scattering**."
    )
    assert out[-1]["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 153 + 45,
        "total_tokens": 205,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 45},
    }


@pytest.mark.parametrize(
    "name,n,args",
    [
        (
            "native/stream-sse__function-call-multiturn__gemini-2.0-flash__js-genai.json",
            0,
            {"denominator": 2, "numerator": 100},
        ),
        (
            "native/stream-sse__function-call-multiturn__gemini-2.0-flash__js-genai.json",
            1,
            {"denominator": 2, "numerator": 50},
        ),
        (
            "native/stream-sse__function-calls-multi-turn__gemini-2.0-flash__pydantic-ai.yaml",
            0,
            {"country": "France"},
        ),
        (
            "native/stream-sse__function-calls-multi-turn__gemini-2.0-flash__pydantic-ai.yaml",
            1,
            {"city": "Paris"},
        ),
    ],
)
def test_gemini20_call_and_stop_in_one_chunk(name: str, n: int, args: dict) -> None:
    chunks = stream_chunks(name, n)
    assert len(chunks) == 1
    out, translator = run(chunks)
    assert_envelope(out)
    (only,) = content_chunks(out)
    choice = only["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert json.loads(choice["delta"]["tool_calls"][0]["function"]["arguments"]) == args
    assert translator.signatures == {}  # Gemini 2.0 signs nothing


def test_multi_turn_final_text_stream() -> None:
    out, translator = run(
        stream_chunks("native/stream-sse__function-calls-multi-turn__gemini-2.0-flash__pydantic-ai.yaml", 2)
    )
    assert translator.text == "The temperature in Paris is 30°C.\n"
    assert finishes(out) == ["stop"]


def test_vertex_streamed_argument_pieces_are_reassembled() -> None:
    chunks = stream_chunks(
        "vertex/stream-chunks__partialArgs-streamed-function-args__gemini-3.1-pro__vercel-ai.jsonl"
    )
    out, translator = run(chunks)
    assert_envelope(out)
    calls = [tc for c in content_chunks(out) for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert [(c["index"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        (0, "getWeather", {"location": "Boston"}),
        (1, "getWeather", {"location": "San Francisco"}),
    ]
    assert len({c["id"] for c in calls}) == 2
    assert list(translator.signatures) == [calls[0]["id"]]  # only the first parallel call is signed
    assert finishes(out) == ["tool_calls"]


def test_vertex_thought_then_parallel_calls() -> None:
    chunks = stream_chunks(
        "vertex/stream-chunks__thought-then-parallel-calls-partialArgs__gemini-3-flash__vercel-ai.jsonl"
    )
    out, translator = run(chunks)
    assert_envelope(out)
    assert translator.reasoning.startswith("**Processing User Requests**")
    calls = [tc for c in content_chunks(out) for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert [(c["index"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        (0, "read_theme", {}),
        (1, "read_screen", {"id": "A"}),
        (2, "read_screen", {"id": "B"}),
        (3, "read_screen", {"id": "C"}),
    ]
    assert finishes(out) == ["tool_calls"]
    assert out[-1]["usage"]["prompt_tokens"] == 249


def test_mid_stream_error_chunk_raises_with_google_body() -> None:
    chunks = stream_chunks("reconstructed/stream-sse__midstream-error-after-partial-text.sse")
    translator = StreamTranslator(model="m", created=1, include_usage=False, completion_id=CID)
    sent = translator.feed(chunks[0])
    assert sent[0]["choices"][0]["delta"] == {"role": "assistant", "content": "The first half of an answer"}
    with pytest.raises(UpstreamStreamError) as caught:
        translator.feed(chunks[1])
    assert caught.value.status == 503
    assert caught.value.body == chunks[1]
    status, body = gemini_error_to_openai(caught.value.status, caught.value.body)
    assert status == 503
    assert body["error"]["type"] == "api_error"
    assert "high demand" in body["error"]["message"]


def test_stream_without_finish_reason_raises() -> None:
    chunks = stream_chunks("native/stream-sse__text__gemini-2.0-flash__raw-body__pydantic-ai.sse")[:2]
    translator = StreamTranslator(model="m", created=1, include_usage=True, completion_id=CID)
    for chunk in chunks:
        translator.feed(chunk)
    with pytest.raises(UpstreamStreamError) as caught:
        translator.finish()
    assert caught.value.status == 502
    assert caught.value.body["error"]["message"] == "upstream stream ended without a finish reason"
    assert translator.finish_reason is None
    assert translator.text == "The capital of France"


def test_empty_stream_raises() -> None:
    translator = StreamTranslator(model="m", created=1, include_usage=False, completion_id=CID)
    with pytest.raises(UpstreamStreamError):
        translator.finish()


def test_prompt_blocked_in_a_stream() -> None:
    blocked = response_json(
        "vertex/generate__promptFeedback-blockReason-MODEL_ARMOR__vertex__pydantic-ai.yaml", 1
    )
    out, translator = run([blocked], include_usage=False)
    (chunk,) = out
    choice = chunk["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["delta"]["role"] == "assistant"
    assert choice["delta"]["content"] is None
    assert "MODEL_ARMOR" in choice["delta"]["refusal"]
    assert translator.finish_reason == "content_filter"


def test_safety_stop_mid_answer_keeps_text_and_says_why() -> None:
    out, translator = run(
        [
            {"candidates": [{"content": {"parts": [{"text": "Once upon"}]}, "index": 0}]},
            {
                "candidates": [
                    {
                        "content": {},
                        "finishReason": "SAFETY",
                        "index": 0,
                        "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "blocked": True}],
                    }
                ]
            },
        ],
        include_usage=True,
    )
    last = content_chunks(out)[-1]["choices"][0]
    assert last["finish_reason"] == "content_filter"
    assert last["native_finish_reason"] == "SAFETY"
    assert "HARM_CATEGORY_DANGEROUS_CONTENT" in last["delta"]["refusal"]
    assert translator.text == "Once upon"
    assert out[-1]["usage"]["total_tokens"] == 0  # no usageMetadata anywhere


def test_two_candidates_stream_with_separate_tool_indices() -> None:
    chunk = {
        "candidates": [
            {"index": 0, "content": {"parts": [{"functionCall": {"name": "a", "args": {}}}]}},
            {"index": 1, "content": {"parts": [{"text": "hello"}]}},
        ]
    }
    end = {
        "candidates": [
            {
                "index": 0,
                "content": {"parts": [{"functionCall": {"name": "b", "args": {}}}]},
                "finishReason": "STOP",
            },
            {"index": 1, "content": {"parts": [{"text": ""}]}, "finishReason": "STOP"},
        ]
    }
    out, translator = run([chunk, end], include_usage=False)
    by_choice: dict[int, list[dict]] = {}
    for c in out:
        by_choice.setdefault(c["choices"][0]["index"], []).append(c["choices"][0])
    assert [tc["index"] for c in by_choice[0] for tc in c["delta"].get("tool_calls", [])] == [0, 1]
    assert by_choice[0][0]["delta"]["role"] == "assistant" and by_choice[1][0]["delta"]["role"] == "assistant"
    assert by_choice[0][-1]["finish_reason"] == "tool_calls"
    assert by_choice[1][-1]["finish_reason"] == "stop"
    assert translator.text == ""  # choice 0 only had calls


def test_nothing_after_finish_and_keepalive_chunks_send_nothing() -> None:
    translator = StreamTranslator(model="m", created=1, include_usage=False, completion_id=CID)
    assert translator.feed({"candidates": [{"content": {"parts": [{"text": ""}]}}]}) == []
    assert translator.feed({"usageMetadata": {"promptTokenCount": 3}}) == []
    assert translator.feed({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}]})
    assert (
        translator.feed({"candidates": [{"content": {"parts": [{"text": "late"}]}, "finishReason": "STOP"}]})
        == []
    )
    assert translator.text == "x"
    assert translator.finish() == []


@pytest.mark.parametrize("bad", [[1, 2], "text", None])
def test_non_object_event_is_an_upstream_failure(bad: object) -> None:
    translator = StreamTranslator(model="m", created=1, include_usage=False, completion_id=CID)
    with pytest.raises(UpstreamStreamError) as caught:
        translator.feed(bad)  # type: ignore[arg-type]
    assert caught.value.status == 502


def test_sse_encoding_of_chunks() -> None:
    out, _ = run(stream_chunks("native/stream-sse__text__gemini-2.0-flash__raw-body__pydantic-ai.sse"))
    event = sse_event(out[0])
    assert event.startswith(b"data: {") and event.endswith(b"}\n\n")
    assert json.loads(event[6:]) == out[0]
    assert DONE == b"data: [DONE]\n\n"


# -- assemble_stream ----------------------------------------------------------------------------------------


def test_assemble_thinking_stream() -> None:
    chunks = stream_chunks(
        "native/stream-sse__thinking-includeThoughts__gemini-2.5-pro__raw-body__pydantic-ai.sse"
    )
    merged = assemble_stream(chunks)
    (candidate,) = merged["candidates"]
    thought, answer = candidate["content"]["parts"]
    assert thought["thought"] is True and thought["text"].startswith("**Clarifying User Goals**")
    assert "thought" not in answer and answer["text"].startswith("This is a great question!")
    assert answer["thoughtSignature"].startswith("CiIB0e2Kb6Syj1a961")
    assert candidate["finishReason"] == "STOP"
    assert merged["usageMetadata"] == chunks[-1]["usageMetadata"]
    assert merged["responseId"] == "beHBaJfEMIi-qtsP3769-Q8"
    # a whole response built from the stream says the same as the stream did
    completion, _ = completion_from_gemini(merged, model="m", created=1)
    out, translator = run(chunks)
    assert completion["choices"][0]["message"]["content"] == translator.text
    assert completion["choices"][0]["message"]["reasoning_content"] == translator.reasoning
    assert completion["usage"] == out[-1]["usage"]


def test_assemble_call_stream_keeps_signed_call_and_final_stop() -> None:
    chunks = stream_chunks(
        "native/stream-chunks__function-call-then-empty-STOP__gemini-3-pro__vercel-ai.jsonl"
    )
    merged = assemble_stream(chunks)
    parts = merged["candidates"][0]["content"]["parts"]
    assert parts == [chunks[0]["candidates"][0]["content"]["parts"][0]]  # the empty STOP text adds nothing
    assert merged["candidates"][0]["finishReason"] == "STOP"
    completion, signatures = completion_from_gemini(merged, model="m", created=1)
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert list(signatures.values()) == [parts[0]["thoughtSignature"]]


def test_assemble_gemini3_text_attaches_trailing_signature() -> None:
    chunks = stream_chunks("native/stream-chunks__text__gemini-3-pro__vercel-ai.jsonl")
    (part,) = assemble_stream(chunks)["candidates"][0]["content"]["parts"]
    assert part["text"] == 'There are **3** "r"s in strawberry.\n\nst**r**awbe**rr**y'
    assert part["thoughtSignature"] == chunks[-1]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]


def test_assemble_partial_args_and_skip_errors() -> None:
    chunks = stream_chunks(
        "vertex/stream-chunks__thought-then-parallel-calls-partialArgs__gemini-3-flash__vercel-ai.jsonl"
    )
    merged = assemble_stream(chunks + [{"error": {"code": 500}}])
    parts = merged["candidates"][0]["content"]["parts"]
    assert parts[0]["thought"] is True
    assert [p["functionCall"] for p in parts[1:]] == [
        {"name": "read_theme"},
        {"name": "read_screen", "args": {"id": "A"}},
        {"name": "read_screen", "args": {"id": "B"}},
        {"name": "read_screen", "args": {"id": "C"}},
    ]
    assert "thoughtSignature" in parts[1]
    assert assemble_stream([]) == {}


def test_stream_fixture_files_exist() -> None:
    assert path("native/stream-sse__text__gemini-2.0-flash__raw-body__pydantic-ai.sse").is_file()
