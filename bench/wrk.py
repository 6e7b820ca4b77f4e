"""Non-stream load with wrk: POST a body with headers at fixed concurrency, read the result as JSON.

wrk is a C load generator (one epoll thread here) so that on two cores the client takes as little CPU as
possible away from the server under test. A Lua script sets the method, body and headers, and its ``done``
hook prints the summary and latency percentiles as one JSON line, so nothing parses wrk's human output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = """\
local f = assert(io.open("{body_file}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
{headers}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, ' ..
    '"mean_us": %.1f, "max_us": %d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
"""


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def write_script(work: Path, name: str, body: bytes, headers: dict[str, str]) -> Path:
    """One Lua script per request kind; the body lives in a file next to it (no Lua string escaping)."""
    work.mkdir(parents=True, exist_ok=True)
    body_file = work / f"{name}.body"
    body_file.write_bytes(body)
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = work / f"{name}.lua"
    script.write_text(_SCRIPT.format(body_file=body_file, headers=lines))
    return script


def run_wrk(url: str, script: Path, *, connections: int, seconds: float, threads: int = 1) -> WrkResult:
    """One wrk run; raises if wrk fails or prints no summary."""
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk is not installed")
    argv = [binary, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(script), url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-800:]} {done.stderr[-800:]}")
    data = json.loads(line[len("WRKJSON "):])
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return WrkResult(requests=data["requests"], seconds=data["duration_us"] / 1e6, errors=errors,
                     p50_ms=data["p50_us"] / 1000, p90_ms=data["p90_us"] / 1000, p99_ms=data["p99_us"] / 1000,
                     p999_ms=data["p999_us"] / 1000, mean_ms=data["mean_us"] / 1000, max_ms=data["max_us"] / 1000)
