"""``python -m tests.fake_gemini --host 127.0.0.1 --port 0``: run the fake until SIGTERM/SIGINT.

Prints exactly one line, ``LISTENING <port>``, on stdout once the socket accepts connections (port 0 picks a
free port), so a parent process can wait for it without polling. Everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from .server import Options, start_in_loop


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """CLI flags; each has a ``FAKE_GEMINI_*`` environment fallback."""
    parser = argparse.ArgumentParser(prog="python -m tests.fake_gemini", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("FAKE_GEMINI_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("FAKE_GEMINI_PORT", "0")))
    parser.add_argument(
        "--chunk-delay",
        type=float,
        default=_env_float("FAKE_GEMINI_CHUNK_DELAY", 0.0),
        help="seconds between stream chunks (default 0)",
    )
    parser.add_argument(
        "--slow-delay",
        type=float,
        default=_env_float("FAKE_GEMINI_SLOW_DELAY", 2.0),
        help="seconds a 'slow' key waits before answering (default 2.0)",
    )
    parser.add_argument(
        "--retry-delay",
        default=os.environ.get("FAKE_GEMINI_RETRY_DELAY") or None,
        help="RetryInfo.retryDelay for 'rpm' keys, e.g. '3s' (default: the fixture's '58s')",
    )
    parser.add_argument(
        "--words-per-chunk",
        type=int,
        default=int(os.environ.get("FAKE_GEMINI_WORDS_PER_CHUNK", "3")),
        help="words of answer text per stream chunk (default 3)",
    )
    parser.add_argument(
        "--log-limit",
        type=int,
        default=int(os.environ.get("FAKE_GEMINI_LOG_LIMIT", "10000")),
        help="requests kept in the control log; 0 disables logging (benchmarks)",
    )
    parser.add_argument(
        "--extra-model",
        action="append",
        default=[m for m in os.environ.get("FAKE_GEMINI_EXTRA_MODELS", "").split(",") if m],
        help="add a model id to the catalogue (repeatable)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        default=os.environ.get("FAKE_GEMINI_DEMO", "") not in ("", "0", "false"),
        help="label every answer text as a demo (make demo)",
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    options = Options(
        chunk_delay=args.chunk_delay,
        slow_delay=args.slow_delay,
        retry_delay=args.retry_delay,
        words_per_chunk=max(1, args.words_per_chunk),
        log_limit=max(0, args.log_limit),
        extra_models=list(args.extra_model),
        demo=args.demo,
    )
    runner, port, _ = await start_in_loop(options, args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sys.stdout.write(f"LISTENING {port}\n")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Entry point: uvloop when installed (the fake should never be the bottleneck of a benchmark)."""
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(args))
    else:
        uvloop.run(_serve(args))


if __name__ == "__main__":
    main()
