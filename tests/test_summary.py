"""The summary lines say what the plan frees, in the same figure wherever it is said."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from gradio_clean.classify import Role
from gradio_clean.options import AgeBy
from gradio_clean.plan import Plan
from gradio_clean.preflight import preflight
from gradio_clean.roots import Root
from gradio_clean.rules import RuleSet, build_plan
from gradio_clean.summary import confirm_question, dry_run_summary, size
from tests.conftest import DAY, hold_flock, set_age, write


def older_than_30_days(temp: Path) -> Plan:
    """The plan of `prune TEMP --older-than 30d --age-by mtime`, with its forecast."""
    rules = RuleSet(older_than=30 * DAY, age_by=AgeBy.MTIME)
    return preflight(
        build_plan([Root(str(temp), Role.TEMP, "test")], rules, now=time.time(), jobs=1)
    )


def test_the_confirmation_asks_about_the_bytes_the_dry_run_says_are_freed(
    tmp_path: Path,
) -> None:
    """Two hash folders share one inode (an earlier --duplicates run linked them):
    deleting both frees it once. Before, the question summed the entries' sizes and
    asked about twice what the dry run and apply then said was freed."""
    temp = tmp_path / "temp"
    a = write(temp / ("a" * 64) / "photo.png", os.urandom(200_000), age=40 * DAY)
    (temp / ("b" * 64)).mkdir()
    os.link(a, temp / ("b" * 64) / "photo.png")
    for folder in (a.parent, temp / ("b" * 64)):
        set_age(folder, 40 * DAY)
    plan = older_than_30_days(temp)
    assert len(plan.actions) == 2
    freed = size(plan.to_free[0])
    assert freed == size(200_000)
    assert dry_run_summary(plan)[0] == f"Would free {freed} in 2 files (2 folders)."
    assert confirm_question(plan) == f"Delete 2 entries (frees {freed})?"


def test_the_confirmation_says_how_many_entries_apply_is_expected_to_skip(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """A folder some process holds a file in is planned, and the forecast expects apply
    to spare it: the question counts it among the entries, says so, and leaves its
    bytes out, as the dry run's "Would free" line does."""
    temp = tmp_path / "temp"
    for name, data in (("a", b"a" * 50_000), ("b", b"b" * 70_000)):
        write(temp / (name * 64) / "photo.png", data, age=40 * DAY)
        set_age(temp / (name * 64), 40 * DAY)
    hold_flock(holder, temp / ("b" * 64) / "photo.png")
    plan = older_than_30_days(temp)
    assert len(plan.skips) == 1
    freed = size(plan.to_free[0])
    assert freed == size(50_000)
    assert dry_run_summary(plan)[0].startswith(f"Would free {freed} in 1 file (1 folder); ")
    assert confirm_question(plan) == f"Delete 2 entries, 1 expected to be skipped (frees {freed})?"
