"""Which folders a plan empties, so that a dry run counts the folders apply removes.

Apply removes each folder between a deleted file and its item (a hash folder, a session)
once the run has left it empty (delete._tidy): a session folder whose last files go, a
hash folder whose only file goes. The plan knows which: after the walk, each folder that
holds a file planned on its own is listed once, deepest first, through descriptors as
apply opens them (no link followed, no atime moved). It is emptied when each of its
entries is a file planned in it or a folder itself emptied, and rmdir may take it from
its parent (permissions.rmdir_denied: a run without root may lack write permission
there, or meet a sticky parent's rule): a folder apply could not remove is not promised,
nor is a folder above it. Only these folders are listed: an item planned whole holds none.
"""

from __future__ import annotations

import os
import stat
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from gradio_clean.actions import Actions
from gradio_clean.classify import USER_DATA_FOLDERS
from gradio_clean.order import SortKey
from gradio_clean.permissions import (
    cannot_remove,
    permitted,
    rmdir_denied,
    sticky_binds,
    sticky_denied,
    unlink_denied,
)
from gradio_clean.roots import DIR_FLAGS, open_at
from gradio_clean.statx import fstat_mount, lstat_frozen


def tidied_parents(rel: str, item_rel: str) -> list[str]:
    """The folders between a deleted file `rel` and its item folder `item_rel`, the item
    included unless it is an app's user-data folder (USER_DATA_FOLDERS), deepest first:
    those apply removes if the run empties them."""
    if rel == item_rel:
        return []
    out = []
    head = rel.rpartition("/")[0]
    keeps = item_rel.rpartition("/")[2] in USER_DATA_FOLDERS
    while head and ((head == item_rel and not keeps) or head.startswith(item_rel + "/")):
        out.append(head)
        head = head.rpartition("/")[0]
    return out


@dataclass(frozen=True)
class Emptied:
    """A folder the plan empties if every action goes: its path, and the reading
    positions `first` to `last` of the actions whose files lie in it. `cover`: the action
    of its item, planned whole as well (the budget's eviction): the folder then goes
    with it, unless that action is skipped; else -1."""

    path: str
    first: int
    last: int
    cover: int = -1
    disk: int = 0  # its own allocated bytes (st_blocks), which its removal frees


# The files apply deletes one by one under one top-level entry: (rel, item_rel, reading
# position), in plan order. Its items are usually one; under a nested .gradio, one per
# entry of it (`.gradio/flagged`, `.gradio/cached_examples`: classify.item_of).
_Files = list[tuple[str, str, int]]


def find_emptied(actions: Actions) -> tuple[Emptied, ...]:
    """Every folder the actions empty if they all go (Plan.emptying: with the skips)."""
    groups = list(_groups(actions))
    if not groups:
        return ()
    keys = {(root, os.fsencode(item)) for root, _, items in groups for item in items}
    wholes = {  # an item planned whole too: the budget evicted it
        key: i for key, i in actions.positions(keys).items() if actions.is_dir(i)
    }
    out: list[Emptied] = []
    opened: dict[str, Parents | None] = {}  # root -> its descriptor, opened once
    try:
        for root, files, _ in groups:
            if root not in opened:
                opened[root] = Parents.of(root)
            parents = opened[root]
            if parents is not None:
                out += _emptied(root, parents, files, wholes)
    finally:
        for parents in opened.values():
            if parents is not None:
                parents.close()
    return tuple(out)


def _groups(actions: Actions) -> Iterator[tuple[str, _Files, set[str]]]:
    """Per top-level entry, in plan order: its root, the files apply deletes in it one by
    one, and their items."""
    root = top = ""
    files: _Files = []
    items: set[str] = set()
    for i, at, rel, item in actions.inner_files():
        head = rel.split("/", 1)[0]
        if files and (at, head) != (root, top):
            yield root, files, items
            files, items = [], set()
        root, top = at, head
        files.append((rel, item, i))
        items.add(item)
    if files:
        yield root, files, items


