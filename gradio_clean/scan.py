"""One pass over each root: counters, not a Python object per file.

The walk goes down through directory descriptors, never through a symlink, onto
another device or by Python's recursion: descent.py.

What a scan returns lives in scanned.py and is re-exported here; what it counts
on the way, in counts.py.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import resource
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from stat import S_IFDIR, S_IFREG, S_ISDIR

from gradio_clean.classify import (
    KIND_CATEGORY,
    LEFTOVER_FILE_START,
    Category,
    Kind,
    Role,
    category_in_hash_dir,
    classifier,
    is_claim_name,
)
from gradio_clean.counts import Counts, Warnings, age_cuts
from gradio_clean.descent import Descent, Frame, close
from gradio_clean.roots import DIR_FLAGS, Root, open_at
from gradio_clean.scanned import (
    AGE_BUCKETS,
    MAX_WARNINGS,
    MOUNT_WARNING,
    AgeBucket,
    AgedFileHook,
    AgeHook,
    FileHook,
    Held,
    Hooks,
    Item,
    ItemHook,
    ProgressHook,
    RootHook,
    RootHooks,
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
    "Held",
    "Hooks",
    "Item",
    "ItemHook",
    "ProgressHook",
    "RootHook",
    "RootHooks",
    "RootScan",
    "ScanResult",
    "ScanWarning",
    "Tally",
    "raise_fd_limit",
    "scan",
]

# Below this many entries in a root, a fork costs more than it saves. (apply_plan counts
# actions instead, each one a re-check and a removal: see apply.FORK_MIN_ACTIONS.)
FORK_MIN_ENTRIES = 2000
_PACE = 0x3FF  # every 1024 regular files: check for a stop, report progress
_EVERY = 1 << 64  # above any timestamp (int64 ns): every file goes to the file hook
_HASH_DIR, _SESSION_DIR, _GRADIO_DIR = Kind.HASH_DIR, Kind.SESSION_DIR, Kind.GRADIO_DIR
_CACHE = Category.CACHE
_FORMAT = 0o170000  # stat.S_IFMT(mode) is mode & this
_ABOVE_ANY, _BELOW_ANY = 1 << 127, -(1 << 127)  # beyond any st_mtime_ns (int64)


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
    """Walks one root (or one share of its entries) into a Counts: decides what each
    entry is (an item of which kind and category, or a nested .gradio walked as a root
    of its own), counts it (_ItemCounter) and hands it to the item hook."""

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
        self.hooks = hooks
        self.jobs = jobs
        self.auto_jobs = auto_jobs
        self.descent = Descent(root.path, warnings)
        self.counter = _ItemCounter(self.descent, counts, hooks)
        self.on_item = hooks.on_item

    def run(self) -> RootScan:
        own = self.hooks.on_root(self.root) if self.hooks.on_root is not None else None
        if own is not None:  # this root's entries straight to its own hooks: one call each
            self.counter.on_file, self.on_item = own.on_file, own.on_item
            if own.files_below is not None:
                self.counter.files_below = own.files_below
        try:
            fd = os.open(self.root.path, DIR_FLAGS)
        except OSError as exc:
            self.descent.failed("", exc)
            return self.counts.freeze(self.root)
        try:
            st = os.fstat(fd)
            self.descent.dev = st.st_dev
            self.counts.disk += st.st_blocks * 512
            if self.jobs > 1 and self.hooks.parallel_safe():
                _walk_shared(self, fd)
            else:
                self._container(fd, "", self.root.role)
        finally:
            os.close(fd)
        return self.counts.freeze(self.root)

    def _container(self, fd: int, rel: str, role: Role) -> None:
        """Classify each child of a root (or nested .gradio) and walk it as one item."""
        self._container_entries(fd, rel, role, self.descent.listing(fd, rel))

    def _container_entries(
        self, fd: int, rel: str, role: Role, entries: Iterable[os.DirEntry[str]]
    ) -> None:
        """Each entry as one item: what it is, what it holds (_ItemCounter), the item hook.
        The hot loop of a temp dir of hash folders (one pass per item): what an item
        costs is inlined here, every lookup made once per folder."""
        dev = self.descent.dev
        classify = classifier(role)
        apart = self.root.apart  # roots of their own (roots.nest_roots): walked apart
        prefix = f"{rel}/" if rel else ""
        counts = self.counts
        add_dir = counts.add_dir
        counter = self.counter
        folder = counter.folder
        age_of = self.hooks.age
        on_item = self.on_item
        for entry in entries:
            check_stop()
            name = entry.name
            child_rel = prefix + name
            if apart and child_rel in apart:
                continue
            try:  # an lstat (fstatat with AT_SYMLINK_NOFOLLOW) through the listing's descriptor
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            except OSError as exc:
                self.descent.failed(child_rel, exc)
                continue
            is_dir = st.st_mode & _FORMAT == S_IFDIR
            kind = classify(name, is_dir)
            # a nested .gradio on another device falls through as an item, which warns once
            if kind is _GRADIO_DIR and st.st_dev == dev:
                add_dir(st, Category.OTHER)
                sub = self.descent.open(fd, name, child_rel)
                if sub is not None:
                    try:
                        self._container(sub, child_rel, Role.GRADIO)
                    finally:
                        os.close(sub)
                continue
            # The item. Kind hashes in Python (Enum.__hash__): the common kind needs no lookup
            hash_dir = kind is _HASH_DIR
            cat = _CACHE if hash_dir else KIND_CATEGORY[kind]
            age = st.st_mtime_ns if age_of is None else age_of(st)
            if not is_dir:
                held = counter.file(child_rel, st, cat, age)
            else:  # a folder; one on another device is warned about, held as one entry
                held, empty = folder(fd, name, child_rel, st, age, cat, hash_dir)
                if empty and hash_dir:
                    cat = Category.LEFTOVER  # delete_cache removes files, never their folders
                add_dir(st, cat)
            if on_item is not None:  # numbers: no object built for prune's items
                on_item(child_rel, st, kind, cat, is_dir, held)
            if (hash_dir or kind is _SESSION_DIR) and counts.ranks(held[2]):
                item = Item.of(self.root.path, child_rel, st, kind, cat, is_dir, held)
                counts.rank(held[2], item)


class _ItemCounter:
    """What each item holds, counted in one pass over its tree: files, bytes and blocks
    (each inode once), the newest mtime and age. Each file goes to the file hook; every
    1024 files the walk checks for a stop and reports progress.

    The hot path: one pass per file of the tree. The leaf counting is written out twice,
    in `folder` (an item folder's own entries) and in `_entries` (a folder deeper in it),
    on purpose: a shared helper called per file costs about what the split walk saves.
    Change both together. `folder` also counts the common file (regular, one link, the
    item's category: nearly every file of a temp dir) without add_leaf, and adds what
    they come to to the root's counts once (Counts.add_files)."""

    def __init__(self, descent: Descent, counts: Counts, hooks: Hooks) -> None:
        self.descent = descent
        self.counts = counts
        self.age_of = hooks.age
        # where report() tells progress: the hook, or in a split walk the share's report
        self.tell: Report | None = hooks.progress
        self.on_file = _aged(hooks.on_file)
        self.files_below = _EVERY  # RootHooks.files_below: which files go to on_file

    def report(self) -> None:
        """Every 1024 files: stop if asked (in every process), and report progress."""
        check_stop()
        if self.tell is not None:
            self.tell(self.counts.files, self.counts.bytes)

    def file(self, rel: str, st: os.stat_result, cat: Category, age: int) -> Held:
        """An item that is not a folder: what it holds."""
        counts = self.counts
        if counts.add_leaf(st, cat):
            if self.on_file is not None:
                self.on_file(rel, st, cat, age)
            if not counts.files & _PACE:
                self.report()
            return (1, 0, st.st_size, st.st_mtime_ns, age, st.st_blocks * 512)
        return (0, 1, 0, st.st_mtime_ns, age, st.st_blocks * 512)

    def folder(
        self,
        parent_fd: int,
        name: str,
        rel: str,
        st: os.stat_result,
        age: int,
        cat: Category,
        hash_dir: bool,
    ) -> tuple[Held, bool]:
        """An item folder: what it holds (its own blocks included), and whether it is empty.
        A hash folder's own entries get their category by name (a staging copy is a
        leftover); deeper ones inherit their folder's."""
        newest = st.st_mtime_ns
        disk = st.st_blocks * 512  # allocated bytes of the item, each inode once
        frame = self.descent.enter(parent_fd, name, rel, st)
        if frame is None:
            return (0, 1, 0, newest, age, disk), False
        fd, it, _ = frame
        files = other = nbytes = 0  # nbytes: each inode once, whatever the order
        links: set[tuple[int, int]] = set()  # multiply-linked inodes seen in the item
        empty = True
        counts = self.counts
        add_leaf = counts.add_leaf
        on_file = self.on_file
        below = self.files_below
        age_of = self.age_of
        cut = counts.cut_ns
        age_files, age_bytes = counts.age_files, counts.age_bytes
        # The common file, counted here: regular, one link, of the item's category, and
        # not the one that takes the count to the next progress report. Its age bucket
        # is counted at once; the rest (how many, their bytes and blocks, oldest and
        # newest mtime) goes to `counts` in one add_files, before any other entry and
        # at the end. Any other entry is counted as before: add_leaf, or a folder's tree.
        n = n_bytes = n_blocks = 0
        n_oldest, n_newest = _ABOVE_ANY, _BELOW_ANY
        try:
            for entry in it:
                ename = entry.name
                if empty:  # a killed run's claims alone leave a hash folder empty
                    empty = hash_dir and ename[:1] == LEFTOVER_FILE_START and is_claim_name(ename)
                try:
                    est = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    other += self.descent.unstatable(f"{rel}/{ename}", exc)
                    continue
                mtime = est.st_mtime_ns
                if mtime > newest:
                    newest = mtime
                if age_of is None:
                    eage = mtime  # and the item's age is its newest mtime: set at the end
                else:
                    eage = age_of(est)
                    if eage > age:
                        age = eage
                fmt = est.st_mode & _FORMAT
                if (
                    fmt == S_IFREG
                    and est.st_nlink == 1
                    and (counts.files + n + 1) & _PACE
                    and not (hash_dir and ename[:1] == LEFTOVER_FILE_START)
                ):
                    size = est.st_size
                    i = 0
                    while mtime < cut[i]:
                        i += 1
                    age_files[i] += 1
                    age_bytes[i] += size
                    n += 1
                    n_bytes += size
                    n_blocks += est.st_blocks
                    if mtime < n_oldest:
                        n_oldest = mtime
                    if mtime > n_newest:
                        n_newest = mtime
                    if on_file is not None and eage < below:
                        on_file(f"{rel}/{ename}", est, cat, eage)
                    continue
                if n:  # what counts holds, before anything else is added to it
                    counts.add_files(cat, n, n_bytes, n_blocks, n_oldest, n_newest)
                    files += n
                    nbytes += n_bytes
                    disk += n_blocks * 512
                    n = n_bytes = n_blocks = 0
                if fmt == S_IFDIR:
                    empty = False  # a folder, whatever its name, is no claim
                    ecat = category_in_hash_dir(ename, True, 1) if hash_dir else cat
                    tree_below = below if ecat is cat else _EVERY  # another category: all
                    held = (files, other, nbytes, newest, age, disk)
                    files, other, nbytes, newest, age, disk = self._tree(
                        fd, ename, f"{rel}/{ename}", est, ecat, links, held, tree_below
                    )
                    continue
                if hash_dir and ename[:1] == LEFTOVER_FILE_START:
                    ecat = category_in_hash_dir(ename, False, 1)
                else:
                    ecat = cat
                if add_leaf(est, ecat):
                    files += 1
                    if est.st_nlink == 1:
                        nbytes += est.st_size
                        disk += est.st_blocks * 512
                    elif (est.st_dev, est.st_ino) not in links:
                        links.add((est.st_dev, est.st_ino))
                        nbytes += est.st_size
                        disk += est.st_blocks * 512
                    if on_file is not None and (
                        eage < below or est.st_nlink > 1 or ecat is not cat
                    ):
                        on_file(f"{rel}/{ename}", est, ecat, eage)
                    if not counts.files & _PACE:
                        self.report()
                else:
                    other += 1
                    disk += est.st_blocks * 512
        except OSError as exc:  # the listing itself failed part-way (EIO, ESTALE)
            self.descent.failed(rel, exc)
            other += 1
        finally:
            close(frame)
        if n:
            counts.add_files(cat, n, n_bytes, n_blocks, n_oldest, n_newest)
            files += n
            nbytes += n_bytes
            disk += n_blocks * 512
        if age_of is None:
            age = newest  # an age is an mtime: the newest of the item's, as `newest` is
        return (files, other, nbytes, newest, age, disk), empty

    def _tree(
        self,
        parent_fd: int,
        name: str,
        rel: str,
        st: os.stat_result,
        cat: Category,
        links: set[tuple[int, int]],
        held: Held,
        below: int,
    ) -> Held:
        """`held` (the item's so far) with a folder inside the item added, and everything
        below it, each entry of the folder's category: its own blocks too, and the newest
        mtime and age. Depth first through the open folders on a stack, never by Python's
        recursion: depth is limited only by open descriptors.
        `below`: which files go to the file hook (RootHooks.files_below)."""
        files, other, nbytes, newest, age, disk = held
        disk += st.st_blocks * 512
        first = self._subdir(parent_fd, name, rel, st, cat)
        if first is None:
            return (files, other + 1, nbytes, newest, age, disk)
        held = (files, other, nbytes, newest, age, disk)
        stack = [first]
        try:
            while stack:
                held, child = self._entries(stack[-1], cat, links, held, below)
                if child is None:
                    close(stack[-1])
                    stack.pop()
                else:
                    stack.append(child)
        finally:
            for frame in stack:  # what an interruption left open
                close(frame)
        return held

    def _entries(
        self, frame: Frame, cat: Category, links: set[tuple[int, int]], held: Held, below: int
    ) -> tuple[Held, Frame | None]:
        """`held` with an open folder's entries added, up to its first subfolder that can
        be walked: that one comes back open, and the folder's listing goes on from there."""
        dfd, it, drel = frame
        files, other, nbytes, newest, newest_age, disk = held
        counts = self.counts
        add_leaf = counts.add_leaf
        on_file = self.on_file
        age_of = self.age_of
        child: Frame | None = None
        # The leaf counting here repeats the item folder's own loop (see the class): inlined.
        try:
            for entry in it:
                ename = entry.name
                try:
                    est = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    other += self.descent.unstatable(f"{drel}/{ename}", exc)
                    continue
                mtime = est.st_mtime_ns
                if mtime > newest:
                    newest = mtime
                age = mtime if age_of is None else age_of(est)
                if age > newest_age:
                    newest_age = age
                if S_ISDIR(est.st_mode):
                    disk += est.st_blocks * 512
                    child = self._subdir(dfd, ename, f"{drel}/{ename}", est, cat)
                    if child is not None:
                        break
                    other += 1
                elif add_leaf(est, cat):
                    files += 1
                    if est.st_nlink == 1:
                        nbytes += est.st_size
                        disk += est.st_blocks * 512
                    elif (est.st_dev, est.st_ino) not in links:
                        links.add((est.st_dev, est.st_ino))
                        nbytes += est.st_size
                        disk += est.st_blocks * 512
                    if on_file is not None and (age < below or est.st_nlink > 1):
                        on_file(f"{drel}/{ename}", est, cat, age)
                    if not counts.files & _PACE:
                        self.report()
                else:
                    other += 1
                    disk += est.st_blocks * 512
        except OSError as exc:  # the listing itself failed part-way (EIO, ESTALE)
            self.descent.failed(drel, exc)
            other += 1
        return (files, other, nbytes, newest, newest_age, disk), child

    def _subdir(
        self, parent_fd: int, name: str, rel: str, st: os.stat_result, cat: Category
    ) -> Frame | None:
        """Count a folder inside an item, and open it to walk (see Descent.enter)."""
        self.counts.add_dir(st, cat)
        return self.descent.enter(parent_fd, name, rel, st)


def _aged(hook: FileHook | None) -> AgedFileHook | None:
    """Hooks.on_file as a root's own file hook is called (the file's age left out)."""
    if hook is None:
        return None

    def on_file(rel: str, st: os.stat_result, category: Category, _age: int) -> None:
        hook(rel, st, category)

    return on_file


def _count(fd: int, most: int) -> int:
    """How many entries the folder has, counting up to `most` (0 if it cannot be read:
    the walk then says why)."""
    try:
        own = open_at(fd, ".", DIR_FLAGS)
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
        walker._container_entries(fd, "", root.role, walker.descent.listing(fd, ""))
        return

    def work(share: Share) -> _Counted | None:
        if share.index == 0:  # here, in the parent: counts go straight into the walker's
            walker.counter.tell = share.report
            entries = walker.descent.listing(fd, "", 0, jobs)
            walker._container_entries(fd, "", root.role, entries)
            return None
        # the share's own warnings only: the parent caps and counts the sum
        other = _RootWalker(root, walker.counts.fresh(), Warnings(), hooks)
        other.descent.dev, other.counter.tell = walker.descent.dev, share.report
        other.counter.on_file, other.on_item = walker.counter.on_file, walker.on_item  # its own
        other.counter.files_below = walker.counter.files_below
        entries = other.descent.listing(fd, "", share.index, jobs)
        other._container_entries(fd, "", root.role, entries)
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
