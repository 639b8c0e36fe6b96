"""Attacks on `prune --apply`: a live app or another user changes what was planned, in
the ways the fast paths of removal.py and delete.py might miss. Each test is one
attack; the fixes they found are named in each docstring."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Role
from gradio_clean.plan import Status
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from tests.conftest import HOUR, JS_SESSION, set_age, write


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
    temp, app = tmp_path / "temp", tmp_path / "app"
    content = b"same bytes" * 100
    keep = write(temp / f"{1:064x}" / "keep.bin", content)
    copy = write(temp / f"{2:064x}" / "copy.bin", content, age=3 * HOUR)
    session = app / JS_SESSION
    os.makedirs(session)
    os.link(keep if rewritten == "keep" else copy, session / "upload.bin")
    set_age(session / "upload.bin", 3 * HOUR)
    set_age(session, 3 * HOUR)
    plan = build_plan(
        [Root(str(app), Role.APP, "test"), Root(str(temp), Role.TEMP, "test")],
        RuleSet(duplicates=True, orphaned_sessions=True, age_by=AgeBy.MTIME),
        now=time.time(),
    )
    assert [(a.root, a.rel, a.keep) for a in plan.actions] == [
        (str(app), JS_SESSION, None),
        (str(temp), f"{2:064x}/copy.bin", str(keep)),
    ]
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
