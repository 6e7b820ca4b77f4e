"""Keys entering the pool (settings, admin API): pasted lists split, control characters and placeholders
refused with messages that name the position, never the key (issue 12, item 8)."""

from __future__ import annotations

import pytest

from app.config import Settings, SettingsError, load_settings
from app.keys.validate import KeyFormatError, checked_keys, key_problem, split_keys


def test_split_keys_on_newlines_commas_and_spaces() -> None:
    assert split_keys("a\nb,c d\te\r\n") == ["a", "b", "c", "d", "e"]
    assert split_keys(["a b", "c"]) == ["a", "b", "c"]
    assert split_keys("  \n ") == []


@pytest.mark.parametrize(("key", "position"), [("ab\x00c", 3), ("\x7fabc", 1), ("abc\u00e9", 4),
                                               ("a\u200bb", 2)])
def test_unprintable_characters_are_named_by_position(key: str, position: int) -> None:
    problem = key_problem(key)
    assert problem is not None and problem.startswith(f"character {position} ")


@pytest.mark.parametrize("key", ["your-gemini-key-1", "your_api_key", "YOUR-KEY", "change-me-client-token",
                                 "<your-key>", "xxxxxxxx"])
def test_placeholders_are_refused(key: str) -> None:
    assert "placeholder" in (key_problem(key) or "")


# The AIza shape is assembled here so that no key-shaped literal sits in the repository.
@pytest.mark.parametrize("key", ["AI" + "za" + "Sy" + "x" * 33, "AQ.Ab8RN6Lq", "ok-alpha-7f3a9c"])
def test_real_looking_keys_pass(key: str) -> None:
    assert key_problem(key) is None


def test_checked_keys_names_the_entry_not_the_key() -> None:
    with pytest.raises(KeyFormatError) as info:
        checked_keys("good-one\nsecret-\x01-two", label="entry")
    assert str(info.value).startswith("entry 2 of 2 cannot be used: character 8 (U+0001)")
    assert "secret" not in str(info.value)


def test_settings_split_a_pasted_list_inside_entries() -> None:
    assert Settings(_env_file=None, api_keys='["k1\\nk2", "k3 k4"]').api_keys == ["k1", "k2", "k3", "k4"]
    assert Settings(_env_file=None, api_keys="k1,\nk2 k1").api_keys == ["k1", "k2"]


def test_settings_refuse_bad_keys_and_placeholder_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ENV_FILE", "")
    with pytest.raises(SettingsError) as info:
        load_settings(api_keys="k1,k\x1b2")
    message = str(info.value)
    assert "API_KEYS" in message and "entry 2 of 2" in message and "k\x1b2" not in message
    with pytest.raises(SettingsError) as info:
        load_settings(api_keys='["your-gemini-key-1","your-gemini-key-2"]')
    assert "placeholder" in str(info.value)
    for name in ("allowed_tokens", "auth_token"):
        with pytest.raises(SettingsError) as info:
            load_settings(**{name: "change-me-client-token"})
        assert name.upper() in str(info.value) and "placeholder" in str(info.value)


def test_auth_token_has_no_fallback_and_files_go_under_data_dir() -> None:
    settings = Settings(_env_file=None, allowed_tokens="client-1", data_dir="/srv/data",
                        analytics_jsonl="analytics.jsonl", interaction_log="stdout")
    assert settings.auth_token is None
    assert settings.analytics_jsonl == "/srv/data/analytics.jsonl"
    assert settings.interaction_log == "stdout"
    assert Settings(_env_file=None, analytics_jsonl="/abs/a.jsonl").analytics_jsonl == "/abs/a.jsonl"
