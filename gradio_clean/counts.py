"""A root's counters while it is walked: one value that adds up with `+=`.

A forked worker counts its share of a root into a Counts of its own and sends it
back; the parent adds it to its own (`counts += theirs`), taking back out what both
counted of a hard-linked inode, so the sum is exactly what one process would count.
`freeze` turns it into the RootScan a scan returns.
"""

from __future__ import annotations

import heapq
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from gradio_clean.classify import Category
from gradio_clean.roots import Root
from gradio_clean.scanned import (
    AGE_BUCKETS,
    MAX_WARNINGS,
    AgeBucket,
    Item,
    RootScan,
    ScanWarning,
    Tally,
)

# st_mtime_ns is int64 seconds * 1e9 (tmpfs, btrfs and xfs keep dates far from now):
# the last age bucket's bound must lie below any of them.
_BEFORE_ANY_MTIME = -(1 << 127)
_LinkShare = tuple[int, int, "Category | None", int]  # size, blocks, category, age bucket


def age_cuts(now: float) -> tuple[int, ...]:
    """Per AGE_BUCKETS: the oldest mtime (ns) the bucket holds."""
    return tuple(
        int((now - limit) * 1e9) if limit != float("inf") else _BEFORE_ANY_MTIME
        for _, limit in AGE_BUCKETS
    )


def _per_category() -> dict[Category, int]:
    return dict.fromkeys(Category, 0)


def _per_age() -> list[int]:
    return [0] * len(AGE_BUCKETS)


