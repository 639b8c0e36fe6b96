"""Which files some process holds open, maps or locks, read from /proc.

One snapshot costs a pass over /proc/*/fd, /proc/*/maps and /proc/locks; it is
refreshed while a long run goes on, so a file opened after planning is still
spared. Only processes this one may inspect are seen (as root: all in its PID
namespace); a container sees only its own.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as _field

Key = tuple[int, int]  # (st_dev, st_ino)
PROC = "/proc"


@dataclass(frozen=True)
class InUse:
    open_by: Mapping[Key, int]  # the file's key -> a pid that has it open or mapped
    locked: frozenset[tuple[int, int, int]]  # (major, minor, inode) from /proc/locks
    # The same locks by (st_dev, st_ino), as `why` is asked: one lookup, not a split dev.
    _locked_keys: frozenset[Key] = _field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = frozenset((os.makedev(major, minor), ino) for major, minor, ino in self.locked)
        object.__setattr__(self, "_locked_keys", keys)

    def is_locked(self, key: Key) -> bool:
        return key in self._locked_keys

    def why(self, dev: int, ino: int) -> str | None:
        key = (dev, ino)
        pid = self.open_by.get(key)
        if pid is not None:
            return f"open by process {pid} ({_comm(pid)})"
        if key in self._locked_keys:
            return "locked by another process (flock/fcntl)"
        return None


@dataclass
class Places:
    """Where processes reached the files they hold, filled in by `snapshot` on request
    (a dry run's forecast places them in the plan without walking its folders)."""

    paths: dict[Key, set[str]] = _field(default_factory=dict)  # regular files: as opened
    nlink: dict[Key, int] = _field(default_factory=dict)
    other: set[Key] = _field(default_factory=set)  # open, but no regular file (a folder)
    mapped: dict[int, set[str]] = _field(default_factory=dict)  # inode -> mapped paths

    dirs: dict[Key, set[str]] = _field(default_factory=dict)  # folders held open: as opened

    def add_dir(self, key: Key, target: str) -> None:
        self.dirs.setdefault(key, set()).add(target)

    def add(self, key: Key, st: os.stat_result, target: str) -> None:
        if not stat.S_ISREG(st.st_mode):
            self.other.add(key)
            return
        self.nlink[key] = st.st_nlink
        self.paths.setdefault(key, set()).add(target)


def _comm(pid: int) -> str:
    try:
        with open(f"{PROC}/{pid}/comm", encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return "?"


def snapshot(proc: str = PROC, *, places: Places | None = None, own: bool = False) -> InUse:
    """`places`: also record the path of each file held (one more readlink per fd).
    `own`: count this process too (attach(): what the app itself holds is a claim)."""
    me = -1 if own else os.getpid()
    open_by: dict[Key, int] = {}
    try:
        pids = [int(n) for n in os.listdir(proc) if n.isdigit()]
    except OSError:
        pids = []
    for pid in pids:
        if pid == me:
            continue
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"{fd_dir}/{fd}")  # follows the magic link to the open file
                if stat.S_ISDIR(st.st_mode):
                    # A folder merely open (a scan, du, our own workers' walks) is no
                    # claim on it; a live app marks a folder with a lock instead. Its
                    # path is kept for the dry run, which forecasts such locks.
                    if places is not None:
                        places.add_dir((st.st_dev, st.st_ino), os.readlink(f"{fd_dir}/{fd}"))
                    continue
                if places is not None:
                    places.add((st.st_dev, st.st_ino), st, os.readlink(f"{fd_dir}/{fd}"))
            except OSError:
                continue
            open_by.setdefault((st.st_dev, st.st_ino), pid)
        _read_maps(f"{proc}/{pid}/maps", pid, open_by, places)
    return InUse(open_by, frozenset(_read_locks(f"{proc}/locks")))


def _read_maps(path: str, pid: int, open_by: dict[Key, int], places: Places | None = None) -> None:
    """Memory-mapped files stay in use after their descriptor is closed."""
    try:
        with open(path, "rb") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6 or parts[4] == b"0":
            continue
        major, _, minor = parts[3].partition(b":")
        try:
            dev = os.makedev(int(major, 16), int(minor, 16))
            open_by.setdefault((dev, int(parts[4])), pid)
        except ValueError:
            continue
        if places is not None and parts[5].startswith(b"/"):
            places.mapped.setdefault(int(parts[4]), set()).add(os.fsdecode(parts[5]))


def _read_locks(path: str) -> set[tuple[int, int, int]]:
    """Lines like `1: FLOCK  ADVISORY  WRITE 1234 08:01:131 0 EOF` (major:minor hex)."""
    return set(lock_holders(path) or ())


def lock_holders(path: str = f"{PROC}/locks") -> dict[tuple[int, int, int], set[int]] | None:
    """Each lock's (major, minor, inode) and the pids /proc/locks names for it (the
    field before the device; -1 for a lock on an open file description). None: it
    could not be read (no /proc, out of descriptors), which says nothing of the locks."""
    held: dict[tuple[int, int, int], set[int]] = {}
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        for i, field in enumerate(fields):
            if field.count(":") == 2:
                major, minor, ino = field.split(":")
                with contextlib.suppress(ValueError):
                    pids = held.setdefault((int(major, 16), int(minor, 16), int(ino)), set())
                    with contextlib.suppress(ValueError, IndexError):
                        pids.add(int(fields[i - 1]))
                break
    return held


def open_paths(pid: int, key: Key, proc: str = PROC) -> set[str]:
    """The paths by which process `pid` holds file `key` open now."""
    fd_dir = f"{proc}/{pid}/fd"
    found: set[str] = set()
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return found
    for fd in fds:
        try:
            st = os.stat(f"{fd_dir}/{fd}")
            if (st.st_dev, st.st_ino) == key:
                found.add(os.readlink(f"{fd_dir}/{fd}"))
        except OSError:
            continue
    return found


class InUseWatcher:
    """A snapshot that renews itself every `max_age` seconds."""

    def __init__(self, max_age: float = 2.0) -> None:
        self.max_age = max_age
        self._taken = 0.0
        self._snap = InUse({}, frozenset())

    def why(self, dev: int, ino: int) -> str | None:
        if time.monotonic() - self._taken > self.max_age:
            self._snap = snapshot()
            self._taken = time.monotonic()
        return self._snap.why(dev, ino)
