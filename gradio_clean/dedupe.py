"""The duplicates rule's part of a plan: which files it may take, and their sets' actions.

The rule sees the files no other rule picked (rules.py hands them over item by item),
keeps them in columns (duplicates.Pool), and after the walk turns each set's extra
copies into actions: hard links or deletions, or for session files a report only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from gradio_clean.actions import Actions
from gradio_clean.classify import Category, Role, item_of
from gradio_clean.duplicates import Pool, find_sets
from gradio_clean.options import Dedupe, Keep
from gradio_clean.plan import Action, Identity

# Content worth deduplicating; Gradio's leftovers and internal state are not. Gradio never
# rewrites these in place, so a hard link between two copies is safe (flagged data and
# cached examples are seen only when --category asks for them).
DEDUPE_CATEGORIES = frozenset({Category.CACHE, Category.FLAGGED, Category.EXAMPLES})
# An app rewrites its own session files (`open(path, "w")`): linking two sessions' copies
# would make a write in one show in the other. Their duplicates are only reported, and
# deleted only with --dedupe delete and an explicit --category session.
SESSION_DEDUPE = frozenset({Category.SESSION})

_CATEGORIES = tuple(Category)  # a DupePool's tag is the index of the file's category
_TAGS = {c: i for i, c in enumerate(_CATEGORIES)}
_SESSION_TAGS = frozenset(_TAGS[c] for c in SESSION_DEDUPE)
_TAKEN = tuple(c for c in _CATEGORIES if c in DEDUPE_CATEGORIES or c in SESSION_DEDUPE)


class DupePool(Pool):
    """The duplicates rule's files in columns (issue 12: ~170 bytes a file, not a ~440
    byte object), the category as the tag."""

    __slots__ = ()

    def add_files(self, files: Iterable[tuple[str, os.stat_result, Category]]) -> None:
        """The files of one item that no other rule took: those worth comparing."""
        for rel, st, category in files:
            if st.st_size > 0 and category in _TAKEN:
                self.add(rel, st, _TAGS[category])


@dataclass(frozen=True)
class Deduping:
    """How one root's duplicates are planned (from the run's rules)."""

    root: str
    keep: Keep
    verify: bool
    dedupe: Dedupe
    delete_sessions: bool  # --dedupe delete with an explicit --category session
    role: Role = Role.TEMP  # the root's: which folder is each copy's item (item_of)


def plan_duplicates(
    pool: DupePool,
    how: Deduping,
    warn: Callable[[str, str], None],
    acted: Actions,
    reported: list[Action],
) -> None:
    """Duplicate sets, found apart for cache content and for session files.

    Each pool is hashed on its own so that a set never mixes them: a cache
    path linked to a session file would change whenever the app rewrote it.
    The pool is handed over: its columns are freed as soon as they are planned.
    """
    if not len(pool):
        return
    sessions, cache = pool.partition(_SESSION_TAGS)
    if pool is not sessions and pool is not cache:
        pool.clear()  # both parts are copies
    del pool
    for part in _by_category(cache) if how.dedupe is Dedupe.DELETE else (cache,):
        _dedupe(part, how, warn, acted, act=True)
    if how.delete_sessions:
        _dedupe(sessions, how, warn, acted, act=True)
    else:
        _dedupe(sessions, how, warn, reported, act=False)


def _by_category(pool: Pool) -> Iterator[Pool]:
    """The pool split by category, for --dedupe delete: a copy is deleted only for one of
    its own category, so a flagged file never goes because a cache copy exists, which
    Gradio's delete_cache (or --older-than) removes later. Each part is freed as planned."""
    while len(pool):
        part, rest = pool.partition(frozenset({pool.tag[0]}))
        if part is not pool:
            pool.clear()  # both parts are copies
        pool = rest
        yield part


def _dedupe(
    pool: Pool,
    how: Deduping,
    warn: Callable[[str, str], None],
    into: Actions | list[Action],
    *,
    act: bool,
) -> None:
    """Plan one pool's extras into `into`; with `act` False they are reported only.

    Rows are written from the pool's columns (Actions.add_duplicate): no Candidate,
    DuplicateSet or Action is made for a file of a set (issue 12).
    """
    if not len(pool):
        return
    sets = find_sets(pool, keep=how.keep, verify=how.verify, root=how.root)
    for path, message in sets.warnings:
        warn(path, message)
    hardlink = how.dedupe is Dedupe.HARDLINK and act
    if not act:
        verb = "same content as"
        why = "; session files are never linked (an app may rewrite them)"
    else:
        verb = "hard-linked to" if hardlink else "deleted; same content as"
        why = ""
    start = len(os.path.join(how.root, ""))  # a pool's path is root + rel
    path_of, tag = pool.path, pool.tag
    dev, ino, size, mtime, ctime = pool.dev, pool.ino, pool.size, pool.mtime, pool.ctime
    rows = into if isinstance(into, Actions) else Actions()  # reported: read back as Actions
    for s, k in enumerate(sets.keep):
        keep_path = path_of(k)
        reason = f"{verb} {keep_path[start:]}{why}"
        kept = (keep_path, Identity(dev[k], ino[k], size[k], mtime[k], ctime[k]))
        for i in sets.extras_of(s):
            numbers = (dev[i], ino[i], size[i], mtime[i], ctime[i])
            rel = path_of(i)[start:]
            item = item_of(how.role, rel)
            category = _CATEGORIES[tag[i]]
            rows.add_duplicate(how.root, rel, item, category, numbers, kept, reason, hardlink)
    if rows is not into:
        into.extend(rows)
    del sets
    pool.clear()
