"""Apply a plan so that it cannot hurt what it did not plan.

- Every folder is opened with O_NOFOLLOW | O_DIRECTORY relative to its parent's
  descriptor, and entries are removed with unlinkat/rmdir through dir_fd: a
  symlink is removed as a link, never followed, and a folder swapped for a link
  mid-run fails to open instead of leading outside the root (like systemd-tmpfiles
  and Python's fd-based shutil.rmtree).
- Nothing on another device or mount is entered: decided from the descriptor
  opened (fstat, statx's mount id), never from a name checked before the open.
- A folder goes whole or not at all: all of it is checked first, then each entry
  is removed on its own, right after a last check (see removal.py); a name that
  was not there at the check stops the removal.
- Each entry is re-stat'ed just before removal; if its inode, size or mtime moved
  since planning it is skipped. One already gone counts as done.
- Files some process holds open, maps or locks are skipped, and so is everything in a
  folder below the root that some process locks (a live app's mark: see live.py).
- A duplicate is replaced by a hard link made from a descriptor on the kept copy,
  checked (inode, size, mtime, ctime) through that descriptor, never by name; the
  ctimes this run's own links move are remembered, so later checks know them.
- FIFOs, sockets and devices are never opened; they are unlinked like any name.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Sequence

from gradio_clean.actions import Step
from gradio_clean.emptied import tidied_parents
from gradio_clean.permissions import cannot_remove, permitted, rmdir_denied, unlink_denied
from gradio_clean.plan import APPEARED, Identity, Status
from gradio_clean.removal import (
    LOCKED,
    Ctimes,
    Entered,
    Folder,
    Mount,
    Refused,
    ctime_ours,
    immutable,
    lock_free,
    locks_free,
    note_ctime,
    on_mount,
    removable,
    remove_tree,
    rmdir_checked,
    seen,
    survey,
    unlink_checked,
    unlink_noting,
)
from gradio_clean.roots import DIR_FLAGS, describe_open_error, open_at
from gradio_clean.statx import fstat_mount, mount_id
from gradio_clean.workers import stop_signal

Why = Callable[[int, int], "str | None"]
Link = tuple[int, int, int, int]  # a removed name of a linked inode: dev, ino, size, nlink
# An action's outcome, told as it is known: its index, status, detail, the bytes and files
# it freed, and its removed names of inodes with other names (their blocks counted later).
Done = Callable[[int, Status, "str | None", int, int, list[Link]], None]


class Skip(Exception):
    """An entry that is left alone, with the reason the user is shown."""


class _DirChain:
    """Open descriptors for the folders leading to the current one, reused across actions.

    Actions are sorted by path, so consecutive ones share most of their parents.
    """

    def __init__(self, root_fd: int, dev: int, ctimes: Ctimes | None = None) -> None:
        self.root_fd = root_fd
        self.dev = dev
        self.mnt = mount_id(root_fd)  # a mount id, where the kernel tells it
        self.mount = Mount(dev, self.mnt)
        # (dev, ino) -> the ctime this worker's own links and unlinks moved, in any root
        self.ctimes: Ctimes = {} if ctimes is None else ctimes
        self.names: list[str] = []
        self.fds: list[int] = []
        self.keys: list[tuple[int, int]] = []  # each fd's (dev, ino), read once at its open

    def open(self, rel_dir: str) -> int:
        """The descriptor of `rel_dir` (relative to the root); raises Skip or OSError."""
        parts = rel_dir.split("/") if rel_dir else []
        common = 0
        while common < min(len(parts), len(self.names)) and parts[common] == self.names[common]:
            common += 1
        self._truncate(common)
        for name in parts[common:]:
            parent = self.fds[-1] if self.fds else self.root_fd
            try:
                fd = os.open(name, DIR_FLAGS, dir_fd=parent)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise Skip(f"{name} on the way is no longer a folder (a symlink?)") from None
                raise
            st, mnt, _ = fstat_mount(fd)  # one statx: the fstat and the mount id
            if st.st_dev != self.dev or (self.mnt is not None and mnt != self.mnt):
                os.close(fd)
                raise Skip(f"{name} on the way is on another filesystem")
            self.names.append(name)
            self.fds.append(fd)
            self.keys.append((st.st_dev, st.st_ino))
        return self.fds[-1] if self.fds else self.root_fd

    def _truncate(self, keep: int) -> None:
        while len(self.fds) > keep:
            os.close(self.fds.pop())
            self.names.pop()
            self.keys.pop()

    def close(self) -> None:
        self._truncate(0)


def _check(
    st: os.stat_result,
    want: Identity,
    *,
    is_dir: bool,
    ours: Ctimes | None = None,
) -> None:
    """Skip unless `st` is still the planned entry. For a file planned with a ctime (the
    duplicates rule) that includes ctime, which a rewrite that restored size and mtime
    still moves; `ours` holds the ctimes this run's own links and unlinks gave an inode,
    which are no change by anyone else (removal.ctime_ours)."""
    if stat.S_ISDIR(st.st_mode) != is_dir or (st.st_dev, st.st_ino) != (want.dev, want.ino):
        raise Skip("replaced since planning (another inode)")
    if is_dir:
        return
    if not stat.S_ISREG(st.st_mode):
        raise Skip("no longer a regular file")
    if st.st_size != want.size:
        raise Skip("changed since planning (size)")
    if st.st_mtime_ns != want.mtime_ns:
        raise Skip("changed since planning (mtime)")
    if (
        want.ctime_ns
        and st.st_ctime_ns != want.ctime_ns
        and not ctime_ours(ours, (st.st_dev, st.st_ino), want.ctime_ns, st.st_ctime_ns)
    ):
        raise Skip("changed since planning (ctime: rewritten, chmod, chown or linked)")


def _parent_and_name(rel: str) -> tuple[str, str]:
    head, _, name = rel.rpartition("/")
    return head, name


class _Freed:
    """What one action freed. The blocks of an inode with other names count only when
    the last name goes: known here when the count was 1 before this unlink, and for
    the names in `linked` only once every worker's are in (_count_linked)."""

    __slots__ = ("bytes", "files", "linked")

    def __init__(self) -> None:
        self.bytes = 0
        self.files = 0
        self.linked: list[Link] = []

    def unlinked(self, st: os.stat_result) -> None:
        """A name of this regular file is gone (`st`: its stat before the unlink)."""
        self.files += 1
        self.name_gone(st)

    def name_gone(self, st: os.stat_result) -> None:
        if st.st_nlink == 1:
            self.bytes += st.st_size
        else:
            self.linked.append((st.st_dev, st.st_ino, st.st_size, st.st_nlink))


