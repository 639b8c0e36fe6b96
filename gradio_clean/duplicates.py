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

Safety, since this runs as root in a world-writable /tmp (the reading itself is
in hashing.py: fd-based, no symlink followed, no FIFO waited on, only the very
inode that was scanned read):
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

Speed: both cores. Most files are small, so the cost is system calls and the
Python around them, not sha256; threads would only pass the GIL back and forth.
So the size groups are dealt out, by expected cost, to `workers` forked
processes (workers.py), each given its share packed as bytes and sending back,
per inode, only where it ends up (group, paths left, digest); this process
waits, so that neither it nor they write to the pages they share. A worker
that dies costs time, not correctness: its share is hashed here.

Memory: a size group is a list of the caller's candidates; its inode objects
exist only while its batch is hashed.
"""

from __future__ import annotations

import os
import pickle
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import cast

from gradio_clean.folders import Folders
from gradio_clean.gcpause import gc_paused
from gradio_clean.hashing import (
    BUFFER_SIZE,
    CHANGED,
    DENIED,
    FOLDER_SWAPPED,
    NOT_REGULAR,
    OPEN_FLAGS,
    PARTIAL_SIZE,
    SYMLINK,
    VANISHED,
    Inode,
    Reader,
    Warnings,
    batches,
    describe,
)
from gradio_clean.options import Keep as Keep  # re-exported: duplicates.Keep keeps working
from gradio_clean.workers import Share, available_jobs, check_stop, run_shares

__all__ = [
    "BUFFER_SIZE",
    "CHANGED",
    "DENIED",
    "FOLDER_SWAPPED",
    "FORK_MIN_FILES",
    "NOT_REGULAR",
    "OPEN_FLAGS",
    "PARTIAL_SIZE",
    "SYMLINK",
    "VANISHED",
    "Candidate",
    "DuplicateReport",
    "DuplicateSet",
    "Keep",
    "find_duplicates",
]

FORK_MIN_FILES = 256  # fewer files to read than this: one process (a fork costs ~10 ms)
FILE_COST = 48 << 10  # one file's syscalls and Python cost about as much as hashing 48 KiB


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


def _path_key(path: str) -> bytes:
    """Order paths by their bytes, as `ls` in the C locale does, whatever their encoding."""
    return os.fsencode(path)


def _size_groups(candidates: Iterable[Candidate]) -> list[list[Candidate]]:
    """Candidates of one size, owner, group and mode, where there are two or more.

    Only candidates: the objects of a group's inodes are made when it is hashed
    (`_inodes`) and let go when it is done, so memory holds a few batches of them.
    """
    by_size: dict[int, list[Candidate]] = {}
    for c in candidates:
        if c.size > 0:
            group = by_size.get(c.size)
            if group is None:
                by_size[c.size] = [c]
            else:
                group.append(c)
    out: list[list[Candidate]] = []
    for group in by_size.values():
        if len(group) < 2:
            continue
        owners: dict[tuple[int, int, int], list[Candidate]] = {}
        for c in group:  # never a set across owners, groups or modes
            owners.setdefault((c.uid, c.gid, c.mode), []).append(c)
        out += [g for g in owners.values() if len(g) > 1]
    return out


def _inodes(cands: list[Candidate], warnings: Warnings) -> list[Inode]:
    """A size group's inodes, if two or more: paths sharing (dev, ino) are one inode.

    Deterministic (the candidates' order), so a worker's indices name the same inodes here.
    """
    inodes: dict[tuple[int, int], Inode] = {}
    for c in cands:
        node = inodes.get((c.dev, c.ino))
        if node is None:
            inodes[(c.dev, c.ino)] = Inode(c)
        elif c.mtime_ns != node.first.mtime_ns:  # two scans of one inode disagree
            warnings.append((c.path, CHANGED))
        elif all(c.path != x.path for x in node.cands):  # a path given twice counts once
            node.cands.append(c)
    if len(inodes) < 2:
        return []
    for node in inodes.values():
        if len(node.cands) > 1:
            node.cands.sort(key=lambda c: _path_key(c.path))
    return list(inodes.values())


def _pick(nodes: Sequence[Inode], keep: Keep) -> Inode:
    """The newest (or oldest) inode; ties go to the byte-wise smallest path, so runs agree."""
    sign = -1 if keep == Keep.NEWEST else 1
    best = min(sign * n.first.mtime_ns for n in nodes)
    tied = [n for n in nodes if sign * n.first.mtime_ns == best]
    if len(tied) == 1:
        return tied[0]
    return min(tied, key=lambda n: _path_key(n.cands[0].path))


def _recheck_links(node: Inode, warnings: Warnings) -> None:
    """The paths of an inode that were never opened must still name it (lstat, no follow)."""
    kept = node.cands[:1]
    first = node.first
    for c in node.cands[1:]:
        try:
            st = os.lstat(c.path)
        except OSError as exc:
            warnings.append((c.path, describe(exc)))
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (first.dev, first.ino):
            kept.append(c)
        else:
            warnings.append((c.path, CHANGED))
    node.cands = kept


def _weight(group: list[Candidate]) -> int:
    return len(group) * (FILE_COST + group[0].size)


def _deal(size_groups: list[list[Candidate]], shares: int) -> list[list[int]]:
    """Size groups (by index) dealt to `shares` processes, the costliest first, each to the
    least loaded so far; within a share they keep the order of size_groups."""
    order = sorted(range(len(size_groups)), key=lambda i: _weight(size_groups[i]), reverse=True)
    loads = [0] * shares
    dealt: list[list[int]] = [[] for _ in range(shares)]
    for i in order:
        k = loads.index(min(loads))
        dealt[k].append(i)
        loads[k] += _weight(size_groups[i])
    return [sorted(d) for d in dealt if d]


def _batches_of(size_groups: list[list[Candidate]], share: list[int]) -> Iterator[Sequence[int]]:
    return batches(share, lambda i: len(size_groups[i]), lambda i: _weight(size_groups[i]))


def _hash_batch(
    reader: Reader, batch: Sequence[int], groups: list[list[Candidate]]
) -> list[tuple[int, list[Inode], list[list[Inode]]]]:
    """(size group index, its inodes, its inodes with the same full hash) for a batch."""
    pairs = [(i, _inodes(g, reader.warnings)) for i, g in zip(batch, groups, strict=True)]
    pairs = [(i, nodes) for i, nodes in pairs if nodes]
    done = reader.hash_batch([nodes for _, nodes in pairs])
    return [(i, nodes, subs) for (i, nodes), subs in zip(pairs, done, strict=True)]


def _hash_here(
    reader: Reader, size_groups: list[list[Candidate]], share: list[int]
) -> list[list[Inode]]:
    """Hash a share in this process; each size group is let go once done."""
    found: list[list[Inode]] = []
    for batch in _batches_of(size_groups, share):
        for _, _, subs in _hash_batch(reader, batch, [size_groups[i] for i in batch]):
            found += subs
        for i in batch:
            size_groups[i] = []
    return found


_Packed = list[tuple[Sequence[int], bytes]]  # batches: size group indices, their candidates


def _pack(size_groups: list[list[Candidate]], share: list[int]) -> _Packed:
    """A worker's share as one pickle per batch, made before the fork.

    A worker that read the candidate objects themselves would write to every page
    holding them (reference counts) and so copy them all: at 200k files ~100 MB
    more across the two processes. Reading a few bytes objects copies nothing.
    """
    packed: _Packed = []
    for batch in _batches_of(size_groups, share):
        rows = [
            [
                (c.path, c.dev, c.ino, c.size, c.mtime_ns, c.uid, c.gid, c.mode, c.ctime_ns)
                for c in g
            ]
            for g in (size_groups[i] for i in batch)
        ]
        packed.append((batch, pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)))
    return packed


_Found = list[
    list[tuple[int, int, int, bytes]]
]  # groups of (size group, inode, paths left, digest)


def _hash_remote(folders: Folders, packed: _Packed) -> tuple[_Found, Warnings, int]:
    """Hash a packed share in a forked worker; what it found, as indices the parent applies."""
    reader = Reader(folders)
    found: _Found = []
    for batch, blob in packed:
        groups = [[Candidate(*row) for row in g] for g in pickle.loads(blob)]  # noqa: S301
        for i, nodes, subs in _hash_batch(reader, batch, groups):
            where = {id(node): k for k, node in enumerate(nodes)}
            found += [[(i, where[id(n)], len(n.cands), n.digest) for n in sub] for sub in subs]
    return found, reader.warnings, reader.read


def _apply(size_groups: list[list[Candidate]], found: _Found) -> list[list[Inode]]:
    """A worker's findings on this process's inodes: the same paths dropped, the digests."""
    out: list[list[Inode]] = []
    made: dict[int, list[Inode]] = {}
    for sub in found:
        nodes = []
        for i, k, left, digest in sub:
            if i not in made:
                made[i] = _inodes(size_groups[i], [])  # the worker reported its warnings
            node = made[i][k]
            del node.cands[: len(node.cands) - left]  # failed paths go from the front
            node.digest = digest
            nodes.append(node)
        out.append(nodes)
    return out


def _hash_all(
    reader: Reader, size_groups: list[list[Candidate]], workers: int
) -> list[list[Inode]]:
    """Groups of inodes with the same full hash, from `workers` forked processes (this one
    waits), or from this one alone for a few files or workers=1."""
    files = sum(len(g) for g in size_groups)
    if workers < 2 or files < FORK_MIN_FILES:
        return _hash_here(reader, size_groups, list(range(len(size_groups))))
    shares = _deal(size_groups, workers)
    packed = [_pack(size_groups, s) for s in shares]

    def work(share: Share) -> object:
        if share.index == 0:
            # This process's part while the workers hash: nothing, so it writes to no
            # page they share with it (each such write would copy the page).
            return None
        if share.forked:
            return _hash_remote(reader.folders, packed[share.index - 1])
        return _hash_here(reader, size_groups, shares[share.index - 1])  # its worker died

    results = run_shares(len(shares) + 1, work)[1:]
    packed.clear()  # the pickled shares: let them go before the sets are built
    final: list[list[Inode]] = []
    for result in results:
        if result is None:  # stopping: run_shares left a dead worker's share undone
            check_stop()
            continue
        if isinstance(result, list):  # hashed here after its worker died
            final += cast(list[list[Inode]], result)
            continue
        found, warnings, read = cast(tuple[_Found, Warnings, int], result)
        final += _apply(size_groups, found)
        reader.warnings += warnings
        reader.read += read
    return final


def find_duplicates(
    candidates: Iterable[Candidate],
    *,
    keep: Keep = Keep.NEWEST,
    verify: bool = False,
    workers: int | None = None,
    root: str | None = None,
) -> DuplicateReport:
    """Group the candidates by content; one DuplicateSet per content held by two inodes or more.

    Only files of the same owner, group and mode are compared. `keep` picks the
    copy that stays: the newest mtime by default, "oldest" to flip it; ties go to
    the smallest path by bytes. Other paths of the kept inode are neither kept nor
    extras (they cost nothing); every path of every other inode is an extra. Sets
    come sorted by the kept path. `root`: the folder every candidate lies in; each
    file is then opened through descriptors walked down from it (folders.py).
    `workers`: processes that hash (None: one per available core).
    """
    if keep not in ("newest", "oldest"):
        raise ValueError(f"keep must be 'newest' or 'oldest', not {keep!r}")
    if workers is None:
        workers = available_jobs()
    if workers < 1:
        raise ValueError("workers must be at least 1")
    folders = Folders(root, OPEN_FLAGS)
    try:
        with gc_paused():
            return _find(candidates, keep, verify, workers, folders)
    finally:
        folders.close()


def _find(
    candidates: Iterable[Candidate], keep: Keep, verify: bool, workers: int, folders: Folders
) -> DuplicateReport:
    warnings: Warnings = []
    size_groups = _size_groups(candidates)
    reader = Reader(folders)
    final = _hash_all(reader, size_groups, workers)
    del size_groups
    hashed = reader.read
    reader.read = 0
    if verify:
        final = _verified(final, keep, reader)
    warnings += reader.warnings
    sets = [_build(g, keep, warnings) for g in final]
    sets.sort(key=lambda s: _path_key(s.keep.path))
    return DuplicateReport(tuple(sets), tuple(warnings), hashed, reader.read)


def _verified(groups: list[list[Inode]], keep: Keep, reader: Reader) -> list[list[Inode]]:
    """Byte-compare every group against its keep; a keep that fails is replaced and retried."""
    done: list[list[Inode]] = []
    while groups:
        retry: list[list[Inode]] = []
        for g in groups:
            check_stop()
            k = _pick(g, keep)
            others = [n for n in g if n is not k]
            reader.verify(k, others)
            alive = [n for n in others if n.digest]
            if k.digest:
                if alive:
                    done.append([k, *alive])
            elif len(alive) > 1:
                retry.append(alive)
        groups = retry
    return done


def _build(group: list[Inode], keep: Keep, warnings: Warnings) -> DuplicateSet:
    """Freeze a group; each of its two or more inodes has at least its opened path."""
    for node in group:
        if len(node.cands) > 1:
            _recheck_links(node, warnings)
    kept = _pick(group, keep)
    extras = [c for n in group if n is not kept for c in n.cands]
    extras.sort(key=lambda c: _path_key(c.path))
    return DuplicateSet(kept.cands[0], tuple(extras), kept.digest.hex(), kept.first.size)
