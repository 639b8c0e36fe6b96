"""Rules turn one scan into a plan: which entries go, under which rule, and why.

Rules combine (an entry is planned if any selected rule picks it) and are
evaluated on the same walk that counts the tree, through scan hooks, so a plan
costs one pass plus the hashing the duplicates rule needs.

Scope, enforced here and nowhere else:
- inside a temp dir every entry is a candidate;
- everywhere else only session folders are, and the app's own files never;
- flagged data and cached examples only when their category is asked for.
"""

from __future__ import annotations

import gc
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from gradio_clean.classify import Category, Kind, Role, is_our_temp_name
from gradio_clean.duplicates import Candidate, find_duplicates
from gradio_clean.durations import AgeBy as AgeBy  # re-exported: rules.AgeBy keeps working
from gradio_clean.durations import format_duration
from gradio_clean.ignore import IgnoreFile, Scope, ScopeReport, read_ignore_file
from gradio_clean.plan import Action, Identity, Plan, Rule
from gradio_clean.roots import Root
from gradio_clean.scan import Hooks, Item, ProgressHook, ScanWarning, scan

USER_DATA = frozenset({Category.FLAGGED, Category.EXAMPLES})
# Content worth deduplicating; Gradio's leftovers and internal state are not. Gradio never
# rewrites these in place, so a hard link between two copies is safe (flagged data and
# cached examples are seen only when --category asks for them).
DEDUPE_CATEGORIES = frozenset({Category.CACHE, Category.FLAGGED, Category.EXAMPLES})
# An app rewrites its own session files (`open(path, "w")`): linking two sessions' copies
# would make a write in one show in the other. Their duplicates are only reported, and
# deleted only with --dedupe delete and an explicit --category session.
SESSION_DEDUPE = frozenset({Category.SESSION})
STRAY_LINK_AGE = 3600.0  # seconds (by ctime) before an interrupted run's temporary goes
DEFAULT_CATEGORIES = frozenset(
    {Category.CACHE, Category.LEFTOVER, Category.SESSION, Category.INTERNAL, Category.OTHER}
)


@dataclass(frozen=True)
class RuleSet:
    older_than: float | None = None  # seconds
    age_by: AgeBy = AgeBy.NEWEST
    duplicates: bool = False
    hardlink: bool = True  # --dedupe hardlink (default) or delete
    keep_oldest: bool = False
    verify: bool = False
    orphaned_sessions: bool = False
    session_ttl: float = 3600.0
    categories: frozenset[Category] = DEFAULT_CATEGORIES
    explicit_categories: bool = False  # --category given: flagged/examples may be touched
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return self.older_than is not None or self.duplicates or self.orphaned_sessions


