"""The one way the gateway fetches a URL a client named (image URLs now; documents, audio and files later).

Why a fetcher of its own (issue 12, item 1): a gateway that fetches whatever a client names is a proxy into
the operator's network (loopback services, cloud metadata) and, if it echoes failures, a port scanner. So:

- only ``http``/``https`` URLs without credentials;
- the host is resolved by the gateway and *every* address checked (:func:`app.net.addresses.is_public`);
  spellings such as ``0x7f000001``, ``0177.0.0.1`` or ``2130706433`` resolve to what they mean and are judged
  by that;
- the connection goes to the address that was checked: the connector's resolver is :class:`CheckedResolver`,
  which resolves and checks in one step and hands aiohttp only checked addresses (no second lookup a DNS
  rebinding could answer differently); TLS still uses the URL's host name for SNI and certificate checks;
- redirects are followed by hand, at most ``max_redirects``, each target checked the same way;
- size and total time are capped;
- every failure is the same :class:`NotFetchable`, with no status, address or reason in it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from app.net.addresses import IPAddress, is_public, parse_ip

REDIRECTS = frozenset({301, 302, 303, 307, 308})


class NotFetchable(Exception):
    """The URL was refused or could not be fetched; deliberately without detail."""


class TooLarge(NotFetchable):
    """The resource is larger than the cap (said, since only a permitted address was reached)."""


@dataclass(frozen=True)
class FetchLimits:
    max_bytes: int = 20 * 1024 * 1024
    timeout: float = 10.0
    max_redirects: int = 3


@dataclass(frozen=True)
class Fetched:
    content_type: str
    data: bytes


def address_rule(allow_private: bool) -> Callable[[IPAddress], bool]:
    """The address check for ``FETCH_ALLOW_PRIVATE``."""
    return (lambda ip: True) if allow_private else is_public


async def checked_addresses(host: str, port: int, allowed: Callable[[IPAddress], bool],
                            family: int = socket.AF_UNSPEC) -> list[tuple[int, str]]:
    """``[(family, address)]`` for ``host``, or NotFetchable if any address is not allowed.

    All answers must pass: a name that resolves to one public and one internal address is refused, since the
    connector could pick either.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise NotFetchable() from None
    out: list[tuple[int, str]] = []
    for fam, _, _, _, sockaddr in infos:
        ip = parse_ip(str(sockaddr[0]))
        if ip is None or not allowed(ip):
            raise NotFetchable()
        out.append((fam, str(sockaddr[0])))
    if not out:
        raise NotFetchable()
    return out


class CheckedResolver(AbstractResolver):
    """aiohttp resolver that returns only addresses that passed the check, so the socket connects to them."""

    def __init__(self, allowed: Callable[[IPAddress], bool]) -> None:
        self._allowed = allowed

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        pairs = await checked_addresses(host, port, self._allowed, family)
        return [ResolveResult(hostname=host, host=address, port=port, family=fam, proto=0,
                              flags=socket.AI_NUMERICHOST) for fam, address in pairs]

    async def close(self) -> None:
        return None


class SafeFetcher:
    """Fetches client-named URLs under the rules above. One per process; ``close`` at shutdown."""

    def __init__(self, limits: FetchLimits, *, allow_private: bool = False,
                 allowed: Callable[[IPAddress], bool] | None = None) -> None:
        self.limits = limits
        self._allowed = allowed or address_rule(allow_private)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=CheckedResolver(self._allowed), use_dns_cache=False,
                                             limit=64)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                                  headers={"User-Agent": "gemini-gateway-fetch"})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str) -> Fetched:
        """The resource at ``url``; raises NotFetchable (TooLarge past the size cap) and nothing else."""
        try:
            async with asyncio.timeout(self.limits.timeout):
                return await self._follow(url)
        except NotFetchable:
            raise
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, UnicodeError):
            raise NotFetchable() from None

    async def _follow(self, url: str) -> Fetched:
        target = URL(url)
        for _ in range(self.limits.max_redirects + 1):
            await self._check_target(target)
            async with self._client().get(target, allow_redirects=False) as resp:
                if resp.status in REDIRECTS and "location" in resp.headers:
                    target = target.join(URL(resp.headers["location"]))
                    continue
                if resp.status != 200:
                    raise NotFetchable()
                return await self._read(resp)
        raise NotFetchable()

    async def _check_target(self, url: URL) -> None:
        """Scheme, no credentials, and every address of the host allowed (literal IPs included, which aiohttp
        does not send through the resolver)."""
        if url.scheme not in ("http", "https") or not url.host or url.raw_user or url.raw_password:
            raise NotFetchable()
        await checked_addresses(url.host, url.port or 0, self._allowed)

    async def _read(self, resp: aiohttp.ClientResponse) -> Fetched:
        cap = self.limits.max_bytes
        if resp.content_length is not None and resp.content_length > cap:
            raise TooLarge()
        data = bytearray()
        async for chunk in resp.content.iter_chunked(65536):
            data += chunk
            if len(data) > cap:
                raise TooLarge()
        mime = (resp.headers.get("content-type") or "application/octet-stream").split(";")[0].strip()
        return Fetched(mime, bytes(data))


def describe(exc: NotFetchable, limits: FetchLimits) -> str:
    """What a client is told: the size cap if that was it, otherwise only that the URL is not fetchable."""
    if isinstance(exc, TooLarge):
        return f"is larger than the limit of {limits.max_bytes} bytes"
    return "is not fetchable"
