"""The root's .gradiocleanignore, and the Scope it forms with --include and --exclude.

Whoever can write into a root can put this file there, and a shared /tmp/gradio
lets every user do so. It is honoured only when nobody but a trusted user can
have written it: a regular file (opened relative to the root's descriptor,
without following a link or blocking on a FIFO), owned by root, by the user
running gradio-clean or by the owner of the root folder, writable by nobody
else, with one link, at most 64 KiB of UTF-8 text and 1,000 patterns. Anything
else is one warning, and the file is left out of the run.

It can only add excludes. Its patterns are matched apart from the operator's
--exclude (or the config's `exclude`): a `!` line in it takes back what an
earlier line of the same file excluded, never what the operator excluded.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from gradio_clean.classify import Category
from gradio_clean.errors import UsageError
from gradio_clean.patterns import PatternError, PatternSet, compile_patterns
from gradio_clean.roots import DIR_FLAGS, Root

IGNORE_FILE = ".gradiocleanignore"
MAX_IGNORE_BYTES = 64 * 1024
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class IgnoreFile:
    path: str
    patterns: PatternSet | None  # None: not honoured
    problem: str | None = None  # why it is not honoured

    @property
    def used(self) -> bool:
        return self.patterns is not None


@dataclass(frozen=True)
class ScopeReport:
    """What kept files out of a root's rules: the operator's excludes, and the ignore file."""

    root: str
    ignore_file: IgnoreFile | None
    excluded: int = 0  # files the operator's --exclude/exclude kept out
    ignored: int = 0  # files the root's ignore file kept out


class Scope:
    """What the rules may touch in one root: the categories (`rules.allowed_categories`),
    then --include/--exclude and the root's ignore file (gitignore-style, root-relative).

    Counts the files each kept out, so that an ignore file that blinds the rules
    (a lone `*`) shows in the report instead of silently letting the disk fill.
    """

    def __init__(
        self,
        include: Sequence[str],
        exclude: Sequence[str],
        ignore: PatternSet | None = None,
        categories: Collection[Category] = frozenset(Category),
    ) -> None:
        self.categories = frozenset(categories)  # what the rules may touch in this root
        self._include = _operator_patterns("--include", include)
        self._exclude = _operator_patterns("--exclude", exclude)
        self._ignore = ignore or None
        # Whether any pattern applies: else only the ignore file itself is out of scope.
        self.filtered = not (
            self._include is None and self._exclude is None and self._ignore is None
        )
        self.excluded = 0
        self.ignored = 0

    def allows(self, category: Category) -> bool:
        return category in self.categories

    def wants(self, rel: str, *, is_dir: bool) -> bool:
        if rel == IGNORE_FILE:  # the ignore file itself stays, without a pattern match
            return False
        key = rel + "/" if is_dir else rel
        if self._exclude is not None and self._exclude.match(key):
            self.excluded += not is_dir
            return False
        if self._ignore is not None and self._ignore.match(key):
            self.ignored += not is_dir
            return False
        if self._include is not None and not is_dir:
            return bool(self._include.match(key))
        return True


def _operator_patterns(flag: str, lines: Sequence[str]) -> PatternSet | None:
    if not lines:
        return None
    try:
        return compile_patterns(lines)
    except PatternError as exc:  # the command line checks first; this is for library callers
        raise UsageError(f"{flag} {lines[exc.line - 1]!r}: {exc.reason}") from None


def read_ignore_file(root: Root) -> IgnoreFile | None:
    """The root's ignore file if there is one, honoured or with the reason it is not."""
    try:
        dfd = os.open(root.path, DIR_FLAGS)
    except OSError:
        return None  # the walk reports a root it cannot open
    try:
        return _read(dfd, os.path.join(root.path, IGNORE_FILE))
    finally:
        os.close(dfd)


def _read(dfd: int, path: str) -> IgnoreFile | None:
    def refused(problem: str) -> IgnoreFile:
        return IgnoreFile(path, None, problem)

    try:
        before = os.stat(IGNORE_FILE, dir_fd=dfd, follow_symlinks=False)
        if not stat.S_ISREG(before.st_mode):  # a FIFO, socket or device is never opened
            return refused(f"not a regular file ({file_kind(before.st_mode)})")
        fd = os.open(IGNORE_FILE, _OPEN_FLAGS, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return refused("not a regular file (a symlink)")
        return refused(f"cannot read it: {_reason(exc)}")
    try:
        st = os.fstat(fd)
        problem = untrusted(st, os.fstat(dfd).st_uid)
        if problem is not None:
            return refused(problem)
        data = _read_at_most(fd, MAX_IGNORE_BYTES + 1)
    except OSError as exc:
        return refused(f"cannot read it: {_reason(exc)}")
    finally:
        os.close(fd)
    return _parse(path, data)


def untrusted(st: os.stat_result, root_owner: int) -> str | None:
    """Why a file found in a root may have been planted by another user; None if it cannot."""
    if not stat.S_ISREG(st.st_mode):
        return f"not a regular file ({file_kind(st.st_mode)})"
    euid = os.geteuid()
    if st.st_uid not in (0, euid, root_owner):
        return (
            f"owned by uid {st.st_uid}; only root, the user running gradio-clean "
            f"(uid {euid}) or the root folder's owner (uid {root_owner}) are trusted"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    if st.st_nlink != 1:
        return f"has {st.st_nlink} hard links"
    if st.st_size > MAX_IGNORE_BYTES:
        return f"larger than {MAX_IGNORE_BYTES // 1024} KiB"
    return None


def _parse(path: str, data: bytes) -> IgnoreFile:
    if len(data) > MAX_IGNORE_BYTES:  # it grew since the fstat
        return IgnoreFile(path, None, f"larger than {MAX_IGNORE_BYTES // 1024} KiB")
    if b"\0" in data:
        return IgnoreFile(path, None, "not a text file (it holds NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return IgnoreFile(path, None, f"line {line}: not UTF-8")
    try:
        return IgnoreFile(path, compile_patterns(text.split("\n")))
    except PatternError as exc:
        return IgnoreFile(path, None, f"line {exc.line}: {exc.reason}")


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        chunk = os.read(fd, limit - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def ignore_file_report(root: Root) -> ScopeReport:
    """For scan, which applies no scope: the root's ignore file, honoured or not, and
    (as `ignored`) how many of the root's own entries it would keep out of prune's rules."""
    ignore = read_ignore_file(root)
    top = 0
    if ignore is not None and ignore.patterns is not None:
        top = top_level_ignored(root, ignore.patterns) or 0
    return ScopeReport(root.path, ignore, ignored=top)


def refused_files(scopes: Iterable[ScopeReport]) -> list[tuple[str, str]]:
    """(path, warning) for each ignore file that was found but not honoured."""
    return [
        (s.ignore_file.path, f"ignored: {s.ignore_file.problem}")
        for s in scopes
        if s.ignore_file is not None and not s.ignore_file.used
    ]


def top_level_ignored(root: Root, ignore: PatternSet) -> int | None:
    """How many of the root's own entries `ignore` keeps out (what scan can say cheaply)."""
    try:
        dfd = os.open(root.path, DIR_FLAGS)
    except OSError:
        return None
    count = 0
    try:
        with os.scandir(dfd) as entries:
            for entry in entries:
                if entry.name == IGNORE_FILE:
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
                count += bool(ignore.match(entry.name + "/" if is_dir else entry.name))
    except OSError:
        return None
    finally:
        os.close(dfd)
    return count


def file_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc)
