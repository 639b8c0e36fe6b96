"""The summary lines say what the plan frees, in the same figure wherever it is said."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gradio_clean.classify import Role
from gradio_clean.options import AgeBy
from gradio_clean.preflight import preflight
from gradio_clean.roots import Root
from gradio_clean.rules import RuleSet, build_plan
from gradio_clean.summary import confirm_question, dry_run_summary, size
from tests.conftest import DAY, set_age, write


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
    rules = RuleSet(older_than=30 * DAY, age_by=AgeBy.MTIME)
    plan = build_plan([Root(str(temp), Role.TEMP, "test")], rules, now=time.time(), jobs=1)
    plan = preflight(plan)
    assert len(plan.actions) == 2
    freed = size(plan.to_free[0])
    assert freed == size(200_000)
    assert dry_run_summary(plan)[0] == f"Would free {freed} in 2 files (2 folders)."
    assert confirm_question(plan) == f"Delete 2 entries (frees {freed})?"