def _planned_entry(chain: _DirChain, action: Step) -> tuple[int, str, os.stat_result] | None:
    """The action's parent descriptor, name and fresh lstat, re-checked; None if gone."""
    head, name = _parent_and_name(action.rel)
    try:
        parent = chain.open(head)
    except FileNotFoundError:  # a folder on the way is gone, and the entry with it
        return None
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None
    _check(st, action.identity, is_dir=action.is_dir, ours=chain.ctimes)
    return parent, name, st


def _delete_file(chain: _DirChain, action: Step, why: Why, freed: _Freed) -> str | None:
    entry = _planned_entry(chain, action)
    if entry is None:
        return "already gone"
    parent, _, st = entry
    try:
        return _remove_file(chain, action, why, freed, entry)
    except PermissionError as exc:  # the folder refused: say why, as the dry run forecast it
        euid = os.geteuid()
        denied = unlink_denied(rmdir_denied(parent, euid), os.fstat(parent), st.st_uid, euid)
        if denied is None:
            raise
        raise OSError(exc.errno, denied) from None


def _remove_file(
    chain: _DirChain, action: Step, why: Why, freed: _Freed, entry: tuple[int, str, os.stat_result]
) -> str | None:
    """_delete_file's removal of the checked entry (`entry`: its parent, name and stat)."""
    parent, name, st = entry
    if action.stray_link:  # one name less for an inode that keeps another: none in use
        if st.st_nlink < 2:
            raise Skip("no longer a hard link: it may hold the only copy")
        _unlink_noting(chain, parent, name, st)
        freed.files += 1
        return None
    busy = why(st.st_dev, st.st_ino) or _folder_busy(chain.keys, why)
    if busy:
        raise Skip(busy)
    if not locks_free(chain.fds, hold=False):
        raise Skip(f"its folder is {LOCKED}")
    if action.keep is not None:
        keep_parent, keep_fd = _check_keep(chain, action)
        try:
            if action.hardlink:
                _replace_with_link(chain, action, parent, name, keep_parent, keep_fd)
                freed.name_gone(st)
                return None
        finally:
            os.close(keep_fd)
            if keep_parent != chain.root_fd:
                os.close(keep_parent)
    try:  # claimed, re-checked and lease-probed, as each entry of a folder is
        gone = unlink_checked(parent, name, seen(st), why, chain.ctimes)
    except Refused as exc:
        raise Skip(exc.shown(name)) from None
    if gone is None:
        return "already gone"
    freed.unlinked(gone)
    return None


