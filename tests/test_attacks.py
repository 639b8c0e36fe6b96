"""Attacks on `prune --apply`: a live app or another user changes what was planned, in
the ways the fast paths of removal.py and delete.py might miss. Each test is one
attack; the fixes they found are named in each docstring."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Kind, Role, classify_top
from gradio_clean.plan import Status
from gradio_clean.roots import Root, detect_role
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from tests.conftest import (
    DAY,
    HOUR,
    REPO,
    SHA256_A,
    duplicate_named_in_a_session,
    hold,
    run_cli,
    set_age,
    write,
)


def never_busy(_dev: int, _ino: int) -> str | None:
    """The /proc snapshot at its stalest: it sees no process at all."""
    return None


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Write new bytes of the same size and put the mtime back: only ctime shows it."""
    st = path.stat()
    assert len(data) == st.st_size
    time.sleep(0.05)  # past the coarse clock's tick, so the ctime moves
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


# -- _unchanged and _check: a moved ctime excused as this worker's own ---------------------


@pytest.mark.parametrize("rewritten", ["keep", "copy"])
def test_a_rewrite_before_the_run_unlinks_another_name_is_not_excused(
    tmp_path: Path, rewritten: str
) -> None:
    """A duplicate's copy or kept copy has another name in an old session folder, which
    the same worker removes first. After planning, the file is rewritten with its size
    and mtime put back; the session's unlink then moves its ctime again, and the worker
    noted only that last ctime: the rewrite was excused as its own change, and the copy
    replaced by a link to other bytes (or the copy's new bytes dropped). Now a moved
    ctime is excused only when every move since the check was this worker's."""
    content = b"same bytes" * 100
    named = duplicate_named_in_a_session(tmp_path, rewritten)
    keep, copy, plan = named.keep, named.copy, named.plan
    new = b"new bytes!" * 100
    rewrite_in_place(keep if rewritten == "keep" else copy, new)
    result = apply_plan(plan, why=never_busy, jobs=1)
    outcomes = [(o.status, o.detail) for o in result.outcomes]
    which = "the copy to keep changed" if rewritten == "keep" else "changed"
    assert outcomes == [
        (Status.DELETED, None),
        (Status.SKIPPED, f"{which} since planning (ctime: rewritten, chmod, chown or linked)"),
    ]
    assert copy.stat().st_ino != keep.stat().st_ino
    assert copy.read_bytes() == (new if rewritten == "copy" else content)
    assert keep.read_bytes() == (new if rewritten == "keep" else content)


# -- a file planned alone: claimed and probed like each entry of a folder -----------------


def old_file_beside_a_young_one(temp: Path) -> tuple[Path, list[Root], RuleSet]:
    """An old file in a hash folder whose other file is young: a file action of its own."""
    old = write(temp / f"{5:064x}" / "old.bin", b"old bytes" * 10, age=3 * HOUR)
    write(temp / f"{5:064x}" / "young.bin", b"young")
    return old, [Root(str(temp), Role.TEMP, "test")], RuleSet(older_than=HOUR, age_by=AgeBy.MTIME)


# How another process holds a file: open, mapped (its descriptor closed), flocked.
HOLDS = {
    "open": "fh = open(PATH, 'rb')",
    "mapped": "fd = os.open(PATH, os.O_RDONLY); m = mmap.mmap(fd, 0, prot=1); os.close(fd)",
    "flocked": "fh = open(PATH, 'rb'); fcntl.flock(fh, fcntl.LOCK_SH)",
}


@pytest.mark.parametrize("how", sorted(HOLDS))
def test_a_file_action_spares_a_file_held_since_the_last_snapshot(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]], how: str
) -> None:
    """The /proc snapshot is up to 2 s old. A file planned alone (not in a folder that
    goes whole) was unlinked on that snapshot only, with no lease probe: a live app that
    had just opened, mapped or locked it lost it. It is now claimed and probed as a
    folder's entries are."""
    old, roots, rules = old_file_beside_a_young_one(tmp_path / "temp")
    plan = build_plan(roots, rules, now=time.time())
    assert [(a.rel, a.is_dir) for a in plan.actions] == [(f"{5:064x}/old.bin", False)]
    code = HOLDS[how].replace("PATH", repr(str(old)))
    hold(
        holder, f"import fcntl, mmap, os, time\n{code}\nprint('ready', flush=True)\ntime.sleep(60)"
    )
    (outcome,) = apply_plan(plan, why=never_busy, jobs=1).outcomes
    assert (outcome.status, outcome.detail) == (
        Status.SKIPPED,
        "old.bin is open by another process",
    )
    assert old.read_bytes() == b"old bytes" * 10


