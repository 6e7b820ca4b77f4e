"""Depth and int64 bounds (app/gemini/limits.py) and every surface that applies them (issue 12, item 7).

Each case here was a text/plain 500 before: the body parsed, then could not be encoded for the upstream.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.gemini.limits import (INT64_MAX, INT64_MIN, MAX_BODY_DEPTH, MAX_DEPTH, LimitError, check_int,
                               check_json)
from app.protocols.openai_chat.chat import parse_chat_request
from app.protocols.openai_chat.embeddings import parse_embeddings_request
from app.protocols.openai_chat.errors import RequestError
from app.services.native import _unreadable
from app.sessions.generation import ConfigError, parse_generation_config

MODEL = "gemini-2.5-flash"
USER = [{"role": "user", "content": "hi"}]


def nested(levels: int, leaf: Any = None) -> Any:
    """``levels`` objects inside each other, alternating dicts and lists so both kinds are counted."""
    value: Any = leaf
    for i in range(levels):
        value = {"a": value} if i % 2 == 0 else [value]
    return value


def test_depth_bound_is_exact() -> None:
    check_json(nested(MAX_DEPTH), "f")
    with pytest.raises(LimitError) as err:
        check_json(nested(MAX_DEPTH + 1), "f")
    assert "nested more than 64 levels" in err.value.message
    assert err.value.field.startswith("f") and err.value.field.endswith("…")


def test_int64_bounds_are_exact_and_named() -> None:
    check_json([INT64_MIN, INT64_MAX, 1.5e300, True, "x" * 100], "f")
    assert check_int(INT64_MAX, "seed") == INT64_MAX
    with pytest.raises(LimitError) as err:
        check_json({"a": [0, {"b": INT64_MAX + 1}]}, "tools")
    assert err.value.field == "tools.a[1].b"
    with pytest.raises(LimitError) as err:
        check_int(INT64_MIN - 1, "seed")
    assert err.value.field == "seed"


def test_hostile_depth_does_not_exhaust_the_stack() -> None:
    with pytest.raises(LimitError):
        check_json(nested(50_000), "f")


def test_long_keys_are_shortened_in_the_path() -> None:
    with pytest.raises(LimitError) as err:
        check_json({"k" * 10_000: 2**70}, "")
    assert err.value.field == "k" * 64


def _chat(**fields: Any) -> None:
    parse_chat_request({"model": MODEL, "messages": USER, **fields})


DEEP = nested(255, {})


@pytest.mark.parametrize(("fields", "param"), [
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": DEEP}}]},
     "tools[0].function.parameters"),
    ({"functions": [{"name": "f", "parameters": {"properties": {"x": {"maximum": 2**64}}}}]},
     "functions[0].parameters.properties.x.maximum"),
    ({"response_format": {"type": "json_schema", "json_schema": {"schema": DEEP}}},
     "response_format.json_schema.schema"),
    ({"google": {"safety_settings": [DEEP]}}, "google.safety_settings[0]"),
    ({"extra_body": {"google": {"thinking_config": {"thinking_budget": 2**64}}}},
     "extra_body.google.thinking_config.thinking_budget"),
    ({"seed": 1e30}, "seed"), ({"seed": 2**64 - 1}, "seed"), ({"max_tokens": 1e30}, "max_tokens"),
    ({"max_completion_tokens": 2**63}, "max_completion_tokens"), ({"top_k": 1e20}, "top_k"),
    ({"n": 2**63}, "n"),
    ({"tools": [{"googleSearch": 5}]}, "tools[0].googleSearch"),
    ({"tools": [{"code_execution": [1]}]}, "tools[0].code_execution"),
    ({"tools": [{"urlContext": {"x": DEEP}}]}, "tools[0].urlContext"),
])
def test_openai_chat_refuses_with_the_field_named(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(RequestError) as err:
        _chat(**fields)
    assert err.value.param is not None and err.value.param.startswith(param)
    assert err.value.status == 400


def test_tool_call_arguments_and_results_are_bounded() -> None:
    def messages(arguments: str, result: str) -> list[dict[str, Any]]:
        return [*USER, {"role": "assistant", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": "c1", "content": result}]
    deep = orjson.dumps(nested(200, {})).decode()
    with pytest.raises(RequestError) as err:
        parse_chat_request({"model": MODEL, "messages": messages(deep, "{}")})
    assert err.value.param.startswith("messages[1].tool_calls[0].function.arguments")
    with pytest.raises(RequestError) as err:
        parse_chat_request({"model": MODEL, "messages": messages("{}", '{"n": 18446744073709551615}')})
    assert err.value.param == "messages[2].content.n"


def test_bounded_requests_still_translate_and_encode() -> None:
    schema = nested(MAX_DEPTH - 1, {"type": "string"})
    req = parse_chat_request({"model": MODEL, "messages": USER, "seed": INT64_MIN, "tools": [
        {"type": "function", "function": {"name": "f", "parameters": schema}}, {"googleSearch": None}]})
    assert req.body["generationConfig"]["seed"] == INT64_MIN
    assert req.body["tools"][1] == {"googleSearch": {}}
    orjson.dumps(req.body)  # the whole point: what passed translation can be sent


def test_embeddings_dimensions_bounded() -> None:
    with pytest.raises(RequestError) as err:
        parse_embeddings_request({"model": "text-embedding-004", "input": "x", "dimensions": 2**64 - 1})
    assert err.value.param == "dimensions"


@pytest.mark.parametrize(("config", "field"), [
    ({"seed": 1e30}, "generation_config.seed"),
    ({"max_output_tokens": 2**64 - 1}, "generation_config.max_output_tokens"),
    ({"thinking_config": {"thinking_budget": 2**63}}, "generation_config.thinking_config"),
    ({"response_schema": {"properties": {"a": {"maxItems": 2**64}}}},
     "generation_config.response_schema.properties.a.maxItems"),
    ({"responseSchema": nested(255, {})}, "generation_config.responseSchema"),
])
def test_session_config_refused_at_start(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_generation_config(config)
    assert err.value.field.startswith(field)


def _native_error(body: bytes) -> dict[str, Any] | None:
    reply = _unreadable(body)
    if reply is None:
        return None
    assert reply.status == 400
    error = orjson.loads(reply.body)["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    return error


def test_native_body_check() -> None:
    assert _native_error(b"") is None
    assert _native_error(orjson.dumps({"contents": [{"parts": [{"text": "hi"}]}]})) is None
    assert _native_error(orjson.dumps(nested(MAX_BODY_DEPTH - 1, {}))) is None
    deep = _native_error(orjson.dumps({"tools": [nested(MAX_BODY_DEPTH, {})]}))
    assert deep is not None and deep["details"][0]["fieldViolations"][0]["field"].startswith("tools[0]")
    big = _native_error(b'{"generationConfig": {"seed": 18446744073709551615}}')
    assert big is not None and big["details"][0]["fieldViolations"][0]["field"] == "generationConfig.seed"
    bad = _native_error(b"{not json")
    assert bad is not None and bad["message"].startswith("Invalid JSON payload received.")
