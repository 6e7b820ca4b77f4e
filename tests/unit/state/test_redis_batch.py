"""ScriptBatcher against the real Redis at 127.0.0.1:6379: calls of one loop turn share one pipeline, each
caller gets its own reply or error, an unknown script is sent again as EVAL, a cancelled call is not sent,
and a failed pipeline reaches every caller."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from app.state.redis_batch import ScriptBatcher

REDIS_URL = "redis://127.0.0.1:6379/0"
DEAD_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

# KEYS: a counter. ARGV: a label. Returns {label, the counter after INCR}; a label 'boom' is a Lua error.
INCR = """
if ARGV[1] == 'boom' then return redis.error_reply('boom asked for') end
return {ARGV[1], redis.call('INCR', KEYS[1])}
"""


@pytest.fixture()
async def client() -> AsyncIterator[aioredis.Redis]:
    redis = aioredis.from_url(REDIS_URL, decode_responses=True, socket_timeout=2.0)
    yield redis
    await redis.aclose()


@pytest.fixture()
def counter() -> str:
    return f"gg:test:{uuid.uuid4().hex}:n"


def fresh_script(client: aioredis.Redis) -> object:
    """The INCR script made unique, so this Redis has never cached it (its first EVALSHA is NOSCRIPT)."""
    return client.register_script(f"-- {uuid.uuid4().hex}\n{INCR}")


async def test_calls_of_one_loop_turn_share_one_pipeline_and_each_gets_its_reply(
        client: aioredis.Redis, counter: str) -> None:
    batcher = ScriptBatcher(client)
    script = fresh_script(client)
    try:
        await batcher.run(script, [counter], ["warm"])  # now cached in Redis
        before = batcher.batches
        replies = await asyncio.gather(*(batcher.run(script, [counter], [f"c{i}"]) for i in range(20)))
        assert batcher.batches == before + 1
        assert replies == [[f"c{i}", i + 2] for i in range(20)]  # in order, each its own
    finally:
        await client.delete(counter)
        await batcher.close()


async def test_a_script_error_reaches_only_its_caller(client: aioredis.Redis, counter: str) -> None:
    batcher = ScriptBatcher(client)
    script = fresh_script(client)
    try:
        results = await asyncio.gather(batcher.run(script, [counter], ["a"]),
                                       batcher.run(script, [counter], ["boom"]),
                                       batcher.run(script, [counter], ["b"]), return_exceptions=True)
        assert results[0] == ["a", 1] and results[2] == ["b", 2]
        assert isinstance(results[1], ResponseError) and "boom asked for" in str(results[1])
    finally:
        await client.delete(counter)
        await batcher.close()


async def test_a_script_redis_does_not_know_is_sent_again_as_eval(client: aioredis.Redis,
                                                                   counter: str) -> None:
    batcher = ScriptBatcher(client)
    script = fresh_script(client)
    try:
        assert await client.script_exists(script.sha) == [False]
        assert await batcher.run(script, [counter], ["first"]) == ["first", 1]
        assert batcher.batches == 2  # EVALSHA refused, then EVAL
        assert await client.script_exists(script.sha) == [True]  # EVAL cached it: the next call is one batch
        assert await batcher.run(script, [counter], ["second"]) == ["second", 2]
        assert batcher.batches == 3
    finally:
        await client.delete(counter)
        await batcher.close()


async def test_a_call_cancelled_before_its_batch_left_is_not_sent(client: aioredis.Redis,
                                                                   counter: str) -> None:
    batcher = ScriptBatcher(client)
    script = fresh_script(client)
    try:
        dropped = batcher.run(script, [counter], ["dropped"])
        dropped.cancel()  # the caller gave up in the same loop turn
        assert await batcher.run(script, [counter], ["kept"]) == ["kept", 1]
        assert await client.get(counter) == "1"
    finally:
        await client.delete(counter)
        await batcher.close()


async def test_a_failed_pipeline_reaches_every_caller_of_the_batch(counter: str) -> None:
    dead = aioredis.from_url(DEAD_URL, decode_responses=True, socket_connect_timeout=0.5)
    batcher = ScriptBatcher(dead)
    script = dead.register_script(INCR)
    try:
        results = await asyncio.gather(*(batcher.run(script, [counter], [str(i)]) for i in range(3)),
                                       return_exceptions=True)
        assert all(isinstance(r, (RedisConnectionError, OSError)) for r in results), results
    finally:
        await batcher.close()
        await dead.aclose()


async def test_a_plain_command_rides_in_the_same_batch_after_the_script_before_it(
        client: aioredis.Redis, counter: str) -> None:
    batcher = ScriptBatcher(client)
    script = fresh_script(client)
    try:
        await batcher.run(script, [counter], ["warm"])
        before = batcher.batches
        incremented = batcher.run(script, [counter], ["x"])
        read = batcher.command("GET", counter)
        assert await incremented == ["x", 2] and await read == "2"  # run after the script, in its pipeline
        assert batcher.batches == before + 1
    finally:
        await client.delete(counter)
        await batcher.close()
