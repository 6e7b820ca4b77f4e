"""Sampling profiles of the gateway under load (py-spy), reduced to the few lines worth reading.

py-spy samples the live process from outside (no instrumentation, so the profile shows the real hot path);
it records collapsed stacks (``raw``), kept in .bench/ for flame graphs (speedscope.app or flamegraph.pl),
and summarised here three ways: self time per function, self time per component (our modules, each
library, the interpreter's asyncio), and inclusive time of the gateway's own functions.

Two things to keep in mind when reading them. Time spent in C (uvloop, sockets, orjson) is charged to the
Python frame that called it (``Runner.run`` is the event loop itself). A cyclic-GC pass is charged to
whatever frame allocated the object that triggered it, so with CPython's default thresholds harmless frames
(``Headers.__getitem__``, ``wrap_app_handling_exceptions``) show up with several % of self time.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def start(pyspy: str, pid: int, out: Path, seconds: float, rate: int = 200) -> subprocess.Popen[bytes]:
    """Record ``seconds`` of the process at ``rate`` Hz; non-blocking, so the target is never paused."""
    argv = [pyspy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate),
            "--format", "raw", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> str | None:
    """Wait for py-spy; its error text when it failed (no ptrace permission, for one)."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return "py-spy did not finish"
    return None if proc.returncode == 0 else err.decode(errors="replace").strip()[-500:]


def _component(file: str) -> str:
    """py-spy names files relative to their sys.path entry: the first segment is the package."""
    if file.startswith("app/"):
        return file.removesuffix(".py")
    if "/" in file:
        return file.split("/", 1)[0]
    return "stdlib: " + file.removesuffix(".py") if not file.startswith("<") else "interpreter"


def _short(frame: str) -> tuple[str, str]:
    """``(label, component)``: ``func (pkg/mod.py)`` without the line number, so lines of one function add up."""
    match = _FRAME.match(frame)
    if not match:
        return frame, "other"
    return f"{match['func']} ({match['file']})", _component(match["file"])


def summarize(raw: Path, *, seconds: float, rate: int = 200, top: int = 15) -> dict[str, Any]:
    """Self and inclusive shares, in % of one core (samples / (rate x seconds))."""
    self_time: Counter[str] = Counter()
    by_component: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";") if f and not f.startswith("process ")
                  and not f.startswith("thread ")]
        if not frames:
            continue
        label, component = frames[-1]
        self_time[label] += count
        by_component[component] += count
        for seen in {lab for lab, comp in frames if comp.startswith("app/")}:
            inclusive[seen] += count
    budget = rate * seconds

    def share(n: int) -> float:
        return round(100 * n / budget, 1) if budget else 0.0

    return {
        "samples": total,
        "busy_pct_of_core": share(total),
        "top_self": [{"function": k, "pct": share(v)} for k, v in self_time.most_common(top)],
        "by_component": [{"component": k, "pct": share(v)} for k, v in by_component.most_common(top)],
        "top_app_inclusive": [{"function": k, "pct": share(v)} for k, v in inclusive.most_common(top)],
        "raw_file": str(raw),
    }
