"""The round-trip counter's classifier: a command is charged to the store its keys belong to; the pool's
periodic work and connection chatter are not per request."""

from __future__ import annotations

from bench.redis_round_trips import _store


def test_commands_are_charged_to_their_store() -> None:
    assert _store("EVALSHA 3f2a 5 gw:lim:tok-1:rm:1 gw:lim:tok-1:rd:2") == "token limits"
    assert _store("EVALSHA 9c1b 2 gg:sess:abc gg:sess:lock:abc 1750000000.0") == "sessions"
    assert _store("MGET gg:aff:h:123") == "affinity"
    assert _store("SET gg:own:files/a k1 PX 1000") == "owners"
    assert _store("EVALSHA 77aa 5 gg:cool:gemini-2.5-flash gg:coolr:gemini-2.5-flash") == "pool"


def test_periodic_and_connection_commands_are_left_out() -> None:
    for command in ("GET gg:ver", "HINCRBY gg:cnt k1|ok 3", "HDEL gg:fail k1", "PING", "SUBSCRIBE gg:events",
                    "CLIENT SETINFO LIB-NAME redis-py"):
        assert _store(command) is None
