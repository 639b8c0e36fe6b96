"""What a path holds on disk, as `du -sxB1` counts it: what a budget's usage is after
a run that left some of its entries (skipped, failed, or a folder found not empty)."""

from __future__ import annotations

import contextlib
import os
import stat

from gradio_clean.plan import DONE, ApplyResult, Plan
from gradio_clean.roots import DIR_FLAGS, open_at


def unfreed_disk(plan: Plan, result: ApplyResult) -> int:
    """What the planned entries apply left (skipped or failed, or a folder it was to
    empty and found not empty) still hold on disk, as du counts it: allocated blocks,
    each inode once, no link followed, nothing on another device. Added back to what
    the plan said a budget target's usage is after, it is what du says after."""
    left = [o.action.path for o in result.outcomes if o.status not in DONE]
    left += sorted(set(plan.emptying) - set(result.folders_removed))
    seen: set[tuple[int, int]] = set()
    return sum(_du(path, seen) for path in left)


_CWD = -100  # AT_FDCWD: an absolute path opened as open_at opens a name


def _du(path: str, seen: set[tuple[int, int]]) -> int:
    """du -sxB1 of one path (0 if gone), the inodes in `seen` left out and added to it.
    Folders are listed through O_NOATIME descriptors: measuring moves no atime."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    total, dev = 0, st.st_dev
    # Entries still to count, by their folder's descriptor; a "" entry closes it.
    stack: list[tuple[int, str, os.stat_result]] = [(_CWD, path, st)]
    try:
        while stack:
            parent, name, st = stack.pop()
            if not name:  # the end of a folder's entries
                os.close(parent)
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
            if not stat.S_ISDIR(st.st_mode) or st.st_dev != dev:
                continue
            try:
                fd = open_at(parent, name, DIR_FLAGS)
            except OSError:
                continue
            stack.append((fd, "", st))
            with contextlib.suppress(OSError), os.scandir(fd) as listing:
                for entry in listing:
                    with contextlib.suppress(OSError):
                        stack.append((fd, entry.name, entry.stat(follow_symlinks=False)))
    finally:
        for parent, name, _ in stack:
            if not name:
                os.close(parent)
    return total
