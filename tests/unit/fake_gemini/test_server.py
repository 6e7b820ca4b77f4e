"""Tests of the fake Gemini server itself: wire shapes against the recorded fixtures, behaviours, control API.

The fake is what every gateway test trusts to behave like Google, so its shapes are checked against the
recordings in ``tests/fixtures/gemini/`` (byte for byte where the framing matters) and it is driven with the
official ``google-genai`` SDK as well as raw HTTP.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from tests.fake_gemini import answers, fixtures, schema, wire
from tests.fake_gemini.process import FakeHandle, start_fake

FLASH = "gemini-2.5-flash"
GEMINI3 = "gemini-3-pro-preview"
GEMINI2 = "gemini-2.0-flash"
WEATHER_TOOL = {
    "functionDeclarations": [
        {
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {
                "type": "OBJECT",
                "properties": {"city": {"type": "STRING"}, "days": {"type": "INTEGER"}},
                "required": ["city"],
            },
        },
        {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}},
    ]
}


# ------------------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeHandle]:
    with start_fake() as handle:
        yield handle


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> None:
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").reset()


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def model_turn(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "model", "parts": list(parts)}


def call(
    fake: FakeHandle,
    method: str,
    body: Any,
    *,
    model: str = FLASH,
    key: str | None = "ok-1",
    sse: bool = True,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    version: str = "v1beta",
) -> requests.Response:
    """POST a model RPC; ``sse`` adds ``alt=sse`` to streamGenerateContent."""
    query = dict(params or {})
    if method == "streamGenerateContent" and sse:
        query["alt"] = "sse"
    sent = dict(headers or {})
    if key is not None:
        sent["x-goog-api-key"] = key
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(
        f"{fake.url}/{version}/models/{model}:{method}", data=data, headers=sent, params=query, timeout=15
    )


def generate(fake: FakeHandle, body: dict[str, Any] | bytes, **kw: Any) -> requests.Response:
    return call(fake, "generateContent", body, **kw)


def stream(fake: FakeHandle, body: dict[str, Any], **kw: Any) -> requests.Response:
    return call(fake, "streamGenerateContent", body, **kw)


def sse_chunks(response: requests.Response) -> list[dict[str, Any]]:
    return wire.parse_sse_events(response.content)


def text_of(body: dict[str, Any], index: int = 0) -> str:
    parts = body["candidates"][index]["content"].get("parts", [])
    return "".join(p.get("text", "") for p in parts if not p.get("thought"))


def recorded_cassette_body(relative: str) -> dict[str, Any]:
    """The response body of a pydantic-ai cassette, straight from the YAML (not via the fake's loader)."""
    data = yaml.safe_load(fixtures.fixture_path(relative).read_text())
    response = data["interactions"][0]["response"]
    if "parsed_body" in response:
        return response["parsed_body"]
    return json.loads(response["body"]["string"])


def key_shape(obj: Any) -> Any:
    """The nesting of keys (values dropped), to compare a fake answer with a recorded one."""
    if isinstance(obj, dict):
        return {k: key_shape(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [key_shape(v) for v in obj]
    return type(obj).__name__


def assert_google_json(response: requests.Response) -> dict[str, Any]:
    """Google's JSON body: charset content type, 2-space pretty print, trailing newline."""
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    body = response.json()
    assert response.content == wire.pretty_json(body)
    assert response.text.startswith("{\n  ") or response.text.startswith("[\n  ")
    return body


# -------------------------------------------------------------------------------------- framing, offline


@pytest.mark.parametrize(
    "relative",
    [
        "native/stream-sse__text__gemini-2.0-flash__raw-body__pydantic-ai.sse",
        "native/stream-sse__function-call-thoughtSignature__gemini-3-pro__turn1__raw-body__pydantic-ai.sse",
        "reconstructed/stream-sse__midstream-error-after-partial-text.sse",
    ],
)
def test_sse_encoder_reproduces_recorded_bytes(relative: str) -> None:
    raw = fixtures.fixture_path(relative).read_bytes()
    assert b"".join(wire.sse_event(c) for c in wire.parse_sse_events(raw)) == raw


def test_json_array_encoder_reproduces_recorded_bytes() -> None:
    relative = "native/stream-json-array__thinking__gemini-flash-latest__decoded-body__llm-gemini.txt"
    raw = fixtures.fixture_path(relative).read_bytes()
    elements = [json.loads(e) for e in wire.split_json_array(raw)]
    assert len(elements) == 3
    assert wire.json_array(elements) == raw


def test_error_bodies_are_pretty_printed_like_google() -> None:
    raw = fixtures.fixture_path("reconstructed/429__free-tier-requests-per-minute.json").read_bytes()
    assert wire.pretty_json(json.loads(raw)) == raw


def test_schema_instance_json_schema_features() -> None:
    json_schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "minimum": 5},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "kind": {"enum": ["a", "b"]},
            "when": {"type": "string", "format": "date-time"},
            "child": {"$ref": "#/$defs/Child"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "number"}]},
        },
        "required": ["id", "child"],
        "$defs": {
            "Child": {
                "type": ["object", "null"],
                "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"],
            }
        },
    }
    full = schema.instance(json_schema, required_only=False)
    assert full == {
        "id": 5,
        "child": {"ok": True},
        "tags": ["x", "x"],
        "kind": "a",
        "when": "2024-01-01T00:00:00Z",
        "maybe": 1,
    }
    assert schema.instance(json_schema) == {"id": 5, "child": {"ok": True}}
    gemini_schema = {"type": "OBJECT", "properties": {"n": {"type": "NUMBER"}}, "required": ["n"]}
    assert schema.instance(gemini_schema) == {"n": 1}


