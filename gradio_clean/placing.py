"""Where a file some process holds, or a folder it locks, lies below a root.

The forecast (preflight.Forecast) asks these, so that a dry run spares what apply will
spare. A process names what it holds by the path it opened it by (inuse.Places); a
path lstat confirms (that very file, its only link) and that climbs to the root places
it below the root; one that climbs out without meeting the root places it elsewhere,
unless it runs through a bind mount. Anything that cannot be placed for sure makes the
forecast walk every folder of the root, asking each entry by its key, as apply asks.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Callable, Mapping

from gradio_clean.filesystems import bind_mounts
from gradio_clean.inuse import InUse, Key, Places, lock_holders, open_paths
from gradio_clean.links import LinkedNames
from gradio_clean.removal import holds_mount
from gradio_clean.roots import DIR_FLAGS, open_at

Lock = tuple[int, int, int]  # (major, minor, inode), as /proc/locks names a lock


def _key(st: os.stat_result) -> Key:
    return st.st_dev, st.st_ino


def _is_folder(path: str, key: Key) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and _key(st) == key


def held_paths(holders: Mapping[Lock, set[int]], key: Key) -> set[str]:
    """The paths by which the holders of the lock on `key` have it open now."""
    paths: set[str] = set()
    for pid in holders.get((os.major(key[0]), os.minor(key[0]), key[1]), ()):
        paths |= open_paths(pid, key)
    return paths


def place_folder(places: Places, key: Key, paths: set[str]) -> bool:
    """Note each of `paths` that is still the folder `key`; whether any was."""
    folders = [p for p in paths if _is_folder(p, key)]
    for path in folders:
        places.add_dir(key, path)
    return bool(folders)


class _Binds:
    """The bind mounts (filesystems.bind_mounts), read at the first question. A path
    through one climbs out of it without meeting the root even where its source lies
    below the root: it is no proof that what it names is elsewhere."""

    def __init__(self) -> None:
        self.prefixes: tuple[str, ...] | None = None

    def through(self, path: str) -> bool:
        """Whether `path` is reached through a bind mount (a file's own one too)."""
        if self.prefixes is None:
            self.prefixes = tuple(os.path.join(m, "") for m in bind_mounts())
        below = os.path.join(path, "")
        return any(below.startswith(m) for m in self.prefixes)


@dataclasses.dataclass
class ForecastRoot:
    """One root as the forecast sees it: its descriptor and identity, the files in use on
    its filesystem, and what was found or asked below it."""

    fd: int
    path: str
    dev: int
    ino: int
    keys: frozenset[Key]  # files in use on the root's device
    inos: frozenset[int]  # their inode numbers, what a directory listing shows
    walk_all: bool = False  # some of them could not be placed: walk every folder
    found: dict[str, str] = dataclasses.field(default_factory=dict)  # folder rel -> why
    witness: LinkedNames | None = None  # preflight.Forecast._witness: the walk saw all of the root
    binds: _Binds = dataclasses.field(default_factory=lambda: _Binds())
    asked: dict[str, str | None] = dataclasses.field(default_factory=dict)  # folder_locked's
    any_locked: bool | None = None  # preflight.Forecast._ask_folders: a lock on its filesystem

    @classmethod
    def open(cls, path: str, snap: InUse) -> ForecastRoot | None:
        try:
            fd = os.open(path, DIR_FLAGS)
        except OSError:
            return None
        st = os.fstat(fd)
        dev, major, minor = st.st_dev, os.major(st.st_dev), os.minor(st.st_dev)
        keys = {key for key in snap.open_by if key[0] == dev}
        keys.update((dev, ino) for (ma, mi, ino) in snap.locked if (ma, mi) == (major, minor))
        inos = frozenset(ino for _, ino in keys)
        return cls(fd, path, dev, st.st_ino, frozenset(keys), inos)

    def place(self, places: Places | None, snap: InUse) -> None:
        """Match each in-use file to the folders holding it, by the path a process
        reached it by; one that cannot be placed for sure makes every folder walked."""
        if places is None:
            self.walk_all = True
            return
        unplaced = []
        for key in self.keys:
            if key in places.other or key in places.dirs or places.nlink.get(key) == 0:
                continue  # a folder (see locked_below), no regular file, or deleted
            rel = self._rel(key, places.paths.get(key, set()) | places.mapped.get(key[1], set()))
            if rel is None:
                unplaced.append(key)
            elif rel:
                self._mark(rel, snap, key)
        if unplaced:
            self._place_locks(unplaced, places, snap)

    def _place_locks(self, keys: list[Key], places: Places, snap: InUse) -> None:
        """Files locked but not seen open: the lock was taken, or its process started,
        after the pass over /proc/*/fd (an app's sqlite, a lock file, attach()'s marks:
        often, on a busy server). Each is placed by the files its holders have open now;
        a lock let go since is none (preflight.Forecast._let_go took it out of `snap`). Anything
        still unsure makes every folder walked, as before."""
        holders = lock_holders() or {}
        for key in keys:
            if key in snap.open_by:
                self.walk_all = True  # seen open, yet not placed: nothing new to learn
                return
            if not snap.is_locked(key):
                continue  # let go since the snapshot
            paths = held_paths(holders, key)
            if place_folder(places, key, paths):  # a folder's lock: see locked_below
                continue
            rel = self._rel(key, paths)
            if rel is None:
                self.walk_all = True
                return
            if rel:
                self._mark(rel, snap, key)

    def locked_keys(self, snap: InUse) -> list[Key]:
        return [key for key in self.keys if snap.is_locked(key)]

    def _rel(self, key: Key, paths: set[str]) -> str | None:
        """The file's path below this root; "" if it is surely elsewhere; None if
        unsure. Its folders are compared by identity, not by name, so a bind mount or
        another name for the root still counts as the root. A path through a bind mount
        of a folder of this filesystem is unsure: that folder may be one below the root,
        and climbing from it never meets the root."""
        for path in paths:
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if _key(st) != key:
                continue  # not that file any more
            if st.st_nlink != 1:
                if self._unseen(key, st):
                    return ""
                continue  # it has another name somewhere, maybe below the root
            head = path
            while head not in ("/", ""):
                head = os.path.dirname(head)
                try:
                    up = os.lstat(head)
                except OSError:
                    break
                if _key(up) == (self.dev, self.ino):
                    return path[len(head) :].lstrip("/")
            else:
                if not self.binds.through(path):
                    return ""
        return None

    def _unseen(self, key: Key, st: os.stat_result) -> bool:
        """True when the file has several names and surely none below this root: the
        walk read all of it and saw none, and the file had these links all through
        the walk (its ctime, set by each link and unlink, is older, with a margin for
        coarse timestamps). A file linked since the walk began is not vouched for."""
        witness = self.witness
        return (
            witness is not None
            and key not in witness.inodes
            and st.st_ctime_ns < witness.began_ns - CTIME_MARGIN_NS
        )

    def _mark(self, rel: str, snap: InUse, key: Key) -> None:
        """Note the file in every folder above it, named by its path inside each (as
        apply's survey names it: sub/0.webp)."""
        head = os.path.dirname(rel)
        while head:
            if head not in self.found:
                busy = snap.why(*key)
                if busy is not None:
                    self.found[head] = f"{rel[len(head) + 1 :]} is {busy}"
            head = os.path.dirname(head)

    def folder(self, rel: str, snap: InUse) -> str | None:
        """Why apply would skip this folder, as apply words it; None if nothing here says so."""
        return self._at(rel, lambda fd: self._walk(fd, snap))

    def folder_locked(self, rel: str, snap: InUse) -> str | None:
        """Why apply would skip file `rel` for a locked folder holding it (each folder on
        the way asked by its key, from the root down, as apply asks); None if none is."""
        parts = rel.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder not in self.asked:
                self.asked[folder] = self._folder_lock(folder, snap)
            busy = self.asked[folder]
            if busy is not None:
                return f"its folder is {busy}"
        return None

    def _folder_lock(self, rel: str, snap: InUse) -> str | None:
        return self._at(rel, lambda fd: snap.why(*_key(os.fstat(fd))))

    def _at(self, rel: str, ask: Callable[[int], str | None]) -> str | None:
        """`ask` of folder `rel`, opened below the root; None if it is gone or
        unreachable: apply reports it."""
        try:
            fd = self._open(rel)
        except OSError:
            return None
        try:
            return ask(fd)
        finally:
            os.close(fd)

    def _open(self, rel: str) -> int:
        fd = self.fd
        for name in rel.split("/"):
            child = open_at(fd, name, DIR_FLAGS)
            if fd != self.fd:
                os.close(fd)
            fd = child
        return fd

    def _walk(self, top: int, snap: InUse) -> str | None:
        """Depth-first in apply's order (each listing from its end); the first finding wins,
        named by its path inside the folder, as apply names it."""
        stack: list[tuple[int, list[os.DirEntry[str]], str]] = [(top, list(os.scandir(top)), "")]
        try:
            while stack:
                fd, pending, prefix = stack[-1]
                if not pending:
                    stack.pop()
                    if fd != top:
                        os.close(fd)
                    continue
                entry = pending.pop()
                try:
                    if entry.is_dir(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        if st.st_dev != self.dev:
                            return holds_mount(prefix + entry.name)
                        busy = snap.why(st.st_dev, st.st_ino)  # a folder: locked, as apply asks
                        if busy is not None:
                            return f"{prefix}{entry.name} is {busy}"
                        child = open_at(fd, entry.name, DIR_FLAGS)
                        stack.append((child, list(os.scandir(child)), f"{prefix}{entry.name}/"))
                    elif entry.inode() in self.inos:
                        st = entry.stat(follow_symlinks=False)
                        busy = snap.why(st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None
                        if busy is not None:
                            return f"{prefix}{entry.name} is {busy}"
                except OSError:
                    continue  # vanished or unreadable: apply decides
            return None
        finally:
            for fd, _, _ in stack:
                if fd != top:
                    os.close(fd)


# A ctime may lag the clock read at the walk's start: a kernel tick, a filesystem's whole
# seconds. Two seconds more, and a file linked after the walk began is never vouched for.
CTIME_MARGIN_NS = 2_000_000_000


def locked_below(root: str, places: Places, snap: InUse) -> tuple[list[str], bool]:
    """Paths below `root` of the locked folders that some process holds open; and True
    if a locked folder of the root's filesystem could be placed by none of its paths (a
    holder in another mount namespace, a path through a bind mount, gone since)."""
    try:
        top = os.lstat(root)
    except OSError:
        return [], False
    out = []
    unsure = False
    binds = _Binds()
    for key, paths in places.dirs.items():
        if key[0] != top.st_dev or not snap.is_locked(key):
            continue  # not locked, or on another filesystem: never below the root
        placed = False
        for path in paths:
            rel = _climb(path, key, top)
            if rel == "" and binds.through(path):  # climbed to / without meeting the root
                continue
            elif rel:
                out.append(rel)
            placed = placed or rel is not None
        unsure = unsure or not placed
    return out, unsure


def _climb(path: str, key: Key, top: os.stat_result) -> str | None:
    """Folder `path`'s rel below the folder `top`; "" if climbing never meets it; None if
    `path` is not that folder any more or a folder on the way cannot be read."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if _key(st) != key:
        return None
    head, rel = path, ""
    while head not in ("/", ""):
        parent = os.path.dirname(head)
        rel = os.path.join(os.path.basename(head), rel) if rel else os.path.basename(head)
        try:
            up = os.lstat(parent)
        except OSError:
            return None
        if _key(up) == _key(top):
            return rel
        head = parent
    return ""
