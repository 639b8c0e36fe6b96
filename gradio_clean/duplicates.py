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
processes (workers.py), each reading its share from the columns it inherited and
sending back, per inode of a set, only pool indices (the path it was scanned by,
the paths left) and its digest, in flat arrays (hashing.Found); this process
waits, so that neither it nor they write to the pages they share. A worker that
dies costs time, not correctness: its share is hashed here.

Memory (issue 12): the candidates come in columns (`Pool`, pool.py), and a size
group is a slice of one array of indices. A batch's Inode objects (pool indices,
no Candidate) exist only while it is hashed, a set's only while it is built; the
sets are arrays of pool indices (`Sets`, ~20 bytes a file of a set), from which
the rules write their rows. Candidate and DuplicateSet objects are made only for
find_duplicates' callers. The forked workers read the same columns without
writing to their pages (no per-file reference counts), so nothing is packed or
pickled for them.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import cast

from gradio_clean.folders import Folders
from gradio_clean.gcpause import gc_paused
from gradio_clean.hashing import (
    BUFFER_SIZE,
    CHANGED,
    DENIED,
    DIGEST_SIZE,
    FOLDER_SWAPPED,
    NOT_REGULAR,
    OPEN_FLAGS,
    PARTIAL_SIZE,
    SYMLINK,
    VANISHED,
    Found,
    Inode,
    Reader,
    Warnings,
    batches,
    recheck_links,
)
from gradio_clean.options import Keep as Keep  # re-exported: duplicates.Keep keeps working
from gradio_clean.pool import Candidate as Candidate  # re-exported, as Pool is
from gradio_clean.pool import Pool as Pool
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
    "Pool",
    "Sets",
    "find_duplicates",
    "find_sets",
]

FORK_MIN_FILES = 256  # fewer files to read than this: one process (a fork costs ~10 ms)
FILE_COST = 48 << 10  # one file's syscalls and Python cost about as much as hashing 48 KiB


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


@dataclass(frozen=True)
class Sets:
    """Duplicate sets as pool indices (issue 12): what the rules plan from, with no
    object per file. Set s keeps the file at pool index keep[s]; its extras are
    extras[starts[s] : starts[s + 1]] in path order, its digest digests[32 s : 32 s + 32].
    Sets come in the order of their kept paths, as DuplicateReport's do."""

    pool: Pool
    keep: array[int]
    starts: array[int]
    extras: array[int]
    digests: bytes
    warnings: tuple[tuple[str, str], ...]  # (path, message): vanished, changed or unreadable
    bytes_hashed: int
    bytes_compared: int  # read again by verify, both sides counted

    def __len__(self) -> int:
        return len(self.keep)

    def extras_of(self, s: int) -> array[int]:
        return self.extras[self.starts[s] : self.starts[s + 1]]

    def report(self) -> DuplicateReport:
        """The sets as Candidate objects (a pool made of them hands back the very ones)."""
        make, size = self.pool.candidate, self.pool.size
        sets = tuple(
            DuplicateSet(
                make(k),
                tuple(make(i) for i in self.extras_of(s)),
                self.digests[s * DIGEST_SIZE : (s + 1) * DIGEST_SIZE].hex(),
                size[k],
            )
            for s, k in enumerate(self.keep)
        )
        return DuplicateReport(sets, self.warnings, self.bytes_hashed, self.bytes_compared)