def age_ns(st: os.stat_result, age_by: AgeBy) -> int:
    """The timestamp an entry's age counts from.

    newest: the latest of mtime, ctime (when the entry got here: a copy keeps its
    source's mtime but not its ctime) and, for files, atime (the last read, where the
    mount records it). A folder's atime moves whenever anything lists it (this tool,
    du, a backup), so it says nothing about use and newest leaves it out.
    """
    if age_by is AgeBy.MTIME:
        return st.st_mtime_ns
    if age_by is AgeBy.ATIME:
        return st.st_atime_ns
    if age_by is AgeBy.CTIME:
        return st.st_ctime_ns
    if stat.S_ISDIR(st.st_mode):
        return max(st.st_mtime_ns, st.st_ctime_ns)
    return max(st.st_mtime_ns, st.st_atime_ns, st.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class _Dupe(Candidate):
    """A duplicate candidate that knows its category: one object per file, no side table
    (at 200k files a tuple and a rel path each cost ~60 MB, issue 12)."""

    category: Category = Category.CACHE

    @classmethod
    def of(cls, path: str, st: os.stat_result, category: Category) -> _Dupe:
        c = Candidate.from_stat(path, st)
        return cls(
            c.path, c.dev, c.ino, c.size, c.mtime_ns, c.uid, c.gid, c.mode, c.ctime_ns, category
        )


_Stray = tuple[str, os.stat_result]  # an interrupted run's temporary link: rel path, lstat


class _Reasons:
    """Each reason text once per run, not once per selected file."""

    def __init__(self, rules: RuleSet) -> None:
        by = "" if rules.age_by is AgeBy.NEWEST else f"{rules.age_by.value} "
        older = format_duration(rules.older_than) if rules.older_than is not None else ""
        self.older = f"{by}older than {older}"
        self.leftover = f"Gradio leftover, {by}older than {format_duration(rules.session_ttl)}"


@dataclass
class _Selected:
    rel: str
    st: os.stat_result
    category: Category
    rule: Rule
    reason: str
    age_ns: int  # the timestamp the rule measured


@dataclass
class _RootPlanner:
    """Per-root state while the walk goes: the current item's files, then its actions."""

    root: Root
    rules: RuleSet
    now_ns: int
    scope: Scope
    actions: list[Action] = field(default_factory=list)
    dupes: list[_Dupe] = field(default_factory=list)
    reported: list[Action] = field(default_factory=list)  # duplicates shown, never acted on
    strays: list[_Stray] = field(default_factory=list)
    linked: set[tuple[int, int]] = field(default_factory=set)  # inodes with another path
    selected: list[_Selected] = field(default_factory=list)
    unselected: list[tuple[str, os.stat_result, Category]] = field(default_factory=list)
    item_excluded_inside: bool = False
    reasons: _Reasons = field(init=False)

    def __post_init__(self) -> None:
        self.reasons = _Reasons(self.rules)

    def allowed(self, category: Category) -> bool:
        if category not in self.rules.categories:
            return False
        if self.root.role is Role.TEMP:
            return category not in USER_DATA or self.rules.explicit_categories
        if category is Category.SESSION:
            return True
        return category in USER_DATA and self.rules.explicit_categories

    def on_file(self, rel: str, st: os.stat_result, category: Category) -> None:
        if st.st_nlink > 1 and self._stray(rel, st, category):
            return
        if not self.allowed(category):
            return
        if not self.scope.wants(rel, is_dir=False):
            self.item_excluded_inside = True
            return
        rules = self.rules
        then = age_ns(st, rules.age_by)
        if rules.older_than is not None and self.now_ns - then > rules.older_than * 1e9:
            self.selected.append(
                _Selected(rel, st, category, Rule.OLDER_THAN, self.reasons.older, then)
            )
            return
        if (
            rules.orphaned_sessions
            and category is Category.LEFTOVER
            and self.now_ns - then > rules.session_ttl * 1e9
        ):
            self.selected.append(
                _Selected(rel, st, category, Rule.ORPHANED, self.reasons.leftover, then)
            )
            return
        self.unselected.append((rel, st, category))

    def _stray(self, rel: str, st: os.stat_result, category: Category) -> bool:
        """Note a hard-linked file; True for an old temporary link of ours (stray_actions)."""
        if not is_our_temp_name(rel.rpartition("/")[2]):
            self.linked.add((st.st_dev, st.st_ino))
            return False
        if self.now_ns - st.st_ctime_ns <= STRAY_LINK_AGE * 1e9:
            return False  # a run may still be about to rename it; an ordinary file till then
        if not self.allowed(category) or not self.scope.wants(rel, is_dir=False):
            return False
        self.strays.append((rel, st))
        return True

    def stray_actions(self) -> None:
        """Remove what a killed run left between its link and its rename.

        Only a name of our exact shape, older than STRAY_LINK_AGE by ctime, and still
        a hard link to a file this walk saw under another name in the same root: the
        content stays at that other name. Apply checks the link count again.
        """
        for rel, st in self.strays:
            if (st.st_dev, st.st_ino) not in self.linked:
                continue
            self.actions.append(
                Action(
                    root=self.root.path,
                    rel=rel,
                    item_rel=rel.split("/", 1)[0],
                    rule=Rule.DUPLICATES,
                    category=Category.LEFTOVER,
                    is_dir=False,
                    bytes=0,  # another name keeps the inode: nothing is freed
                    files=1,
                    reason="temporary link left by an interrupted gradio-clean run",
                    identity=_identity(st),
                    newest_ns=st.st_mtime_ns,
                    stray_link=True,
                )
            )
        self.strays.clear()
        self.linked.clear()

    def on_item(self, item: Item) -> None:
        try:
            self._item(item)
        finally:
            self.selected.clear()
            self.unselected.clear()
            self.item_excluded_inside = False

    def _item(self, item: Item) -> None:
        whole = self._whole_item_rule(item)
        if whole is not None:
            rule, reason = whole
            self.actions.append(self._folder_action(item, rule, reason, item.age_ns))
            return
        rules = self.rules
        if (
            item.is_dir
            and self.selected
            and not self.unselected
            and item.other == 0
            and not self.item_excluded_inside
            and len({s.rule for s in self.selected}) == 1
            and self.scope.wants(item.rel, is_dir=True)
        ):
            first = self.selected[0]
            then = max(s.age_ns for s in self.selected)
            self.actions.append(self._folder_action(item, first.rule, first.reason, then))
            return
        for s in self.selected:
            self.actions.append(self._file_action(item, s))
        if rules.duplicates:
            for rel, st, category in self.unselected:
                if st.st_size > 0 and (category in DEDUPE_CATEGORIES or category in SESSION_DEDUPE):
                    path = os.path.join(self.root.path, rel)
                    self.dupes.append(_Dupe.of(path, st, category))

    def _whole_item_rule(self, item: Item) -> tuple[Rule, str] | None:
        """Orphaned sessions and leftover folders go whole, or not at all."""
        rules = self.rules
        if not rules.orphaned_sessions or not item.is_dir:
            return None
        if not self.allowed(item.category) or self.item_excluded_inside:
            return None
        if not self.scope.wants(item.rel, is_dir=True):
            return None
        idle = self.now_ns - item.age_ns
        if idle <= rules.session_ttl * 1e9:
            return None
        ttl = format_duration(rules.session_ttl)
        if item.kind is Kind.SESSION_DIR:
            return (
                Rule.ORPHANED,
                f"session idle longer than {ttl}",
            )
        if item.kind is Kind.HASH_DIR and item.category is Category.LEFTOVER:
            return (
                Rule.ORPHANED,
                f"empty hash folder, untouched for longer than {ttl}",
            )
        if item.kind is Kind.TMP_DIR:
            return (
                Rule.ORPHANED,
                f"Gradio tmp folder, untouched for longer than {ttl}",
            )
        return None

    def _folder_action(self, item: Item, rule: Rule, reason: str, then: int) -> Action:
        return Action(
            root=self.root.path,
            rel=item.rel,
            item_rel=item.rel,
            rule=rule,
            category=item.category,
            is_dir=True,
            bytes=item.bytes,
            files=item.files,
            reason=reason,
            identity=Identity(item.dev, item.ino, 0, item.mtime_ns),
            newest_ns=item.newest_ns,
            age_ns=then,
        )

    def _file_action(self, item: Item, s: _Selected) -> Action:
        st = s.st
        return Action(
            root=self.root.path,
            rel=s.rel,
            item_rel=item.rel,
            rule=s.rule,
            category=s.category,
            is_dir=False,
            bytes=st.st_size,
            files=1,
            reason=s.reason,
            identity=Identity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns),
            newest_ns=st.st_mtime_ns,
            age_ns=s.age_ns,
        )

    def duplicate_actions(self, warn: Callable[[str, str], None]) -> None:
        """Duplicate sets, found apart for cache content and for session files.

        Each pool is hashed on its own so that a set never mixes them: a cache
        path linked to a session file would change whenever the app rewrote it.
        """
        if not self.dupes:
            return
        cache = [d for d in self.dupes if d.category not in SESSION_DEDUPE]
        sessions = [d for d in self.dupes if d.category in SESSION_DEDUPE]
        self.dupes.clear()
        rules = self.rules
        delete_sessions = (
            not rules.hardlink
            and rules.explicit_categories
            and Category.SESSION in rules.categories
        )
        self._dedupe(cache, warn, act=True)
        self._dedupe(sessions, warn, act=delete_sessions)

    def _dedupe(self, pool: list[_Dupe], warn: Callable[[str, str], None], *, act: bool) -> None:
        """Plan one pool's extras; with `act` False they go to `reported` only."""
        if not pool:
            return
        start = len(os.path.join(self.root.path, ""))  # a candidate's path is root + rel
        report = find_duplicates(
            pool,
            keep="oldest" if self.rules.keep_oldest else "newest",
            verify=self.rules.verify,
            root=self.root.path,
        )
        for path, message in report.warnings:
            warn(path, message)
        hardlink = self.rules.hardlink and act
        if not act:
            verb = "same content as"
            why = "; session files are never linked (an app may rewrite them)"
        else:
            verb = "hard-linked to" if hardlink else "deleted; same content as"
            why = ""
        for dset in report.sets:
            keep = dset.keep
            keep_identity = _identity_of(keep)
            keep_rel = keep.path[start:]
            for extra in dset.extras:
                rel = extra.path[start:]
                category = cast(_Dupe, extra).category
                action = Action(
                    root=self.root.path,
                    rel=rel,
                    item_rel=rel.split("/", 1)[0],
                    rule=Rule.DUPLICATES,
                    category=category,
                    is_dir=False,
                    bytes=extra.size,
                    files=1,
                    reason=f"{verb} {keep_rel}{why}",
                    identity=_identity_of(extra),
                    newest_ns=extra.mtime_ns,
                    keep=keep.path,
                    keep_identity=keep_identity,
                    hardlink=hardlink,
                )
                (self.actions if act else self.reported).append(action)


