"""The bodies of issue 12 item 7, each a text/plain 500 before, through the real gateway and real clients:
now a 400 in the caller's protocol naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import requests

from tests.fake_gemini.process import FakeHandle
from tests.support.gateway import GatewayHandle, start_gateway

MODEL = "gemini-2.5-flash"
USER = [{"role": "user", "content": "hi"}]


def deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture(scope="module")
def gw(fake_server: FakeHandle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    users = tmp_path_factory.mktemp("limits") / "users.txt"
    users.write_text("alice\n")
    with start_gateway(
        fake_server.base_url, api_keys=["ok-limits-1a2b3c"], valid_users_file=str(users)
    ) as handle:
        yield handle


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": deep(255)}}]},
            "tools[0].function.parameters",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": deep(255)}}},
            "response_format.json_schema.schema",
        ),
        (
            {"extra_body": {"google": {"safety_settings": [deep(255)]}}},
            "extra_body.google.safety_settings[0]",
        ),
        ({"seed": 10**30}, "seed"),
        ({"max_tokens": 2**64}, "max_tokens"),
        ({"tools": [{"googleSearch": 5}]}, "tools[0].googleSearch"),
    ],
)
def test_openai_sdk_gets_a_400_naming_the_field(gw: GatewayHandle, extra: dict[str, Any], param: str) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.token, max_retries=0, timeout=30)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=USER, extra_body=extra)  # type: ignore[arg-type]
    assert err.value.status_code == 400
    assert str(err.value.body["param"]).startswith(param)  # type: ignore[index]


def test_deep_tool_call_arguments(gw: GatewayHandle) -> None:
    messages = [
        *USER,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "f", "arguments": json.dumps(deep(255))},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "{}"},
    ]
    resp = requests.post(
        gw.v1 + "/chat/completions",
        json={"model": MODEL, "messages": messages},
        headers=gw.headers(),
        timeout=30,
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["param"].startswith("messages[1].tool_calls[0].function.arguments")


def test_native_deep_body_is_googles_400(gw: GatewayHandle) -> None:
    body = {"contents": [{"role": "user", "parts": [{"functionCall": {"name": "f", "args": deep(255)}}]}]}
    resp = requests.post(
        f"{gw.url}/v1beta/models/{MODEL}:generateContent",
        json=body,
        headers={"x-goog-api-key": gw.token},
        timeout=30,
    )
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    field = error["details"][0]["fieldViolations"][0]["field"]
    assert field.startswith("contents[0].parts[0].functionCall.args")


def test_session_refuses_an_unsendable_config_at_start(gw: GatewayHandle) -> None:
    resp = requests.post(
        gw.url + "/start_chat", json={"user_id": "alice", "generation_config": {"seed": 10**30}}, timeout=30
    )
    assert resp.status_code == 400
    assert resp.json()["error"].startswith("generation_config.seed")
    ok = requests.post(
        gw.url + "/start_chat", json={"user_id": "alice", "generation_config": {"seed": 7}}, timeout=30
    )
    sent = requests.post(
        gw.url + "/send_message", json={"chat_id": ok.json()["chat_id"], "message": "hi"}, timeout=30
    )
    assert sent.status_code == 200, sent.text
