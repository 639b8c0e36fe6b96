"""Forecast which planned actions apply will skip, without deleting anything.

A dry run is read to decide whether to run --apply, so it must not promise what
apply will refuse. Apply re-checks every action anyway; this runs the checks a
dry run can run too, with the same wording: a file some process holds open,
maps or locks (one /proc snapshot for the whole plan), and for a folder, any
such file inside it or a mount point below it; and last, as apply asks it, whether
the entry's folder gives it up (emptied.Parents: a folder the user may not write to,
an immutable or append-only one, another user's entry in a sticky one; for a folder
planned whole, without root, whether it may be emptied). What can only change later
(an entry modified after planning) is left to apply.

Cheap on large plans: a file action is a lookup in the snapshot. For folders, the
snapshot also records the path by which each process reached each file it holds;
a path lstat confirms (that very file, its only link) places the file, inside a
planned folder or not, so nothing is walked. A file with several names is placed
outside the root when the plan's walk is witness that none is inside: the walk
notes every name of such a file (links.LinkedNames), it read the whole root (no
warning under it but a mount point's), and the file's ctime is older than the
walk, so it had these links all through it (a library that perf's build-id cache
or a conda environment hard-links, mapped by any Python on the host).
A folder is walked only when the plan walk saw a mount point below it, or every
folder when some file in use, or some locked folder, on the root's device cannot be
placed so (a process in another mount namespace, a path through a bind mount, a file
linked since, a snapshot given without places); the walk reads directory listings
(inode numbers from getdents) and stats only folders and in-use inodes, and asks each
folder's lock by its key, as apply does; then each planned entry's folders are asked
by key too; and so they are when a lock on the device was placed by no path at all (its
holder's open files not ours to read). A planned folder's own lock is asked by its
key always. As root, each distinct folder holding a planned entry
costs one statx of its name (its chattr flag), nothing per file; without root, an
access check too, and an lstat of an entry planned whole or in a sticky folder.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Mapping, Sequence

from gradio_clean.emptied import Parents
from gradio_clean.filesystems import bind_mounts
from gradio_clean.inuse import InUse, Key, Places, lock_holders, open_paths, snapshot
from gradio_clean.links import LinkedNames
from gradio_clean.plan import Action, Plan
from gradio_clean.removal import holds_mount
from gradio_clean.roots import DIR_FLAGS, open_at
from gradio_clean.scanned import MOUNT_WARNING, ScanWarning

Lock = tuple[int, int, int]  # (major, minor, inode), as /proc/locks names a lock


def preflight(plan: Plan, in_use: InUse | None = None, places: Places | None = None) -> Plan:
    """The same plan, carrying for each action apply is expected to skip the reason why.

    `in_use`, `places`: a snapshot taken already (default: one taken now, with places).
    A plan the budget cut (`plan.budget`) is returned as it is when no snapshot is given:
    the budget asked a Forecast of its own about every action as it chose, and its plan
    carries the answers (one /proc snapshot, not two). An empty plan takes none.
    """
    if plan.budget is not None and in_use is None:
        return plan
    if not plan.actions:  # nothing to ask about: no /proc snapshot (a pass over every fd)
        return dataclasses.replace(plan, skips={})
    with Forecast.of(plan, in_use, places) as forecast:
        skips: dict[int, str] = {}
        for i, action in enumerate(plan.actions):
            why = forecast.why(action)
            if why is not None:
                skips[i] = why
    return dataclasses.replace(plan, skips=skips)


class Forecast:
    """One /proc snapshot, asked about one action at a time: a planned one, or a
    candidate not chosen yet (the budget rule asks before it picks a unit).

    `linked`: what the plan's walk saw of files with several names (Plan.linked); None
    places no such file, and a held one makes every folder of its root walked."""

    def __init__(
        self,
        warnings: Sequence[ScanWarning],
        warnings_dropped: int,
        in_use: InUse | None = None,
        places: Places | None = None,
        *,
        own: frozenset[Key] | None = None,
        linked: LinkedNames | None = None,
    ) -> None:
        """`own`: count what this process holds too (attach()'s marks), and count as
        locked the folders it marks whose flock is pending (live.Marks.pending): held open
        here, locked by nobody yet, and spared by apply all the same."""
        self.pending: frozenset[tuple[int, int, int]] = frozenset()  # own marks: locked
        if in_use is None:
            places = Places()
            in_use = snapshot(places=places, own=own is not None)
            if own:
                pending = {(os.major(dev), os.minor(dev), ino) for dev, ino in own}
                self.pending = frozenset(pending)
                in_use = InUse(in_use.open_by, in_use.locked | pending)
        self.snap = in_use
        self.places = places
        self.mounts = [w.path for w in warnings if w.message == MOUNT_WARNING]
        self.unsure = warnings_dropped > 0  # a mount point may be among the dropped
        # Where the walk missed something (a folder it could not read): no witness there.
        self.unread = [w.path for w in warnings if w.message != MOUNT_WARNING]
        self.linked = linked
        self.roots: dict[str, _Root | None] = {}
        self.locked: dict[str, list[str]] = {}  # root -> locked folders held below it
        self.locked_unsure: set[str] = set()  # roots with a locked folder not placed
        self.parents: dict[str, Parents | None] = {}  # root -> its folders' permissions
        self.let_go_asked = False  # _let_go
        self.holders_asked = False  # _ask_holders

    @classmethod
    def of(
        cls,
        plan: Plan,
        in_use: InUse | None = None,
        places: Places | None = None,
        *,
        own: frozenset[Key] | None = None,
    ) -> Forecast:
        """The forecast of `plan`, with what its walk saw (snapshot as in __init__)."""
        dropped = plan.scan.warnings_dropped
        return cls(plan.warnings, dropped, in_use, places, own=own, linked=plan.linked)

    def __enter__(self) -> Forecast:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for root in self.roots.values():
            if root is not None:
                os.close(root.fd)
        self.roots.clear()
        for parents in self.parents.values():
            if parents is not None:
                parents.close()
        self.parents.clear()

    def why(self, action: Action) -> str | None:
        """Why apply is expected to skip `action`; None if it is expected to go."""
        identity = action.identity
        return self.why_entry(action.root, action.rel, action.is_dir, identity.dev, identity.ino)

    def why_entry(self, root: str, rel: str, is_dir: bool, dev: int, ino: int) -> str | None:
        """As `why`, for an entry no action was built for (a unit the budget may evict)."""
        why = self._in_use(root, rel, is_dir, dev, ino)
        why = self._locked_why(root, rel, is_dir, (dev, ino), why)
        return why if why is not None else self._denied(root, rel, is_dir)

    def _denied(self, root: str, rel: str, is_dir: bool) -> str | None:
        """Why its folder will not give the entry up (permission, a chattr flag, a sticky
        folder's rule), as apply words it; asked last, as apply asks. Each folder is
        asked once (emptied.Parents, which the plan's emptied folders ask too)."""
        parents = self._parents(root)
        if parents is None:
            return None  # apply will fail to open the root and say why
        head, _, name = rel.rpartition("/")
        return parents.folder_denied(head, name) if is_dir else parents.file_denied(head, name)

    def _parents(self, root: str) -> Parents | None:
        if root not in self.parents:
            self.parents[root] = Parents.of(root)
        return self.parents[root]

    def folders_free(self, path: str) -> bool:
        """True when `why_entry` says None of every folder below root `path`, whatever
        its rel: no file in use placed below it, none left unplaced, no mount point below
        it, no locked folder below it, and root may remove any folder from the root. The
        budget then asks about each file unit it may evict, not about each folder (tens
        of thousands a run). Without root, each folder's own permissions count: no."""
        parents = self._parents(path)
        if parents is not None and (parents.euid != 0 or parents.refuses("")):
            return False
        root = self._root(path)
        if root is not None and (root.walk_all or self.unsure or root.found):
            return False
        prefix = os.path.join(path, "")
        if any(m.startswith(prefix) for m in self.mounts):
            return False
        held, unsure = self._locked(path)
        return not held and not unsure

    def _root(self, path: str) -> _Root | None:
        if path not in self.roots:
            root = self.roots[path] = _Root.open(path, self.snap)
            if root is not None and root.keys:
                root.witness = self._witness(path)
                self.snap = self._let_go(root)
                folders = len(self.places.dirs) if self.places is not None else 0
                root.place(self.places, self.snap)
                if self.places is not None and len(self.places.dirs) != folders:
                    self.locked.clear()  # a folder's lock placed since: ask again
                    self.locked_unsure.clear()
        return self.roots[path]

    def _let_go(self, root: _Root) -> InUse:
        """The snapshot without the locks let go since it was taken, asked once, and only
        when a lock on the root's filesystem was not seen among open files: it was taken
        after the pass over them, and may be gone already (no claim then, as apply finds)."""
        snap, places = self.snap, self.places
        if self.let_go_asked or places is None:
            return snap
        if all(key in places.paths or key in places.dirs for key in root.locked_keys(snap)):
            return snap
        self.let_go_asked = True
        holders = lock_holders()
        return snap if holders is None else _still_held(snap, holders, self.pending)

    def _witness(self, path: str) -> LinkedNames | None:
        """The walk's names of linked files, if it read all of root `path`: then a file
        with several names none of which it saw has none below the root (as the walk
        found it; apply checks again)."""
        if self.linked is None or self.unsure:
            return None
        prefix = os.path.join(path, "")
        if any(p == path or p.startswith(prefix) for p in self.unread):
            return None
        return self.linked

    def _in_use(self, path: str, rel: str, is_dir: bool, dev: int, ino: int) -> str | None:
        snap = self.snap
        if not is_dir:
            why = snap.why(dev, ino)
            if why is not None or not snap.locked:
                return why
            root = self._root(path)  # first: it places the locks taken since the snapshot
            if root is not None and self._ask_folders(path, root):
                return root.folder_locked(rel, self.snap)
            return None
        root = self._root(path)
        if root is None:
            return None  # apply will fail on it and say why; nothing to forecast
        if self._ask_folders(path, root):  # apply asks the folders above it first
            busy = root.folder_locked(rel, self.snap)
            if busy is not None:
                return busy
        mounts = self.mounts
        if (
            root.walk_all
            or self.unsure
            or self._locked(path)[1]
            or (mounts and _holds(os.path.join(path, rel), mounts))
        ):
            return root.folder(rel, self.snap)  # _root, _locked: less what was let go
        return root.found.get(rel)

    def _ask_holders(self, places: Places) -> None:
        """Ask /proc/locks once more who holds each locked folder, and its holders by
        which path they hold it now. A folder another run removes is held locked until it
        is gone: its path fails to place it, and by now its lock is let go (no claim, as
        apply finds); a folder renamed since, or an inode number reused by a new folder,
        is placed by the path its holder has now."""
        holders = lock_holders()
        if holders is None:
            return  # not read again: every lock stays
        self.snap = _still_held(self.snap, holders, self.pending)
        for key in list(places.dirs):
            if self.snap.is_locked(key):
                _place_folder(places, key, _held_paths(holders, key))

    def _ask_folders(self, path: str, root: _Root) -> bool:
        """Whether to ask each folder above an entry for its lock by its key, as apply
        asks: some locked folder of the root's filesystem is placed by none of its paths
        (_locked), or some lock on it was not placed at all (walk_all: its holder's open
        files are not ours to read, or no places were taken)."""
        if self._locked(path)[1]:
            return True
        if root.any_locked is None:
            root.any_locked = bool(root.locked_keys(self.snap))
        return root.walk_all and root.any_locked

    def _locked(self, root: str) -> tuple[list[str], bool]:
        """The locked folders placed below `root` (_locked_below, asked once), and whether
        some locked folder of its filesystem could not be placed: then every folder is
        walked and every file's folders are asked, as apply asks each by its key."""
        places, snap = self.places, self.snap
        if places is None or not places.dirs or not snap.locked:
            return [], False
        if root not in self.locked:
            held, unsure = _locked_below(root, places, snap)
            if unsure and not self.holders_asked:
                self.holders_asked = True
                self._ask_holders(places)
                self.locked.clear()  # a folder placed since, maybe below another root
                self.locked_unsure.clear()
                held, unsure = _locked_below(root, places, self.snap)
            self.locked[root] = held
            if unsure:
                self.locked_unsure.add(root)
        return self.locked[root], root in self.locked_unsure

    def _locked_why(
        self, root: str, rel: str, is_dir: bool, key: Key, why: str | None
    ) -> str | None:
        """A folder some process locks (a live app's mark) spares itself and all inside
        it; placed by the path its holder opened it by, worded as apply words each case.
        A planned folder's own lock is known by its key, as apply knows it, wherever its
        holder opened it (through a bind mount, from another mount namespace)."""
        if is_dir and self.snap.is_locked(key):
            return f"it is {LOCKED}"
        for held in self._locked(root)[0]:
            if rel == held and is_dir:
                why = f"it is {LOCKED}"
            elif rel.startswith(held + "/"):
                why = f"its folder is {LOCKED}"
            elif is_dir and held.startswith(rel + "/") and why is None:
                why = f"{held[len(rel) + 1 :]} is {LOCKED}"
        return why


def _is_folder(path: str, key: Key) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == key


def _still_held(snap: InUse, holders: Mapping[Lock, set[int]], pending: frozenset[Lock]) -> InUse:
    """`snap` less the locks /proc/locks no longer lists (`holders`: lock_holders's),
    keeping this process's own pending marks."""
    return InUse(snap.open_by, snap.locked & (frozenset(holders) | pending))


def _held_paths(holders: Mapping[Lock, set[int]], key: Key) -> set[str]:
    """The paths by which the holders of the lock on `key` have it open now."""
    paths: set[str] = set()
    for pid in holders.get((os.major(key[0]), os.minor(key[0]), key[1]), ()):
        paths |= open_paths(pid, key)
    return paths


def _place_folder(places: Places, key: Key, paths: set[str]) -> bool:
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


def _holds(folder: str, mounts: Sequence[str]) -> bool:
    prefix = folder + "/"
    return any(m.startswith(prefix) for m in mounts)


@dataclasses.dataclass
class _Root:
    fd: int
    path: str
    dev: int
    ino: int
    keys: frozenset[Key]  # files in use on the root's device
    inos: frozenset[int]  # their inode numbers, what a directory listing shows
    walk_all: bool = False  # some of them could not be placed: walk every folder
    found: dict[str, str] = dataclasses.field(default_factory=dict)  # folder rel -> why
    witness: LinkedNames | None = None  # Forecast._witness: the walk saw all of the root
    binds: _Binds = dataclasses.field(default_factory=lambda: _Binds())
    asked: dict[str, str | None] = dataclasses.field(default_factory=dict)  # folder_locked's
    any_locked: bool | None = None  # Forecast._ask_folders: a lock on its filesystem

    @classmethod
    def open(cls, path: str, snap: InUse) -> _Root | None:
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
                continue  # a folder (see _forecast_locked_folders), no regular file, or deleted
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
        a lock let go since is none (Forecast._let_go took it out of `snap`). Anything
        still unsure makes every folder walked, as before."""
        holders = lock_holders() or {}
        for key in keys:
            if key in snap.open_by:
                self.walk_all = True  # seen open, yet not placed: nothing new to learn
                return
            if not snap.is_locked(key):
                continue  # let go since the snapshot
            paths = _held_paths(holders, key)
            if _place_folder(places, key, paths):  # a folder's lock: see _locked_below
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
            if (st.st_dev, st.st_ino) != key:
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
                if (up.st_dev, up.st_ino) == (self.dev, self.ino):
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
        try:
            fd = self._open(rel)
        except OSError:
            return None  # gone or unreachable: apply reports it
        try:
            return self._walk(fd, snap)
        finally:
            os.close(fd)

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
        try:
            fd = self._open(rel)
        except OSError:
            return None  # gone or unreachable: apply reports it
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        return snap.why(st.st_dev, st.st_ino)

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


LOCKED = "locked by another process (flock/fcntl)"  # InUse.why's wording for a lock
# A ctime may lag the clock read at the walk's start: a kernel tick, a filesystem's whole
# seconds. Two seconds more, and a file linked after the walk began is never vouched for.
CTIME_MARGIN_NS = 2_000_000_000


def _locked_below(root: str, places: Places, snap: InUse) -> tuple[list[str], bool]:
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
    if (st.st_dev, st.st_ino) != key:
        return None
    head, rel = path, ""
    while head not in ("/", ""):
        parent = os.path.dirname(head)
        rel = os.path.join(os.path.basename(head), rel) if rel else os.path.basename(head)
        try:
            up = os.lstat(parent)
        except OSError:
            return None
        if (up.st_dev, up.st_ino) == (top.st_dev, top.st_ino):
            return rel
        head = parent
    return ""
