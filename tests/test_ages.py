"""A file's age is never older than when it entered the cache (`--age-by newest`).

Gradio copies app files into its cache with shutil.copy2: the copy keeps its source's
mtime, and only its ctime says when it arrived. Tests cannot move a ctime back, so
"old" here is always an mtime, and `newest` must see through it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gradio_clean.cli import app
from gradio_clean.rules import AgeBy, age_ns
from tests.conftest import DAY, HOUR, JS_SESSION, SHA256_A, SHA256_B, set_age, write


def prune_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["prune", "--json", *args])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def copied_in(tmp_path: Path, dest: Path, age: float) -> Path:
    """What Gradio does with an app asset: shutil.copy2 into its cache."""
    source = write(tmp_path / "assets" / dest.name, b"an old asset" * 10, age=age)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, dest)
    assert abs(dest.stat().st_mtime - (time.time() - age)) < 5  # the source's mtime
    return dest


def test_a_fresh_copy_of_an_old_file_is_not_old_by_default(
    runner: CliRunner, tmp_path: Path
) -> None:
    temp = tmp_path / "gradio"
    copy = copied_in(tmp_path, temp / SHA256_A / "logo.png", 30 * DAY)
    set_age(copy.parent, 30 * DAY)
    doc = prune_json(runner, str(temp), "--older-than", "7d")
    assert doc["rules"]["age_by"] == "newest"
    assert doc["actions"] == []
    # mtime alone would have taken the copy Gradio made a moment ago
    doc = prune_json(runner, str(temp), "--older-than", "7d", "--age-by", "mtime")
    assert [a["path"] for a in doc["actions"]] == [str(temp / SHA256_A)]


def test_a_session_of_fresh_copies_is_not_idle_by_newest(runner: CliRunner, tmp_path: Path) -> None:
    """The session's idle time uses the same timestamp as --older-than."""
    app_dir = tmp_path / "app"
    (app_dir / ".gradio").mkdir(parents=True)
    copied_in(tmp_path, app_dir / JS_SESSION / "input.png", 2 * DAY)
    set_age(app_dir / JS_SESSION, 2 * DAY)
    doc = prune_json(runner, str(app_dir), "--orphaned-sessions", "--age-by", "newest")
    assert doc["actions"] == []
    doc = prune_json(runner, str(app_dir), "--orphaned-sessions", "--age-by", "mtime")
    assert [a["path"] for a in doc["actions"]] == [str(app_dir / JS_SESSION)]


def test_newest_leaves_a_folders_atime_out(tmp_path: Path) -> None:
    """Listing a folder (this tool, du, a backup) moves its atime: that is no use."""
    folder = tmp_path / "d"
    inside = write(folder / "f.bin", b"x")
    later = time.time() + 10 * DAY
    for path in (folder, inside):
        os.utime(path, (later, time.time() - DAY))
    st_dir, st_file = os.stat(folder), os.stat(inside)
    assert age_ns(st_dir, AgeBy.NEWEST) == max(st_dir.st_mtime_ns, st_dir.st_ctime_ns)
    assert age_ns(st_file, AgeBy.NEWEST) == st_file.st_atime_ns  # a read of the file counts
    assert age_ns(st_file, AgeBy.MTIME) == st_file.st_mtime_ns


def test_the_age_shown_is_the_one_the_rule_used(runner: CliRunner, tmp_path: Path) -> None:
    """A session planned as older than 1d shows its files' age, not the folder's fresh mtime."""
    app_dir = tmp_path / "app"
    (app_dir / ".gradio").mkdir(parents=True)
    write(app_dir / JS_SESSION / "a.txt", b"a", age=3 * DAY)
    write(app_dir / JS_SESSION / "b.txt", b"b", age=5 * DAY)  # the folder's mtime is now
    temp = tmp_path / "gradio"
    write(temp / SHA256_A / "same.bin", b"same bytes", age=HOUR)
    write(temp / SHA256_B / "same.bin", b"same bytes", age=2 * HOUR)
    args = ["--older-than", "1d", "--age-by", "mtime", "--duplicates"]

    doc = prune_json(runner, str(app_dir), str(temp), *args)
    by_path = {a["path"]: a for a in doc["actions"]}
    session = by_path[str(app_dir / JS_SESSION)]
    assert session["type"] == "folder"
    age_from = time.mktime(time.strptime(session["age_from"], "%Y-%m-%dT%H:%M:%S+00:00"))
    age_from -= time.timezone  # strptime read it as local time
    assert abs(age_from - (time.time() - 3 * DAY)) < 60  # its newest file, by mtime
    assert by_path[str(temp / SHA256_B / "same.bin")]["age_from"] is None  # no age rule

    result = runner.invoke(app, ["prune", str(app_dir), *args])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if JS_SESSION in line)
    assert re.search(r"\b3 days\b", row), row


def test_apply_leaves_a_folder_it_skips_as_old_by_atime(
    runner: CliRunner, tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """Apply looks through a planned folder before removing anything; a file held open
    inside makes it skip the folder. That look must not make the folder (or its
    subfolder) look used to --age-by atime: the next run would see a young session and
    take its old files one by one instead (found by tests/test_truth.py)."""
    app_dir = tmp_path / "app"
    session = app_dir / JS_SESSION
    held = write(session / "sub" / "upload.txt", b"in use", age=2 * HOUR)
    for folder in (session / "sub", session):
        set_age(folder, 2 * HOUR)
    with open(held, "rb") as f:
        holder.append(subprocess.Popen(["sleep", "600"], stdin=f))
    was = [os.stat(p).st_atime_ns for p in (session, session / "sub")]
    rules = ["--orphaned-sessions", "--session-ttl", "1h", "--age-by", "atime"]
    result = runner.invoke(app, ["prune", "--json", str(app_dir), *rules, "--apply", "--yes"])
    doc = json.loads(result.stdout)
    assert [(a["path"], a["status"]) for a in doc["actions"]] == [(str(session), "skipped")]
    assert [os.stat(p).st_atime_ns for p in (session, session / "sub")] == was
    os.listdir(session)  # the mount records atimes: the check above could fail
    if os.stat(session).st_atime_ns == was[0]:
        pytest.skip("this mount does not record atimes (noatime)")
