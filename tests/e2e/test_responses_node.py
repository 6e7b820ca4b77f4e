"""Node clients of the Responses API against the real gateway: the Vercel AI SDK's default OpenAI provider.

The packages are pinned in tests/clients/node/package-lock.json and installed from the npm registry by
tests/support/node_clients.py (``npm ci``, about ten seconds, once per checkout). Node is required: a missing
one fails the test rather than skipping it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.gateway import TOKEN
from tests.support.node_clients import NODE_DIR, install_node_clients

GEMINI3 = "gemini-3-flash-preview"


@pytest.fixture(scope="module")
def node_clients() -> Path:
    return install_node_clients()


def run_node(script: str, *args: str, gateway, model: str = GEMINI3) -> dict:
    env = {**os.environ, "GATEWAY_URL": gateway.v1, "GATEWAY_TOKEN": TOKEN, "GATEWAY_MODEL": model}
    done = subprocess.run(["node", script, *args], cwd=NODE_DIR, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["generate", "stream"])
def test_vercel_ai_sdk_tool_loop(node_clients, gateway, fake, mode):
    """generateText / streamText with a tool on Gemini 3: two steps, the signature carried, stored items
    referenced (store defaults to true, so the SDK sends item_reference for reasoning items)."""
    out = run_node("vercel.mjs", mode, gateway=gateway)
    assert out["calls"] == ["x"] and out["steps"] == 2
    assert out["text"] == 'tool result: {"output":"sunny in x"}'
    generate = [r for r in fake.requests() if "enerateContent" in r["path"]]
    assert len(generate) == 2
    replayed = generate[1]["body"]["contents"][1]["parts"][0]
    assert replayed["functionCall"]["name"] == "get_weather"
    assert replayed["thoughtSignature"].startswith("ZmFrZS10aG91Z2h0")  # the fake's own signature came back


def test_codex_exec_runs_one_shell_command(node_clients, gateway, fake, tmp_path):
    """``codex exec`` with a custom ``wire_api = "responses"`` provider: one shell call, then the final answer."""
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (home / "config.toml").write_text(
        f'model = "{GEMINI3}"\nmodel_provider = "gateway"\n\n[model_providers.gateway]\nname = "gateway"\n'
        f'base_url = "{gateway.v1}"\nenv_key = "GATEWAY_TOKEN"\nwire_api = "responses"\n')
    env = {**os.environ, "CODEX_HOME": str(home), "GATEWAY_TOKEN": TOKEN}
    prompt = 'Write the marker file. [[args:{"cmd":"echo hello-from-codex > done.txt"}]]'
    done = subprocess.run([str(node_clients / "node_modules" / ".bin" / "codex"), "exec", "--skip-git-repo-check",
                           "-s", "danger-full-access", prompt], cwd=work, env=env, capture_output=True, text=True,
                          timeout=90, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (work / "done.txt").read_text().strip() == "hello-from-codex"
    assert "tool result:" in done.stdout + done.stderr
    generate = [r for r in fake.requests() if "enerateContent" in r["path"]]
    assert len(generate) == 2 and all("streamGenerateContent" in r["path"] for r in generate)
    replayed = [p for c in generate[1]["body"]["contents"] for p in c["parts"] if "functionCall" in p]
    assert replayed[0]["functionCall"]["name"] == "exec_command"
    assert replayed[0]["thoughtSignature"].startswith("ZmFrZS10aG91Z2h0")
