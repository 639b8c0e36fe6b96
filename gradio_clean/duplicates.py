"""Find files with identical content, in jdupes' stages, without trusting the tree.

Each stage is cheaper than the next and only its survivors go on: group by
size (an empty file is never a duplicate), collapse the paths of one inode
(hard links are one file, not copies), hash the first PARTIAL_SIZE bytes, hash
the whole content, and with `verify` compare byte by byte against the kept
copy. Most files are therefore read little or not at all. A file no bigger
than PARTIAL_SIZE is read once: its partial hash is its full hash. A larger
one resumes the partial hash object rather than reading its head twice.

Nothing here deletes. The result names the copy to keep and the extras; the
caller re-checks every path against its Candidate before acting on it.

Safety, since this runs as root in a world-writable /tmp:
- Each file is opened with O_NOFOLLOW (a symlink fails with ELOOP and is never
  followed) and O_NONBLOCK (a FIFO opens at once instead of waiting for a
  writer; a socket fails with ENXIO). The fd is fstat'ed before any byte is
  read: it must be a regular file with the dev, ino, size, mtime, owner and
  mode the scan saw, or it is dropped with a warning. Only the very inode that
  was scanned is read.
- Files are opened relative to their folder's descriptor, and folders are opened
  from the root one component at a time without following links (folders.py). A
  folder swapped for a symlink after the walk fails to open: nothing outside the
  root is ever opened, not even a FIFO (opening one releases a blocked writer).
- Only files with the same owner, group and mode are compared, so a set never
  spans two owners: linking across owners would let one user write another's
  file, and deleting across owners would let one user make another's vanish.
- O_NOATIME where the kernel allows it (our own files, or as root), so that
  hashing does not make a file look recently used to `--age-by atime`.
- A file that vanished, is unreadable or changed is a warning, never an error.

Hash: sha256. In a world-writable folder another user could craft two files
with the same md5 or sha1 and have one "deduplicated" into the other; sha256
has no known collision, and with SHA-NI it is also the fastest in hashlib
(1.8 GB/s here, blake2b 0.9).

Speed. Work goes in batches of a few size groups; each batch runs every stage
for its groups, so there is no barrier between stages and a file's tail is read
right after its head, through the fd that read the head. Each batch first opens
its files and asks the kernel to start reading them (POSIX_FADV_WILLNEED), so a
cold cache serves a whole batch at once (about 3x faster than reading one file
after the other, measured) from a single thread. Threads pay only where sha256
of a large buffer runs without the GIL: on small files two threads mostly hand
the GIL to each other around every short syscall, which measured no faster
than one thread (slower on a warm cache).
So the calling thread hashes the small files and a pool of `workers - 1`
threads the large ones; the calling thread then takes back pool batches that
have not started. Full reads go through one reusable buffer per thread.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import hashlib
import itertools
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from gradio_clean.folders import Folders, NotAFolder
from gradio_clean.options import Keep as Keep  # re-exported: duplicates.Keep keeps working
from gradio_clean.workers import check_stop

if TYPE_CHECKING:
    from hashlib import _Hash

PARTIAL_SIZE = 16 * 1024  # jdupes reads 4 KiB; 16 KiB finishes most thumbnails and JSON in one read
BUFFER_SIZE = 1 << 20
BATCH_FILES = 64  # files per pool task: one task per file costs more than a small file's hash
BATCH_BYTES = 16 << 20
POOL_MIN_SIZE = 64 << 10  # size groups of smaller files stay on the calling thread
MAX_HELD_FDS = 64  # per batch (so per thread): files opened ahead, well under ulimit -n

OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

VANISHED = "vanished before it could be read"
DENIED = "permission denied; not read"
SYMLINK = "is a symlink; not followed"
CHANGED = "changed since it was scanned"
NOT_REGULAR = "no longer a regular file (changed since it was scanned); not read"
CHANGED_WHILE_READ = "changed while it was read"
FOLDER_SWAPPED = "a folder on its way is no longer a folder (a symlink?); not followed"
OUTSIDE = "on another filesystem or outside the root; not read"
DIFFERS = "content differs from the kept copy (changed while it was read)"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Candidate:
    path: str  # absolute path (may contain surrogate-escaped non-UTF-8 bytes)
    dev: int
    ino: int
    size: int
    mtime_ns: int
    # Only files of one owner, group and mode can be duplicates: linking or deleting across
    # owners would hand one user's path to another's inode. ctime catches a rewrite that
    # restored size and mtime. The defaults match no real file, which is then dropped.
    uid: int = -1
    gid: int = -1
    mode: int = 0
    ctime_ns: int = 0

    @classmethod
    def from_stat(cls, path: str, st: os.stat_result) -> Candidate:
        """A candidate from the lstat the scan already made, so nothing is stat'ed twice."""
        return cls(
            path,
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_uid,
            st.st_gid,
            st.st_mode,
            st.st_ctime_ns,
        )


