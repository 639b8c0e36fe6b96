"""Forecast which planned actions apply will skip, without deleting anything.

A dry run is read to decide whether to run --apply, so it must not promise what
apply will refuse. Apply re-checks every action anyway; this runs the checks a
dry run can run too, with the same wording: a file some process holds open,
maps or locks (one /proc snapshot for the whole plan), and for a folder, any
such file inside it or a mount point below it. What can only change later
(an entry modified after planning) is left to apply.

Cheap on large plans: a file action is a lookup in the snapshot; a folder is only
walked when the snapshot holds a file on the root's device or the plan walk saw a
mount point, and then by directory listings (inode numbers from getdents), with a
stat only for folders and for the files whose inode number is in use.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Sequence

from gradio_clean.inuse import InUse, snapshot
from gradio_clean.plan import Action, Plan
from gradio_clean.roots import DIR_FLAGS
from gradio_clean.scan import MOUNT_WARNING


def preflight(plan: Plan, in_use: InUse | None = None) -> Plan:
    """The same plan, carrying for each action apply is expected to skip the reason why."""
    snap = snapshot() if in_use is None else in_use
    mounts = [w.path for w in plan.warnings if w.message == MOUNT_WARNING]
    unsure = plan.scan.warnings_dropped > 0  # a mount point may be among the dropped
    skips: dict[int, str] = {}
    roots: dict[str, _Root | None] = {}
    try:
        for i, action in enumerate(plan.actions):
            if not action.is_dir:
                why = snap.why(action.identity.dev, action.identity.ino)
                if why is not None:
                    skips[i] = why
                continue
            if action.root not in roots:
                roots[action.root] = _Root.open(action.root, snap)
            root = roots[action.root]
            if root is None:
                continue  # apply will fail on it and say why; nothing to forecast
            if root.inos or unsure or _holds(action.path, mounts):
                why = root.folder(action, snap)
                if why is not None:
                    skips[i] = why
    finally:
        for root in roots.values():
            if root is not None:
                os.close(root.fd)
    return dataclasses.replace(plan, skips=skips)


def _holds(folder: str, mounts: Sequence[str]) -> bool:
    prefix = folder + "/"
    return any(m.startswith(prefix) for m in mounts)


@dataclasses.dataclass
class _Root:
    fd: int
    dev: int
    inos: frozenset[int]  # inode numbers in use on the root's device

    @classmethod
    def open(cls, path: str, snap: InUse) -> _Root | None:
        try:
            fd = os.open(path, DIR_FLAGS)
        except OSError:
            return None
        dev = os.fstat(fd).st_dev
        major, minor = os.major(dev), os.minor(dev)
        inos = {ino for (d, ino) in snap.open_by if d == dev}
        inos.update(ino for (ma, mi, ino) in snap.locked if (ma, mi) == (major, minor))
        return cls(fd, dev, frozenset(inos))

    def folder(self, action: Action, snap: InUse) -> str | None:
        """Why apply would skip this folder, as apply words it; None if nothing here says so."""
        try:
            fd = self._open(action.rel)
        except OSError:
            return None  # gone or unreachable: apply reports it
        try:
            return self._walk(fd, snap)
        finally:
            os.close(fd)

    def _open(self, rel: str) -> int:
        fd = self.fd
        for name in rel.split("/"):
            child = os.open(name, DIR_FLAGS, dir_fd=fd)
            if fd != self.fd:
                os.close(fd)
            fd = child
        return fd

    def _walk(self, top: int, snap: InUse) -> str | None:
        """Depth-first in apply's order (each listing from its end); the first finding wins."""
        stack: list[tuple[int, list[os.DirEntry[str]]]] = [(top, list(os.scandir(top)))]
        try:
            while stack:
                fd, pending = stack[-1]
                if not pending:
                    stack.pop()
                    if fd != top:
                        os.close(fd)
                    continue
                entry = pending.pop()
                try:
                    if entry.is_dir(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        if st.st_dev != self.dev:
                            return f"holds a mount point ({entry.name})"
                        child = os.open(entry.name, DIR_FLAGS, dir_fd=fd)
                        stack.append((child, list(os.scandir(child))))
                    elif entry.inode() in self.inos:
                        st = entry.stat(follow_symlinks=False)
                        busy = snap.why(st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None
                        if busy is not None:
                            return f"{entry.name} is {busy}"
                except OSError:
                    continue  # vanished or unreadable: apply decides
            return None
        finally:
            for fd, _ in stack:
                if fd != top:
                    os.close(fd)
