"""Reading and hashing for duplicates.py: one process's share of the size groups.

Each file is opened with O_NOFOLLOW (a symlink fails with ELOOP and is never
followed) and O_NONBLOCK (a FIFO opens at once instead of waiting for a writer;
a socket fails with ENXIO), relative to its folder's descriptor (folders.py), and
fstat'ed before any byte is read: it must be a regular file with the dev, ino,
size, mtime, owner and mode the scan saw, or it is dropped with a warning. Only
the very inode that was scanned is read, and nothing outside the root is opened.

A size group goes through every stage here before the next group starts: heads
(the first PARTIAL_SIZE bytes; the whole file if it is no bigger), then, for
heads that match, the rest of the file through the fd that read the head, with
the head's hash object resumed. Each batch first opens its files and asks the
kernel to start reading them (POSIX_FADV_WILLNEED), so a cold cache serves a
whole batch at once (about 3x faster than one file after the other, measured).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import mmap
import os
import stat
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeVar

from gradio_clean.folders import Folders, NotAFolder
from gradio_clean.workers import check_stop

if TYPE_CHECKING:
    from hashlib import _Hash

# jdupes reads 4 KiB. On the bench's 50k tree (issue 12) a 4 KiB head reads 313 MB where
# 16 KiB reads 336 (the floor, every copy read whole, is 249), but sends 9,942 files to a
# second read instead of 1,561; a suffix hash before the whole file saved nothing there
# (the heads had already told apart every large file they could). So: 16 KiB, no suffix.
PARTIAL_SIZE = 16 * 1024
BUFFER_SIZE = 1 << 20
BATCH_FILES = 64  # files opened ahead at once, well under ulimit -n
BATCH_BYTES = 16 << 20  # what is asked for ahead must not crowd out the page cache

# A read that fails with EAGAIN rather than wait for the disk (Linux 4.14+; 0: not asked)
_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0)
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

Warnings = list[tuple[str, str]]
DIGEST_SIZE = hashlib.sha256().digest_size
_T = TypeVar("_T")


Want = tuple[int, int, int, int, int, int, int]  # ino, mtime_ns, size, dev, mode, uid, gid


class Inode:
    """One file on disk and every path naming it, as pool indices (duplicates.Pool); mutable,
    private to a run, and made only while its size group is hashed or its set is built."""

    __slots__ = ("cands", "digest", "fd", "first", "hasher", "size", "want")

    def __init__(self, first: int, want: Want) -> None:
        self.cands = [first]  # cands[0] is the path that is opened; paths that fail go
        self.first = first  # the path the scan saw it by first
        self.want = want  # the scan's view of the inode (see _same_file)
        self.size = want[2]
        self.digest = b""  # partial, then full; b"" once the file dropped out
        self.hasher: _Hash | None = None  # the head's hash state, for a file > PARTIAL_SIZE
        self.fd = -1  # held open from the head to the tail of a large file


def describe(exc: OSError) -> str:
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


def _same_file(st: os.stat_result, want: Want) -> bool:
    """The scanned inode with the size, mtime, owner and mode the scan saw.

    Not ctime: a link added or removed moves it without touching the content. The plan
    records the scan's ctime, and apply checks it on both copies before it links or
    deletes, so a rewrite that restored size and mtime is caught there.
    """
    return (
        st.st_ino,
        st.st_mtime_ns,
        st.st_size,
        st.st_dev,
        st.st_mode,
        st.st_uid,
        st.st_gid,
    ) == want


def _prefetch(fd: int, offset: int, length: int) -> None:
    """Queue the reads of a byte range without waiting for them (a cold cache)."""
    with contextlib.suppress(OSError):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)


def batches(
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


def split(nodes: Iterable[Inode]) -> list[list[Inode]]:
    """Regroup by digest (within one size), keeping groups where a copy could still go."""
    groups: dict[bytes, list[Inode]] = {}
    for node in nodes:
        if node.digest:
            groups.setdefault(node.digest, []).append(node)
    return [g for g in groups.values() if len(g) > 1]


class Found:
    """Groups of inodes with the same full hash, flat: a few bytes an inode and no object,
    which is what a worker sends back. `ints` holds, for each group, its inode count, then
    for each inode the pool index it was first seen by, its count of paths left and their
    indices; `digests` their digests, DIGEST_SIZE bytes each, in the same order."""

    __slots__ = ("digests", "ints")

    def __init__(self) -> None:
        self.ints = array("Q")
        self.digests = bytearray()

    def add(self, nodes: Sequence[Inode]) -> None:
        ints = self.ints
        ints.append(len(nodes))
        for node in nodes:
            ints.append(node.first)
            ints.append(len(node.cands))
            ints.extend(node.cands)
            self.digests += node.digest

    def extend(self, other: Found) -> None:
        self.ints.extend(other.ints)
        self.digests += other.digests

    def groups(self, want: Callable[[int], Want]) -> Iterator[list[Inode]]:
        """Each group's inodes again, made one group at a time (`want`: Pool.want)."""
        ints, digests = self.ints, self.digests
        at = d = 0
        while at < len(ints):
            nodes = []
            for _ in range(ints[at]):
                first, paths = ints[at + 1], ints[at + 2]
                node = Inode(first, want(first))
                node.cands = list(ints[at + 3 : at + 3 + paths])
                node.digest = bytes(digests[d : d + DIGEST_SIZE])
                nodes.append(node)
                at += 2 + paths
                d += DIGEST_SIZE
            at += 1
            yield nodes


