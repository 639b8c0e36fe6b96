"""Candidates in columns (duplicates.Pool, issue 12): the same sets as Candidate objects.

The rules hand the hashing a Pool per root: rel paths packed after one prefix, walk
workers' pools appended to each other, split by tag into cache and session files.
On random real trees (hard links, non-UTF-8 names, copies across folders) that must
find exactly what the Candidate objects of the same files find, with one process or
with forked workers reading the columns.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradio_clean.actions import Actions
from gradio_clean.classify import Category
from gradio_clean.dedupe import Deduping, DupePool, plan_duplicates
from gradio_clean.duplicates import FORK_MIN_FILES, Candidate, Keep, Pool, find_duplicates
from gradio_clean.options import Dedupe
from gradio_clean.plan import Action, duplicate_action

NAMES = ("f", "copy of f.png", "é.wav", "x" * 150)


def make_tree(root: Path, rng: random.Random, files: int) -> list[str]:
    """Files of a few contents and sizes in a few folders, some hard-linked; rel paths."""
    blobs = [rng.randbytes(rng.choice((5, 700, 20_000, 70_000))) for _ in range(6)]
    blobs += [b[:-1] + b"!" for b in blobs[:2]]  # same size and head, another tail
    rels: list[str] = []
    for i in range(files):
        folder = f"h{rng.randrange(8)}" if rng.random() < 0.9 else ""
        name = rng.choice(NAMES) + str(i)
        rel = os.path.join(folder, name) if folder else name
        if rng.random() < 0.1:  # a non-UTF-8 name
            rel = os.fsdecode(os.fsencode(rel) + b"\xff")
        path = root / rel
        path.parent.mkdir(exist_ok=True)
        if rels and rng.random() < 0.08:
            os.link(root / rels[-1], path)
        else:
            path.write_bytes(rng.choice(blobs))
            os.utime(path, ns=(0, rng.randrange(3) * 10**9))
        rels.append(rel)
    return rels


def pool_of(root: Path, rels: list[str], tags: list[int], parts: int) -> Pool:
    """As the walk builds it: `parts` workers' pools, appended in turn."""
    prefix = os.path.join(str(root), "")
    pools = [Pool(prefix) for _ in range(parts)]
    for k, (rel, tag) in enumerate(zip(rels, tags, strict=True)):
        pools[k * parts // len(rels)].add(rel, os.lstat(root / rel), tag)
    for other in pools[1:]:
        pools[0].extend(other)
    return pools[0]


def candidates(root: Path, rels: list[str]) -> list[Candidate]:
    return [Candidate.from_stat(str(root / rel), os.lstat(root / rel)) for rel in rels]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    files=st.integers(2, 60),
    parts=st.integers(1, 3),
    keep=st.sampled_from((Keep.NEWEST, Keep.OLDEST)),
)
def test_a_pool_finds_what_its_candidates_find(
    seed: int, files: int, parts: int, keep: Keep
) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rels = make_tree(root, rng, files)
        tags = [rng.randrange(2) for _ in rels]
        pool = pool_of(root, rels, tags, parts)
        assert len(pool) == len(rels)
        assert [pool.path(i) for i in range(len(pool))] == [str(root / r) for r in rels]
        expected = find_duplicates(candidates(root, rels), keep=keep, workers=1, root=tmp)
        assert expected.warnings == ()
        assert find_duplicates(pool, keep=keep, workers=1, root=tmp) == expected
        ones, zeros = pool.partition(frozenset({1}))
        for tag, part in ((1, ones), (0, zeros)):
            mine = [r for r, t in zip(rels, tags, strict=True) if t == tag]
            assert [part.path(i) for i in range(len(part))] == [str(root / r) for r in mine]
            assert set(part.tag) <= {tag}
            assert find_duplicates(part, keep=keep, workers=1, root=tmp) == find_duplicates(
                candidates(root, mine), keep=keep, workers=1, root=tmp
            )


@pytest.mark.parametrize("workers", [2, 3])
def test_forked_workers_read_the_pool_and_find_the_same_sets(tmp_path: Path, workers: int) -> None:
    """Enough files to fork: the workers hash from the parent's columns."""
    rng = random.Random(5)
    rels = make_tree(tmp_path, rng, 2 * FORK_MIN_FILES)
    pool = pool_of(tmp_path, rels, [0] * len(rels), 2)
    one = find_duplicates(candidates(tmp_path, rels), workers=1, root=str(tmp_path))
    many = find_duplicates(pool, workers=workers, root=str(tmp_path))
    assert many == one
    assert len(one.sets) > 5