def _folder_busy(keys: Sequence[tuple[int, int]], why: Why) -> str | None:
    """A folder below the root that is locked or held (a live app's mark) spares its files.
    `keys`: the open folders' (dev, ino), which a descriptor keeps for as long as it is open."""
    for dev, ino in keys:
        busy = why(dev, ino)
        if busy:
            return f"its folder is {busy}"
    return None


# O_PATH: an fd on the inode itself, so that a FIFO is never opened (that would release
# a blocked writer) and read permission is not needed; fstat and linkat work through it.
_KEEP_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def _check_keep(chain: _DirChain, action: Step) -> tuple[int, int]:
    """Never drop a copy unless the one that stays is still there, unchanged.

    Returns its parent's descriptor and a descriptor on the kept file itself, checked
    (inode, size, mtime, ctime) through that descriptor: a link made from it can only
    ever be to the verified inode, whatever is renamed over the kept name afterwards.
    """
    assert action.keep is not None and action.keep_identity is not None
    keep_rel = os.path.relpath(action.keep, action.root)
    head, name = _parent_and_name(keep_rel)
    parent = _open_path(chain.root_fd, head, chain.dev)
    try:
        try:
            fd = os.open(name, _KEEP_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            raise Skip("the copy to keep is gone") from None
        try:
            _check(os.fstat(fd), action.keep_identity, is_dir=False, ours=chain.ctimes)
        except Skip as exc:
            os.close(fd)
            raise Skip(f"the copy to keep {exc}") from None
        except BaseException:
            os.close(fd)
            raise
    except BaseException:
        if parent != chain.root_fd:
            os.close(parent)
        raise
    return parent, fd


def _open_path(root_fd: int, rel_dir: str, dev: int) -> int:
    """A one-off descriptor for rel_dir, opened component by component without links."""
    chain = _DirChain(root_fd, dev)
    fd = chain.open(rel_dir)
    if fd == root_fd:
        return fd
    # Hand over the last descriptor; close the rest.
    chain.fds.pop()
    chain.names.pop()
    chain.keys.pop()
    chain.close()
    return fd


def _unlink_noting(
    chain: _DirChain,
    parent: int,
    name: str,
    st: os.stat_result,
    remove: Callable[[], None] | None = None,
) -> None:
    """removal.unlink_noting, with this worker's ctimes; Skip if `name` was replaced."""
    if not unlink_noting(parent, name, st, chain.ctimes, remove):
        raise Skip("replaced since planning (another inode)")


def temp_link_name() -> str:
    """`.gradio-clean-<12 hex>.tmp`: a later run knows it (classify.is_our_temp_name)."""
    return f".gradio-clean-{secrets.token_hex(6)}.tmp"


def _replace_with_link(
    chain: _DirChain, action: Step, parent: int, name: str, keep_parent: int, keep_fd: int
) -> None:
    """Link the verified kept inode to a temporary name, then rename it over the copy.

    The link is made from the descriptor _check_keep verified (linkat of
    /proc/self/fd/N with AT_SYMLINK_FOLLOW), never by name: a symlink or another
    file renamed over the kept name in between cannot end up at the copy's path.
    The new name is checked to be that inode, and the copy re-checked, before the
    rename; the path never stops answering. A kill between link and rename leaves
    the temporary, which a later run removes (rules.stray_actions).
    """
    keep = os.fstat(keep_fd)
    tmp = temp_link_name()
    os.link(f"/proc/self/fd/{keep_fd}", tmp, dst_dir_fd=parent, follow_symlinks=True)
    try:
        linked = os.fstat(keep_fd)
        note_ctime(
            chain.ctimes, (linked.st_dev, linked.st_ino), keep.st_ctime_ns, linked.st_ctime_ns
        )
        if (linked.st_size, linked.st_mtime_ns) != (keep.st_size, keep.st_mtime_ns):
            raise Skip("the copy to keep changed while it was linked")
        new = os.stat(tmp, dir_fd=parent, follow_symlinks=False)
        if (new.st_dev, new.st_ino) != (keep.st_dev, keep.st_ino) or not stat.S_ISREG(new.st_mode):
            raise Skip("the new link was replaced before it could be renamed")
        now = os.stat(name, dir_fd=parent, follow_symlinks=False)
        _check(now, action.identity, is_dir=False, ours=chain.ctimes)
        _unlink_noting(
            chain,
            parent,
            name,
            now,
            lambda: os.rename(tmp, name, src_dir_fd=parent, dst_dir_fd=parent),
        )
        done = os.fstat(keep_fd)  # a rename moves the renamed inode's ctime too
        note_ctime(chain.ctimes, (done.st_dev, done.st_ino), linked.st_ctime_ns, done.st_ctime_ns)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=parent)
        raise


