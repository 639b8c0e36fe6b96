"""--max-size and --min-free: evict whole units, least recently used first.

A unit is what Gradio writes as one: a top-level item of a root (a hash folder, a
session folder, a leftover, a loose file). The walk keeps one small record per unit,
never per file, so the cut sorts units. Usage is counted as du counts it: allocated
blocks, each hard-linked inode once. Units share inodes when duplicates were linked,
so a unit frees a shared inode only when the last of its links goes: the remaining
links are tracked for inodes with more than one link, and only for those.

The budget runs after the other rules are planned: what they free counts first, and
the budget evicts only what is still needed. A unit evicted whole supersedes the
other actions inside it. A unit only part of which is in scope (an excluded file, a
category not asked for inside it, an unreadable folder or a link inside) is never
evicted: the budget touches less when in doubt. Units younger than --min-age and
units some process holds (as the preflight forecasts it) are passed over, and the
next one goes instead.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gradio_clean.actions import Actions, merge
from gradio_clean.classify import Category
from gradio_clean.durations import format_duration
from gradio_clean.filesystems import mount_point
from gradio_clean.plan import Action, Budget, BudgetTarget, Identity, Plan, Rule
from gradio_clean.preflight import Forecast
from gradio_clean.scan import Item
from gradio_clean.sizes import MinFree, format_size, human_size

LRU = "least recently used"
_Link = tuple[int, int, int, int]  # dev, ino, allocated bytes, st_nlink: one link occurrence
ELIGIBLE, PROTECTED, PLANNED = 0, 1, 2


@dataclass(slots=True)
class Unit:
    """One eviction unit, as little as the cut and its action need."""

    root: str
    rel: str
    category: Category
    is_dir: bool
    dev: int
    ino: int
    size: int  # apparent bytes (Item.bytes)
    files: int
    mtime_ns: int
    newest_ns: int
    age_ns: int  # last use: the newest --age-by timestamp inside
    disk: int  # allocated bytes of entries with one link (Item.disk_bytes less `links`)
    links: tuple[_Link, ...]  # multiply-linked inodes inside, one entry per link
    state: int  # ELIGIBLE, PROTECTED (out of scope) or PLANNED (whole by another rule)

    def action(self, rule: Rule, reason: str) -> Action:
        identity = Identity(self.dev, self.ino, 0 if self.is_dir else self.size, self.mtime_ns)
        return Action(
            root=self.root,
            rel=self.rel,
            item_rel=self.rel,
            rule=rule,
            category=self.category,
            is_dir=self.is_dir,
            bytes=self.size,
            files=self.files,
            reason=reason,
            identity=identity,
            newest_ns=self.newest_ns,
            age_ns=self.age_ns,
        )


class UnitCollector:
    """Fed by the planner's walk of one root: each file, then its item."""

    def __init__(self) -> None:
        self.units: list[Unit] = []
        self.selected_disk: dict[tuple[int, int], int] = {}  # files other rules picked
        self._links: list[_Link] = []
        self._ok = True

    def on_file(self, st: os.stat_result, allowed: bool) -> None:
        if not allowed:
            self._ok = False
        if st.st_nlink > 1:
            self._links.append((st.st_dev, st.st_ino, st.st_blocks * 512, st.st_nlink))

    def on_selected(self, st: os.stat_result) -> None:
        """A file another rule planned on its own: what deleting it frees."""
        if st.st_nlink == 1:
            self.selected_disk[(st.st_dev, st.st_ino)] = st.st_blocks * 512

    def on_item(self, root: str, item: Item, *, in_scope: bool, planned: bool) -> None:
        links, self._links = tuple(self._links), []
        ok, self._ok = self._ok, True
        shared = {(dev, ino): disk for dev, ino, disk, _ in links}
        if planned:
            state = PLANNED
        elif in_scope and ok and item.other == 0:
            state = ELIGIBLE
        else:
            state = PROTECTED
        self.units.append(
            Unit(
                root,
                item.rel,
                item.category,
                item.is_dir,
                item.dev,
                item.ino,
                item.bytes,
                item.files,
                item.mtime_ns,
                item.newest_ns,
                item.age_ns,
                max(0, item.disk_bytes - sum(shared.values())),
                links,
                state,
            )
        )

    def absorb(self, other: UnitCollector) -> None:
        self.units.extend(other.units)
        self.selected_disk.update(other.selected_disk)


