"""RedisLink: one client per socket profile, the URL shown without secrets, store error counters reported."""

from __future__ import annotations

from app.state.redis_link import RedisLink, redact_url


class Counting:
    def __init__(self, errors: int) -> None:
        self.redis_errors = errors


async def test_clients_are_shared_per_profile_and_stats_sum_the_stores() -> None:
    link = RedisLink("redis://127.0.0.1:6379/0")
    assert link.client() is link.client() and link.client(timeout=2.0) is not link.client()
    assert link.client(decode=False) is not link.client()
    assert await link.client().ping()
    link.register("pool", Counting(2))
    link.register("sessions", Counting(3))
    stats = link.stats()
    assert stats == {"url": "redis://127.0.0.1:6379/0", "clients": 3, "errors": {"pool": 2, "sessions": 3},
                     "errors_total": 5}
    await link.close()


def test_redact_url_keeps_host_port_and_db_only() -> None:
    assert RedisLink("redis://user:secret@10.0.0.9:6379/0").where == "redis://10.0.0.9:6379/0"
    assert redact_url("rediss://:pw@cache.internal:6380/2") == "rediss://cache.internal:6380/2"
    assert redact_url("redis://localhost") == "redis://localhost"