def _delete_folder(chain: _DirChain, action: Step, why: Why, freed: _Freed) -> str | None:
    head, name = _parent_and_name(action.rel)
    try:
        parent = chain.open(head)
    except FileNotFoundError:  # a folder on the way is gone, and the folder with it
        return "already gone"
    mount = chain.mount
    euid = os.geteuid()  # once per folder, not once per entry: apply never changes it

    def verify(folder: Folder, dfd: int, shown: str, st: os.stat_result, flag: bool) -> None:
        if st.st_mtime_ns > action.newest_ns:
            raise Skip(f"changed since planning ({shown} is newer)")
        if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):  # a folder: locked
            busy = why(st.st_dev, st.st_ino)
            if busy:
                raise Skip(f"{shown} is {busy}")
        removable(folder, dfd, shown, st, euid, flag)

    def removed(st: os.stat_result) -> None:
        if stat.S_ISREG(st.st_mode):
            freed.unlinked(st)

    entered = _enter_planned(parent, name, mount, action.identity)
    if entered is None:
        return "already gone"
    fd, top = entered.fd, entered.st
    try:
        if top.st_mtime_ns > action.newest_ns:
            raise Skip("changed since planning (the folder itself is newer)")
        busy = why(top.st_dev, top.st_ino)
        if busy:
            raise Skip(f"it is {busy}")
        busy = _folder_busy(chain.keys, why)  # "its folder is ...", as for a file
        if busy:
            raise Skip(busy)
        if not lock_free(fd, hold=True):  # held until fd is closed: removed or skipped
            raise Skip(f"it is {LOCKED}")
        if not locks_free(chain.fds, hold=False):
            raise Skip(f"its folder is {LOCKED}")
        denied = rmdir_denied(parent, euid)  # as the dry run's forecast asks (emptied.Parents)
        if denied is not None:
            raise Skip(cannot_remove(denied))
        if euid != 0:  # `permitted` checks nothing for root: no fstat of the parent
            denied = permitted(os.fstat(parent), parent, name, top, euid)
            if denied is not None:
                raise Skip(denied)
        if entered.frozen:  # read through fd: the very folder checked, not a name
            raise Skip(immutable(name))
        tree = survey(fd, mount, verify, top)  # everything checked before anything goes
        remove_tree(fd, tree, mount, why, removed, chain.ctimes)
        rmdir_checked(parent, name, top)
    except Refused as exc:
        raise Skip(str(exc)) from None
    finally:
        os.close(fd)
    return None


