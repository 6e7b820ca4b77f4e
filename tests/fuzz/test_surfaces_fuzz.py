"""Generated bodies against every surface of a real gateway over the fake upstream (issue 12, item 7).

Hypothesis (a fixed seed: ``derandomize``) builds some thousands of bodies: plausible requests whose fields
take arbitrary JSON (huge integers, floats, deep nesting past orjson's limits, wrong types), bare JSON values
and bytes that are not JSON. Each is sent with a real HTTP client over loopback; whatever the gateway makes
of it, it must never answer 5xx, and every 4xx must be in the surface's own error shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fake_gemini.process import start_fake
from tests.support.gateway import GatewayHandle, start_gateway

USER = "fuzzer"
MODELS = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-3-pro-preview", "gemini-2.0-flash", "text-embedding-004",
          "gemini-embedding-001", "no-such-model"]
TIMEOUT = 15

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


# -- values ------------------------------------------------------------------------------------------------

EDGES = [2**63, 2**64, 2**64 - 1, -(2**63) - 1, 10**30, 1e30, -1e30, 1e308, 0.5, -1, 0, "", [], {}, None,
         True, "x" * 300]
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
                    st.sampled_from(EDGES))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(st.text(max_size=6), inner,
                                                                            max_size=3)),
                           max_leaves=12)


def _nest(levels: int, leaf: Any, as_list: bool) -> Any:
    for i in range(levels):
        leaf = [leaf] if as_list and i % 2 else {"a": leaf}
    return leaf


deep = st.builds(_nest, st.integers(min_value=1, max_value=400), json_values, st.booleans())
values = st.one_of(json_values, json_values, deep)


def schema() -> st.SearchStrategy[Any]:
    """Something shaped like a JSON Schema, whose leaves and depth are fuzzed."""
    return st.one_of(values, st.fixed_dictionaries({"type": st.just("object")},
                                                   optional={"properties": st.dictionaries(st.text(max_size=5),
                                                                                           values, max_size=3),
                                                             "required": values}))


def some(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


# -- OpenAI chat completions ------------------------------------------------------------------------------

text_or_value = st.one_of(st.text(max_size=20), values)
parts = st.lists(st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": text_or_value}),
    st.fixed_dictionaries({"type": st.just("image_url"),
                           "image_url": st.one_of(values, st.just({"url": "data:image/png;base64,iVBORw0KGgo="}))}),
    st.fixed_dictionaries({"type": st.sampled_from(["input_audio", "file", "refusal", "weird"])},
                          optional={"input_audio": values, "file": values, "refusal": values}),
    values), max_size=3)
tool_call = st.fixed_dictionaries(
    {"id": st.one_of(st.just("call_1"), values), "type": st.one_of(st.just("function"), values),
     "function": st.one_of(values, st.fixed_dictionaries(
         {"name": st.one_of(st.just("f"), values),
          "arguments": st.one_of(st.builds(json.dumps, values), values)}))})
message = st.one_of(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "system", "developer"]),
                           "content": st.one_of(st.text(max_size=30), parts, values)}),
    st.fixed_dictionaries({"role": st.just("assistant")},
                          optional={"content": text_or_value, "tool_calls": st.one_of(st.lists(tool_call, max_size=2),
                                                                                     values)}),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": st.one_of(st.just("call_1"), values),
                           "content": st.one_of(st.builds(json.dumps, values), values)}),
    st.dictionaries(st.sampled_from(["role", "content", "name", "tool_calls"]), values, max_size=3),
    values)
tool = st.one_of(
    st.fixed_dictionaries({"type": st.just("function"),
                           "function": st.one_of(values, st.fixed_dictionaries(
                               {"name": st.one_of(st.just("f"), values)},
                               optional={"parameters": schema(), "description": values}))}),
    st.dictionaries(st.sampled_from(["googleSearch", "google_search", "codeExecution", "urlContext"]), values,
                    min_size=1, max_size=1),
    values)
google_block = some({"thinking_config": st.one_of(values, some({"thinking_budget": values, "thinking_level": values,
                                                                 "include_thoughts": values})),
                     "safety_settings": values, "cached_content": values, "task_type": values})
chat_body = st.fixed_dictionaries(
    {"model": st.one_of(st.sampled_from(MODELS), values),
     "messages": st.one_of(st.lists(message, min_size=1, max_size=4), values)},
    optional={name: values for name in (
        "temperature", "top_p", "top_k", "max_tokens", "max_completion_tokens", "stop", "seed", "n",
        "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "modalities", "reasoning_effort",
        "tool_choice", "user", "metadata", "unknown_field")} | {
        "stream": st.one_of(st.booleans(), values), "stream_options": values,
        "tools": st.one_of(st.lists(tool, max_size=3), values),
        "response_format": st.one_of(values, st.fixed_dictionaries({"type": st.just("json_schema"),
                                                                    "json_schema": some({"schema": schema()})})),
        "google": st.one_of(google_block, values), "extra_body": st.one_of(st.fixed_dictionaries(
            {"google": google_block}), values)})

# -- OpenAI embeddings, native, sessions ------------------------------------------------------------------

embeddings_body = st.fixed_dictionaries(
    {"model": st.one_of(st.sampled_from(MODELS), values),
     "input": st.one_of(st.text(min_size=1, max_size=20), st.lists(st.text(max_size=10), max_size=3), values)},
    optional={"encoding_format": st.one_of(st.sampled_from(["float", "base64"]), values), "dimensions": values,
              "google": google_block, "user": values})

native_part = st.one_of(st.fixed_dictionaries({"text": text_or_value}),
                        st.fixed_dictionaries({"functionCall": some({"name": values, "args": values})}),
                        st.fixed_dictionaries({"inlineData": some({"mimeType": values, "data": values})}), values)
native_body = st.fixed_dictionaries(
    {"contents": st.one_of(st.lists(st.fixed_dictionaries({"role": st.one_of(st.sampled_from(["user", "model"]), values),
                                                           "parts": st.one_of(st.lists(native_part, max_size=3),
                                                                              values)}),
                                    max_size=3), values)},
    optional={"generationConfig": st.one_of(some({k: values for k in (
        "temperature", "maxOutputTokens", "seed", "topK", "candidateCount", "responseSchema", "thinkingConfig",
        "responseMimeType")}), values),
        "tools": st.one_of(st.lists(st.one_of(st.dictionaries(st.sampled_from(["googleSearch", "functionDeclarations",
                                                                             "codeExecution"]), values, max_size=1),
                                              values), max_size=2), values),
        "systemInstruction": values, "safetySettings": values, "toolConfig": values, "bogus": values})

session_config = st.one_of(some({k: values for k in (
    "max_output_tokens", "temperature", "top_p", "top_k", "stop_sequences", "candidate_count", "seed",
    "response_schema", "response_mime_type", "thinking_config", "maxOutputTokens", "nonsense")}), values)
start_body = some({"user_id": st.one_of(st.just(USER), values), "model_name": st.one_of(st.sampled_from(MODELS),
                                                                                            values),
                   "generation_config": session_config})


def bodies(structured: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Mostly the structured bodies, sometimes a bare JSON value or bytes that are not JSON at all."""
    encoded = st.builds(lambda v: json.dumps(v).encode(), st.one_of(structured, structured, structured, values))
    return st.one_of(encoded, encoded, encoded, encoded, encoded, encoded, st.binary(max_size=40))


