"""--max-size and --min-free: evict whole units, least recently used first.

A unit is what Gradio writes as one: a top-level item of a root (a hash folder, a
session folder, a leftover, a loose file). The walk keeps one row of flat columns per
unit (units.UnitCollector: no object each, nothing per file), and the cut sorts an
index of the units.
Usage is counted as du counts it: allocated blocks, each hard-linked inode once.
Units share inodes when duplicates were linked, so a unit frees a shared inode only
when the last of its links goes: the remaining links are tracked for inodes with more
than one link, and only for those.

The budget runs after the other rules are planned: what they free counts first, and
the budget evicts only what is still needed. A unit evicted whole supersedes the
other actions inside it. A unit only part of which is in scope (an excluded file, a
category not asked for inside it, an unreadable folder or a link inside) is never
evicted: the budget touches less when in doubt. Units younger than --min-age, units
some process holds and units their folder will not give up (as the preflight forecasts
both) are passed over, and the next one goes instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, count, islice
from operator import eq
from typing import cast

from gradio_clean.actions import Actions
from gradio_clean.durations import format_duration
from gradio_clean.emptied import emptying, find_emptied
from gradio_clean.evictions import Row, in_plan_order, merged, write_runs
from gradio_clean.filesystems import Filesystem, filesystems_of
from gradio_clean.inuse import Key
from gradio_clean.plan import Budget, BudgetTarget, Plan, Rule
from gradio_clean.preflight import Forecast
from gradio_clean.sizes import MinFree, format_size, human_size
from gradio_clean.units import DIR, ELIGIBLE, PLANNED, PROTECTED, STATE, UnitCollector

LRU = "least recently used"
_UNASKED, _FREE, _BUSY = 0, 1, 2  # what the forecast said of a unit


class _Ledger:
    """What the plan frees so far, as du counts it over the roots and statvfs per filesystem."""

    def __init__(self, units: UnitCollector, root_fs: list[int | None]) -> None:
        self.units = units
        self.root_fs = root_fs  # per root index: its filesystem's st_dev (None: not known)
        self.in_root: dict[tuple[int, int, int], int] = {}  # links left inside each root
        self.left: dict[tuple[int, int], int] = {}  # links left anywhere (st_nlink)
        self.spans: dict[int, range] = {}  # unit -> its rows in the link columns
        for j, i in enumerate(units.link_unit):
            root = units.root[i]
            if root_fs[root] is None:
                continue
            dev, ino = units.link_dev[j], units.link_ino[j]
            key = (root, dev, ino)
            self.in_root[key] = self.in_root.get(key, 0) + 1
            self.left.setdefault((dev, ino), units.link_nlink[j])
            span = self.spans.get(i)
            self.spans[i] = range(j if span is None else span.start, j + 1)
        self.usage = 0  # freed from the roots' usage (max-size)
        self.fs: dict[int, int] = {}  # freed on each filesystem (min-free)

    def free(self, dev: int, usage: int, fs: int | None = None) -> None:
        """Count `usage` bytes freed from the roots, `fs` (default: as many) on `dev`."""
        self.usage += usage
        self.fs[dev] = self.fs.get(dev, 0) + (usage if fs is None else fs)

    def take(self, i: int) -> tuple[int, int]:
        """Remove unit `i`'s links; what its deletion frees (usage, filesystem)."""
        units = self.units
        root = units.root[i]
        usage = fs = units.disk[i]
        for j in self.spans.get(i, ()):
            dev, ino, disk = units.link_dev[j], units.link_ino[j], units.link_disk[j]
            key = (root, dev, ino)
            self.in_root[key] -= 1
            if self.in_root[key] == 0:
                usage += disk
            self.left[(dev, ino)] -= 1
            if self.left[(dev, ino)] == 0:
                fs += disk
        on = self.root_fs[root]
        assert on is not None  # the cut never takes a unit of a root it does not know
        self.free(on, usage, fs)
        return usage, fs


