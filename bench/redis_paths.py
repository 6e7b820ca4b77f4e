"""The hot paths beyond plain chat, memory vs Redis mode in one run: a token with limits, the Anthropic surface,
a conversation header (affinity), native generateContent, chat sessions (issue 17).

Why: ``bench/redis_scale.py`` covers the key pool; these rows exercise the other Redis-backed stores on the
request path (token limits, affinity bindings, sessions with their per-user rate limit). Each row starts one
gateway per mode (one worker, the durable store on so a limited token can be created, 20 healthy keys),
runs ``--concurrency`` workers for ``--seconds`` against ``bench/upstream.py`` and reports req/s, Redis
mode as a ratio of memory mode. Limits are set high so that nothing is refused: the cost is measured, not
the refusal. Session rows give every worker its own user and chat (a chat runs one turn at a time).

Run: ``.venv/bin/python -m bench.redis_paths [--seconds 6] [--rounds 1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from functools import partial
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.gateway_process import GatewayProcess, alternate
from bench.upstream import spawn as spawn_upstream
from tests.support.gateway import ADMIN_TOKEN, TOKEN, gateway_env

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/0"
MODEL = "gemini-2.5-flash"
USERS = [f"bench-user-{i}" for i in range(128)]
#: Limits a bench never reaches: every limit is checked and counted, none refuses.
HIGH_LIMITS = {"rpm": 10_000_000, "rpd": 100_000_000, "tpm": 10_000_000_000, "tpd": 100_000_000_000,
               "concurrent": 10_000}

Send = Callable[[aiohttp.ClientSession], Awaitable[int]]


class Gateway(GatewayProcess):
    """A gateway with its own durable store (tokens with limits), one worker, 20 healthy keys."""

    def __init__(self, root: Path, upstream: str, redis_url: str | None, **settings: object) -> None:
        self.data = tempfile.mkdtemp(prefix="bench-gw-data-")
        tag = uuid.uuid4().hex[:10]
        super().__init__(root, gateway_env(upstream, api_keys=[f"ok-{tag}-{i}" for i in range(20)],
                                           redis_url=redis_url, log_level="WARNING", data_dir=self.data,
                                           valid_users=USERS, **settings))

    async def limited_token(self, session: aiohttp.ClientSession) -> str:
        """A client token with every limit set (high), created in the admin API."""
        async with session.post(self.url + "/admin/api/tokens", json={"name": "bench", "limits": HIGH_LIMITS},
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as resp:
            body = await resp.json()
            if resp.status != 201:
                raise RuntimeError(f"token not created: {resp.status} {body}")
            return str(body["secret"])

    async def chat_id(self, session: aiohttp.ClientSession, user: str) -> str:
        async with session.post(self.url + "/start_chat", json={"user_id": user}) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"start_chat: {resp.status} {body}")
            return str(body["chat_id"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _status(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> int:
    async with session.request(method, url, **kw) as resp:
        await resp.read()
        return resp.status


@dataclass(frozen=True)
class Path_:
    """One request shape. ``make(gw, session, worker)`` returns the worker's sender (after any set-up)."""

    label: str
    make: Callable[[Gateway, aiohttp.ClientSession, int, dict[str, Any]], Awaitable[Send]]


async def _chat(gw: Gateway, s: aiohttp.ClientSession, i: int, ctx: dict[str, Any], *, limited: bool,
                stream: bool = False, hint: bool = False) -> Send:
    headers = _bearer(ctx["limited"] if limited else TOKEN)
    if hint:
        headers["X-Session-Id"] = f"conv-{i}"
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello there"}], "stream": stream}
    return lambda session: _status(session, "POST", gw.url + "/v1/chat/completions", json=body, headers=headers)


async def _native(gw: Gateway, s: aiohttp.ClientSession, i: int, ctx: dict[str, Any]) -> Send:
    body = {"contents": [{"parts": [{"text": "hello there"}]}]}
    url = gw.url + f"/v1beta/models/{MODEL}:generateContent"
    return lambda session: _status(session, "POST", url, json=body, headers={"x-goog-api-key": TOKEN})


