"""What prune intends to do, and what it did: plain frozen data.

A plan is built once (dry run or not) and the very same plan is applied, each
action re-checked against the identity recorded here just before it is deleted.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

from gradio_clean.classify import Category
from gradio_clean.roots import Root
from gradio_clean.scan import ScanResult, ScanWarning


class Rule(str, enum.Enum):
    OLDER_THAN = "older-than"
    DUPLICATES = "duplicates"
    ORPHANED = "orphaned-sessions"


class Status(str, enum.Enum):
    PLANNED = "planned"
    DELETED = "deleted"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Identity:
    """What an entry was when planned; anything else found later is left alone."""

    dev: int
    ino: int
    size: int
    mtime_ns: int


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
    age_ns: int | None = None  # the timestamp the rule measured the age from (--age-by)

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.rel)


@dataclass(frozen=True)
class Plan:
    roots: tuple[Root, ...]
    actions: tuple[Action, ...]
    scan: ScanResult
    warnings: tuple[ScanWarning, ...]  # scan warnings plus the planner's own

    @property
    def bytes(self) -> int:
        return sum(a.bytes for a in self.actions)

    @property
    def files(self) -> int:
        return sum(a.files for a in self.actions)

    @property
    def folders(self) -> int:
        return sum(1 for a in self.actions if a.is_dir)


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    status: Status
    detail: str | None = None  # why it was skipped or failed, or "already gone"
    freed_bytes: int = 0
    freed_files: int = 0


@dataclass(frozen=True)
class ApplyResult:
    outcomes: tuple[Outcome, ...]
    folders_removed: tuple[str, ...]  # folders emptied by the run and removed
    duration: float

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    @property
    def freed_bytes(self) -> int:
        return sum(o.freed_bytes for o in self.outcomes)

    @property
    def freed_files(self) -> int:
        return sum(o.freed_files for o in self.outcomes)

    @property
    def folders(self) -> int:
        """Folders removed whole by an action, plus folders the run emptied."""
        whole = sum(
            1
            for o in self.outcomes
            if o.action.is_dir and o.status is Status.DELETED and o.detail is None
        )
        return whole + len(self.folders_removed)

    @property
    def complete(self) -> bool:
        return all(o.status is Status.DELETED for o in self.outcomes)