@dataclass(frozen=True)
class DuplicateSet:
    keep: Candidate
    extras: tuple[Candidate, ...]  # copies to delete or replace by a hard link to keep
    digest: str  # hex sha256 of the full content
    size: int

    @property
    def freed_bytes(self) -> int:
        """What deleting every extra frees: each extra inode once, whatever its path count."""
        return self.size * len({(c.dev, c.ino) for c in self.extras})


@dataclass(frozen=True)
class DuplicateReport:
    sets: tuple[DuplicateSet, ...]
    warnings: tuple[tuple[str, str], ...]  # (path, message): vanished, changed or unreadable
    bytes_hashed: int
    bytes_compared: int = 0  # read again by verify, both sides counted


class _Inode:
    """One file on disk and every candidate path naming it; mutable, private to a run."""

    __slots__ = ("cands", "dev", "digest", "fd", "first", "hasher", "ino", "mtime_ns", "size")

    def __init__(self, first: Candidate) -> None:
        self.cands = [first]  # cands[0] is the path that is opened
        self.first = first  # the scan's view of the inode: owner, mode and ctime too
        self.dev = first.dev
        self.ino = first.ino
        self.size = first.size
        self.mtime_ns = first.mtime_ns
        self.digest = b""  # partial, then full; b"" once the file dropped out
        self.hasher: _Hash | None = None  # the head's hash state, for a file > PARTIAL_SIZE
        self.fd = -1  # held open from the head to the tail of a large file


Warnings = list[tuple[str, str]]


@dataclass
class _Done:
    """What one pool task hands back; a list per task keeps warnings in a stable order."""

    warnings: Warnings
    read: int
    groups: list[list[_Inode]] = field(default_factory=list)


_local = threading.local()


def _buffer() -> memoryview:
    """One read buffer per thread, reused for every file it hashes."""
    buf: memoryview | None = getattr(_local, "buf", None)
    if buf is None:
        buf = memoryview(bytearray(BUFFER_SIZE))
        _local.buf = buf
    return buf


def _describe(exc: OSError) -> str:
    if isinstance(exc, NotAFolder):
        return FOLDER_SWAPPED
    if exc.errno == errno.ENOENT or exc.errno == errno.ENOTDIR:
        return VANISHED
    if exc.errno == errno.ELOOP:
        return SYMLINK
    if exc.errno in (errno.EACCES, errno.EPERM):
        return DENIED
    if exc.errno == errno.ENXIO:  # a socket (or a FIFO opened for writing)
        return NOT_REGULAR
    if exc.errno == errno.EXDEV:
        return OUTSIDE
    return f"could not be read: {exc.strerror}"


def _same_file(st: os.stat_result, node: _Inode) -> bool:
    """The scanned inode with the size, mtime, owner and mode the scan saw.

    Not ctime: a link added or removed moves it without touching the content. The plan
    records the scan's ctime, and apply checks it on both copies before it links or
    deletes, so a rewrite that restored size and mtime is caught there.
    """
    first = node.first
    return (
        st.st_ino == node.ino
        and st.st_mtime_ns == node.mtime_ns
        and st.st_size == node.size
        and st.st_dev == node.dev
        and st.st_mode == first.mode
        and st.st_uid == first.uid
        and st.st_gid == first.gid
    )


