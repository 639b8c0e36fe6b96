"""The budget run's fast paths (issue 9's speed target) against the plain way of
computing the same thing: the age the walk hands the planner, the forecast asked once
per root, evictions written in batches, and prune's JSON rows written without the
encoder."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from gradio_clean import order
from gradio_clean import rules as rules_module
from gradio_clean.ages import age_getter, age_ns
from gradio_clean.apply import apply_plan
from gradio_clean.budget import LRU
from gradio_clean.classify import Category, Kind, Role
from gradio_clean.documents import ActionRows, iter_json, prune_to_dict
from gradio_clean.inuse import InUse, Places, snapshot
from gradio_clean.options import AgeBy
from gradio_clean.plan import Action, Plan, Rule, whole_action
from gradio_clean.preflight import Forecast, preflight
from gradio_clean.roots import Root
from gradio_clean.rules import RuleSet, build_plan
from gradio_clean.scan import Held, Hooks, RootHooks, scan
from gradio_clean.sizes import MinFree, human_size
from tests.conftest import DAY, HOUR, SHA256_A, SHA256_B, build_gradio_tree, hold, write

KI = 1024


def _stamp(path: Path, *, mtime: float, atime: float) -> None:
    os.utime(path, (atime, mtime), follow_symlinks=False)


def _aged_tree(temp: Path, now: float) -> None:
    """Files whose mtime, atime and ctime each make the newest, in items of each shape:
    a loose file, a hash folder with a nested folder, a hard link."""
    for i, (m, a) in enumerate([(40, 40), (40, 2), (2, 40), (60, 50)]):
        folder = temp / f"{i:064x}"
        f = write(folder / "image.webp", b"x" * (i + 1) * 100)
        _stamp(f, mtime=now - m * DAY, atime=now - a * DAY)
        sub = write(folder / "sub" / "deep.bin", b"y" * 10)
        _stamp(sub, mtime=now - (m + 1) * DAY, atime=now - (a + 1) * DAY)
        _stamp(folder / "sub", mtime=now - 50 * DAY, atime=now - 50 * DAY)
        _stamp(folder, mtime=now - 50 * DAY, atime=now - 50 * DAY)
    loose = write(temp / "tmpab12cd34", b"z" * 7)
    _stamp(loose, mtime=now - 45 * DAY, atime=now - 3 * DAY)
    os.link(temp / f"{0:064x}" / "image.webp", temp / f"{1:064x}" / "link.webp")


def evicted_row(folder: Path, rule: Rule, reason: str, newest_ns: int) -> Action:
    """The plan row of a hash folder holding one file.bin, evicted whole by `rule`."""
    st, inner = os.lstat(folder), os.lstat(folder / "file.bin")
    return whole_action(
        str(folder.parent),
        folder.name,
        Category.CACHE,
        True,
        dev=st.st_dev,
        ino=st.st_ino,
        size=inner.st_size,
        files=1,
        mtime_ns=st.st_mtime_ns,
        newest_ns=newest_ns,
        rule=rule,
        reason=reason,
        age_ns=newest_ns,
    )


@pytest.mark.parametrize("age_by", list(AgeBy))
def test_a_roots_file_hook_gets_the_age_the_rule_would_compute(
    tmp_path: Path, age_by: AgeBy
) -> None:
    """The walk hands each file's --age-by timestamp to the root's file hook (taken once):
    it is what age_ns computes from the file's own lstat, for every --age-by."""
    temp = tmp_path / "temp"
    _aged_tree(temp, time.time())
    seen: list[tuple[str, os.stat_result, int]] = []

    def on_root(_root: Root) -> RootHooks:
        return RootHooks(lambda rel, st, _cat, then: seen.append((rel, st, then)), None)

    getter = None if age_by is AgeBy.MTIME else age_getter(age_by)
    scan([Root(str(temp), Role.TEMP, "test")], hooks=Hooks(on_root=on_root, age=getter), jobs=1)

    assert len(seen) == 10
    for rel, st, then in seen:
        assert then == age_ns(st, age_by) == age_ns(os.lstat(temp / rel), age_by), rel


