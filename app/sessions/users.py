"""The valid users of the sessions API: one id per line in ``VALID_USERS_FILE``, re-read when it changes, plus
the fixed ids of ``VALID_USERS`` (a list in the environment: a container or a fresh clone needs no file).

Operators add a user by editing the file; no restart. The file is checked at most once per ``interval`` (its
mtime, size and inode): one ``stat`` a second costs nothing on the request path, and the file is only read
again when it changed. A missing or unreadable file means no valid users (start_chat answers 403) and is
logged once per outage, not once per request.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["ValidUsers", "parse_users"]

log = logging.getLogger("gateway.sessions")


def parse_users(text: str) -> frozenset[str]:
    """Ids, one a line; blank lines and ``#`` comments (whole-line, or after whitespace) are ignored."""
    users: set[str] = set()
    for line in text.splitlines():
        for marker in (" #", "\t#"):
            cut = line.find(marker)
            if cut >= 0:
                line = line[:cut]
        line = line.strip()
        if line and not line.startswith("#"):
            users.add(line)
    return frozenset(users)


class ValidUsers:
    def __init__(self, path: str | os.PathLike[str], *, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, extra: Iterable[str] = ()) -> None:
        self._path = Path(path)
        self._extra = frozenset(u.strip() for u in extra if u.strip())
        self._interval = interval
        self._clock = clock
        self._users: frozenset[str] = frozenset()
        self._signature: tuple[int, int, int] | None = None
        self._checked: float | None = None
        self._missing_logged = False

    @property
    def path(self) -> Path:
        return self._path

    def contains(self, user_id: str) -> bool:
        if user_id in self._extra:
            return True
        self.refresh()
        return user_id in self._users

    def snapshot(self) -> frozenset[str]:
        self.refresh()
        return self._users | self._extra

    def refresh(self, force: bool = False) -> None:
        """Re-read the file if it changed, unless it was checked less than ``interval`` ago."""
        now = self._clock()
        if not force and self._checked is not None and now - self._checked < self._interval:
            return
        self._checked = now
        try:
            st = self._path.stat()
            signature = (st.st_mtime_ns, st.st_size, st.st_ino)  # ino: replaced by rename
            if signature == self._signature:
                return
            text = self._path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            if not self._missing_logged and self._extra:
                log.info("valid users file %s cannot be read (%s): only the %d VALID_USERS may start a chat",
                         self._path, exc.strerror or type(exc).__name__, len(self._extra))
                self._missing_logged = True
            elif not self._missing_logged:
                log.warning("valid users file %s cannot be read (%s): no user may start a chat until it can",
                            self._path, exc.strerror or type(exc).__name__)
                self._missing_logged = True
            self._users = frozenset()
            self._signature = None
            return
        self._missing_logged = False
        self._signature = signature
        self._users = parse_users(text)
        log.info("valid users file %s loaded: %d user(s)", self._path, len(self._users))