def _open_inode(node: _Inode, warnings: Warnings) -> int | None:
    """An fd on the scanned inode through the first path still naming it; None if none does.

    Paths that fail are removed from the node with a warning.
    """
    cands = node.cands
    folders: Folders = _local.folders
    while cands:
        path = cands[0].path
        try:
            fd = folders.open_file(path)
        except OSError as exc:
            warnings.append((path, _describe(exc)))
            del cands[0]
            continue
        try:
            st = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            warnings.append((path, _describe(exc)))
            del cands[0]
            continue
        if stat.S_ISREG(st.st_mode) and _same_file(st, node):
            return fd
        message = NOT_REGULAR if not stat.S_ISREG(st.st_mode) else CHANGED
        os.close(fd)
        warnings.append((path, message))
        del cands[0]
    return None


def _drop(node: _Inode, warnings: Warnings, message: str) -> None:
    warnings.extend((c.path, message) for c in node.cands)
    node.cands.clear()
    node.digest = b""
    node.hasher = None


def _prefetch(fd: int, offset: int, length: int) -> None:
    """Queue the reads of a byte range without waiting for them.

    One thread thus keeps a whole batch of reads in flight on a cold cache,
    which threads alone cannot do cheaply: on a warm cache they only pass the
    GIL back and forth around each short syscall.
    """
    with contextlib.suppress(OSError):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)


def _open_ahead(nodes: Iterable[_Inode], warnings: Warnings) -> None:
    """Open and check up to MAX_HELD_FDS files, and start reading their heads."""
    held = 0
    for node in nodes:
        if held >= MAX_HELD_FDS:
            return
        fd = _open_inode(node, warnings)
        if fd is not None:
            node.fd = fd
            held += 1
            _prefetch(fd, 0, min(node.size, PARTIAL_SIZE))


def _hash_head(node: _Inode, warnings: Warnings) -> int:
    """Hash the first PARTIAL_SIZE bytes, the whole file if it is no bigger; bytes read.

    A large file's fd, if it was opened ahead, stays in node.fd for its tail.
    """
    fd = node.fd
    held = fd >= 0
    if not held:
        opened = _open_inode(node, warnings)
        if opened is None:
            return 0
        fd = opened
    node.fd = -1
    size = node.size
    small = size <= PARTIAL_SIZE
    try:
        # One byte more than a small file holds: a grown file shows in the same read.
        data = os.read(fd, size + 1 if small else PARTIAL_SIZE)
    except OSError as exc:
        os.close(fd)
        _drop(node, warnings, _describe(exc))
        return 0
    if len(data) != (size if small else PARTIAL_SIZE):
        os.close(fd)
        _drop(node, warnings, CHANGED_WHILE_READ)
        return 0
    h = hashlib.sha256(data)
    node.digest = h.digest()  # digest() leaves h open for the rest of the file
    if small or not held:
        os.close(fd)
    else:
        node.fd = fd
    if not small:
        node.hasher = h
    return len(data)


def _open_tail(node: _Inode, warnings: Warnings, budget: int) -> int:
    """Make sure a large file with a matching head has an fd; start reading up to `budget`."""
    if node.fd < 0:
        fd = _open_inode(node, warnings)
        if fd is None:
            node.digest = b""
            node.hasher = None
            return 0
        node.fd = fd
    ahead = min(node.size - PARTIAL_SIZE, budget)
    if ahead > 0:
        _prefetch(node.fd, PARTIAL_SIZE, ahead)
    return ahead


def _hash_tail(node: _Inode, warnings: Warnings) -> int:
    """Finish a large file's hash from where its head stopped; bytes read."""
    h = node.hasher
    fd = node.fd
    node.hasher = None
    node.fd = -1
    if h is None or fd < 0:
        if fd >= 0:
            os.close(fd)
        node.digest = b""
        return 0
    buf = _buffer()
    size = node.size
    off = PARTIAL_SIZE
    try:
        while True:
            # Asking for a byte past the expected end confirms EOF without another read.
            want = min(len(buf), size - off + 1)
            n = os.preadv(fd, [buf[:want]], off)
            if n:
                h.update(buf[:n])
                off += n
            if n < want or off > size:
                break
    except OSError as exc:
        _drop(node, warnings, _describe(exc))
        return off - PARTIAL_SIZE
    finally:
        os.close(fd)
    if off != size:
        _drop(node, warnings, CHANGED_WHILE_READ)
    else:
        node.digest = h.digest()
    return off - PARTIAL_SIZE