def _emptied(
    root: str, parents: Parents, files: _Files, wholes: Mapping[SortKey, int]
) -> list[Emptied]:
    """The folders of one top-level entry that its planned files leave empty, and that
    `parents` (the root's) says rmdir may then take."""
    names: dict[str, set[str]] = {}  # folder -> the planned files in it
    span: dict[str, tuple[int, int, str]] = {}  # folder -> first and last action in it, item
    last = ("", "")  # the folder and item of the file before: its parents are known
    above: list[str] = []
    for rel, item, i in files:
        head, _, name = rel.rpartition("/")
        names.setdefault(head, set()).add(name)
        # the file before in its folder added the folders above: only its own, if tidied
        above = above[:1] if (head, item) == last else tidied_parents(rel, item)
        last = (head, item)
        for folder in above:  # its parents: its first file added them, _emptied's last
            span[folder] = (span.get(folder, (i, i, item))[0], i, item)
    empty: set[str] = set()
    out = []
    for folder in sorted(span, key=lambda r: (-r.count("/"), r)):  # deepest first
        parent = folder.rpartition("/")[0]
        if parent in span:  # the last action below it is below its parent too
            first, last_i, item = span[parent]
            span[parent] = (first, max(last_i, span[folder][1]), item)
        st = _emptied_stat(parents.root_fd, folder, names.get(folder, set()), empty)
        if st is not None and parents.may_remove(parent, st.st_uid):
            empty.add(folder)
            first, last_i, item = span[folder]
            cover = wholes.get((root, os.fsencode(item)), -1)
            disk = st.st_blocks * 512
            out.append(Emptied(os.path.join(root, folder), first, last_i, cover, disk))
    return out


def _emptied_stat(
    root_fd: int, folder: str, planned: set[str], empty: set[str]
) -> os.stat_result | None:
    """The folder's fstat if each of its entries is a planned file or a folder found
    emptied, else None."""
    fd = _open(root_fd, folder)
    if fd is None:
        return None
    try:
        with os.scandir(fd) as listing:  # reads a dup of fd: O_NOATIME holds
            for entry in listing:
                if entry.is_dir(follow_symlinks=False):
                    if f"{folder}/{entry.name}" not in empty:
                        return None
                elif entry.name not in planned:
                    return None
        return os.fstat(fd)
    except OSError:
        return None
    finally:
        os.close(fd)


# What Parents asked of a folder: its lstat where a sticky rule binds the run in it (else
# None), and why rmdir could take nothing from it (permissions.rmdir_denied; None: it could).
_Asked = tuple["os.stat_result | None", "str | None"]
_GIVES: _Asked = (None, None)


