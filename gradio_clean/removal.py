"""Removing one checked entry so that what was checked is exactly what goes.

Linux has no "unlink this inode": an unlink names an entry, and a live app can
rename a new upload over that name, or open the file, between a check and the
unlink. So an entry is first *claimed*: renamed, without replacing anything, to a
private name in the same folder. From then on the app can neither reach it by its
old name nor put anything in its place that we would remove. The claimed inode is
checked against what the folder survey saw, probed for other open descriptors
(a write lease is granted only when nobody else has the file open, read, written
or mapped, in any PID namespace), and only then unlinked; otherwise it is renamed
back. Where a filesystem cannot rename without replacing, the entry is re-stat'ed
and unlinked by name, and the window between the two stays open (microseconds).

A folder goes whole or not at all: `survey` checks all of it first (the caller
says what may not go; `removable` refuses what could not be removed), then
`remove_tree` removes exactly the names surveyed, each through `unlink_checked`,
and stops at a name that was not there. Every subfolder is opened, and its device
and mount id read from that descriptor (`enter`), never from a name checked before.
Each subfolder's flock is taken as it is entered, as systemd-tmpfiles does: one held
by another process (a live app's mark, or any program keeping cleaners out) refuses
the folder in the survey, and stops the removal where it is entered later.
A mount that appears on a folder being removed (EBUSY, or another device or mount
on the descriptor) stops the removal: left alone, on another filesystem.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import signal
import stat
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from gradio_clean.permissions import permitted
from gradio_clean.roots import DIR_FLAGS, open_at
from gradio_clean.statx import frozen, fstat_mount, lstat_frozen

Why = Callable[[int, int], "str | None"]


class Refused(Exception):
    """The entry is left alone; the message says why, with `{name}` for the entry."""

    def shown(self, name: str) -> str:
        return str(self).replace("{name}", name)


def holds_mount(name: str) -> str:
    """The one wording for a mount found inside a folder, shared with the dry run's forecast."""
    return f"holds a mount point ({name}): left alone, on another filesystem"


_RENAME_NOREPLACE = 1
_F_SETSIG = 10  # a lease break signals the holder; SIGURG's default is to ignore it
CLAIM_PREFIX = ".gradio-clean-"
CLAIM_SUFFIX = ".del"

_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)  # glibc 2.28+
if _renameat2 is not None:
    _renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]


def _rename_noreplace(dir_fd: int, src: str, dst: str) -> None:
    if _renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if _renameat2(dir_fd, os.fsencode(src), dir_fd, os.fsencode(dst), _RENAME_NOREPLACE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), src)


def open_elsewhere(dir_fd: int, name: str, ino: int) -> bool | None:
    """Whether another open file description holds this regular file; None if unknown.

    A write lease is granted only while nobody else has the file open (kernel 5.3+
    counts readers too, and a mapping keeps its file open). Held for no longer than
    the probe itself. None where leases are refused (not the owner without root,
    a filesystem without leases) or the file cannot be opened.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        return True if exc.errno == errno.EWOULDBLOCK else None  # someone's lease
    try:
        if os.fstat(fd).st_ino != ino:
            return True  # not the file we checked: treat it as taken
        try:
            fcntl.fcntl(fd, _F_SETSIG, signal.SIGURG)
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
        except OSError as exc:
            return True if exc.errno == errno.EAGAIN else None
        return False
    finally:
        os.close(fd)  # also drops the lease


_U64 = (1 << 64) - 1  # a time before 1970 is negative; stored unsigned like the rest
Seen = tuple[int, int, int, int, int, int]  # dev, ino, mode, size, mtime_ns, ctime_ns (& _U64)
_SEEN = 6  # ints per entry


def seen(st: os.stat_result) -> Seen:
    """What the survey keeps of an entry: six ints, not a stat_result (issue 13)."""
    return (
        st.st_dev,
        st.st_ino,
        st.st_mode,
        st.st_size,
        st.st_mtime_ns & _U64,
        st.st_ctime_ns & _U64,
    )


def _same(st: os.stat_result, want: Seen) -> bool:
    """The same entry, unchanged but for its ctime (dev, ino, type and mode, size, mtime)."""
    return seen(st)[:5] == want[:5]


# (dev, ino) -> the ctimes a file had from before this worker's first change of it to
# after its last, in turn (a dict as an ordered set). A change is noted only as a step
# from the last ctime noted: a change by anyone else in between starts the chain anew.
Ctimes = dict[tuple[int, int], dict[int, None]]


def note_ctime(ctimes: Ctimes, key: tuple[int, int], before: int, after: int) -> None:
    """This worker's own link, rename or unlink moved the file's ctime from `before` to
    `after` (each read through a descriptor on the inode, just before and after)."""
    chain = ctimes.get(key)
    if chain is None or next(reversed(chain)) != before & _U64:
        ctimes[key] = chain = {before & _U64: None}
    chain[after & _U64] = None


def ctime_ours(ctimes: Ctimes | None, key: tuple[int, int], want: int, now: int) -> bool:
    """Whether every move of the file's ctime from `want` (what a check saw) to `now` was
    this worker's own. Only `now` being the last ctime noted is not enough: a rewrite
    between the check and this worker's first change would be excused with it."""
    chain = ctimes.get(key) if ctimes else None
    return chain is not None and next(reversed(chain)) == now & _U64 and want & _U64 in chain


