"""One pass over each root: counters, not a Python object per file.

The walk works through directory file descriptors: each folder is opened with
O_NOFOLLOW relative to its parent's descriptor, so a symlink is never followed
and a folder swapped for a link mid-walk cannot lead outside the root. Depth is
limited only by open descriptors (one per level), never by Python's recursion.
Folders on another device are recorded and not entered.

What a scan returns lives in scanned.py and is re-exported here; what it counts
on the way, in counts.py.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import resource
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from gradio_clean.classify import (
    KIND_CATEGORY,
    Category,
    Kind,
    Role,
    category_in_hash_dir,
    classify_top,
)
from gradio_clean.counts import Counts, Warnings, age_cuts
from gradio_clean.roots import DIR_FLAGS, Root, open_error_reason
from gradio_clean.scanned import (
    AGE_BUCKETS,
    MAX_WARNINGS,
    MOUNT_WARNING,
    AgeBucket,
    AgeHook,
    FileHook,
    Hooks,
    Item,
    ItemHook,
    ProgressHook,
    RootHook,
    RootScan,
    ScanResult,
    ScanWarning,
    Tally,
)
from gradio_clean.workers import Report, Share, available_jobs, check_stop, run_shares

__all__ = [  # the result types, re-exported: `from gradio_clean.scan import Item` works
    "AGE_BUCKETS",
    "FORK_MIN_ENTRIES",
    "MAX_WARNINGS",
    "MOUNT_WARNING",
    "AgeBucket",
    "AgeHook",
    "FileHook",
    "Hooks",
    "Item",
    "ItemHook",
    "ProgressHook",
    "RootHook",
    "RootScan",
    "ScanResult",
    "ScanWarning",
    "Tally",
    "raise_fd_limit",
    "scan",
]

_RANKED = frozenset({Kind.HASH_DIR, Kind.SESSION_DIR})
# Below this many entries in a root, a fork costs more than it saves. (apply_plan counts
# actions instead, each one a re-check and a removal: see delete.FORK_MIN_ACTIONS.)
FORK_MIN_ENTRIES = 2000
_PACE = 0x3FF  # every 1024 regular files: check for a stop, report progress
# An open folder being walked: (fd, its listing, rel path, category, depth in the item)
_Frame = tuple[int, Iterator[os.DirEntry[str]], str, Category, int]
# What an item holds: (files, other entries, bytes, newest mtime, newest age timestamp,
# allocated bytes: du -s of the item)
_Held = tuple[int, int, int, int, int, int]


def raise_fd_limit() -> None:
    """Deep trees hold one descriptor per level; use the hard limit we are allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@dataclass
class _Counted:
    """One share of a root, counted apart (in a worker): pickled back to the parent."""

    counts: Counts
    warnings: Warnings
    payload: object = None  # Hooks.export() of the worker


