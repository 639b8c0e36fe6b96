"""What a plan frees of files with more than one name, counted as apply counts it.

Apply frees an inode's bytes when its last name goes (apply._count_linked). A plan's
entries each count the inodes they hold once: two entries holding names of one inode
would count its bytes twice, and an entry whose inode keeps a name no entry removes
would count bytes that stay. The walk notes every name of a file with more than one
link (rare in a cache, until --duplicates links copies), so that a dry run's totals
say what apply will free (issue: a dry run that tells the truth).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gradio_clean.actions import Actions
    from gradio_clean.order import SortKey

Name = tuple[str, bytes]  # root, then the rel as os.fsencode gives it (its sort key)


class LinkedNames:
    """Every name the walk saw of each file with more than one link, by inode, and when
    that walk began: a file whose ctime is older had those links all through it (the
    dry run's forecast places a held file with several names so: see
    placing.ForecastRoot._unseen)."""

    __slots__ = ("began_ns", "inodes")

    def __init__(self) -> None:
        # (dev, ino) -> (size, link count when first seen, its names seen)
        self.inodes: dict[tuple[int, int], tuple[int, int, list[Name]]] = {}
        self.began_ns = time.time_ns()  # made as a root's walk begins (rules.on_root)

    def __len__(self) -> int:
        return len(self.inodes)

    def add(self, root: str, rel: str, st: os.stat_result) -> None:
        seen = self.inodes.get((st.st_dev, st.st_ino))
        name = (root, os.fsencode(rel))
        if seen is None:
            self.inodes[(st.st_dev, st.st_ino)] = (st.st_size, st.st_nlink, [name])
        else:
            seen[2].append(name)

    def absorb(self, other: LinkedNames) -> None:
        """Add another walk's names (a forked worker's share, or another root's)."""
        self.began_ns = min(self.began_ns, other.began_ns)
        for key, (size, nlink, names) in other.inodes.items():
            seen = self.inodes.get(key)
            if seen is None:
                self.inodes[key] = (size, nlink, names)
            else:
                seen[2].extend(names)


def taken_back(actions: Actions, skips: Mapping[int, str], linked: LinkedNames) -> tuple[int, int]:
    """Bytes the going entries count of linked inodes but apply will not free: from the
    deletions, and from the copies replaced by a link.

    Each entry counted an inode it holds once. Apply frees it once, and only if every
    name goes; its blocks are counted with the name that goes last, in plan order. An
    interrupted run's temporary link counted nothing and frees nothing (its inode keeps
    the name it was linked to).
    """
    wanted: set[SortKey] = set()
    for _, _, names in linked.inodes.values():
        for root, rel in names:
            head = rel
            while head:  # the name, and every folder above it that might go whole
                wanted.add((root, head))
                head = head.rpartition(b"/")[0]
    at = actions.positions(wanted)
    del wanted
    deleted = linked_back = 0
    for size, nlink, names in linked.inodes.values():
        going = [i for i in (_holder(actions, at, name) for name in names) if i is not None]
        holders = {i for i in going if i not in skips and not actions.stray(i)}
        if not holders:
            continue
        for i in holders:
            if actions.hardlink(i):
                linked_back += size
            else:
                deleted += size
        if sum(1 for i in going if i in holders) >= nlink:
            if actions.hardlink(max(holders)):
                linked_back -= size
            else:
                deleted -= size
    return deleted, linked_back


def _holder(actions: Actions, at: Mapping[SortKey, int], name: Name) -> int | None:
    """The position of the entry that removes the name: its own, or a folder's above it
    that goes whole (a top-level item, or one inside a nested .gradio: .gradio/flagged)."""
    own = at.get(name)
    if own is not None and not actions.is_dir(own):
        return own
    root, rel = name
    head = rel.rpartition(b"/")[0]
    while head:
        whole = at.get((root, head))
        if whole is not None and actions.is_dir(whole):
            return whole
        head = head.rpartition(b"/")[0]
    return None