def _unchanged(now: Seen, want: Seen, ctimes: Ctimes | None) -> bool:
    """Still the entry surveyed. A ctime moved since the survey only by this run's own
    unlinks of other names of the file (noted in `ctimes`) is no change: a folder
    holding two names of one inode is removed whole. Any other moved ctime is someone
    else's change."""
    if now == want:
        return True
    if now[:5] != want[:5] or not ctimes:
        return False
    return ctime_ours(ctimes, (now[0], now[1]), want[5], now[5])


def unlink_checked(
    dir_fd: int, name: str, want: Seen, why: Why, ctimes: Ctimes | None = None
) -> os.stat_result | None:
    """Unlink `name` only if it is still the entry surveyed as `want` and nobody holds it.

    Returns the stat of what was removed; None if the name was already gone. Raises
    Refused when the entry changed, is in use or is a mount point; OSError otherwise.
    `ctimes`: where to note the ctime the unlink gave a file that keeps other names, so
    that a later check of one of them (a duplicate's kept copy) knows the change was ours.
    """
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not _unchanged(seen(st), want, ctimes):
        raise Refused("changed while being removed: {name} changed")
    if stat.S_ISREG(st.st_mode):
        busy = why(st.st_dev, st.st_ino)
        if busy:
            raise Refused("{name} is " + busy)
    tmp = f"{CLAIM_PREFIX}{os.urandom(6).hex()}{CLAIM_SUFFIX}"  # secrets.token_hex(6), inlined
    try:
        _rename_noreplace(dir_fd, name, tmp)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise Refused("{name} is a mount point: left alone, on another filesystem") from None
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
        return _unlink_by_name(dir_fd, name, st, ctimes)
    try:
        got = os.stat(tmp, dir_fd=dir_fd, follow_symlinks=False)
        if not _same(got, want):
            raise Refused("changed while being removed: {name} was replaced")
        if ctimes is not None and got.st_nlink > 1 and stat.S_ISREG(got.st_mode):
            note_ctime(ctimes, (got.st_dev, got.st_ino), st.st_ctime_ns, got.st_ctime_ns)
        if stat.S_ISREG(got.st_mode) and open_elsewhere(dir_fd, tmp, got.st_ino):
            raise Refused("{name} is open by another process")
        if not unlink_noting(dir_fd, tmp, got, ctimes):
            raise Refused("changed while being removed: {name} was replaced")
    except BaseException as exc:
        try:
            _rename_noreplace(dir_fd, tmp, name)
        except OSError:
            if isinstance(exc, Refused):
                raise Refused(f"{exc}; kept as {tmp}") from None
        raise
    return got


