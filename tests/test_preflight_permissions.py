"""The dry run forecasts what its folder will not give up: a root or folder the run may
not write, a sticky folder's entry of another user, an immutable or append-only folder.
Each case is a real run (without root: as nobody); the dry run's skips are apply's
refusals, worded alike, and nothing refused is gone afterwards.

A whole folder apply skips; a file it fails (apply only learns at the unlink, and
test_delete pins that status): the dry run says either as a skip, with apply's words.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import gradio_clean.apply  # noqa: F401 - loaded before a test drops root: its imports too
from tests.conftest import DAY, HOUR, NOBODY, invoke_unprivileged, run_cli, set_age, write

OLD = 3 * DAY
WHOLE = "a" * 63 + "1"  # a hash folder planned whole: every file in it is old
SPLIT = "b" * 63 + "2"  # a hash folder whose old file is planned alone: it holds a fresh one
OWN = "c" * 63 + "3"  # the run's own, planned alone: it goes
LOOSE = "tmpab12cd34"  # a loose file of the root
ARGS = ["--older-than", "1d", "--age-by", "mtime", "--json"]
NO_WRITE = "cannot be removed: no permission to remove it from its parent folder"
FROZEN = "cannot be removed: its parent folder is immutable or append-only"
STICKY = "cannot be removed: it belongs to another user, in a sticky folder"


def _tree(temp: Path, owner: int) -> None:
    """WHOLE, SPLIT and LOOSE, each entry `owner`'s; OWN, whatever it holds, nobody's."""
    write(temp / WHOLE / "old.bin", b"w" * 10, age=OLD)
    write(temp / SPLIT / "old.bin", b"s" * 20, age=OLD)
    write(temp / SPLIT / "fresh.bin", b"f")
    write(temp / LOOSE, b"l" * 30, age=OLD)
    write(temp / OWN / "old.bin", b"o" * 40, age=OLD)
    write(temp / OWN / "fresh.bin", b"g")
    set_age(temp / WHOLE, OLD)
    for path in temp.rglob("*"):
        os.chown(path, owner, owner)
    for path in (temp / OWN, *(temp / OWN).iterdir()):
        os.chown(path, NOBODY, NOBODY)


def _as_nobody(temp: Path, *extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The dry run's JSON and apply's, each run as nobody."""
    dry = ["prune", str(temp), *ARGS, *extra]
    planned = invoke_unprivileged(dry)
    applied = invoke_unprivileged([*dry, "--apply", "--yes"], warm_up=dry)
    for run in (planned, applied):
        assert run.crash is None, run.crash
    return json.loads(planned.stdout), json.loads(applied.stdout)


