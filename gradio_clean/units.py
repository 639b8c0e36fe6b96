"""The eviction units of a walk, kept in flat columns for the budget (budget.py).

A unit is what Gradio writes as one: a top-level item of a root (a hash folder, a
session folder, a leftover, a loose file). At 2M files a budget run holds ~1.5M units
(one per hash folder): one row of arrays each, no object per unit and nothing per
file, so the walk's workers hand theirs over (absorb) and the cut sorts an index of them.
"""

from __future__ import annotations

import os
import sys
from array import array
from collections.abc import Callable, Sequence
from operator import itemgetter

from gradio_clean.classify import Category
from gradio_clean.columns import Wholes
from gradio_clean.scan import Held

_Link = tuple[int, int, int, int]  # dev, ino, allocated bytes, st_nlink: one link occurrence
ELIGIBLE, PROTECTED, PLANNED = 0, 1, 2  # a unit's state: flags & STATE
STATE, DIR, _CATEGORY_SHIFT = 3, 4, 3  # flags: category << 3 | is_dir << 2 | state
_CATEGORIES = tuple(Category)
_CATEGORY_INDEX = {c: i for i, c in enumerate(_CATEGORIES)}  # str hashes: no tuple.index
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


class UnitCollector:
    """The eviction units of a walk in flat columns, ~110 bytes a unit and no object each
    (issue 9: sort the units, not the files). The planner puts each multiply-linked file
    of the current item in `pending`, then hands over the item."""

    def __init__(self, root: str | None = None) -> None:
        self.roots: list[str] = [] if root is None else [root]
        self.root = array("H")  # index into roots
        self.rels = bytearray()  # each unit's rel, encoded as os.fsencode does, back to back
        self.rel_end = array("Q")  # where each unit's rel ends in `rels`
        self.flags = bytearray()  # category, is_dir and state (ELIGIBLE, PROTECTED, PLANNED)
        self.dev, self.ino = array("Q"), array("Q")
        self.size, self.files = array("Q"), array("Q")  # apparent bytes (Item.bytes), files
        self.mtime, self.newest = array("q"), array("q")
        self.age = array("q")  # last use: the newest --age-by timestamp inside
        self.disk = array("Q")  # allocated bytes of entries with one link (less the links)
        # Multiply-linked inodes inside units: one row per link, a unit's rows together.
        self.link_unit = array("I")
        self.link_dev, self.link_ino = array("Q"), array("Q")
        self.link_disk, self.link_nlink = array("Q"), array("Q")
        self.pending: list[_Link] = []  # the current item's, until on_item takes them
        self.selected_disk: dict[tuple[int, int], int] = {}  # files other rules picked

    def __len__(self) -> int:
        return len(self.flags)

    def on_selected(self, st: os.stat_result) -> None:
        """A file another rule planned on its own: what deleting it frees."""
        if st.st_nlink == 1:
            self.selected_disk[(st.st_dev, st.st_ino)] = st.st_blocks * 512

    def on_item(
        self,
        rel: str,
        st: os.stat_result,
        category: Category,
        is_dir: bool,
        held: Held,
        in_scope: bool,
        planned: bool,
    ) -> None:
        """One unit, as the walk's item hook has it (ItemHook); `in_scope`: the item and
        every file in it are in the rules' scope; `planned`: another rule takes it whole."""
        files, other, size, newest, age, disk = held
        if self.pending:
            i = len(self.flags)
            links, self.pending = self.pending, []
            shared = {}
            for dev, ino, blocks, nlink in links:
                shared[dev, ino] = blocks
                self.link_unit.append(i)
                self.link_dev.append(dev)
                self.link_ino.append(ino)
                self.link_disk.append(blocks)
                self.link_nlink.append(nlink)
            disk = max(0, disk - sum(shared.values()))
        if planned:
            state = PLANNED
        elif in_scope and other == 0:
            state = ELIGIBLE
        else:
            state = PROTECTED
        self.root.append(0)
        self.rels += rel.encode(_FS_ENCODING, _FS_ERRORS)
        self.rel_end.append(len(self.rels))
        self.flags.append(_CATEGORY_INDEX[category] << _CATEGORY_SHIFT | is_dir << 2 | state)
        self.dev.append(st.st_dev)
        self.ino.append(st.st_ino)
        self.size.append(size)
        self.files.append(files)
        self.mtime.append(st.st_mtime_ns)
        self.newest.append(newest)
        self.age.append(age)
        self.disk.append(disk)

    def absorb(self, other: UnitCollector) -> None:
        """Append another walk's units (a worker's share, or another root's)."""
        n, base = len(self), len(self.rels)
        remap = array("H", (self._root_index(r) for r in other.roots))
        if len(remap) == 1:
            self.root += remap * len(other)
        else:
            self.root.extend(remap[r] for r in other.root)
        self.rels += other.rels
        self.rel_end.extend(base + end for end in other.rel_end)
        self.flags += other.flags
        self.link_unit.extend(n + i for i in other.link_unit)
        for name in _COLUMNS:
            getattr(self, name).extend(getattr(other, name))
        self.selected_disk.update(other.selected_disk)

    def _root_index(self, root: str) -> int:
        if root not in self.roots:
            self.roots.append(root)
        return self.roots.index(root)

    def rel(self, i: int) -> str:
        start = self.rel_end[i - 1] if i else 0
        return self.rels[start : self.rel_end[i]].decode(_FS_ENCODING, _FS_ERRORS)

    def raw(self, i: int) -> bytes:
        """Unit `i`'s rel as os.fsencode gives it (what plan order sorts by)."""
        start = self.rel_end[i - 1] if i else 0
        return bytes(self.rels[start : self.rel_end[i]])

    def wholes(self, units: list[int], raws: list[bytes] | None = None) -> Wholes:
        """These units as the rows of whole actions, column by column (a column of one
        unit's numbers is read out at a time, in C); `raws`: their raw(i), if read already."""
        one = itemgetter(*units)  # a column's values of these units, read in C
        get: Callable[[Sequence[int]], Sequence[int]] = (
            one if len(units) > 1 else lambda column: (one(column),)  # one: not a tuple
        )
        flags = get(self.flags)
        return Wholes(
            [self.raw(i) for i in units] if raws is None else raws,
            [_CATEGORIES[f >> _CATEGORY_SHIFT] for f in flags],
            [bool(f & DIR) for f in flags],
            get(self.dev),
            get(self.ino),
            get(self.mtime),
            get(self.size),
            get(self.files),
            get(self.newest),
            get(self.age),
        )

    def state(self, i: int) -> int:
        return self.flags[i] & STATE


# The columns that absorb() appends as they are (rels, roots and unit numbers move).
_COLUMNS = (
    "dev",
    "ino",
    "size",
    "files",
    "mtime",
    "newest",
    "age",
    "disk",
    "link_dev",
    "link_ino",
    "link_disk",
    "link_nlink",
)