def _unlink_by_name(
    dir_fd: int, name: str, st: os.stat_result, ctimes: Ctimes | None
) -> os.stat_result:
    """Without RENAME_NOREPLACE: probe, then unlink by name right after a last stat."""
    if stat.S_ISREG(st.st_mode) and open_elsewhere(dir_fd, name, st.st_ino):
        raise Refused("{name} is open by another process")
    again = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not _same(again, seen(st)):
        raise Refused("changed while being removed: {name} was replaced")
    if not unlink_noting(dir_fd, name, st, ctimes):
        raise Refused("changed while being removed: {name} was replaced")
    return st


_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC  # the inode itself: nothing opened


def unlink_noting(
    dir_fd: int,
    name: str,
    st: os.stat_result,
    ctimes: Ctimes | None,
    remove: Callable[[], None] | None = None,
) -> bool:
    """Drop `name`'s link (unlink it, or run `remove`, a rename over it); if the file
    lives on under another name, note in `ctimes` the ctime that moved, so that name's
    own check knows the change was ours. The ctime is read through an O_PATH descriptor
    on the inode, since no name of ours is left to stat. Returns False, dropping
    nothing, when `name` is no longer the inode `st` (replaced in between)."""
    if ctimes is None or st.st_nlink < 2 or not stat.S_ISREG(st.st_mode):
        os.unlink(name, dir_fd=dir_fd) if remove is None else remove()
        return True
    fd = os.open(name, _PATH_FLAGS, dir_fd=dir_fd)
    try:
        before = os.fstat(fd)
        if (before.st_dev, before.st_ino) != (st.st_dev, st.st_ino):
            return False
        os.unlink(name, dir_fd=dir_fd) if remove is None else remove()
        after = os.fstat(fd)
        note_ctime(ctimes, (after.st_dev, after.st_ino), before.st_ctime_ns, after.st_ctime_ns)
    finally:
        os.close(fd)
    return True


@dataclass(frozen=True)
class Mount:
    """The root's device and mount id (None where the kernel does not tell it)."""

    dev: int
    mnt: int | None


@dataclass
class Folder:
    """A folder as the survey saw it: the names it held, and its subfolders.

    Each name's lstat is kept as the six ints `seen` takes, flat in one array: a folder
    of a million files costs ~130 MB, not ~900 with a stat_result each (issue 13)."""

    st: os.stat_result  # fstat of its own descriptor
    lstat: os.stat_result | None = None  # a subfolder: its lstat through its parent
    names: list[str] = field(default_factory=list)  # in survey order
    seen: array[int] = field(default_factory=lambda: array("Q"))  # _SEEN per name (Seen)
    folders: dict[str, Folder] = field(default_factory=dict)

    def add(self, name: str, st: os.stat_result) -> None:
        self.names.append(name)
        self.seen.extend(seen(st))

    def entry(self, i: int) -> Seen:
        s = self.seen
        j = _SEEN * i
        return (s[j], s[j + 1], s[j + 2], s[j + 3], s[j + 4], s[j + 5])


# (parent, its fd, shown name, st, whether it is immutable or append-only)
Check = Callable[[Folder, int, str, os.stat_result, bool], None]
LOCKED = "locked by another process (flock)"


def lock_free(fd: int, *, hold: bool) -> bool:
    """Take the folder's flock exclusively, without waiting, as systemd-tmpfiles does
    before it cleans a folder: False while another process holds it (a live app's mark,
    taken since the last /proc snapshot). `hold`: keep it until fd is closed (a folder
    being removed), else drop it at once. True where the filesystem has no flock."""
    return locks_free((fd,), hold=hold)


def locks_free(fds: Iterable[int], *, hold: bool) -> bool:
    """`lock_free` of each folder in turn, False at the first one another process holds.
    Within `probes_in_turn`, taken while no sibling worker probes: one worker's probe
    holds a folder's flock for two system calls, and a sibling probing the same folder
    meanwhile (a duplicate linked in a hash folder another worker deletes from) would
    take it for another process's and skip its entry."""
    gate = _GATE[0]
    if gate >= 0:
        fcntl.lockf(gate, fcntl.LOCK_EX)
    try:
        for fd in fds:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            except OSError:
                continue
            if not hold:
                fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        if gate >= 0:
            fcntl.lockf(gate, fcntl.LOCK_UN)


_GATE = [-1]  # within probes_in_turn: the file whose POSIX lock a probe holds


