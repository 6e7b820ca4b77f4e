"""The console's login session: a signed, expiring cookie, so every worker and replica accepts it unshared.

The cookie holds ``<expiry>.<nonce>.<mac>``; the MAC key is derived from ``AUTH_TOKEN``, so changing the admin
token ends every session. The admin token itself never goes into the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

COOKIE = "gg_console"


class SessionSigner:
    def __init__(self, admin_token: str | None, ttl: float) -> None:
        self._key = hashlib.sha256(b"gg-console-session\0" + admin_token.encode()).digest() if admin_token else b""
        self.ttl = ttl

    def issue(self, now: float | None = None) -> str:
        expiry = int((time.time() if now is None else now) + self.ttl)
        body = f"{expiry}.{secrets.token_urlsafe(12)}"
        return f"{body}.{self._mac(body)}"

    def valid(self, value: str | None, now: float | None = None) -> bool:
        if not self._key or not value or value.count(".") != 2:
            return False
        body, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return False
        expiry = body.partition(".")[0]
        return expiry.isdigit() and int(expiry) > (time.time() if now is None else now)

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()
