"""The budget's evictions as plan rows, in plan order (budget.py chooses them): merged
row by row between the kept actions of the other rules (`merged`), or, in a plan of
evictions alone, written a root and a target at a time (`write_runs`)."""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterator, Sequence
from itertools import compress
from typing import TYPE_CHECKING

from gradio_clean.actions import Actions
from gradio_clean.columns import Columns
from gradio_clean.plan import Rule

if TYPE_CHECKING:
    from gradio_clean.units import UnitCollector

_WRITE_AT = 4096  # evictions written to the plan at a time: their rows are lists till then
# A row of the budget's plan, in plan order: its (root, path bytes) key, then the kept
# plan action's index (-1: an eviction) and the evicted unit (-1: a kept action).
Row = tuple[tuple[str, bytes], int, int]
# One root's evicted units in plan order: the root, their rels (UnitCollector.raw), the units.
Block = tuple[str, list[bytes], list[int]]
Target = tuple[Rule, str]  # what an eviction says: its target's rule and reason


def in_plan_order(units: UnitCollector, evicted: array[int]) -> list[Block]:
    """Each root's evicted units in plan order (by root, then the rel's bytes)."""
    chosen = list(compress(range(len(units)), evicted))
    by_root: dict[int, list[int]] = {}
    if len(units.roots) == 1:
        by_root = {0: chosen} if chosen else {}
    else:
        for i in chosen:
            by_root.setdefault(units.root[i], []).append(i)
    rels, ends = units.rels, units.rel_end
    blocks = []
    for root in sorted(by_root, key=units.roots.__getitem__):
        these = by_root.pop(root)  # in unit order: a tie keeps it, as (raw, i) sorts
        raws = [bytes(rels[ends[i - 1] if i else 0 : ends[i]]) for i in these]
        at = sorted(range(len(these)), key=raws.__getitem__)  # bytes compared, not tuples
        blocks.append((units.roots[root], [raws[k] for k in at], [these[k] for k in at]))
    return blocks


def merged(
    planned: Actions,
    kept: Iterator[Row],
    blocks: list[Block],
    units: UnitCollector,
    evicted: array[int],
    targets: Sequence[Target],
    skips: dict[int, str],
) -> tuple[Actions, dict[int, str]]:
    """The `kept` rows of the plan's actions and the evictions, in plan order, as a new
    store; and by their new index, the forecast's `skips` of the kept ones.

    Rows are copied column to column, the evictions between two kept rows at once: no
    Action is built.
    """
    out = Actions()
    new_skips: dict[int, str] = {}
    evictions = (
        ((root, raw), -1, i)
        for root, raws, these in blocks
        for raw, i in zip(raws, these, strict=True)
    )
    merged_rows = heapq.merge(kept, evictions)  # both in plan order, no key in both
    run: list[int] = []  # evicted units of one root and target, in plan order, a batch
    raws: list[bytes] = []  # their rels
    run_root = ""
    for (root, raw), index, i in merged_rows:
        if run and (
            i < 0 or evicted[i] != evicted[run[0]] or root != run_root or len(run) == _WRITE_AT
        ):
            _write(out, run_root, raws, run, units, targets[evicted[run[0]] - 1])
            run, raws = [], []
        if i >= 0:
            run.append(i)
            raws.append(raw)
            run_root = root
            continue
        why = skips.get(index)
        if why is not None:
            new_skips[len(out)] = why
        out.copy_row(planned, index)
    if run:
        _write(out, run_root, raws, run, units, targets[evicted[run[0]] - 1])
    return out, new_skips


def write_runs(
    out: Columns,
    block: Block,
    units: UnitCollector,
    evicted: array[int],
    targets: Sequence[Target],
) -> None:
    """A root's evicted units in plan order, written a run of one target at a time,
    _WRITE_AT at most (as `merged` cuts them)."""
    root, raws, these = block
    numbers = [evicted[i] for i in these]
    one = numbers.count(numbers[0]) == len(numbers)  # one target: no run to find
    start = 0
    while start < len(these):
        stop = min(len(these), start + _WRITE_AT)
        if not one:
            end, number = start + 1, numbers[start]
            while end < stop and numbers[end] == number:
                end += 1
            stop = end
        target = targets[numbers[start] - 1]
        _write(out, root, raws[start:stop], these[start:stop], units, target)
        start = stop


def _write(
    out: Columns,
    root: str,
    raws: list[bytes],
    run: list[int],
    units: UnitCollector,
    target: Target,
) -> None:
    """Evicted units of one root and target, in plan order, as rows of `out` (the rows
    of plan.whole_action's Actions, none built); `raws`: their rels."""
    rule, reason = target
    out.add_wholes(root, rule, reason, units.wholes(run, raws))
