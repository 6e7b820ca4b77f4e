"""Settings combinations the gateway refuses at start, with a message naming the setting."""

from __future__ import annotations

import pytest

from app.config import SettingsError, load_settings


def test_several_workers_without_a_durable_store_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ENV_FILE", "")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SettingsError, match="WORKERS > 1 needs DATA_DIR or DATABASE_URL"):
        load_settings(workers=2, data_dir="")
    assert load_settings(workers=1, data_dir="").workers == 1
    assert load_settings(workers=2, data_dir="data").workers == 2
