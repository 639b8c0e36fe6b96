"""One pass over each root: counters, not a Python object per file.

The walk works through directory file descriptors: each folder is opened with
O_NOFOLLOW relative to its parent's descriptor, so a symlink is never followed
and a folder swapped for a link mid-walk cannot lead outside the root. Depth is
limited only by open descriptors (one per level), never by Python's recursion.
Folders on another device are recorded and not entered.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import resource
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from gradio_clean.classify import (
    KIND_CATEGORY,
    Category,
    Kind,
    Role,
    category_in_hash_dir,
    classify_top,
)
from gradio_clean.roots import DIR_FLAGS, Root, open_error_reason
from gradio_clean.workers import Counters, available_jobs, check_stop, run_shares

AGE_BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 1 h", 3600.0),
    ("1 h - 1 d", 86400.0),
    ("1 - 7 d", 7 * 86400.0),
    ("7 - 30 d", 30 * 86400.0),
    ("> 30 d", float("inf")),
)
MAX_WARNINGS = 1000
_RANKED = frozenset({Kind.HASH_DIR, Kind.SESSION_DIR})
MOUNT_WARNING = "on another filesystem (a mount point); not entered"
# st_mtime_ns is int64 seconds * 1e9 (tmpfs, btrfs and xfs keep dates far from now):
# the last age bucket's bound must lie below any of them.
_BEFORE_ANY_MTIME = -(1 << 127)


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


FileHook = Callable[[str, os.stat_result, Category], None]
ItemHook = Callable[[Item], None]
ProgressHook = Callable[[int, int], None]
RootHook = Callable[[Root], None]
AgeHook = Callable[[os.stat_result], int]


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
        walking = self.on_file is not None or self.on_item is not None
        return not walking or (self.export is not None and self.absorb is not None)


@dataclass
class _Warnings:
    kept: list[ScanWarning] = field(default_factory=list)
    dropped: int = 0

    def add(self, path: str, message: str) -> None:
        if len(self.kept) < MAX_WARNINGS:
            self.kept.append(ScanWarning(path, message))
        else:
            self.dropped += 1


def raise_fd_limit() -> None:
    """Deep trees hold one descriptor per level; use the hard limit we are allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


_LinkShare = tuple[int, int, "Category | None", int]  # size, blocks, category, age bucket
AUTO_SPLIT_MIN = 2000  # below this many root entries a fork costs more than it saves


@dataclass
class _Partial:
    """A worker's counters, pickled back to the parent."""

    files: int
    dirs: int
    bytes: int
    disk: int
    symlinks: int
    special: int
    hardlinks: int
    oldest_ns: int | None
    newest_ns: int | None
    cat_files: dict[Category, int]
    cat_dirs: dict[Category, int]
    cat_bytes: dict[Category, int]
    age_files: list[int]
    age_bytes: list[int]
    links: dict[tuple[int, int], _LinkShare]
    largest: list[tuple[int, int, Item]]
    warnings: list[ScanWarning]
    dropped: int
    payload: object = None  # Hooks.export() of the worker


