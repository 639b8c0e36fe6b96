"""Running a plan across workers: what each share did, gathered into one result."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Role
from gradio_clean.plan import Status
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from tests.conftest import set_age, write


def test_a_hard_link_split_across_workers_counts_its_bytes_once(tmp_path: Path) -> None:
    """Two names of one inode, in items that two workers remove at the same moment: each
    sees a link count of 2 before it unlinks, yet together they free the inode. Its bytes
    are counted once (they were counted by neither). A barrier in the in-use check makes
    both workers stat before either unlinks, every time."""
    temp = tmp_path / "temp"
    first = write(temp / f"{1:064x}" / "a.bin", b"x" * 10_000)
    second = temp / f"{2:064x}" / "b.bin"
    second.parent.mkdir()
    os.link(first, second)
    inode = first.stat().st_ino
    for path in (first, second):
        set_age(path, 40 * 86400)
    for folder in (first.parent, second.parent):  # the linked names go as file actions
        write(folder / "young.bin", b"y")
    plan = build_plan(
        [Root(str(temp), Role.TEMP, "test")],
        RuleSet(older_than=30 * 86400, age_by=AgeBy.MTIME),
        now=time.time(),
    )
    assert [a.is_dir for a in plan.actions] == [False, False]
    barrier = multiprocessing.get_context("fork").Barrier(2, timeout=10)

    def why(dev: int, ino: int) -> str | None:
        if ino == inode:  # both workers check the same inode as often: they pair up
            barrier.wait()
        return None

    result = apply_plan(plan, why=why, jobs=2)
    assert [o.status for o in result.outcomes] == [Status.DELETED, Status.DELETED]
    assert not first.exists() and not second.exists()
    assert result.outcomes.freed_bytes == 10_000
    assert result.outcomes.freed_files == 2


def test_a_duplicate_and_another_name_of_it_go_in_one_worker(tmp_path: Path) -> None:
    """A leftover (an old staging copy) and a duplicate to link are two names of one file,
    in items dealt to two workers: the leftover's unlink moves the duplicate's ctime,
    which its worker then took for a rewrite and skipped the link (found by
    tests/test_truth.py). Such items go to the duplicates' worker, which knows the change
    is its own. The in-use check of the duplicate waits, so the other unlink comes first."""
    temp = tmp_path / "temp"
    content = b"same bytes" * 100
    staging = write(temp / f"{1:064x}" / ".a.png.ab12cd34", content, age=3 * 3600)
    copy = temp / f"{1:064x}" / "l0.bin"
    os.link(staging, copy)
    keep = write(temp / f"{2:064x}" / "keep.bin", content)
    plan = build_plan(
        [Root(str(temp), Role.TEMP, "test")],
        RuleSet(duplicates=True, orphaned_sessions=True, age_by=AgeBy.MTIME),
        now=time.time(),
    )
    assert [(a.rel, a.keep) for a in plan.actions] == [
        (f"{1:064x}/.a.png.ab12cd34", None),
        (f"{1:064x}/l0.bin", str(keep)),
    ]
    inode = copy.stat().st_ino

    def why(dev: int, ino: int) -> str | None:
        if ino == inode:
            time.sleep(0.5)
        return None

    result = apply_plan(plan, why=why, jobs=2)
    assert [(o.status, o.detail) for o in result.outcomes] == [
        (Status.DELETED, None),
        (Status.LINKED, None),
    ]
    assert copy.stat().st_ino == keep.stat().st_ino and not staging.exists()