def test_a_claim_left_at_the_top_of_a_temp_dir_is_a_leftover(tmp_path: Path) -> None:
    """A run killed between a top-level file's claim and its unlink leaves
    `.gradio-clean-<hex>.del` at the top of the temp dir: a leftover, which keeps a
    folder of aborted uploads a temp dir (it made it an app dir, where nothing goes)."""
    folder = tmp_path / "uploads"
    write(folder / "tmpab12cd34", b"x", age=3 * HOUR)
    write(folder / ".gradio-clean-0123456789ab.del", b"y", age=3 * HOUR)
    assert detect_role(str(folder))[0] is Role.TEMP
    assert classify_top(Role.TEMP, ".gradio-clean-0123456789ab.del", False) is Kind.TMP_FILE
    rules = RuleSet(orphaned_sessions=True, age_by=AgeBy.MTIME)
    plan = build_plan([Root(str(folder), Role.TEMP, "test")], rules, now=time.time())
    assert sorted(a.rel for a in plan.actions) == [".gradio-clean-0123456789ab.del", "tmpab12cd34"]


# -- a live app's folder mark taken since the last snapshot ------------------------------

# What attach() does when a page shows a file of a hash folder (live.Marks): the folder
# is opened and flocked shared, and held.
MARK_FOLDER = """
import sys, time
sys.path.insert(0, {repo!r})
from gradio_clean.live import Marks
marks = Marks()
assert marks.take("dir", {path!r}) is not None
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("planned", ["folder", "file"])
def test_a_folder_marked_by_a_live_app_since_the_last_snapshot_is_spared(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]], planned: str
) -> None:
    """A page shows a file of an old hash folder after the run's last /proc snapshot
    (renewed only every 2 s): attach() flocks the folder. The folder (or the old file
    planned alone in it) was removed on the stale snapshot. Apply now takes the folder's
    flock itself, exclusively and without waiting, as systemd-tmpfiles does: a mark
    held makes it fail, and the folder is skipped."""
    temp = tmp_path / "temp"
    if planned == "folder":
        folder = temp / f"{6:064x}"
        write(folder / "image.webp", b"shown", age=3 * HOUR)
        set_age(folder, 3 * HOUR)
        rules = RuleSet(older_than=HOUR, age_by=AgeBy.MTIME)
        roots = [Root(str(temp), Role.TEMP, "test")]
        rel = folder.name
    else:
        old, roots, rules = old_file_beside_a_young_one(temp)
        folder, rel = old.parent, f"{old.parent.name}/{old.name}"
    plan = build_plan(roots, rules, now=time.time())
    assert [a.rel for a in plan.actions] == [rel]
    hold(holder, MARK_FOLDER.format(repo=str(REPO), path=str(folder)))
    (outcome,) = apply_plan(plan, why=never_busy, jobs=1).outcomes
    assert outcome.status is Status.SKIPPED, outcome.detail
    assert outcome.detail is not None and "locked by another process" in outcome.detail
    assert sorted(p.name for p in folder.iterdir()) == (
        ["image.webp"] if planned == "folder" else ["old.bin", "young.bin"]
    )


# -- user data in a folder vouched for as Gradio's temp dir -------------------------------


def test_user_data_in_an_app_folder_vouched_for_as_the_temp_dir_is_never_planned(
    tmp_path: Path,
) -> None:
    """GRADIO_TEMP_DIR set to the app's own folder (its cache beside app.py), or an app
    folder vouched for as the role hint says: it is a temp dir whatever it holds, and
    its `.gradio/flagged`, `flagged/` and cached examples were `other`, deleted by an
    age rule like any file. User data stays user data in every root: only
    `--category flagged` or `examples` reaches it."""
    app = tmp_path / "app"
    user_data = [
        ".gradio/flagged/dataset1.csv",
        ".gradio/cached_examples/12/log.csv",
        "flagged/image/in.png",
        "gradio_cached_examples/3/out.wav",
    ]
    for rel in [*user_data, f"{SHA256_A}/photo.png", "notes.txt"]:
        write(app / rel, b"x", age=3 * DAY)
    args = ["prune", str(app), "--older-than", "1d", "--age-by", "mtime", "--json"]
    dry = run_cli(*args, temp_dir=app)
    assert dry.returncode == 0, dry.stderr
    doc = json.loads(dry.stdout)
    assert doc["roots"][0]["role"] == "temp"
    assert sorted(os.path.relpath(a["path"], app) for a in doc["actions"]) == [
        SHA256_A,
        "notes.txt",  # vouched for: what Gradio does not write still goes
    ]
    done = run_cli(*args, "--apply", "--yes", temp_dir=app)
    assert done.returncode == 0, done.stderr
    assert all((app / rel).exists() for rel in user_data)
    assert not (app / SHA256_A).exists()
    asked = run_cli(*args, "--category", "flagged", "--apply", "--yes", temp_dir=app)
    assert asked.returncode == 0, asked.stderr
    assert not (app / ".gradio/flagged/dataset1.csv").exists()
    assert not (app / "flagged/image/in.png").exists()
    assert (app / ".gradio/cached_examples/12/log.csv").exists()
