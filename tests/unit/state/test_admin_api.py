"""The admin API's pure parts: request validation naming the field, settings with secrets masked."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from app.config import Settings
from app.routes.admin_api import Invalid, _expiry, _pasted, _token_fields, masked_settings, policy_fields


def test_settings_are_masked() -> None:
    fernet = Fernet.generate_key().decode()
    settings = Settings(_env_file=None, api_keys=["AQ.secret-one-0123456789"], allowed_tokens=["tok-secret"],
                        encryption_key=fernet, database_url="postgresql://gw:pw-secret@db:5432/gw",
                        reconify_api_key="rk-secret")
    view = masked_settings(settings)
    text = repr(view)
    for secret in ("AQ.secret-one", "tok-secret", fernet, "pw-secret", "rk-secret"):
        assert secret not in text
    assert view["api_keys"] == {"count": 1} and view["encryption_key"] == "***"
    assert view["database_url"] == "postgresql://gw:***@db:5432/gw"
    assert view["max_concurrent_per_key"] == 0 and view["base_url"].startswith("https://")


def test_pasted_keys_split_on_blanks_commas_and_lines() -> None:
    assert _pasted("a b,c\nd;e") == ["a", "b", "c", "d", "e"]
    with pytest.raises(Invalid, match="'keys'"):
        _pasted(42)


@pytest.mark.parametrize("body,field", [
    ({}, "'name'"),
    ({"name": "x", "limits": {"rpm": 0}}, "'limits.rpm'"),
    ({"name": "x", "limits": {"qps": 1}}, "'limits.qps'"),
    ({"name": "x", "models": "gemini-*"}, "'models'"),
    ({"name": "x", "expires_at": "tomorrow"}, "'expires_at'"),
    ({"name": "x", "enabled": "yes"}, "'enabled'"),
])
def test_token_fields_name_the_bad_field(body: dict, field: str) -> None:
    with pytest.raises(Invalid, match=field):
        _token_fields(body, creating=True)


def test_token_fields_accepted() -> None:
    out = _token_fields({"name": " ci ", "models": ["gemini-2.5-*"], "limits": {"rpm": 2, "tpd": None},
                         "expires_at": "2030-01-01T00:00:00Z"}, creating=True)
    assert out == {"name": "ci", "models": ["gemini-2.5-*"], "rpm": 2, "tpd": None, "expires_at": 1893456000.0}
    assert _expiry(None) is None and _token_fields({"enabled": False}, creating=False) == {"enabled": False}


@pytest.mark.parametrize("body,field", [
    ({"weight": 0}, "'weight'"),
    ({"weight": "3"}, "'weight'"),
    ({"weight": 101}, "'weight'"),
    ({"tier": -1}, "'tier'"),
    ({"tier": 1.5}, "'tier'"),
    ({"models": "gemini-*"}, "'models'"),
    ({"models": ["ok", 3]}, "'models'"),
    ({"exclude_models": ["no spaces"]}, "'exclude_models'"),
])
def test_key_policy_fields_name_the_bad_field(body: dict, field: str) -> None:
    with pytest.raises(Invalid, match=field):
        policy_fields(body)


def test_key_policy_fields_accepted() -> None:
    assert policy_fields({"weight": 3, "tier": 2, "models": ["gemini-2.5-*"], "exclude_models": None}) == {
        "weight": 3, "tier": 2, "models": ("gemini-2.5-*",), "exclude_models": None}
    assert policy_fields({"project": "p"}) == {}
