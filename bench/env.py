"""What a run needs on the machine, installed when missing, and what the machine is (for the report).

``make bench`` must work on a fresh clone of a fresh machine: nginx and wrk come from the distribution (apt,
only when running as root and only when missing), py-spy from PyPI into the bench's own interpreter (listed
in bench/requirements.txt, never in the gateway's requirements). Without root or apt the run still works:
the raw-protocol fake replaces nginx, and a missing wrk or py-spy is reported, not fatal where avoidable.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.targets import nginx_binary

REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"


def _say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def ensure_system_tools(*, install: bool = True) -> dict[str, str | None]:
    """nginx and wrk from apt when missing (root only); returns the path of each, or None."""
    found = {"nginx": nginx_binary(), "wrk": shutil.which("wrk")}
    missing = [name for name, path in found.items() if path is None]
    if missing and install and os.geteuid() == 0 and shutil.which("apt-get"):
        _say(f"installing {', '.join(missing)} with apt-get (missing on this machine)")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, **quiet)  # type: ignore[call-overload]
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       env=env, check=False, **quiet)  # type: ignore[call-overload]
        found = {"nginx": nginx_binary(), "wrk": shutil.which("wrk")}
    for name, path in found.items():
        if path is None:
            _say(f"{name} is not available" + ("" if os.geteuid() == 0 else " (not root: cannot apt-get it)"))
    return found


def pyspy_binary() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def ensure_python_tools(*, install: bool = True) -> str | None:
    """py-spy into this interpreter's environment from bench/requirements.txt when missing."""
    if pyspy_binary() is None and install:
        _say("installing bench/requirements.txt (py-spy) into this interpreter's environment")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return pyspy_binary()


def _first_line(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gb() -> float:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parents[1]
    return _first_line(["git", "-C", str(root), *args])


def machine(tools: dict[str, str | None]) -> dict[str, Any]:
    """The facts a reader needs to compare two runs: hardware, versions, and how busy the machine was."""
    versions: dict[str, str | None] = {}
    for dist in ("uvicorn", "starlette", "aiohttp", "uvloop", "httptools", "orjson", "sse-starlette",
                 "py-spy"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_gb": _mem_total_gb(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
        "nginx": _first_line([nginx, "-v"]) if (nginx := tools.get("nginx")) else None,
        "wrk": (_first_line([wrk, "-v"]) or "").split(" [")[0] or None if (wrk := tools.get("wrk")) else None,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_ticks() -> tuple[int, int, int]:
    """(all, busy, steal) jiffies of the machine from /proc/stat. Steal is CPU time the hypervisor gave to
    someone else while this VM wanted it; busy is user+nice+system+irq+softirq of every process."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]] + [0] * 8
    except (OSError, ValueError):
        return 0, 0, 0
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + idle + iowait + irq + softirq + steal, user + nice + system + irq + softirq, steal


def steal_pct(before: tuple[int, int, int], after: tuple[int, int, int]) -> float:
    total = after[0] - before[0]
    return round(100 * (after[2] - before[2]) / total, 1) if total > 0 else 0.0


def own_cpu_seconds() -> float:
    """CPU of this process and of every child it has waited for (servers, wrk, py-spy): the bench's own."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def others_pct_of_core(before: tuple[int, int, int], after: tuple[int, int, int], own_cpu: float,
                       seconds: float) -> float:
    """CPU that processes outside the run used meanwhile, in % of one core: other jobs on a shared machine
    are the main source of run-to-run noise here, so every report says how much of it there was."""
    busy = (after[1] - before[1]) / os.sysconf("SC_CLK_TCK")
    return round(max(0.0, 100 * (busy - own_cpu) / seconds), 1) if seconds > 0 else 0.0