def apply_budget(
    plan: Plan,
    collector: UnitCollector,
    *,
    max_size: int | None,
    min_free: MinFree | None,
    min_age: float,
    now: float,
    forecast: Forecast | None = None,
    own_marks: frozenset[Key] | None = None,
) -> Plan:
    """The plan with the units the budgets need evicted, and its `budget` summary.

    `forecast`: the in-use snapshot to ask (default: one taken now, as preflight takes;
    `own_marks`: counting what this process holds, as a live app's marks, and the
    folders it marks that are not locked yet: see Forecast). Every action
    of the plan returned was asked about once, and the plan carries the answers as the
    preflight's `skips`: the preflight need not ask again.
    """
    filesystems = filesystems_of(plan.scan.roots)
    fs_of = {root: fs.dev for fs in filesystems for root in fs.roots}
    own = forecast is None
    if forecast is None:
        forecast = Forecast.of(plan, own=own_marks)
    try:
        cut = _Cut(plan, collector, fs_of, forecast, min_age, int(now * 1e9))
        cut.count_planned(collector.selected_disk, {fs.dev: fs.block for fs in filesystems})
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
            for fs in filesystems:
                want = min_free.target(fs.size)
                reason = f"{LRU}; keep {min_free} free on {fs.mount}"
                t = cut.evict(Rule.MIN_FREE, fs.size - fs.free, fs.size - want, fs, reason)
                t.limit, t.wanted = str(min_free), want
                targets.append(t)
        actions, skips = cut.actions()
    finally:
        if own:
            forecast.close()
    budget = Budget(tuple(cut.summary(t, plan) for t in targets), min_age)
    return dataclasses.replace(plan, actions=actions, budget=budget, skips=skips)


def _own_blocks(roots: Sequence[str]) -> int:
    """The blocks of the root folders themselves, which their usage (du -s) counts."""
    total = 0
    for root in roots:
        with contextlib.suppress(OSError):
            total += os.lstat(root).st_blocks * 512
    return total