# -- the gateway ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    users = tmp_path_factory.mktemp("fuzz") / "users.txt"
    users.write_text(f"{USER}\n")
    with start_fake() as fake, start_gateway(
            fake.base_url, api_keys=["ok-fuzz-1a2b3c", "ok-fuzz-4d5e6f"], valid_users_file=str(users),
            user_rate_limit=100000, session_max_per_user=100000, session_max_total=100000,
            log_level="WARNING") as handle:
        yield handle


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="module")
def chat_id(gw: GatewayHandle, http: requests.Session) -> str:
    resp = http.post(gw.url + "/start_chat", json={"user_id": USER}, timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["chat_id"])


def _json(resp: requests.Response, *, content_type: bool = True) -> Any:
    if content_type:
        assert "json" in resp.headers.get("content-type", ""), (resp.status_code, resp.headers, resp.text[:300])
    return resp.json()


def openai_shape(resp: requests.Response) -> None:
    error = _json(resp)["error"]
    assert set(error) == {"message", "type", "param", "code"} and isinstance(error["message"], str)
    assert isinstance(error["type"], str) and (error["param"] is None or isinstance(error["param"], str))


def google_shape(resp: requests.Response) -> None:
    # Google keeps ``text/event-stream`` on an early alt=sse error with a JSON body (a recorded fixture says
    # so) and the gateway relays that faithfully: the body must be JSON, whatever the header.
    body = _json(resp, content_type="alt=sse" not in (resp.request.url or ""))
    if isinstance(body, list):  # the JSON-array stream wraps an early error in [...], as Google does
        assert len(body) == 1
        body = body[0]
    error = body["error"]
    assert error["code"] == resp.status_code
    assert isinstance(error["message"], str) and isinstance(error["status"], str)


