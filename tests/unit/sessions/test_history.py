"""The conversation functions on recorded Gemini answers (tests/fixtures/gemini, see SOURCES.md there)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.sessions import append_exchange, build_request, read_reply, user_turn

NATIVE = Path(__file__).resolve().parents[2] / "fixtures" / "gemini" / "native"


def recorded(name: str, index: int = 0) -> dict[str, Any]:
    path = NATIVE / name
    if path.suffix == ".json":
        return json.loads(path.read_text())
    response = yaml.safe_load(path.read_text())["interactions"][index]["response"]
    return response["parsed_body"] if "parsed_body" in response else json.loads(response["body"]["string"])


def turns(n_exchanges: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n_exchanges):
        out += [user_turn(f"q{i}"), {"role": "model", "parts": [{"text": f"a{i}"}]}]
    return out


def test_build_request_resends_the_whole_history() -> None:
    history = turns(1)
    request = build_request(history, "and now?", {"temperature": 0.2})
    assert request == {"contents": [*history, {"role": "user", "parts": [{"text": "and now?"}]}],
                       "generationConfig": {"temperature": 0.2}}
    assert history == turns(1)  # not changed in place


def test_build_request_without_config_sends_none() -> None:
    assert "generationConfig" not in build_request([], "hi", {})


def test_plain_text_answer() -> None:
    reply = read_reply(recorded("generate__text__gemini-2.5-flash__pydantic-ai.yaml"))
    assert reply.turn is not None and reply.turn["role"] == "model"
    assert reply.text and reply.problem is None


def test_thought_signature_is_kept_in_the_turn() -> None:
    body = recorded("generate__text-with-thoughtSignature__gemini-3-pro__vercel-ai.json")
    reply = read_reply(body)
    assert reply.text.startswith("There are **3** r's")
    assert reply.turn == body["candidates"][0]["content"]  # sent back unchanged on the next turn


def test_thought_summaries_are_not_in_the_text() -> None:
    body = recorded("generate__thinking-includeThoughts-multiturn__gemini-3-pro__pydantic-ai.yaml")
    reply = read_reply(body)
    assert reply.text.startswith("Crossing the street safely")
    assert "My Thought Process" not in reply.text
    assert reply.turn is not None and any(p.get("thought") for p in reply.turn["parts"])


@pytest.mark.parametrize(("name", "reason"), [
    ("generate__finish-SAFETY-empty-content__gemini-1.5-flash__pydantic-ai.yaml", "SAFETY"),
    ("generate__finish-MAX_TOKENS-no-parts-thinking-ate-budget__gemini-2.5-pro__pydantic-ai.yaml",
     "MAX_TOKENS"),
])
def test_answers_without_content_are_failed_turns(name: str, reason: str) -> None:
    reply = read_reply(recorded(name))
    assert reply.turn is None and reason in (reply.problem or "")


def test_blocked_prompt_is_a_failed_turn() -> None:
    reply = read_reply({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})
    assert reply.turn is None and "PROHIBITED_CONTENT" in (reply.problem or "")


@pytest.mark.parametrize("body", [None, [], "text", {"candidates": "x"}, {"candidates": [None]}])
def test_malformed_answers_are_failed_turns(body: object) -> None:
    assert read_reply(body).turn is None


def test_role_is_forced_to_model() -> None:
    reply = read_reply({"candidates": [{"content": {"parts": [{"text": "x"}]}}]})
    assert reply.turn == {"parts": [{"text": "x"}], "role": "model"}


# -- the history cap -----------------------------------------------------------------------------------------


def test_under_the_cap_everything_is_kept() -> None:
    history = append_exchange(turns(1), user_turn("q1"), {"role": "model", "parts": [{"text": "a1"}]}, 4)
    assert history == turns(2)


@pytest.mark.parametrize("cap", [2, 3, 4, 5, 6, 7, 10])
def test_cap_drops_oldest_exchanges_and_starts_with_a_user_turn(cap: int) -> None:
    history: list[dict[str, Any]] = []
    for i in range(12):
        answer = {"role": "model", "parts": [{"text": f"a{i}"}]}
        history = append_exchange(history, user_turn(f"q{i}"), answer, cap)
        assert len(history) <= cap
        assert history[0]["role"] == "user"
        assert [t["role"] for t in history] == ["user", "model"] * (len(history) // 2)
        assert history[-1]["parts"][0]["text"] == f"a{i}"  # the newest exchange is always kept
    assert len(history) == cap - cap % 2  # an odd cap leaves one turn of room unused
    first_kept = 12 - len(history) // 2
    assert history[0]["parts"][0]["text"] == f"q{first_kept}"