@dataclass
class _Target:
    rule: Rule
    fs: Filesystem | None  # min-free: its filesystem; max-size: None (all roots)
    usage: int
    target: int
    reason: str  # what its evictions say
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
        units: UnitCollector,
        fs_of: dict[str, int],
        forecast: Forecast,
        min_age: float,
        now_ns: int,
    ) -> None:
        self.plan = plan
        self.units = units
        self.fs_of = fs_of  # root path -> its filesystem's st_dev; a root not here is left out
        self.root_fs = [fs_of.get(root) for root in units.roots]
        self.ledger = _Ledger(units, self.root_fs)
        self.forecast = forecast
        self.min_age = min_age
        self.now_ns = now_ns
        self.young_ns = int(min_age * 1e9)
        self.partial: dict[int, int] = {}  # unit -> what other actions inside it free
        self.estimates: dict[int, int] = {}  # duplicate action index -> what it frees
        self.skips: dict[int, str] = {}  # plan action index -> why apply is expected to skip it
        self.busy = bytearray(len(units))  # per unit: _UNASKED, _FREE or _BUSY (asked once)
        self.free_roots: dict[int, bool] = {}  # root number -> no folder of it is in use
        self.targets: list[_Target] = []  # the targets that evict, in order
        self.evicted = array("H", bytes(2 * len(units)))  # per unit: 0, or its target's number
        self._by_rel: dict[str, dict[str, int]] | None = None  # built on first use
        self.order = self._lru_order()

    def _known(self, i: int) -> bool:
        return self.root_fs[self.units.root[i]] is not None

    def _young(self, i: int) -> bool:
        return self.now_ns - self.units.age[i] < self.young_ns

    def _lru_order(self) -> list[int]:
        """The units the budget may evict, least recently used first; a tie by root, then
        rel (sorted by last use alone, then each run of equal ones by its paths). The last
        uses are read out of their column once, as a list: a key read from the array
        would make an int object per look."""
        units = self.units
        last_use, root, root_fs = units.age.tolist(), units.root, self.root_fs
        order = [i for i, flags in enumerate(units.flags) if flags & STATE == ELIGIBLE]
        if None in root_fs:  # a root on no filesystem known: left out
            order = [i for i in order if root_fs[root[i]] is not None]
        order.sort(key=last_use.__getitem__)
        ages = list(map(last_use.__getitem__, order))
        del last_use
        young = bisect_right(ages, self.now_ns - self.young_ns)  # the first young one (_young)
        del order[young:], ages[young:]
        if any(map(eq, ages, islice(ages, 1, None))):  # sorted: a tie is two neighbours
            self._break_ties(order, ages)
        return order

    def _break_ties(self, order: list[int], ages: list[int]) -> None:
        """Each run of units last used at the same time, in `order` sorted by `ages`: by
        root, then rel (only these rels are read)."""
        units = self.units
        roots, root = units.roots, units.root

        def by_path(i: int) -> tuple[str, str]:
            return roots[root[i]], units.rel(i)

        # each p with ages[p] == ages[p + 1], found in C; consecutive ones make one tie
        same = list(compress(count(), map(eq, ages, islice(ages, 1, None))))
        start = 0
        while start < len(same):
            stop = start + 1
            while stop < len(same) and same[stop] == same[stop - 1] + 1:
                stop += 1
            first, end = same[start], same[stop - 1] + 2  # the tie's units: order[first:end]
            order[first:end] = sorted(order[first:end], key=by_path)
            start = stop

    def unit_of(self, root: str, rel: str) -> int | None:
        """The unit holding `rel` (itself or its nearest ancestor that is a unit)."""
        if self._by_rel is None:
            units = self.units
            self._by_rel = {r: {} for r in units.roots}
            for i in range(len(units)):
                if self._known(i):
                    self._by_rel[units.roots[units.root[i]]][units.rel(i)] = i
        by_rel = self._by_rel.get(root)
        while rel and by_rel:
            found = by_rel.get(rel)
            if found is not None:
                return found
            rel = rel.rpartition("/")[0]
        return None

    def count_planned(self, selected: dict[tuple[int, int], int], block: dict[int, int]) -> None:
        """What the other rules' actions free, before the budget adds any: a whole unit
        exactly, a file another rule picked by its blocks, a duplicate by its size in
        whole blocks (an estimate: its link count is not kept). In-use ones free nothing."""
        ledger, units = self.ledger, self.units
        for index, action in enumerate(self.plan.actions):
            i = self.unit_of(action.root, action.rel)
            exact = i is not None and units.rel(i) == action.rel
            why = self.forecast.why(action)
            if why is not None:
                self.skips[index] = why
                if i is not None and exact:
                    self.busy[i] = _BUSY
                continue
            if i is not None and exact and units.state(i) == PLANNED:
                ledger.take(i)
                continue
            dev = self.fs_of.get(action.root)
            if action.rule is Rule.DUPLICATES:
                size = block.get(-1 if dev is None else dev, 4096)
                freed = 0 if action.stray_link else -(-action.bytes // size) * size
                self.estimates[index] = freed
            else:
                freed = selected.get((action.identity.dev, action.identity.ino), 0)
            if dev is not None:
                ledger.free(dev, freed)
            if i is not None:
                self.partial[i] = self.partial.get(i, 0) + freed
        self._count_emptied()

    def _count_emptied(self) -> None:
        """The folders the other rules' actions empty free their own blocks too: apply
        removes them (delete._tidy), and du counted them in the usage."""
        actions = self.plan.actions
        for e in emptying(find_emptied(actions), actions, self.skips):
            root = actions.root(e.first)
            dev = self.fs_of.get(root)
            if dev is not None:
                self.ledger.free(dev, e.disk)
            i = self.unit_of(root, os.path.relpath(e.path, root))
            if i is not None:
                self.partial[i] = self.partial.get(i, 0) + e.disk

    def evict(
        self, rule: Rule, usage: int, ceiling: int, fs: Filesystem | None, reason: str
    ) -> _Target:
        """Evict units in LRU order until this target's usage is at or under `ceiling`."""
        t = _Target(rule, fs, usage, ceiling, reason)
        self.targets.append(t)
        number = len(self.targets)
        ledger, evicted, partial, busy = self.ledger, self.evicted, self.partial, self.busy
        units = self.units
        root_fs, root, ages, flags, disk = (
            self.root_fs,
            units.root,
            units.age,
            units.flags,
            units.disk,
        )
        spans, free_roots, on_fs = ledger.spans, self.free_roots, ledger.fs
        on = None if fs is None else fs.dev  # min-free: only this filesystem's units
        freed = ledger.usage if on is None else on_fs.get(on, 0)
        for i in self.order:
            if usage - freed <= ceiling:
                break
            r = root[i]
            dev = root_fs[r]
            if evicted[i] or (on is not None and dev != on):
                continue
            state = busy[i]
            if state == _UNASKED:
                if flags[i] & DIR and free_roots.get(r):
                    state = busy[i] = _FREE  # what why_entry says of every folder of the root
                else:
                    state = self._ask(i)
            if state == _BUSY:
                continue
            evicted[i] = number
            if i in spans or i in partial:
                gained = ledger.take(i)
                inside = partial.get(i, 0)
                if inside:  # the actions inside it were counted already
                    ledger.free(dev or 0, -inside)
                t.evicted_bytes += (gained[0] if on is None else gained[1]) - inside
            else:  # what take() frees of a unit holding no multiply-linked file
                size = disk[i]
                ledger.usage += size
                known = cast(int, dev)  # the order holds only units of known filesystems
                on_fs[known] = on_fs.get(known, 0) + size
                t.evicted_bytes += size
            t.evicted += 1
            if t.newest_ns is None or ages[i] > t.newest_ns:
                t.newest_ns = ages[i]
            freed = ledger.usage if on is None else on_fs.get(on, 0)
        return t

    def _ask(self, i: int) -> int:
        """Whether unit `i` is in use, asked once (busy[i]): _FREE or _BUSY."""
        units = self.units
        root = units.root[i]
        is_dir = bool(units.flags[i] & DIR)
        if is_dir and self._folders_free(root):
            state = _FREE  # what why_entry says of every folder of the root
        else:
            why = self.forecast.why_entry(
                units.roots[root], units.rel(i), is_dir, units.dev[i], units.ino[i]
            )
            state = _FREE if why is None else _BUSY
        self.busy[i] = state
        return state

    def _folders_free(self, root: int) -> bool:
        """Forecast.folders_free of root number `root`, asked once."""
        free = self.free_roots.get(root)
        if free is None:
            free = self.free_roots[root] = self.forecast.folders_free(self.units.roots[root])
        return free

    def actions(self) -> tuple[Actions, dict[int, str]]:
        """The plan's actions less those an evicted unit supersedes, plus the evictions,
        in plan order; and by their new index, the forecast's skips.

        A duplicate whose kept copy is evicted goes too: apply would refuse it, and a
        link made to it first would keep the evicted copy's blocks. Rows are copied
        column to column, the evictions between two kept rows at once: no Action is built.
        """
        blocks = in_plan_order(self.units, self.evicted)
        targets = [(t.rule, t.reason) for t in self.targets]
        if not self.plan.actions:  # no other action to merge with: each root's evictions in runs
            out = Actions()
            for block in blocks:
                write_runs(out, block, self.units, self.evicted, targets)
            return out, {}
        kept = self._kept()
        return merged(
            self.plan.actions, kept, blocks, self.units, self.evicted, targets, self.skips
        )

    def _kept(self) -> Iterator[Row]:
        """The plan's actions no eviction supersedes."""
        planned = self.plan.actions
        for index in range(len(planned)):
            action = planned.brief(index)
            i = self.unit_of(action.root, action.rel)
            if i is not None and self.evicted[i]:
                continue
            if action.keep is not None:
                root = action.root
                keep = self.unit_of(root, os.path.relpath(action.keep, root))
                if keep is not None and self.evicted[keep]:
                    dev = self.fs_of.get(root)
                    if dev is not None:
                        self.ledger.free(dev, -self.estimates.get(index, 0))
                    continue
            yield planned.sort_key(index), index, -1

    def summary(self, t: _Target, plan: Plan) -> BudgetTarget:
        ledger = self.ledger
        fs = t.fs
        freed = ledger.usage if fs is None else ledger.fs.get(fs.dev, 0)
        roots = tuple(r.path for r in plan.roots if r.path in self.fs_of)
        if fs is not None:
            roots = tuple(r for r in roots if self.fs_of[r] == fs.dev)
        over = t.usage - freed - t.target
        why = self._why_over(over, fs, roots) if over > 0 else None
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

    def _why_over(self, over: int, fs: Filesystem | None, roots: Sequence[str]) -> str:
        """One line: how far over, and what is left that the budget may not evict; and,
        where that falls short of how far over, the roots' own folders (du -s counts
        their blocks, and no rule removes a root)."""
        young = busy = protected = 0
        units = self.units
        for i in range(len(units)):
            dev = self.root_fs[units.root[i]]
            if self.evicted[i] or dev is None or (fs is not None and dev != fs.dev):
                continue
            state = units.flags[i] & STATE
            left = units.disk[i] - self.partial.get(i, 0)  # what other rules leave of it
            if self.busy[i] == _BUSY:
                busy += left
            elif state == ELIGIBLE and self._young(i):
                young += left
            elif state == PROTECTED:
                protected += left
        parts = []
        if young:
            parts.append(f"{human_size(young)} is younger than {format_duration(self.min_age)}")
        if busy:
            parts.append(f"{human_size(busy)} is in use")
        if protected:
            parts.append(f"{human_size(protected)} is protected (user data, app files or excluded)")
        outside = 0 if fs is None else fs.size - fs.free - fs.roots_usage
        if outside > 0:
            parts.append(f"{human_size(outside)} is used outside the roots or reserved")
        own = _own_blocks(roots) if young + busy + protected + max(outside, 0) < over else 0
        if own:
            what = "the root folder itself" if len(roots) == 1 else "the root folders themselves"
            parts.append(f"{human_size(own)} is {what}")
        head = f"still {human_size(over)} over"
        return f"{head}: {', '.join(parts)}" if parts else head