class _RootWalker:
    """Walks one root (or one share of its entries) into a Counts."""

    def __init__(
        self,
        root: Root,
        counts: Counts,
        warnings: Warnings,
        hooks: Hooks,
        jobs: int = 1,
        auto_jobs: bool = False,
    ) -> None:
        self.root = root
        self.counts = counts
        self.warnings = warnings
        self.warn = warnings.add
        self.hooks = hooks
        self.jobs = jobs
        self.auto_jobs = auto_jobs
        # where report() tells progress: the hook, or in a split walk the share's report
        self.tell: Report | None = hooks.progress
        self.dev = 0

    # -- entry points -------------------------------------------------------------

    def run(self) -> RootScan:
        if self.hooks.on_root is not None:
            self.hooks.on_root(self.root)
        try:
            fd = os.open(self.root.path, DIR_FLAGS)
        except OSError as exc:
            self.warn(self.root.path, open_error_reason(exc))
            return self.counts.freeze(self.root)
        try:
            st = os.fstat(fd)
            self.dev = st.st_dev
            self.counts.disk += st.st_blocks * 512
            if self.jobs > 1 and self.hooks.parallel_safe():
                _walk_shared(self, fd)
            else:
                self._container(fd, "", self.root.role)
        finally:
            os.close(fd)
        return self.counts.freeze(self.root)

    def report(self) -> None:
        """Every 1024 files: stop if asked (in every process), and report progress."""
        check_stop()
        if self.tell is not None:
            self.tell(self.counts.files, self.counts.bytes)

    # -- walking ------------------------------------------------------------------

    def _path(self, rel: str) -> str:
        return os.path.join(self.root.path, rel) if rel else self.root.path

    def _container(self, fd: int, rel: str, role: Role) -> None:
        """Classify each child of a root (or nested .gradio) and walk it as one item."""
        self._container_names(fd, rel, role, self._listing(fd, rel))

    def _listing(self, fd: int, rel: str, share: int = 0, shares: int = 1) -> Iterator[str]:
        """A folder's names as the kernel hands them out, never all at once (a root of a
        million hash folders: ~110 MB as a list). With `shares`, only the names whose
        hash falls to `share` (forked workers share the parent's hash seed)."""
        # A descriptor of its own: a scandir of `fd` itself would share its offset with
        # every worker forked with it, and each would read only part of the folder.
        try:
            own = os.open(".", DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            self.warn(self._path(rel), open_error_reason(exc))
            return
        try:
            with os.scandir(own) as listing:  # scandir reads a copy of `own`
                for entry in listing:
                    name = entry.name
                    if shares == 1 or hash(name) % shares == share:
                        yield name
        except OSError as exc:
            self.warn(self._path(rel), open_error_reason(exc))
        finally:
            os.close(own)

    def _container_names(self, fd: int, rel: str, role: Role, names: Iterable[str]) -> None:
        for name in names:
            check_stop()
            child_rel = f"{rel}/{name}" if rel else name
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                self.warn(self._path(child_rel), open_error_reason(exc))
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            kind = classify_top(role, name, is_dir)
            # a nested .gradio on another device falls through to _item, which warns once
            if kind is Kind.GRADIO_DIR and st.st_dev == self.dev:
                self.counts.add_dir(st, Category.OTHER)
                sub = self._open(fd, name, child_rel)
                if sub is not None:
                    try:
                        self._container(sub, child_rel, Role.GRADIO)
                    finally:
                        os.close(sub)
                continue
            self._item(fd, name, child_rel, st, kind)

    def _open(self, parent_fd: int, name: str, rel: str) -> int | None:
        try:
            return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.warn(self._path(rel), open_error_reason(exc))
            return None

    def _open_listing(
        self, parent_fd: int, name: str, rel: str
    ) -> tuple[int, Iterator[os.DirEntry[str]]] | None:
        try:
            fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.warn(self._path(rel), open_error_reason(exc))
            return None
        try:
            return fd, os.scandir(fd)
        except OSError as exc:
            os.close(fd)
            self.warn(self._path(rel), open_error_reason(exc))
            return None

    def _age(self, st: os.stat_result) -> int:
        age = self.hooks.age
        return st.st_mtime_ns if age is None else age(st)

    def _item(self, parent_fd: int, name: str, rel: str, st: os.stat_result, kind: Kind) -> None:
        cat = KIND_CATEGORY[kind]
        counts = self.counts
        if not stat.S_ISDIR(st.st_mode):
            if counts.add_leaf(st, cat):
                if self.hooks.on_file is not None:
                    self.hooks.on_file(rel, st, cat)
                if not counts.files & _PACE:
                    self.report()
                held = (1, 0, st.st_size, st.st_mtime_ns, self._age(st), st.st_blocks * 512)
            else:
                held = (0, 1, 0, st.st_mtime_ns, self._age(st), st.st_blocks * 512)
            self._finish(rel, st, kind, cat, False, held)
            return
        if st.st_dev != self.dev:
            self.warn(self._path(rel), MOUNT_WARNING)
            held = (0, 1, 0, st.st_mtime_ns, self._age(st), st.st_blocks * 512)
        else:
            held, empty = self._walk_dir(parent_fd, name, rel, st, kind, cat)
            if kind is Kind.HASH_DIR and empty:
                cat = Category.LEFTOVER  # delete_cache removes files, never their folders
            files, other, nbytes, newest, age, disk = held
            held = (files, other, nbytes, newest, age, disk + st.st_blocks * 512)
        counts.add_dir(st, cat)
        self._finish(rel, st, kind, cat, True, held)

    def _finish(
        self, rel: str, st: os.stat_result, kind: Kind, cat: Category, is_dir: bool, held: _Held
    ) -> None:
        """Hand the item to prune, and keep it if it is among the largest."""
        files, other, nbytes, newest_ns, age_ns, disk = held
        counts = self.counts
        ranked = kind in _RANKED and counts.ranks(nbytes)
        if not ranked and self.hooks.on_item is None:
            return  # most items: no object built at all
        item = Item(
            self._path(rel),
            rel,
            cat,
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
        if self.hooks.on_item is not None:
            self.hooks.on_item(item)
        if ranked:
            counts.rank(nbytes, item)

    def _walk_dir(
        self, parent_fd: int, name: str, rel: str, st: os.stat_result, kind: Kind, cat: Category
    ) -> tuple[_Held, bool]:
        """Walk one item folder: what it holds, and whether it is empty."""
        listing = self._open_listing(parent_fd, name, rel)
        if listing is None:
            return (0, 1, 0, st.st_mtime_ns, self._age(st), 0), False
        stack: list[_Frame] = [(listing[0], listing[1], rel, cat, 0)]
        try:
            return self._walk_frames(stack, kind is Kind.HASH_DIR, st.st_mtime_ns, self._age(st))
        finally:
            for dfd, it, *_ in stack:  # what an interruption left open
                it.close()  # type: ignore[attr-defined]
                os.close(dfd)

    def _walk_frames(
        self, stack: list[_Frame], hash_dir: bool, newest: int, newest_age: int
    ) -> tuple[_Held, bool]:
        """Depth first through an item's folders, from the open ones on `stack`: the hot loop.

        A hash folder's own entries get their category by name (a staging copy is a
        leftover); deeper ones inherit their folder's.
        """
        files = other = item_bytes = 0  # item_bytes: each inode once, whatever the order
        item_disk = 0  # allocated bytes below the item folder, as item_bytes
        item_links: set[tuple[int, int]] = set()
        empty = True
        counts = self.counts
        add_leaf = counts.add_leaf
        on_file = self.hooks.on_file
        age_of = self.hooks.age
        S_ISDIR = stat.S_ISDIR
        while stack:
            dfd, it, drel, dcat, depth = stack[-1]
            child: _Frame | None = None
            try:
                for entry in it:
                    empty = False
                    ename = entry.name
                    try:
                        est = entry.stat(follow_symlinks=False)
                    except OSError as exc:
                        other += self._unstatable(f"{drel}/{ename}", exc)
                        continue
                    mtime = est.st_mtime_ns
                    if mtime > newest:
                        newest = mtime
                    age = mtime if age_of is None else age_of(est)
                    if age > newest_age:
                        newest_age = age
                    is_dir = S_ISDIR(est.st_mode)
                    ecat = (
                        category_in_hash_dir(ename, is_dir, 1) if hash_dir and not depth else dcat
                    )
                    if is_dir:
                        item_disk += est.st_blocks * 512
                        child = self._subdir(dfd, ename, f"{drel}/{ename}", est, ecat, depth)
                        if child is not None:
                            break
                        other += 1
                    elif add_leaf(est, ecat):
                        files += 1
                        if est.st_nlink == 1:
                            item_bytes += est.st_size
                            item_disk += est.st_blocks * 512
                        elif (est.st_dev, est.st_ino) not in item_links:
                            item_links.add((est.st_dev, est.st_ino))
                            item_bytes += est.st_size
                            item_disk += est.st_blocks * 512
                        if on_file is not None:
                            on_file(f"{drel}/{ename}", est, ecat)
                        if not counts.files & _PACE:
                            self.report()
                    else:
                        other += 1
                        item_disk += est.st_blocks * 512
            except OSError as exc:  # the listing itself failed part-way (EIO, ESTALE)
                self.warn(self._path(drel), open_error_reason(exc))
                other += 1
            if child is None:
                it.close()  # type: ignore[attr-defined]
                os.close(dfd)
                stack.pop()
            else:
                stack.append(child)
        return (files, other, item_bytes, newest, newest_age, item_disk), empty

    def _unstatable(self, rel: str, exc: OSError) -> int:
        """An entry that could not be stat'ed: 1 (warned about), or 0 if it is just gone."""
        if isinstance(exc, FileNotFoundError):
            return 0
        self.warn(self._path(rel), open_error_reason(exc))
        return 1

    def _subdir(
        self, parent_fd: int, name: str, rel: str, st: os.stat_result, cat: Category, depth: int
    ) -> _Frame | None:
        """Count a folder inside an item, and open it to walk unless it is on another device."""
        self.counts.add_dir(st, cat)
        if st.st_dev != self.dev:
            self.warn(self._path(rel), MOUNT_WARNING)
            return None
        listing = self._open_listing(parent_fd, name, rel)
        return None if listing is None else (listing[0], listing[1], rel, cat, depth + 1)


def _count(fd: int, most: int) -> int:
    """How many entries the folder has, counting up to `most` (0 if it cannot be read:
    the walk then says why)."""
    try:
        own = os.open(".", DIR_FLAGS, dir_fd=fd)
    except OSError:
        return 0
    try:
        with os.scandir(own) as listing:
            return sum(1 for _ in itertools.islice(listing, most))
    except OSError:
        return 0
    finally:
        os.close(own)


def _walk_shared(walker: _RootWalker, fd: int) -> None:
    """Share the root's entries among forked workers; each sends its Counts back."""
    root, hooks = walker.root, walker.hooks
    jobs = walker.jobs
    if jobs >= 2:  # as many workers as entries at most, and none for a small root
        seen = _count(fd, max(jobs, FORK_MIN_ENTRIES))
        jobs = 1 if walker.auto_jobs and seen < FORK_MIN_ENTRIES else min(jobs, seen)
    if jobs < 2:
        walker._container_names(fd, "", root.role, walker._listing(fd, ""))
        return

    def work(share: Share) -> _Counted | None:
        if share.index == 0:  # here, in the parent: counts go straight into the walker's
            walker.tell = share.report
            walker._container_names(fd, "", root.role, walker._listing(fd, "", 0, jobs))
            return None
        # the share's own warnings only: the parent caps and counts the sum
        other = _RootWalker(root, walker.counts.fresh(), Warnings(), hooks)
        other.dev, other.tell = walker.dev, share.report
        names = other._listing(fd, "", share.index, jobs)
        other._container_names(fd, "", root.role, names)
        export = hooks.export if share.forked else None  # else the hooks ran here
        return _Counted(other.counts, other.warnings, export() if export else None)

    for counted in run_shares(jobs, work, hooks.progress)[1:]:
        if counted is None:  # a worker died while the run is stopping
            check_stop()
            continue
        if counted.payload is not None and hooks.absorb is not None:
            hooks.absorb(counted.payload)
        walker.counts += counted.counts
        walker.warnings += counted.warnings


def scan(
    roots: Sequence[Root],
    *,
    top: int = 10,
    hooks: Hooks | None = None,
    now: float | None = None,
    jobs: int | None = None,
) -> ScanResult:
    """Walk every root once and return what is there.

    `jobs`: worker processes per root (None: one per available core, and only for
    roots with at least FORK_MIN_ENTRIES entries; 1: no workers). Walks with file or
    item hooks (prune's planning) fork only if the hooks can export what a worker
    gathered and absorb it here (Hooks.parallel_safe); otherwise they run here.
    """
    auto = jobs is None
    if jobs is None:
        jobs = available_jobs()
    raise_fd_limit()
    started = time.time() if now is None else now
    t0 = time.perf_counter()
    warnings = Warnings()
    hooks = hooks or Hooks()
    cuts = age_cuts(started)
    scans = tuple(
        _RootWalker(root, Counts(top, cuts), warnings, hooks, jobs, auto).run() for root in roots
    )
    return ScanResult(
        roots=scans,
        warnings=tuple(warnings.kept),
        warnings_dropped=warnings.dropped,
        started=started,
        duration=time.perf_counter() - t0,
    )
