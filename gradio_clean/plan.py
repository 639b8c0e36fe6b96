"""What prune intends to do, and what it did: plain frozen data.

A plan is built once (dry run or not) and the very same plan is applied, each
action re-checked against the identity recorded here just before it is deleted.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gradio_clean.classify import Category
from gradio_clean.ignore import ScopeReport
from gradio_clean.links import LinkedNames, taken_back
from gradio_clean.roots import Root
from gradio_clean.scanned import ScanResult, ScanWarning

if TYPE_CHECKING:
    from gradio_clean.actions import Actions, Going
    from gradio_clean.duplicates import Candidate
    from gradio_clean.emptied import Emptied
    from gradio_clean.outcomes import Outcomes
    from gradio_clean.scan import Item


class Rule(str, enum.Enum):
    OLDER_THAN = "older-than"
    DUPLICATES = "duplicates"
    ORPHANED = "orphaned-sessions"
    MAX_SIZE = "max-size"
    MIN_FREE = "min-free"


class Status(str, enum.Enum):
    PLANNED = "planned"
    DELETED = "deleted"
    LINKED = "linked"  # a duplicate replaced by a hard link to the kept copy: its path stays
    SKIPPED = "skipped"
    FAILED = "failed"
    REPORTED = "reported"  # a duplicate shown only: session files are not linked


DONE = frozenset({Status.DELETED, Status.LINKED})


@dataclass(frozen=True, slots=True)
class Identity:
    """What an entry was when planned; anything else found later is left alone."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    # Duplicates: a rewrite that restores size and mtime still moves ctime, which no one can
    # set back, so a copy to link or delete and its kept copy are checked on it. 0: not
    # compared (an age rule deletes a file whatever its content, and a hard link that
    # another worker removes moves the ctime of the name left).
    ctime_ns: int = 0


@dataclass(frozen=True, slots=True)
class Action:
    root: str
    rel: str  # relative to root; never empty
    item_rel: str  # the top-level item it belongs to: emptied folders up to it may go
    rule: Rule
    category: Category
    is_dir: bool
    bytes: int
    files: int
    reason: str
    identity: Identity
    newest_ns: int  # folders: nothing inside may be newer than this at deletion time
    keep: str | None = None  # duplicates: absolute path of the copy that stays
    keep_identity: Identity | None = None
    hardlink: bool = False  # duplicates: replace by a hard link to `keep` instead of deleting
    stray_link: bool = False  # our own interrupted temporary: removed only while still a link
    age_ns: int | None = None  # the timestamp the rule measured the age from (--age-by)

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.rel)


# -- building actions ------------------------------------------------------------------


def stat_identity(st: os.stat_result) -> Identity:
    """With the ctime: a duplicate or a stray link is re-checked on it."""
    return Identity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def candidate_identity(c: Candidate) -> Identity:
    return Identity(c.dev, c.ino, c.size, c.mtime_ns, c.ctime_ns)


def folder_action(root: str, item: Item, rule: Rule, reason: str, then: int) -> Action:
    """A top-level folder that goes whole; nothing inside may be newer than the walk saw."""
    return whole_action(
        root,
        item.rel,
        item.category,
        True,
        dev=item.dev,
        ino=item.ino,
        size=item.bytes,
        files=item.files,
        mtime_ns=item.mtime_ns,
        newest_ns=item.newest_ns,
        rule=rule,
        reason=reason,
        age_ns=then,
    )


def whole_action(
    root: str,
    rel: str,
    category: Category,
    is_dir: bool,
    *,
    dev: int,
    ino: int,
    size: int,
    files: int,
    mtime_ns: int,
    newest_ns: int,
    rule: Rule,
    reason: str,
    age_ns: int,
) -> Action:
    """A top-level item that goes whole (a folder, or a file that is an item of its own),
    from the walk's few numbers about it: folder_action's, and the budget's evictions."""
    return Action(
        root=root,
        rel=rel,
        item_rel=rel,
        rule=rule,
        category=category,
        is_dir=is_dir,
        bytes=size,
        files=files,
        reason=reason,
        identity=Identity(dev, ino, 0 if is_dir else size, mtime_ns),
        newest_ns=newest_ns,
        age_ns=age_ns,
    )


