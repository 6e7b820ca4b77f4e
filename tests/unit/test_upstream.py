"""GeminiClient's retry loop and the pool's accounting, against a tiny Gemini on loopback inside the test.

The in-process upstream decides each answer from (key, prompt), so a poison request (one that Gemini always
fails), a bad key, a slow spell and streams that break mid-way are one line each. Timeouts are tens of
milliseconds and the backoff is scaled down, so the loop's edges run in well under a second; nothing asserts
on time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from app.errors import AllKeysDisabled
from app.keys import (
    KeyManager,
    MemoryPoolStore,
    NoKeyAvailable,
    Outcome,
    OutcomeKind,
    PoolOptions,
    RequestAccount,
    classify,
    key_id,
)
from app.upstream import GeminiClient, UpstreamConfig, UpstreamResponse, UpstreamStream, UpstreamUnavailable

KEYS = ["key-one-aaaa", "key-two-bbbb", "key-three-cccc"]
IDS = [key_id(k) for k in KEYS]
MODEL = "gemini-2.5-flash"
GENERATE = f"models/{MODEL}:generateContent"
STREAM = f"models/{MODEL}:streamGenerateContent"
POISON = "poison"

Rule = Callable[[str, str], str]  # (key, prompt) -> "ok" | "500" | "502" | "stall" | "break"


def _chunk(text: str, finish: bool) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return b"data: " + orjson.dumps({"candidates": [candidate]}) + b"\r\n\r\n"


class Gemini:
    """The in-process upstream: records (key, prompt) per request and answers as ``rule`` says."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.rule: Rule = lambda key, prompt: "500" if POISON in prompt else "ok"
        self.spell_over = asyncio.Event()
        self.base_url = ""

    def keys_called(self) -> Counter[str]:
        return Counter(key for key, _ in self.calls)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("x-goog-api-key", "")
        body = await request.json()
        prompt = body["contents"][0]["parts"][0]["text"]
        self.calls.append((key, prompt))
        action = self.rule(key, prompt)
        if action == "stall":
            await self.spell_over.wait()
        if action in ("500", "502"):
            status = int(action)
            name = "INTERNAL" if status == 500 else "BAD_GATEWAY"
            return web.json_response({"error": {"code": status, "message": "boom", "status": name}}, status=status)
        if request.match_info["call"].endswith(":streamGenerateContent"):
            resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(_chunk("echo: ", False))
            if action == "break":
                assert request.transport is not None
                request.transport.close()  # the connection drops mid-stream
                return resp
            await resp.write(_chunk(prompt, True))
            await resp.write_eof()
            return resp
        return web.json_response({"candidates": [{"content": {"parts": [{"text": f"echo: {prompt}"}]},
                                                  "finishReason": "STOP"}]})


@pytest.fixture
async def gemini() -> AsyncIterator[Gemini]:
    fake = Gemini()
    app = web.Application()
    app.router.add_post("/v1beta/models/{call}", fake.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.base_url = f"http://127.0.0.1:{port}/v1beta"
    try:
        yield fake
    finally:
        fake.spell_over.set()
        await runner.cleanup()


@pytest.fixture
async def clients() -> AsyncIterator[list[GeminiClient]]:
    made: list[GeminiClient] = []
    yield made
    for client in made:
        await client.close()


@pytest.fixture
def pool(gemini: Gemini, clients: list[GeminiClient]) -> Callable[..., Any]:
    async def make(keys: list[str] = KEYS, *, max_failures: int = 3, max_concurrent: int = 0,
                   **config: Any) -> GeminiClient:
        options = PoolOptions(max_failures=max_failures, max_concurrent=max_concurrent)
        manager = KeyManager(keys, MemoryPoolStore(), options=options)
        # A generous read timeout: a loaded machine must not turn an answer into a timeout. The slow-spell
        # tests set a short one (their upstream stalls for good).
        settings: dict[str, Any] = {"read_timeout": 2.0, "time_out": 10.0, "backoff_base": 0.001,
                                    "backoff_cap": 0.002, **config}
        client = GeminiClient(UpstreamConfig(gemini.base_url, **settings), manager)
        await client.start()
        clients.append(client)
        return client

    return make


def body(prompt: str) -> bytes:
    return orjson.dumps({"contents": [{"role": "user", "parts": [{"text": prompt}]}]})


async def generate(client: GeminiClient, prompt: str) -> UpstreamResponse:
    return await client.call("POST", GENERATE, model=MODEL, body=body(prompt))


async def keys_state(client: GeminiClient) -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry for entry in await client.keys.snapshot()}


async def disabled(client: GeminiClient) -> list[str]:
    return await client.keys.disabled_ids()


