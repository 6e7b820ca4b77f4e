"""Recorded non-stream Gemini responses -> OpenAI chat.completion, field by field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.protocols.openai_chat.ids import is_minted
from app.protocols.openai_chat.response import completion_from_gemini
from tests.unit.protocols.openai_chat.fixture_support import FIXTURES, response_json, stream_chunks

CREATED = 1_700_000_000


def translate(name: str, n: int = 0, model: str = "client-model"):
    return completion_from_gemini(response_json(name, n), model=model, created=CREATED)


def only_choice(completion: dict) -> dict:
    assert len(completion["choices"]) == 1
    return completion["choices"][0]


def test_plain_text_gemini25_with_hidden_thinking() -> None:
    completion, signatures = translate("native/generate__text__gemini-2.5-flash__pydantic-ai.yaml")
    assert completion["id"] == "chatcmpl-bzlXaa_EE_aHqtsPi_zw8Ao"
    assert completion["object"] == "chat.completion"
    assert completion["created"] == CREATED
    assert completion["model"] == "client-model"
    choice = only_choice(completion)
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert "native_finish_reason" not in choice
    assert choice["message"] == {
        "role": "assistant",
        "content": "Hello! How can I help you today?",
        "refusal": None,
    }
    # thoughtsTokenCount without thought parts: counted as reasoning, no reasoning_content
    assert completion["usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 43,
        "total_tokens": 52,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 34},
    }
    assert signatures == {}


def test_completion_id_override_and_fallback() -> None:
    resp = response_json("native/generate__text__gemini-2.5-flash__pydantic-ai.yaml")
    completion, _ = completion_from_gemini(resp, model="m", created=1, completion_id="chatcmpl-fixed")
    assert completion["id"] == "chatcmpl-fixed"
    completion, _ = completion_from_gemini(
        {k: v for k, v in resp.items() if k != "responseId"}, model="m", created=1
    )
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{24}", completion["id"])


def test_max_tokens_with_no_parts_is_length_with_empty_content() -> None:
    completion, _ = translate(
        "native/generate__finish-MAX_TOKENS-no-parts-thinking-ate-budget__gemini-2.5-pro__pydantic-ai.yaml"
    )
    choice = only_choice(completion)
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == ""
    assert "tool_calls" not in choice["message"]
    assert completion["usage"]["prompt_tokens"] == 15
    assert completion["usage"]["completion_tokens"] == 2
    assert completion["usage"]["total_tokens"] == 17
    assert completion["usage"]["completion_tokens_details"] == {"reasoning_tokens": 2}


def test_max_tokens_with_truncated_text() -> None:
    completion, _ = translate("native/generate__finish-MAX_TOKENS__gemini-2.5-flash__pydantic-ai.yaml")
    choice = only_choice(completion)
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == "The capital of France is"
    assert completion["usage"]["completion_tokens"] == 5
    assert completion["usage"]["total_tokens"] == 20


def test_safety_with_empty_content_is_content_filter_with_visible_reason() -> None:
    completion, _ = translate(
        "native/generate__finish-SAFETY-empty-content__gemini-1.5-flash__pydantic-ai.yaml"
    )
    choice = only_choice(completion)
    assert choice["index"] == 0  # candidate has no index
    assert choice["finish_reason"] == "content_filter"
    assert choice["native_finish_reason"] == "SAFETY"
    assert choice["message"]["content"] is None
    assert "SAFETY" in choice["message"]["refusal"]
    assert "HARM_CATEGORY_HATE_SPEECH" in choice["message"]["refusal"]
    assert "HARM_CATEGORY_HARASSMENT" not in choice["message"]["refusal"]  # not blocked
    assert completion["usage"]["prompt_tokens"] == 14
    assert completion["usage"]["completion_tokens"] == 0
    assert completion["usage"]["total_tokens"] == 14


def test_function_call_gemini3_with_signature() -> None:
    resp = response_json("native/generate__function-call__gemini-3-pro__vercel-ai.json")
    completion, signatures = completion_from_gemini(resp, model="gemini-3-pro-preview", created=CREATED)
    choice = only_choice(completion)
    assert choice["finish_reason"] == "tool_calls"  # Gemini said STOP
    assert "native_finish_reason" not in choice
    message = choice["message"]
    assert message["content"] is None
    (call,) = message["tool_calls"]
    assert call["type"] == "function"
    assert is_minted(call["id"])  # Gemini gave no id
    assert call["function"] == {"name": "weather", "arguments": '{"location":"San Francisco"}'}
    signature = resp["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert signatures == {call["id"]: signature}
    assert call["extra_content"] == {"google": {"thought_signature": signature}}
    assert completion["usage"]["completion_tokens"] == 15 + 893
    assert completion["usage"]["total_tokens"] == 937
    assert completion["usage"]["completion_tokens_details"]["reasoning_tokens"] == 893


def test_gemini_function_call_ids_are_kept_and_duplicates_reminted() -> None:
    resp = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"id": "fc-1", "name": "a", "args": {}}},
                        {"functionCall": {"id": "fc-1", "name": "b"}},
                        {"functionCall": {"id": "", "name": "c", "args": {"x": [1, 2]}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ]
    }
    completion, signatures = completion_from_gemini(resp, model="m", created=1)
    calls = completion["choices"][0]["message"]["tool_calls"]
    assert calls[0]["id"] == "fc-1"
    assert is_minted(calls[1]["id"]) and is_minted(calls[2]["id"])
    assert len({c["id"] for c in calls}) == 3
    assert calls[1]["function"]["arguments"] == "{}"
    assert calls[2]["function"]["arguments"] == '{"x":[1,2]}'
    assert signatures == {}


@pytest.mark.parametrize(
    "name",
    [
        "native/generate__reasoning__gemini-3-pro__vercel-ai.json",
        "native/generate__text-with-thoughtSignature__gemini-3-pro__vercel-ai.json",
    ],
)
def test_gemini3_text_with_signature_on_text_part(name: str) -> None:
    resp = response_json(name)
    completion, signatures = translate(name)
    choice = only_choice(completion)
    assert choice["message"]["content"] == resp["candidates"][0]["content"]["parts"][0]["text"]
    assert "reasoning_content" not in choice["message"]
    assert choice["finish_reason"] == "stop"
    meta = resp["usageMetadata"]
    assert (
        completion["usage"]["completion_tokens"] == meta["candidatesTokenCount"] + meta["thoughtsTokenCount"]
    )
    assert completion["usage"]["total_tokens"] == meta["totalTokenCount"]
    assert signatures == {}  # text signatures have no OpenAI home; Gemini does not require them back


def test_stop_sequences_reply_without_index() -> None:
    completion, _ = translate("native/generate__stopSequences__gemini-1.5-flash__pydantic-ai.yaml")
    choice = only_choice(completion)
    assert choice["index"] == 0
    assert choice["message"]["content"] == "The most iconic city in France is "
    assert choice["finish_reason"] == "stop"
    assert choice["logprobs"] is None
    assert completion["usage"]["total_tokens"] == 33


@pytest.mark.parametrize("n", [0, 1])
def test_include_thoughts_gives_reasoning_content(n: int) -> None:
    name = "native/generate__thinking-includeThoughts-multiturn__gemini-3-pro__pydantic-ai.yaml"
    parts = response_json(name, n)["candidates"][0]["content"]["parts"]
    completion, signatures = translate(name, n)
    message = only_choice(completion)["message"]
    assert message["reasoning_content"] == parts[0]["text"]
    assert message["content"] == parts[1]["text"]
    assert signatures == {}


def test_thinking_budget_zero_reports_no_reasoning_tokens() -> None:
    completion, _ = translate("native/generate__thinkingBudget-0__gemini-2.5-flash__pydantic-ai.yaml")
    assert only_choice(completion)["message"]["content"] == "4"
    assert completion["usage"]["completion_tokens"] == 1
    assert completion["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0


def test_thought_only_reply_cut_by_max_tokens() -> None:
    completion, _ = translate(
        "native/generate__thought-field-v1alpha__gemini-2.0-flash-thinking-exp__js-genai.json"
    )
    choice = only_choice(completion)
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == ""
    assert choice["message"]["reasoning_content"].startswith("**Breaking Down the Sum of Natural Numbers**")
    assert completion["usage"]["completion_tokens"] == 19
    assert completion["usage"]["total_tokens"] == 36


def test_prompt_blocked_has_one_filtered_choice_with_the_reason() -> None:
    completion, signatures = translate(
        "vertex/generate__promptFeedback-blockReason-MODEL_ARMOR__vertex__pydantic-ai.yaml", 1
    )
    choice = only_choice(completion)
    assert choice["finish_reason"] == "content_filter"
    assert choice["native_finish_reason"] == "MODEL_ARMOR"
    assert choice["message"]["content"] is None
    assert "MODEL_ARMOR" in choice["message"]["refusal"]
    assert "Prompt Injection and Jailbreak" in choice["message"]["refusal"]
    assert completion["id"] == "chatcmpl-mSEXaseKG-P51PIPwv66qQs"
    assert completion["usage"]["total_tokens"] == 0  # only trafficType in usageMetadata
    assert signatures == {}


def test_cached_and_tool_use_tokens() -> None:
    resp = {
        "candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
        "usageMetadata": {
            "promptTokenCount": 1000,
            "cachedContentTokenCount": 800,
            "candidatesTokenCount": 5,
            "thoughtsTokenCount": 10,
            "toolUsePromptTokenCount": 50,
            "totalTokenCount": 1065,
        },
    }
    completion, _ = completion_from_gemini(resp, model="m", created=1)
    assert completion["usage"] == {
        "prompt_tokens": 1050,
        "completion_tokens": 15,
        "total_tokens": 1065,
        "prompt_tokens_details": {"cached_tokens": 800},
        "completion_tokens_details": {"reasoning_tokens": 10},
    }


def test_thoughts_already_folded_into_candidates_are_not_counted_twice() -> None:
    resp = {
        "candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 30,
            "thoughtsTokenCount": 20,
            "totalTokenCount": 40,
        },
    }
    usage = completion_from_gemini(resp, model="m", created=1)[0]["usage"]
    assert usage["completion_tokens"] == 30
    assert usage["total_tokens"] == 40


@pytest.mark.parametrize(
    "reason,expected",
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("LANGUAGE", "content_filter"),
        ("OTHER", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
        ("IMAGE_RECITATION", "content_filter"),
        ("IMAGE_OTHER", "content_filter"),
        ("NO_IMAGE", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("UNEXPECTED_TOOL_CALL", "stop"),
        ("TOO_MANY_TOOL_CALLS", "stop"),
        ("MISSING_THOUGHT_SIGNATURE", "stop"),
        ("MALFORMED_RESPONSE", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
        ("SOMETHING_NEW", "stop"),
    ],
)
def test_finish_reason_table(reason: str, expected: str) -> None:
    resp = {
        "candidates": [
            {
                "content": {"parts": [{"text": "x"}]},
                "finishReason": reason,
                "finishMessage": "Malformed function call: print(1",
            }
        ]
    }
    choice = completion_from_gemini(resp, model="m", created=1)[0]["choices"][0]
    assert choice["finish_reason"] == expected
    assert choice["message"]["content"] == "x"
    if reason in ("STOP", "MAX_TOKENS"):
        assert "native_finish_reason" not in choice
    else:
        assert choice["native_finish_reason"] == reason
    assert (choice["message"]["refusal"] is not None) == (expected == "content_filter")


def test_code_execution_parts_become_fenced_blocks() -> None:
    resp = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"text": "Let me compute."},
                        {"executableCode": {"language": "PYTHON", "code": "print(2 + 2)\n"}},
                        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "4\n"}},
                        {"text": "The answer is 4."},
                    ]
                },
                "finishReason": "STOP",
            }
        ]
    }
    content = completion_from_gemini(resp, model="m", created=1)[0]["choices"][0]["message"]["content"]
    assert content == "Let me compute.\n```python\nprint(2 + 2)\n```\n```output\n4\n```\nThe answer is 4."


def test_multiple_candidates_and_output_images() -> None:
    resp = {
        "candidates": [
            {
                "index": 1,
                "content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0="}}]},
                "finishReason": "STOP",
            },
            {"index": 0, "content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"},
        ]
    }
    choices = completion_from_gemini(resp, model="m", created=1)[0]["choices"]
    assert [c["index"] for c in choices] == [1, 0]
    assert choices[0]["message"]["images"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0="}}
    ]
    assert choices[0]["message"]["content"] == ""


def test_logprobs_result_is_mapped() -> None:
    resp = {
        "candidates": [
            {
                "content": {"parts": [{"text": "Hi"}]},
                "finishReason": "STOP",
                "logprobsResult": {
                    "topCandidates": [
                        {
                            "candidates": [
                                {"token": "Hi", "logProbability": -0.1},
                                {"token": "Hey", "logProbability": -2.5},
                            ]
                        }
                    ],
                    "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
                },
            }
        ]
    }
    logprobs = completion_from_gemini(resp, model="m", created=1)[0]["choices"][0]["logprobs"]
    assert logprobs == {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.1,
                "bytes": [72, 105],
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                    {"token": "Hey", "logprob": -2.5, "bytes": [72, 101, 121]},
                ],
            }
        ],
        "refusal": None,
    }


@pytest.mark.parametrize(
    "resp",
    [
        {},
        {"candidates": []},
        {"candidates": [{}]},
        {"candidates": [{"content": {}}]},
        {"candidates": [{"content": {"parts": None}}]},
        {"candidates": [{"content": {"parts": [{}, None, {"text": None}]}}]},
        {"candidates": [None]},
        {"usageMetadata": None},
        {"promptFeedback": {}},
    ],
)
def test_odd_shapes_never_crash(resp: dict) -> None:
    completion, signatures = completion_from_gemini(resp, model="m", created=1)
    assert completion["choices"] and completion["usage"]["total_tokens"] == 0
    assert signatures == {}


def _all_recorded_generate_responses() -> list[tuple[str, int]]:
    out = []
    for p in sorted(FIXTURES.rglob("generate__*")):
        name = str(p.relative_to(FIXTURES))
        interactions = 2 if "multiturn" in name else 1
        for n in range(interactions):
            out.append((name, 1 if name.startswith("vertex/") else n))
    return out


def _all_recorded_stream_files() -> list[str]:
    return [
        str(p.relative_to(FIXTURES))
        for p in sorted(FIXTURES.rglob("stream-*"))
        if not p.name.endswith("llm-gemini.yaml") and "midstream-error" not in p.name
    ]


@pytest.mark.parametrize("name,n", _all_recorded_generate_responses())
def test_every_recorded_response_translates(name: str, n: int) -> None:
    resp = response_json(name, n)
    completion, _ = completion_from_gemini(resp, model="m", created=1)
    json.dumps(completion)  # plain JSON types only
    for choice in completion["choices"]:
        assert choice["finish_reason"] in ("stop", "length", "tool_calls", "content_filter")
        assert choice["message"]["role"] == "assistant"


@pytest.mark.parametrize("name", _all_recorded_stream_files())
def test_every_recorded_stream_chunk_translates_as_a_whole_response(name: str) -> None:
    for chunk in stream_chunks(name):
        completion, _ = completion_from_gemini(chunk, model="m", created=1)
        json.dumps(completion)


def test_fixture_inventory_is_complete() -> None:
    names = {p.name for p in Path(FIXTURES).rglob("*") if p.is_file()}
    assert "generate__function-call__gemini-3-pro__vercel-ai.json" in names
    assert len(_all_recorded_generate_responses()) >= 12
    assert len(_all_recorded_stream_files()) >= 12