def test_merge_chunks_folds_a_stream_into_one_response() -> None:
    answer = answers.build_answer(GEMINI3, {"contents": [user("one two three four five")]})
    chunks = answers.to_chunks(answer, words_per_chunk=2)
    assert len(chunks) > 2
    merged = answers.merge_chunks(chunks)
    whole = answers.to_response(answer)
    assert merged["candidates"] == whole["candidates"]
    assert merged["usageMetadata"] == whole["usageMetadata"]


# ---------------------------------------------------------------------------------------------- process


def test_start_fake_exposes_urls(fake: FakeHandle) -> None:
    assert fake.port > 0
    assert fake.url == f"http://127.0.0.1:{fake.port}"
    assert fake.base_url == fake.url + "/v1beta"
    assert fake.process.poll() is None


def test_stop_terminates_the_process() -> None:
    handle = start_fake()
    handle.stop()
    assert handle.process.poll() is not None
    handle.stop()  # idempotent


# ------------------------------------------------------------------------------------------------ models


def test_models_list_first_page_is_the_recording(fake: FakeHandle) -> None:
    response = requests.get(f"{fake.base_url}/models", headers={"x-goog-api-key": "ok-1"}, timeout=5)
    body = assert_google_json(response)
    assert body == fixtures.load_json("native/models-list__page1__decoded-body__llm-gemini.json")
    second = requests.get(
        f"{fake.base_url}/models",
        params={"pageToken": body["nextPageToken"]},
        headers={"x-goog-api-key": "ok-1"},
        timeout=5,
    ).json()
    assert [m["name"] for m in second["models"]] == ["models/text-embedding-004"]
    assert "nextPageToken" not in second


def test_models_list_paginates_with_page_size(fake: FakeHandle) -> None:
    names: list[str] = []
    token = None
    pages = 0
    while True:
        params = {"pageSize": "20", "key": "ok-1"} | ({"pageToken": token} if token else {})
        body = requests.get(f"{fake.base_url}/models", params=params, timeout=5).json()
        names += [m["name"] for m in body["models"]]
        pages += 1
        token = body.get("nextPageToken")
        if not token:
            break
    assert pages == 3
    assert len(names) == len(set(names)) == 51
    assert "models/gemini-embedding-001" in names


def test_models_get_and_404(fake: FakeHandle) -> None:
    headers = {"x-goog-api-key": "ok-1"}
    model = requests.get(f"{fake.base_url}/models/{FLASH}", headers=headers, timeout=5).json()
    assert model["name"] == f"models/{FLASH}"
    assert "generateContent" in model["supportedGenerationMethods"]
    assert requests.get(f"{fake.url}/v1/models/{FLASH}", headers=headers, timeout=5).status_code == 200
    missing = requests.get(f"{fake.base_url}/models/gemini-9-ultra", headers=headers, timeout=5)
    assert missing.status_code == 404
    error = assert_google_json(missing)["error"]
    assert error["status"] == "NOT_FOUND"
    assert error["message"].startswith("models/gemini-9-ultra is not found for API version v1beta")


def test_quota_keys_can_still_probe_models_get(fake: FakeHandle) -> None:
    for key, status in [
        ("rpm-1", 200),
        ("rpd-1", 200),
        ("unavail-1", 200),
        ("invalid-1", 400),
        ("denied-1", 403),
    ]:
        response = requests.get(f"{fake.base_url}/models/{FLASH}", headers={"x-goog-api-key": key}, timeout=5)
        assert response.status_code == status, key


# -------------------------------------------------------------------------------------------------- auth


def test_no_key_is_403_unregistered_caller(fake: FakeHandle) -> None:
    response = generate(fake, {"contents": [user("hi")]}, key=None)
    assert response.status_code == 403
    assert assert_google_json(response) == fixtures.load_json(
        "reconstructed/403__no-api-key-unregistered-caller.json"
    )


def test_bearer_on_native_is_401(fake: FakeHandle) -> None:
    response = generate(fake, {"contents": [user("hi")]}, key=None, headers={"Authorization": "Bearer ok-1"})
    assert response.status_code == 401
    assert response.json() == fixtures.load_json("reconstructed/401__bearer-api-key-on-native-endpoint.json")


def test_key_in_query_is_accepted_and_logged(fake: FakeHandle) -> None:
    response = generate(fake, {"contents": [user("hi")]}, key=None, params={"key": "ok-query"})
    assert response.status_code == 200
    [entry] = fake.requests()
    assert entry["api_key"] == "ok-query"
    assert entry["query"]["key"] == "ok-query"


# ------------------------------------------------------------------------------------------- behaviours


@pytest.mark.parametrize(
    ("key", "status", "fixture"),
    [
        ("invalid-1", 400, "reconstructed/400__API_KEY_INVALID__native.json"),
        ("unavail-1", 503, "reconstructed/503__UNAVAILABLE__high-demand.json"),
        ("internal-1", 500, "reconstructed/500__INTERNAL.json"),
    ],
)
def test_error_keys_answer_the_recorded_body(fake: FakeHandle, key: str, status: int, fixture: str) -> None:
    response = generate(fake, {"contents": [user("hi")]}, key=key)
    assert response.status_code == status
    assert assert_google_json(response) == fixtures.load_json(fixture)


def _details(body: dict[str, Any], suffix: str) -> dict[str, Any]:
    [detail] = [d for d in body["error"]["details"] if d["@type"].endswith(suffix)]
    return detail


def test_rpm_key_is_429_per_minute_with_retry_info(fake: FakeHandle) -> None:
    response = generate(fake, {"contents": [user("hi")]}, key="rpm-1")
    assert response.status_code == 429
    body = assert_google_json(response)
    assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
    violation = _details(body, "QuotaFailure")["violations"][0]
    assert "PerMinute" in violation["quotaId"]
    assert violation["quotaDimensions"]["model"] == FLASH
    assert _details(body, "RetryInfo")["retryDelay"] == "58s"
    assert f"model: {FLASH}" in body["error"]["message"]


