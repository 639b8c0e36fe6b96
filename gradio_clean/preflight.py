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
from collections.abc import Mapping, Sequence

from gradio_clean.emptied import Parents
from gradio_clean.inuse import InUse, Key, Places, lock_holders, snapshot
from gradio_clean.links import LinkedNames
from gradio_clean.placing import (
    ForecastRoot,
    Lock,
    held_paths,
    locked_below,
    place_folder,
)
from gradio_clean.plan import Action, Plan
from gradio_clean.scanned import MOUNT_WARNING, ScanWarning


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
        self.roots: dict[str, ForecastRoot | None] = {}
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

    def _root(self, path: str) -> ForecastRoot | None:
        if path not in self.roots:
            root = self.roots[path] = ForecastRoot.open(path, self.snap)
            if root is not None and root.keys:
                root.witness = self._witness(path)
                self.snap = self._let_go(root)
                folders = len(self.places.dirs) if self.places is not None else 0
                root.place(self.places, self.snap)
                if self.places is not None and len(self.places.dirs) != folders:
                    self.locked.clear()  # a folder's lock placed since: ask again
                    self.locked_unsure.clear()
        return self.roots[path]

    def _let_go(self, root: ForecastRoot) -> InUse:
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
                place_folder(places, key, held_paths(holders, key))

    def _ask_folders(self, path: str, root: ForecastRoot) -> bool:
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
        """The locked folders placed below `root` (locked_below, asked once), and whether
        some locked folder of its filesystem could not be placed: then every folder is
        walked and every file's folders are asked, as apply asks each by its key."""
        places, snap = self.places, self.snap
        if places is None or not places.dirs or not snap.locked:
            return [], False
        if root not in self.locked:
            held, unsure = locked_below(root, places, snap)
            if unsure and not self.holders_asked:
                self.holders_asked = True
                self._ask_holders(places)
                self.locked.clear()  # a folder placed since, maybe below another root
                self.locked_unsure.clear()
                held, unsure = locked_below(root, places, self.snap)
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


LOCKED = "locked by another process (flock/fcntl)"  # InUse.why's wording for a lock


def _still_held(snap: InUse, holders: Mapping[Lock, set[int]], pending: frozenset[Lock]) -> InUse:
    """`snap` less the locks /proc/locks no longer lists (`holders`: lock_holders's),
    keeping this process's own pending marks."""
    return InUse(snap.open_by, snap.locked & (frozenset(holders) | pending))


def _holds(folder: str, mounts: Sequence[str]) -> bool:
    """Whether one of the walk's mount points (`mounts`) lies below `folder`."""
    prefix = folder + "/"
    return any(m.startswith(prefix) for m in mounts)