@dataclass
class _Filesystem:
    dev: int
    mount: str
    size: int
    avail: int
    roots: list[str]
    frsize: int


class _Ledger:
    """What the plan frees so far, as du counts it per root and statvfs per filesystem."""

    def __init__(self, units: Sequence[Unit], fs_of: dict[str, int]) -> None:
        self.fs_of = fs_of
        self.in_root: dict[tuple[str, int, int], int] = {}  # links left inside each root
        self.left: dict[tuple[int, int], int] = {}  # links left anywhere (st_nlink)
        for u in units:
            for dev, ino, _, nlink in u.links:
                key = (u.root, dev, ino)
                self.in_root[key] = self.in_root.get(key, 0) + 1
                self.left.setdefault((dev, ino), nlink)
        self.usage = 0  # freed from the roots' usage (max-size)
        self.fs: dict[int, int] = {}  # freed on each filesystem (min-free)

    def free(self, root: str, usage: int, fs: int | None = None) -> None:
        self.usage += usage
        dev = self.fs_of[root]
        self.fs[dev] = self.fs.get(dev, 0) + (usage if fs is None else fs)

    def take(self, u: Unit) -> tuple[int, int]:
        """Remove the unit's links; what its deletion frees (usage, filesystem)."""
        usage = fs = u.disk
        for dev, ino, disk, _ in u.links:
            key = (u.root, dev, ino)
            self.in_root[key] -= 1
            if self.in_root[key] == 0:
                usage += disk
            self.left[(dev, ino)] -= 1
            if self.left[(dev, ino)] == 0:
                fs += disk
        self.free(u.root, usage, fs)
        return usage, fs


def _filesystems(roots: Iterable[str]) -> dict[int, _Filesystem]:
    out: dict[int, _Filesystem] = {}
    for path in roots:
        try:
            st = os.stat(path, follow_symlinks=False)
            vfs = os.statvfs(path)
        except OSError:
            continue  # the walk warned already; a root it cannot open holds nothing to evict
        fs = out.get(st.st_dev)
        if fs is None:
            fs = out[st.st_dev] = _Filesystem(
                st.st_dev,
                mount_point(path, st.st_dev),
                vfs.f_blocks * vfs.f_frsize,
                vfs.f_bavail * vfs.f_frsize,
                [],
                vfs.f_frsize or 4096,
            )
        fs.roots.append(path)
    return out


def apply_budget(
    plan: Plan,
    collector: UnitCollector,
    *,
    max_size: int | None,
    min_free: MinFree | None,
    min_age: float,
    now: float,
    forecast: Forecast | None = None,
    own_marks: bool = False,
) -> Plan:
    """The plan with the units the budgets need evicted, and its `budget` summary.

    `forecast`: the in-use snapshot to ask (default: one taken now, as preflight takes;
    `own_marks`: counting what this process holds, as a live app's marks).
    """
    filesystems = _filesystems(r.path for r in plan.roots)
    fs_of = {root: fs.dev for fs in filesystems.values() for root in fs.roots}
    units = [u for u in collector.units if u.root in fs_of]
    own = forecast is None
    if forecast is None:
        forecast = Forecast(plan.warnings, plan.scan.warnings_dropped, own=own_marks)
    try:
        cut = _Cut(plan, units, _Ledger(units, fs_of), forecast, min_age, int(now * 1e9))
        cut.count_planned(collector.selected_disk, {d: fs.frsize for d, fs in filesystems.items()})
        targets: list[_Target] = []
        if max_size is not None:
            usage = sum(r.disk_bytes for r in plan.scan.roots if r.path in fs_of)
            targets.append(
                cut.evict(
                    Rule.MAX_SIZE, usage, max_size, None, f"{LRU}; budget {human_size(max_size)}"
                )
            )
            targets[-1].limit = format_size(max_size)
        if min_free is not None:
            for fs in filesystems.values():
                want = min_free.target(fs.size)
                reason = f"{LRU}; keep {min_free} free on {fs.mount}"
                t = cut.evict(Rule.MIN_FREE, fs.size - fs.avail, fs.size - want, fs, reason)
                t.limit, t.wanted = str(min_free), want
                targets.append(t)
        actions = cut.actions()
    finally:
        if own:
            forecast.close()
    budget = Budget(tuple(cut.summary(t, plan) for t in targets), min_age)
    return dataclasses.replace(plan, actions=actions, budget=budget)