def test_rpm_retry_delay_is_configurable(fake: FakeHandle) -> None:
    fake.script("rpm-2", "rpm", retry_delay="3s")
    body = generate(fake, {"contents": [user("hi")]}, key="rpm-2").json()
    assert _details(body, "RetryInfo")["retryDelay"] == "3s"
    assert "Please retry in 3s." in body["error"]["message"]


def test_rpd_key_is_429_per_day(fake: FakeHandle) -> None:
    response = generate(fake, {"contents": [user("hi")]}, key="rpd-1")
    assert response.status_code == 429
    violation = _details(response.json(), "QuotaFailure")["violations"][0]
    assert "PerDay" in violation["quotaId"]


def test_denied_key_is_403_service_disabled(fake: FakeHandle) -> None:
    response = generate(fake, {"contents": [user("hi")]}, key="denied-1")
    assert response.status_code == 403
    body = assert_google_json(response)
    assert body["error"]["status"] == "PERMISSION_DENIED"
    assert _details(body, "ErrorInfo")["reason"] == "SERVICE_DISABLED"


def test_any_other_key_is_ok(fake: FakeHandle) -> None:
    assert generate(fake, {"contents": [user("hi")]}, key="some-key").status_code == 200


def test_slow_key_waits_before_answering(fake: FakeHandle) -> None:
    fake.script("slow-1", "slow", delay=0.3)
    started = time.monotonic()
    response = generate(fake, {"contents": [user("hi")]}, key="slow-1")
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3
    assert text_of(response.json()) == "echo: hi"


def test_errors_before_a_stream(fake: FakeHandle) -> None:
    sse = stream(fake, {"contents": [user("hi")]}, key="unavail-1")
    assert sse.status_code == 503
    assert not sse.content.startswith(b"data:")
    assert sse.json()["error"]["code"] == 503
    array = stream(fake, {"contents": [user("hi")]}, key="unavail-1", sse=False)
    assert array.status_code == 503
    assert array.headers["content-type"] == "application/json; charset=UTF-8"
    assert array.json() == [fixtures.load_json("reconstructed/503__UNAVAILABLE__high-demand.json")]


def test_midstream_key_sse(fake: FakeHandle) -> None:
    response = stream(fake, {"contents": [user("one two three four")]}, key="midstream-1")
    assert response.status_code == 200
    chunks = sse_chunks(response)
    assert 2 <= len(chunks) <= 3
    assert chunks[-1] == {
        "error": fixtures.load_json("reconstructed/503__UNAVAILABLE__high-demand.json")["error"]
    }
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert text_of(chunks[0]).startswith("echo:")
    assert response.content.endswith(b"\r\n\r\n")


def test_midstream_key_json_array_ends_with_error_element(fake: FakeHandle) -> None:
    response = stream(fake, {"contents": [user("one two three four")]}, key="midstream-1", sse=False)
    assert response.status_code == 200
    elements = response.json()
    assert elements[-1]["error"]["code"] == 503
    assert "candidates" in elements[0]
    assert response.content.endswith(b"\n]")


def test_midstream_and_truncated_keys_answer_non_stream_calls(fake: FakeHandle) -> None:
    for key in ("midstream-1", "truncated-1"):
        response = generate(fake, {"contents": [user("hi")]}, key=key)
        assert response.status_code == 200
        assert response.json()["candidates"][0]["finishReason"] == "STOP"


def test_truncated_key_stream_has_no_finish_reason(fake: FakeHandle) -> None:
    response = stream(fake, {"contents": [user("one two three four")]}, key="truncated-1")
    assert response.status_code == 200
    chunks = sse_chunks(response)
    assert len(chunks) >= 1
    assert all("finishReason" not in c["candidates"][0] for c in chunks)
    assert "".join(text_of(c) for c in chunks) == "echo: one two three"
    array = stream(fake, {"contents": [user("one two")]}, key="truncated-1", sse=False).json()
    assert all("finishReason" not in e["candidates"][0] for e in array)


def test_truncated_abort_drops_the_connection(fake: FakeHandle) -> None:
    fake.script("truncated-9", "truncated", abort=True)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        stream(fake, {"contents": [user("one two three four")]}, key="truncated-9")


# ------------------------------------------------------------------------------------------------- control


def test_script_times_then_reverts(fake: FakeHandle) -> None:
    fake.script("ok-once", "unavail", times=1)
    body = {"contents": [user("hi")]}
    assert generate(fake, body, key="ok-once").status_code == 503
    assert generate(fake, body, key="ok-once").status_code == 200
    fake.script("rpm-7", "ok", times=2)
    assert [generate(fake, body, key="rpm-7").status_code for _ in range(3)] == [200, 200, 429]


def test_script_ok_clears_and_wildcard_applies_to_all(fake: FakeHandle) -> None:
    body = {"contents": [user("hi")]}
    fake.script("ok-2", "internal")
    assert generate(fake, body, key="ok-2").status_code == 500
    fake.script("ok-2", "ok")
    assert generate(fake, body, key="ok-2").status_code == 200
    fake.script("*", "unavail", times=2)
    assert generate(fake, body, key="ok-a").status_code == 503
    assert generate(fake, body, key="ok-b").status_code == 503
    assert generate(fake, body, key="ok-c").status_code == 200


def test_script_rejects_unknown_behaviour(fake: FakeHandle) -> None:
    with pytest.raises(ValueError, match="unknown behaviour"):
        fake.script("ok-1", "explode")