def _hash_group(group: list[_Inode], warnings: Warnings) -> tuple[int, list[list[_Inode]]]:
    """All stages for one size group: heads, then the tails of heads that match; bytes read."""
    read = 0
    for node in group:
        read += _hash_head(node, warnings)
    heads = _split(group)
    if group[0].size <= PARTIAL_SIZE:
        return read, heads
    done: list[list[_Inode]] = []
    for same_head in heads:
        budget = BATCH_BYTES  # what is asked for ahead must not crowd out the page cache
        for node in same_head:
            budget -= _open_tail(node, warnings, budget)
        for node in same_head:
            read += _hash_tail(node, warnings)
        done += _split(same_head)
    return read, done


def _hash_groups(groups: Sequence[list[_Inode]]) -> _Done:
    """One batch of size groups: heads, then tails, with no barrier between batches."""
    warnings: Warnings = []
    read = 0
    out: list[list[_Inode]] = []
    try:
        _open_ahead((node for group in groups for node in group), warnings)
        for group in groups:
            check_stop()  # SIGINT or SIGTERM: no more reading
            n, done = _hash_group(group, warnings)
            read += n
            out += done
    finally:
        for group in groups:  # heads that matched nothing, or an exception
            for node in group:
                node.hasher = None
                if node.fd >= 0:
                    os.close(node.fd)
                    node.fd = -1
    return _Done(warnings, read, out)


def _same_content(fd_a: int, fd_b: int, size: int) -> bool:
    off = 0
    while off < size:
        a = os.pread(fd_a, BUFFER_SIZE, off)
        b = os.pread(fd_b, BUFFER_SIZE, off)
        if a != b or not a:
            return False
        off += len(a)
    return os.pread(fd_a, 1, off) == b"" and os.pread(fd_b, 1, off) == b""


def _verify(groups: Sequence[tuple[_Inode, list[_Inode]]]) -> _Done:
    """Compare each other copy with the kept one, byte by byte; drop what differs."""
    warnings: Warnings = []
    read = 0
    for keep, others in groups:
        fd_keep = _open_inode(keep, warnings)
        if fd_keep is None:
            keep.digest = b""  # the caller picks a new keep among the others
            continue
        try:
            for node in others:
                fd = _open_inode(node, warnings)
                if fd is None:
                    node.digest = b""
                    continue
                try:
                    same = _same_content(fd_keep, fd, keep.size)
                except OSError as exc:
                    _drop(node, warnings, _describe(exc))
                    continue
                finally:
                    os.close(fd)
                read += 2 * keep.size
                if not same:
                    _drop(node, warnings, DIFFERS)
        finally:
            os.close(fd_keep)
    return _Done(warnings, read)


def _batches(
    items: Sequence[_T], files: Callable[[_T], int], nbytes: Callable[[_T], int]
) -> Iterator[Sequence[_T]]:
    """Slices of about BATCH_FILES files or BATCH_BYTES of reading, whichever comes first."""
    start = 0
    count = total = 0
    for i, item in enumerate(items):
        count += files(item)
        total += nbytes(item)
        if count >= BATCH_FILES or total >= BATCH_BYTES:
            yield items[start : i + 1]
            start = i + 1
            count = total = 0
    if start < len(items):
        yield items[start:]


def _path_key(path: str) -> bytes:
    """Order paths by their bytes, as `ls` in the C locale does, whatever their encoding."""
    return os.fsencode(path)


