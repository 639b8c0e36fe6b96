"""A dry run frees what apply frees, when files have several names (hard links)."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Category, Role
from gradio_clean.options import Dedupe
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from tests.conftest import run_cli, set_age, write

OLD = 40 * 86400
SIZE = 10_000


def _folder(temp: Path, n: int) -> Path:
    return temp / f"{n:064x}"


def _prune(temp: Path, *extra: str) -> dict[str, Any]:
    args = ("prune", str(temp), "--older-than", "30d", "--age-by", "mtime", "--json", *extra)
    done = run_cli(*args, temp_dir=temp)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert isinstance(doc, dict)
    return doc


def _freed(doc: dict[str, Any]) -> tuple[int, int]:
    totals = doc["totals"]
    if "would_free" in totals:
        return totals["would_free"]["bytes"], totals["would_free"]["files"]
    return totals["freed_bytes"], totals["freed_files"]


def test_two_planned_folders_holding_one_inode_would_free_it_once(tmp_path: Path) -> None:
    temp = tmp_path / "gradio"
    first = write(_folder(temp, 1) / "a.png", b"x" * SIZE, age=OLD)
    _folder(temp, 2).mkdir()
    os.link(first, _folder(temp, 2) / "b.png")
    write(_folder(temp, 2) / "own.png", b"o" * 100, age=OLD)
    for n in (1, 2):
        set_age(_folder(temp, n), OLD)

    dry = _prune(temp)
    assert [a["bytes"] for a in dry["actions"]] == [SIZE, SIZE + 100]  # each holds it
    done = _prune(temp, "--apply", "--yes")
    assert not _folder(temp, 1).exists() and not _folder(temp, 2).exists()
    assert _freed(dry) == _freed(done) == (SIZE + 100, 3)


def test_a_name_outside_the_plan_keeps_the_bytes_it_shares(tmp_path: Path) -> None:
    temp = tmp_path / "gradio"
    old = write(_folder(temp, 1) / "a.png", b"x" * SIZE, age=OLD)
    write(_folder(temp, 1) / "b.png", b"b" * 100, age=OLD)
    os.link(old, tmp_path / "kept.png")  # a name outside the root: the app's own copy
    set_age(_folder(temp, 1), OLD)

    dry = _prune(temp)
    assert [a["bytes"] for a in dry["actions"]] == [SIZE + 100]
    assert (
        "Would free 100 Bytes in 2 files (1 folder)."
        in run_cli(
            "prune", str(temp), "--older-than", "30d", "--age-by", "mtime", temp_dir=temp
        ).stdout.decode()
    )
    done = _prune(temp, "--apply", "--yes")
    assert (tmp_path / "kept.png").read_bytes() == b"x" * SIZE
    assert _freed(dry) == _freed(done) == (100, 2)


# A tree: folders of files, some files given more names, in their own folder or another.
_FILES = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.booleans()),  # folder, content, old
    min_size=1,
    max_size=8,
)
_LINKS = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 3)), max_size=5)  # file, folder


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=_FILES,
    links=_LINKS,
    duplicates=st.booleans(),
    dedupe=st.sampled_from(Dedupe),
    budget=st.booleans(),
    jobs=st.sampled_from([1, 2]),
)
def test_the_dry_run_frees_what_apply_frees(
    files: list[tuple[int, int, bool]],
    links: list[tuple[int, int]],
    duplicates: bool,
    dedupe: Dedupe,
    budget: bool,
    jobs: int,
) -> None:
    with tempfile.TemporaryDirectory() as base:
        temp = Path(base) / "gradio"
        paths = []
        for i, (folder, content, old) in enumerate(files):
            data = bytes([65 + content]) * (1000 + 500 * content)
            paths.append(write(_folder(temp, folder) / f"f{i}.bin", data, age=OLD if old else 0))
        for n, (file, folder) in enumerate(links):
            if file < len(paths):
                _folder(temp, folder).mkdir(parents=True, exist_ok=True)
                os.link(paths[file], _folder(temp, folder) / f"l{n}.bin")
        for made in temp.iterdir():
            set_age(made, OLD)
        rules = RuleSet(
            older_than=30 * 86400,
            age_by=AgeBy.MTIME,
            duplicates=duplicates,
            dedupe=dedupe,
            max_size=0 if budget else None,
            min_age=0,
        )
        plan = build_plan([Root(str(temp), Role.TEMP, "test")], rules, now=time.time(), jobs=jobs)
        would_bytes, would_files, _ = plan.to_free
        going = plan.going
        result = apply_plan(plan, jobs=jobs)
        assert result.complete
        assert (would_bytes, would_files) == (result.freed_bytes, result.freed_files)
        linked = sum(o.freed_bytes for o in result.outcomes if o.status.value == "linked")
        assert going.link_bytes == linked


def test_a_name_outside_the_plan_keeps_its_bytes_in_a_folder_inside_dot_gradio(
    tmp_path: Path,
) -> None:
    """Flagged data goes whole as .gradio/flagged, an item below the root's top level: a
    file in it with a name outside the root frees nothing, and the dry run said it would
    (found by tests/test_truth.py)."""
    app = tmp_path / "app"
    flagged = app / ".gradio" / "flagged"
    linked = write(flagged / "dataset1.csv", b"x" * SIZE, age=OLD)
    write(flagged / "image" / "in.png", b"i" * 100, age=OLD)
    os.link(linked, tmp_path / "kept.csv")
    set_age(flagged / "image", OLD)
    rules = RuleSet(
        older_than=30 * 86400,
        age_by=AgeBy.MTIME,
        categories=frozenset({Category.FLAGGED}),
        explicit_categories=True,
    )
    plan = build_plan([Root(str(app), Role.APP, "test")], rules, now=time.time())
    assert [(a.rel, a.is_dir) for a in plan.actions] == [(".gradio/flagged", True)]
    result = apply_plan(plan)
    assert plan.to_free[:2] == (result.freed_bytes, result.freed_files) == (100, 2)
    assert (tmp_path / "kept.csv").read_bytes() == b"x" * SIZE
