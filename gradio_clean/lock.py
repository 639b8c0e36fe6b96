"""Runs on the same root exclude each other, through lock files of the runner's own.

A lock on the shared root folder itself could be taken by any user who can open it
(`flock -x /tmp/gradio sleep 1d`), and would block every run. So each root gets a
lock file, named after the root's device and inode, in a folder only we can enter:
`/run/gradio-clean` as root, else `$XDG_RUNTIME_DIR/gradio-clean`, else
`<tmp>/gradio-clean-<uid>`. That folder is made 0700 and checked through its own
descriptor: ours, a real folder, not a symlink; otherwise the run stops with an error
rather than trust it. Lock files are never removed (removing one while another run
waits on it would let two runs in); there is one per root ever pruned.

A run holds each of its roots exclusively and every folder above them shared, so
`prune TEMP` and `prune --sessions-dir TEMP/sessions` exclude each other, while runs
on sibling roots do not. Locks are taken in one global order, so two runs never wait
on each other in a circle. Runs by different users use different folders and do not
exclude each other; each entry is still re-checked just before it is deleted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator, Sequence

from gradio_clean.errors import ExitCode, GradioCleanError
from gradio_clean.roots import DIR_FLAGS, Root, describe_open_error, system_temp_dir
from gradio_clean.workers import check_stop

RUN_DIR = "/run/gradio-clean"
# Read-only is enough for flock, and opens an existing file on a read-only mount too.
FILE_FLAGS = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_SKIP = (errno.ENOENT, errno.EACCES, errno.EPERM, errno.EROFS)  # try the next candidate

Key = tuple[int, int]  # (st_dev, st_ino) of a folder


def lock_dir_candidates() -> list[str]:
    """Where the lock files may live, in order of preference."""
    uid = os.geteuid()
    out = [RUN_DIR] if uid == 0 else []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if uid != 0 and runtime and os.path.isabs(runtime):
        out.append(os.path.join(runtime, "gradio-clean"))
    out.append(os.path.join(system_temp_dir(), f"gradio-clean-{uid}"))
    return out


def open_lock_dir() -> tuple[int, str]:
    """A descriptor of the first usable candidate, and its path."""
    tried = []
    for path in lock_dir_candidates():
        try:
            return _private_dir(path), path
        except OSError as exc:
            if exc.errno not in _SKIP:
                raise GradioCleanError(f"{path}: cannot use it for locks: {exc.strerror}") from None
            tried.append(f"{path} ({exc.strerror})")
    raise GradioCleanError("no folder to keep the lock in; tried " + ", ".join(tried))


def _private_dir(path: str) -> int:
    """Create `path` 0700 if missing; open it without following links; refuse one not ours."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        fd = os.open(path, DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise GradioCleanError(
                f"{path}: the lock folder is a symlink or not a folder; refusing it"
            ) from None
        raise
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        os.close(fd)
        raise GradioCleanError(
            f"{path}: the lock folder belongs to uid {st.st_uid}, not to us; refusing it"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.fchmod(fd, 0o700)  # ours, but open to others: close it
    return fd


def lock_file(dir_fd: int, dir_path: str, key: Key) -> int:
    """Open (creating) the lock file for `key`; never through a link, never a non-file."""
    name = f"{key[0]:x}-{key[1]:x}.lock"
    shown = os.path.join(dir_path, name)
    try:
        fd = os.open(name, FILE_FLAGS, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        why = "is a symlink" if exc.errno == errno.ELOOP else exc.strerror
        raise GradioCleanError(f"{shown}: cannot use it as a lock: {why}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise GradioCleanError(f"{shown}: not a regular file of ours; refusing it as a lock")
    return fd


def folder_key(path: str) -> Key:
    """The root's identity, opened as the run will open it (no link at its end)."""
    try:
        fd = os.open(path, DIR_FLAGS)
    except OSError as exc:
        raise GradioCleanError(describe_open_error(path, exc)) from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return st.st_dev, st.st_ino


def _ancestors(path: str) -> Iterator[tuple[Key, str]]:
    """Every folder above `path`, by its real location, up to /."""
    here = os.path.realpath(path)
    while True:
        parent = os.path.dirname(here)
        if parent == here:
            return
        here = parent
        try:
            st = os.stat(here)
        except OSError:
            continue  # not reachable for us: no run of ours can hold it either
        yield (st.st_dev, st.st_ino), here


def _wanted(roots: Sequence[Root]) -> dict[Key, tuple[bool, str]]:
    """key -> (exclusive, who holds it in the message): roots exclusive, folders above shared."""
    busy = "another gradio-clean run is working on"
    wanted: dict[Key, tuple[bool, str]] = {}
    for root in roots:
        wanted[folder_key(root.path)] = (True, f"{root.path}: {busy} it")
    for root in roots:
        for key, above in _ancestors(root.path):
            wanted.setdefault(key, (False, f"{root.path}: {busy} {above}, which holds it"))
    return wanted


@contextlib.contextmanager
def lock_roots(roots: Sequence[Root], wait: float = 10.0) -> Iterator[None]:
    """Hold every root (and, shared, every folder above it) for the run; exit 4 after `wait`."""
    if not roots:
        yield
        return
    wanted = _wanted(roots)
    dir_fd, dir_path = open_lock_dir()
    fds: list[int] = []
    deadline = time.monotonic() + wait
    try:
        for key in sorted(wanted):  # one order for every run: no two wait on each other
            exclusive, busy = wanted[key]
            fd = lock_file(dir_fd, dir_path, key)
            fds.append(fd)
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise GradioCleanError(
                            f"{busy} (waited {wait:g}s); try again later", ExitCode.BUSY
                        ) from None
                    check_stop()
                    time.sleep(0.1)
        yield
    finally:
        for fd in fds:
            os.close(fd)
        os.close(dir_fd)
