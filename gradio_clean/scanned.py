"""What a scan found, as plain frozen data, and the hooks prune plugs into the walk.

plan.py and the renderers read these; only scan.py walks. scan.py re-exports every
name here, so `from gradio_clean.scan import Item` keeps working.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from gradio_clean.classify import Category, Kind, Role
from gradio_clean.roots import Root

AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 1 h", 3600.0),
    ("1 h - 1 d", 86400.0),
    ("1 - 7 d", 7 * 86400.0),
    ("7 - 30 d", 30 * 86400.0),
    ("> 30 d", float("inf")),
)
MAX_WARNINGS = 1000
MOUNT_WARNING = "on another filesystem (a mount point); not entered"


@dataclass(frozen=True)
class Tally:
    files: int = 0
    dirs: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class AgeBucket:
    label: str
    files: int
    bytes: int


@dataclass(frozen=True)
class ScanWarning:
    path: str
    message: str


@dataclass(frozen=True)
class Item:
    """A top-level entry of a root (or of a nested .gradio): the unit prune removes whole."""

    path: str  # absolute
    rel: str  # relative to the root
    category: Category
    kind: Kind
    is_dir: bool
    dev: int
    ino: int
    files: int  # regular-file paths inside (1 for a file item)
    other: int  # symlinks, FIFOs, sockets, devices, unreadable or foreign-device folders
    bytes: int
    mtime_ns: int  # the item's own mtime
    newest_ns: int  # newest mtime of the item and everything inside it: change detection
    age_ns: int  # newest Hooks.age timestamp of the item and everything inside (else mtime)
    # Allocated blocks of the item and everything inside, each inode once within the item
    # (du -s of the item alone; an inode linked from elsewhere too is counted here as well).
    disk_bytes: int = 0

    @classmethod
    def of(
        cls,
        root: str,
        rel: str,
        st: os.stat_result,
        kind: Kind,
        category: Category,
        is_dir: bool,
        held: Held,
    ) -> Item:
        """The item an item hook was handed as numbers (see ItemHook), as an object."""
        files, other, nbytes, newest_ns, age_ns, disk = held
        return cls(
            os.path.join(root, rel),
            rel,
            category,
            kind,
            is_dir,
            st.st_dev,
            st.st_ino,
            files,
            other,
            nbytes,
            st.st_mtime_ns,
            newest_ns,
            age_ns,
            disk,
        )


@dataclass(frozen=True)
class RootScan:
    path: str
    role: Role
    role_why: str
    files: int  # regular files, a hard-linked inode once
    dirs: int  # folders below the root
    bytes: int  # apparent size of regular files, a hard-linked inode once
    disk_bytes: int  # allocated blocks of every entry, the root included (du -sxB1)
    symlinks: int
    special: int  # FIFOs, sockets, devices: recorded, never opened
    hardlinks: int  # extra paths to an inode already counted
    oldest: float | None  # mtime of the oldest regular file
    newest: float | None
    categories: Mapping[Category, Tally]
    ages: tuple[AgeBucket, ...]
    largest: tuple[Item, ...]  # hash folders and sessions, largest first


@dataclass(frozen=True)
class ScanResult:
    roots: tuple[RootScan, ...]
    warnings: tuple[ScanWarning, ...]
    warnings_dropped: int
    started: float
    duration: float


# What the walk found in an item: (files, other entries, bytes, newest mtime, newest
# age timestamp, allocated bytes), as Item's fields of the same names.
Held = tuple[int, int, int, int, int, int]
FileHook = Callable[[str, os.stat_result, Category], None]
# A root's own file hook (RootHooks) gets the file's Hooks.age timestamp too (its mtime
# when unset): the walk computed it already, so the planner's age rules need not.
AgedFileHook = Callable[[str, os.stat_result, Category, int], None]
# An item as the walk has it, no object built (most items of a plan need none): its
# rel, its own lstat, kind, category, whether it is a folder, and what it holds.
# Item.of(root, ...) makes the Item of the same arguments.
ItemHook = Callable[[str, os.stat_result, Kind, Category, bool, Held], None]
ProgressHook = Callable[[int, int], None]
AgeHook = Callable[[os.stat_result], int]


class RootHooks(NamedTuple):
    """One root's file and item hooks, as `Hooks.on_root` returns them for that root."""

    on_file: AgedFileHook | None
    on_item: ItemHook | None
    # None: every file goes to on_file. A timestamp: only the files it may want do (one
    # whose age is below it, with more than one link, of another category than its item,
    # or an item itself); the item hook counts the rest, held[0] less the files it got.
    files_below: int | None = None


RootHook = Callable[[Root], RootHooks | None]  # None: the shared on_file/on_item


@dataclass
class Hooks:
    """Let prune see every file and item of the same walk, instead of walking twice."""

    on_root: RootHook | None = None
    on_file: FileHook | None = None
    on_item: ItemHook | None = None
    progress: ProgressHook | None = None
    # The timestamp an entry's age counts from (prune's --age-by); Item.age_ns is the
    # newest of it over the item. Unset: mtime.
    age: AgeHook | None = None
    # With both set, file and item hooks may also run in forked workers: `export`
    # (in the worker) returns what the hooks gathered, `absorb` (in the parent) takes it.
    export: Callable[[], object] | None = None
    absorb: Callable[[object], None] | None = None

    def parallel_safe(self) -> bool:
        walking = self.on_file is not None or self.on_item is not None or self.on_root is not None
        return not walking or (self.export is not None and self.absorb is not None)