def recheck_links(node: Inode, path_of: Callable[[int], str], warnings: Warnings) -> None:
    """The paths of an inode that were never opened must still name it (lstat, no follow)."""
    kept = node.cands[:1]
    ino, dev = node.want[0], node.want[3]
    for c in node.cands[1:]:
        path = path_of(c)
        try:
            st = os.lstat(path)
        except OSError as exc:
            warnings.append((path, describe(exc)))
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (dev, ino):
            kept.append(c)
        else:
            warnings.append((path, CHANGED))
    node.cands = kept


class Reader:
    """One process's reading: its folders, its read buffer, its warnings and byte count.

    `path` gives the path of a pool index (an Inode's cands); `rel`, if given, the same
    path encoded and relative to the folders' root (Pool.key, when the pool's prefix is
    the root's), which is opened as it is (Folders.open_beneath) before `path` is made."""

    def __init__(
        self,
        folders: Folders,
        path: Callable[[int], str],
        rel: Callable[[int], bytes] | None = None,
    ) -> None:
        self.folders = folders
        self.path = path
        self.rel = rel
        self.warnings: Warnings = []
        self.read = 0
        self._buf: memoryview | None = None
        self._head = memoryview(bytearray(PARTIAL_SIZE + 1))
        self.nowait = _NOWAIT  # 0 once the filesystem refused a read that may not wait

    def buffer(self) -> memoryview:
        if self._buf is None:
            self._buf = memoryview(bytearray(BUFFER_SIZE))
        return self._buf

    def open_inode(self, node: Inode) -> int | None:
        """An fd on the scanned inode through the first path still naming it; None if none.

        Paths that fail are removed from the front of node.cands, with a warning.
        """
        cands = node.cands
        warnings = self.warnings
        rel = self.rel
        while cands:
            fd = -1 if rel is None else self.folders.open_beneath(rel(cands[0]))
            if fd < 0:  # no openat2, or it failed: the folder-by-folder way says why
                try:
                    fd = self.folders.open_file(self.path(cands[0]))
                except OSError as exc:
                    warnings.append((self.path(cands[0]), describe(exc)))
                    del cands[0]
                    continue
            try:
                st = os.fstat(fd)
            except OSError as exc:
                os.close(fd)
                warnings.append((self.path(cands[0]), describe(exc)))
                del cands[0]
                continue
            if stat.S_ISREG(st.st_mode) and _same_file(st, node.want):
                return fd
            os.close(fd)
            why = NOT_REGULAR if not stat.S_ISREG(st.st_mode) else CHANGED
            warnings.append((self.path(cands[0]), why))
            del cands[0]
        return None

    def drop(self, node: Inode, message: str) -> None:
        path = self.path
        self.warnings.extend((path(c), message) for c in node.cands)
        node.cands.clear()
        node.digest = b""
        node.hasher = None

    def open_ahead(self, nodes: Iterable[Inode]) -> None:
        """Open and check up to BATCH_FILES files; hash the heads the page cache holds
        and start reading the others (hash_head reads them)."""
        held = 0
        for node in nodes:
            if held >= BATCH_FILES:
                return
            fd = self.open_inode(node)
            if fd is not None:
                node.fd = fd
                held += 1
                if not self._cached_head(node):
                    _prefetch(fd, 0, min(node.size, PARTIAL_SIZE))

    def _cached_head(self, node: Inode) -> bool:
        """hash_head's work at once, if the page cache holds the whole head (a read with
        RWF_NOWAIT: one system call, where asking the kernel to read ahead and then
        reading costs two); False if it does not, and nothing was read.

        Only a read that ends where the scan's size says counts, as in hash_head: a
        short read (part of the head not cached, or the file shrank) leaves the file to
        hash_head's blocking read, which tells the two apart.
        """
        flags = self.nowait
        if not flags:
            return False
        size = node.size
        small = size <= PARTIAL_SIZE
        if small and size % mmap.PAGESIZE == 0:
            # a read that may not wait stops at the first page not cached: for a size on a
            # page boundary, the byte past it (proof the file did not grow) may be on such
            # a page (an O_DIRECT append since the fstat), and `size` bytes would pass
            return False
        head = self._head[: size + 1 if small else PARTIAL_SIZE]
        try:
            n = os.preadv(node.fd, [head], 0, flags)
        except OSError as exc:
            if exc.errno != errno.EAGAIN:  # EOPNOTSUPP: this filesystem never says
                self.nowait = 0
            return False
        if n != (size if small else PARTIAL_SIZE):
            return False
        self.read += n
        self._hashed_head(node, hashlib.sha256(head[:n]), small, True)
        return True

    def _hashed_head(self, node: Inode, h: _Hash, small: bool, held: bool) -> None:
        """The head's digest noted; a large file keeps the hash object, and its fd if it
        was opened ahead, for its tail."""
        node.digest = h.digest()  # digest() leaves h open for the rest of the file
        if small or not held:
            os.close(node.fd)
            node.fd = -1
        if not small:
            node.hasher = h

    def hash_head(self, node: Inode) -> None:
        """Hash the first PARTIAL_SIZE bytes, the whole file if it is no bigger.

        A large file's fd, if it was opened ahead, stays in node.fd for its tail. A
        head hashed already (open_ahead, from the page cache) is not read again.
        """
        if node.digest:
            return
        fd = node.fd
        held = fd >= 0
        if not held:
            opened = self.open_inode(node)
            if opened is None:
                return
            fd = opened
        node.fd = -1
        size = node.size
        small = size <= PARTIAL_SIZE
        try:
            # One byte more than a small file holds: a grown file shows in the same read.
            data = os.read(fd, size + 1 if small else PARTIAL_SIZE)
        except OSError as exc:
            os.close(fd)
            self.drop(node, describe(exc))
            return
        if len(data) != (size if small else PARTIAL_SIZE):
            os.close(fd)
            self.drop(node, CHANGED_WHILE_READ)
            return
        self.read += len(data)
        node.fd = fd
        self._hashed_head(node, hashlib.sha256(data), small, held)

    def open_tail(self, node: Inode, budget: int) -> int:
        """Make sure a large file with a matching head has an fd; start reading up to budget."""
        if node.fd < 0:
            fd = self.open_inode(node)
            if fd is None:
                node.digest = b""
                node.hasher = None
                return 0
            node.fd = fd
        ahead = min(node.size - PARTIAL_SIZE, budget)
        if ahead > 0:
            _prefetch(node.fd, PARTIAL_SIZE, ahead)
        return ahead

    def hash_tail(self, node: Inode) -> None:
        """Finish a large file's hash from where its head stopped."""
        h, fd = node.hasher, node.fd
        node.hasher, node.fd = None, -1
        if h is None or fd < 0:
            if fd >= 0:
                os.close(fd)
            node.digest = b""
            return
        buf = self.buffer()
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
            self.drop(node, describe(exc))
            return
        finally:
            os.close(fd)
            self.read += off - PARTIAL_SIZE
        if off != size:
            self.drop(node, CHANGED_WHILE_READ)
        else:
            node.digest = h.digest()

    def hash_group(self, group: list[Inode]) -> list[list[Inode]]:
        """All stages for one size group: heads, then the tails of heads that match."""
        for node in group:
            self.hash_head(node)
        heads = split(group)
        if group[0].size <= PARTIAL_SIZE:
            return heads
        done: list[list[Inode]] = []
        for same_head in heads:
            budget = BATCH_BYTES
            for node in same_head:
                budget -= self.open_tail(node, budget)
            for node in same_head:
                self.hash_tail(node)
            done += split(same_head)
        return done

    def hash_batch(self, groups: Sequence[list[Inode]]) -> list[list[list[Inode]]]:
        """One batch of size groups, its files opened and prefetched together; for each
        group, its inodes with the same full hash."""
        out: list[list[list[Inode]]] = []
        try:
            self.open_ahead(node for group in groups for node in group)
            for group in groups:
                check_stop()  # SIGINT or SIGTERM: no more reading
                out.append(self.hash_group(group))
        finally:
            for group in groups:  # heads that matched nothing, or an exception
                for node in group:
                    node.hasher = None
                    if node.fd >= 0:
                        os.close(node.fd)
                        node.fd = -1
        return out

    def verify(self, keep: Inode, others: list[Inode]) -> None:
        """Compare each other copy with the kept one, byte by byte; drop what differs.

        A keep that cannot be opened loses its digest: the caller picks another.
        """
        fd_keep = self.open_inode(keep)
        if fd_keep is None:
            keep.digest = b""
            return
        try:
            for node in others:
                fd = self.open_inode(node)
                if fd is None:
                    node.digest = b""
                    continue
                try:
                    same = _same_content(fd_keep, fd, keep.size)
                except OSError as exc:
                    self.drop(node, describe(exc))
                    continue
                finally:
                    os.close(fd)
                self.read += 2 * keep.size
                if not same:
                    self.drop(node, DIFFERS)
        finally:
            os.close(fd_keep)


def _same_content(fd_a: int, fd_b: int, size: int) -> bool:
    off = 0
    while off < size:
        a = os.pread(fd_a, BUFFER_SIZE, off)
        b = os.pread(fd_b, BUFFER_SIZE, off)
        if a != b or not a:
            return False
        off += len(a)
    return os.pread(fd_a, 1, off) == b"" and os.pread(fd_b, 1, off) == b""
