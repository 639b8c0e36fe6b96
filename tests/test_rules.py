"""Each rule on a tree like a real Gradio cache and app dir: exactly the expected entries."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gradio_clean.cli import app
from tests.conftest import (
    HOUR,
    JS_SESSION,
    JS_SESSION_FRESH,
    SHA1_OLD,
    SHA256_A,
    SHA256_B,
    SHA256_DUP,
    SHA256_EMPTY,
    UUID_SESSION,
    GradioTree,
    set_age,
    write,
)


def tree_state(*roots: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under the roots (links not followed): (inode, size, mtime)."""
    state = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = os.path.join(dirpath, name)
                st = os.lstat(p)
                state[p] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return state


def prune(runner: CliRunner, *args: str) -> dict[str, Any]:
    """Ages by mtime unless a test says otherwise: utime cannot move a ctime back."""
    age_by = [] if any(a.startswith("--age-by") for a in args) else ["--age-by", "mtime"]
    result = runner.invoke(app, ["prune", "--json", *age_by, *args])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def planned(doc: dict[str, Any], root: Path) -> set[tuple[str, str, str]]:
    return {(os.path.relpath(a["path"], root), a["rule"], a["type"]) for a in doc["actions"]}


def test_no_rule_is_a_usage_error(runner: CliRunner, gradio_tree: GradioTree) -> None:
    result = runner.invoke(app, ["prune", str(gradio_tree.temp)])
    assert result.exit_code == 2
    assert "--older-than" in result.stderr and "--orphaned-sessions" in result.stderr