async def consume(stream: UpstreamStream) -> bool:
    """Read a committed stream to its end and report how it ended, as the services do."""
    try:
        async for _ in stream.rest():
            pass
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        await stream.finish(Outcome(OutcomeKind.TRANSIENT, 0, reason=type(exc).__name__))
        return False
    await stream.finish(classify(200, b""))
    return True


# -- poison requests --------------------------------------------------------------------------------------------


async def test_poison_request_is_tried_on_two_keys_returns_the_upstream_error_and_charges_none(
        gemini: Gemini, pool: Callable[..., Any]) -> None:
    client = await pool(max_failures=1)  # the harshest setting: one charge would disable a key
    for _ in range(6):  # twice the pool over
        answer = await generate(client, POISON)
        assert answer.status == 500 and b"boom" in answer.body  # the upstream's own error
        assert answer.attempts == 2
    assert len(gemini.calls) == 12
    assert await disabled(client) == []
    assert all(entry["failures"] == 0 for entry in (await keys_state(client)).values())
    ok = await generate(client, "hello")
    assert ok.status == 200 and ok.json()["candidates"][0]["content"]["parts"][0]["text"] == "echo: hello"


async def test_poison_requests_among_good_traffic_leave_every_key_up(gemini: Gemini,
                                                                     pool: Callable[..., Any]) -> None:
    client = await pool(max_failures=2)
    answers = [await generate(client, POISON if i % 3 == 0 else f"q{i}") for i in range(30)]
    assert Counter(a.status for a in answers) == {200: 20, 500: 10}
    assert await disabled(client) == []
    # A burst of both at once, too.
    answers = await asyncio.gather(*(generate(client, POISON if i % 3 == 0 else f"b{i}") for i in range(30)))
    assert Counter(a.status for a in answers) == {200: 20, 500: 10}
    assert await disabled(client) == []


async def test_a_bad_key_is_charged_when_the_same_request_succeeds_elsewhere(gemini: Gemini,
                                                                           pool: Callable[..., Any]) -> None:
    gemini.rule = lambda key, prompt: "500" if key == KEYS[0] else "ok"
    client = await pool(max_failures=3)
    for i in range(9):
        assert (await generate(client, f"q{i}")).status == 200
    assert await disabled(client) == [IDS[0]]
    state = await keys_state(client)
    assert "3 consecutive transient failures" in state[IDS[0]]["reason"]
    assert gemini.keys_called()[KEYS[0]] == 3  # charged once per request, then left alone


async def test_one_request_never_disables_more_than_one_key(gemini: Gemini, pool: Callable[..., Any]) -> None:
    # Two keys fail, each its own way, so the request goes on to the third; both streaks are one short.
    gemini.rule = lambda key, prompt: {KEYS[0]: "500", KEYS[1]: "502"}.get(key, "ok")
    client = await pool(max_failures=1)
    answer = await generate(client, "q")
    assert answer.status == 200 and answer.key_id == IDS[2] and answer.attempts == 3
    assert await disabled(client) == [IDS[0]]  # only the first failed key was charged
    state = await keys_state(client)
    assert state[IDS[1]]["state"] == "active" and state[IDS[1]]["counters"]["transient"] == 1


async def test_a_single_key_pool_retries_its_key_and_keeps_it(gemini: Gemini, pool: Callable[..., Any]) -> None:
    client = await pool(KEYS[:1], max_failures=1, max_retries=3)
    answer = await generate(client, POISON)
    assert answer.status == 500 and answer.attempts == 3
    # One request, one charge, but no other key ever served: no evidence points at this key.
    assert await disabled(client) == []
    assert (await keys_state(client))[IDS[0]]["failures"] == 1


# -- slow spells ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_retries", [1, 10])
async def test_a_slow_spell_disables_no_key(gemini: Gemini, pool: Callable[..., Any], max_retries: int) -> None:
    gemini.rule = lambda key, prompt: "stall"
    client = await pool(max_failures=2, max_retries=max_retries, read_timeout=0.05)
    for i in range(9):
        with pytest.raises(UpstreamUnavailable, match="timeout"):
            await generate(client, f"q{i}")
    assert await disabled(client) == []
    if max_retries > 1:  # two keys timed out on the same request: nobody is charged, nothing more is tried
        assert len(gemini.calls) == 18
        assert all(entry["failures"] == 0 for entry in (await keys_state(client)).values())
    gemini.rule = lambda key, prompt: "ok"
    for i in range(3):
        assert (await generate(client, f"after {i}")).status == 200
    assert await disabled(client) == []


# -- streams ----------------------------------------------------------------------------------------------------


async def open_stream(client: GeminiClient, prompt: str) -> UpstreamStream:
    result = await client.stream(STREAM, model=MODEL, body=body(prompt))
    assert isinstance(result, UpstreamStream)
    return result


