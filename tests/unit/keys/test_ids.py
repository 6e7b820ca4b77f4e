"""Key fingerprints: short, stable across processes, and never more than 8 characters of the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.keys import key_id, scrub

# Shape of a Gemini key, not a real one; built in two pieces so leak scanners do not flag the source.
KEY = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"


def _revealed(key: str, ident: str) -> int:
    """Longest run of the key's characters that appears in the id."""
    best = 0
    for i in range(len(key)):
        for j in range(i + 1, len(key) + 1):
            if key[i:j] in ident:
                best = max(best, j - i)
    return best


def test_long_key_shows_ends_and_hash() -> None:
    ident = key_id(KEY)
    assert ident.startswith("AIza…") and ident.split("-")[0].endswith("MBWY")
    assert KEY not in ident
    assert _revealed(KEY, ident) <= 4
    assert sum(c in ident for c in (KEY[:4], KEY[-4:])) == 2


def test_same_ends_are_told_apart() -> None:
    other = KEY[:10] + "Z" + KEY[11:]
    assert key_id(KEY) != key_id(other)


def test_short_key_is_a_hash_prefix_only() -> None:
    ident = key_id("short-key")
    assert ident.startswith("key-") and "short" not in ident and len(ident) == 16


def test_stable_across_processes() -> None:
    code = f"from app.keys.ids import key_id; print(key_id({KEY!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}, cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == key_id(KEY)


def test_scrub_replaces_google_keys_and_pool_keys() -> None:
    text = f"API key {KEY} not valid; also sk-local-secret-123; Consumer 'api_key:{KEY}' suspended"
    cleaned = scrub(text, ["sk-local-secret-123"])
    assert KEY not in cleaned and "sk-local-secret-123" not in cleaned
    assert key_id(KEY) in cleaned and key_id("sk-local-secret-123") in cleaned
    assert "Consumer 'api_key:[redacted]' suspended" in cleaned  # one rule set: app/gemini/scrub.py
    assert scrub("nothing here") == "nothing here"
