"""Fault injection under load: a mixed pool, several hundred concurrent requests, every one accounted for.

Each request must end in a correct answer or a correct error: non-stream calls get the full echo, streams end
with the full text and ``stop`` or raise in the SDK (only on the keys scripted to fail mid-stream), requests
for an unknown model get exactly one 404 upstream call and no retry, malformed ones get a 400 before any
upstream call. Nothing may be lost or mis-reported. Bounded in count and time; loopback only.
"""

from __future__ import annotations

import asyncio
import collections

import openai
import requests

from app.keys import key_id
from tests.support.gateway import TOKEN, start_gateway

GOOD = ["ok-f1", "ok-f2", "ok-f3"]
BAD = ["invalid-f4", "rpm-f5", "rpd-f6"]
FLAKY = ["unavail-f7", "slow-f8", "midstream-f9", "truncated-f10"]
POOL = GOOD + BAD + FLAKY
N_CHAT, N_STREAM, N_NOT_FOUND, N_BAD = 160, 160, 30, 30
CONCURRENCY = 64


async def one_chat(client: openai.AsyncOpenAI, i: int) -> str:
    prompt = f"chat number {i}"
    resp = await client.chat.completions.create(model="gemini-2.5-flash",
                                                messages=[{"role": "user", "content": prompt}])
    assert resp.choices[0].message.content == f"echo: {prompt}", resp
    assert resp.choices[0].finish_reason == "stop"
    return "chat_ok"


async def one_stream(client: openai.AsyncOpenAI, i: int) -> str:
    prompt = f"stream number {i} with several words to split"
    text, finishes = "", []
    try:
        stream = await client.chat.completions.create(model="gemini-2.5-flash", stream=True,
                                                      messages=[{"role": "user", "content": prompt}])
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                if chunk.choices[0].finish_reason:
                    finishes.append(chunk.choices[0].finish_reason)
    except openai.APIError:
        assert "stop" not in finishes  # an error never follows a clean ending
        return "stream_error"
    assert text == f"echo: {prompt}" and finishes == ["stop"], (text, finishes)  # a clean stop is complete
    return "stream_ok"


async def one_not_found(client: openai.AsyncOpenAI, i: int) -> str:
    try:
        await client.chat.completions.create(model="gemini-no-such-model",
                                             messages=[{"role": "user", "content": f"nf {i}"}])
    except openai.NotFoundError:
        return "not_found"
    raise AssertionError("an unknown model must be a 404")


async def one_bad(client: openai.AsyncOpenAI, i: int) -> str:
    try:
        await client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "wizard", "content": "x"}])
    except openai.BadRequestError as exc:
        assert exc.body and "messages" in (exc.body.get("param") or "")
        return "bad_request"
    raise AssertionError("a malformed request must be a 400")


async def burst(url: str) -> collections.Counter[str]:
    client = openai.AsyncOpenAI(base_url=url, api_key=TOKEN, max_retries=0, timeout=60)
    gate = asyncio.Semaphore(CONCURRENCY)
    jobs = ([(one_chat, i) for i in range(N_CHAT)] + [(one_stream, i) for i in range(N_STREAM)]
            + [(one_not_found, i) for i in range(N_NOT_FOUND)] + [(one_bad, i) for i in range(N_BAD)])
    jobs = jobs[::2] + jobs[1::2]  # interleave kinds

    async def run(fn, i):
        async with gate:
            try:
                return await fn(client, i)
            except AssertionError:
                raise
            except Exception as exc:  # anything else is a lost or mis-reported request
                return f"lost:{type(exc).__name__}"

    async with asyncio.timeout(180):
        results = await asyncio.gather(*(run(fn, i) for fn, i in jobs))
    await client.close()
    return collections.Counter(results)


def test_mixed_pool_under_load(fake):
    with start_gateway(fake.base_url, api_keys=POOL, max_wait=0, max_failures=3, check_interval=3600,
                       auth_token="faults-admin-token") as gw:
        fake.script("slow-f8", "slow", delay=0.3)
        counts = asyncio.run(burst(gw.v1))
        total = N_CHAT + N_STREAM + N_NOT_FOUND + N_BAD
        assert sum(counts.values()) == total
        assert not [k for k in counts if k.startswith("lost")], counts
        assert counts["chat_ok"] == N_CHAT
        assert counts["not_found"] == N_NOT_FOUND and counts["bad_request"] == N_BAD
        assert counts["stream_ok"] + counts["stream_error"] == N_STREAM

        log = fake.requests()
        # Every stream error is a stream that really failed upstream after its first event.
        failing_streams = [r for r in log if r["api_key"] in ("midstream-f9", "truncated-f10")
                           and "streamGenerateContent" in r["path"]]
        assert counts["stream_error"] == len(failing_streams)
        # Client errors: one upstream call each, no retry; malformed requests never left the gateway.
        assert len([r for r in log if "no-such-model" in r["path"]]) == N_NOT_FOUND

        state = {k["id"]: k for k in requests.get(gw.url + "/admin/keys", timeout=10,
                                                     headers={"Authorization": "Bearer faults-admin-token"})
                 .json()["keys"]}
        for key in GOOD + ["unavail-f7", "slow-f8", "midstream-f9"]:
            assert state[key_id(key)]["state"] == "active", (key, state[key_id(key)])  # no 404/400/503 blame
        assert state[key_id("invalid-f4")]["state"] == "disabled"
        assert state[key_id("rpm-f5")]["state"] == "cooling"
        assert state[key_id("rpd-f6")]["state"] == "cooling"

        # Bad keys are left alone once known: a second wave sends them nothing.
        fake.reset()
        fake.script("slow-f8", "slow", delay=0.3)
        second = asyncio.run(burst_small(gw.v1))
        assert second["chat_ok"] == 40
        hit = {r["api_key"] for r in fake.requests()}
        assert not hit & set(BAD), hit


async def burst_small(url: str) -> collections.Counter[str]:
    client = openai.AsyncOpenAI(base_url=url, api_key=TOKEN, max_retries=0, timeout=60)
    async with asyncio.timeout(60):
        results = await asyncio.gather(*(one_chat(client, i) for i in range(40)))
    await client.close()
    return collections.Counter(results)
