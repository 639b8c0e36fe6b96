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

import os
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, cast

from gradio_clean.actions import Actions, merge
from gradio_clean.ages import age_getter
from gradio_clean.ages import age_ns as age_ns  # re-exported: rules.age_ns keeps working
from gradio_clean.budget import apply_budget
from gradio_clean.classify import Category, Kind, Role, is_our_temp_name, item_of
from gradio_clean.durations import format_duration
from gradio_clean.emptied import find_emptied
from gradio_clean.gcpause import gc_paused
from gradio_clean.ignore import (
    IGNORE_FILE,
    IgnoreFile,
    Scope,
    ScopeReport,
    read_ignore_file,
    refused_files,
)
from gradio_clean.inuse import Key
from gradio_clean.links import LinkedNames
from gradio_clean.options import TABLE, Dedupe, Keep, selects
from gradio_clean.options import AgeBy as AgeBy  # re-exported: rules.AgeBy keeps working
from gradio_clean.plan import (
    Action,
    Identity,
    Plan,
    Rule,
    file_action,
    folder_action,
    stray_link_action,
)
from gradio_clean.roots import Root
from gradio_clean.scan import (
    Held,
    Hooks,
    Item,
    ProgressHook,
    RootHooks,
    ScanResult,
    ScanWarning,
    scan,
)
from gradio_clean.sizes import MinFree
from gradio_clean.units import UnitCollector

if TYPE_CHECKING:  # the duplicates rule's modules (hashing: hashlib, mmap) only when it runs
    from gradio_clean.dedupe import DupePool

USER_DATA = frozenset({Category.FLAGGED, Category.EXAMPLES})
STRAY_LINK_AGE = 3600.0  # seconds (by ctime) before an interrupted run's temporary goes
DEFAULT_CATEGORIES = frozenset(
    {Category.CACHE, Category.LEFTOVER, Category.SESSION, Category.INTERNAL, Category.OTHER}
)


@dataclass(frozen=True)
class RuleSet:
    """The rules of one run. Each field but the categories' is an option of options.py,
    of the same name; `from_values` fills them from the table."""

    older_than: float | None = None  # seconds
    age_by: AgeBy = AgeBy.NEWEST
    duplicates: bool = False
    dedupe: Dedupe = Dedupe.HARDLINK
    keep: Keep = Keep.NEWEST
    verify: bool = False
    orphaned_sessions: bool = False
    session_ttl: float = 3600.0
    categories: frozenset[Category] = DEFAULT_CATEGORIES
    explicit_categories: bool = False  # --category given: flagged/examples may be touched
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_size: int | None = None  # bytes: the roots' total usage at most this (budget.py)
    min_free: MinFree | None = None  # free space to keep on each root's filesystem
    min_age: float = 600.0  # seconds: the budget evicts nothing younger

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> RuleSet:
        """The rules from typed option values keyed like the config (absent: default)."""
        fields = {
            option.rule_field: option.to_rule(values.get(option.key, option.default))
            for option in TABLE
            if option.rule_field is not None
        }
        categories = cast("tuple[Category, ...] | None", values.get("categories"))
        return cls(
            **fields,
            categories=frozenset(categories) if categories else DEFAULT_CATEGORIES,
            explicit_categories=bool(categories),
        )

    @property
    def any(self) -> bool:
        """Whether any rule is selected (the rule switches of the option table)."""
        return any(selects(getattr(self, o.rule_field)) for o in TABLE if o.rule and o.rule_field)

    @property
    def budget(self) -> bool:
        """--max-size or --min-free: the budget step runs after the other rules."""
        return self.max_size is not None or self.min_free is not None


def allowed_categories(role: Role, rules: RuleSet, *, project: bool = False) -> frozenset[Category]:
    """What the rules may touch in a root of `role`: inside a temp dir any selected
    category (user data, and in a temp dir that is also a project `other`, only when
    named); elsewhere session folders, and user data only when named."""
    named = rules.explicit_categories
    if role is Role.TEMP:
        kept = USER_DATA | {Category.OTHER} if project else USER_DATA
        return frozenset(c for c in rules.categories if c not in kept or named)
    return frozenset(
        c for c in rules.categories if c is Category.SESSION or (c in USER_DATA and named)
    )


_Stray = tuple[str, os.stat_result]  # an interrupted run's temporary link: rel path, lstat