class _RootWalker:
    """Mutable counters for one root; frozen into a RootScan at the end."""

    def __init__(
        self,
        root: Root,
        now: float,
        top: int,
        warnings: _Warnings,
        hooks: Hooks,
        jobs: int = 1,
        auto_jobs: bool = False,
    ) -> None:
        self.root = root
        self.now = now
        self.top = top
        self.warnings = warnings
        self.warn = warnings.add
        self.hooks = hooks
        self.jobs = jobs
        self.auto_jobs = auto_jobs
        self.counters: Counters | None = None  # set while a split walk runs
        self.index = 0  # which worker this is, in a split walk
        self.oldest_ns: int | None = None
        self.newest_ns: int | None = None
        self.seen_links: dict[tuple[int, int], _LinkShare] = {}
        self.largest: list[tuple[int, int, Item]] = []
        self.cut_ns = [
            int((now - limit) * 1e9) if limit != float("inf") else _BEFORE_ANY_MTIME
            for _, limit in AGE_BUCKETS
        ]
        self.reset_counters()
        self.dev = 0

    def reset_counters(self) -> None:
        self.files = self.dirs = self.bytes = self.disk = 0
        self.symlinks = self.special = self.hardlinks = 0
        self.oldest_ns = None
        self.newest_ns = None
        self.cat_files = dict.fromkeys(Category, 0)
        self.cat_dirs = dict.fromkeys(Category, 0)
        self.cat_bytes = dict.fromkeys(Category, 0)
        self.age_files = [0] * len(AGE_BUCKETS)
        self.age_bytes = [0] * len(AGE_BUCKETS)
        # (dev, ino) of multiply-linked inodes -> what counting it added, so that the
        # partial results of parallel workers can be merged with each inode once.
        self.seen_links = {}
        self.largest = []
        self.counter = 0

    # -- entry points -------------------------------------------------------------

    def run(self) -> RootScan:
        if self.hooks.on_root is not None:
            self.hooks.on_root(self.root)
        try:
            fd = os.open(self.root.path, DIR_FLAGS)
        except OSError as exc:
            self.warn(self.root.path, open_error_reason(exc))
            return self.freeze()
        try:
            st = os.fstat(fd)
            self.dev = st.st_dev
            self.disk += st.st_blocks * 512
            if self.jobs > 1 and self.hooks.parallel_safe():
                self._split(fd)
            else:
                self._container(fd, "", self.root.role)
        finally:
            os.close(fd)
        return self.freeze()

    def report(self) -> None:
        """Every 1024 files: progress for the parent, a shared counter for a worker."""
        check_stop()  # SIGINT or SIGTERM: stop walking here, in every process
        if self.counters is not None:
            self.counters.publish(self.index, self.files, self.bytes)
        if self.index == 0 and self.hooks.progress is not None:
            files, nbytes = self.files, self.bytes
            if self.counters is not None:
                more_files, more_bytes = self.counters.others(0)
                files, nbytes = files + more_files, nbytes + more_bytes
            self.hooks.progress(files, nbytes)

    # -- parallel walk -------------------------------------------------------------

    def _split(self, fd: int) -> None:
        """Share the root's entries among forked workers; each returns its counters."""
        try:
            names = os.listdir(fd)
        except OSError as exc:
            self.warn(self.root.path, open_error_reason(exc))
            return
        jobs = min(self.jobs, len(names))
        if jobs < 2 or (self.auto_jobs and len(names) < AUTO_SPLIT_MIN):
            self._container_names(fd, "", self.root.role, names)
            return
        self.counters = Counters(jobs)
        shares = [names[i::jobs] for i in range(jobs)]

        def share(index: int) -> Callable[[], _Partial | None]:
            def work() -> _Partial | None:
                if index == 0:  # here, in the parent: counts go straight into self
                    self._container_names(fd, "", self.root.role, shares[0])
                    return None
                self.index = index
                self.reset_counters()
                # the worker's own warnings only: the parent caps and counts the merged list
                self.warnings = _Warnings()
                self.warn = self.warnings.add
                self._container_names(fd, "", self.root.role, shares[index])
                return self.partial(0)

            return work

        results = run_shares([share(i) for i in range(jobs)])
        for index, partial in enumerate(results[1:], start=1):
            if partial is None:  # the worker died: count its share here instead
                self._container_names(fd, "", self.root.role, shares[index])
            else:
                self._merge(partial)
        self.counters = None

    def partial(self, warnings_before: int) -> _Partial:
        return _Partial(
            self.files,
            self.dirs,
            self.bytes,
            self.disk,
            self.symlinks,
            self.special,
            self.hardlinks,
            self.oldest_ns,
            self.newest_ns,
            self.cat_files,
            self.cat_dirs,
            self.cat_bytes,
            self.age_files,
            self.age_bytes,
            self.seen_links,
            self.largest,
            self.warnings.kept[warnings_before:],
            self.warnings.dropped,
            self.hooks.export() if self.hooks.export is not None else None,
        )

    def _merge(self, p: _Partial) -> None:
        if p.payload is not None and self.hooks.absorb is not None:
            self.hooks.absorb(p.payload)
        self.files += p.files
        self.dirs += p.dirs
        self.bytes += p.bytes
        self.disk += p.disk
        self.symlinks += p.symlinks
        self.special += p.special
        self.hardlinks += p.hardlinks
        for ns in (p.oldest_ns, p.newest_ns):
            if ns is not None:
                self.oldest_ns = ns if self.oldest_ns is None else min(self.oldest_ns, ns)
                self.newest_ns = ns if self.newest_ns is None else max(self.newest_ns, ns)
        for c in Category:
            self.cat_files[c] += p.cat_files[c]
            self.cat_dirs[c] += p.cat_dirs[c]
            self.cat_bytes[c] += p.cat_bytes[c]
        for i in range(len(AGE_BUCKETS)):
            self.age_files[i] += p.age_files[i]
            self.age_bytes[i] += p.age_bytes[i]
        for key, (size, blocks, cat, bucket) in p.links.items():
            if key not in self.seen_links:
                self.seen_links[key] = (size, blocks, cat, bucket)
                continue
            # Both sides counted this inode: take the worker's count back out.
            self.disk -= blocks * 512
            if cat is not None:
                self.hardlinks += 1
                self.files -= 1
                self.bytes -= size
                self.cat_files[cat] -= 1
                self.cat_bytes[cat] -= size
                self.age_files[bucket] -= 1
                self.age_bytes[bucket] -= size
        for entry in p.largest:
            self.counter += 1
            ranked = (entry[0], -self.counter, entry[2])
            if len(self.largest) < self.top:
                heapq.heappush(self.largest, ranked)
            elif ranked > self.largest[0]:
                heapq.heapreplace(self.largest, ranked)
        room = max(0, MAX_WARNINGS - len(self.warnings.kept))
        self.warnings.kept.extend(p.warnings[:room])
        self.warnings.dropped += p.dropped + max(0, len(p.warnings) - room)

    def freeze(self) -> RootScan:
        cats = {c: Tally(self.cat_files[c], self.cat_dirs[c], self.cat_bytes[c]) for c in Category}
        ages = tuple(
            AgeBucket(label, self.age_files[i], self.age_bytes[i])
            for i, (label, _) in enumerate(AGE_BUCKETS)
        )
        largest = tuple(item for _, _, item in sorted(self.largest, reverse=True))
        return RootScan(
            path=self.root.path,
            role=self.root.role,
            role_why=self.root.why,
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
            largest=largest,
        )

    # -- walking ------------------------------------------------------------------

    def _path(self, rel: str) -> str:
        return os.path.join(self.root.path, rel) if rel else self.root.path

    def _container(self, fd: int, rel: str, role: Role) -> None:
        """Classify each child of a root (or nested .gradio) and walk it as one item."""
        try:
            names = os.listdir(fd)
        except OSError as exc:
            self.warn(self._path(rel), open_error_reason(exc))
            return
        self._container_names(fd, rel, role, names)

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
                self._count_dir(st, Category.OTHER)
                sub = self._open(fd, name, child_rel)
                if sub is not None:
                    try:
                        self._container(sub, child_rel, Role.GRADIO)
                    finally:
                        os.close(sub)
                continue
            self._item(fd, name, child_rel, st, kind)

    def _enter_dir(self, st: os.stat_result, rel: str) -> bool:
        if st.st_dev != self.dev:
            self.warn(self._path(rel), MOUNT_WARNING)
            return False
        return True

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
        fd = self._open(parent_fd, name, rel)
        if fd is None:
            return None
        try:
            return fd, os.scandir(fd)
        except OSError as exc:
            os.close(fd)
            self.warn(self._path(rel), open_error_reason(exc))
            return None

    def _count_dir(self, st: os.stat_result, cat: Category) -> None:
        self.dirs += 1
        self.cat_dirs[cat] += 1
        self.disk += st.st_blocks * 512

    def _item(self, parent_fd: int, name: str, rel: str, st: os.stat_result, kind: Kind) -> None:
        cat = KIND_CATEGORY[kind]
        if not stat.S_ISDIR(st.st_mode):
            is_reg = self._leaf(rel, st, cat)
            if self.hooks.on_file is not None and is_reg:
                self.hooks.on_file(rel, st, cat)
            self._finish(
                rel,
                st,
                kind,
                cat,
                False,
                int(is_reg),
                int(not is_reg),
                st.st_size if is_reg else 0,
                (st.st_mtime_ns, self._age(st)),
                st.st_blocks * 512,
            )
            return
        if not self._enter_dir(st, rel):
            self._count_dir(st, cat)
            disk = st.st_blocks * 512
            self._finish(rel, st, kind, cat, True, 0, 1, 0, (st.st_mtime_ns, self._age(st)), disk)
            return
        files, other, nbytes, newest, empty, disk = self._walk_dir(
            parent_fd, name, rel, st, kind, cat
        )
        if kind is Kind.HASH_DIR and empty:
            cat = Category.LEFTOVER  # delete_cache removes files, never their folders
        self._count_dir(st, cat)
        self._finish(
            rel, st, kind, cat, True, files, other, nbytes, newest, disk + st.st_blocks * 512
        )

    def _age(self, st: os.stat_result) -> int:
        age = self.hooks.age
        return st.st_mtime_ns if age is None else age(st)

    def _finish(
        self,
        rel: str,
        st: os.stat_result,
        kind: Kind,
        cat: Category,
        is_dir: bool,
        files: int,
        other: int,
        nbytes: int,
        newest: tuple[int, int],
        disk: int,
    ) -> None:
        """Hand the item to prune, and keep it if it is among the largest.

        `newest`: the newest mtime and the newest age timestamp of the item and its contents.
        """
        ranked = kind in _RANKED and self.top > 0
        if ranked and len(self.largest) >= self.top and nbytes <= self.largest[0][0]:
            ranked = False
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
            *newest,
            disk,
        )
        if self.hooks.on_item is not None:
            self.hooks.on_item(item)
        if ranked:
            self.counter += 1
            entry = (nbytes, -self.counter, item)
            if len(self.largest) < self.top:
                heapq.heappush(self.largest, entry)
            else:
                heapq.heapreplace(self.largest, entry)

    def _leaf(self, rel: str, st: os.stat_result, cat: Category) -> bool:
        """Count a non-directory entry; True if it is a regular file."""
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
                if key in self.seen_links:
                    self.hardlinks += 1
                    return True
                self.seen_links[key] = (size, st.st_blocks, cat, i)
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
            self.counter += 1
            if not self.counter & 0x3FF:
                self.report()
            return True
        if stat.S_ISLNK(mode):
            self.symlinks += 1
        else:
            self.special += 1
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in self.seen_links:
                return False
            self.seen_links[key] = (0, st.st_blocks, None, -1)
        self.disk += st.st_blocks * 512
        return False

    def _walk_dir(
        self, parent_fd: int, name: str, rel: str, st: os.stat_result, kind: Kind, cat: Category
    ) -> tuple[int, int, int, tuple[int, int], bool, int]:
        """Walk one item folder.

        Returns (files, other entries, bytes, (newest mtime, newest age timestamp), empty,
        allocated bytes below the folder).
        """
        fd = self._open(parent_fd, name, rel)
        newest = st.st_mtime_ns
        age_of = self.hooks.age
        newest_age = self._age(st)
        if fd is None:
            return 0, 1, 0, (newest, newest_age), False, 0
        files = other = 0
        item_bytes = 0  # each inode once within the item, whatever the walk order
        item_links: set[tuple[int, int]] = set()
        item_disk = 0
        empty = True
        on_file = self.hooks.on_file
        leaf = self._leaf
        dev = self.dev
        split_hash = kind is Kind.HASH_DIR
        S_ISDIR = stat.S_ISDIR
        # Each frame: (fd, iterator, rel path, category, depth)
        try:
            top_it = os.scandir(fd)
        except OSError as exc:
            os.close(fd)
            self.warn(self._path(rel), open_error_reason(exc))
            return 0, 1, 0, (newest, newest_age), False, 0
        # Each frame: (fd, iterator, rel path, category, depth)
        stack: list[tuple[int, Iterator[os.DirEntry[str]], str, Category, int]] = [
            (fd, top_it, rel, cat, 0)
        ]
        try:
            while stack:
                dfd, it, drel, dcat, depth = stack[-1]
                descended = False
                try:
                    for entry in it:
                        empty = False
                        ename = entry.name
                        try:
                            est = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        except OSError as exc:
                            p = self._path(f"{drel}/{ename}")
                            self.warn(p, open_error_reason(exc))
                            other += 1
                            continue
                        if est.st_mtime_ns > newest:
                            newest = est.st_mtime_ns
                        if age_of is not None:
                            newest_age = max(newest_age, age_of(est))
                        elif est.st_mtime_ns > newest_age:
                            newest_age = est.st_mtime_ns
                        is_dir = S_ISDIR(est.st_mode)
                        ecat = (
                            category_in_hash_dir(ename, is_dir, 1)
                            if split_hash and depth == 0
                            else dcat
                        )
                        if not is_dir:
                            if leaf(drel, est, ecat):
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
                            else:
                                other += 1
                                item_disk += est.st_blocks * 512
                            continue
                        erel = f"{drel}/{ename}"
                        self._count_dir(est, ecat)
                        item_disk += est.st_blocks * 512
                        if est.st_dev != dev:
                            self.warn(self._path(erel), MOUNT_WARNING)
                            other += 1
                            continue
                        child = self._open_listing(dfd, ename, erel)
                        if child is None:
                            other += 1
                            continue
                        stack.append((child[0], child[1], erel, ecat, depth + 1))
                        descended = True
                        break
                except OSError as exc:  # the listing itself failed part-way (EIO, ESTALE)
                    p = self._path(drel)
                    self.warn(p, open_error_reason(exc))
                    other += 1
                if not descended:
                    it.close()  # type: ignore[attr-defined]
                    os.close(dfd)
                    stack.pop()
        finally:
            for dfd, it, *_ in stack:
                it.close()  # type: ignore[attr-defined]
                os.close(dfd)
        return files, other, item_bytes, (newest, newest_age), empty, item_disk


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
    roots with many entries; 1: no workers). Walks with file or item hooks (prune's
    planning) always run in this process.
    """
    auto = jobs is None
    if jobs is None:
        jobs = available_jobs()
    raise_fd_limit()
    started = time.time() if now is None else now
    t0 = time.perf_counter()
    warnings = _Warnings()
    scans = tuple(
        _RootWalker(root, started, top, warnings, hooks or Hooks(), jobs, auto).run()
        for root in roots
    )
    return ScanResult(
        roots=scans,
        warnings=tuple(warnings.kept),
        warnings_dropped=warnings.dropped,
        started=started,
        duration=time.perf_counter() - t0,
    )
