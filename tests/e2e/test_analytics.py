"""Interaction analytics through the real gateway, the fake upstream and a real collector on loopback.

Each surface (OpenAI chat non-stream and stream, native generateContent, a session message) must produce
exactly one Reconify payload with the right fields; the collector's failures must be retried or absorbed
without the client ever noticing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
import requests

from tests.support.collector import Collector, running_collector
from tests.support.gateway import TOKEN, GatewayHandle, start_gateway

KEYS = ["ok-alpha-7f3a9c", "ok-beta-2b8d1e"]
APP_KEY = "app-key-e2e-0001"
API_KEY = "api-key-e2e-0002"
MODEL = "gemini-2.5-flash"


def analytics_gateway(fake_url: str, collector: Collector, **settings: object):
    opts: dict[str, object] = dict(api_keys=KEYS, reconify_endpoint=collector.url, reconify_app_key=APP_KEY,
                                   reconify_api_key=API_KEY, reconify_retry_backoff=0.05,
                                   reconify_retry_backoff_max=0.2, analytics_flush_timeout=1)
    opts.update(settings)
    return start_gateway(fake_url, **opts)


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with running_collector() as c:
        yield c


@pytest.fixture(scope="module")
def gw(fake_server, collector: Collector, tmp_path_factory) -> Iterator[GatewayHandle]:
    folder = tmp_path_factory.mktemp("analytics")
    users = folder / "users.txt"
    users.write_text("# valid users\nalice\nbob-session\n")
    with analytics_gateway(fake_server.base_url, collector, valid_users_file=str(users),
                           interaction_log=str(folder / "interactions.jsonl")) as handle:
        handle.interaction_log = folder / "interactions.jsonl"  # type: ignore[attr-defined]
        yield handle


def client(gw: GatewayHandle) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key=TOKEN, max_retries=0, timeout=30)


def payloads_for(collector: Collector, session: str, count: int = 1, settle: float = 0.3) -> list[dict[str, Any]]:
    """Wait for ``count`` payloads of one session, then make sure no extra one follows."""
    end = time.monotonic() + 15
    while time.monotonic() < end:
        mine = [p for p in list(collector.payloads) if p.get("session") == session]
        if len(mine) >= count:
            break
        time.sleep(0.02)
    time.sleep(settle)
    mine = [p for p in list(collector.payloads) if p.get("session") == session]
    assert len(mine) == count, f"expected {count} payload(s) for session {session}, got {len(mine)}"
    return mine


def candidate_text(response: dict[str, Any]) -> str:
    parts = response["candidates"][0]["content"]["parts"]
    return "".join(p.get("text", "") for p in parts if not p.get("thought"))


def user_texts(request: dict[str, Any]) -> list[str]:
    return [p["text"] for c in request["contents"] if c.get("role", "user") == "user"
            for p in c["parts"] if "text" in p]


def check_common(p: dict[str, Any], *, before: float, after: float, kind: str = "generate") -> None:
    assert p["reconify"] == {"format": "gemini", "type": kind, "version": "2.3.0", "appKey": APP_KEY,
                             "apiKey": API_KEY}
    ts = p["timestamps"]
    assert int(before * 1000) - 1 <= ts["request"] <= ts["response"] <= int(after * 1000) + 1
    assert p["request"]["model"] == MODEL
    assert p["response"]["usageMetadata"]["totalTokenCount"] > 0
    assert p["response"]["candidates"][0]["finishReason"] == "STOP"


def test_non_stream_chat_produces_one_payload(gw: GatewayHandle, collector: Collector, fake) -> None:
    before = time.time()
    resp = client(gw).chat.completions.create(
        model=MODEL, user="alice", extra_headers={"X-Session-Id": "sess-nonstream-1"},
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello analytics"}])
    after = time.time()
    assert resp.choices[0].message.content == "echo: hello analytics"
    (p,) = payloads_for(collector, "sessnonstream1")
    check_common(p, before=before, after=after)
    assert p["user"] == {"userId": "alice", "isAuthenticated": 1}
    assert p["sessionTimeout"] == 10
    assert user_texts(p["request"]) == ["hello analytics"]
    assert p["request"]["systemInstruction"]["parts"][0]["text"] == "be brief"
    assert candidate_text(p["response"]) == "echo: hello analytics"


def test_stream_chat_produces_one_assembled_payload(gw: GatewayHandle, collector: Collector, fake) -> None:
    before = time.time()
    stream = client(gw).chat.completions.create(
        model=MODEL, stream=True, extra_headers={"X-User-Id": "header-user", "X-Session-Id": "sess-stream-1"},
        messages=[{"role": "user", "content": "one two three four five six seven eight"}])
    text = "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    after = time.time()
    assert text == "echo: one two three four five six seven eight"
    (p,) = payloads_for(collector, "sessstream1")
    check_common(p, before=before, after=after)
    assert p["user"] == {"userId": "header-user", "isAuthenticated": 1}
    assert user_texts(p["request"]) == ["one two three four five six seven eight"]
    assert candidate_text(p["response"]) == text  # all chunks joined, final finishReason, last usage


def test_multi_turn_chat_is_typed_chat(gw: GatewayHandle, collector: Collector, fake) -> None:
    client(gw).chat.completions.create(
        model=MODEL, extra_headers={"X-Session-Id": "sess-multi-1"},
        messages=[{"role": "user", "content": "first"}, {"role": "assistant", "content": "echo: first"},
                  {"role": "user", "content": "second"}])
    (p,) = payloads_for(collector, "sessmulti1")
    assert p["reconify"]["type"] == "chat"
    assert "user" not in p  # no user field, no header: no user object


def test_native_generate_produces_one_payload(gw: GatewayHandle, collector: Collector, fake) -> None:
    before = time.time()
    resp = requests.post(gw.url + f"/v1beta/models/{MODEL}:generateContent", timeout=30,
                         headers={"x-goog-api-key": TOKEN, "X-User-Id": "native-user",
                                  "X-Session-Id": "sess-native-1"},
                         json={"contents": [{"role": "user", "parts": [{"text": "native hello"}]}],
                               "generationConfig": {"maxOutputTokens": 100}})
    after = time.time()
    assert resp.status_code == 200, resp.text
    (p,) = payloads_for(collector, "sessnative1")
    check_common(p, before=before, after=after)
    assert p["user"] == {"userId": "native-user", "isAuthenticated": 1}
    assert user_texts(p["request"]) == ["native hello"]
    assert p["request"]["generationConfig"] == {"maxOutputTokens": 100}
    assert candidate_text(p["response"]) == candidate_text(resp.json())


def test_native_stream_produces_one_assembled_payload(gw: GatewayHandle, collector: Collector, fake) -> None:
    with requests.post(gw.url + f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse", timeout=30,
                       stream=True, headers={"x-goog-api-key": TOKEN, "X-Session-Id": "sess-native-2"},
                       json={"contents": [{"role": "user", "parts": [{"text": "alpha beta gamma delta"}]}]}) as r:
        assert r.status_code == 200
        events = [orjson.loads(line[5:]) for line in r.iter_lines() if line.startswith(b"data:")]
    streamed = "".join(candidate_text(e) for e in events if e.get("candidates"))
    (p,) = payloads_for(collector, "sessnative2")
    assert candidate_text(p["response"]) == streamed == "echo: alpha beta gamma delta"
    assert p["response"]["candidates"][0]["finishReason"] == "STOP"


def test_session_message_produces_one_payload_and_one_log_line(gw: GatewayHandle, collector: Collector,
                                                               fake) -> None:
    start = requests.post(gw.url + "/start_chat", json={"user_id": "bob-session"}, timeout=10)
    assert start.status_code == 200, start.text
    chat_id = start.json()["chat_id"]
    before = time.time()
    sent = requests.post(gw.url + "/send_message", json={"chat_id": chat_id, "message": "session hello"},
                         timeout=30)
    after = time.time()
    assert sent.status_code == 200, sent.text
    answer = sent.json()["response"]
    session = "".join(ch for ch in chat_id if ch.isascii() and ch.isalnum())
    (p,) = payloads_for(collector, session)
    check_common(p, before=before, after=after, kind="chat")
    assert p["user"] == {"userId": "bob-session", "isAuthenticated": 1}
    assert user_texts(p["request"])[-1] == "session hello"
    assert candidate_text(p["response"]) == answer
    requests.post(gw.url + "/end_chat", json={"chat_id": chat_id}, timeout=10)
    # The sessions log line comes from the same event.
    log_path: Path = gw.interaction_log  # type: ignore[attr-defined]
    end = time.monotonic() + 10
    lines: list[dict[str, Any]] = []
    while time.monotonic() < end:
        if log_path.exists():
            lines = [orjson.loads(x) for x in log_path.read_bytes().splitlines()]
            lines = [x for x in lines if x.get("chat_id") == chat_id]
            if lines:
                break
        time.sleep(0.05)
    (line,) = lines
    assert line["user_id"] == "bob-session" and line["message"] == "session hello"
    assert line["output_length"] == len(answer) and line["status"] == 200 and line["surface"] == "session"
    assert line["model"] == MODEL and line["latency_ms"] >= 0 and line["timestamp"].endswith("Z")


def test_collector_500_then_200_gets_the_payload_after_a_retry(gw: GatewayHandle, collector: Collector,
                                                                fake) -> None:
    seen = len(collector.statuses)
    collector.answer(500)
    client(gw).chat.completions.create(model=MODEL, extra_headers={"X-Session-Id": "sess-retry-1"},
                                       messages=[{"role": "user", "content": "retry me"}])
    (p,) = payloads_for(collector, "sessretry1")
    assert user_texts(p["request"]) == ["retry me"]
    assert collector.statuses[seen:seen + 2] == [500, 200]
    assert gw.health()["analytics"]["exporters"]["reconify"]["retries"] >= 1


def test_health_shows_analytics_counters(gw: GatewayHandle, collector: Collector, fake) -> None:
    stats = gw.health()["analytics"]
    assert stats["enabled"] is True and stats["published"] >= 1
    rec = stats["exporters"]["reconify"]
    assert {"sent", "failed", "dropped", "queued"} <= set(rec)
    assert rec["sent"] >= 1
    assert APP_KEY not in str(stats) and API_KEY not in str(stats)
    assert APP_KEY not in gw.logs() and API_KEY not in gw.logs()


def test_hanging_collector_does_not_slow_requests(fake_server, fake) -> None:
    with running_collector() as collector:
        collector.hang()
        with analytics_gateway(fake_server.base_url, collector, reconify_timeout=60) as gw:
            c = client(gw)
            first = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "h1"}])
            assert first.choices[0].message.content == "echo: h1"
            collector.wait_hanging(1)  # the collector now holds the first payload's POST
            second = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "h2"}])
            text = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
                model=MODEL, stream=True, messages=[{"role": "user", "content": "h3"}]) if ch.choices)
            # Both answers reached the client while the collector was still hanging.
            assert second.choices[0].message.content == "echo: h2" and text == "echo: h3"
            assert collector.hanging >= 1 and collector.payloads == []
            collector.release()
            got = collector.wait_for(3)
            assert sorted(user_texts(p["request"])[0] for p in got) == ["h1", "h2", "h3"]


def test_full_queue_drops_and_counts(fake_server, fake) -> None:
    with running_collector() as collector:
        collector.hang()
        with analytics_gateway(fake_server.base_url, collector, reconify_timeout=60, reconify_concurrency=1,
                               analytics_queue_size=2) as gw:
            c = client(gw)
            c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "q0"}])
            collector.wait_hanging(1)
            for i in range(1, 6):
                c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"q{i}"}])
            end = time.monotonic() + 10
            while time.monotonic() < end:
                rec = gw.health()["analytics"]["exporters"]["reconify"]
                if rec["dropped"] >= 3:
                    break
                time.sleep(0.05)
            assert rec["queued"] == 2 and rec["dropped"] == 3
            assert gw.health()["analytics"]["dropped"] >= 3
            collector.release()
            got = collector.wait_for(3)  # the one in flight and the two newest
            assert sorted(user_texts(p["request"])[0] for p in got) == ["q0", "q4", "q5"]