def test_enqueue_body_stream_and_fixture_in_order(fake: FakeHandle) -> None:
    canned = {
        "candidates": [{"content": {"parts": [{"text": "canned"}], "role": "model"}, "finishReason": "STOP"}]
    }
    stream_chunks = [
        {"candidates": [{"content": {"parts": [{"text": "a"}], "role": "model"}, "index": 0}]},
        {
            "candidates": [
                {"content": {"parts": [{"text": "b"}], "role": "model"}, "finishReason": "STOP", "index": 0}
            ]
        },
    ]
    fixture = "native/generate__function-call__gemini-3-pro__vercel-ai.json"
    fake.enqueue({"status": 200, "body": canned}, {"stream": stream_chunks}, {"fixture": fixture})
    assert fake.stats()["queued"] == 3
    body = {"contents": [user("hi")]}
    assert generate(fake, body).json() == canned
    merged = generate(fake, body).json()
    assert text_of(merged) == "ab"
    assert merged["candidates"][0]["finishReason"] == "STOP"
    assert generate(fake, body).json() == fixtures.load_json(fixture)
    assert text_of(generate(fake, body).json()) == "echo: hi"


def test_enqueue_to_stream_requests(fake: FakeHandle) -> None:
    raw_fixture = "native/stream-sse__text__gemini-2.0-flash__raw-body__pydantic-ai.sse"
    fake.enqueue(
        {"body": {"candidates": [{"content": {"parts": [{"text": "one"}]}, "finishReason": "STOP"}]}},
        {"fixture": raw_fixture},
        {"status": 429, "body": fixtures.load_json("reconstructed/429__free-tier-requests-per-minute.json")},
    )
    body = {"contents": [user("hi")]}
    single = sse_chunks(stream(fake, body))
    assert len(single) == 1 and text_of(single[0]) == "one"
    replay = stream(fake, body)
    assert replay.content == fixtures.fixture_path(raw_fixture).read_bytes()
    assert stream(fake, body).status_code == 429


def test_enqueue_rejects_missing_fixture(fake: FakeHandle) -> None:
    with pytest.raises(ValueError, match="no fixture"):
        fake.enqueue({"fixture": "native/does-not-exist.json"})


def test_request_log_records_key_body_and_headers(fake: FakeHandle) -> None:
    body = {"contents": [user("logged")]}
    generate(
        fake, body, key="ok-log", headers={"User-Agent": "pytest-agent", "x-goog-api-client": "gl-python/x"}
    )
    [entry] = fake.requests()
    assert entry["method"] == "POST"
    assert entry["path"] == f"/v1beta/models/{FLASH}:generateContent"
    assert entry["api_key"] == "ok-log"
    assert entry["body"] == body
    assert json.loads(entry["raw_body"]) == body
    assert entry["headers"]["x-goog-api-key"] == "ok-log"
    assert entry["headers"]["user-agent"] == "pytest-agent"
    assert entry["headers"]["x-goog-api-client"] == "gl-python/x"
    assert isinstance(entry["time"], float)
    assert fake.requests(key="other") == []


def test_stats_and_reset(fake: FakeHandle) -> None:
    generate(fake, {"contents": [user("hi")]}, key="ok-s")
    generate(fake, {"contents": [user("hi")]}, key="ok-s")
    generate(fake, {"contents": [user("hi")]}, key="rpm-s")
    stats = fake.stats()
    assert stats["requests"] == {"ok-s": 2, "rpm-s": 1}
    assert stats["open_streams"] == 0
    fake.script("ok-s", "internal")
    fake.enqueue({"body": {}})
    fake.reset()
    stats = fake.stats()
    assert stats["requests"] == {} and stats["queued"] == 0 and stats["overrides"] == {}
    assert fake.requests() == []


def test_client_disconnect_mid_stream_is_counted(fake: FakeHandle) -> None:
    fake.script("ok-gone", "ok", chunk_delay=0.05)
    payload = json.dumps({"contents": [user("[[long]] go")]}).encode()
    request = (
        f"POST /v1beta/models/{FLASH}:streamGenerateContent?alt=sse HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nx-goog-api-key: ok-gone\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while b"data: " not in received:
            received += sock.recv(4096)
        assert fake.stats()["open_streams"] == 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stats = fake.stats()
        if stats["disconnects"] == 1 and stats["open_streams"] == 0:
            break
        time.sleep(0.05)
    assert stats["disconnects"] == 1
    assert stats["open_streams"] == 0


# ---------------------------------------------------------------------------------------------- validation


def test_unknown_field_is_400_with_bad_request_detail(fake: FakeHandle) -> None:
    response = generate(fake, {"contents": [user("hi")], "frequency_penalty": 0.5})
    assert response.status_code == 400
    body = assert_google_json(response)
    recorded = fixtures.load_json("reconstructed/400__unknown-field__openai-compat-array-wrapped.json")[0]
    assert body == recorded  # same field name: identical, and not array-wrapped on native
    nested = generate(fake, {"contents": [user("hi")], "generationConfig": {"max_tokens": 5}}).json()["error"]
    assert nested["message"] == (
        "Invalid JSON payload received. Unknown name \"max_tokens\" at 'generation_config': "
        "Cannot find field."
    )
    assert nested["details"][0]["fieldViolations"][0]["field"] == "generation_config"
    part = generate(fake, {"contents": [{"role": "user", "parts": [{"type": "text", "text": "hi"}]}]})
    assert "at 'contents[0].parts[0]'" in part.json()["error"]["message"]


def test_snake_case_request_is_accepted(fake: FakeHandle) -> None:
    body = {
        "contents": [user("hi")],
        "system_instruction": {"parts": [{"text": "sys words"}]},
        "generation_config": {"max_output_tokens": 50, "thinking_config": {"thinking_budget": 0}},
        "safety_settings": [],
        "tool_config": {"function_calling_config": {"mode": "NONE"}},
    }
    response = generate(fake, body)
    assert response.status_code == 200
    assert response.json()["usageMetadata"]["promptTokenCount"] == 3


def test_missing_contents_and_malformed_json(fake: FakeHandle) -> None:
    missing = generate(fake, {"generationConfig": {}})
    assert missing.status_code == 400
    assert missing.json()["error"] == {
        "code": 400,
        "message": "* GenerateContentRequest.contents: contents is not specified\n",
        "status": "INVALID_ARGUMENT",
    }
    broken = generate(fake, b'{"contents": [')
    assert broken.status_code == 400
    assert broken.json()["error"]["message"].startswith("Invalid JSON payload received.")
    empty_parts = generate(fake, {"contents": [{"role": "user", "parts": []}]})
    assert "contents.parts must not be empty" in empty_parts.json()["error"]["message"]
    bad_role = generate(fake, {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]})
    assert bad_role.json()["error"]["message"] == "Please use a valid role: user, model."