class Parents:
    """Whether the run may remove an entry from a folder of one root (rmdir, unlink and
    rename each need the same of the folder), and why not, as apply words it. Each folder
    is asked once (most are the root itself or its hash folders), by one statx of its
    name through the descriptor of the folder above it, never opened: as root that is all
    (permissions.rmdir_denied: its chattr flag). The sticky rule and, without root, whether a
    folder may be emptied are asked per entry, since they depend on the entry."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self.euid = os.geteuid()
        self.dev = os.fstat(root_fd).st_dev
        # folder -> _Asked; None: not reached (apply says why). Tens of thousands on a
        # large plan (each hash folder holding a duplicate): no stat kept where none is read.
        self.asked: dict[str, _Asked | None] = {}

    @classmethod
    def of(cls, root: str) -> Parents | None:
        """The root's, on a descriptor of its own (close() closes it); None if it cannot
        be opened (apply would not reach it either)."""
        fd = _open_root(root)
        return None if fd is None else cls(fd)

    def close(self) -> None:
        os.close(self.root_fd)

    def may_remove(self, parent: str, uid: int) -> bool:
        """Whether rmdir may take a folder of `uid` (an emptied one) from `parent`."""
        asked = self._asked(parent)
        if asked is None or asked[1] is not None:
            return False
        return asked[0] is None or not sticky_denied(asked[0], uid, self.euid)

    def refuses(self, parent: str) -> bool:
        """Whether `parent` gives up no entry at all (permissions.rmdir_denied)."""
        asked = self._asked(parent)
        return asked is not None and asked[1] is not None

    def file_denied(self, parent: str, name: str) -> str | None:
        """Why apply may not unlink the file `name` from `parent` (permissions.unlink_denied);
        None where it may, or where the folder cannot be reached (apply says why)."""
        asked = self._asked(parent)
        if asked is None:
            return None
        st, why = asked
        if why is not None:
            return cannot_remove(why)
        if st is None:
            return None  # no sticky rule to ask (as root, never): the file's owner is moot
        entry = self._lstat(parent, name)
        if entry is None:
            return None
        fd, own = entry
        if fd != self.root_fd:
            os.close(fd)
        return unlink_denied(None, st, own.st_uid, self.euid)

    def folder_denied(self, parent: str, name: str) -> str | None:
        """Why apply may not remove the folder `name` whole from `parent`, as
        delete._delete_folder words it: the parent refuses, or, without root,
        permissions.permitted does (no permission to empty it, a sticky parent's rule)."""
        asked = self._asked(parent)
        if asked is None:
            return None
        st, why = asked
        if why is not None:
            return cannot_remove(why)
        if self.euid == 0:
            return None
        entry = self._lstat(parent, name)
        if entry is None or not stat.S_ISDIR(entry[1].st_mode):
            return None
        fd, top = entry
        try:
            return permitted(st, fd, name, top, self.euid)
        finally:
            if fd != self.root_fd:
                os.close(fd)

    def _asked(self, parent: str) -> _Asked | None:
        if parent not in self.asked:
            self.asked[parent] = self._ask(parent)
        return self.asked[parent]

    def _ask(self, parent: str) -> _Asked | None:
        """The folder's lstat and rmdir_denied's answer, from one statx of its name (and
        without root, an access check); None where it cannot be reached safely."""
        if not parent:
            st, _, is_frozen = fstat_mount(self.root_fd)
            return self._answer(st, rmdir_denied(self.root_fd, self.euid, "", is_frozen))
        head, _, name = parent.rpartition("/")
        fd = self.root_fd if not head else _open(self.root_fd, head)
        if fd is None:
            return None
        try:
            st, is_frozen = lstat_frozen(fd, name)
            if not stat.S_ISDIR(st.st_mode) or st.st_dev != self.dev:
                return None  # a link, or a mount point: apply would not enter it
            return self._answer(st, rmdir_denied(fd, self.euid, name, is_frozen))
        except OSError:
            return None
        finally:
            if fd != self.root_fd:
                os.close(fd)

    def _answer(self, st: os.stat_result, why: str | None) -> _Asked:
        """The folder's lstat only where a sticky rule binds the run in it (all that is
        read of it later), and rmdir_denied's answer; the common answer is one shared tuple."""
        kept = st if sticky_binds(st, self.euid) else None
        return _GIVES if kept is None and why is None else (kept, why)

    def _lstat(self, parent: str, name: str) -> tuple[int, os.stat_result] | None:
        """A descriptor on `parent` (the caller closes it unless it is the root's) and
        the lstat of `name` in it; None where either fails (apply says why)."""
        fd = self.root_fd if not parent else _open(self.root_fd, parent)
        if fd is None:
            return None
        try:
            return fd, os.stat(name, dir_fd=fd, follow_symlinks=False)
        except OSError:
            if fd != self.root_fd:
                os.close(fd)
            return None


def _open_root(root: str) -> int | None:
    try:
        return os.open(root, DIR_FLAGS)
    except OSError:
        return None


def _open(root_fd: int, rel: str) -> int | None:
    """A descriptor on `rel` below the root, opened a component at a time without
    following a link or leaving the root's device; None where that fails (apply would
    not reach it either)."""
    dev = os.fstat(root_fd).st_dev
    fd = root_fd
    for name in rel.split("/"):
        try:
            sub = open_at(fd, name, DIR_FLAGS)
        except OSError:
            sub = -1
        if fd != root_fd:
            os.close(fd)
        if sub < 0:
            return None
        fd = sub
        if os.fstat(fd).st_dev != dev:
            os.close(fd)
            return None
    return fd


def emptying(
    emptied: tuple[Emptied, ...], actions: Actions, skips: Mapping[int, str]
) -> tuple[Emptied, ...]:
    """The folders apply removes as emptied when the forecast skips are the only ones:
    not one with a skipped action in it, nor one that goes whole with its item."""
    skipped = sorted(skips)
    return tuple(
        e
        for e in emptied
        if (e.cover < 0 or e.cover in skips) and not _skipped_in(e, skipped, actions)
    )


def _skipped_in(e: Emptied, skipped: list[int], actions: Actions) -> bool:
    """Whether an action skipped among e.first..e.last lies in the folder e.path."""
    prefix = e.path + "/"
    at = bisect_left(skipped, e.first)
    while at < len(skipped) and skipped[at] <= e.last:
        i = skipped[at]
        if os.path.join(actions.root(i), actions.rel(i)).startswith(prefix):
            return True
        at += 1
    return False
