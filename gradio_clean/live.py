"""What live Gradio sessions use, marked so that every cleaner can see it.

A mark is a descriptor this process keeps open on something under a root:

- a file is held open (O_RDONLY) while an event that takes it is queued or runs:
  gradio-clean's in-use check and ``tmpwatch --fuser`` skip open files;
- the item folder holding a file (``<root>/<hash>``) and a session's own folder
  (``<sessions dir>/<session hash>``) carry a shared ``flock``: systemd-tmpfiles
  skips locked folders, and gradio-clean skips a locked folder and what is in it.
  A file directly in a root has no item folder, so it is held open instead. A root
  itself is never locked: that would stall gradio-clean's own root lock.

A folder merely held open marks nothing for another process (a scan holds folders open
too), so a folder's mark is its flock. A cleaner holding the folder exclusively (our own
per-file probe, for microseconds) is waited out for a few ms at most; one that holds it
longer (removing that very folder, systemd-tmpfiles) leaves the mark *pending*, tried
again at each take and give and at each `LiveSessions.sweep` (attach()'s tick, every
second), and counted in `LiveStats.pending` meanwhile.

Marks are shared and counted: ten sessions showing the same image cost one
descriptor. A page keeps the marks of what its components show now (an output
replaces the component's previous value), at most `MAX_SHOWN` files per session.
Marks lapse `grace` seconds after the page disconnects, or, for a client with no
page, after its last event; a page idle for `PAGE_IDLE` (1 h) with no event counts
as gone, since a browser does not always drop the heartbeat of a page it left. Everything here
is plain Python; the Gradio hooks live in hooks.py.
"""

from __future__ import annotations

import fcntl
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gradio_clean.roots import DIR_FLAGS

Key = tuple[int, int]  # (st_dev, st_ino)
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_SHOWN = 64  # files a page's components show that keep a mark, per session
MAX_EVENT_FILES = 256  # input files of one event that are held open
REASON = "in use by a live Gradio session"
# A page with no event for this long counts as gone even if Gradio never says so:
# a browser may keep a page's heartbeat open after leaving it (Chromium did, for a
# Gradio 5.50 page navigated away from after an event), and marks must stay bounded.
PAGE_IDLE = 3600.0


# Waits between tries at a folder's flock while another process holds it exclusively:
# our own probes hold it for microseconds; this blocks an app's event ~4 ms at most.
LOCK_WAITS = (0.00025, 0.0005, 0.001, 0.002)


@dataclass
class _Mark:
    fd: int
    key: Key
    refs: int = 1