def test_thinking_budget_and_level_together_is_400(fake: FakeHandle) -> None:
    config = {"thinkingConfig": {"thinkingBudget": 10, "thinkingLevel": "low"}}
    response = generate(fake, {"contents": [user("hi")], "generationConfig": config})
    assert response.status_code == 400
    assert response.json() == fixtures.load_json(
        "reconstructed/400__thinking-budget-and-level-both-set__native.json"
    )


@pytest.mark.parametrize(
    ("method", "model", "fixture"),
    [
        (
            "generateContent",
            "gemini-3.6-flahs",
            "errors/404__generateContent-unknown-model__pydantic-ai.yaml",
        ),
        ("countTokens", "nonexistent-model", "errors/404__countTokens-unknown-model__pydantic-ai.yaml"),
        (
            "batchEmbedContents",
            "nonexistent-model",
            "errors/404__batchEmbedContents-unknown-model__pydantic-ai.yaml",
        ),
    ],
)
def test_unknown_model_is_the_recorded_404(fake: FakeHandle, method: str, model: str, fixture: str) -> None:
    body = (
        {"requests": [{"content": {"parts": [{"text": "x"}]}}]}
        if method == "batchEmbedContents"
        else {"contents": [user("hello")]}
    )
    response = call(fake, method, body, model=model)
    assert response.status_code == 404
    assert assert_google_json(response) == recorded_cassette_body(fixture)


def test_model_without_the_method_and_unknown_method(fake: FakeHandle) -> None:
    embed_on_chat = call(fake, "embedContent", {"content": {"parts": [{"text": "x"}]}}, model=FLASH)
    assert embed_on_chat.status_code == 404
    assert "not supported for embedContent" in embed_on_chat.json()["error"]["message"]
    chat_on_embed = generate(fake, {"contents": [user("x")]}, model="gemini-embedding-001")
    assert chat_on_embed.status_code == 404
    made_up = call(fake, "explode", {"contents": [user("x")]})
    assert made_up.status_code == 404
    assert made_up.headers["content-type"].startswith("text/html")


# ------------------------------------------------------------------------------------------ default answers


def test_generate_echoes_last_user_turn_with_recorded_shape(fake: FakeHandle) -> None:
    body = {"contents": [user("first question"), model_turn({"text": "an answer"}), user("second question")]}
    response = generate(fake, body)
    data = assert_google_json(response)
    assert text_of(data) == "echo: second question"
    candidate = data["candidates"][0]
    assert candidate["finishReason"] == "STOP" and candidate["index"] == 0
    usage = data["usageMetadata"]
    assert usage["promptTokenCount"] == 6
    assert usage["candidatesTokenCount"] == 3
    assert usage["totalTokenCount"] == 9
    assert data["modelVersion"] == FLASH
    assert data["responseId"] != generate(fake, body).json()["responseId"]
    recorded = recorded_cassette_body("native/generate__text__gemini-2.5-flash__pydantic-ai.yaml")
    assert set(data) == set(recorded)
    assert set(candidate) == set(recorded["candidates"][0])


def test_max_output_tokens_truncates(fake: FakeHandle) -> None:
    config = {"maxOutputTokens": 3}
    data = generate(fake, {"contents": [user("one two three four")], "generationConfig": config}).json()
    assert text_of(data) == "echo: one two"
    assert data["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert data["usageMetadata"]["candidatesTokenCount"] == 3


def test_candidate_count(fake: FakeHandle) -> None:
    data = generate(fake, {"contents": [user("hi")], "generationConfig": {"candidateCount": 3}}).json()
    assert [c["index"] for c in data["candidates"]] == [0, 1, 2]
    assert [text_of(data, i) for i in range(3)] == ["echo: hi", "echo: hi #1", "echo: hi #2"]


def test_media_parts_are_echoed_as_markers(fake: FakeHandle) -> None:
    parts = [{"text": "what is this"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]
    data = generate(fake, {"contents": [{"role": "user", "parts": parts}]}).json()
    assert text_of(data) == "echo: what is this\n[inlineData:image/png]"


def test_function_call_gemini_25(fake: FakeHandle) -> None:
    data = generate(fake, {"contents": [user("weather?")], "tools": [WEATHER_TOOL]}).json()
    [part] = data["candidates"][0]["content"]["parts"]
    assert part == {"functionCall": {"name": "get_weather", "args": {"city": "x"}}}
    assert data["candidates"][0]["finishReason"] == "STOP"


def test_function_call_gemini3_is_signed_and_shaped_like_the_recording(fake: FakeHandle) -> None:
    config = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}}
    body = {"contents": [user("time?")], "tools": [WEATHER_TOOL], "toolConfig": config}
    data = generate(fake, body, model=GEMINI3).json()
    recorded = fixtures.load_json("native/generate__function-call__gemini-3-pro__vercel-ai.json")
    assert set(data["candidates"][0]) == set(recorded["candidates"][0])
    [part] = data["candidates"][0]["content"]["parts"]
    assert part["functionCall"] == {"name": "get_time", "args": {}}
    assert part["thoughtSignature"]
    assert data["candidates"][0]["finishMessage"] == "Model generated function call(s)."