def _enter_planned(parent: int, name: str, mount: Mount, want: Identity) -> Entered | None:
    """Open the planned folder (None if gone), then check through that descriptor alone
    that it is the planned folder (_check) and on the root's mount, in that order: the
    skips read as they did when the name's lstat was checked before the open."""
    try:
        fd = open_at(parent, name, DIR_FLAGS)  # O_NOATIME: survey() lists it
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a link or a file now: _check's words
            raise Skip("replaced since planning (another inode)") from None
        raise
    try:
        read = fstat_mount(fd)  # the fstat, mount id and chattr flag, from one statx
        _check(read[0], want, is_dir=True)
    except BaseException:
        os.close(fd)
        raise
    try:
        return on_mount(fd, name, mount, read=read)  # closes fd if it refuses
    except Refused as exc:
        raise Skip(str(exc)) from None


def _parents_to_tidy(action: Step) -> list[str]:
    """Folders between a deleted file and its item folder: removed if the run empties them
    (a dry run counts them as emptied.find_emptied finds them)."""
    if action.is_dir or action.hardlink:
        return []
    return tidied_parents(action.rel, action.item_rel)


def apply_root(
    root_path: str,
    actions: Iterable[tuple[int, Step]],
    why: Why,
    done: Done,
    ctimes: Ctimes | None = None,
) -> Tidied:
    """Apply one root's actions (each with its plan index), read one at a time; then
    remove the folders they emptied (`_tidy`). `ctimes`: the worker's, shared by its
    roots (a file may have names in two)."""
    try:
        root_fd = os.open(root_path, DIR_FLAGS)
    except OSError as exc:
        msg = describe_open_error(root_path, exc)
        for i, _ in actions:
            done(i, Status.FAILED, msg, 0, 0, [])
        return [], []
    chain = _DirChain(root_fd, os.fstat(root_fd).st_dev, ctimes)
    tidy: set[str] = set()
    try:
        for i, action in actions:
            if stop_signal():  # SIGINT or SIGTERM: the entry before this one was the last
                return [], []
            freed = _Freed()
            try:
                if action.is_dir:
                    note = _delete_folder(chain, action, why, freed)
                else:
                    note = _delete_file(chain, action, why, freed)
                status = Status.LINKED if action.hardlink and note is None else Status.DELETED
                done(i, status, note, freed.bytes, freed.files, freed.linked)
                tidy.update(_parents_to_tidy(action))
            except Skip as exc:
                done(i, Status.SKIPPED, str(exc), freed.bytes, freed.files, freed.linked)
            except OSError as exc:
                detail = f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
                done(i, Status.FAILED, detail, freed.bytes, freed.files, freed.linked)
        return _tidy(chain, tidy, root_path)
    finally:
        chain.close()
        os.close(root_fd)


# The folders a root's run emptied and removed, and those it tried to and kept, each
# with why (None: gone already, not by this run).
Tidied = tuple[list[str], list[tuple[str, "str | None"]]]


def _tidy(chain: _DirChain, folders: set[str], root_path: str) -> Tidied:
    """rmdir each folder between a deleted file and its item, deepest first: one the run
    left empty goes; one not empty, gone, or no longer reachable safely is left, and
    said why (apply names a kept folder the dry run counted as emptied)."""
    removed: list[str] = []
    kept: list[tuple[str, str | None]] = []
    for rel in sorted(folders, key=lambda r: (-r.count("/"), r)):
        head, name = _parent_and_name(rel)
        path = os.path.join(root_path, rel)
        try:
            os.rmdir(name, dir_fd=chain.open(head))
            removed.append(path)
        except FileNotFoundError:
            kept.append((path, None))
        except Skip as exc:
            kept.append((path, str(exc)))
        except OSError as exc:
            kept.append((path, _RMDIR_FAILED.get(exc.errno or 0, exc.strerror or str(exc))))
    return removed, kept


_RMDIR_FAILED = {
    # said only of a folder whose every planned entry went (apply._kept): a new name
    errno.ENOTEMPTY: APPEARED,
    errno.EEXIST: APPEARED,
    errno.EACCES: "no permission to remove it from its parent folder",
    errno.EPERM: "not permitted: its parent folder is sticky, immutable or append-only",
    errno.EBUSY: "a mount point: left alone, on another filesystem",
}