def _as_root(temp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    dry = run_cli("prune", str(temp), *ARGS, temp_dir=temp)
    applied = run_cli("prune", str(temp), *ARGS, "--apply", "--yes", temp_dir=temp)
    return json.loads(dry.stdout), json.loads(applied.stdout)


def _states(doc: dict[str, Any], temp: Path) -> dict[str, tuple[str, str | None]]:
    return {os.path.relpath(a["path"], temp): (a["status"], a["detail"]) for a in doc["actions"]}


def _check(
    temp: Path, dry: dict[str, Any], applied: dict[str, Any], refused: dict[str, str]
) -> None:
    """The dry run skips exactly the `refused` entries (rel -> why), apply refuses them
    with the same words (a whole folder skipped, a file failed) and removes the rest;
    what the dry run would free is what apply freed; every refused entry is still there."""
    expected: dict[str, tuple[str, str | None]] = {r: ("skipped", w) for r, w in refused.items()}
    expected[f"{OWN}/old.bin"] = ("planned", None)
    assert _states(dry, temp) == expected
    done: dict[str, tuple[str, str | None]] = {
        rel: ("skipped" if rel.startswith(WHOLE) else "failed", why) for rel, why in refused.items()
    }
    done[f"{OWN}/old.bin"] = ("deleted", None)
    assert _states(applied, temp) == done
    would, totals = dry["totals"]["would_free"], applied["totals"]
    assert dry["totals"]["skipped"] == len(refused)
    assert (would["bytes"], would["files"], would["folders"]) == (40, 1, 0)
    assert (totals["freed_bytes"], totals["freed_files"]) == (40, 1)
    assert all((temp / rel).exists() for rel in refused)
    assert not (temp / OWN / "old.bin").exists()


def test_a_root_the_run_may_not_write_gives_up_nothing(world_dir: Path) -> None:
    """root's 0755 root, nobody's entries in it: neither a whole folder nor a loose file
    may leave it; SPLIT is root's 0755 folder, so its old file may not leave either."""
    temp = world_dir / "gradio"
    _tree(temp, NOBODY)
    os.chown(temp / SPLIT, 0, 0)
    dry, applied = _as_nobody(temp)
    refused = {WHOLE: NO_WRITE, f"{SPLIT}/old.bin": NO_WRITE, LOOSE: NO_WRITE}
    _check(temp, dry, applied, refused)


def test_a_folder_the_run_may_not_empty_is_forecast(world_dir: Path) -> None:
    """nobody's root, but WHOLE is root's 0755 folder: it may not be emptied."""
    temp = world_dir / "gradio"
    _tree(temp, NOBODY)
    os.chown(temp, NOBODY, NOBODY)
    os.chown(temp / WHOLE, 0, 0)
    dry, applied = _as_nobody(temp)
    why = f"cannot be removed whole: no permission to empty {WHOLE}"
    assert _states(dry, temp)[WHOLE] == _states(applied, temp)[WHOLE] == ("skipped", why)
    assert [a["status"] for a in dry["actions"]].count("planned") == 3
    assert [a["status"] for a in applied["actions"]].count("deleted") == 3
    assert (temp / WHOLE / "old.bin").exists()
    assert dry["totals"]["would_free"]["bytes"] == applied["totals"]["freed_bytes"] == 90


def test_a_sticky_root_keeps_another_users_entries(world_dir: Path) -> None:
    """root's 1777 root: WHOLE, SPLIT's file and LOOSE are daemon's (uid 1), each open to
    all; only their owner, the root's owner or root may take them from it."""
    temp = world_dir / "gradio"
    _tree(temp, 1)
    temp.chmod(0o1777)
    for path in temp.rglob("*"):
        path.chmod(0o777 if path.is_dir() else 0o666)
    dry, applied = _as_nobody(temp)
    refused = {
        WHOLE: f"cannot be removed whole: {WHOLE} belongs to another user",
        LOOSE: STICKY,
    }
    # SPLIT is not sticky: its file goes, though daemon's
    expected = {f"{SPLIT}/old.bin": ("planned", None), f"{OWN}/old.bin": ("planned", None)}
    assert _states(dry, temp) == {**{r: ("skipped", w) for r, w in refused.items()}, **expected}
    assert _states(applied, temp) == {
        WHOLE: ("skipped", refused[WHOLE]),
        LOOSE: ("failed", STICKY),
        f"{SPLIT}/old.bin": ("deleted", None),
        f"{OWN}/old.bin": ("deleted", None),
    }
    assert dry["totals"]["would_free"]["bytes"] == applied["totals"]["freed_bytes"] == 60
    assert (temp / WHOLE / "old.bin").exists() and (temp / LOOSE).exists()


def _flag(immutable: list[Path], flag: str, path: Path) -> None:
    made = subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"this filesystem has no such flag: {made.stderr!r}")
    immutable.append(path)


def test_an_immutable_or_append_only_folder_gives_up_nothing_even_to_root(
    tmp_path: Path, immutable: list[Path]
) -> None:
    """As root: an append-only root keeps WHOLE and LOOSE, an immutable SPLIT its file."""
    temp = tmp_path / "gradio"
    _tree(temp, 0)
    _flag(immutable, "+i", temp / SPLIT)
    _flag(immutable, "+a", temp)
    dry, applied = _as_root(temp)
    refused = {WHOLE: FROZEN, f"{SPLIT}/old.bin": FROZEN, LOOSE: FROZEN}
    _check(temp, dry, applied, refused)


def test_the_budget_passes_over_a_unit_it_may_not_remove(world_dir: Path) -> None:
    """--max-size as nobody in a sticky root: the oldest unit is daemon's, so it is not
    counted as freed; the next goes instead, and apply frees what the dry run said."""
    temp = world_dir / "gradio"
    theirs, mine = temp / WHOLE, temp / OWN
    write(theirs / "file.bin", b"t" * 8192, age=3 * HOUR)
    write(mine / "file.bin", b"m" * 8192, age=2 * HOUR)
    for folder, owner, age in ((theirs, 1, 3 * HOUR), (mine, NOBODY, 2 * HOUR)):
        set_age(folder, age)
        for path in (folder, *folder.iterdir()):
            os.chown(path, owner, owner)
            path.chmod(0o777 if path.is_dir() else 0o666)
    temp.chmod(0o1777)
    args = ["--age-by", "mtime", "--max-size", "16K", "--json"]
    dry = invoke_unprivileged(["prune", str(temp), *args])
    applied = invoke_unprivileged(
        ["prune", str(temp), *args, "--apply", "--yes"], warm_up=["prune", str(temp), *args]
    )
    planned, done = json.loads(dry.stdout), json.loads(applied.stdout)
    assert [(a["path"], a["status"]) for a in planned["actions"]] == [(str(mine), "planned")]
    assert [(a["path"], a["status"]) for a in done["actions"]] == [(str(mine), "deleted")]
    assert planned["totals"]["would_free"]["bytes"] == done["totals"]["freed_bytes"] == 8192
    assert (theirs / "file.bin").exists() and not mine.exists()
