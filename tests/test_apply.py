"""Running a plan across workers: what each share did, gathered into one result."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from textwrap import dedent

import pytest

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Role
from gradio_clean.plan import Plan, Status
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from tests.conftest import cli_env, duplicate_named_in_a_session, set_age, write


def test_names_of_one_file_in_two_items_go_to_one_worker(tmp_path: Path) -> None:
    """Two names of one inode, in items that would be dealt to two workers. Removed at
    the same moment, each worker's lease probe saw the other's open descriptor and both
    skipped the file as in use (found by test_links.py with two workers); and neither
    saw the last link go. Items holding names of one file now go to one worker, whatever
    else the plan holds: the inode's bytes are counted once, and nothing is skipped."""
    temp = tmp_path / "temp"
    first = write(temp / f"{1:064x}" / "a.bin", b"x" * 10_000)
    second = temp / f"{2:064x}" / "b.bin"
    second.parent.mkdir()
    os.link(first, second)
    inode = first.stat().st_ino
    for path in (first, second):
        set_age(path, 40 * 86400)
    for n in range(3, 9):  # other items, dealt in turn between the two
        write(temp / f"{n:064x}" / "other.bin", b"o", age=40 * 86400)
    for folder in temp.iterdir():
        set_age(folder, 40 * 86400)
    plan = build_plan(
        [Root(str(temp), Role.TEMP, "test")],
        RuleSet(older_than=30 * 86400, age_by=AgeBy.MTIME),
        now=time.time(),
    )
    assert len(plan.actions) == 8 and all(a.is_dir for a in plan.actions)
    workers = multiprocessing.get_context("fork").Manager().list()

    def why(dev: int, ino: int) -> str | None:
        if ino == inode:
            workers.append(os.getpid())
        return None

    result = apply_plan(plan, why=why, jobs=2)
    assert {o.status for o in result.outcomes} == {Status.DELETED}
    assert workers and len(set(workers)) == 1, list(workers)  # each name asked about
    assert not first.exists() and not second.exists()
    assert result.outcomes.freed_bytes == 10_000 + 6
    assert result.outcomes.freed_files == 8


def applied_copy_last(plan: Plan, copy: Path) -> list[tuple[Status, str | None]]:
    """Apply at two workers, the duplicate's in-use check held back half a second so the
    other action goes first; each outcome's status and detail."""
    inode = copy.stat().st_ino

    def why(dev: int, ino: int) -> str | None:
        if ino == inode:
            time.sleep(0.5)
        return None

    result = apply_plan(plan, why=why, jobs=2)
    return [(o.status, o.detail) for o in result.outcomes]


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
    assert applied_copy_last(plan, copy) == [(Status.DELETED, None), (Status.LINKED, None)]
    assert copy.stat().st_ino == keep.stat().st_ino and not staging.exists()


def test_a_name_of_a_kept_copy_in_another_root_goes_in_the_duplicates_worker(
    tmp_path: Path,
) -> None:
    """An app's old session folder holds another name of the copy a duplicate in the temp
    dir is linked to: removing it moves the kept inode's ctime. The session went to a
    worker of its own root, and the link was skipped as 'the copy to keep changed' (found
    by tests/test_truth.py). Every root's duplicates and what is tied to them go to one
    worker. The in-use check of the duplicate waits, so the session goes first."""
    named = duplicate_named_in_a_session(tmp_path)
    keep, copy, session, plan = named.keep, named.copy, named.session, named.plan
    assert applied_copy_last(plan, copy) == [(Status.DELETED, None), (Status.LINKED, None)]
    assert copy.stat().st_ino == keep.stat().st_ino and not session.exists()


def test_workers_probing_one_folder_skip_nothing(tmp_path: Path) -> None:
    """Duplicates linked in a hash folder another worker deletes old files from: both
    workers take the folder's flock to probe it, for two system calls each. One worker's
    probe, met by the other's, was taken for another process's lock and its entry skipped
    as 'its folder is locked' (test_delete's workers test, now and then under load).
    strace widens each probe to 2 ms after its flock, so they meet at every action; the
    workers now probe in turn, and every action is done."""
    if shutil.which("strace") is None:
        pytest.skip("needs strace(1) to widen the probes")
    temp = tmp_path / "temp"
    same = b"same bytes" * 200
    keep = write(temp / f"{1:064x}" / "keep.png", same)
    folder = temp / f"{2:064x}"
    for n in range(20):
        write(folder / f"copy{n:02d}.png", same, age=60)
        write(folder / f"old{n:02d}.bin", b"%d" % n, age=40 * 86400)
    code = f"""
        import sys, time
        from gradio_clean.apply import apply_plan
        from gradio_clean.classify import Role
        from gradio_clean.roots import Root
        from gradio_clean.rules import AgeBy, RuleSet, build_plan
        rules = RuleSet(older_than=30 * 86400, duplicates=True, age_by=AgeBy.MTIME)
        plan = build_plan([Root({str(temp)!r}, Role.TEMP, "t")], rules, now=time.time())
        result = apply_plan(plan, why=lambda dev, ino: None, jobs=2)
        for o in result.outcomes:
            print(o.status.value, o.action.rel.rpartition("/")[2], o.detail or "")
    """
    trace = ["strace", "-f", "-qq", "-o", os.devnull, "-e", "trace=flock"]
    proc = subprocess.run(
        [*trace, "-e", "inject=flock:delay_exit=2000", sys.executable, "-c", dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=cli_env(),
    )
    if proc.returncode != 0 and "ptrace" in proc.stderr:
        pytest.skip(f"strace cannot trace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    outcomes = sorted(line.split(" ", 2) for line in proc.stdout.splitlines())
    assert outcomes == sorted(
        [["linked", f"copy{n:02d}.png", ""] for n in range(20)]
        + [["deleted", f"old{n:02d}.bin", ""] for n in range(20)]
    )
    assert all(p.stat().st_ino == keep.stat().st_ino for p in folder.glob("copy*"))
    assert not list(folder.glob("old*"))