@pytest.mark.parametrize("age_by", list(AgeBy))
def test_older_than_picks_by_the_age_computed_once(tmp_path: Path, age_by: AgeBy) -> None:
    """--older-than with each --age-by plans exactly the files whose own age_ns is old
    (ctime is now: the clock is put 20 days ahead so it can be old too)."""
    temp = tmp_path / "temp"
    now = time.time() + 20 * DAY
    _aged_tree(temp, now)
    rules = RuleSet(older_than=10 * DAY, age_by=age_by)
    plan = build_plan([Root(str(temp), Role.TEMP, "test")], rules, now=now, jobs=1)

    planned: dict[str, int] = {}
    for a in plan.actions:
        assert a.age_ns is not None
        planned[a.rel] = a.age_ns
    old: dict[str, int] = {}
    for path in temp.rglob("*"):
        then = age_ns(os.lstat(path), age_by)
        if path.is_file() and now * 1e9 - then > 10 * DAY * 1e9:
            old[str(path.relative_to(temp))] = then
    # a folder all of whose files are old goes whole, at the newest of its files' ages
    expected: dict[str, int] = {}
    for rel, then in old.items():
        head = rel.split("/", 1)[0]
        files = [p for p in (temp / head).rglob("*") if p.is_file()] if "/" in rel else []
        whole = files and all(str(p.relative_to(temp)) in old for p in files)
        key = head if whole else rel
        expected[key] = max(expected.get(key, then), then)
    assert planned == expected
    assert planned  # something is old by every --age-by


def _units(temp: Path, n: int, *, start: int = 0) -> list[Path]:
    """`n` hash folders of one file, each an hour older than the one before."""
    now = time.time()
    folders = []
    for i in range(start, start + n):
        folder = temp / f"{i:064x}"
        f = write(folder / "file.bin", b"u" * (i % 7 + 1) * 100)
        _stamp(f, mtime=now - (i + 2) * HOUR, atime=now - (i + 2) * HOUR)
        _stamp(folder, mtime=now - (i + 2) * HOUR, atime=now - (i + 2) * HOUR)
        folders.append(folder)
    return folders


def test_evictions_written_in_batches_are_the_rows_of_whole_actions(tmp_path: Path) -> None:
    """More evictions than one batch (4096): every row is the whole_action of its unit,
    in plan order, across the batches' seams."""
    temp = tmp_path / "temp"
    folders = _units(temp, 4096 + 300)
    rules = RuleSet(age_by=AgeBy.MTIME, max_size=0, min_age=0.0)
    plan = build_plan([Root(str(temp), Role.TEMP, "test")], rules, now=time.time(), jobs=1)

    reason = f"{LRU}; budget {human_size(0)}"
    expected = []
    for folder in sorted(folders, key=lambda f: os.fsencode(f.name)):
        newest = max(os.lstat(folder).st_mtime_ns, os.lstat(folder / "file.bin").st_mtime_ns)
        expected.append(evicted_row(folder, Rule.MAX_SIZE, reason, newest))
    assert list(plan.actions) == expected