def test_parallel_calls_and_no_tools_magic(fake: FakeHandle) -> None:
    parallel = generate(
        fake, {"contents": [user("[[parallel]]")], "tools": [WEATHER_TOOL]}, model=GEMINI3
    ).json()
    parts = parallel["candidates"][0]["content"]["parts"]
    assert [p["functionCall"]["name"] for p in parts] == ["get_weather", "get_time"]
    assert "thoughtSignature" in parts[0] and "thoughtSignature" not in parts[1]
    text = generate(fake, {"contents": [user("[[no_tools]] hi")], "tools": [WEATHER_TOOL]}).json()
    assert text_of(text) == "echo: [[no_tools]] hi"
    none_mode = {"functionCallingConfig": {"mode": "NONE"}}
    assert text_of(
        generate(fake, {"contents": [user("hi")], "tools": [WEATHER_TOOL], "toolConfig": none_mode}).json()
    )


def test_args_magic_scripts_the_call_arguments(fake: FakeHandle) -> None:
    prompt = 'run it [[args:{"city": "Lima", "days": 2}]]'
    data = generate(fake, {"contents": [user(prompt)], "tools": [WEATHER_TOOL]}).json()
    [part] = data["candidates"][0]["content"]["parts"]
    assert part == {"functionCall": {"name": "get_weather", "args": {"city": "Lima", "days": 2}}}


def test_call_magic_picks_the_named_function(fake: FakeHandle) -> None:
    prompt = 'read it [[call:get_time]] [[args:{"zone": "UTC"}]]'
    data = generate(fake, {"contents": [user(prompt)], "tools": [WEATHER_TOOL]}).json()
    [part] = data["candidates"][0]["content"]["parts"]
    assert part == {"functionCall": {"name": "get_time", "args": {"zone": "UTC"}}}
    unknown = generate(fake, {"contents": [user("[[call:nope]]")], "tools": [WEATHER_TOOL]}).json()
    assert unknown["candidates"][0]["content"]["parts"][0]["functionCall"]["name"] == "get_weather"


def test_function_response_turn_answers_tool_result(fake: FakeHandle) -> None:
    contents = [
        user("weather?"),
        model_turn({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}),
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}]},
    ]
    data = generate(fake, {"contents": contents, "tools": [WEATHER_TOOL]}).json()
    assert text_of(data) == 'tool result: {"temp":21}'


def test_gemini3_requires_replayed_thought_signatures(fake: FakeHandle) -> None:
    def history(signature: str | None) -> list[dict[str, Any]]:
        call_part: dict[str, Any] = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
        if signature is not None:
            call_part["thoughtSignature"] = signature
        return [
            user("weather?"),
            model_turn(call_part),
            {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 1}}}]},
        ]

    missing = generate(fake, {"contents": history(None), "tools": [WEATHER_TOOL]}, model=GEMINI3)
    assert missing.status_code == 400
    assert missing.json()["error"]["message"].startswith(
        "Function call is missing a thought_signature in functionCall parts."
    )
    assert "`default_api:get_weather` , position 2." in missing.json()["error"]["message"]
    skip = generate(fake, {"contents": history("skip_thought_signature_validator")}, model=GEMINI3)
    assert skip.status_code == 200
    signed = answers.thought_signature(GEMINI3, "get_weather")
    assert generate(fake, {"contents": history(signed)}, model=GEMINI3).status_code == 200
    assert generate(fake, {"contents": history(None)}, model=FLASH).status_code == 200  # 2.5 tolerates it
    bad = generate(fake, {"contents": history("not base64!")}, model=GEMINI3)
    assert bad.status_code == 400
    assert "(TYPE_BYTES), Base64 decoding failed" in bad.json()["error"]["message"]


def test_json_mode_answers_a_schema_instance(fake: FakeHandle) -> None:
    json_schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age"],
    }
    config = {"responseMimeType": "application/json", "responseJsonSchema": json_schema}
    data = generate(fake, {"contents": [user("person")], "generationConfig": config}).json()
    assert json.loads(text_of(data)) == {"name": "x", "age": 1, "tags": ["x"]}
    openapi = {
        "type": "OBJECT",
        "properties": {"ok": {"type": "BOOLEAN"}, "kind": {"type": "STRING", "enum": ["a", "b"]}},
    }
    config = {"response_mime_type": "application/json", "response_schema": openapi}
    data = generate(fake, {"contents": [user("flag")], "generation_config": config}).json()
    assert json.loads(text_of(data)) == {"ok": True, "kind": "a"}


def test_include_thoughts(fake: FakeHandle) -> None:
    config = {"thinkingConfig": {"includeThoughts": True}}
    data = generate(fake, {"contents": [user("think hard")], "generationConfig": config}).json()
    parts = data["candidates"][0]["content"]["parts"]
    assert parts[0] == {"text": "thinking about: think hard", "thought": True}
    assert parts[1]["text"] == "echo: think hard"
    usage = data["usageMetadata"]
    assert usage["thoughtsTokenCount"] == 4
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"] + 4
    budget_only = generate(
        fake, {"contents": [user("x")], "generationConfig": {"thinkingConfig": {"thinkingBudget": 64}}}
    )
    assert "thoughtsTokenCount" in budget_only.json()["usageMetadata"]
    assert all(not p.get("thought") for p in budget_only.json()["candidates"][0]["content"]["parts"])


# ----------------------------------------------------------------------------------------------- magic


def test_magic_safety_matches_the_recording(fake: FakeHandle) -> None:
    data = generate(fake, {"contents": [user("[[safety]] hi")]}).json()
    recorded = recorded_cassette_body(
        "native/generate__finish-SAFETY-empty-content__gemini-1.5-flash__pydantic-ai.yaml"
    )
    assert data["candidates"] == recorded["candidates"]
    assert "candidatesTokenCount" not in data["usageMetadata"]
    chunks = sse_chunks(stream(fake, {"contents": [user("[[safety]] hi")]}))
    assert text_of(chunks[0]).startswith("echo:")
    assert chunks[-1]["candidates"][0]["finishReason"] == "SAFETY"
    assert chunks[-1]["candidates"][0]["content"] == {}


