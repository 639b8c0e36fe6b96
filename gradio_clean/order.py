"""Plan order: by root, then by the path's own bytes, the order a plan is shown and
applied in. A million actions are sorted without holding a million keys at once."""

from __future__ import annotations

import os
from array import array
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterator

SortKey = tuple[str, bytes]  # an action's root, then its path's bytes
AT_ONCE = 1 << 16  # rows sorted by their keys at once (~100 bytes of key each)


def is_sorted(n: int, key: Callable[[int], SortKey]) -> bool:
    if not n:
        return True
    last = key(0)
    for i in range(1, n):
        this = key(i)  # each key made once
        if this < last:
            return False
        last = this
    return True


def sorted_rows(rows: array[int], path: Callable[[int], bytes], at_once: int) -> Iterator[int]:
    """Rows of one root in path order. Keys are made for at most `at_once` rows at a
    time: larger groups are split by the next two bytes after what all their paths
    share (a flat folder of a million files shares a long head)."""
    if len(rows) <= at_once:
        yield from sorted(rows, key=path)
        return
    low, high = path(min(rows, key=path)), path(max(rows, key=path))
    if low == high:
        yield from rows  # the same path twice: no order to find between them
        return
    # what every path here starts with (bytes, not path parts)
    shared = len(os.path.commonprefix([low, high]))  # noqa: RUF071
    groups: dict[bytes, array[int]] = {}
    for row in rows:
        part = path(row)[shared : shared + 2]
        if part not in groups:
            groups[part] = array("I")
        groups[part].append(row)
    del rows
    for part in sorted(groups):
        yield from sorted_rows(groups.pop(part), path, at_once)


def positions(
    n: int, key: Callable[[int], SortKey], keys: Collection[SortKey]
) -> dict[SortKey, int]:
    """Where the entries with these keys are among `n` in plan order: each looked up by
    bisection, or every entry's key made once when that is cheaper."""
    if len(keys) * 2 * max(1, n.bit_length()) < n:
        found = {}
        for wanted in keys:
            i = bisect_left(range(n), wanted, key=key)
            if i < n and key(i) == wanted:
                found[wanted] = i
        return found
    lookup = keys if isinstance(keys, (set, frozenset, dict)) else set(keys)
    return {k: i for i in range(n) if (k := key(i)) in lookup}