def _held_key(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_dev, st.st_ino


def _one_name(key: tuple[int, int], places: Places) -> bool:
    """True when the file held as `key` has one name, one the snapshot saw."""
    for path in places.paths.get(key, set()) | places.mapped.get(key[1], set()):
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == key:
            return st.st_nlink == 1
    return False


def test_folders_of_a_root_with_nothing_in_use_are_free_as_asked_one_by_one(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """Forecast.folders_free: the budget's answer for every folder of a root at once.
    Where it says so, why_entry says None of each folder; a root holding a file in use
    is asked folder by folder, and the held unit is passed over."""
    calm, busy = tmp_path / "calm", tmp_path / "busy"
    calm_units = _units(calm, 6)
    busy_units = _units(busy, 6, start=6)
    held = busy_units[2] / "file.bin"
    pid = hold(
        holder, f"import time\nf = open({str(held)!r})\nprint('ready', flush=True)\ntime.sleep(60)"
    )
    roots = [Root(str(calm), Role.TEMP, "test"), Root(str(busy), Role.TEMP, "test")]
    # The snapshot as the holder alone makes it: a busy host holds files on this device
    # that cannot be placed, and then every folder is walked (folders_free says False).
    # So can the holder itself: a library it maps with a second name (perf's build-id
    # cache hard-links libpython into ~/.debug) is left out, as a host's other files are.
    places = Places()
    snap = snapshot(places=places)
    mine = InUse(
        {key: p for key, p in snap.open_by.items() if p == pid and _one_name(key, places)},
        frozenset(),
    )
    assert _held_key(held) in mine.open_by
    inos = {ino for _, ino in mine.open_by}  # its own libraries are mapped, by path
    places = Places(
        paths={k: v for k, v in places.paths.items() if k in mine.open_by},
        nlink={k: v for k, v in places.nlink.items() if k in mine.open_by},
        mapped={ino: v for ino, v in places.mapped.items() if ino in inos},
    )

    with Forecast((), 0, mine, places) as forecast:
        assert forecast.folders_free(str(calm))
        assert not forecast.folders_free(str(busy))
        for folder in calm_units:
            st = os.lstat(folder)
            assert forecast.why_entry(str(calm), folder.name, True, st.st_dev, st.st_ino) is None
        st = os.lstat(busy_units[2])
        why = forecast.why_entry(str(busy), busy_units[2].name, True, st.st_dev, st.st_ino)
        assert why is not None and why.startswith("file.bin is open by process")

    rules = RuleSet(age_by=AgeBy.MTIME, max_size=0, min_age=0.0)
    plan = build_plan(roots, rules, now=time.time(), jobs=1)
    evicted = {(a.root, a.rel) for a in plan.actions}
    every = {(str(f.parent), f.name) for f in calm_units + busy_units}
    assert evicted == every - {(str(busy), busy_units[2].name)}
    assert plan.budget is not None and plan.budget.targets[0].why_over is not None


def _row_texts(doc: dict[str, object]) -> list[str]:
    text = "".join(iter_json(doc))
    lines = text.split('  "actions": [\n    ', 1)[1].split("\n  ]", 1)[0]
    return lines.split(",\n    ")


def _rows_of_every_kind(tmp_path: Path, holder: list[subprocess.Popen[bytes]]) -> list[Root]:
    temp = tmp_path / "temp"
    odd = os.fsdecode(b'caf\xe9 "q" \\ \x1b\n.bin')
    write(temp / SHA256_A / odd, b"same" * 100, age=40 * DAY)
    write(temp / SHA256_A / "young.bin", b"young", age=HOUR)
    write(temp / SHA256_B / "copy.bin", b"same" * 100, age=3 * DAY)
    write(temp / SHA256_B / "copy2.bin", b"same" * 100, age=4 * DAY)
    write(temp / "tmpab12cd34", b"x", age=50 * DAY)
    write(temp / "ünïcode-ストア.txt", b"u" * 10, age=45 * DAY)
    held = write(temp / f"{7:064x}" / "held.bin", b"h" * 50, age=41 * DAY)
    hold(
        holder, f"import time\nf = open({str(held)!r})\nprint('ready', flush=True)\ntime.sleep(60)"
    )
    _units(temp, 5, start=20)
    return [Root(str(temp), Role.TEMP, "test")]


@pytest.mark.parametrize("budget", [False, True])
def test_json_rows_written_directly_are_what_the_encoder_writes(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]], budget: bool
) -> None:
    """Each row of prune --json, dry run and applied, is the compact JSON of the row's
    dict: odd names (undecodable bytes, quotes, controls), duplicates, skips, evictions."""
    roots = _rows_of_every_kind(tmp_path, holder)
    rules = RuleSet(
        older_than=30 * DAY,
        age_by=AgeBy.MTIME,
        duplicates=True,
        max_size=1 if budget else None,
        min_age=0.0,
    )
    plan = preflight(build_plan(roots, rules, now=time.time(), jobs=1))
    result = None
    for _ in range(2):  # the dry run, then what apply did
        rows = ActionRows(plan, result)
        expected = [json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) for row in rows]
        assert list(rows.texts()) == expected
        assert _row_texts(prune_to_dict(plan, result, {})) == expected
        applied = {"deleted", "skipped"} if budget else {"deleted", "linked", "skipped"}
        assert {json.loads(row)["status"] for row in expected} == (
            {"planned", "skipped"} if result is None else applied
        )
        result = apply_plan(plan)
    assert any("caf\\\\xe9" in row for row in expected) is not budget  # else in a folder
    assert any('"keep": ' in row for row in expected) is not budget  # evicted with its kept copy


def _varied_tree(base: Path) -> list[Root]:
    """build_gradio_tree, plus what the walk hands over for other reasons than age: a
    tmp folder inside a hash folder (another category than its item's), nested folders,
    old files among young ones, a loose old file, a file with three names."""
    tree = build_gradio_tree(base)
    temp = tree.temp
    write(temp / SHA256_B / "tmpab12cd34" / "frame.png", b"f" * 300, age=50 * DAY)
    write(temp / SHA256_B / "deeper" / "a" / "b.bin", b"d" * 90, age=20 * DAY)
    for i in range(6):
        folder = temp / f"{i + 40:064x}"
        write(folder / "old.bin", b"o" * (i + 1) * 70, age=(30 + 5 * i) * DAY)
        if i % 2:
            write(folder / "young.bin", b"y" * 40, age=i * HOUR)
    write(temp / "tmpold12345", b"partial upload", age=60 * DAY)
    os.link(temp / SHA256_B / "hard.bin", temp / f"{41:064x}" / "third-name.bin")
    return [Root(str(temp), Role.TEMP, "test"), Root(str(tree.app), Role.APP, "test")]