class _Groups:
    """Size groups as slices of one array of pool indices: group g is
    order[starts[g] : starts[g + 1]], its files in the pool's order."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.order = array("Q")
        self.starts = array("Q", [0])

    def __len__(self) -> int:
        return len(self.starts) - 1

    def add(self, indices: list[int]) -> None:
        self.order.extend(indices)
        self.starts.append(len(self.order))

    def files(self, g: int) -> int:
        return self.starts[g + 1] - self.starts[g]

    def size(self, g: int) -> int:
        return self.pool.size[self.order[self.starts[g]]]

    def indices(self, g: int) -> array[int]:
        return self.order[self.starts[g] : self.starts[g + 1]]


def _size_groups(pool: Pool) -> _Groups:
    """Files of one size, owner, group and mode, where there are two or more."""
    by_size: dict[int, list[int]] = {}
    for i, size in enumerate(pool.size):
        if size > 0:
            group = by_size.get(size)
            if group is None:
                by_size[size] = [i]
            else:
                group.append(i)
    out = _Groups(pool)
    uid, gid, mode = pool.uid, pool.gid, pool.mode
    for group in by_size.values():
        if len(group) < 2:
            continue
        owners: dict[tuple[int, int, int], list[int]] = {}
        for i in group:  # never a set across owners, groups or modes
            owners.setdefault((uid[i], gid[i], mode[i]), []).append(i)
        for g in owners.values():
            if len(g) > 1:
                out.add(g)
    by_size.clear()
    return out


def _inodes(pool: Pool, indices: array[int], warnings: Warnings) -> list[Inode]:
    """A size group's inodes, if two or more: paths sharing (dev, ino) are one inode.

    Deterministic (the pool's order), so every process makes the same inodes of a group.
    """
    inodes: dict[tuple[int, int], Inode] = {}
    dev, ino, mtime, path = pool.dev, pool.ino, pool.mtime, pool.path
    for i in indices:
        node = inodes.get((dev[i], ino[i]))
        if node is None:
            inodes[(dev[i], ino[i])] = Inode(i, pool.want(i))
        elif mtime[i] != mtime[node.first]:  # two scans of one inode disagree
            warnings.append((path(i), CHANGED))
        elif all(path(i) != path(x) for x in node.cands):  # a path given twice counts once
            node.cands.append(i)
    if len(inodes) < 2:
        return []
    for node in inodes.values():
        if len(node.cands) > 1:
            node.cands.sort(key=pool.key)
    return list(inodes.values())


def _pick(pool: Pool, nodes: Sequence[Inode], keep: Keep) -> Inode:
    """The newest (or oldest) inode; ties go to the byte-wise smallest path, so runs agree."""
    sign = -1 if keep == Keep.NEWEST else 1
    mtime = pool.mtime
    best = min(sign * mtime[n.first] for n in nodes)
    tied = [n for n in nodes if sign * mtime[n.first] == best]
    if len(tied) == 1:
        return tied[0]
    return min(tied, key=lambda n: pool.key(n.cands[0]))


def _weight(groups: _Groups, g: int) -> int:
    return groups.files(g) * (FILE_COST + groups.size(g))


def _deal(groups: _Groups, shares: int) -> list[list[int]]:
    """Size groups (by index) dealt to `shares` processes, the costliest first, each to the
    least loaded so far; within a share they keep the order of the groups."""
    weights = [_weight(groups, g) for g in range(len(groups))]
    order = sorted(range(len(groups)), key=weights.__getitem__, reverse=True)
    loads = [0] * shares
    dealt: list[list[int]] = [[] for _ in range(shares)]
    for i in order:
        k = loads.index(min(loads))
        dealt[k].append(i)
        loads[k] += weights[i]
    return [sorted(d) for d in dealt if d]


def _batches_of(groups: _Groups, share: list[int]) -> Iterator[Sequence[int]]:
    return batches(share, groups.files, lambda g: _weight(groups, g))


def _hash_share(reader: Reader, groups: _Groups, share: list[int]) -> Found:
    """Hash a share in this process or a forked worker (which reads the columns it
    shares with the parent, never writing to them); a batch's objects go once it is done."""
    found = Found()
    pool = groups.pool
    for batch in _batches_of(groups, share):
        pairs = []
        for g in batch:
            nodes = _inodes(pool, groups.indices(g), reader.warnings)
            if nodes:
                pairs.append(nodes)
        for subs in reader.hash_batch(pairs):
            for sub in subs:
                found.add(sub)
    return found


def _hash_remote(
    folders: Folders, groups: _Groups, share: list[int]
) -> tuple[Found, Warnings, int]:
    """A forked worker's share: what it found, its warnings and the bytes it read."""
    reader = _reader(folders, groups.pool)
    return _hash_share(reader, groups, share), reader.warnings, reader.read


def _reader(folders: Folders, pool: Pool) -> Reader:
    """A Reader that opens a file by its encoded path below the root, as the pool holds
    it, when the pool's prefix is the root (as dedupe.py's are)."""
    below = pool.objects is None and folders.prefix != "" and pool.prefix == folders.prefix
    return Reader(folders, pool.path, pool.key if below else None)


def _hash_all(reader: Reader, groups: _Groups, workers: int) -> Found:
    """Groups of inodes with the same full hash, from `workers` forked processes (this one
    waits), or from this one alone for a few files or workers=1."""
    if workers < 2 or len(groups.order) < FORK_MIN_FILES:
        return _hash_share(reader, groups, list(range(len(groups))))
    shares = _deal(groups, workers)

    def work(share: Share) -> object:
        if share.index == 0:
            # This process's part while the workers hash: nothing, so it writes to no
            # page they share with it (each such write would copy the page).
            return None
        if share.forked:
            return _hash_remote(reader.folders, groups, shares[share.index - 1])
        return _hash_share(reader, groups, shares[share.index - 1])  # its worker died

    results = run_shares(len(shares) + 1, work)[1:]
    final = Found()
    for result in results:
        if result is None:  # stopping: run_shares left a dead worker's share undone
            check_stop()
            continue
        if isinstance(result, Found):  # hashed here after its worker died
            final.extend(result)
            continue
        found, warnings, read = cast(tuple[Found, Warnings, int], result)
        final.extend(found)
        reader.warnings += warnings
        reader.read += read
    return final


def _workers(keep: Keep, workers: int | None) -> int:
    """The arguments checked; the count of hashing processes."""
    if keep not in ("newest", "oldest"):
        raise ValueError(f"keep must be 'newest' or 'oldest', not {keep!r}")
    if workers is None:
        workers = available_jobs()
    if workers < 1:
        raise ValueError("workers must be at least 1")
    return workers


def find_duplicates(
    candidates: Iterable[Candidate] | Pool,
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
    workers = _workers(keep, workers)
    pool = candidates if isinstance(candidates, Pool) else Pool.of(candidates)
    return find_sets(pool, keep=keep, verify=verify, workers=workers, root=root).report()


def find_sets(
    pool: Pool,
    *,
    keep: Keep = Keep.NEWEST,
    verify: bool = False,
    workers: int | None = None,
    root: str | None = None,
) -> Sets:
    """find_duplicates' sets as pool indices, for a caller that plans from the pool's
    columns (dedupe.py): no Candidate is made for a file of a set."""
    workers = _workers(keep, workers)
    folders = Folders(root, OPEN_FLAGS)
    try:
        with gc_paused():
            return _find(pool, keep, verify, workers, folders)
    finally:
        folders.close()


def _find(pool: Pool, keep: Keep, verify: bool, workers: int, folders: Folders) -> Sets:
    groups = _size_groups(pool)
    reader = _reader(folders, pool)
    found = _hash_all(reader, groups, workers)
    del groups
    hashed = reader.read
    reader.read = 0
    if verify:
        found = _verified(pool, found, keep, reader)
    warnings = reader.warnings  # then the links rechecked while the sets are built
    built = _Built()
    for group in found.groups(pool.want):
        _build(pool, group, keep, warnings, built)
    del found
    return built.sets(pool, warnings, hashed, reader.read)


def _verified(pool: Pool, found: Found, keep: Keep, reader: Reader) -> Found:
    """Byte-compare every group against its keep; a keep that fails is replaced and retried."""
    done = Found()
    groups: Iterable[list[Inode]] = found.groups(pool.want)
    while True:
        retry: list[list[Inode]] = []
        for g in groups:
            check_stop()
            k = _pick(pool, g, keep)
            others = [n for n in g if n is not k]
            reader.verify(k, others)
            alive = [n for n in others if n.digest]
            if k.digest:
                if alive:
                    done.add([k, *alive])
            elif len(alive) > 1:
                retry.append(alive)
        if not retry:
            return done
        groups = retry


class _Built:
    """Sets in the order they were built, as Sets' columns."""

    def __init__(self) -> None:
        self.keep = array("Q")
        self.starts = array("Q", [0])
        self.extras = array("Q")
        self.digests = bytearray()

    def sets(self, pool: Pool, warnings: Warnings, hashed: int, compared: int) -> Sets:
        """The sets sorted by their kept paths."""
        keep, starts, extras, digests = self.keep, self.starts, self.extras, self.digests
        out = _Built()
        for s in sorted(range(len(keep)), key=lambda s: pool.key(keep[s])):
            out.keep.append(keep[s])
            out.extras += extras[starts[s] : starts[s + 1]]
            out.starts.append(len(out.extras))
            out.digests += digests[s * DIGEST_SIZE : (s + 1) * DIGEST_SIZE]
        return Sets(
            pool,
            out.keep,
            out.starts,
            out.extras,
            bytes(out.digests),
            tuple(warnings),
            hashed,
            compared,
        )


def _build(pool: Pool, group: list[Inode], keep: Keep, warnings: Warnings, built: _Built) -> None:
    """A group's set; each of its two or more inodes has at least its opened path."""
    for node in group:
        if len(node.cands) > 1:
            recheck_links(node, pool.path, warnings)
    kept = _pick(pool, group, keep)
    extras = [c for n in group if n is not kept for c in n.cands]
    extras.sort(key=pool.key)
    built.keep.append(kept.cands[0])
    built.extras.extend(extras)
    built.starts.append(len(built.extras))
    built.digests += kept.digest