class Marks:
    """Descriptors by (kind, path), opened once and counted; not thread-safe on its own."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], _Mark] = {}
        self._keys: dict[Key, int] = {}  # a file held open and locked is one key twice
        self._pending: set[tuple[str, str]] = set()  # folders held open, not yet locked

    def take(self, kind: str, path: str) -> tuple[str, str] | None:
        """Hold a file open ("file") or flock a folder ("dir"); None if it is not there."""
        if self._pending:
            self.retry()
        name = (kind, path)
        mark = self._held.get(name)
        if mark is not None:
            mark.refs += 1
            return name
        fd = _open_mark(kind, path)
        if fd is None:
            return None
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        self._held[name] = _Mark(fd, key)
        self._keys[key] = self._keys.get(key, 0) + 1
        if kind == "dir" and not _share(fd, LOCK_WAITS):
            self._pending.add(name)
        return name

    def give(self, name: tuple[str, str]) -> None:
        mark = self._held.get(name)
        if mark is not None:
            mark.refs -= 1
            if mark.refs <= 0:
                del self._held[name]
                self._pending.discard(name)
                self._keys[mark.key] -= 1
                if not self._keys[mark.key]:
                    del self._keys[mark.key]
                os.close(mark.fd)  # closing the last descriptor drops its flock too
        if self._pending:
            self.retry()

    def retry(self) -> None:
        """Try once more, without waiting, to lock each folder whose mark is pending.

        Until then only cleaners in other processes miss the mark: attach()'s own apply
        asks `in`, which counts a pending mark, and its budget, which reads /proc/locks,
        is told of them (`pending_keys`), so that it plans no eviction apply would skip."""
        for name in list(self._pending):
            if _share(self._held[name].fd, ()):
                self._pending.discard(name)

    @property
    def pending(self) -> int:
        """Folders marked here that other processes cannot see as marked yet."""
        return len(self._pending)

    def pending_keys(self) -> frozenset[Key]:
        """Those folders' (st_dev, st_ino): attach()'s own budget passes over them."""
        return frozenset(self._held[name].key for name in self._pending)

    def __contains__(self, key: Key) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._held)


def _open_mark(kind: str, path: str) -> int | None:
    try:
        fd = os.open(path, DIR_FLAGS if kind == "dir" else FILE_FLAGS)
    except OSError:
        return None  # gone, a symlink, or not ours to open: nothing to protect
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        return None
    if kind == "file" and not stat.S_ISREG(mode):  # a FIFO or device is not a served file
        os.close(fd)
        return None
    return fd


def _share(fd: int, waits: Sequence[float]) -> bool:
    """Take a folder's flock shared, waiting `waits` between tries while another process
    holds it exclusively; False if it still does. True where the filesystem has no flock:
    there is nothing to wait for (delete's probe finds such a folder free too)."""
    for wait in (0.0, *waits):
        if wait:
            time.sleep(wait)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            continue
        except OSError:
            return True  # no flock on this filesystem
    return False


@dataclass
class _Pin:
    """The input files of one queued or running event."""

    session: str | None
    marks: list[tuple[str, str]]
    body: object  # Gradio's request body: still in its queue while queued
    queued_at: float
    running: bool = False


@dataclass
class _Session:
    last_seen: float
    connected: bool = False
    shown: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    folder: tuple[str, str] | None = None


class LiveSessions:
    """Live sessions and events, and the marks they hold. Safe to call from any thread."""

    def __init__(
        self,
        roots: Sequence[str],
        sessions_dirs: Sequence[str],
        grace: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.roots = tuple(os.path.abspath(r) for r in roots)
        self.sessions_dirs = tuple(os.path.abspath(d) for d in sessions_dirs)
        self.grace = grace
        self._clock = clock
        self._lock = threading.Lock()
        self._marks = Marks()
        self._pins: dict[int, _Pin] = {}
        self._sessions: dict[str, _Session] = {}

    # -- what marks a path gets ------------------------------------------------------

    def _targets(self, path: str, *, held_open: bool) -> list[tuple[str, str]]:
        """The marks for one file: its item folder, or the file itself at a root's top."""
        path = os.path.abspath(path)
        for root in (*self.roots, *self.sessions_dirs):
            if not path.startswith(root.rstrip("/") + "/"):
                continue
            rel = path[len(root.rstrip("/")) + 1 :]
            top, sep, _ = rel.partition("/")
            out = [("dir", os.path.join(root, top))] if sep else []
            if held_open or not sep:
                out.append(("file", path))
            return out
        return []  # outside every root: not ours to protect

    def _take(self, paths: Iterable[str], *, held_open: bool, limit: int) -> list[tuple[str, str]]:
        taken: list[tuple[str, str]] = []
        wanted: dict[tuple[str, str], None] = {}
        for path in paths:
            for mark in self._targets(path, held_open=held_open):
                wanted.setdefault(mark)
            if len(wanted) >= limit:
                break
        for kind, target in wanted:
            name = self._marks.take(kind, target)
            if name is not None:
                taken.append(name)
        return taken

    def _give(self, names: Iterable[tuple[str, str]]) -> None:
        for name in names:
            self._marks.give(name)

    # -- events ----------------------------------------------------------------------

    def pin(self, token: int, session: str | None, paths: Iterable[str], body: object) -> None:
        """An event was queued (or starts): hold its input files until `unpin`."""
        with self._lock:
            pin = self._pins.get(token)
            if pin is None:
                marks = self._take(paths, held_open=True, limit=MAX_EVENT_FILES)
                self._pins[token] = _Pin(session, marks, body, self._clock())
            elif session is not None:
                pin.session = session
            if session is not None:
                self._touch(session)

    def start(self, token: int) -> None:
        with self._lock:
            pin = self._pins.get(token)
            if pin is not None:
                pin.running = True

    def unpin(self, token: int) -> None:
        with self._lock:
            pin = self._pins.pop(token, None)
            if pin is None:
                return
            self._give(pin.marks)
            if pin.session is not None:
                self._touch(pin.session)

    # -- pages -----------------------------------------------------------------------

    def show(self, session: str, component: str, paths: Sequence[str]) -> None:
        """What one component of a page shows now; it replaces what it showed before."""
        with self._lock:
            record = self._touch(session)
            if not paths and component not in record.shown:
                return  # the usual case: a component that shows no file, before or now
            old = record.shown.pop(component, [])
            room = MAX_SHOWN - sum(len(v) for v in record.shown.values())
            if paths and room > 0:
                record.shown[component] = self._take(paths, held_open=False, limit=room)
            self._give(old)  # after taking the new ones: a shared folder keeps its lock
            self._mark_folder(session, record)

    def connect(self, session: str) -> None:
        with self._lock:
            record = self._touch(session)
            record.connected = True
            self._mark_folder(session, record)

    def disconnect(self, session: str) -> None:
        with self._lock:
            self._touch(session).connected = False

    def seen(self, session: str) -> None:
        with self._lock:
            self._mark_folder(session, self._touch(session))

    def _touch(self, session: str) -> _Session:
        record = self._sessions.get(session)
        if record is None:
            record = self._sessions[session] = _Session(self._clock())
        record.last_seen = self._clock()
        return record

    def _mark_folder(self, session: str, record: _Session) -> None:
        """The session's folder under sessions_dirs, once the app has made it."""
        if record.folder is not None or not _plain_name(session):
            return
        for base in self.sessions_dirs:
            name = self._marks.take("dir", os.path.join(base, session))
            if name is not None:
                record.folder = name
                return

    # -- time ------------------------------------------------------------------------

    def sweep(self, still_queued: Callable[[object], bool] = lambda body: True) -> None:
        """Drop what is no longer live: events that left the queue unrun, and sessions
        idle `grace` seconds with no page connected and no event of theirs running;
        then try again to lock the folders whose marks are pending."""
        with self._lock:
            now = self._clock()
            for token, pin in list(self._pins.items()):
                if pin.running:
                    continue
                owner = self._sessions.get(pin.session or "")
                # Gradio 5.x never forgets a queued event, even one it dropped unrun.
                stale = now - pin.queued_at >= PAGE_IDLE and not (owner and owner.connected)
                if stale or not still_queued(pin.body):
                    self._give(self._pins.pop(token).marks)
            busy = {p.session for p in self._pins.values()}
            for session, record in list(self._sessions.items()):
                page = record.connected and now - record.last_seen < PAGE_IDLE + self.grace
                if page or session in busy:
                    self._mark_folder(session, record)
                    continue
                if now - record.last_seen >= self.grace:
                    del self._sessions[session]
                    for names in record.shown.values():
                        self._give(names)
                    if record.folder is not None:
                        self._give([record.folder])
            self._marks.retry()  # a folder a cleaner held at marking: lock it now

    def close(self) -> None:
        """Release every mark (the app is going away)."""
        with self._lock:
            for pin in self._pins.values():
                self._give(pin.marks)
            for record in self._sessions.values():
                for names in record.shown.values():
                    self._give(names)
                if record.folder is not None:
                    self._give([record.folder])
            self._pins.clear()
            self._sessions.clear()

    # -- for runs inside the app, and for counting -----------------------------------

    def why(self, dev: int, ino: int) -> str | None:
        with self._lock:
            return REASON if (dev, ino) in self._marks else None

    def pending_folders(self) -> frozenset[Key]:
        """The folders marked here whose flock is pending (Marks.pending_keys)."""
        with self._lock:
            return self._marks.pending_keys()

    def stats(self) -> LiveStats:
        with self._lock:
            return LiveStats(
                sessions=len(self._sessions),
                connected=sum(1 for s in self._sessions.values() if s.connected),
                events=len(self._pins),
                descriptors=len(self._marks),
                pending=self._marks.pending,
            )


@dataclass(frozen=True)
class LiveStats:
    sessions: int
    connected: int
    events: int  # queued or running
    descriptors: int  # marks held open, all sessions together
    pending: int = 0  # folders among them not locked yet: a cleaner held them (see Marks)


def _plain_name(session: str) -> bool:
    return (
        bool(session) and session not in (".", "..") and "/" not in session and "\0" not in session
    )
