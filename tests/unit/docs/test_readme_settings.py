"""README must stay true: every setting the gateway reads is documented there, with its default."""

from __future__ import annotations

from pathlib import Path

from app.config import Settings

README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_readme() -> None:
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in README]
    assert missing == []


def test_readme_shows_the_two_commands() -> None:
    assert "make run" in README and "make test" in README