class _Reasons:
    """Each reason text once per run, not once per selected file."""

    def __init__(self, rules: RuleSet) -> None:
        by = "" if rules.age_by is AgeBy.NEWEST else f"{rules.age_by.value} "
        older = format_duration(rules.older_than) if rules.older_than is not None else ""
        self.older = f"{by}older than {older}"
        self.leftover = f"Gradio leftover, {by}older than {format_duration(rules.session_ttl)}"


class _Picks:
    """The files an age rule selected in the current item, in flat columns: ~60 bytes a
    file rather than a stat_result (~700) and a record (issue 13: a flat folder of 1M old
    files). Most items then go whole and only the counts are read; the rest become one
    action per file. A path is stored as the length of the folder part it shares with the one
    before (files of one folder come together) and the rest, encoded."""

    __slots__ = ("age", "dev", "ino", "kind", "last", "mtime", "shared", "size", "tail", "tails")

    def __init__(self) -> None:
        self.last = ""  # the rel added last
        self.shared = array("I")  # characters of rel shared with the previous rel (its folder)
        self.tails = array("I")  # length of the rest, encoded
        self.tail = bytearray()  # the rests, back to back (os.fsencode: any name round-trips)
        self.dev, self.ino, self.size = array("Q"), array("Q"), array("Q")
        self.mtime, self.age = array("q"), array("q")
        self.kind = bytearray()  # _PICK_KINDS index: category and rule

    def __len__(self) -> int:
        return len(self.kind)

    def add(self, rel: str, st: os.stat_result, kind: int, then: int) -> None:
        n = rel.rfind("/") + 1  # share the folder part when it is the last one's
        if n and not self.last.startswith(rel[:n]):
            n = 0
        rest = os.fsencode(rel[n:])
        self.last = rel
        self.shared.append(n)
        self.tails.append(len(rest))
        self.tail += rest
        self.dev.append(st.st_dev)
        self.ino.append(st.st_ino)
        self.size.append(st.st_size)
        self.mtime.append(st.st_mtime_ns)
        self.age.append(then)
        self.kind.append(kind)

    def rels(self) -> Iterator[str]:
        rel, at = "", 0
        for n, length in zip(self.shared, self.tails, strict=True):
            rel = rel[:n] + os.fsdecode(bytes(self.tail[at : at + length]))
            at += length
            yield rel


# What a pick's kind byte stands for: (category, the rule that picked it).
_PICK_KINDS = tuple((c, r) for c in Category for r in (Rule.OLDER_THAN, Rule.ORPHANED))
_PICK_KIND = {pair: i for i, pair in enumerate(_PICK_KINDS)}


