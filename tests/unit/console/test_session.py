"""The console's session cookie: signed with a key derived from AUTH_TOKEN, and expiring."""

from app.console.session import SessionSigner


def test_a_fresh_cookie_is_valid_until_it_expires() -> None:
    signer = SessionSigner("admin-secret", ttl=60)
    cookie = signer.issue(now=1_000)
    assert signer.valid(cookie, now=1_030)
    assert not signer.valid(cookie, now=1_061)
    assert "admin-secret" not in cookie


def test_a_tampered_or_foreign_cookie_is_refused() -> None:
    signer = SessionSigner("admin-secret", ttl=60)
    cookie = signer.issue(now=1_000)
    expiry, nonce, mac = cookie.split(".")
    assert not signer.valid(f"{int(expiry) + 9999}.{nonce}.{mac}", now=1_000)
    assert not SessionSigner("another-token", ttl=60).valid(cookie, now=1_000)
    assert not signer.valid("garbage", now=1_000) and not signer.valid(None)


def test_no_admin_token_means_no_session() -> None:
    signer = SessionSigner(None, ttl=60)
    assert not signer.valid(signer.issue(now=1_000), now=1_000)
