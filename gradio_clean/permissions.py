"""Whether the run may take an entry from its folder, and why not, worded once for apply
and the dry run's forecast (emptied.Parents asks these for preflight).

rmdir, unlink and rename each need the same of the folder that holds the entry: that it
is neither immutable nor append-only (chattr) and, for a run without root, that the run
may write and search it. A sticky folder adds a rule that depends on each entry: only
root, the entry's owner and the folder's owner may take it. A folder removed whole must
also be one the run may empty (`permitted`).
"""

from __future__ import annotations

import os
import stat

from gradio_clean.statx import frozen

STICKY = "it belongs to another user, in a sticky folder"


def rmdir_denied(
    dir_fd: int, euid: int, name: str = "", is_frozen: bool | None = None
) -> str | None:
    """Why rmdir, unlink or rename could take no entry from the folder `name` in `dir_fd`
    ("": `dir_fd` itself): it is immutable or append-only (`is_frozen`, where read with
    its stat), or, for a run without root, not writable and searchable for it. None where
    it could; a sticky folder's rule, which depends on each entry, is `sticky_denied`'s."""
    if frozen(dir_fd, name) if is_frozen is None else is_frozen:
        return "its parent folder is immutable or append-only"
    if euid != 0 and not may_write(dir_fd, name):
        return "no permission to remove it from its parent folder"
    return None


def may_write(dir_fd: int, name: str) -> bool:
    """Write and search permission on the folder, asked of the kernel through a
    descriptor on it ("." never a link, so no AT_SYMLINK_NOFOLLOW: without faccessat2,
    before Linux 5.8, glibc answers that flag from mode bits alone, blind to ACLs and
    read-only mounts). An O_PATH open of `name` needs no read permission on it."""
    fd = dir_fd
    if name:
        try:
            fd = os.open(name, _FOLDER_PATH_FLAGS, dir_fd=dir_fd)
        except OSError:
            return False
    try:
        return os.access(".", os.W_OK | os.X_OK, dir_fd=fd, effective_ids=True)
    finally:
        if fd != dir_fd:
            os.close(fd)


_FOLDER_PATH_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def unlink_denied(
    parent_why: str | None, parent: os.stat_result, uid: int, euid: int
) -> str | None:
    """Why apply may not unlink or rename an entry of `uid` (a file) from its folder, as
    apply and the dry run word it: the folder's own refusal (`parent_why`: rmdir_denied's),
    else a sticky folder's rule (`parent`: the folder's stat)."""
    if parent_why is None and sticky_denied(parent, uid, euid):
        parent_why = STICKY
    return None if parent_why is None else cannot_remove(parent_why)


def cannot_remove(parent_why: str) -> str:
    """An entry its folder refuses to give up, worded once for apply and the dry run."""
    return f"cannot be removed: {parent_why}"


def sticky_binds(parent: os.stat_result, euid: int) -> bool:
    """Whether a sticky folder's rule binds the run in the folder (`parent`: its stat):
    the folder is sticky and the run is neither root nor the folder's owner."""
    return bool(parent.st_mode & stat.S_ISVTX) and euid not in (0, parent.st_uid)


def sticky_denied(parent: os.stat_result, uid: int, euid: int) -> bool:
    """In a sticky folder (`parent`: its stat) only root, the entry's owner (`uid`) and
    the folder's own owner may remove an entry."""
    return sticky_binds(parent, euid) and euid != uid


def permitted(
    parent: os.stat_result | None,
    dir_fd: int,
    shown: str,
    st: os.stat_result,
    euid: int | None = None,
) -> str | None:
    """Why a run without root may not remove the entry `shown` (its lstat `st`) whole
    from the folder `dir_fd` (`parent`: that folder's stat, or None where no sticky
    rule binds the run in it): a folder it may not empty
    (write and search permission on it, asked by `may_write` through a descriptor on the
    folder: a link put in its place since its lstat is never followed), or a sticky
    folder's entry of another user; None where it may, and always for root.
    `euid`: os.geteuid(), where the caller read it once for a whole folder."""
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        return None
    if stat.S_ISDIR(st.st_mode) and not may_write(dir_fd, os.path.basename(shown)):
        return f"cannot be removed whole: no permission to empty {shown}"
    if parent is not None and sticky_denied(parent, st.st_uid, euid):
        return f"cannot be removed whole: {shown} belongs to another user"
    return None