def session_shape(resp: requests.Response) -> None:
    body = _json(resp)
    assert set(body) == {"error"} and isinstance(body["error"], str)


def check(resp: requests.Response, shape: Any, body: bytes) -> None:
    assert resp.status_code < 500, (resp.status_code, resp.text[:500], body[:500])
    if resp.status_code >= 400:
        shape(resp)


def post(http: requests.Session, url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    resp = http.post(url, data=body, headers={"content-type": "application/json", **headers}, timeout=TIMEOUT)
    resp.content  # noqa: B018 - read streams to their end
    return resp


# -- the tests: 2,400 requests ---------------------------------------------------------------------------

@settings(FUZZ, max_examples=700)
@given(body=bodies(chat_body))
def test_chat_completions(gw: GatewayHandle, http: requests.Session, body: bytes) -> None:
    check(post(http, gw.v1 + "/chat/completions", body, gw.headers()), openai_shape, body)


@settings(FUZZ, max_examples=250)
@given(body=bodies(embeddings_body))
def test_embeddings(gw: GatewayHandle, http: requests.Session, body: bytes) -> None:
    check(post(http, gw.v1 + "/embeddings", body, gw.headers()), openai_shape, body)


@settings(FUZZ, max_examples=800)
@given(body=bodies(native_body), model=st.sampled_from(MODELS),
       method=st.sampled_from(["generateContent", "streamGenerateContent?alt=sse", "streamGenerateContent",
                               "countTokens"]))
def test_native(gw: GatewayHandle, http: requests.Session, body: bytes, model: str, method: str) -> None:
    url = f"{gw.url}/v1beta/models/{model}:{method}"
    check(post(http, url, body, {"x-goog-api-key": gw.token}), google_shape, body)


@settings(FUZZ, max_examples=250)
@given(body=bodies(start_body))
def test_sessions_start(gw: GatewayHandle, http: requests.Session, body: bytes) -> None:
    check(post(http, gw.url + "/start_chat", body, {}), session_shape, body)


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_sessions_send(gw: GatewayHandle, http: requests.Session, chat_id: str, data: st.DataObject) -> None:
    send = some({"chat_id": st.one_of(st.just(chat_id), st.just(chat_id), values),
                 "message": st.one_of(st.text(min_size=1, max_size=30), values),
                 "user_id": st.one_of(st.just(USER), values)})
    body = data.draw(bodies(send))
    check(post(http, gw.url + "/send_message", body, {}), session_shape, body)
