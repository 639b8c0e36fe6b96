"""The budget run's fast paths (issue 9's speed target) against the plain way of
computing the same thing: the age the walk hands the planner, the forecast asked once
per root, evictions written in batches, and prune's JSON rows written without the
encoder."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from gradio_clean.ages import age_getter, age_ns
from gradio_clean.apply import apply_plan
from gradio_clean.budget import LRU
from gradio_clean.classify import Category, Role
from gradio_clean.documents import ActionRows, iter_json, prune_to_dict
from gradio_clean.inuse import InUse, Places, snapshot
from gradio_clean.options import AgeBy
from gradio_clean.plan import Rule, whole_action
from gradio_clean.preflight import Forecast, preflight
from gradio_clean.roots import Root
from gradio_clean.rules import RuleSet, build_plan
from gradio_clean.scan import Hooks, RootHooks, scan
from gradio_clean.sizes import human_size
from tests.conftest import DAY, HOUR, SHA256_A, SHA256_B, hold, write

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
        st, inner = os.lstat(folder), os.lstat(folder / "file.bin")
        newest = max(st.st_mtime_ns, inner.st_mtime_ns)
        expected.append(
            whole_action(
                str(temp),
                folder.name,
                Category.CACHE,
                True,
                dev=st.st_dev,
                ino=st.st_ino,
                size=inner.st_size,
                files=1,
                mtime_ns=st.st_mtime_ns,
                newest_ns=newest,
                rule=Rule.MAX_SIZE,
                reason=reason,
                age_ns=newest,
            )
        )
    assert list(plan.actions) == expected


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
    places = Places()
    snap = snapshot(places=places)
    mine = InUse({key: p for key, p in snap.open_by.items() if p == pid}, frozenset())
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
