"""A root's .gradiocleanignore, which another user may have planted (issues 13 and 14)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gradio_clean.classify import Role
from gradio_clean.cli import app
from gradio_clean.ignore import MAX_IGNORE_BYTES
from gradio_clean.patterns import MAX_PATTERNS
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from tests.conftest import DAY, NOBODY, invoke_unprivileged, write

NAMES = [f"{i:064x}" for i in range(1, 7)]  # sha256-shaped hash folders
OWNER_PROBLEM = (
    "ignored: owned by uid {uid}; only root, the user running gradio-clean "
    "(uid {euid}) or the root folder's owner (uid {owner}) are trusted"
)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


def cache_root(base: Path) -> Path:
    """A Gradio temp dir of six old hash folders, one file each."""
    root = base / "gradio"
    for name in NAMES:
        write(root / name / "upload.bin", name.encode(), age=3 * DAY)
    return root


def plant(root: Path, text: str | bytes, *, mode: int = 0o644) -> Path:
    path = root / ".gradiocleanignore"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    path.chmod(mode)
    return path


def prune(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["prune", "--json", "--older-than", "1d", "--age-by", "mtime", *args]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def planned(doc: dict[str, Any]) -> set[str]:
    return {os.path.basename(a["path"]) for a in doc["actions"]}


def warnings(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(os.path.basename(w["path"]), w["message"]) for w in doc["warnings"]]


# -- it may only add excludes -------------------------------------------------------------


def test_a_negation_in_the_ignore_file_cannot_undo_the_operators_exclude(tmp_path: Path) -> None:
    """Issue 14: `!<hash>/` in the ignore file overrode --exclude, and the folder was deleted."""
    root = cache_root(tmp_path)
    protected = NAMES[0]
    plant(root, f"!{protected}/\n!{protected}/upload.bin\n!*\n")
    doc = prune(str(root), "--exclude", f"{protected}/", "--apply", "--yes")
    assert protected not in planned(doc)
    assert (root / protected / "upload.bin").read_bytes() == protected.encode()
    assert planned(doc) == set(NAMES[1:])
    assert doc["roots"][0]["excluded"] == {"exclude": 1, "ignore_file": 0}
    # the same through the config's `exclude`
    config = tmp_path / "config.toml"
    config.write_text(f'exclude = ["{NAMES[1]}/"]\n')
    doc = prune(str(root), "--config", str(config))
    assert NAMES[1] not in planned(doc)


def test_a_negation_takes_back_only_the_ignore_files_own_lines(tmp_path: Path) -> None:
    root = cache_root(tmp_path)
    plant(root, f"# keep all but one\n*\n!{NAMES[2]}/**\n")
    doc = prune(str(root))
    assert planned(doc) == {NAMES[2]}
    assert doc["roots"][0]["excluded"] == {"exclude": 0, "ignore_file": 5}
    assert doc["roots"][0]["ignore_file"] == {
        "path": str(root / ".gradiocleanignore"),
        "used": True,
        "patterns": 2,
        "problem": None,
    }


# -- who may have written it --------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_file_others_could_write_is_ignored_with_one_warning(tmp_path: Path, mode: int) -> None:
    root = cache_root(tmp_path)
    plant(root, "*\n", mode=mode)
    doc = prune(str(root))
    assert planned(doc) == set(NAMES)  # the `*` blinded nothing
    problem = f"ignored: writable by group or others (mode {mode:04o})"
    assert warnings(doc) == [(".gradiocleanignore", problem)]
    assert doc["roots"][0]["ignore_file"]["used"] is False
    assert doc["roots"][0]["excluded"] == {"exclude": 0, "ignore_file": 0}


@needs_root
def test_another_users_file_is_ignored_and_the_root_owners_is_honoured(tmp_path: Path) -> None:
    """Issue 13: an attacker's `*` silently blinded every rule of a root-run prune."""
    root = cache_root(tmp_path)
    root.chmod(0o1777)  # a shared /tmp/gradio: root's, every user may write
    os.chown(plant(root, "*\n"), NOBODY, NOBODY)
    doc = prune(str(root))
    assert planned(doc) == set(NAMES)
    problem = OWNER_PROBLEM.format(uid=NOBODY, euid=0, owner=0)
    assert warnings(doc) == [(".gradiocleanignore", problem)]
    # the same file, in a root that user owns: theirs to decide
    os.chown(root, NOBODY, NOBODY)
    doc = prune(str(root))
    assert planned(doc) == set()
    assert warnings(doc) == []
    assert doc["roots"][0]["excluded"] == {"exclude": 0, "ignore_file": 6}