def _identity(st: os.stat_result) -> Identity:
    return Identity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _identity_of(c: Candidate) -> Identity:
    return Identity(c.dev, c.ino, c.size, c.mtime_ns, c.ctime_ns)


def build_plan(
    roots: Sequence[Root],
    rules: RuleSet,
    *,
    now: float,
    progress: ProgressHook | None = None,
    jobs: int | None = None,
) -> Plan:
    """Walk every root once and decide what each rule selects (`jobs`: as for scan)."""
    planners: dict[str, _RootPlanner] = {}
    ignore_files: dict[str, IgnoreFile | None] = {}
    current: list[_RootPlanner] = []
    extra_warnings: list[ScanWarning] = []

    def on_root(root: Root) -> None:
        ignore = ignore_files[root.path] = read_ignore_file(root)
        if ignore is not None and not ignore.used:
            extra_warnings.append(ScanWarning(ignore.path, f"ignored: {ignore.problem}"))
        scope = Scope(rules.include, rules.exclude, ignore.patterns if ignore else None)
        planner = _RootPlanner(root, rules, int(now * 1e9), scope)
        planners[root.path] = planner
        current[:] = [planner]

    def on_file(rel: str, st: os.stat_result, category: Category) -> None:
        current[0].on_file(rel, st, category)

    def on_item(item: Item) -> None:
        current[0].on_item(item)

    def export() -> object:  # in a forked worker: what it planned for its share
        p = current[0]
        scope = p.scope  # forked before the root's first entry: counts are its own
        return p.actions, p.dupes, p.strays, p.linked, (scope.excluded, scope.ignored)

    def absorb(payload: object) -> None:
        actions, dupes, strays, linked, (excluded, ignored) = cast(
            tuple[list[Action], list[_Dupe], list[_Stray], set[tuple[int, int]], tuple[int, int]],
            payload,
        )
        p = current[0]
        p.actions.extend(actions)
        p.dupes.extend(dupes)
        p.strays.extend(strays)
        p.linked.update(linked)
        p.scope.excluded += excluded
        p.scope.ignored += ignored

    paused = gc.isenabled()
    gc.disable()  # the walk makes ~1 long-lived object per candidate; GC passes cost ~half
    try:
        result = scan(
            roots,
            top=0,
            now=now,
            jobs=jobs,
            hooks=Hooks(
                on_root=on_root,
                on_file=on_file,
                on_item=on_item,
                progress=progress,
                age=lambda st: age_ns(st, rules.age_by),
                export=export,
                absorb=absorb,
            ),
        )
        actions: list[Action] = []
        reported: list[Action] = []
        for planner in planners.values():
            planner.stray_actions()
            if rules.duplicates:
                planner.duplicate_actions(lambda p, m: extra_warnings.append(ScanWarning(p, m)))
            actions.extend(planner.actions)
            reported.extend(planner.reported)
    finally:
        if paused:
            gc.enable()
    actions.sort(key=lambda a: (a.root, a.rel))
    return Plan(
        roots=tuple(roots),
        actions=tuple(actions),
        scan=result,
        warnings=(*result.warnings, *extra_warnings),
        scopes=tuple(
            ScopeReport(path, ignore_files[path], p.scope.excluded, p.scope.ignored)
            for path, p in planners.items()
        ),
        reported=tuple(sorted(reported, key=lambda a: (a.root, a.rel))),
    )


def category_names(values: Iterable[str]) -> frozenset[Category]:
    return frozenset(Category(v) for v in values)