def test_pools_of_other_prefixes_or_of_objects_do_not_mix(tmp_path: Path) -> None:
    a, b = Pool("/a/"), Pool("/b/")
    with pytest.raises(ValueError):
        a.extend(b)
    objects = Pool.of([])
    with pytest.raises(ValueError):
        a.extend(objects)
    with pytest.raises(ValueError):
        objects.partition(frozenset({0}))


# -- the rule's plan straight from the columns (dedupe.py, issue 12) -----------------------


def reference_plan(
    root: Path, rels: list[str], categories: list[Category], how: Deduping, workers: int
) -> tuple[Actions, list[Action], list[tuple[str, str]]]:
    """The plan as it was made before dedupe.py wrote rows from the pool: Candidate
    objects, a DuplicateSet each, an Action per extra copy, appended."""
    acted, reported, warnings = Actions(), list[Action](), list[tuple[str, str]]()
    start = len(os.path.join(str(root), ""))
    sessions = [i for i, c in enumerate(categories) if c is Category.SESSION]
    others = [i for i, c in enumerate(categories) if c is not Category.SESSION]
    for part, act in ((others, True), (sessions, how.delete_sessions)):
        mine = [rels[i] for i in part]
        where = {str(root / rels[i]): categories[i] for i in part}
        report = find_duplicates(
            candidates(root, mine), keep=how.keep, verify=how.verify, workers=workers, root=how.root
        )
        warnings += report.warnings
        hardlink = how.dedupe is Dedupe.HARDLINK and act
        if not act:
            verb, why = (
                "same content as",
                "; session files are never linked (an app may rewrite them)",
            )
        else:
            verb, why = ("hard-linked to" if hardlink else "deleted; same content as"), ""
        into: Actions | list[Action] = acted if act else reported
        for dset in report.sets:
            reason = f"{verb} {dset.keep.path[start:]}{why}"
            for extra in dset.extras:
                category = where[extra.path]
                into.append(
                    duplicate_action(
                        how.root,
                        extra.path[start:],
                        category,
                        extra,
                        dset.keep,
                        reason,
                        hardlink=hardlink,
                    )
                )
    return acted, reported, warnings


def check_rule_plan(root: Path, rng: random.Random, files: int, how: Deduping, workers: int) -> int:
    """plan_duplicates on a DupePool (as the walk fills it) against reference_plan; the
    number of rows planned."""
    rels = make_tree(root, rng, files)
    categories = [rng.choice((Category.CACHE, Category.CACHE, Category.SESSION)) for _ in rels]
    expected = reference_plan(root, rels, categories, how, workers)
    pool = DupePool(os.path.join(str(root), ""))
    pool.add_files((rel, os.lstat(root / rel), c) for rel, c in zip(rels, categories, strict=True))
    acted, reported, warnings = Actions(), list[Action](), list[tuple[str, str]]()
    with contextlib.ExitStack() as stack:
        if workers > 1:  # find_sets takes the count of cores: make it `workers`
            cores = os.sched_getaffinity(0)
            if len(cores) < workers:
                pytest.skip(f"needs {workers} cores")
            stack.callback(os.sched_setaffinity, 0, cores)
            os.sched_setaffinity(0, sorted(cores)[:workers])
        plan_duplicates(pool, how, lambda p, m: warnings.append((p, m)), acted, reported)
    assert (acted, reported, warnings) == expected
    # the very rows append(duplicate_action(...)) writes, not only the same Actions read back
    assert vars(acted) == vars(expected[0])
    assert len(pool) == 0, "the pool's columns are freed once planned"
    return len(acted) + len(reported)


HOWS = st.builds(
    Deduping,
    root=st.just(""),
    keep=st.sampled_from((Keep.NEWEST, Keep.OLDEST)),
    verify=st.booleans(),
    dedupe=st.sampled_from((Dedupe.HARDLINK, Dedupe.DELETE)),
    delete_sessions=st.booleans(),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), files=st.integers(2, 60), how=HOWS)
def test_the_rule_plans_from_the_columns_what_it_planned_from_objects(
    seed: int, files: int, how: Deduping
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        how = dataclasses.replace(how, root=tmp)
        check_rule_plan(Path(tmp), random.Random(seed), files, how, workers=1)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), how=HOWS)
def test_the_rule_plans_the_same_with_forked_workers(seed: int, how: Deduping) -> None:
    """Enough files that the hashing forks (two workers) on both paths."""
    with tempfile.TemporaryDirectory() as tmp:
        how = dataclasses.replace(how, root=tmp)
        rows = check_rule_plan(Path(tmp), random.Random(seed), 3 * FORK_MIN_FILES, how, workers=2)
        assert rows > FORK_MIN_FILES // 4