@dataclass
class _Target:
    rule: Rule
    fs: _Filesystem | None  # min-free: its filesystem; max-size: None (all roots)
    usage: int
    target: int
    evicted: int = 0
    evicted_bytes: int = 0
    newest_ns: int | None = None
    limit: str = ""
    wanted: int | None = None


class _Cut:
    """The budget's choice over all units, in least-recently-used order."""

    def __init__(
        self,
        plan: Plan,
        units: list[Unit],
        ledger: _Ledger,
        forecast: Forecast,
        min_age: float,
        now_ns: int,
    ) -> None:
        self.plan = plan
        self.units = units
        self.ledger = ledger
        self.forecast = forecast
        self.min_age = min_age
        self.by_key = {(u.root, u.rel): i for i, u in enumerate(units)}
        self.partial: dict[int, int] = {}  # unit -> what other actions inside it free
        self.estimates: dict[int, int] = {}  # duplicate action index -> what it frees
        self.busy: dict[int, bool] = {}  # unit -> held by some process (asked once)
        self.evicted: dict[int, Action] = {}
        young = int(min_age * 1e9)
        self.young = {
            i for i, u in enumerate(units) if u.state == ELIGIBLE and now_ns - u.age_ns < young
        }
        order = [i for i, u in enumerate(units) if u.state == ELIGIBLE and i not in self.young]
        order.sort(key=lambda i: (units[i].age_ns, units[i].root, units[i].rel))
        self.order = order

    def unit_of(self, root: str, rel: str) -> int | None:
        """The unit holding `rel` (itself or its nearest ancestor that is a unit)."""
        while rel:
            i = self.by_key.get((root, rel))
            if i is not None:
                return i
            rel = rel.rpartition("/")[0]
        return None

    def count_planned(self, selected: dict[tuple[int, int], int], frsize: dict[int, int]) -> None:
        """What the other rules' actions free, before the budget adds any: a whole unit
        exactly, a file another rule picked by its blocks, a duplicate by its size in
        whole blocks (an estimate: its link count is not kept). In-use ones free nothing."""
        ledger = self.ledger
        for index, action in enumerate(self.plan.actions):
            i = self.unit_of(action.root, action.rel)
            if self.forecast.why(action) is not None:
                if i is not None and self.units[i].rel == action.rel:
                    self.busy[i] = True
                continue
            if i is not None and self.units[i].state == PLANNED and self.units[i].rel == action.rel:
                ledger.take(self.units[i])
                continue
            if action.rule is Rule.DUPLICATES:
                block = frsize.get(ledger.fs_of.get(action.root, -1), 4096)
                freed = 0 if action.stray_link else -(-action.bytes // block) * block
                self.estimates[index] = freed
            else:
                freed = selected.get((action.identity.dev, action.identity.ino), 0)
            if action.root in ledger.fs_of:
                ledger.free(action.root, freed)
            if i is not None:
                self.partial[i] = self.partial.get(i, 0) + freed

    def evict(
        self, rule: Rule, usage: int, ceiling: int, fs: _Filesystem | None, reason: str
    ) -> _Target:
        """Evict units in LRU order until this target's usage is at or under `ceiling`."""
        t = _Target(rule, fs, usage, ceiling)
        ledger = self.ledger
        for i in self.order:
            freed = ledger.usage if fs is None else ledger.fs.get(fs.dev, 0)
            if usage - freed <= ceiling:
                break
            u = self.units[i]
            if i in self.evicted or (fs is not None and ledger.fs_of[u.root] != fs.dev):
                continue
            action = u.action(rule, reason)
            if self._busy(i, action):
                continue
            self.evicted[i] = action
            gained = ledger.take(u)
            partial = self.partial.get(i, 0)
            ledger.free(u.root, -partial)  # the actions inside it were counted already
            t.evicted += 1
            t.evicted_bytes += (gained[0] if fs is None else gained[1]) - partial
            t.newest_ns = u.age_ns if t.newest_ns is None else max(t.newest_ns, u.age_ns)
        return t

    def _busy(self, i: int, action: Action) -> bool:
        if i not in self.busy:
            self.busy[i] = self.forecast.why(action) is not None
        return self.busy[i]

    def actions(self) -> Actions:
        """The plan's actions less those an evicted unit supersedes, plus the evictions.

        A duplicate whose kept copy is evicted goes too: apply would refuse it, and a
        link made to it first would keep the evicted copy's blocks.
        """
        kept = Actions()
        for index, action in enumerate(self.plan.actions):
            if self.unit_of(action.root, action.rel) in self.evicted:
                continue
            if action.keep is not None:
                root = action.root
                rel = os.path.relpath(action.keep, root)
                if self.unit_of(root, rel) in self.evicted:
                    self.ledger.free(root, -self.estimates.get(index, 0))
                    continue
            kept.append(action)
        return merge(kept, Actions(self.evicted.values()))

    def summary(self, t: _Target, plan: Plan) -> BudgetTarget:
        ledger = self.ledger
        fs = t.fs
        freed = ledger.usage if fs is None else ledger.fs.get(fs.dev, 0)
        roots = tuple(r.path for r in plan.roots if r.path in ledger.fs_of)
        if fs is not None:
            roots = tuple(r for r in roots if ledger.fs_of[r] == fs.dev)
        over = t.usage - freed - t.target
        why = self._why_over(over, fs, plan) if over > 0 else None
        return BudgetTarget(
            rule=t.rule,
            roots=roots,
            usage=t.usage,
            target=t.target,
            freed=freed,
            evicted=t.evicted,
            evicted_bytes=t.evicted_bytes,
            newest_evicted_ns=t.newest_ns,
            why_over=why,
            filesystem=None if fs is None else fs.mount,
            size=None if fs is None else fs.size,
            wanted_free=t.wanted,
            limit=t.limit,
        )

    def _why_over(self, over: int, fs: _Filesystem | None, plan: Plan) -> str:
        """One line: how far over, and what is left that the budget may not evict."""
        young = busy = protected = 0
        for i, u in enumerate(self.units):
            if i in self.evicted or (fs is not None and self.ledger.fs_of[u.root] != fs.dev):
                continue
            if self.busy.get(i):
                busy += u.disk
            elif i in self.young:
                young += u.disk
            elif u.state == PROTECTED:
                protected += u.disk
        parts = []
        if young:
            parts.append(f"{human_size(young)} is younger than {format_duration(self.min_age)}")
        if busy:
            parts.append(f"{human_size(busy)} is in use")
        if protected:
            parts.append(f"{human_size(protected)} is protected (user data, app files or excluded)")
        if fs is not None:
            inside = sum(r.disk_bytes for r in plan.scan.roots if r.path in fs.roots)
            outside = fs.size - fs.avail - inside
            if outside > 0:
                parts.append(f"{human_size(outside)} is used outside the roots or reserved")
        head = f"still {human_size(over)} over"
        return f"{head}: {', '.join(parts)}" if parts else head