@contextlib.contextmanager
def probes_in_turn(workers: bool) -> Iterator[None]:
    """While `workers` (forked ones share out one apply), each worker's flock probes wait
    for a sibling's to end (`locks_free`): a POSIX lock on one memfd, which each process
    (the parent and each fork) holds on its own, and the kernel drops when one dies."""
    if not workers:
        yield
        return
    _GATE[0] = os.memfd_create("gradio-clean-probes", os.MFD_CLOEXEC)
    try:
        yield
    finally:
        os.close(_GATE[0])
        _GATE[0] = -1


def _enter_unlocked(
    parent: int, name: str, want: os.stat_result, mount: Mount, shown: str, *, hold: bool
) -> Entered:
    """`enter`, then the subfolder's flock (`lock_free`): Refused while another holds it."""
    entered = enter(parent, name, want, mount)
    if not lock_free(entered.fd, hold=hold):
        os.close(entered.fd)
        raise Refused(f"{shown} is {LOCKED}")
    return entered


_Frame = tuple[int, Folder, str, list[str]]  # descriptor, folder, shown prefix, names to do


def enter(parent: int, name: str, want: os.stat_result, mount: Mount) -> Entered:
    """Open a subfolder and decide from that descriptor, never from a name checked
    before it, that it is the folder surveyed and on the root's own mount."""
    try:
        fd = open_at(parent, name, DIR_FLAGS)  # O_NOATIME: a folder skipped stays old
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Refused(f"changed while being removed: {name} is no longer a folder") from None
        raise
    entered = on_mount(fd, name, mount, want.st_dev)
    if entered.st.st_ino != want.st_ino:
        os.close(fd)
        raise Refused(f"changed while being removed: {name} was replaced")
    return entered


@dataclass(frozen=True, slots=True)
class Entered:
    """A folder opened by `enter` or `on_mount`: its descriptor (the caller closes it), its
    fstat, and whether it is immutable or append-only, all read through that descriptor."""

    fd: int
    st: os.stat_result
    frozen: bool


def on_mount(
    fd: int,
    name: str,
    mount: Mount,
    dev: int | None = None,
    read: tuple[os.stat_result, int | None, bool] | None = None,
) -> Entered:
    """Refuse (closing fd) a folder opened on another device or mount; `dev`: the device
    its lstat showed, if one was taken; `read`: fd's `fstat_mount`, if read already. One
    statx of the descriptor, never a name."""
    st, mnt, is_frozen = fstat_mount(fd) if read is None else read
    if (
        st.st_dev != mount.dev
        or (dev is not None and dev != mount.dev)
        or (mount.mnt is not None and mnt != mount.mnt)
    ):
        os.close(fd)
        raise Refused(holds_mount(name))
    return Entered(fd, st, is_frozen)


def survey(top_fd: int, mount: Mount, check: Check, top: os.stat_result | None = None) -> Folder:
    """Every entry under top_fd, lstat'ed through its parent's descriptor and passed to
    `check` with its chattr flag, both from one statx (`lstat_frozen`); each subfolder
    entered through `enter`. Nothing is removed here.
    `top`: top_fd's fstat, where the caller has it already."""
    tree = Folder(top if top is not None else os.fstat(top_fd))
    frames: list[_Frame] = [(top_fd, tree, "", os.listdir(top_fd))]
    try:
        while frames:
            fd, node, prefix, pending = frames[-1]
            if not pending:
                frames.pop()
                if fd != top_fd:
                    os.close(fd)
                continue
            name = pending.pop()
            try:
                st, is_frozen = lstat_frozen(fd, name)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode) and st.st_dev != mount.dev:
                raise Refused(holds_mount(prefix + name))
            check(node, fd, prefix + name, st, is_frozen)
            if stat.S_ISDIR(st.st_mode):
                try:
                    entered = _enter_unlocked(fd, name, st, mount, prefix + name, hold=False)
                except FileNotFoundError:
                    continue
                child = entered.fd
                node.add(name, st)
                node.folders[name] = sub = Folder(entered.st, st)
                frames.append((child, sub, prefix + name + "/", []))
                frames[-1][3].extend(os.listdir(child))
                continue
            node.add(name, st)
    finally:
        for fd, *_ in frames:
            if fd != top_fd:
                os.close(fd)
    return tree


