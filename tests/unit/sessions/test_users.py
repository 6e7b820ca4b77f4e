"""The valid-users file: parsing, reload on change (at most once per interval), a missing file."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from app.sessions import ValidUsers, parse_users


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_parse_users_ignores_comments_and_blanks() -> None:
    text = "# the team\nalice\n\n  bob  \ncarol # the intern\n\t# indented comment\ndan\t# tab comment\nx#y\n"
    assert parse_users(text) == {"alice", "bob", "carol", "dan", "x#y"}


def test_reload_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    path.write_text("alice\n")
    clock = Clock()
    users = ValidUsers(path, clock=clock)
    assert users.contains("alice") and not users.contains("bob")
    path.write_text("alice\nbob\n")
    assert not users.contains("bob")  # checked less than a second ago: not re-read yet
    clock.now += 1.0
    assert users.contains("bob")


def test_same_size_rewrite_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    path.write_text("alice\n")
    clock = Clock()
    users = ValidUsers(path, clock=clock)
    assert users.contains("alice")
    st = path.stat()
    path.write_text("bruce\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    clock.now += 1.0
    assert users.contains("bruce") and not users.contains("alice")


def test_replaced_by_rename_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    path.write_text("alice\n")
    clock = Clock()
    users = ValidUsers(path, clock=clock)
    assert users.contains("alice")
    new = tmp_path / "users.new"
    new.write_text("alice\nbob\n")
    new.replace(path)
    clock.now += 1.0
    assert users.contains("bob")


def test_unchanged_file_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "users.txt"
    path.write_text("alice\n")
    clock = Clock()
    users = ValidUsers(path, clock=clock)
    assert users.contains("alice")
    reads: list[Path] = []
    original = Path.read_text
    def counting(self: Path, *args: Any, **kwargs: Any) -> str:
        reads.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    for _ in range(5):
        clock.now += 1.0
        assert users.contains("alice")
    assert reads == []


def test_missing_file_means_nobody_and_is_logged_once(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "absent.txt"
    clock = Clock()
    users = ValidUsers(path, clock=clock)
    with caplog.at_level(logging.WARNING, logger="gateway.sessions"):
        for _ in range(3):
            clock.now += 1.0
            assert not users.contains("alice")
    assert sum("cannot be read" in r.getMessage() for r in caplog.records) == 1
    path.write_text("alice\n")
    clock.now += 1.0
    assert users.contains("alice")
    path.unlink()
    clock.now += 1.0
    assert not users.contains("alice")  # removing the file revokes everybody


def test_valid_users_from_the_environment_need_no_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.txt"
    clock = Clock()
    users = ValidUsers(path, clock=clock, extra=["demo", " bob ", ""])
    assert users.contains("demo") and users.contains("bob")
    assert not users.contains("alice") and not users.contains("")
    path.write_text("alice\n")
    clock.now += 1.0
    assert users.contains("alice") and users.contains("demo")  # the file adds to the list
    assert users.snapshot() == frozenset({"alice", "demo", "bob"})


def test_valid_users_setting_is_a_comma_list() -> None:
    from app.config import Settings
    assert Settings(_env_file=None, valid_users="alice, bob,,").valid_users == ["alice", "bob"]  # type: ignore[call-arg]