@needs_root
def test_another_users_hard_link_to_a_root_file_is_ignored(tmp_path: Path) -> None:
    root = cache_root(tmp_path)
    outside = write(tmp_path / "elsewhere.txt", b"*\n")
    os.link(outside, root / ".gradiocleanignore")
    doc = prune(str(root))
    assert planned(doc) == set(NAMES)
    assert warnings(doc) == [(".gradiocleanignore", "ignored: has 2 hard links")]


def test_what_is_not_a_regular_file_is_a_warning_never_a_traceback_or_a_hang(
    tmp_path: Path,
) -> None:
    """Issue 13: a socket named .gradiocleanignore gave `OSError: [Errno 6]`."""
    root = cache_root(tmp_path)
    ignore = root / ".gradiocleanignore"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(ignore))
        doc = prune(str(root))
    finally:
        server.close()
    assert planned(doc) == set(NAMES)
    assert warnings(doc) == [(".gradiocleanignore", "ignored: not a regular file (a socket)")]
    ignore.unlink()
    os.mkfifo(ignore)
    assert warnings(prune(str(root))) == [
        (".gradiocleanignore", "ignored: not a regular file (a FIFO)")
    ]
    ignore.unlink()
    ignore.symlink_to(write(tmp_path / "patterns.txt", b"*\n"))
    doc = prune(str(root))
    assert planned(doc) == set(NAMES)
    assert warnings(doc) == [(".gradiocleanignore", "ignored: not a regular file (a symlink)")]


def test_an_unreadable_file_is_a_warning(world_dir: Path) -> None:
    """Issue 13: as a non-root run, an unreadable ignore file gave a PermissionError."""
    root = cache_root(world_dir)
    plant(root, "*\n", mode=0)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(root)], check=True)
        (root / ".gradiocleanignore").chmod(0)
    args = ["prune", "--json", "--older-than", "1d", "--age-by", "mtime", str(root)]
    result = invoke_unprivileged(args)
    assert result.crash is None, result.crash
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert planned(doc) == set(NAMES)
    assert warnings(doc) == [(".gradiocleanignore", "ignored: cannot read it: permission denied")]