def file_action(
    root: str,
    item_rel: str,
    rel: str,
    identity: Identity,
    category: Category,
    rule: Rule,
    reason: str,
    age_ns: int,
) -> Action:
    """One file an age rule selected (its ctime is not compared: see Identity)."""
    return Action(
        root=root,
        rel=rel,
        item_rel=item_rel,
        rule=rule,
        category=category,
        is_dir=False,
        bytes=identity.size,
        files=1,
        reason=reason,
        identity=identity,
        newest_ns=identity.mtime_ns,
        age_ns=age_ns,
    )


def stray_link_action(root: str, rel: str, item_rel: str, st: os.stat_result) -> Action:
    """An interrupted run's temporary link; another name keeps the inode, so it frees nothing."""
    return Action(
        root=root,
        rel=rel,
        item_rel=item_rel,
        rule=Rule.DUPLICATES,
        category=Category.LEFTOVER,
        is_dir=False,
        bytes=0,
        files=1,
        reason="temporary link left by an interrupted gradio-clean run",
        identity=stat_identity(st),
        newest_ns=st.st_mtime_ns,
        stray_link=True,
    )


def duplicate_action(
    root: str,
    rel: str,
    category: Category,
    extra: Candidate,
    keep: Candidate,
    reason: str,
    *,
    hardlink: bool,
    item_rel: str = "",
) -> Action:
    """An extra copy: linked to `keep` or deleted, both re-checked before. `item_rel`:
    its item (classify.item_of), else its top-level entry."""
    return Action(
        root=root,
        rel=rel,
        item_rel=item_rel or rel.split("/", 1)[0],
        rule=Rule.DUPLICATES,
        category=category,
        is_dir=False,
        bytes=extra.size,
        files=1,
        reason=reason,
        identity=candidate_identity(extra),
        newest_ns=extra.mtime_ns,
        keep=keep.path,
        keep_identity=candidate_identity(keep),
        hardlink=hardlink,
    )


@dataclass(frozen=True)
class BudgetTarget:
    """One budget: --max-size over all roots, or --min-free on one filesystem.

    Both are kept as usage under a ceiling: for --min-free the usage is the
    filesystem's (its size less what unprivileged users may still write, f_bavail)
    and the ceiling its size less the free space wanted.
    """

    rule: Rule  # MAX_SIZE or MIN_FREE
    roots: tuple[str, ...]  # the roots the target covers
    usage: int  # bytes used now
    target: int  # the most usage allowed
    freed: int  # what the whole plan frees here (every rule; in-use actions not counted)
    evicted: int  # units the budget itself evicted here
    evicted_bytes: int  # what those free
    newest_evicted_ns: int | None  # the last use of the most recently used unit evicted
    why_over: str | None = None  # if still over: "3.4 GiB is younger than 10m, …"
    filesystem: str | None = None  # min-free: the filesystem's mount point, as far as known
    size: int | None = None  # min-free: the filesystem's size
    wanted_free: int | None = None  # min-free: free bytes wanted
    limit: str = ""  # the value as the user gave it, formatted back: "20G", "10%"

    @property
    def after(self) -> int:
        return self.usage - self.freed

    @property
    def over(self) -> int:
        """Bytes still over the target after the plan; 0 when met."""
        return max(0, self.after - self.target)


@dataclass(frozen=True)
class Budget:
    """What the budget rules found and chose (Plan.budget)."""

    targets: tuple[BudgetTarget, ...]
    min_age: float  # seconds: nothing younger was evicted

    @property
    def met(self) -> bool:
        return all(t.over == 0 for t in self.targets)

    @property
    def evicted(self) -> int:
        return sum(t.evicted for t in self.targets)