def test_magic_block_has_no_candidates(fake: FakeHandle) -> None:
    data = generate(fake, {"contents": [user("[[block]]")]}).json()
    assert "candidates" not in data
    assert data["promptFeedback"]["blockReason"] == "SAFETY"
    [chunk] = sse_chunks(stream(fake, {"contents": [user("[[block]]")]}))
    assert "candidates" not in chunk and chunk["promptFeedback"]["blockReason"] == "SAFETY"


def test_magic_max_tokens_no_parts(fake: FakeHandle) -> None:
    data = generate(fake, {"contents": [user("[[max_tokens_no_parts]]")]}).json()
    recorded = recorded_cassette_body(
        "native/generate__finish-MAX_TOKENS-no-parts-thinking-ate-budget__gemini-2.5-pro__pydantic-ai.yaml"
    )
    assert data["candidates"] == recorded["candidates"]
    assert data["usageMetadata"]["thoughtsTokenCount"] > 0


def test_magic_malformed_and_code(fake: FakeHandle) -> None:
    malformed = generate(fake, {"contents": [user("[[malformed]]")], "tools": [WEATHER_TOOL]}).json()[
        "candidates"
    ][0]
    assert malformed["finishReason"] == "MALFORMED_FUNCTION_CALL"
    assert malformed["finishMessage"].startswith("Malformed function call:")
    assert "content" not in malformed
    code = generate(fake, {"contents": [user("[[code]] 2+2")]}).json()["candidates"][0]["content"]["parts"]
    assert list(code[0]) == ["executableCode"] and code[0]["executableCode"]["language"] == "PYTHON"
    assert code[1]["codeExecutionResult"]["outcome"] == "OUTCOME_OK"
    assert code[2]["text"] == "echo: [[code]] 2+2"


def test_magic_long_streams_many_chunks(fake: FakeHandle) -> None:
    chunks = sse_chunks(stream(fake, {"contents": [user("[[long]]")]}))
    assert len(chunks) > 100
    assert "".join(text_of(c) for c in chunks).endswith("word0399")


def test_magic_echo_request(fake: FakeHandle) -> None:
    body = {"contents": [user("[[echo_request]]")], "generationConfig": {"temperature": 0.2}}
    assert json.loads(text_of(generate(fake, body).json())) == body


# ---------------------------------------------------------------------------------------------- streaming


