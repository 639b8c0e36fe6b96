"""Run a plan: its actions shared out to forked workers item by item, each applied by
delete.py with every re-check, and the outcomes gathered in columns (outcomes.py).

What a run frees is settled here once every share is in: blocks of an inode whose
names two workers removed are known to be freed only then.
"""

from __future__ import annotations

import itertools
import os
import time
from array import array
from collections.abc import Callable, Sequence

from gradio_clean.delete import Link, Why, apply_root
from gradio_clean.emptied import emptying
from gradio_clean.inuse import InUseWatcher
from gradio_clean.outcomes import Outcomes
from gradio_clean.plan import DONE, ApplyResult, Plan, Rule, Status
from gradio_clean.removal import Ctimes, probes_in_turn
from gradio_clean.workers import Share, available_jobs, run_shares, stop_signal

ApplyProgress = Callable[[int, int, int], None]  # (actions done, actions total, bytes freed)

# Fewer actions than this are not worth a fork. (A scan counts a root's entries instead,
# each one a stat at least: see scan.FORK_MIN_ENTRIES.)
FORK_MIN_ACTIONS = 1000


class _Rows:
    """A share's outcomes in columns: they travel back pickled, a million at once."""

    def __init__(self) -> None:
        self.index = array("Q")
        self.status = bytearray()
        self.freed_bytes = array("q")
        self.freed_files = array("q")
        self.details: dict[int, str] = {}  # by position in these rows
        self.linked = array("q")  # per removed name of a linked inode: index, dev, ino, size, nlink

    def add(
        self,
        i: int,
        status: Status,
        detail: str | None,
        nbytes: int,
        files: int,
        linked: list[Link],
    ) -> None:
        for link in linked:
            self.linked.append(i)
            self.linked.extend(link)
        if detail is not None:
            self.details[len(self.status)] = detail
        self.index.append(i)
        self.status.append(_STATUS_IX[status])
        self.freed_bytes.append(nbytes)
        self.freed_files.append(files)

    def into(self, outcomes: Outcomes) -> None:
        for n, i in enumerate(self.index):
            status = _STATUSES[self.status[n]]
            detail = self.details.get(n)
            outcomes.record(i, status, detail, self.freed_bytes[n], self.freed_files[n])


_STATUSES = tuple(Status)
_STATUS_IX = {status: n for n, status in enumerate(_STATUSES)}
# rows, folders removed, folders kept and why (delete.Tidied), the signal that stopped it
_Applied = tuple[_Rows, list[str], list[tuple[str, str | None]], int]


def _run_share(
    plan: Plan,
    indices: Sequence[int],
    why: Why,
    report: Callable[[int, int], None],
) -> _Applied:
    """Apply the actions at `indices` (in plan order), root by root."""
    rows = _Rows()
    freed = 0

    def done(
        i: int, status: Status, detail: str | None, nbytes: int, files: int, linked: list[Link]
    ) -> None:
        nonlocal freed
        freed += nbytes
        rows.add(i, status, detail, nbytes, files, linked)
        report(len(rows.status), freed)

    removed: list[str] = []
    kept: list[tuple[str, str | None]] = []
    actions = plan.actions
    ctimes: Ctimes = {}
    for root_path, group in itertools.groupby(indices, key=actions.root):
        items = ((i, actions.step(i)) for i in group)
        gone, left = apply_root(root_path, items, why, done, ctimes)
        removed += gone
        kept += left
    return rows, removed, kept, stop_signal()


def _shares(plan: Plan, jobs: int) -> list[array[int]]:
    """Whole items per share, dealt in turn in plan order, so an item's actions and the
    folders it empties stay together. An item's actions are next to each other in plan
    order, so only the last item is remembered, not a table of a million. Every root's
    duplicates (and stray links) go to one worker: each link moves the kept inode's ctime,
    which only the worker that made it knows for its own (_DirChain.ctimes, shared by its
    roots), and an item tied to them may lie in another root (a name of a kept copy in an
    app's session folder). Items holding names of one file go to one worker too
    (_tied_items): two workers removing names of one inode at once would each see the
    other's lease probe, and skip it as in use."""
    shares = [array("Q") for _ in range(jobs)]
    actions = plan.actions
    dealt = -1
    last: tuple[str, str] | None = None
    duplicates: int | None = None  # the one share of every root's duplicates
    tied, with_duplicates = _tied_items(plan) if jobs > 1 else ({}, set())
    grouped: dict[tuple[str, str], int] = {}  # a group of tied items -> its share
    for i in range(len(actions)):
        root = actions.root(i)
        item = (root, actions.item_rel(i))
        group = tied.get(item) if tied else None
        if actions.rule(i) is Rule.DUPLICATES or group in with_duplicates:
            if duplicates is None:
                dealt += 1
                duplicates = dealt % jobs
            shares[duplicates].append(i)
            continue
        if group is not None:
            if group not in grouped:
                dealt += 1
                grouped[group] = dealt % jobs
            shares[grouped[group]].append(i)
            continue
        if item != last:
            dealt += 1
            last = item
        shares[dealt % jobs].append(i)
    return shares


_Folder = tuple[str, str]  # root, rel


