"""``make demo`` (``python -m scripts.demo``): the gateway over the bundled fake Gemini upstream; no key.

The pool is scripted by the fake's key conventions: two healthy keys, one invalid (the pool disables it at its
first use), one that hits a per-minute limit (cools for the fake's RetryInfo) and one out of daily quota
(cools until Pacific midnight). Every answer is labelled: the header ``x-gateway-demo: true`` and answer texts
starting ``[DEMO: fake Gemini, not Google]``. Ctrl-C stops both processes.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.fake_gemini.process import start_fake

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "sk-demo-token"
ADMIN_TOKEN = "sk-demo-admin"
USER = "demo"
#: Key name -> what the fake does with it (its prefix conventions, tests/fake_gemini/__init__.py).
KEYS = {
    "ok-demo-healthy-1": "healthy",
    "ok-demo-healthy-2": "healthy",
    "invalid-demo-key-3": "invalid: 400 API_KEY_INVALID, disabled at first use",
    "rpm-demo-key-4": "per-minute limit: 429, cools for 30 s",
    "rpd-demo-key-5": "out of daily quota: 429, cools until midnight Pacific",
}


def walkthrough(url: str) -> str:
    """The commands to try, with the demo tokens filled in."""
    return f"""
=== Gemini Gateway DEMO (fake upstream: no answer here comes from Google) ===
Gateway  {url}
Console  {url}/admin   (admin token: {ADMIN_TOKEN})
Client token: {TOKEN}     Session user: {USER}
Pool: {", ".join(f"{k} ({v})" for k, v in KEYS.items())}

curl, OpenAI chat (send it a few times and watch the pool in the console):
  curl -s {url}/v1/chat/completions -H 'Authorization: Bearer {TOKEN}' -H 'content-type: application/json' \\
    -d '{{"model": "gemini-2.5-flash", "messages": [{{"role": "user", "content": "Hello"}}]}}'

openai SDK (pip install openai):
  python -c "from openai import OpenAI; c = OpenAI(base_url='{url}/v1', api_key='{TOKEN}'); \\
print(c.chat.completions.create(model='gemini-2.5-flash', messages=[{{'role': 'user', 'content': 'Hi'}}]).choices[0].message.content)"

Image and speech (the fake draws a 16x16 PNG and hums a tone):
  curl -s {url}/v1/images/generations -H 'Authorization: Bearer {TOKEN}' -H 'content-type: application/json' \\
    -d '{{"model": "gpt-image-1", "prompt": "a lighthouse"}}' | head -c 300; echo
  curl -s {url}/v1/audio/speech -H 'Authorization: Bearer {TOKEN}' -H 'content-type: application/json' \\
    -d '{{"model": "tts-1", "voice": "alloy", "input": "Hello", "response_format": "wav"}}' -o hello.wav

Sessions API (user "{USER}" comes from VALID_USERS):
  CHAT=$(curl -s {url}/start_chat -H 'content-type: application/json' -d '{{"user_id": "{USER}"}}' \\
    | python -c 'import json,sys; print(json.load(sys.stdin)["chat_id"])')
  curl -s {url}/send_message -H 'content-type: application/json' -d "{{\\"chat_id\\": \\"$CHAT\\", \\"message\\": \\"Hi\\"}}"
  curl -s {url}/end_chat -H 'content-type: application/json' -d "{{\\"chat_id\\": \\"$CHAT\\"}}"

Key pool state:
  curl -s {url}/admin/api/keys -H 'Authorization: Bearer {ADMIN_TOKEN}'
Press Ctrl-C to stop.
"""


def gateway_env(upstream: str, port: int, data_dir: str) -> dict[str, str]:
    """Only demo settings: a developer's own .env and API keys are left out."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("API_", "REDIS_", "DATABASE_", "VALID_USERS", "ALLOWED_", "AUTH_",
                                "BASE_URL"))}
    env.update({"GATEWAY_ENV_FILE": "", "BASE_URL": upstream, "HOST": "127.0.0.1", "PORT": str(port),
                "API_KEYS": ",".join(KEYS), "ALLOWED_TOKENS": TOKEN, "AUTH_TOKEN": ADMIN_TOKEN,
                "VALID_USERS": USER, "DEMO_MODE": "true", "DATA_DIR": data_dir, "INTERACTION_LOG": "",
                "LOG_LEVEL": env.get("LOG_LEVEL", "WARNING"), "CHECK_INTERVAL": "60"})
    return env


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the gateway exited with code {process.returncode}")
        try:
            if requests.get(url + "/health", timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise SystemExit("the gateway did not start in time")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.demo", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args(argv)
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with start_fake(retry_delay="30s", env={"FAKE_GEMINI_DEMO": "1"}) as fake, \
            tempfile.TemporaryDirectory(prefix="gateway-demo-") as data_dir:
        url = f"http://127.0.0.1:{args.port}"
        gateway = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT,
                                   env=gateway_env(fake.base_url, args.port, data_dir))
        try:
            wait_ready(url, gateway)
            print(walkthrough(url), flush=True)
            while not stop and gateway.poll() is None:
                time.sleep(0.2)
        finally:
            if gateway.poll() is None:
                gateway.terminate()
                try:
                    gateway.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    gateway.kill()
                    gateway.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
