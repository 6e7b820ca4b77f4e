"""Google error bodies (real and reconstructed, array-wrapped or not) -> OpenAI error shape, scrubbed."""

from __future__ import annotations

import json

import pytest

from app.keys import key_id

from app.protocols.openai_chat.errors import (
    RequestError,
    UpstreamStreamError,
    gemini_error_to_openai,
    openai_error_body,
    scrub,
)
from tests.unit.protocols.openai_chat.fixture_support import path, response_json, response_status

KEY = "AIza" + "Sy" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"  # fake, right shape (39 chars)


def load(name: str):
    return json.loads(path(name).read_text())


def assert_shape(body: dict) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    "name,status,type_,code",
    [
        (
            "reconstructed/400__thinking-budget-and-level-both-set__native.json",
            400,
            "invalid_request_error",
            "INVALID_ARGUMENT",
        ),
        (
            "reconstructed/401__bearer-api-key-on-native-endpoint.json",
            401,
            "authentication_error",
            "UNAUTHENTICATED",
        ),
        (
            "reconstructed/403__no-api-key-unregistered-caller.json",
            403,
            "permission_error",
            "PERMISSION_DENIED",
        ),
        (
            "reconstructed/429__free-tier-requests-per-minute.json",
            429,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        (
            "reconstructed/429__free-tier-input-tokens-per-minute.json",
            429,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        ("reconstructed/429__free-tier-requests-per-day.json", 429, "rate_limit_error", "insufficient_quota"),
        (
            "errors/429__QuotaFailure-RetryInfo-trimmed__vercel-ai.json",
            429,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        ("reconstructed/500__INTERNAL.json", 500, "api_error", "INTERNAL"),
        ("reconstructed/503__UNAVAILABLE__high-demand.json", 503, "api_error", "UNAVAILABLE"),
        ("reconstructed/503__UNAVAILABLE__model-overloaded.json", 503, "api_error", "UNAVAILABLE"),
        ("reconstructed/503__UNAVAILABLE__stream-json-array-wrapped.json", 503, "api_error", "UNAVAILABLE"),
    ],
)
def test_recorded_and_reconstructed_bodies(name: str, status: int, type_: str, code: str) -> None:
    raw = load(name)
    google = raw[0]["error"] if isinstance(raw, list) else raw["error"]
    for given in (raw, path(name).read_bytes()):
        got_status, body = gemini_error_to_openai(status, given)
        assert_shape(body)
        assert got_status == status
        assert body["error"]["type"] == type_
        assert body["error"]["code"] == code
        assert body["error"]["message"] == google["message"]


@pytest.mark.parametrize(
    "name",
    [
        "reconstructed/400__API_KEY_INVALID__native.json",
        "reconstructed/400__API_KEY_INVALID__openai-compat-array-wrapped.json",
    ],
)
def test_invalid_pool_key_is_an_authentication_error(name: str) -> None:
    status, body = gemini_error_to_openai(400, path(name).read_bytes())
    assert status == 401
    assert body == openai_error_body(
        "API key not valid. Please pass a valid API key.", "authentication_error", None, "invalid_api_key"
    )


def test_unknown_field_violation_names_the_param() -> None:
    status, body = gemini_error_to_openai(
        400, load("reconstructed/400__unknown-field__openai-compat-array-wrapped.json")
    )
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "frequency_penalty"
    explicit = {
        "error": {
            "code": 400,
            "message": "bad",
            "status": "INVALID_ARGUMENT",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": "generation_config.temperature", "description": "out of range"}
                    ],
                }
            ],
        }
    }
    assert gemini_error_to_openai(400, explicit)[1]["error"]["param"] == "generation_config.temperature"


@pytest.mark.parametrize(
    "name",
    [
        "errors/404__generateContent-unknown-model__pydantic-ai.yaml",
        "errors/404__countTokens-unknown-model__pydantic-ai.yaml",
        "errors/404__batchEmbedContents-unknown-model__pydantic-ai.yaml",
        "errors/404__streamGenerateContent-alt-sse-unknown-model__js-genai.json",
    ],
)
def test_unknown_model_404s(name: str) -> None:
    google = response_json(name)
    status, body = gemini_error_to_openai(response_status(name), google)
    assert status == 404
    assert body["error"]["type"] == "not_found_error"
    assert body["error"]["code"] == "model_not_found"
    assert body["error"]["message"] == google["error"]["message"]  # DebugInfo detail is not leaked


def test_other_404_is_not_blamed_on_the_model() -> None:
    body = gemini_error_to_openai(
        404, {"error": {"code": 404, "message": "File files/abc not found.", "status": "NOT_FOUND"}}
    )[1]
    assert body["error"]["code"] == "NOT_FOUND"


def test_mid_stream_error_takes_its_own_code() -> None:
    status, body = gemini_error_to_openai(
        200, {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
    )
    assert status == 503 and body["error"]["type"] == "api_error"
    assert gemini_error_to_openai(200, {"error": {"message": "?"}})[0] == 502


@pytest.mark.parametrize(
    "given,message",
    [
        (None, "Bad gateway"),
        (b"", "Bad gateway"),
        (b"<html>upstream broke</html>", "<html>upstream broke</html>"),
        ([], "Bad gateway"),
        ({"error": "plain string"}, "plain string"),
        ({"unexpected": True}, "Bad gateway"),
    ],
)
def test_unreadable_bodies(given, message: str) -> None:
    status, body = gemini_error_to_openai(502, given)
    assert_shape(body)
    assert status == 502 and body["error"]["message"] == message and body["error"]["type"] == "api_error"


def test_keys_and_project_numbers_are_scrubbed() -> None:
    message = (
        f"Permission denied: Consumer 'api_key:{KEY}' has been suspended. Generative Language API has not "
        "been used in project 123456789012 before or it is disabled. Enable it by visiting "
        "https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview"
        "?project=123456789012 "
        f"or call https://generativelanguage.googleapis.com/v1beta/models?key=secret-value&pageSize=5"
    )
    status, body = gemini_error_to_openai(
        403, [{"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED"}}]
    )
    text = body["error"]["message"]
    assert status == 403 and body["error"]["type"] == "permission_error"
    assert KEY not in text and "AIza" not in text
    assert "123456789012" not in text
    assert "secret-value" not in text and "key=[redacted]&pageSize=5" in text
    assert "has been suspended" in text


def test_scrub_leaves_ordinary_text_alone() -> None:
    assert len(KEY) == 39
    assert (
        scrub("The model is overloaded. Please try again later.")
        == "The model is overloaded. Please try again later."
    )
    assert scrub(f"bad key {KEY}.") == f"bad key {key_id(KEY)}."  # the id an operator sees in the console


def test_request_error_and_stream_error_carry_what_callers_need() -> None:
    exc = RequestError("temperature must be a number", "temperature")
    assert (str(exc), exc.param, exc.code, exc.status) == (
        "temperature must be a number",
        "temperature",
        None,
        400,
    )
    assert exc.to_openai() == (
        400,
        openai_error_body("temperature must be a number", "invalid_request_error", "temperature", None),
    )
    google = {"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}
    stream_exc = UpstreamStreamError(503, google)
    assert stream_exc.status == 503 and stream_exc.body is google and str(stream_exc) == "busy"