def _tied_items(plan: Plan) -> tuple[dict[_Folder, _Folder], set[_Folder]]:
    """Which items go to one worker: each name of a file with several names, and every
    folder above it, mapped to its group (the items holding names of one inode, joined);
    and the groups holding a file a duplicate's action checks, its copy or its kept copy:
    those go to the duplicates' worker, which knows the ctime its links move. Only files
    with several names, which the walk noted (links.py)."""
    linked = plan.linked
    if not linked:
        return {}, set()
    parent: dict[_Folder, _Folder] = {}

    def find(x: _Folder) -> _Folder:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for _, _, names in linked.inodes.values():
        first: _Folder | None = None
        for root, raw in names:
            head = os.fsdecode(raw)
            while head:
                folder = (root, head)
                parent.setdefault(folder, folder)
                if first is None:
                    first = find(folder)
                else:
                    parent[find(folder)] = first
                    first = find(first)
                head = head.rpartition("/")[0]
    actions = plan.actions
    checked = set()
    for i in range(len(actions)):
        if actions.rule(i) is Rule.DUPLICATES:
            action = actions.step(i)
            for identity in (action.identity, action.keep_identity):
                if identity is not None:
                    checked.add((identity.dev, identity.ino))
    with_duplicates = set()
    for key in checked & linked.inodes.keys():
        root, raw = linked.inodes[key][2][0]
        with_duplicates.add(find((root, os.fsdecode(raw))))
    return {folder: find(folder) for folder in parent}, with_duplicates


def _count_linked(linked: array[int], outcomes: Outcomes) -> None:
    """The blocks of linked inodes whose last name this run removed, counted once.

    Each removed name of an inode with other names came with the link count its
    unlink saw (index, dev, ino, size, nlink, flat). The first of an inode's names to go
    saw the count before any of this run's unlinks: if the run removed at least that
    many names, it removed them all. A name that saw a count of 1 counted the blocks
    itself, and then its inode's other names number one less than the first count.
    Two workers removing an inode's two names at once each see 2: neither counted it.
    """
    names: dict[tuple[int, int], list[int]] = {}  # inode -> [names gone, most seen, size, index]
    for n in range(0, len(linked), 5):
        i, dev, ino, size, nlink = linked[n : n + 5]
        seen = names.get((dev, ino))
        if seen is None:
            names[(dev, ino)] = [1, nlink, size, i]
        else:
            seen[0] += 1
            seen[1] = max(seen[1], nlink)
            seen[3] = min(seen[3], i)
    for gone, first, size, i in names.values():
        if gone >= first:
            outcomes.add_freed(i, size)


def apply_plan(
    plan: Plan,
    *,
    why: Why | None = None,
    progress: ApplyProgress | None = None,
    jobs: int | None = None,
) -> ApplyResult:
    """Execute the plan's actions, each re-checked first; report what happened to each.

    `jobs`: forked workers sharing the actions item by item (None: one per core for a
    plan of at least FORK_MIN_ACTIONS). Each re-checks its own actions exactly as a
    single process would, so a dead worker's share redone here (workers.run_shares)
    finds what it had done already gone.
    """
    started = time.perf_counter()
    total = len(plan.actions)
    if jobs is None:
        jobs = available_jobs() if total >= FORK_MIN_ACTIONS else 1
    jobs = max(1, min(jobs, total))
    check = why or InUseWatcher().why
    # One share: the plan's own order, with nothing to deal.
    shares = _shares(plan, jobs) if jobs > 1 else [array("Q", range(total))]

    def work(share: Share) -> _Applied:
        return _run_share(plan, shares[share.index], check, share.report)

    def report(done: int, freed: int) -> None:
        if progress is not None:
            progress(done, total, freed)

    outcomes = Outcomes(plan.actions)
    removed: list[str] = []
    tried: dict[str, str | None] = {}
    stopped = 0
    linked = array("q")
    with probes_in_turn(len(shares) > 1):
        results = run_shares(len(shares), work, report if progress else None)
    for result in results:
        if result is None:  # a worker died while stopping: what it did is unknown
            continue
        result[0].into(outcomes)
        linked.extend(result[0].linked)
        removed.extend(result[1])
        tried.update(result[2])
        stopped = stopped or result[3]  # a worker told alone: its share is not done either
    _count_linked(linked, outcomes)
    stopped = stop_signal() or stopped
    return ApplyResult(
        outcomes,
        tuple(sorted(removed)),
        time.perf_counter() - started,
        stopped,
        # stopped: the rest is left anyway
        () if stopped else _kept(plan, outcomes, removed, tried),
    )


NOT_EMPTIED = "not emptied: the run did not reach it"


def _kept(
    plan: Plan, outcomes: Outcomes, removed: list[str], tried: dict[str, str | None]
) -> tuple[tuple[str, str], ...]:
    """The folders the run was to empty that it kept, and why: rmdir's refusal, or a
    name that appeared in it. A folder holding a planned entry that did not go is left
    out, as the dry run leaves out one holding an entry it foresees skipped: that entry
    is reported itself (with --apply --yes no dry run was shown at all). One gone
    already, removed by another hand, is not kept."""
    if not plan.emptied:
        return ()
    skips: dict[int, str] = dict(plan.skips)
    if not outcomes.all_done:
        for i in range(len(outcomes)):
            state = outcomes.state(i)
            if state is None or state[0] not in DONE:
                skips[i] = ""
    gone = set(removed)
    out = []
    for e in emptying(plan.emptied, plan.actions, skips):
        if e.path not in gone:
            why = tried.get(e.path, NOT_EMPTIED)
            if why is not None:
                out.append((e.path, why))
    return tuple(out)
