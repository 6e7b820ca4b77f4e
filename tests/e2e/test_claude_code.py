"""Claude Code (``@anthropic-ai/claude-code``, pinned in tests/clients/node) through the Messages API.

``claude -p`` runs non-interactively with ``ANTHROPIC_BASE_URL`` at the gateway and ``ANTHROPIC_AUTH_TOKEN`` a
client token, in a temporary HOME with telemetry, auto-update and non-essential traffic off, so the only
network it needs is loopback. A recording proxy sits between it and the gateway (the gateway keeps no access
log) to show which routes, headers and models Claude Code used and that every call succeeded. The fake
Gemini answers the first turn with a ``Read`` call for a file (``[[call:Read]]`` + ``[[args:...]]``), and the
turn carrying the tool result with ``"tool result: " + <the result>``, so the file's content must come back.
Root cannot use ``--dangerously-skip-permissions``; ``--allowedTools Read`` pre-approves the one tool instead.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.gateway import TOKEN
from tests.support.node_clients import install_node_clients
from tests.support.recording_proxy import recording_proxy

SECRET = "the-harbour-pelican-42"
QUIET_ENV = {"DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
             "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


@pytest.fixture(scope="module")
def claude() -> Path:
    return install_node_clients() / "node_modules" / ".bin" / "claude"


def run_claude(claude: Path, base_url: str, tmp_path: Path, prompt: str, *flags: str
               ) -> subprocess.CompletedProcess[str]:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "ANTHROPIC_BASE_URL": base_url,
           "ANTHROPIC_AUTH_TOKEN": TOKEN, **QUIET_ENV}
    return subprocess.run([str(claude), "-p", prompt, "--allowedTools", "Read", *flags], cwd=work, env=env,
                          capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("model", [None, "gemini-3-flash-preview"], ids=["default-alias", "gemini-3"])
def test_claude_code_reads_a_file_through_the_gateway(claude, gateway, fake, tmp_path, model):
    """One Read round trip: Claude Code's own default model (a Claude name the alias table maps) and a
    Gemini 3 model named directly, whose function call signature must come back on the second turn."""
    notes = tmp_path / "work" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text(f"the secret word is {SECRET}\n")
    prompt = f'Read {notes} and tell me the secret word. [[call:Read]] [[args:{{"file_path":"{notes}"}}]]'
    with recording_proxy(gateway.url) as proxy:
        done = run_claude(claude, proxy.url, tmp_path, prompt, *(["--model", model] if model else []))
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert done.stdout.startswith("tool result: ") and SECRET in done.stdout

    # Claude Code's side of the wire: only the Messages route, all answered 2xx, authenticated by bearer.
    seen = [(e.method, e.path, e.status) for e in proxy.exchanges]
    assert seen and all(path.endswith("/v1/messages") and 200 <= code < 300 for _, path, code in seen), seen
    turns = [e for e in proxy.exchanges if isinstance(e.body, dict) and any(
        t.get("name") == "Read" for t in e.body.get("tools", []))]
    assert len(turns) == 2, seen
    assert all(e.query == "beta=true" and e.auth == "authorization" and e.body.get("stream") for e in turns)
    assert "claude-code-20250219" in turns[0].headers["anthropic-beta"]
    assert turns[0].headers["anthropic-version"] == "2023-06-01"
    assert turns[0].model == (model or turns[0].model) and turns[0].model
    if model is None:
        assert turns[0].model.startswith("claude-")
    tool_use = [b for b in turns[1].body["messages"][-2]["content"] if b.get("type") == "tool_use"]
    tool_result = [b for b in turns[1].body["messages"][-1]["content"] if b.get("type") == "tool_result"]
    assert tool_use[0]["name"] == "Read" and tool_use[0]["input"] == {"file_path": str(notes)}
    assert tool_result[0]["tool_use_id"] == tool_use[0]["id"] and SECRET in json.dumps(tool_result[0])

    # Gemini's side: two streamed generate calls, the second replaying the call and carrying its response.
    generate = [r for r in fake.requests() if "enerateContent" in r["path"]]
    assert len(generate) == len(turns) + sum(1 for e in proxy.exchanges if e not in turns)
    last = [r for r in generate
            if any("functionResponse" in p for c in r["body"]["contents"] for p in c["parts"])]
    assert len(last) == 1 and "streamGenerateContent" in last[0]["path"]
    assert "claude" not in last[0]["path"]  # the alias resolved to a Gemini model
    parts = [p for c in last[0]["body"]["contents"] for p in c["parts"]]
    call = next(p for p in parts if "functionCall" in p)
    assert call["functionCall"] == {"name": "Read", "args": {"file_path": str(notes)}}
    assert SECRET in json.dumps(next(p for p in parts if "functionResponse" in p))
    if model:
        assert call["thoughtSignature"].startswith("ZmFrZS10aG91Z2h0")  # the fake's own signature came back
        assert model in last[0]["path"]
