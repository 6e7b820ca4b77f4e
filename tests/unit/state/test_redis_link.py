"""RedisLink: one client per socket profile, the URL without secrets, and the one outage state machine
(healthy -> degraded on a reported failure -> probing -> healthy) that every store follows."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from app.keys import RedisPoolStore
from app.state.limits import TokenLimiter
from app.state.policy import Limits, TokenPolicy
from app.state.redis_link import LinkState, RedisLink, redact_url

REDIS_URL = "redis://127.0.0.1:6379/0"
DEAD_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
BOOM = RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


class GatedPing:
    """A client whose PING waits for the test to answer it: the probing state can be observed."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def ping(self) -> bool:
        self.asked.set()
        return await self.answer


async def test_clients_are_shared_per_profile_and_stats_name_every_store() -> None:
    link = RedisLink(REDIS_URL)
    try:
        assert link.client() is link.client() and link.client(timeout=2.0) is not link.client()
        assert link.client(decode=False) is not link.client()
        assert await link.client().ping()
        link.register("pool")
        link.register("sessions")
        stats = link.stats()
        assert stats["state"] == "healthy" and stats["clients"] == 3
        assert stats["errors"] == {"pool": 0, "sessions": 0} and stats["errors_total"] == 0
        assert stats["outages"] == 0 and stats["url"] == REDIS_URL
    finally:
        await link.close()


async def test_a_failure_degrades_the_link_once_and_counts_every_report(caplog: pytest.LogCaptureFixture) -> None:
    link = RedisLink("redis://:hunter2@127.0.0.1:1/0", retry_interval=3600)
    try:
        with caplog.at_level(logging.WARNING, logger="gateway.redis"):
            assert link.usable()
            link.failed("pool", BOOM, "cool")
            link.failed("sessions", BOOM, "load")
        assert link.state is LinkState.DEGRADED and not link.usable()
        assert link.errors == {"pool": 1, "sessions": 1} and link.outages == 1
        assert len(caplog.records) == 1 and "hunter2" not in caplog.text and "pool during cool" in caplog.text
    finally:
        await link.close()


async def test_degraded_then_probing_then_healthy(monkeypatch: pytest.MonkeyPatch) -> None:
    link = RedisLink(REDIS_URL, retry_interval=0.01)
    gate = GatedPing()
    monkeypatch.setattr(link, "client", lambda **_: gate)
    try:
        link.failed("pool", BOOM, "count")
        assert link.state is LinkState.DEGRADED
        await asyncio.wait_for(gate.asked.wait(), 5)
        assert link.state is LinkState.PROBING and not link.usable()  # a request never probes
        gate.answer.set_result(True)
        await asyncio.wait_for(link.wait_healthy(), 5)
        assert link.state is LinkState.HEALTHY and link.usable() and link.probes == 1
        assert link.stats()["state"] == "healthy"
    finally:
        await link.close()


async def test_a_failed_probe_goes_back_to_degraded_and_probes_again() -> None:
    link = RedisLink(DEAD_URL, retry_interval=0.01, probe_timeout=0.2)
    try:
        link.failed("pool", BOOM, "load")
        for _ in range(500):
            if link.probes >= 3:
                break
            await asyncio.sleep(0.01)
        assert link.probes >= 3 and not link.usable()
        assert link.errors == {"pool": 1}  # probes are the link's own: no store error counted
    finally:
        await link.close()


async def test_stores_of_one_link_share_its_state() -> None:
    """A failure seen by the pool sends the token limits to memory too, at once and without a Redis call."""
    link = RedisLink(REDIS_URL, retry_interval=3600)
    prefix = f"gg:test:{uuid.uuid4().hex}:"
    pool = RedisPoolStore(REDIS_URL, prefix=prefix, link=link)
    limiter = TokenLimiter(link=link)
    token = TokenPolicy(id=f"tok-{uuid.uuid4().hex[:10]}", name="t", limits=Limits(rpm=1))
    try:
        assert (await limiter.check(token, "m")).allowed and limiter.round_trips == 1
        link.failed("pool", BOOM, "disable")
        assert pool.degraded
        local = await limiter.check(token, "m")  # memory's own count starts at zero: allowed, no round trip
        assert local.allowed and limiter.round_trips == 1 and limiter.redis_errors == 0
        assert (await limiter.check(token, "m")).status == 429
    finally:
        await pool.close()
        await limiter.close()
        await link.close()


def test_redact_url_keeps_host_port_and_db_only() -> None:
    assert RedisLink("redis://user:secret@10.0.0.9:6379/0").where == "redis://10.0.0.9:6379/0"
    assert redact_url("rediss://:pw@cache.internal:6380/2") == "rediss://cache.internal:6380/2"
    assert redact_url("redis://localhost") == "redis://localhost"