async def test_streams_that_keep_breaking_mid_way_bench_their_key(gemini: Gemini,
                                                                 pool: Callable[..., Any]) -> None:
    gemini.rule = lambda key, prompt: "break" if key == KEYS[0] and prompt.startswith("s") else "ok"
    client = await pool(max_failures=3)
    broken = 0
    for i in range(12):
        stream = await open_stream(client, f"s{i}")
        if not await consume(stream):
            broken += 1
            assert stream.key_id == IDS[0]
        # Non-stream calls succeed on every key in between: they must not wipe the stream streak.
        assert (await generate(client, f"c{i}")).status == 200
    assert broken == 3
    state = await keys_state(client)
    assert state[IDS[0]]["state"] == "disabled" and "mid-stream" in state[IDS[0]]["reason"]
    assert state[IDS[1]]["state"] == state[IDS[2]]["state"] == "active"


async def test_streams_that_break_on_every_key_bench_none(gemini: Gemini, pool: Callable[..., Any]) -> None:
    gemini.rule = lambda key, prompt: "break"
    client = await pool(max_failures=1)
    for i in range(6):
        assert not await consume(await open_stream(client, f"s{i}"))
    assert await disabled(client) == []  # no key finished a stream meanwhile: no evidence against any
    assert all(entry["stream_failures"] == 2 for entry in (await keys_state(client)).values())


async def test_a_clean_stream_resets_its_keys_stream_streak(gemini: Gemini, pool: Callable[..., Any]) -> None:
    gemini.rule = lambda key, prompt: "break" if prompt.startswith("bad") else "ok"
    client = await pool(KEYS[:1], max_failures=2)
    assert not await consume(await open_stream(client, "bad 1"))
    assert (await keys_state(client))[IDS[0]]["stream_failures"] == 1
    assert await consume(await open_stream(client, "good"))
    assert (await keys_state(client))[IDS[0]]["stream_failures"] == 0


async def test_a_stream_holds_its_keys_slot_until_it_ends(gemini: Gemini, pool: Callable[..., Any]) -> None:
    client = await pool(KEYS[:1], max_concurrent=1)
    stream = await open_stream(client, "long")
    waiting = asyncio.create_task(generate(client, "queued"))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done() and [p for _, p in gemini.calls] == ["long"]  # queued behind the slot
    assert await consume(stream)
    assert (await waiting).status == 200
    # Failed attempts give their slot back too: a poison request cannot starve the key.
    assert (await generate(client, POISON)).status == 500
    assert (await generate(client, "after")).status == 200


async def test_a_lease_reports_once(gemini: Gemini, pool: Callable[..., Any]) -> None:
    client = await pool(KEYS[:1])
    account = RequestAccount(MODEL)
    lease = await client.keys.lease(account, deadline=time.monotonic() + 5)
    await lease.report(classify(200, b""))
    await lease.report(classify(200, b""))
    await lease.report(Outcome(OutcomeKind.KEY_INVALID, 403, None, "x"))
    state = (await keys_state(client))[IDS[0]]
    assert state["counters"]["ok"] == 1 and state["state"] == "active"
    lease.release()
    lease.release()  # idempotent


async def test_no_key_left_raises_no_key_available(pool: Callable[..., Any]) -> None:
    client = await pool(KEYS[:1])
    await client.keys.disable(IDS[0])
    with pytest.raises(NoKeyAvailable) as caught:
        await generate(client, "q")
    assert isinstance(caught.value, AllKeysDisabled)


# -- transport errors -------------------------------------------------------------------------------------------


async def test_a_key_with_a_newline_is_disabled_not_a_crash(gemini: Gemini, pool: Callable[..., Any]) -> None:
    bad = "key-four\nkey-five"  # two keys pasted at once
    client = await pool([KEYS[0], bad, KEYS[1]], max_failures=3)
    for i in range(6):
        assert (await generate(client, f"q{i}")).status == 200
    state = await keys_state(client)
    assert state[key_id(bad)]["state"] == "disabled"
    assert "KEY_NOT_A_HEADER_VALUE" in state[key_id(bad)]["reason"]
    assert bad not in str(state)
    assert not any("\n" in key for key, _ in gemini.calls)
    probe = await client.probe(client.keys.lease_for(key_id(bad)))
    assert probe.kind is OutcomeKind.KEY_INVALID  # the prober will not bring it back


async def test_an_unexpected_transport_error_is_classified_and_charges_no_key(
        gemini: Gemini, pool: Callable[..., Any]) -> None:
    client = await pool(max_failures=1)
    with pytest.raises(UpstreamUnavailable, match="same way on two API keys"):
        await client.call("POST", GENERATE, model=MODEL, body=body("q"), headers={"x-extra": "a\r\nb"})
    assert gemini.calls == []
    assert await disabled(client) == []
    assert (await generate(client, "q")).status == 200
