"""One aiohttp session (and connection pool) per outbound route: direct, or one per distinct proxy URL.

HTTP and HTTPS proxies use aiohttp's own proxy support (absolute-form requests, CONNECT for https targets);
SOCKS5 proxies use ``aiohttp-socks``' connector (``socks5h``: the proxy resolves the host name). Sessions are
made on first use and closed together; a proxy that is down shows up as a connection error on the request,
which the pool classifies as a transient failure of that key's route.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from .routes import proxy_credentials


class RouteSessions:
    def __init__(self, connections: int = 0) -> None:
        self._connections = connections
        self._sessions: dict[str | None, aiohttp.ClientSession] = {}

    def _session_kwargs(self) -> dict[str, Any]:
        return {"auto_decompress": True, "skip_auto_headers": ("User-Agent",),
                "json_serialize": lambda o: orjson.dumps(o).decode()}

    def _connector_args(self) -> dict[str, Any]:
        n = self._connections
        return {"limit": n, "limit_per_host": n, "ttl_dns_cache": 300, "enable_cleanup_closed": True}

    def get(self, proxy: str | None) -> aiohttp.ClientSession:
        """The session for ``proxy`` (None = direct), made on first use."""
        session = self._sessions.get(proxy)
        if session is None or session.closed:
            session = self._sessions[proxy] = self._make(proxy)
        return session

    def _make(self, proxy: str | None) -> aiohttp.ClientSession:
        if proxy is None:
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(**self._connector_args()),
                                         **self._session_kwargs())
        url, user, password = proxy_credentials(proxy)
        scheme = url.split("://", 1)[0]
        if scheme.startswith("socks5"):
            from aiohttp_socks import ProxyConnector, ProxyType
            parts = urlsplit(url)
            connector = ProxyConnector(proxy_type=ProxyType.SOCKS5, host=parts.hostname or "",
                                       port=parts.port or 1080, username=user,
                                       password=password, rdns=scheme == "socks5h",
                                       **self._connector_args())
            return aiohttp.ClientSession(connector=connector, **self._session_kwargs())
        auth = aiohttp.BasicAuth(user, password or "") if user is not None else None
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(**self._connector_args()), proxy=url,
                                     proxy_auth=auth, **self._session_kwargs())

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
