"""Issue 12, item 11: the Docker build context, computed from the repository and `.dockerignore`, never
holds `.env`, `.venv`, `.git`, caches or test data, yet holds everything the Dockerfile copies; the image
runs as uid 1000 with a writable DATA_DIR."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from app.config import Settings

ROOT = Path(__file__).resolve().parents[3]


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """``(negated, regex)`` per line, with Docker's pattern syntax (``*``, ``?``, ``**``, leading ``!``)."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negated, re.compile(f"^{regex}$")))
    return rules


def in_context(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    included = True
    for negated, regex in rules:
        if any(regex.match(c) for c in candidates):
            included = negated
    return included


@pytest.fixture(scope="module")
def rules() -> list[tuple[bool, re.Pattern[str]]]:
    return ignore_rules((ROOT / ".dockerignore").read_text())


@pytest.mark.parametrize("path", [".env", ".env.local", "app/.env", ".venv/bin/python", ".git/HEAD",
                                  ".pytest_cache/v/cache", "app/__pycache__/main.cpython-311.pyc",
                                  "tests/fixtures/gemini/SOURCES.md", "tests/e2e/conftest.py", "bench/run.py",
                                  ".bench/results.json", "docs/benchmarks.md", "valid_users.txt",
                                  "data/analytics.jsonl", ".ruff_cache/x", "docker-compose.yml"])
def test_secrets_caches_and_test_data_are_excluded(path: str, rules) -> None:
    assert not in_context(path, rules)


def test_the_real_tree_sends_only_the_app(rules) -> None:
    sent = []
    for folder, dirs, files in os.walk(ROOT):
        rel = Path(folder).relative_to(ROOT).as_posix()
        for name in files:
            path = name if rel == "." else f"{rel}/{name}"
            if in_context(path, rules):
                sent.append(path)
    assert "requirements.txt" in sent and "app/main.py" in sent and "app/console/console.js" in sent
    assert all(p == "requirements.txt" or p.startswith("app/") for p in sent), sent
    assert not any(p.endswith((".pyc", ".env")) or "/.env" in p for p in sent)


def test_dockerfile_copies_only_what_the_context_holds(rules) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    sources = [src for line in re.findall(r"^COPY\s+(.+)$", dockerfile, re.M)
               for src in line.split()[:-1] if not src.startswith("--")]
    assert sources and all(in_context(src, rules) for src in sources)


def test_image_runs_as_uid_1000_with_a_writable_data_dir() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 1000$", dockerfile, re.M)
    assert "DATA_DIR=/app/data" in dockerfile
    assert re.search(r"chown 1000:1000 /app/data", dockerfile)
    assert Settings(_env_file=None, data_dir="/app/data", analytics_jsonl="a.jsonl").analytics_jsonl == \
        "/app/data/a.jsonl"
