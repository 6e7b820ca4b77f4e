"""How each pool key reaches Google: its kind (Gemini API or Vertex AI express) and its outbound proxy.

A route is operator data, resolved in this order: the durable store's value for the key (set in the admin
API), then the settings (``KEY_PROXIES`` / ``KEY_KINDS``), then the default (``OUTBOUND_PROXY``, kind
``gemini``). ``direct`` at any level means no proxy, even when a default is set. Proxy URLs may carry
credentials: only :func:`mask_proxy` forms (``scheme://host:port``) ever leave this module for logs,
metrics, /health or the admin API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

DIRECT = "direct"
KINDS = ("gemini", "vertex")
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}


class RouteError(ValueError):
    """A proxy URL or key kind that cannot be used; the message says why (never echoing credentials)."""


def parse_proxy(value: str) -> str:
    """``direct`` or a checked proxy URL (``http``, ``https``, ``socks5`` or ``socks5h`` with a host)."""
    text = value.strip()
    if text.lower() == DIRECT:
        return DIRECT
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise RouteError("is not a valid proxy URL") from None
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise RouteError(f"proxy scheme must be one of {', '.join(PROXY_SCHEMES)} (or 'direct')")
    if not parts.hostname:
        raise RouteError("proxy URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise RouteError("proxy URL must be scheme://[user:password@]host:port only")
    return text.rstrip("/")


def mask_proxy(value: str | None) -> str | None:
    """``scheme://host:port`` of a proxy URL (no credentials), ``direct``, or None."""
    if value is None or value == DIRECT:
        return value
    parts = urlsplit(value)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        port = None
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port else "")


def proxy_credentials(value: str) -> tuple[str, str | None, str | None]:
    """(URL without credentials, user, password) for transports that take the credentials apart."""
    parts = urlsplit(value)
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme.lower()}://{netloc}", user, password


def parse_kind(value: str) -> str:
    kind = value.strip().lower()
    if kind not in KINDS:
        raise RouteError(f"key kind must be one of {', '.join(KINDS)}")
    return kind


@dataclass(frozen=True, slots=True)
class Route:
    """A key's resolved route: its kind and its proxy URL (None = direct)."""

    kind: str = "gemini"
    proxy: str | None = None

    @property
    def vertex(self) -> bool:
        return self.kind == "vertex"


DIRECT_ROUTE = Route()


class RouteTable:
    """key id -> Route, from the settings and the durable store's overrides; read on every attempt (O(1))."""

    def __init__(self, *, default_proxy: str | None = None, proxies: Mapping[str, str] | None = None,
                 kinds: Mapping[str, str] | None = None) -> None:
        self._default = None if default_proxy in (None, "", DIRECT) else default_proxy
        self._settings_proxy = dict(proxies or {})
        self._settings_kind = dict(kinds or {})
        self._store_proxy: dict[str, str] = {}
        self._store_kind: dict[str, str] = {}
        self._cache: dict[str, Route] = {}
        self._vertex: frozenset[str] | None = None

    def replace_overrides(self, overrides: Mapping[str, tuple[str | None, str | None]]) -> None:
        """The durable store's (proxy, kind) per key id; None = not set there (the settings apply)."""
        self._store_proxy = {kid: p for kid, (p, _) in overrides.items() if p}
        self._store_kind = {kid: k for kid, (_, k) in overrides.items() if k}
        self._cache = {}
        self._vertex = None

    def of(self, key_id: str) -> Route:
        route = self._cache.get(key_id)
        if route is None:
            proxy = self._store_proxy.get(key_id) or self._settings_proxy.get(key_id) or self._default
            kind = self._store_kind.get(key_id) or self._settings_kind.get(key_id) or "gemini"
            route = self._cache[key_id] = Route(kind, None if proxy in (None, DIRECT) else proxy)
        return route

    def vertex_ids(self) -> frozenset[str]:
        """Ids of the Vertex express keys (a key is one only if the settings or the store say so), computed
        once per change: the upstream asks on every call that names no model, whatever the pool's size."""
        if self._vertex is None:
            named = {*self._settings_kind, *self._store_kind}
            self._vertex = frozenset(kid for kid in named if self.of(kid).vertex)
        return self._vertex

    def view(self, key_id: str) -> dict[str, Any]:
        """What the admin API shows: the kind and the proxy without credentials."""
        route = self.of(key_id)
        return {"kind": route.kind, "proxy": mask_proxy(route.proxy) if route.proxy else DIRECT}

    def proxies(self) -> list[str]:
        """Every configured proxy, masked (for the start-up log and /health)."""
        found = {self._default, *self._settings_proxy.values(), *self._store_proxy.values()}
        return sorted({mask_proxy(p) for p in found if p and p != DIRECT})  # type: ignore[misc]