def remove_tree(
    top_fd: int,
    tree: Folder,
    mount: Mount,
    why: Why,
    removed: Callable[[os.stat_result], None],
    ctimes: Ctimes | None = None,
) -> None:
    """Remove what the survey saw, folder by folder, each entry re-checked right before
    its own unlink; stop at the first name that was not there (whole or not at all).
    `ctimes`: as unlink_checked's."""
    frames: list[_Frame] = []

    def empty(fd: int, node: Folder, prefix: str) -> None:
        new = _appeared(fd, node.names)
        if new:
            raise Refused(f"changed while being removed: {prefix}{new} appeared")
        for i, name in enumerate(node.names):
            if name in node.folders:
                continue
            try:
                gone = unlink_checked(fd, name, node.entry(i), why, ctimes)
            except Refused as exc:
                raise Refused(exc.shown(prefix + name)) from None
            if gone is not None:
                removed(gone)
        frames.append((fd, node, prefix, sorted(node.folders)))

    try:
        empty(top_fd, tree, "")
        while frames:
            fd, node, prefix, pending = frames[-1]
            if pending:
                name = pending.pop()
                sub = node.folders[name]
                assert sub.lstat is not None  # a subfolder: survey set it
                try:  # its flock held until it is gone: no mark can be taken meanwhile
                    child = _enter_unlocked(fd, name, sub.lstat, mount, prefix + name, hold=True).fd
                except FileNotFoundError:
                    continue
                try:
                    empty(child, sub, f"{prefix}{name}/")
                except BaseException:
                    os.close(child)
                    raise
                continue
            frames.pop()
            if fd != top_fd:
                os.close(fd)
                parent, _, parent_prefix, _ = frames[-1]
                rmdir_checked(parent, prefix[:-1].rpartition("/")[2], node.st, parent_prefix)
    finally:
        for fd, *_ in frames:
            if fd != top_fd:
                os.close(fd)


def _appeared(fd: int, names: list[str]) -> str | None:
    """The first (sorted) name in the folder now that the survey did not see; None if none.
    Read entry by entry against a sorted copy of the names, so no second set is built."""
    known = sorted(names)
    new: str | None = None
    os.lseek(fd, 0, os.SEEK_SET)  # scandir reads on from the descriptor's offset: the start
    with os.scandir(fd) as listing:
        for entry in listing:
            name = entry.name
            i = bisect_left(known, name)
            if (i == len(known) or known[i] != name) and (new is None or name < new):
                new = name
    return new


def rmdir_checked(parent: int, name: str, want: os.stat_result, prefix: str = "") -> None:
    """rmdir only the folder surveyed; a mount on it or a new entry in it stops the removal."""
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    if st.st_dev != want.st_dev:
        raise Refused(holds_mount(prefix + name))
    if st.st_ino != want.st_ino:
        raise Refused(f"changed while being removed: {prefix}{name} was replaced")
    try:
        os.rmdir(name, dir_fd=parent)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise Refused(holds_mount(prefix + name)) from None
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise Refused(
                f"changed while being removed: something appeared in {prefix}{name}"
            ) from None
        raise


def removable(
    folder: Folder,
    fd: int,
    shown: str,
    st: os.stat_result,
    euid: int | None = None,
    is_frozen: bool | None = None,
) -> None:
    """Refuse up front what could not be removed, so a folder is not left half-deleted:
    an immutable or append-only entry (chattr), and for a run without root, a folder
    it may not empty or a sticky folder's entry of another user (permissions.permitted).
    `is_frozen`: the chattr
    flag read with `st` (survey's `lstat_frozen`), else read here."""
    if not stat.S_ISLNK(st.st_mode):
        if is_frozen is None:
            is_frozen = frozen(fd, os.path.basename(shown))
        if is_frozen:
            raise Refused(immutable(shown))
    denied = permitted(folder.st, fd, shown, st, euid)
    if denied is not None:
        raise Refused(denied)


def immutable(shown: str) -> str:
    return f"cannot be removed whole: {shown} is immutable or append-only"
