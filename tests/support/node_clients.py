"""The pinned Node clients (tests/clients/node) installed once per checkout, for the e2e client tests.

``npm ci`` from the lock file (about ten seconds), skipped while node_modules matches the lock. Node is
required: a missing one fails the calling test rather than skipping it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "clients" / "node"


def install_node_clients() -> Path:
    """Install (or reuse) the pinned packages; returns the folder holding node_modules."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are required for the Node client tests (Node 20+)")
    lock = NODE_DIR / "package-lock.json"
    stamp = NODE_DIR / "node_modules" / ".installed-lock"
    if not stamp.exists() or stamp.read_bytes() != lock.read_bytes():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_DIR, check=True,
                       timeout=300)
        stamp.write_bytes(lock.read_bytes())
    return NODE_DIR
