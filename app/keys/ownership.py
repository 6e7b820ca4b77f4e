"""Which pool key owns each project-scoped resource (docs/architecture.md, "The key pool", selection step 1).

A file, cache or batch lives in the Google Cloud project of the key that created it; any other key gets a
403 for it. The gateway records ``name -> (key id, tenant)`` when a create answer comes back and routes every
later request naming the resource to that key. The tenant is a hash of the creating client token, so one
client cannot use or see another's resources by guessing a name. Entries expire with the resource (files
48 h, caches at their ``expireTime``), in the hot store: memory, or Redis shared by replicas. A record is
written through at once (another replica may be asked about the resource next); an owner read from Redis is
kept locally for ``OWNER_CACHE_TTL`` seconds, since an owner never changes: the only staleness is a resource
deleted through another replica, whose later requests go for that long to its former owner key, which
answers 404 like any key would.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from collections.abc import Sequence
from dataclasses import dataclass

from .hotmap import HotMap

__all__ = ["OWNER_CACHE_TTL", "Owner", "Ownership", "tenant_of"]

#: Seconds an owner read from Redis is reused locally (owners are immutable; see the module docstring).
OWNER_CACHE_TTL = 60.0


@lru_cache(maxsize=4096)
def tenant_of(token: str | None) -> str:
    """A stable, non-reversible tenant id for a client token ("" when there is none). Cached: the set of
    client tokens is small, and the OpenAI and native paths ask on every request."""
    if not token:
        return ""
    return hashlib.sha256(b"gg-tenant:" + token.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Owner:
    key_id: str
    tenant: str

    def visible_to(self, tenant: str, admin: bool = False) -> bool:
        """Whether a caller may see or use the resource: its creator, or the admin."""
        return admin or not self.tenant or self.tenant == tenant


class Ownership:
    """Records and looks up owners; one hot-store round trip per lookup, whatever the number of names."""

    def __init__(self, store: HotMap) -> None:
        self._store = store

    async def record(self, name: str, key_id: str, tenant: str, ttl: float) -> None:
        await self._store.set(name, f"{key_id}\t{tenant}", ttl)

    async def owners(self, names: Sequence[str]) -> dict[str, Owner]:
        """Known owners of ``names``; unknown or expired names are absent."""
        out: dict[str, Owner] = {}
        for name, value in zip(names, await self._store.get_many(names)):
            if value:
                key_id, _, tenant = value.partition("\t")
                out[name] = Owner(key_id, tenant)
        return out

    async def owner(self, name: str) -> Owner | None:
        return (await self.owners([name])).get(name)

    async def forget(self, name: str) -> None:
        await self._store.delete(name)

    async def close(self) -> None:
        await self._store.close()
