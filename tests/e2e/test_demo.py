"""``make demo``'s script, run briefly: it starts, prints the walk-through, labels answers as a demo and
serves the sessions API to the VALID_USERS user; SIGTERM stops it and its children."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
import time

import openai
import requests

from tests.support.gateway import ROOT, free_port


def _read_until(process: subprocess.Popen[bytes], marker: bytes, timeout: float = 40.0) -> bytes:
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while marker not in out and time.monotonic() < deadline and process.poll() is None:
            if selector.select(timeout=0.2):
                out += process.stdout.read1(65536)  # type: ignore[attr-defined]
    finally:
        selector.close()
    return out


def test_demo_serves_labelled_answers_and_stops_cleanly() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "scripts.demo", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        printed = _read_until(process, b"Press Ctrl-C").decode()
        assert "Press Ctrl-C" in printed, printed
        assert "sk-demo-token" in printed and "/start_chat" in printed and "DEMO" in printed
        url = f"http://127.0.0.1:{port}"
        client = openai.OpenAI(base_url=url + "/v1", api_key="sk-demo-token", max_retries=0, timeout=20)
        for _ in range(5):  # enough turns to meet every key of the scripted pool; the bad ones are skipped
            raw = client.chat.completions.with_raw_response.create(
                model="gemini-2.5-flash", messages=[{"role": "user", "content": "hello"}])
            assert raw.headers["x-gateway-demo"] == "true"
            assert raw.parse().choices[0].message.content.startswith("[DEMO: fake Gemini, not Google]")
        chat = requests.post(url + "/start_chat", json={"user_id": "demo"}, timeout=10)
        assert chat.status_code == 200 and chat.headers["x-gateway-demo"] == "true"
        reply = requests.post(url + "/send_message", json={"chat_id": chat.json()["chat_id"], "message": "hi"},
                              timeout=10)
        assert reply.status_code == 200 and "DEMO" in reply.json()["response"]
        keys = requests.get(url + "/admin/api/keys", headers={"Authorization": "Bearer sk-demo-admin"}, timeout=10)
        states = sorted(k["state"] for k in keys.json()["keys"])
        assert states == ["active", "active", "cooling", "cooling", "disabled"]  # the scripted pool, as promised
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
    assert code == 0
    try:
        requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
        stopped = False
    except requests.ConnectionError:
        stopped = True
    assert stopped  # the gateway went down with the script