@dataclass
class _RootPlanner:
    """Per-root state while the walk goes: the current item's files, then its actions."""

    root: Root
    rules: RuleSet
    now_ns: int
    scope: Scope
    actions: Actions = field(default_factory=Actions)  # the walk's, in its order
    extra: Actions = field(default_factory=Actions)  # after the walk: stray links, duplicates
    dupes: DupePool | None = field(init=False)  # rel paths under the root's; --duplicates
    reported: list[Action] = field(default_factory=list)  # duplicates shown, never acted on
    strays: list[_Stray] = field(default_factory=list)
    names: LinkedNames = field(default_factory=LinkedNames)  # every name of those inodes
    selected: _Picks = field(default_factory=_Picks)
    # Files no rule picked: kept only for the duplicates rule; else whether there was one.
    unselected: list[tuple[str, os.stat_result, Category]] = field(default_factory=list)
    any_unselected: bool = False
    item_excluded_inside: bool = False
    item_outside: bool = False  # a file of a category this root's rules may not touch
    seen: int = 0  # files of the current item the walk handed to on_file (files_below)
    units: UnitCollector | None = None  # the budget rules' eviction units (budget.py)
    reasons: _Reasons = field(init=False)
    # Decided once per root, not per file (on_file is the walk's hot path):
    categories: frozenset[Category] = field(init=False)
    # The same as a tuple: `in` compares by identity first, no Enum.__hash__ (Python) call.
    category_list: tuple[Category, ...] = field(init=False)
    filtered: bool = field(init=False)  # patterns to match (else only the ignore file is out)
    older_ns: float | None = field(init=False)  # --older-than in ns
    orphan_ns: float | None = field(init=False)  # --session-ttl in ns, with --orphaned-sessions

    def __post_init__(self) -> None:
        rules = self.rules
        self.reasons = _Reasons(rules)
        self.categories = self.scope.categories
        self.category_list = tuple(self.categories)
        self.filtered = self.scope.filtered
        self.older_ns = None if rules.older_than is None else rules.older_than * 1e9
        self.orphan_ns = rules.session_ttl * 1e9 if rules.orphaned_sessions else None
        self.dupes = None
        if rules.duplicates:
            from gradio_clean.dedupe import DupePool

            self.dupes = DupePool(os.path.join(self.root.path, ""))

    def files_below(self) -> int | None:
        """RootHooks.files_below: which files this hook must see. A file not handed over has
        one link, its item's category, and an age no rule picks; on_item counts it as what
        on_file would have made of it (unselected, or outside the categories). The
        duplicates rule and patterns need every file."""
        if self.rules.duplicates or self.filtered:
            return None
        newest = -(1 << 64)  # no age rule: no file is wanted for its age
        for idle in (self.older_ns, self.orphan_ns):
            if idle is not None:  # what on_file picks is below this (a second to spare)
                newest = max(newest, int(self.now_ns - idle) + 1_000_000_000)
        return newest

    def on_file(self, rel: str, st: os.stat_result, category: Category, then: int) -> None:
        """The walk's file hook; `then`: the file's --age-by timestamp, as the walk took it
        for its item (Hooks.age, or the mtime with --age-by mtime): taken once."""
        self.seen += 1
        if st.st_nlink > 1:
            self.names.add(self.root.path, rel, st)
            if self.units is not None:
                self.units.pending.append((st.st_dev, st.st_ino, st.st_blocks * 512, st.st_nlink))
            if self._stray(rel, st, category):
                return
        if category not in self.category_list:
            self.item_outside = True
            return
        if (self.filtered or rel == IGNORE_FILE) and not self.scope.wants(rel, is_dir=False):
            self.item_excluded_inside = True
            return
        older, orphan = self.older_ns, self.orphan_ns
        if older is not None or orphan is not None:
            idle = self.now_ns - then
            if older is not None and idle > older:
                self._pick(rel, st, category, Rule.OLDER_THAN, then)
                return
            if orphan is not None and category is Category.LEFTOVER and idle > orphan:
                self._pick(rel, st, category, Rule.ORPHANED, then)
                return
        self.any_unselected = True
        if self.rules.duplicates:
            self.unselected.append((rel, st, category))

    def _pick(
        self, rel: str, st: os.stat_result, category: Category, rule: Rule, then: int
    ) -> None:
        self.selected.add(rel, st, _PICK_KIND[category, rule], then)
        if self.units is not None:
            self.units.on_selected(st)

    def _reason(self, rule: Rule) -> str:
        return self.reasons.older if rule is Rule.OLDER_THAN else self.reasons.leftover

    def _stray(self, rel: str, st: os.stat_result, category: Category) -> bool:
        """True for a hard-linked file that is an old temporary link of ours (stray_actions)."""
        if not is_our_temp_name(rel.rpartition("/")[2]):
            return False
        if self.now_ns - st.st_ctime_ns <= STRAY_LINK_AGE * 1e9:
            return False  # a run may still be about to rename it; an ordinary file till then
        if not self.scope.allows(category) or not self.scope.wants(rel, is_dir=False):
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
            if self._named_otherwise(st):
                item = item_of(self.root.role, rel)
                self.extra.append(stray_link_action(self.root.path, rel, item, st))
        self.strays.clear()

    def _named_otherwise(self, st: os.stat_result) -> bool:
        """The walk saw this file under a name that is not a temporary link of ours."""
        seen = self.names.inodes.get((st.st_dev, st.st_ino))
        return seen is not None and any(
            not is_our_temp_name(os.fsdecode(rel.rpartition(b"/")[2])) for _, rel in seen[2]
        )

    def on_item(
        self, rel: str, st: os.stat_result, kind: Kind, category: Category, is_dir: bool, held: Held
    ) -> None:
        """The walk's item hook (numbers, see ItemHook): an Item is built only for an item
        with something to plan (a pick, a file kept for duplicates, a whole-item rule)."""
        if held[0] != self.seen:  # files the walk kept from on_file (files_below)
            if category in self.category_list:
                self.any_unselected = True
            else:
                self.item_outside = True
        self.seen = 0
        excluded = self.item_excluded_inside or self.item_outside
        planned = False  # an action for the item itself (not for files inside it)
        if self.selected.kind or self.rules.orphaned_sessions:
            try:
                planned = self._item(Item.of(self.root.path, rel, st, kind, category, is_dir, held))
            finally:
                if self.selected.kind:
                    self.selected = _Picks()
                self.unselected.clear()
                self.any_unselected = self.item_excluded_inside = self.item_outside = False
        else:  # no pick, no whole: at most files for the duplicates rule, and no Item
            if self.unselected:  # (what _item would do with them alone)
                if self.dupes is not None:  # (--duplicates: only then are there any)
                    self.dupes.add_files(self.unselected)
                self.unselected.clear()
            self.any_unselected = self.item_excluded_inside = self.item_outside = False
        units = self.units
        if units is not None:
            in_scope = (
                not excluded
                and category in self.category_list
                and not (
                    is_dir
                    and (self.filtered or rel == IGNORE_FILE)
                    and not self.scope.wants(rel, is_dir=True)
                )
            )
            units.on_item(rel, st, category, is_dir, held, in_scope, planned)

    def _item(self, item: Item) -> bool:
        """Plan the item's actions; True if one of them is the item itself."""
        whole = self._whole_item_rule(item)
        if whole is not None:
            rule, reason = whole
            self.actions.append(folder_action(self.root.path, item, rule, reason, item.age_ns))
            return True
        picks = self.selected
        if (
            item.is_dir
            and picks
            and not self.any_unselected
            and item.other == 0
            and not self.item_excluded_inside
            and len({_PICK_KINDS[k][1] for k in set(picks.kind)}) == 1
            and self.scope.wants(item.rel, is_dir=True)
        ):
            rule = _PICK_KINDS[picks.kind[0]][1]
            then = max(picks.age)
            self.actions.append(folder_action(self.root.path, item, rule, self._reason(rule), then))
            return True
        planned = False
        for i, rel in enumerate(picks.rels()):  # in walk order: the plan is sorted at the end
            category, rule = _PICK_KINDS[picks.kind[i]]
            planned = planned or rel == item.rel
            self.actions.append(
                file_action(
                    self.root.path,
                    item.rel,
                    rel,
                    Identity(picks.dev[i], picks.ino[i], picks.size[i], picks.mtime[i]),
                    category,
                    rule,
                    self._reason(rule),
                    picks.age[i],
                )
            )
        if self.dupes is not None:  # (--duplicates)
            self.dupes.add_files(self.unselected)
        return planned

    def _whole_item_rule(self, item: Item) -> tuple[Rule, str] | None:
        """Orphaned sessions and leftover folders go whole, or not at all."""
        rules = self.rules
        if not rules.orphaned_sessions or not item.is_dir:
            return None
        if not self.scope.allows(item.category) or self.item_excluded_inside:
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

    def duplicate_actions(self, warn: Callable[[str, str], None]) -> None:
        """Plan the duplicate sets of the files no other rule took (dedupe.py)."""
        from gradio_clean.dedupe import Deduping, DupePool, plan_duplicates

        pool = self.dupes
        assert pool is not None  # made with the planner, for --duplicates
        self.dupes = DupePool(pool.prefix)
        rules = self.rules
        delete_sessions = (
            rules.dedupe is Dedupe.DELETE
            and rules.explicit_categories
            and Category.SESSION in rules.categories
        )
        how = Deduping(
            self.root.path, rules.keep, rules.verify, rules.dedupe, delete_sessions, self.root.role
        )
        plan_duplicates(pool, how, warn, self.extra, self.reported)