async def _anthropic(gw: Gateway, s: aiohttp.ClientSession, i: int, ctx: dict[str, Any]) -> Send:
    body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hello there"}]}
    headers = {"x-api-key": ctx["limited"], "anthropic-version": "2023-06-01"}
    return lambda session: _status(session, "POST", gw.url + "/v1/messages", json=body, headers=headers)


async def _session(gw: Gateway, s: aiohttp.ClientSession, i: int, ctx: dict[str, Any]) -> Send:
    chat_id = await gw.chat_id(s, USERS[i % len(USERS)])
    body = {"chat_id": chat_id, "message": "hello there"}
    return lambda session: _status(session, "POST", gw.url + "/send_message", json=body)


def _p(label: str, fn: Any, **kw: Any) -> Path_:
    async def make(gw: Gateway, s: aiohttp.ClientSession, i: int, ctx: dict[str, Any]) -> Send:
        return await fn(gw, s, i, ctx, **kw)
    return Path_(label, make)


PATHS: list[Path_] = [
    _p("chat, token without limits", _chat, limited=False),
    _p("chat, token with rpm/rpd/tpm/tpd/concurrency limits", _chat, limited=True),
    _p("chat stream, token with limits", _chat, limited=True, stream=True),
    _p("chat with a conversation header (affinity)", _chat, limited=False, hint=True),
    _p("native generateContent", _native),
    _p("Anthropic messages, token with limits", _anthropic),
    _p("chat session send_message (per-user rate limit)", _session),
]


async def prepared(gw: Gateway, session: aiohttp.ClientSession) -> dict[str, Any]:
    await gw.ready(session)
    token = await gw.limited_token(session)
    for _ in range(100):  # the durable store's change reaches the token registry at once on this worker
        if await _status(session, "GET", gw.url + "/v1/models", headers=_bearer(token)) == 200:
            break
        await asyncio.sleep(0.05)
    return {"limited": token}


async def _load(session: aiohttp.ClientSession, senders: list[Send], seconds: float) -> tuple[int, int]:
    end = time.monotonic() + seconds
    ok = bad = 0

    async def worker(send: Send) -> None:
        nonlocal ok, bad
        while time.monotonic() < end:
            if await send(session) == 200:
                ok += 1
            else:
                bad += 1

    await asyncio.gather(*(worker(send) for send in senders))
    return ok, bad


async def measure(root: Path, upstream: str, path: Path_, redis_url: str | None, concurrency: int,
                  seconds: float) -> float:
    gw = Gateway(root, upstream, redis_url, user_rate_limit=1_000_000)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 4)) as session:
            ctx = await prepared(gw, session)
            senders = [await path.make(gw, session, i, ctx) for i in range(concurrency)]
            await _load(session, senders[:8], 1.0)  # warm-up
            ok, bad = await _load(session, senders, seconds)
            if bad:
                print(f"  warning: {path.label}: {bad} non-200 answers", file=sys.stderr)
            return ok / seconds
    finally:
        gw.stop()


async def main_async(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    upstream, base_url = spawn_upstream("--delay-ms", "0")
    results: list[tuple[str, float, float]] = []
    try:
        for path in [p for p in PATHS if not args.only or any(word in p.label for word in args.only)]:
            memory, redis = await alternate(
                args.rounds,
                partial(measure, args.root, base_url, path, None, args.concurrency, args.seconds),
                partial(measure, args.root, base_url, path, REDIS_URL, args.concurrency, args.seconds))
            results.append((path.label, memory, redis))
            print(f"  {path.label}: {memory:,.0f} vs {redis:,.0f} req/s", file=sys.stderr)
    finally:
        upstream.terminate()
        upstream.wait(10)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--only", action="append", default=[],
                        help="run only the rows whose label contains this text (repeatable), e.g. 'session'")
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree whose app/ the gateway runs")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print("| path | memory mode | with `REDIS_URL` |")
    print("|---|---|---|")
    for label, memory, redis in results:
        print(f"| {label} | {memory:,.0f} req/s | {redis:,.0f} req/s ({redis / memory:.2f} x memory) |")


if __name__ == "__main__":
    main()