class _NameFirst:
    """A name that ranks higher the earlier it sorts (the heap keeps the highest)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __lt__(self, other: _NameFirst) -> bool:
        return self.name > other.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _NameFirst) and self.name == other.name

    __hash__ = None  # type: ignore[assignment]


@dataclass(slots=True)
class Counts:
    """What has been counted of one root so far."""

    top: int  # how many of the largest items to keep
    cut_ns: Sequence[int]  # from age_cuts()
    files: int = 0
    dirs: int = 0
    bytes: int = 0
    disk: int = 0
    symlinks: int = 0
    special: int = 0
    hardlinks: int = 0
    oldest_ns: int | None = None
    newest_ns: int | None = None
    cat_files: dict[Category, int] = field(default_factory=_per_category)
    cat_dirs: dict[Category, int] = field(default_factory=_per_category)
    cat_bytes: dict[Category, int] = field(default_factory=_per_category)
    age_files: list[int] = field(default_factory=_per_age)
    age_bytes: list[int] = field(default_factory=_per_age)
    # (dev, ino) of multiply-linked inodes -> what counting it added, so that `+=`
    # counts each inode once, whichever worker saw it.
    links: dict[tuple[int, int], _LinkShare] = field(default_factory=dict)
    # A min-heap of (bytes, name, item): the `top` largest items so far; of two the same
    # size the one whose name sorts first ranks higher, however the walk was shared out.
    largest: list[tuple[int, _NameFirst, Item]] = field(default_factory=list)

    def fresh(self) -> Counts:
        """Nothing counted yet, for the same root (what a worker starts from)."""
        return Counts(self.top, self.cut_ns)

    def add_leaf(self, st: os.stat_result, cat: Category) -> bool:
        """Count an entry that is not a folder; True if it is a regular file. The hot path."""
        mode = st.st_mode
        if stat.S_ISREG(mode):
            size = st.st_size
            mtime = st.st_mtime_ns
            cut = self.cut_ns
            i = 0
            while mtime < cut[i]:
                i += 1
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in self.links:
                    self.hardlinks += 1
                    return True
                self.links[key] = (size, st.st_blocks, cat, i)
            self.files += 1
            self.bytes += size
            self.disk += st.st_blocks * 512
            self.cat_files[cat] += 1
            self.cat_bytes[cat] += size
            self.age_files[i] += 1
            self.age_bytes[i] += size
            if self.oldest_ns is None or mtime < self.oldest_ns:
                self.oldest_ns = mtime
            if self.newest_ns is None or mtime > self.newest_ns:
                self.newest_ns = mtime
            return True
        if stat.S_ISLNK(mode):
            self.symlinks += 1
        else:
            self.special += 1
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in self.links:
                return False
            self.links[key] = (0, st.st_blocks, None, -1)
        self.disk += st.st_blocks * 512
        return False

    def add_files(
        self, cat: Category, n: int, nbytes: int, blocks: int, oldest: int, newest: int
    ) -> None:
        """Count `n` regular files with one link each, of one category, in one go: their
        bytes, 512-byte blocks and oldest and newest mtime (the walk counted their age
        buckets as it passed them). What add_leaf would count of them one by one."""
        self.files += n
        self.bytes += nbytes
        self.disk += blocks * 512
        self.cat_files[cat] += n
        self.cat_bytes[cat] += nbytes
        if self.oldest_ns is None or oldest < self.oldest_ns:
            self.oldest_ns = oldest
        if self.newest_ns is None or newest > self.newest_ns:
            self.newest_ns = newest

    def add_dir(self, st: os.stat_result, cat: Category) -> None:
        self.dirs += 1
        self.cat_dirs[cat] += 1
        self.disk += st.st_blocks * 512

    def ranks(self, nbytes: int) -> bool:
        """Whether an item this large would be among the `top` largest."""
        return self.top > 0 and (len(self.largest) < self.top or nbytes > self.largest[0][0])

    def rank(self, nbytes: int, item: Item) -> None:
        """Keep `item` if it is among the `top` largest so far."""
        entry = (nbytes, _NameFirst(item.rel), item)
        if len(self.largest) < self.top:
            heapq.heappush(self.largest, entry)
        elif entry > self.largest[0]:
            heapq.heapreplace(self.largest, entry)

    def __iadd__(self, other: Counts) -> Counts:
        self.files += other.files
        self.dirs += other.dirs
        self.bytes += other.bytes
        self.disk += other.disk
        self.symlinks += other.symlinks
        self.special += other.special
        self.hardlinks += other.hardlinks
        for ns in (other.oldest_ns, other.newest_ns):
            if ns is not None:
                self.oldest_ns = ns if self.oldest_ns is None else min(self.oldest_ns, ns)
                self.newest_ns = ns if self.newest_ns is None else max(self.newest_ns, ns)
        for c in Category:
            self.cat_files[c] += other.cat_files[c]
            self.cat_dirs[c] += other.cat_dirs[c]
            self.cat_bytes[c] += other.cat_bytes[c]
        for i in range(len(AGE_BUCKETS)):
            self.age_files[i] += other.age_files[i]
            self.age_bytes[i] += other.age_bytes[i]
        for key, share in other.links.items():
            if key in self.links:
                self._uncount(share)
            else:
                self.links[key] = share
        for nbytes, _, item in other.largest:
            self.rank(nbytes, item)
        return self

    def _uncount(self, share: _LinkShare) -> None:
        """Both sides counted this inode: take one count back out."""
        size, blocks, cat, bucket = share
        self.disk -= blocks * 512
        if cat is not None:
            self.hardlinks += 1
            self.files -= 1
            self.bytes -= size
            self.cat_files[cat] -= 1
            self.cat_bytes[cat] -= size
            self.age_files[bucket] -= 1
            self.age_bytes[bucket] -= size

    def freeze(self, root: Root) -> RootScan:
        cats = {c: Tally(self.cat_files[c], self.cat_dirs[c], self.cat_bytes[c]) for c in Category}
        ages = tuple(
            AgeBucket(label, self.age_files[i], self.age_bytes[i])
            for i, (label, _) in enumerate(AGE_BUCKETS)
        )
        return RootScan(
            path=root.path,
            role=root.role,
            role_why=root.why,
            files=self.files,
            dirs=self.dirs,
            bytes=self.bytes,
            disk_bytes=self.disk,
            symlinks=self.symlinks,
            special=self.special,
            hardlinks=self.hardlinks,
            oldest=None if self.oldest_ns is None else self.oldest_ns / 1e9,
            newest=None if self.newest_ns is None else self.newest_ns / 1e9,
            categories=cats,
            ages=ages,
            largest=tuple(item for _, _, item in sorted(self.largest, reverse=True)),
        )


@dataclass
class Warnings:
    """The first MAX_WARNINGS warnings of a scan, and how many more were dropped."""

    kept: list[ScanWarning] = field(default_factory=list)
    dropped: int = 0

    def add(self, path: str, message: str) -> None:
        if len(self.kept) < MAX_WARNINGS:
            self.kept.append(ScanWarning(path, message))
        else:
            self.dropped += 1

    def __iadd__(self, other: Warnings) -> Warnings:
        room = max(0, MAX_WARNINGS - len(self.kept))
        self.kept.extend(other.kept[:room])
        self.dropped += other.dropped + max(0, len(other.kept) - room)
        return self