# -- what it may hold ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"ok/\n\\\n", "ignored: line 2: a backslash at the end of a segment escapes nothing"),
        (b"ok/\n[z-a]\n", "ignored: line 2: a reversed range z-a"),
        (b"ok/\n*\n\xff\xfe\n", "ignored: line 3: not UTF-8"),
        (b"*\0\n", "ignored: not a text file (it holds NUL bytes)"),
        (b"\0" * (1 << 20), f"ignored: larger than {MAX_IGNORE_BYTES // 1024} KiB"),
        (
            b"a\n" * (MAX_PATTERNS + 1),
            f"ignored: line {MAX_PATTERNS + 1}: more than 1,000 patterns",
        ),
        (b"*" * 1025 + b"\n", "ignored: line 1: longer than 1,024 characters"),
    ],
    ids=["backslash", "range", "not-utf8", "nul", "1MiB-of-NUL", "too-many", "too-long"],
)
def test_a_bad_file_is_skipped_whole_with_a_warning(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    root = cache_root(tmp_path)
    plant(root, content)
    started = time.monotonic()
    doc = prune(str(root))
    assert time.monotonic() - started < 10  # a 1 MiB file of NULs took 55-85 s
    assert planned(doc) == set(NAMES)  # none of its lines applies, not even the good ones
    assert warnings(doc) == [(".gradiocleanignore", problem)]


def test_the_issues_pathological_pattern_against_long_names_is_quick(tmp_path: Path) -> None:
    """Issue 14: `*a*a*…*X` (25 `*a`) against one 120-character name never finished."""
    root = cache_root(tmp_path)
    for length in (120, 200, 255):
        write(root / NAMES[0] / ("a" * length), b"x", age=3 * DAY)
    plant(root, "*a" * 25 + "*X\n" + "**/a*a*a*a*a*a*a*a*/**/a*a*a*a*X\n")
    started = time.perf_counter()
    plan = build_plan(
        [Root(str(root), Role.TEMP, "test")],
        RuleSet(age_by=AgeBy.MTIME, older_than=DAY),
        now=time.time(),
        jobs=1,
    )
    assert time.perf_counter() - started < 1.0
    assert {os.path.basename(a.rel) for a in plan.actions} == set(NAMES)


# -- it shows -----------------------------------------------------------------------------


def test_a_blinding_file_shows_in_prune_and_scan(tmp_path: Path) -> None:
    root = cache_root(tmp_path)
    plant(root, "# nothing goes\n*\n")
    runner = CliRunner()
    result = runner.invoke(app, ["prune", "--older-than", "1d", "--age-by", "mtime", str(root)])
    assert result.exit_code == 0, result.output
    assert f"{root}/.gradiocleanignore (1 pattern) excluded 6 files" in result.stdout
    result = runner.invoke(
        app, ["prune", "--older-than", "1d", "--age-by", "mtime", "--exclude", NAMES[0], str(root)]
    )
    assert f"--exclude/exclude patterns excluded 1 files in {root}" in result.stdout
    assert f"{root}/.gradiocleanignore (1 pattern) excluded 5 files" in result.stdout
    result = runner.invoke(app, ["scan", str(root)])
    assert result.exit_code == 0, result.output
    assert f"{root}/.gradiocleanignore: 1 pattern, excluding 6 top-level entries" in result.stderr
    result = runner.invoke(app, ["scan", "--json", str(root)])
    assert json.loads(result.stdout)["roots"][0]["ignore_file"] == {
        "path": str(root / ".gradiocleanignore"),
        "used": True,
        "patterns": 1,
        "problem": None,
        "top_level_excluded": 6,
    }
    (root / ".gradiocleanignore").chmod(0o666)
    result = runner.invoke(app, ["scan", "--json", str(root)])
    doc = json.loads(result.stdout)
    assert doc["roots"][0]["ignore_file"]["used"] is False
    assert warnings(doc) == [
        (".gradiocleanignore", "ignored: writable by group or others (mode 0666)")
    ]
    result = runner.invoke(app, ["scan", str(root)])
    assert result.exit_code == 0, result.output
    assert "excluding" not in result.stderr
    assert (
        f"warning: {root}/.gradiocleanignore: ignored: writable by group or others (mode 0666)"
        in result.stderr
    )


def test_forked_workers_count_what_the_excludes_kept_out(tmp_path: Path) -> None:
    root = tmp_path / "gradio"
    for i in range(60):
        write(root / f"{i:064x}" / ("keep.png" if i % 3 else "x.bin"), b"d", age=3 * DAY)
    plant(root, "*.png\n")
    rules = RuleSet(age_by=AgeBy.MTIME, older_than=DAY, exclude=("*0/",))
    plans = [
        build_plan([Root(str(root), Role.TEMP, "test")], rules, now=time.time(), jobs=jobs)
        for jobs in (1, 4)
    ]
    counts = [(p.scopes[0].excluded, p.scopes[0].ignored) for p in plans]
    assert counts[0] == counts[1] == (4, 38)  # hex names: 4 end in 0
    assert len(plans[0].actions) == len(plans[1].actions) == 18


# -- bad patterns on the command line and in the config -----------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--exclude", "\\"],
            "--exclude '\\': not a gitignore-style pattern "
            "(a backslash at the end of a segment escapes nothing)",
        ),
        (
            ["--include", "[b-a]"],
            "--include '[b-a]': not a gitignore-style pattern (a reversed range b-a)",
        ),
        (["--exclude", "!"], "--exclude '!': not a gitignore-style pattern (matches nothing)"),
    ],
)
def test_a_bad_pattern_on_the_command_line_is_a_one_line_usage_error(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """Issue 13: `--exclude '\\'` gave a GitIgnorePatternError traceback."""
    root = cache_root(tmp_path)
    for command in (
        ["prune", "--older-than", "1d", "--age-by", "mtime"],
        ["schedule", "--older-than", "1d", "--age-by", "mtime"],
    ):
        result = CliRunner().invoke(app, [*command, *args, str(root)])
        assert result.exit_code == 2, result.output
        assert result.stderr == f"gradio-clean: error: {message}\n"