@dataclass(frozen=True)
class Plan:
    roots: tuple[Root, ...]
    actions: Actions  # in (root, path) order, in compact columns
    scan: ScanResult
    warnings: tuple[ScanWarning, ...]  # scan warnings plus the planner's own
    # The preflight's forecast: action index -> why apply will skip it (absent: it goes).
    skips: Mapping[int, str] = field(default_factory=dict)
    scopes: tuple[ScopeReport, ...] = ()  # per root: what the excludes kept out
    # Duplicates shown but never acted on (session files; see rules.duplicate_actions).
    reported: tuple[Action, ...] = ()
    budget: Budget | None = None  # --max-size / --min-free: the targets and the cut
    # Every name the walk saw of each file with more than one link (links.py).
    linked: LinkedNames | None = None
    # The folders apply removes because the run empties them, if every action goes.
    emptied: tuple[Emptied, ...] = ()

    @property
    def bytes(self) -> int:
        return self.actions.bytes

    @property
    def files(self) -> int:
        return self.actions.files

    @property
    def folders(self) -> int:
        return self.actions.folders

    def expected(self) -> Iterator[tuple[Action, str | None]]:
        """Each action with the preflight's forecast: None (it goes) or why it will not."""
        skips = self.skips
        for i, action in enumerate(self.actions):
            yield action, skips.get(i)

    @property
    def going(self) -> Going:
        """What apply will free: the actions the preflight expects to go, an inode with
        several names counted once, and only if all of them go (as apply counts it)."""
        going = self.actions.going(self.skips)
        if self.linked:
            deleted, linked = taken_back(self.actions, self.skips, self.linked)
            going.bytes -= deleted
            going.link_bytes -= linked
        return going

    @property
    def emptying(self) -> tuple[str, ...]:
        """The folders apply removes because the run empties them, the forecast skips
        left out (as ApplyResult.folders_removed, when nothing changed in between)."""
        from gradio_clean.emptied import emptying

        if not self.emptied:
            return ()
        return tuple(e.path for e in emptying(self.emptied, self.actions, self.skips))

    @property
    def folders_removed(self) -> int:
        """The folders apply removes, whole or emptied (as ApplyResult.folders)."""
        return self.removes(self.going)

    def removes(self, going: Going) -> int:
        """folders_removed, of `going` read already: reading it reads every action."""
        return going.folders + len(self.emptying)

    @property
    def to_free(self) -> tuple[int, int, int]:
        """Bytes, files and folders of the actions the preflight expects to go. A copy
        replaced by a hard link frees its bytes but no file: its path stays (as apply's
        freed_files counts it)."""
        return self.frees(self.going)

    @staticmethod
    def frees(going: Going) -> tuple[int, int, int]:
        """to_free, of `going` read already."""
        return going.bytes + going.link_bytes, going.files, going.folders


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    status: Status
    detail: str | None = None  # why it was skipped or failed, or "already gone"
    freed_bytes: int = 0
    freed_files: int = 0


# Why a folder the run emptied is kept when every planned entry in it went: rmdir found
# a name in it that was not there when the run planned.
APPEARED = "not empty: something appeared in it since planning"


@dataclass(frozen=True)
class ApplyResult:
    outcomes: Outcomes  # in plan order, in columns over the plan's rows
    folders_removed: tuple[str, ...]  # folders emptied by the run and removed
    duration: float
    interrupted: int = 0  # the signal that stopped the run early; later actions have no outcome
    # Folders the dry run counted as emptied (Plan.emptying) that the run kept, and why.
    folders_kept: tuple[tuple[str, str], ...] = ()

    def count(self, status: Status) -> int:
        return self.outcomes.with_status(status)

    @property
    def freed_bytes(self) -> int:
        return self.outcomes.freed_bytes

    @property
    def freed_files(self) -> int:
        return self.outcomes.freed_files

    @property
    def folders(self) -> int:
        """Folders removed whole by an action, plus folders the run emptied."""
        return self.outcomes.whole_folders + len(self.folders_removed)

    @property
    def complete(self) -> bool:
        """Not stopped, every action done, and every folder promised emptied removed but
        one that something new appeared in (a live app wrote there again: no failure)."""
        refused = any(why != APPEARED for _, why in self.folders_kept)
        return not self.interrupted and self.outcomes.all_done and not refused