def _collapse(candidates: Iterable[Candidate], warnings: Warnings) -> list[list[_Inode]]:
    """Groups of two or more inodes of one size, owner, group and mode; paths sharing
    (dev, ino) become one inode."""
    by_size: dict[tuple[int, int, int, int], list[Candidate]] = {}
    seen: set[str] = set()
    for c in candidates:
        if c.size <= 0 or c.path in seen:
            continue
        seen.add(c.path)
        key = (c.size, c.uid, c.gid, c.mode)  # never a set across owners, groups or modes
        group = by_size.get(key)
        if group is None:
            by_size[key] = [c]
        else:
            group.append(c)
    del seen
    groups: list[list[_Inode]] = []
    for cands in by_size.values():
        if len(cands) < 2:
            continue
        inodes: dict[tuple[int, int], _Inode] = {}
        for c in cands:
            node = inodes.get((c.dev, c.ino))
            if node is None:
                inodes[(c.dev, c.ino)] = _Inode(c)
            elif c.mtime_ns != node.mtime_ns:  # two scans of one inode disagree: trust neither
                warnings.append((c.path, CHANGED))
            else:
                node.cands.append(c)
        if len(inodes) < 2:
            continue
        for node in inodes.values():
            if len(node.cands) > 1:
                node.cands.sort(key=lambda c: _path_key(c.path))
        groups.append(list(inodes.values()))
    return groups


def _split(nodes: Iterable[_Inode]) -> list[list[_Inode]]:
    """Regroup by (size, digest), keeping groups where a copy could still be dropped."""
    groups: dict[tuple[int, bytes], list[_Inode]] = {}
    for node in nodes:
        if node.digest:
            groups.setdefault((node.size, node.digest), []).append(node)
    return [g for g in groups.values() if len(g) > 1]


def _pick(nodes: Sequence[_Inode], keep: Keep) -> _Inode:
    """The newest (or oldest) inode; ties go to the byte-wise smallest path, so runs agree."""
    sign = -1 if keep == Keep.NEWEST else 1
    return min(nodes, key=lambda n: (sign * n.mtime_ns, _path_key(n.cands[0].path)))


def _recheck_links(node: _Inode, warnings: Warnings) -> None:
    """The paths of an inode that were never opened must still name it (lstat, no follow)."""
    kept = node.cands[:1]
    for c in node.cands[1:]:
        try:
            st = os.lstat(c.path)
        except OSError as exc:
            warnings.append((c.path, _describe(exc)))
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (node.dev, node.ino):
            kept.append(c)
        else:
            warnings.append((c.path, CHANGED))
    node.cands = kept


class _Runner:
    """Runs batches on the calling thread and on a pool of workers - 1 threads."""

    def __init__(self, pool: ThreadPoolExecutor | None) -> None:
        self.pool = pool
        self.warnings: Warnings = []
        self.read = 0

    def run(
        self,
        fn: Callable[[Sequence[_T]], _Done],
        pooled: Sequence[Sequence[_T]],
        inline: Iterable[Sequence[_T]] = (),
    ) -> list[list[_Inode]]:
        """Run `inline` here while the pool runs `pooled`; then take back what has not started.

        Results (and so warnings) come in the same order whatever the pool did.
        """
        pool = self.pool
        if pool is None:
            return self._collect(map(fn, itertools.chain(inline, pooled)))
        futures = [pool.submit(fn, batch) for batch in pooled]
        done = [fn(batch) for batch in inline]
        late: dict[int, _Done] = {}
        for i in reversed(range(len(futures))):
            if futures[i].cancel():  # not started: run it here rather than wait for it
                late[i] = fn(pooled[i])
        done += [late[i] if i in late else f.result() for i, f in enumerate(futures)]
        return self._collect(done)

    def _collect(self, done: Iterable[_Done]) -> list[list[_Inode]]:
        groups: list[list[_Inode]] = []
        for d in done:
            self.warnings += d.warnings
            self.read += d.read
            groups += d.groups
        return groups


def _weight(group: list[_Inode]) -> int:
    return len(group) * group[0].size