def test_sse_stream_framing_and_chunks(fake: FakeHandle) -> None:
    body = {"contents": [user("alpha beta gamma delta epsilon zeta eta")]}
    response = stream(fake, body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    raw = response.content
    events = raw.split(b"\r\n\r\n")
    assert events[-1] == b""
    assert all(e.startswith(b"data: {") and b"\n" not in e for e in events[:-1])
    assert b"[DONE]" not in raw
    assert b'"candidates": [' in raw and b'"role": "model"}' in raw  # Google's ": " after keys
    chunks = sse_chunks(response)
    assert len(chunks) == 3
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    counts = [c["usageMetadata"].get("candidatesTokenCount", 0) for c in chunks]
    assert counts == sorted(counts) and counts[-1] == 8
    assert len({c["responseId"] for c in chunks}) == 1
    whole = generate(fake, body).json()
    assert "".join(text_of(c) for c in chunks) == text_of(whole)
    assert chunks[-1]["usageMetadata"] == whole["usageMetadata"]


def test_json_array_stream_framing(fake: FakeHandle) -> None:
    response = stream(fake, {"contents": [user("alpha beta gamma delta")]}, sse=False)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    raw = response.content
    assert raw.startswith(b'[{\n  "candidates"')
    assert raw.endswith(b"\n}\n]")
    assert raw.count(b"\n,\r\n") == 1
    elements = json.loads(raw)
    assert elements[-1]["candidates"][0]["finishReason"] == "STOP"
    assert wire.json_array(elements) == raw


def test_stream_function_call_patterns(fake: FakeHandle) -> None:
    body = {
        "contents": [user("which country?")],
        "tools": [{"functionDeclarations": [{"name": "get_country"}]}],
    }
    gemini3 = sse_chunks(stream(fake, body, model=GEMINI3))
    recorded = fixtures.load(
        "native/stream-sse__function-call-thoughtSignature__gemini-3-pro__turn1__raw-body__pydantic-ai.sse"
    ).chunks
    assert recorded is not None
    assert [key_shape(c["candidates"]) for c in gemini3] == [key_shape(c["candidates"]) for c in recorded]
    assert gemini3[0]["candidates"][0]["content"]["parts"][0]["functionCall"] == {
        "name": "get_country",
        "args": {},
    }
    assert gemini3[-1]["candidates"][0]["content"]["parts"] == [{"text": ""}]
    legacy = sse_chunks(stream(fake, body, model=GEMINI2))
    [only] = legacy
    assert "functionCall" in only["candidates"][0]["content"]["parts"][0]
    assert only["candidates"][0]["finishReason"] == "STOP"
    assert "index" not in only["candidates"][0]


def test_gemini3_text_stream_ends_with_signed_empty_part(fake: FakeHandle) -> None:
    chunks = sse_chunks(stream(fake, {"contents": [user("hi")]}, model=GEMINI3))
    last_part = chunks[-1]["candidates"][0]["content"]["parts"]
    assert last_part[0]["text"] == "" and last_part[0]["thoughtSignature"]


def test_include_thoughts_stream_sends_thought_first(fake: FakeHandle) -> None:
    config = {"thinkingConfig": {"includeThoughts": True}}
    chunks = sse_chunks(stream(fake, {"contents": [user("deep")], "generationConfig": config}))
    assert chunks[0]["candidates"][0]["content"]["parts"][0]["thought"] is True
    assert all("thoughtsTokenCount" in c["usageMetadata"] for c in chunks)


# ------------------------------------------------------------------------------------ tokens, embeddings


def test_count_tokens_matches_prompt_token_count(fake: FakeHandle) -> None:
    contents = [user("one two three"), model_turn({"text": "four five"}), user("six")]
    counted = assert_google_json(call(fake, "countTokens", {"contents": contents}))
    recorded = recorded_cassette_body("native/countTokens__gemini-2.5-flash__pydantic-ai.yaml")
    assert set(counted) == set(recorded)
    usage = generate(fake, {"contents": contents}).json()["usageMetadata"]
    assert counted["totalTokens"] == usage["promptTokenCount"] == 6
    wrapped = call(
        fake, "countTokens", {"generateContentRequest": {"model": f"models/{FLASH}", "contents": contents}}
    )
    assert wrapped.json()["totalTokens"] == 6


def test_embeddings_are_deterministic_and_sized(fake: FakeHandle) -> None:
    model = "gemini-embedding-001"
    single = call(fake, "embedContent", {"content": {"parts": [{"text": "hello"}]}}, model=model).json()
    assert len(single["embedding"]["values"]) == 3072
    again = call(fake, "embedContent", {"content": {"parts": [{"text": "hello"}]}}, model=model).json()
    assert again == single
    requests_ = [
        {"model": f"models/{model}", "content": {"parts": [{"text": t}]}, "outputDimensionality": 768}
        for t in ("hello", "world")
    ]
    batch = assert_google_json(call(fake, "batchEmbedContents", {"requests": requests_}, model=model))
    recorded = fixtures.load_json(
        "native/batchEmbedContents__768__gemini-embedding-001__decoded-body__llm-gemini.json"
    )
    assert set(batch) == set(recorded) and set(batch["embeddings"][0]) == set(recorded["embeddings"][0])
    assert [len(e["values"]) for e in batch["embeddings"]] == [768, 768]
    assert batch["embeddings"][0]["values"] == single["embedding"]["values"][:768]
    assert batch["embeddings"][0]["values"] != batch["embeddings"][1]["values"]


# ------------------------------------------------------------------------------------------- official SDK


def test_google_genai_sdk_against_the_fake(fake: FakeHandle) -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key="ok-1", http_options=types.HttpOptions(base_url=fake.url, api_version="v1beta")
    )
    reply = client.models.generate_content(
        model=FLASH,
        contents="hello sdk",
        config=types.GenerateContentConfig(system_instruction="be brief", temperature=0.1),
    )
    assert reply.text == "echo: hello sdk"
    assert reply.usage_metadata is not None and reply.usage_metadata.prompt_token_count == 4
    pieces = list(client.models.generate_content_stream(model=GEMINI3, contents="one two three four five"))
    assert len(pieces) > 1
    assert "".join(p.text or "" for p in pieces) == "echo: one two three four five"
    assert pieces[-1].candidates and pieces[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert client.models.count_tokens(model=FLASH, contents="one two three").total_tokens == 3
    embedded = client.models.embed_content(
        model="gemini-embedding-001",
        contents=["a", "b"],
        config=types.EmbedContentConfig(output_dimensionality=16),
    )
    assert embedded.embeddings is not None and [len(e.values or []) for e in embedded.embeddings] == [16, 16]
    names = [m.name for m in client.models.list()]
    assert len(names) == 51 and f"models/{FLASH}" in names
    chat = client.chats.create(model="gemini-3-flash-preview")
    chat.send_message("first")
    assert chat.send_message("second").text == "echo: second"
    last = fake.requests()[-1]
    assert last["api_key"] == "ok-1"
    assert [c["role"] for c in last["body"]["contents"]] == ["user", "model", "user"]
    assert last["body"]["contents"][1]["parts"][0]["thoughtSignature"]  # replayed by the SDK


def test_google_genai_sdk_raises_on_midstream_error(fake: FakeHandle) -> None:
    from google import genai
    from google.genai import errors as genai_errors
    from google.genai import types

    client = genai.Client(
        api_key="midstream-1", http_options=types.HttpOptions(base_url=fake.url, api_version="v1beta")
    )
    with pytest.raises(genai_errors.APIError) as raised:
        list(client.models.generate_content_stream(model=FLASH, contents="one two three"))
    assert raised.value.code == 503


def test_fake_media_answers_are_valid_png_and_pcm() -> None:
    import base64 as b64
    import zlib as z

    from tests.fake_gemini import media
    request = {"contents": [{"role": "user", "parts": [{"text": "a red fox"}]}]}
    image = media.media_answer("gemini-2.5-flash-image", request, "[DEMO] ")
    parts = image["candidates"][0]["content"]["parts"]
    assert parts[0]["text"].startswith("[DEMO] ")
    raw = b64.b64decode(parts[1]["inlineData"]["data"])
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and parts[1]["inlineData"]["mimeType"] == "image/png"
    idat_len = int.from_bytes(raw[33:37], "big")
    assert raw[37:41] == b"IDAT" and len(z.decompress(raw[41:41 + idat_len])) == 16 * (1 + 16 * 3)
    speech = media.media_answer("gemini-2.5-flash-preview-tts", request)
    audio = speech["candidates"][0]["content"]["parts"][0]["inlineData"]
    assert audio["mimeType"] == "audio/L16;codec=pcm;rate=24000" and len(b64.b64decode(audio["data"])) % 2 == 0
    assert speech["usageMetadata"]["candidatesTokensDetails"][0]["modality"] == "AUDIO"
    assert media.media_answer("gemini-2.5-flash", request) is None