_Seen = tuple[str, int, Category, int]  # a file handed over: rel, st_nlink, category, age


def _walk_seen(
    roots: list[Root], files_below: int | None, age: AgeBy
) -> list[tuple[str, Category, int, list[_Seen]]]:
    """Per item: its rel, category and held[0], and the files the walk handed over."""
    items: list[tuple[str, Category, int, list[_Seen]]] = []
    files: list[_Seen] = []

    def on_file(rel: str, st: os.stat_result, category: Category, then: int) -> None:
        files.append((rel, st.st_nlink, category, then))

    def on_item(
        rel: str, _st: os.stat_result, _kind: Kind, cat: Category, _is_dir: bool, held: Held
    ) -> None:
        items.append((rel, cat, held[0], list(files)))
        files.clear()

    getter = None if age is AgeBy.MTIME else age_getter(age)
    hooks = Hooks(on_root=lambda _root: RootHooks(on_file, on_item, files_below), age=getter)
    scan(roots, hooks=hooks, jobs=1)
    return items


@pytest.mark.parametrize("age", [AgeBy.MTIME, AgeBy.NEWEST])
def test_the_walk_hands_over_the_files_below_and_every_odd_one(tmp_path: Path, age: AgeBy) -> None:
    """RootHooks.files_below: the file hook gets a file whose age is below it, with more
    than one link, of another category than its item's, or an item itself; every other
    file is counted in its item's held[0] only (the planner counts them as unseen)."""
    roots = _varied_tree(tmp_path)
    every = _walk_seen(roots, None, age)
    assert all(files == len(seen) for _, _, files, seen in every)
    for below in (int((time.time() - 25 * DAY) * 1e9), -(1 << 64)):
        gated = _walk_seen(roots, below, age)
        assert [item[:3] for item in gated] == [item[:3] for item in every]
        for (rel, category, _, seen), (*_, all_files) in zip(gated, every, strict=True):
            expected = [
                (name, nlink, cat, then)
                for name, nlink, cat, then in all_files
                if then < below or nlink > 1 or cat is not category or name == rel
            ]
            assert seen == expected, rel
        handed = sum(len(item[3]) for item in gated)
        assert 0 < handed < sum(len(item[3]) for item in every)


def _cut(plan: Plan) -> object:
    """What a plan's budget chose (a filesystem's usage moves with other writers)."""
    if plan.budget is None:
        return None
    return [
        (t.rule, t.roots, t.freed, t.evicted, t.evicted_bytes, t.newest_evicted_ns)
        for t in plan.budget.targets
    ]


def _plain(rules: RuleSet) -> RuleSet:
    """The same rules with a pattern every file matches: the walk then hands the planner
    every file (patterns need each one), as it did before files_below."""
    return dataclasses.replace(rules, include=("*",))


@pytest.mark.parametrize(
    "rules",
    [
        RuleSet(older_than=HOUR),  # by the newest timestamp: ctime is now, see `now`
        RuleSet(older_than=30 * DAY, age_by=AgeBy.MTIME),
        RuleSet(older_than=4 * DAY, age_by=AgeBy.ATIME),
        RuleSet(orphaned_sessions=True, session_ttl=HOUR),
        RuleSet(older_than=40 * DAY, orphaned_sessions=True),
        RuleSet(age_by=AgeBy.MTIME, max_size=20_000, min_age=0.0),
        RuleSet(max_size=20_000, older_than=45 * DAY, min_age=HOUR, age_by=AgeBy.MTIME),
        RuleSet(max_size=20_000, min_age=HOUR),
        RuleSet(max_size=1, min_age=0.0),
        RuleSet(min_free=MinFree(bytes=0)),
        RuleSet(
            older_than=2 * DAY,
            categories=frozenset({Category.FLAGGED, Category.CACHE, Category.LEFTOVER}),
            explicit_categories=True,
            max_size=1,
            min_age=0.0,
        ),
    ],
    ids=lambda r: "-".join(f"{k}={v}" for k, v in vars(r).items() if v != getattr(RuleSet(), k)),
)
def test_plans_with_the_files_below_are_the_plans_with_every_file(
    tmp_path: Path, rules: RuleSet
) -> None:
    """The planner told only of the files it may want (files_below) plans what it plans
    when told of every file: actions, budget and forecast alike."""
    roots = _varied_tree(tmp_path)
    now = time.time() + 2 * HOUR  # the files' ctime is old enough for the newest age
    assert rules_module._Planning(rules, now).on_root(roots[0]).files_below is not None
    assert rules_module._Planning(_plain(rules), now).on_root(roots[0]).files_below is None
    for jobs in (1, 2):
        gated = build_plan(roots, rules, now=now, jobs=jobs)
        plain = build_plan(roots, _plain(rules), now=now, jobs=jobs)
        assert list(gated.actions) == list(plain.actions)
        assert _cut(gated) == _cut(plain)
        assert gated.skips == plain.skips
        assert [(s.excluded, s.ignored) for s in gated.scopes] == [(0, 0), (0, 0)]
    assert gated.actions or rules.min_free is not None