def _hash_all(runner: _Runner, size_groups: list[list[_Inode]]) -> list[list[_Inode]]:
    """Groups of inodes with the same full hash; large files to the pool, small ones here."""
    large = [g for g in size_groups if g[0].size > POOL_MIN_SIZE]
    small = [g for g in size_groups if g[0].size <= POOL_MIN_SIZE]
    large.sort(key=_weight, reverse=True)  # the biggest work starts first
    pooled = list(_batches(large, len, _weight))
    return runner.run(_hash_groups, pooled, _batches(small, len, _weight))


def find_duplicates(
    candidates: Iterable[Candidate],
    *,
    keep: Keep = Keep.NEWEST,
    verify: bool = False,
    workers: int = 2,
    root: str | None = None,
) -> DuplicateReport:
    """Group the candidates by content; one DuplicateSet per content held by two inodes or more.

    Only files of the same owner, group and mode are compared. `keep` picks the
    copy that stays: the newest mtime by default, "oldest" to flip it; ties go to
    the smallest path by bytes. Other paths of the kept inode are neither kept nor
    extras (they cost nothing); every path of every other inode is an extra. Sets
    come sorted by the kept path. `root`: the folder every candidate lies in; each
    file is then opened through descriptors walked down from it (folders.py).
    """
    if keep not in ("newest", "oldest"):
        raise ValueError(f"keep must be 'newest' or 'oldest', not {keep!r}")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    folders = Folders(root, OPEN_FLAGS)
    try:
        with _gc_paused():
            return _find(candidates, keep, verify, workers, folders)
    finally:
        folders.close()


def _use_folders(folders: Folders) -> None:
    """Each thread that opens files (the caller and the pool's) finds the run's folders here."""
    _local.folders = folders


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: a run makes no cycles, only an object per inode.

    On 200k candidates the collector's repeated passes over them took 60% of
    the grouping time (measured).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _find(
    candidates: Iterable[Candidate], keep: Keep, verify: bool, workers: int, folders: Folders
) -> DuplicateReport:
    warnings: Warnings = []
    size_groups = _collapse(candidates, warnings)
    _use_folders(folders)
    pool = (
        ThreadPoolExecutor(
            workers - 1,
            thread_name_prefix="dupes",
            initializer=_use_folders,
            initargs=(folders,),
        )
        if workers > 1
        else None
    )
    try:
        runner = _Runner(pool)
        final = _hash_all(runner, size_groups)
        del size_groups
        hashed = runner.read
        runner.read = 0
        if verify:
            final = _verified(final, keep, runner)
        warnings += runner.warnings
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)  # Ctrl-C must not wait for queued batches
        _local.folders = None
    sets = [_build(g, keep, warnings) for g in final]
    sets.sort(key=lambda s: _path_key(s.keep.path))
    return DuplicateReport(tuple(sets), tuple(warnings), hashed, runner.read)


def _verified(groups: list[list[_Inode]], keep: Keep, runner: _Runner) -> list[list[_Inode]]:
    """Byte-compare every group against its keep; a keep that fails is replaced and retried."""
    done: list[list[_Inode]] = []
    while groups:
        pairs = []
        for g in groups:
            k = _pick(g, keep)
            pairs.append((k, [n for n in g if n is not k]))
        runner.run(
            _verify,
            list(_batches(pairs, lambda p: 1 + len(p[1]), lambda p: 2 * p[0].size * len(p[1]))),
        )
        retry: list[list[_Inode]] = []
        for k, others in pairs:
            alive = [n for n in others if n.digest]
            if k.digest:
                if alive:
                    done.append([k, *alive])
            elif len(alive) > 1:
                retry.append(alive)
        groups = retry
    return done


def _build(group: list[_Inode], keep: Keep, warnings: Warnings) -> DuplicateSet:
    """Freeze a group; each of its two or more inodes has at least its opened path."""
    for node in group:
        if len(node.cands) > 1:
            _recheck_links(node, warnings)
    kept = _pick(group, keep)
    extras = [c for n in group if n is not kept for c in n.cands]
    extras.sort(key=lambda c: _path_key(c.path))
    return DuplicateSet(kept.cands[0], tuple(extras), kept.digest.hex(), kept.size)
