"""Turn ids: parsing the client's id (body or header), fingerprints and the kept window."""

from __future__ import annotations

import pytest

from app.sessions import TurnIdError, TurnRecord, digest, find_turn, new_turn_id, parse_turn_id
from app.sessions.turns import KEEP_TURNS, remember


@pytest.mark.parametrize(("body", "header", "expected"), [
    (None, None, None),
    ("turn-1", None, "turn-1"),
    (None, "0b6a4e7e-54a1-4c1a-9a53-0d1c5f1c7f40", "0b6a4e7e-54a1-4c1a-9a53-0d1c5f1c7f40"),
    ("same", "same", "same"),
    ("x" * 128, None, "x" * 128),
])
def test_turn_id_from_body_or_header(body: object, header: str | None, expected: str | None) -> None:
    assert parse_turn_id(body, header) == expected


@pytest.mark.parametrize(("body", "header", "names"), [
    ("", None, "turn_id"),
    ("has space", None, "turn_id"),
    ("x" * 129, None, "turn_id"),
    (7, None, "turn_id"),
    (["a"], None, "turn_id"),
    ("snow☃", None, "turn_id"),
    (None, "", "Idempotency-Key"),
    ("one", "two", "differ"),
])
def test_bad_turn_ids_are_refused_naming_the_field(body: object, header: str | None, names: str) -> None:
    with pytest.raises(TurnIdError, match=names):
        parse_turn_id(body, header)


def test_generated_ids_are_unique_and_valid() -> None:
    ids = {new_turn_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(parse_turn_id(i, None) == i for i in ids)


def test_digest_tells_messages_apart() -> None:
    assert digest("hello") == digest("hello")
    assert digest("hello") != digest("hello ")
    assert digest("\ud800 lone surrogate")  # never raises on odd input


def test_remember_keeps_the_last_turns_and_find_finds_them() -> None:
    turns: list[TurnRecord] = []
    for i in range(KEEP_TURNS + 3):
        turns = remember(turns, TurnRecord(f"t{i}", "d", f"a{i}"))
    assert [t.id for t in turns] == [f"t{i}" for i in range(3, KEEP_TURNS + 3)]
    last = KEEP_TURNS + 2
    assert find_turn(turns, f"t{last}") == TurnRecord(f"t{last}", "d", f"a{last}")
    assert find_turn(turns, "t0") is None