def test_the_actions_read_in_bulk_are_what_each_row_reads(tmp_path: Path) -> None:
    """Actions.briefs, positions and the whole-store counts (read off the columns in C)
    against reading each action: packed hash names, odd names, folders, links, a
    reading order of its own."""
    roots = _varied_tree(tmp_path)
    rules = RuleSet(older_than=2 * DAY, duplicates=True, orphaned_sessions=True, age_by=AgeBy.MTIME)
    actions = build_plan(roots, rules, now=time.time(), jobs=1).actions
    every = list(actions)
    assert actions.hardlinks and actions.folders and len(every) > 10
    assert list(actions.briefs()) == [actions.brief(i) for i in range(len(every))]
    assert actions.folders == sum(a.is_dir for a in every)
    assert actions.hardlinks == sum(a.hardlink for a in every)
    for rule in Rule:
        assert list(actions.of_rule(rule)) == [i for i, a in enumerate(every) if a.rule is rule]
    going = actions.going()
    assert (going.links, going.files, going.folders, going.bytes) == (
        sum(a.hardlink for a in every),
        sum(a.files for a in every if not a.hardlink),
        sum(a.is_dir for a in every if not a.hardlink),
        sum(a.bytes for a in every if not a.hardlink),
    )
    keys = [actions.sort_key(i) for i in range(len(every))]
    for wanted in (
        set(keys) | {(roots[0].path, b"missing"), ("/nowhere", keys[0][1])},
        set(keys[::3]) | {(roots[0].path, os.fsencode(SHA256_A + "/nothing"))},
    ):
        assert actions.positions(wanted) == order.positions(len(every), actions.sort_key, wanted)


def test_evictions_of_two_targets_in_one_root_are_their_targets_rows(tmp_path: Path) -> None:
    """--max-size and --min-free evicting in one root, their units interleaved in plan
    order: each row is the whole_action of its unit, under the target that took it, and
    --max-size took the least recently used."""
    temp = tmp_path / "temp"
    folders = _units(temp, 40)
    now = time.time()
    for rank, folder in zip(random.Random(9).sample(range(40), 40), folders, strict=True):
        for path in (folder / "file.bin", folder):
            _stamp(path, mtime=now - (rank + 2) * HOUR, atime=now - (rank + 2) * HOUR)
    root = Root(str(temp), Role.TEMP, "test")
    max_size = scan([root], jobs=1).roots[0].disk_bytes // 2
    rules = RuleSet(
        age_by=AgeBy.MTIME, max_size=max_size, min_free=MinFree(percent=100.0), min_age=0.0
    )
    plan = build_plan([root], rules, now=now, jobs=1)

    assert plan.budget is not None
    by_size, by_free = plan.budget.targets
    assert by_size.evicted and by_free.evicted and by_size.evicted + by_free.evicted == 40
    oldest = sorted(folders, key=lambda f: os.lstat(f).st_mtime_ns)[: by_size.evicted]
    reasons = {
        Rule.MAX_SIZE: f"{LRU}; budget {human_size(max_size)}",
        Rule.MIN_FREE: f"{LRU}; keep 100% free on {by_free.filesystem}",
    }
    expected = []
    for folder in sorted(folders, key=lambda f: os.fsencode(f.name)):
        rule = Rule.MAX_SIZE if folder in oldest else Rule.MIN_FREE
        expected.append(evicted_row(folder, rule, reasons[rule], os.lstat(folder).st_mtime_ns))
    assert list(plan.actions) == expected
    rules_in_order = [a.rule for a in plan.actions]
    assert sum(a != b for a, b in itertools.pairwise(rules_in_order)) > 4  # many runs
