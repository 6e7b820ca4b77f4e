"""CheckedResolver: aiohttp connects only to addresses that passed the check, and keeps the host name (TLS SNI
and certificate checks use it)."""

from __future__ import annotations

import pytest

from app.net.addresses import is_public
from app.net.fetch import CheckedResolver, NotFetchable, checked_addresses


async def test_resolver_returns_checked_addresses_with_the_host_name() -> None:
    results = await CheckedResolver(lambda ip: True).resolve("localhost", 443)
    assert results and all(r["hostname"] == "localhost" and r["port"] == 443 for r in results)
    assert {r["host"] for r in results} <= {"127.0.0.1", "::1"}


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "0x7f000001", "0177.0.0.1", "2130706433", "127.1",
                                  "::ffff:127.0.0.1", "0.0.0.0"])
async def test_internal_hosts_are_not_fetchable(host: str) -> None:
    with pytest.raises(NotFetchable) as info:
        await CheckedResolver(is_public).resolve(host, 80)
    assert str(info.value) == ""   # nothing to leak


async def test_odd_spellings_resolve_to_what_they_mean() -> None:
    for host in ("0x7f000001", "0177.0.0.1", "2130706433", "127.1"):
        assert [a for _, a in await checked_addresses(host, 80, lambda ip: True)] == ["127.0.0.1"]
