"""Duplicate candidates, as objects (`Candidate`) or in columns (`Pool`, issue 12).

The walk hands the duplicates rule every file it may compare. As objects (a path
string and nine ints each) they take ~440 bytes a file; in a Pool's columns ~150,
each path kept as its encoded rest after one shared prefix. Split out of
duplicates.py, which re-exports both.
"""

from __future__ import annotations

import os
import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

from gradio_clean.hashing import Want

_ENCODING, _ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()  # os.fsencode's


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


class Pool:
    """Candidates in columns, each path as `prefix` plus its encoded rest (issue 12).

    `tag` is one byte a file that the caller may use (rules.py: the category) by
    overriding `candidate`. A pool made from Candidate objects keeps them and hands
    them back as they were.
    """

    __slots__ = (
        "ctime",
        "dev",
        "ends",
        "gid",
        "ino",
        "mode",
        "mtime",
        "objects",
        "prefix",
        "rest",
        "size",
        "tag",
        "uid",
    )

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.rest = bytearray()  # os.fsencode of each path's rest, back to back
        self.ends = array("Q")  # where each rest ends in `rest`
        self.dev, self.ino = array("Q"), array("Q")
        self.size, self.mtime, self.ctime = array("q"), array("q"), array("q")
        self.uid, self.gid, self.mode = array("q"), array("q"), array("q")
        self.tag = bytearray()
        self.objects: list[Candidate] | None = None  # set by `of`: candidate(i) is objects[i]

    @classmethod
    def of(cls, candidates: Iterable[Candidate]) -> Pool:
        pool = cls()
        pool.objects = objects = list(candidates)
        for c in objects:
            pool._columns(c.dev, c.ino, c.size, c.mtime_ns, c.ctime_ns, c.uid, c.gid, c.mode, 0)
        return pool

    def __len__(self) -> int:
        return len(self.tag)

    def add(self, rest: str, st: os.stat_result, tag: int = 0) -> None:
        """The file at prefix + rest, from the lstat the scan made (once per file of the
        walk: os.fsencode and the columns written out, without their calls)."""
        self.rest += rest.encode(_ENCODING, _ERRORS)
        self.ends.append(len(self.rest))
        self.dev.append(st.st_dev)
        self.ino.append(st.st_ino)
        self.size.append(st.st_size)
        self.mtime.append(st.st_mtime_ns)
        self.ctime.append(st.st_ctime_ns)
        self.uid.append(st.st_uid)
        self.gid.append(st.st_gid)
        self.mode.append(st.st_mode)
        self.tag.append(tag)

    def _columns(self, *row: int) -> None:
        dev, ino, size, mtime, ctime, uid, gid, mode, tag = row
        self.dev.append(dev)
        self.ino.append(ino)
        self.size.append(size)
        self.mtime.append(mtime)
        self.ctime.append(ctime)
        self.uid.append(uid)
        self.gid.append(gid)
        self.mode.append(mode)
        self.tag.append(tag)

    def extend(self, other: Pool) -> None:
        """Another pool of the same prefix (a walk worker's) after this one's files."""
        if self.objects is not None or other.objects is not None or other.prefix != self.prefix:
            raise ValueError("only pools of paths with the same prefix extend each other")
        base = len(self.rest)
        self.rest += other.rest
        self.ends.extend(end + base for end in other.ends)
        for name in ("dev", "ino", "size", "mtime", "ctime", "uid", "gid", "mode", "tag"):
            getattr(self, name).extend(getattr(other, name))

    def partition(self, tags: frozenset[int]) -> tuple[Pool, Pool]:
        """The files whose tag is in `tags`, and the others, as two pools like this one."""
        if self.objects is not None:
            raise ValueError("a pool of Candidate objects has no tags")
        present = set(self.tag)
        if present <= tags:  # one side is empty (usually the sessions'): nothing to copy
            return self, type(self)(self.prefix)
        if present.isdisjoint(tags):
            return type(self)(self.prefix), self
        pools = (type(self)(self.prefix), type(self)(self.prefix))
        columns = ("dev", "ino", "size", "mtime", "ctime", "uid", "gid", "mode")
        for i, tag in enumerate(self.tag):
            pool = pools[0] if tag in tags else pools[1]
            start = self.ends[i - 1] if i else 0
            pool.rest += self.rest[start : self.ends[i]]
            pool.ends.append(len(pool.rest))
            for name in columns:
                getattr(pool, name).append(getattr(self, name)[i])
            pool.tag.append(tag)
        return pools

    def path(self, i: int) -> str:
        if self.objects is not None:
            return self.objects[i].path
        start = self.ends[i - 1] if i else 0
        return self.prefix + self.rest[start : self.ends[i]].decode(_ENCODING, _ERRORS)

    def key(self, i: int) -> bytes:
        """What orders paths by their bytes, as `ls` in the C locale does, whatever their
        encoding; comparable within one pool only (its paths share the prefix)."""
        if self.objects is not None:
            return os.fsencode(self.objects[i].path)
        start = self.ends[i - 1] if i else 0
        return bytes(self.rest[start : self.ends[i]])

    def want(self, i: int) -> Want:
        """What the file read for index i must still be (hashing._same_file)."""
        return (
            self.ino[i],
            self.mtime[i],
            self.size[i],
            self.dev[i],
            self.mode[i],
            self.uid[i],
            self.gid[i],
        )

    def clear(self) -> None:
        """Free the columns (the rules hand a pool over, and its sets are planned)."""
        type(self).__init__(self, self.prefix)

    def candidate(self, i: int) -> Candidate:
        if self.objects is not None:
            return self.objects[i]
        return Candidate(
            self.path(i),
            self.dev[i],
            self.ino[i],
            self.size[i],
            self.mtime[i],
            self.uid[i],
            self.gid[i],
            self.mode[i],
            self.ctime[i],
        )
