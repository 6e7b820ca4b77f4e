"""start_chat's model name and generation config: both spellings in, Gemini's camelCase out, clear no's."""

from __future__ import annotations

from typing import Any

import pytest

from app.sessions import ConfigError, parse_generation_config, parse_model_name
from app.sessions.generation import FIELDS


def test_seed_example_maps_to_camel_case() -> None:
    assert parse_generation_config({"max_output_tokens": 1000, "temperature": 0.7, "top_p": 0.9}) == {
        "maxOutputTokens": 1000, "temperature": 0.7, "topP": 0.9}


def test_every_field_in_both_spellings() -> None:
    snake = {"max_output_tokens": 10, "temperature": 1, "top_p": 0.5, "top_k": 40, "stop_sequences": ["END"],
             "candidate_count": 1, "presence_penalty": 0.5, "frequency_penalty": -0.5,
             "response_mime_type": "application/json", "response_schema": {"type": "OBJECT"}, "seed": 7,
             "thinking_config": {"thinking_budget": 0, "include_thoughts": False}}
    assert set(snake) == set(FIELDS)
    expected = {"maxOutputTokens": 10, "temperature": 1, "topP": 0.5, "topK": 40, "stopSequences": ["END"],
                "candidateCount": 1, "presencePenalty": 0.5, "frequencyPenalty": -0.5,
                "responseMimeType": "application/json", "responseSchema": {"type": "OBJECT"}, "seed": 7,
                "thinkingConfig": {"thinkingBudget": 0, "includeThoughts": False}}
    assert parse_generation_config(snake) == expected
    camel = {**{FIELDS[k][0]: v for k, v in snake.items()},
             "thinkingConfig": {"thinkingBudget": 0, "includeThoughts": False}}
    assert parse_generation_config(camel) == expected


def test_empty_and_null() -> None:
    assert parse_generation_config(None) == {}
    assert parse_generation_config({}) == {}
    assert parse_generation_config({"temperature": None, "top_k": 3}) == {"topK": 3}


def test_single_stop_sequence_string_becomes_a_list() -> None:
    assert parse_generation_config({"stop_sequences": "STOP"}) == {"stopSequences": ["STOP"]}


def test_integral_float_is_accepted_as_integer() -> None:
    assert parse_generation_config({"max_output_tokens": 100.0}) == {"maxOutputTokens": 100}


@pytest.mark.parametrize(("config", "field"), [
    ({"temprature": 0.5}, "generation_config.temprature"),
    ({"temperature": "hot"}, "generation_config.temperature"),
    ({"temperature": True}, "generation_config.temperature"),
    ({"temperature": 3}, "generation_config.temperature"),
    ({"top_p": 1.5}, "generation_config.top_p"),
    ({"max_output_tokens": 0}, "generation_config.max_output_tokens"),
    ({"max_output_tokens": 10.5}, "generation_config.max_output_tokens"),
    ({"maxOutputTokens": "100"}, "generation_config.maxOutputTokens"),
    ({"top_k": 0}, "generation_config.top_k"),
    ({"stop_sequences": ["a", 1]}, "generation_config.stop_sequences"),
    ({"stop_sequences": list("abcdef")}, "generation_config.stop_sequences"),
    ({"candidate_count": 2}, "generation_config.candidate_count"),
    ({"seed": 1.5}, "generation_config.seed"),
    ({"response_mime_type": ""}, "generation_config.response_mime_type"),
    ({"thinking_config": {"budget": 3}}, "generation_config.thinking_config"),
    ({"presence_penalty": float("nan")}, "generation_config.presence_penalty"),
    ({"max_output_tokens": 5, "maxOutputTokens": 6}, "generation_config.maxOutputTokens"),
    ("temperature=1", "generation_config"),
    ([1], "generation_config"),
])
def test_refusals_name_the_field(config: Any, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_generation_config(config)
    assert info.value.field == field
    assert str(info.value).startswith(field + ":")


@pytest.mark.parametrize(("value", "expected"), [
    (None, "gemini-2.5-flash"), ("", "gemini-2.5-flash"), ("gemini-1.5-flash-002", "gemini-1.5-flash-002"),
    ("models/gemini-2.5-pro", "gemini-2.5-pro"), ("gemini-2.0-flash_exp.1", "gemini-2.0-flash_exp.1"),
])
def test_model_names(value: object, expected: str) -> None:
    assert parse_model_name(value, "gemini-2.5-flash") == expected


@pytest.mark.parametrize("value", ["../models/x", "gemini 2.5", "gemini:generateContent", "a/b", "models/",
                                   "x?key=1", 5, ["gemini"], "g" * 200])
def test_bad_model_names_never_reach_a_url(value: object) -> None:
    with pytest.raises(ConfigError) as info:
        parse_model_name(value, "gemini-2.5-flash")
    assert info.value.field == "model_name"