class _Planning:
    """The scan hooks of one plan: a planner per root, and the warnings of its own."""

    def __init__(self, rules: RuleSet, now: float, own_marks: frozenset[Key] | None = None) -> None:
        self.rules = rules
        self.now_ns = int(now * 1e9)
        self.own_marks = own_marks  # the budget counts what this process holds as in use
        self.planners: dict[str, _RootPlanner] = {}
        self.ignore_files: dict[str, IgnoreFile | None] = {}
        self.current: _RootPlanner  # set by on_root, which the walk calls first
        self.warnings: list[ScanWarning] = []

    def hooks(self, progress: ProgressHook | None) -> Hooks:
        return Hooks(
            on_root=self.on_root,
            progress=progress,
            age=None if self.rules.age_by is AgeBy.MTIME else age_getter(self.rules.age_by),
            export=self.export,
            absorb=self.absorb,
        )

    def on_root(self, root: Root) -> RootHooks:
        """The root's planner; the walk sends the root's files and items straight to it."""
        ignore = self.ignore_files[root.path] = read_ignore_file(root)
        for path, message in refused_files([ScopeReport(root.path, ignore)]):
            self.warnings.append(ScanWarning(path, message))
        rules = self.rules
        patterns = ignore.patterns if ignore else None
        allowed = allowed_categories(root.role, rules, project=bool(root.project))
        scope = Scope(rules.include, rules.exclude, patterns, allowed)
        planner = _RootPlanner(root, rules, self.now_ns, scope)
        if rules.budget:
            planner.units = UnitCollector(root.path)
        self.current = self.planners[root.path] = planner
        return RootHooks(planner.on_file, planner.on_item, planner.files_below())

    def export(self) -> object:  # in a forked worker: what it planned for its share
        p = self.current
        scope = p.scope  # forked before the root's first entry: counts are its own
        counts = (scope.excluded, scope.ignored)
        return p.actions, p.dupes, p.strays, p.names, counts, p.units

    def absorb(self, payload: object) -> None:
        actions, dupes, strays, names, (excluded, ignored), units = cast(
            "tuple[Actions, DupePool | None, list[_Stray], LinkedNames, tuple[int, int], "
            "UnitCollector | None]",  # a string: DupePool is imported for --duplicates only
            payload,
        )
        p = self.current
        if p.units is not None and units is not None:
            p.units.absorb(units)
        p.actions.extend(actions)
        if p.dupes is not None and dupes is not None:
            p.dupes.extend(dupes)
        p.strays.extend(strays)
        p.names.absorb(names)
        p.scope.excluded += excluded
        p.scope.ignored += ignored

    def plan(self, roots: Sequence[Root], result: ScanResult) -> Plan:
        """After the walk: stray links and duplicate sets, then every root's actions."""
        reported: list[Action] = []
        stores = []
        names = LinkedNames()
        for path in sorted(self.planners):  # plan order: by root, then by path
            planner = self.planners[path]
            names.absorb(planner.names)
            planner.stray_actions()
            if self.rules.duplicates:
                planner.duplicate_actions(lambda p, m: self.warnings.append(ScanWarning(p, m)))
            planner.actions.sort()
            stores.append(merge(planner.actions, planner.extra))
            reported.extend(planner.reported)
        actions = stores[0] if len(stores) == 1 else Actions()
        for store in stores if len(stores) > 1 else ():
            actions.extend(store)
        plan = Plan(
            roots=tuple(roots),
            actions=actions,
            scan=result,
            warnings=(*result.warnings, *self.warnings),
            scopes=tuple(
                ScopeReport(path, self.ignore_files[path], p.scope.excluded, p.scope.ignored)
                for path, p in self.planners.items()
            ),
            reported=tuple(sorted(reported, key=lambda a: (a.root, a.rel))),
            linked=names,
        )
        plan = self._budget(plan) if self.rules.budget else plan
        return replace(plan, emptied=find_emptied(plan.actions))

    def _budget(self, plan: Plan) -> Plan:
        """--max-size / --min-free: evict whole units, over all roots, after the rest."""
        collectors = [p.units for p in self.planners.values() if p.units is not None]
        units = collectors[0] if len(collectors) == 1 else UnitCollector()
        for collector in collectors if len(collectors) > 1 else ():  # one root: as it is
            units.absorb(collector)
        rules = self.rules
        return apply_budget(
            plan,
            units,
            max_size=rules.max_size,
            min_free=rules.min_free,
            min_age=rules.min_age,
            now=self.now_ns / 1e9,
            own_marks=self.own_marks,
        )


def build_plan(
    roots: Sequence[Root],
    rules: RuleSet,
    *,
    now: float,
    progress: ProgressHook | None = None,
    jobs: int | None = None,
    own_marks: frozenset[Key] | None = None,
) -> Plan:
    """Walk every root once and decide what each rule selects (`jobs`: as for scan;
    `own_marks`: the budget passes over what this process holds too, as attach()'s,
    and over these folders, marked here but not locked yet: live.Marks.pending)."""
    planning = _Planning(rules, now, own_marks)
    with gc_paused():
        result = scan(roots, top=0, now=now, jobs=jobs, hooks=planning.hooks(progress))
        return planning.plan(roots, result)
