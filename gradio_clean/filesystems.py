"""The filesystems the roots are on: their size, their free space, the roots' share.

Operators size `--max-size` and `--min-free` from this, so it counts as the budget
does: free is `f_bavail` (what unprivileged users may still write), usage is the
roots' `du -sxB1`, and roots on one filesystem (one `st_dev`) make one row. The
mount point comes from /proc/self/mountinfo, which also names a bind mount; where
no entry matches (no /proc, a btrfs subvolume's own device number) it is the
highest folder above the root on the same device.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from gradio_clean.scanned import RootScan

MOUNTINFO = "/proc/self/mountinfo"
_OCTAL = re.compile(rb"\\([0-7]{3})")  # mountinfo escapes space, tab, newline, backslash


@dataclass(frozen=True)
class Filesystem:
    """One filesystem under the roots, as statvfs saw it just after the scan."""

    dev: int
    mount: str
    size: int  # f_blocks * f_frsize
    free: int  # f_bavail * f_frsize: what an unprivileged user may still write
    used: int  # (f_blocks - f_bfree) * f_frsize, as df counts it
    roots: tuple[str, ...]
    roots_usage: int  # the roots' disk_bytes (du -sxB1), summed
    block: int = 4096  # f_frsize: what a file's size rounds up to (the budget's estimates)

    @property
    def share(self) -> float:
        """The roots' usage as a fraction of the filesystem's size."""
        return self.roots_usage / self.size if self.size > 0 else 0.0


def filesystems_of(roots: Iterable[RootScan]) -> tuple[Filesystem, ...]:
    """One row per filesystem, in the order of its first root. A root that cannot be
    stat'ed now (gone, or a folder above it unreadable) gives no row and no error:
    the scan has warned about it already."""
    rows: dict[int, tuple[str, os.statvfs_result, list[RootScan]]] = {}
    for root in roots:
        try:
            st = os.stat(root.path, follow_symlinks=False)
            vfs = os.statvfs(root.path)
        except (OSError, ValueError):  # ValueError: a NUL in a path, never a traceback
            continue
        if st.st_dev not in rows:
            rows[st.st_dev] = (mount_point(root.path, st.st_dev), vfs, [])
        rows[st.st_dev][2].append(root)
    return tuple(
        Filesystem(
            dev=dev,
            mount=mount,
            size=vfs.f_blocks * vfs.f_frsize,
            free=vfs.f_bavail * vfs.f_frsize,
            used=(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize,
            roots=tuple(r.path for r in on),
            roots_usage=sum(r.disk_bytes for r in on),
            block=vfs.f_frsize or 4096,
        )
        for dev, (mount, vfs, on) in rows.items()
    )


def mount_point(path: str, dev: int) -> str:
    """Where the filesystem holding `path` (on device `dev`) is mounted."""
    return _from_mountinfo(path, dev) or _walk_up(path, dev)


def _from_mountinfo(path: str, dev: int) -> str | None:
    """The deepest mount of `dev` at or above `path`, if /proc says so."""
    try:
        with open(MOUNTINFO, "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    want = f"{os.major(dev)}:{os.minor(dev)}".encode()
    target = os.fsencode(path)
    best: bytes | None = None
    for line in lines:
        fields = line.split(b" ")
        if len(fields) < 5 or fields[2] != want:
            continue
        mount = _OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), fields[4])
        inside = target == mount or target.startswith(mount.rstrip(b"/") + b"/")
        if inside and (best is None or len(mount) > len(best)):
            best = mount
    return None if best is None else os.fsdecode(best)


def bind_mounts() -> list[str]:
    """Where a folder or file is mounted again (a bind mount: its root in
    /proc/self/mountinfo is not "/"); what is reached through one is also wherever
    its source is. Of every filesystem: a btrfs subvolume's st_dev is not the device
    mountinfo names. Unsure without /proc: every path then."""
    try:
        with open(MOUNTINFO, "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return ["/"]
    found = []
    for line in lines:
        fields = line.split(b" ")
        if len(fields) >= 5 and fields[3] != b"/":
            found.append(os.fsdecode(_OCTAL.sub(lambda m: bytes([int(m.group(1), 8)]), fields[4])))
    return found


def _walk_up(path: str, dev: int) -> str:
    """The highest folder above `path` still on `dev`."""
    while path not in ("/", ""):
        parent = os.path.dirname(path)
        try:
            if os.stat(parent).st_dev != dev:
                return path
        except OSError:
            return path
        path = parent
    return "/"
