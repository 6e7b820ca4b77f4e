"""The classification table over real and reconstructed Gemini error bodies (tests/fixtures/gemini)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from app.keys import OK_OUTCOME, Outcome, OutcomeKind, classify, classify_exception, parse_duration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "gemini"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def cassette_body(name: str) -> dict[str, Any]:
    """The response body of a pydantic-ai VCR cassette (stored as ``parsed_body``)."""
    data = yaml.safe_load((FIXTURES / name).read_text())
    return data["interactions"][0]["response"]["parsed_body"]


def replay_body(name: str) -> tuple[int, dict[str, Any]]:
    """Status and body of a js-genai replay recording."""
    response = orjson.loads(raw(name))["interactions"][0]["response"]
    return response["statusCode"], response["bodySegments"][0]


# -- 2xx ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_is_ok_without_parsing(status: int) -> None:
    assert classify(status, b"not json at all") is OK_OUTCOME
    assert OK_OUTCOME.kind is OutcomeKind.OK and not OK_OUTCOME.retryable()


# -- 429 ------------------------------------------------------------------------------------------------------


def test_429_per_minute_is_rate_limited_with_precise_retry_after() -> None:
    out = classify(429, raw("reconstructed/429__free-tier-requests-per-minute.json"))
    assert out.kind is OutcomeKind.RATE_LIMITED
    assert out.status == 429
    assert out.reason == "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    # RetryInfo says "58s", the message says "58.217843437s": the larger (precise) one wins.
    assert out.retry_after == pytest.approx(58.217843437)
    assert out.retryable()


def test_429_tokens_per_minute_is_rate_limited() -> None:
    out = classify(429, raw("reconstructed/429__free-tier-input-tokens-per-minute.json"))
    assert out.kind is OutcomeKind.RATE_LIMITED
    assert out.reason == "GenerateContentInputTokensPerModelPerMinute-FreeTier"
    assert out.retry_after == pytest.approx(23.472316927)


def test_429_per_day_is_quota_exhausted_despite_short_retry_delay() -> None:
    out = classify(429, raw("reconstructed/429__free-tier-requests-per-day.json"))
    assert out.kind is OutcomeKind.QUOTA_EXHAUSTED
    assert out.reason == "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    assert out.retry_after == pytest.approx(36.429760048)
    assert out.retryable()


def test_429_real_trimmed_body_fractional_retry_delay() -> None:
    out = classify(429, raw("errors/429__QuotaFailure-RetryInfo-trimmed__vercel-ai.json"))
    assert out.kind is OutcomeKind.RATE_LIMITED
    assert out.retry_after == pytest.approx(34.4)


def test_429_any_daily_violation_wins_over_minute_ones() -> None:
    body = {"error": {"code": 429, "details": [{
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"},
                       {"quotaId": "GenerateRequestsPerDayPerProjectPerModel"}]}]}}
    assert classify(429, body).kind is OutcomeKind.QUOTA_EXHAUSTED


def test_429_without_details_is_rate_limited_with_message_retry() -> None:
    body = {"error": {"code": 429, "message": "Resource has been exhausted. Please retry in 2.5s.",
                      "status": "RESOURCE_EXHAUSTED"}}
    out = classify(429, body)
    assert out == Outcome(OutcomeKind.RATE_LIMITED, 429, 2.5, "RESOURCE_EXHAUSTED")


def test_429_message_retry_in_milliseconds() -> None:
    out = classify(429, {"error": {"message": "Please retry in 750ms."}})
    assert out.retry_after == pytest.approx(0.75)


def test_429_capacity_exhausted_is_rate_limited() -> None:
    body = {"error": {"code": 429, "message": "Resource exhausted. Please try again later.",
                      "status": "RESOURCE_EXHAUSTED",
                      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                   "reason": "MODEL_CAPACITY_EXHAUSTED"}]}}
    out = classify(429, body)
    assert out.kind is OutcomeKind.RATE_LIMITED and out.reason == "MODEL_CAPACITY_EXHAUSTED"
    assert out.retry_after is None


def test_429_prepaid_credits_depleted_is_quota_exhausted() -> None:
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                      "message": "Your prepayment credits are depleted. Please add credits to continue."}}
    out = classify(429, body)
    assert out.kind is OutcomeKind.QUOTA_EXHAUSTED and out.reason == "PREPAYMENT_CREDITS_DEPLETED"


def test_429_per_day_in_message_without_quota_ids() -> None:
    body = {"error": {"message": "Quota exceeded for quota metric 'Generate Content API requests per day'"}}
    assert classify(429, body).kind is OutcomeKind.QUOTA_EXHAUSTED


def test_429_garbage_body_is_still_rate_limited() -> None:
    out = classify(429, b"<html>Too Many Requests</html>")
    assert out.kind is OutcomeKind.RATE_LIMITED and out.retry_after is None


# -- key problems ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["reconstructed/400__API_KEY_INVALID__native.json",
                                  "reconstructed/400__API_KEY_INVALID__openai-compat-array-wrapped.json"])
def test_400_api_key_invalid(name: str) -> None:
    out = classify(400, raw(name))
    assert out == Outcome(OutcomeKind.KEY_INVALID, 400, None, "API_KEY_INVALID")
    assert out.retryable()


def test_400_api_key_invalid_already_parsed_list_and_dict() -> None:
    body = orjson.loads(raw("reconstructed/400__API_KEY_INVALID__openai-compat-array-wrapped.json"))
    assert classify(400, body).kind is OutcomeKind.KEY_INVALID
    assert classify(400, body[0]).kind is OutcomeKind.KEY_INVALID


@pytest.mark.parametrize("message", ["API key not valid. Please pass a valid API key.",
                                     "API Key not found. Please pass a valid API key.",
                                     "API key expired. Please renew the API key."])
def test_400_key_messages_without_error_info(message: str) -> None:
    out = classify(400, {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})
    assert out.kind is OutcomeKind.KEY_INVALID and out.reason == "API_KEY_INVALID"


def test_401_is_key_invalid() -> None:
    out = classify(401, raw("reconstructed/401__bearer-api-key-on-native-endpoint.json"))
    assert out == Outcome(OutcomeKind.KEY_INVALID, 401, None, "UNAUTHENTICATED")


def test_403_permission_denied_is_key_invalid() -> None:
    out = classify(403, raw("reconstructed/403__no-api-key-unregistered-caller.json"))
    assert out == Outcome(OutcomeKind.KEY_INVALID, 403, None, "PERMISSION_DENIED")


@pytest.mark.parametrize("reason", ["SERVICE_DISABLED", "CONSUMER_SUSPENDED", "API_KEY_SERVICE_BLOCKED"])
def test_403_error_info_reason_is_kept(reason: str) -> None:
    body = {"error": {"code": 403, "message": "Permission denied", "status": "PERMISSION_DENIED",
                      "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]}}
    assert classify(403, body) == Outcome(OutcomeKind.KEY_INVALID, 403, None, reason)


def test_403_on_a_clients_file_reference_is_not_the_keys_fault() -> None:
    body = {"error": {"code": 403, "status": "PERMISSION_DENIED",
                      "message": "You do not have permission to access the File abc123 or it may not exist."}}
    out = classify(403, body)
    assert out.kind is OutcomeKind.CLIENT_ERROR and not out.retryable()


@pytest.mark.parametrize("message", ["CachedContent not found (or permission denied)",
                                     "You do not have permission to access the Batch batches/x or it may not exist."])
def test_403_on_a_cache_or_batch_of_another_project_is_a_client_error(message: str) -> None:
    body = {"error": {"code": 403, "status": "PERMISSION_DENIED", "message": message}}
    assert classify(403, body).kind is OutcomeKind.CLIENT_ERROR


def test_401_403_with_garbage_body_are_key_invalid() -> None:
    assert classify(401, b"").reason == "HTTP_401"
    assert classify(403, b"\xff\xfe").kind is OutcomeKind.KEY_INVALID


# -- client errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["reconstructed/400__thinking-budget-and-level-both-set__native.json",
                                  "reconstructed/400__unknown-field__openai-compat-array-wrapped.json"])
def test_other_400_is_client_error(name: str) -> None:
    out = classify(400, raw(name))
    assert out == Outcome(OutcomeKind.CLIENT_ERROR, 400, None, "INVALID_ARGUMENT")
    assert not out.retryable()


@pytest.mark.parametrize("name", ["errors/404__generateContent-unknown-model__pydantic-ai.yaml",
                                  "errors/404__countTokens-unknown-model__pydantic-ai.yaml",
                                  "errors/404__batchEmbedContents-unknown-model__pydantic-ai.yaml"])
def test_404_cassettes_are_client_errors(name: str) -> None:
    out = classify(404, cassette_body(name))
    assert out == Outcome(OutcomeKind.CLIENT_ERROR, 404, None, "NOT_FOUND")


def test_404_on_sse_endpoint_plain_json_body() -> None:
    status, body = replay_body("errors/404__streamGenerateContent-alt-sse-unknown-model__js-genai.json")
    assert classify(status, orjson.dumps(body)).kind is OutcomeKind.CLIENT_ERROR


@pytest.mark.parametrize("status", [402, 404, 405, 409, 413, 422, 499])
def test_other_4xx_are_client_errors(status: int) -> None:
    assert classify(status, None).kind is OutcomeKind.CLIENT_ERROR


# -- transient ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status,name,reason", [
    (500, "reconstructed/500__INTERNAL.json", "INTERNAL"),
    (503, "reconstructed/503__UNAVAILABLE__high-demand.json", "UNAVAILABLE"),
    (503, "reconstructed/503__UNAVAILABLE__model-overloaded.json", "UNAVAILABLE"),
    (503, "reconstructed/503__UNAVAILABLE__stream-json-array-wrapped.json", "UNAVAILABLE"),
])
def test_5xx_fixtures_are_transient(status: int, name: str, reason: str) -> None:
    out = classify(status, raw(name))
    assert out.kind is OutcomeKind.TRANSIENT and out.reason == reason and out.retryable()


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504, 520, 599, 0, 302])
def test_transient_statuses_with_empty_body(status: int) -> None:
    out = classify(status, b"")
    assert out.kind is OutcomeKind.TRANSIENT and out.reason == f"HTTP_{status}"


# -- robustness -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    None, b"", b"null", b"[]", b"[1, 2]", b"{}", b'{"error": "boom"}', b'{"error": {"details": "x"}}',
    b'{"error": {"details": [1, null, {"@type": 5}, {"@type": "x.QuotaFailure", "violations": "v"}]}}',
    b'{"error": {"message": 7, "status": ["x"]}}', b"\x00\x01garbage", b"{truncated", "text body",
    [None, {"error": {"code": 429}}], {"error": None},
])
@pytest.mark.parametrize("status", [400, 403, 429, 500])
def test_garbage_bodies_never_raise(status: int, body: Any) -> None:
    out = classify(status, body)
    assert isinstance(out, Outcome) and out.status == status


# -- durations ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value,expected", [
    ("36s", 36.0), ("34.4s", 34.4), ("0s", 0.0), ("1.5", 1.5), ("250ms", 0.25), (12, 12.0),
    ({"seconds": 3, "nanos": 500_000_000}, 3.5), ("99999999s", 86_400.0),
])
def test_parse_duration(value: Any, expected: float) -> None:
    assert parse_duration(value) == pytest.approx(expected)


@pytest.mark.parametrize("value", [None, "", "soon", "-3s", "3h", True, [], {"seconds": "x"}, float("nan")])
def test_parse_duration_garbage(value: Any) -> None:
    assert parse_duration(value) is None


# -- exceptions -----------------------------------------------------------------------------------------------


class ClientConnectorError(ConnectionError):  # same names as aiohttp's, without importing it
    pass


class ServerDisconnectedError(Exception):
    pass


class ReadTimeout(Exception):  # httpx-style name
    pass


@pytest.mark.parametrize("exc,reason", [
    (TimeoutError(), "timeout"),
    (asyncio.TimeoutError(), "timeout"),
    (ReadTimeout(), "timeout"),
    (ConnectionRefusedError(), "connection_error"),
    (ClientConnectorError(), "connection_error"),
    (ConnectionResetError(), "connection_reset"),
    (ServerDisconnectedError(), "connection_reset"),
    (OSError("network unreachable"), "connection_error"),
    (ValueError("odd"), "error:ValueError"),
])
def test_classify_exception(exc: BaseException, reason: str) -> None:
    out = classify_exception(exc)
    assert out == Outcome(OutcomeKind.TRANSIENT, 0, None, reason)
    assert out.retryable()


def test_cancellation_is_not_the_keys_fault() -> None:
    out = classify_exception(asyncio.CancelledError())
    assert out.kind is OutcomeKind.CLIENT_ERROR and out.reason == "cancelled"