def test_bad_duration_is_a_usage_error(runner: CliRunner, gradio_tree: GradioTree) -> None:
    result = runner.invoke(app, ["prune", str(gradio_tree.temp), "--older-than", "3 days"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "1d" in result.stderr  # says what is accepted


OLDER_THAN_1D_TEMP = {
    (f"{SHA256_A}/hard-link.bin", "older-than", "file"),
    (SHA256_B, "older-than", "folder"),
    (SHA1_OLD, "older-than", "folder"),
}
ORPHANED_TEMP = {
    (f"{SHA256_A}/.photo.png.ab12cd34", "orphaned-sessions", "file"),
    ("tmpab12cd34", "orphaned-sessions", "file"),
    ("tmpzz99yy88.mp4", "orphaned-sessions", "file"),
    ("tmpq1w2e3r4", "orphaned-sessions", "folder"),
    (SHA256_EMPTY, "orphaned-sessions", "folder"),
}
ORPHANED_APP = {
    (JS_SESSION, "orphaned-sessions", "folder"),
    (UUID_SESSION, "orphaned-sessions", "folder"),
}


@pytest.mark.parametrize(
    ("args", "root_name", "expected"),
    [
        (["--older-than", "1d"], "temp", OLDER_THAN_1D_TEMP),
        (["--older-than", "1d"], "app", set()),  # app files are old, but never candidates
        (
            ["--older-than", "1h"],
            "app",
            {(JS_SESSION, "older-than", "folder"), (UUID_SESSION, "older-than", "folder")},
        ),
        (["--orphaned-sessions"], "temp", ORPHANED_TEMP),
        (["--orphaned-sessions"], "app", ORPHANED_APP),
        (
            ["--orphaned-sessions", "--session-ttl", "150m"],
            "app",
            {(UUID_SESSION, "orphaned-sessions", "folder")},
        ),
        (
            ["--older-than", "1d", "--category", "flagged"],
            "app",
            {(".gradio/flagged", "older-than", "folder")},
        ),
        (
            ["--older-than", "1d", "--exclude", f"{SHA1_OLD}/"],
            "temp",
            OLDER_THAN_1D_TEMP - {(SHA1_OLD, "older-than", "folder")},
        ),
    ],
)
def test_dry_run_plans_exactly_and_changes_nothing(
    runner: CliRunner,
    gradio_tree: GradioTree,
    args: list[str],
    root_name: str,
    expected: set[tuple[str, str, str]],
) -> None:
    root = getattr(gradio_tree, root_name)
    before = tree_state(gradio_tree.temp, gradio_tree.app, gradio_tree.outside)
    doc = prune(runner, str(root), *args)
    assert doc["dry_run"] is True
    assert planned(doc, root) == expected
    assert {a["status"] for a in doc["actions"]} <= {"planned"}
    assert tree_state(gradio_tree.temp, gradio_tree.app, gradio_tree.outside) == before


def test_duplicates_plan_one_keep_per_set(runner: CliRunner, gradio_tree: GradioTree) -> None:
    doc = prune(runner, str(gradio_tree.temp), "--duplicates")
    photos = {f"{SHA256_A}/photo.png", f"{SHA256_A}/copy of photo.png", f"{SHA256_DUP}/photo.png"}
    extras = {os.path.relpath(a["path"], gradio_tree.temp) for a in doc["actions"]}
    keeps = {os.path.relpath(a["keep"], gradio_tree.temp) for a in doc["actions"]}
    assert len(keeps) == 1 and keeps | extras == photos and not keeps & extras
    assert {a["dedupe"] for a in doc["actions"]} == {"hardlink"}


def test_apply_deletes_exactly_the_plan(runner: CliRunner, gradio_tree: GradioTree) -> None:
    roots = (gradio_tree.temp, gradio_tree.app, gradio_tree.outside)
    before = tree_state(*roots)
    args = [
        str(gradio_tree.temp),
        str(gradio_tree.app),
        "--orphaned-sessions",
        "--older-than",
        "1d",
    ]
    plan = prune(runner, *args)
    doc = prune(runner, *args, "--apply", "--yes")
    assert [a["path"] for a in doc["actions"]] == [a["path"] for a in plan["actions"]]
    assert {a["status"] for a in doc["actions"]} == {"deleted"}
    after = tree_state(*roots)
    gone = set(before) - set(after)
    for path in gone:  # everything that went was planned, or lay inside a planned folder
        assert any(path == a["path"] or path.startswith(a["path"] + "/") for a in doc["actions"]), (
            path
        )
    for a in doc["actions"]:
        assert not os.path.lexists(a["path"])
    assert set(after) <= set(before)  # nothing new, nothing outside touched
    assert str(gradio_tree.app / JS_SESSION_FRESH / "upload.txt") in after
    assert str(gradio_tree.app / ".gradio" / "flagged" / "dataset1.csv") in after
    assert str(gradio_tree.outside / "secret.txt") in after
    assert doc["totals"]["freed_bytes"] > 0


def test_a_claim_a_killed_run_left_is_an_orphaned_leftover(
    runner: CliRunner, gradio_tree: GradioTree
) -> None:
    """A run killed between the claim's rename and its unlink (removal.py) leaves
    `.gradio-clean-<hex>.del` in a folder that may be young: it goes as a leftover,
    on its own, not only with its folder (it used to count as cache, kept for good)."""
    folder = gradio_tree.temp / SHA256_A
    claim = write(folder / ".gradio-clean-0123456789ab.del", b"claimed", age=5 * HOUR)
    doc = prune(runner, str(gradio_tree.temp), "--orphaned-sessions")
    assert planned(doc, gradio_tree.temp) == ORPHANED_TEMP | {
        (f"{SHA256_A}/{claim.name}", "orphaned-sessions", "file")
    }
    scan = json.loads(runner.invoke(app, ["scan", "--json", str(gradio_tree.temp)]).stdout)
    assert scan["roots"][0]["categories"]["leftover"]["files"] == 5  # staging, tmp x2, clip
    prune(runner, str(gradio_tree.temp), "--orphaned-sessions", "--apply", "--yes")
    assert not claim.exists()
    assert (folder / "photo.png").exists()


def test_a_hash_folder_holding_only_a_claim_is_an_empty_hash_folder(
    runner: CliRunner, tmp_path: Path
) -> None:
    """A run killed while removing a hash folder can leave its last file claimed
    (`.gradio-clean-<hex>.del`) and nothing else. What Gradio wrote there is gone: the
    folder is an empty hash folder, a leftover as the README's categories say, and is
    planned as one (it used to go whole as `cache`, which it no longer held)."""
    temp = tmp_path / "temp"
    folder = temp / ("f" * 63 + "6")
    write(folder / ".gradio-clean-0123456789ab.del", b"claimed", age=5 * HOUR)
    set_age(folder, 5 * HOUR)
    write(temp / SHA256_A / "photo.png", b"p", age=5 * HOUR)  # cache beside it
    scan = json.loads(runner.invoke(app, ["scan", "--json", str(temp)]).stdout)
    categories = scan["roots"][0]["categories"]
    assert (categories["leftover"]["files"], categories["leftover"]["dirs"]) == (1, 1)
    assert (categories["cache"]["files"], categories["cache"]["dirs"]) == (1, 1)

    def rows(*rule: str) -> dict[str, tuple[str, str, str]]:
        doc = prune(runner, str(temp), *rule)
        return {
            os.path.relpath(a["path"], temp): (a["type"], a["category"], a["reason"])
            for a in doc["actions"]
        }

    assert rows("--orphaned-sessions") == {
        folder.name: ("folder", "leftover", "empty hash folder, untouched for longer than 1h")
    }
    assert rows("--older-than", "1h") == {
        folder.name: ("folder", "leftover", "mtime older than 1h"),
        SHA256_A: ("folder", "cache", "mtime older than 1h"),
    }
    prune(runner, str(temp), "--orphaned-sessions", "--apply", "--yes")
    assert not folder.exists() and (temp / SHA256_A / "photo.png").exists()


def test_hardlink_dedupe_keeps_every_path(runner: CliRunner, gradio_tree: GradioTree) -> None:
    doc = prune(runner, str(gradio_tree.temp), "--duplicates", "--apply")
    paths = [
        gradio_tree.temp / SHA256_A / "photo.png",
        gradio_tree.temp / SHA256_A / "copy of photo.png",
        gradio_tree.temp / SHA256_DUP / "photo.png",
    ]
    assert len({p.stat().st_ino for p in paths}) == 1
    assert len({p.read_bytes() for p in paths}) == 1
    assert doc["totals"]["freed_bytes"] == 2 * paths[0].stat().st_size
    assert not [
        p for p in (gradio_tree.temp / SHA256_A).iterdir() if p.name.startswith(".gradio-clean-")
    ]


def test_gradiocleanignore_keeps_a_session_shaped_app_folder(
    runner: CliRunner, gradio_tree: GradioTree
) -> None:
    """`resnet50v2` has a browser hash's shape; the app's ignore file protects it."""
    model = gradio_tree.app / "resnet50v2"
    (model).mkdir()
    (model / "weights.bin").write_bytes(b"w" * 100)
    old = 5 * 3600
    for p in (model / "weights.bin", model):
        os.utime(p, (os.path.getmtime(p) - old,) * 2)
    args = [str(gradio_tree.app), "--orphaned-sessions"]
    assert ("resnet50v2", "orphaned-sessions", "folder") in planned(
        prune(runner, *args), gradio_tree.app
    )
    (gradio_tree.app / ".gradiocleanignore").write_text("# the model, not a session\nresnet50v2/\n")
    doc = prune(runner, *args, "--apply", "--yes")
    assert planned(doc, gradio_tree.app) == ORPHANED_APP
    assert (model / "weights.bin").read_bytes() == b"w" * 100
    assert (gradio_tree.app / ".gradiocleanignore").exists()


def test_workers_plan_exactly_what_one_process_plans(gradio_tree: GradioTree) -> None:
    """Planner hooks run in forked workers too; their actions come back unchanged."""
    from gradio_clean.classify import Role
    from gradio_clean.roots import Root
    from gradio_clean.rules import AgeBy, RuleSet, build_plan

    for i in range(40):  # enough root entries to share, some old, some duplicated
        write_old = gradio_tree.temp / f"{i:064x}" / "f.bin"
        write_old.parent.mkdir()
        write_old.write_bytes(b"same" if i % 3 else os.urandom(64))
        if i % 2:
            os.utime(write_old, (1e9, 1e9))
    roots = [Root(str(gradio_tree.temp), Role.TEMP, "t"), Root(str(gradio_tree.app), Role.APP, "t")]
    rules = RuleSet(older_than=86400, age_by=AgeBy.MTIME, duplicates=True, orphaned_sessions=True)
    now = time.time()
    serial = build_plan(roots, rules, now=now, jobs=1)
    for jobs in (2, 3):
        parallel = build_plan(roots, rules, now=now, jobs=jobs)
        assert parallel.actions == serial.actions
        assert parallel.scan.roots == serial.scan.roots
    assert {a.rule.value for a in serial.actions} == {
        "older-than",
        "duplicates",
        "orphaned-sessions",
    }
