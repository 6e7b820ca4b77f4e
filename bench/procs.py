"""Child processes of a bench run: start, wait until they listen, read their RSS and CPU, stop them.

Everything is read from ``/proc`` (no psutil): the bench must run on a fresh machine with only the gateway's
requirements, and ``/proc/<pid>/stat`` gives exactly the CPU seconds needed to turn a run into CPU per request.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    """A started child: its name in the report, its URL, and where its output went."""

    name: str
    popen: subprocess.Popen[bytes]
    url: str
    log_path: Path
    extra_pids: list[int] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def rss_mb(self) -> float:
        """Resident set size of the process itself (statm: no parsing of the human-readable status file)."""
        with open(f"/proc/{self.pid}/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE / 1e6

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process (and of extra pids, e.g. nginx workers), in seconds."""
        return sum(_cpu_of(pid) for pid in (self.pid, *self.extra_pids))

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def logs(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def _cpu_of(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime 14 and stime 15 (1-based) -> indexes 11 and 12 here.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def children_of(pid: int) -> list[int]:
    """Direct children (nginx workers of the master), from /proc/<pid>/task/*/children."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return out


class Processes:
    """Owns every child of a run; ``stop_all`` ends them in reverse order of start (clients before servers)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._procs: list[Proc] = []

    def start(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None, port: int,
              announce: bool = False, timeout: float = 30.0) -> Proc:
        """Start ``argv`` and wait until ``port`` accepts connections (or a ``LISTENING <port>`` line).

        ``announce``: the child binds port 0 and prints ``LISTENING <port>``; the real port is read from it.
        """
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as log:  # the child keeps its own descriptor
            popen = subprocess.Popen(list(argv), cwd=ROOT, env=dict(env) if env is not None else None,
                                     stdout=subprocess.PIPE if announce else log, stderr=log,
                                     start_new_session=True)
        if announce:
            assert popen.stdout is not None
            line = popen.stdout.readline().decode(errors="replace").strip()
            if not line.startswith("LISTENING "):
                popen.kill()
                raise RuntimeError(f"{name} did not announce its port: {line!r}\n{log_path.read_text()}")
            port = int(line.split()[1])
            popen.stdout.close()
        proc = Proc(name, popen, f"http://127.0.0.1:{port}", log_path)
        self._procs.append(proc)
        _wait_listening(proc, port, timeout)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        while self._procs:
            self._procs.pop().stop()


def _wait_listening(proc: Proc, port: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.logs()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not listen on {port} within {timeout:.0f} s:\n{proc.logs()}")


@contextmanager
def processes(log_dir: Path) -> Iterator[Processes]:
    log_dir.mkdir(parents=True, exist_ok=True)
    group = Processes(log_dir)
    try:
        yield group
    finally:
        group.stop_all()


def python() -> str:
    """The interpreter running the bench (the project's venv under ``make bench``)."""
    return sys.executable
