"""The command line end to end: CliRunner on real trees, real files, exact JSON.

Nothing of ours is replaced: config files are real files in the places they are
searched, files in use are held open by real processes, a busy root is locked by
another process, and scheduled command lines are parsed back and run.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from gradio_clean import __version__
from gradio_clean.cli import app
from gradio_clean.config import SYSTEM_CONFIG
from gradio_clean.errors import ExitCode
from tests.conftest import (
    DAY,
    HOUR,
    JS_SESSION,
    SHA1_OLD,
    SHA256_A,
    SHA256_B,
    SHA256_DUP,
    SHA256_EMPTY,
    UUID_SESSION,
    GradioTree,
    cli_env,
    hold,
    hold_lock,
    run_cli,
    set_age,
    write,
)
from tests.helpers import Exposition, only, parse_exposition, systemd_split, unit_settings

LAST_SUCCESS = "gradio_clean_last_success_timestamp_seconds"
RULE_DEFAULTS: dict[str, object] = {
    "roots": None,
    "sessions_dirs": None,
    "older_than": None,
    "duplicates": False,
    "orphaned_sessions": False,
    "max_size": None,
    "min_free": None,
    "age_by": "newest",
    "session_ttl": "1h",
    "min_age": "10m",
    "dedupe": "hardlink",
    "keep": "newest",
    "verify": False,
    "include": [],
    "exclude": [],
    "categories": None,
}


def run(runner: CliRunner, *args: str) -> Result:
    """Tests age files with utime, which cannot move a ctime back: prune ages by mtime
    here unless a test says otherwise."""
    if args[:1] == ("prune",) and not any(a.startswith("--age-by") for a in args):
        args = ("prune", "--age-by", "mtime", *args[1:])
    return runner.invoke(app, list(args))


def run_json(runner: CliRunner, *args: str, code: int = 0) -> dict[str, Any]:
    result = run(runner, *args, "--json")
    assert result.exit_code == code, (result.stdout, result.stderr)
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def one_line_error(result: Result, code: ExitCode) -> str:
    """The failure every command promises: one line on stderr, the code, no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("gradio-clean: error: ")
    return result.stderr.removeprefix("gradio-clean: error: ").rstrip("\n")


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def aged_tree(root: Path, days: list[float]) -> dict[float, Path]:
    """One hash folder per age, holding one file that age: which age a rule reaches shows."""
    folders = {}
    for i, age in enumerate(days, 1):
        folder = root / (f"{i:x}" * 64)
        write(folder / "upload.bin", b"x" * (100 * i), age=age * DAY)
        set_age(folder, age * DAY)
        folders[age] = folder
    return folders


def planned(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a["path"], a["rule"], a["status"]) for a in doc["actions"]]


# -- config ---------------------------------------------------------------------------

AGES = [1.5, 2.5, 3.5, 4.5]


@pytest.fixture
def temp(tmp_path: Path) -> Path:
    path = tmp_path / "gradio"
    path.mkdir()
    return path


def config_text(root: Path, older_than: str) -> str:
    return f'roots = ["{root}"]\nolder_than = "{older_than}"\n'


def places(tmp_path: Path) -> dict[str, Path]:
    """Where each search level looks, in search order (the autouse fixture set the env)."""
    return {
        "--config": tmp_path / "named" / "by-flag.toml",
        "GRADIO_CLEAN_CONFIG": tmp_path / "named" / "by-env.toml",
        "./gradio-clean.toml": tmp_path / "gradio-clean.toml",
        "XDG_CONFIG_HOME": tmp_path / "xdg" / "gradio-clean" / "config.toml",
    }


def prune_args(level: str, path: Path) -> list[str]:
    return ["prune", "--config", str(path)] if level == "--config" else ["prune"]


@pytest.mark.parametrize("level", list(places(Path("/"))))
def test_prune_without_rule_flags_runs_the_rules_of_the_config_found(
    runner: CliRunner, tmp_path: Path, temp: Path, monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    folders = aged_tree(temp, AGES)
    path = places(tmp_path)[level]
    write(path, config_text(temp, "3d").encode())
    if level == "GRADIO_CLEAN_CONFIG":
        monkeypatch.setenv("GRADIO_CLEAN_CONFIG", str(path))

    doc = run_json(runner, *prune_args(level, path))

    assert doc["rules"]["older_than"] == "3d"
    assert doc["rules"]["roots"] == [str(temp)]
    assert doc["rules"]["config_file"] == str(path)
    assert doc["rules"]["sources"]["older_than"] == str(path)
    assert doc["rules"]["sources"]["roots"] == str(path)
    assert planned(doc) == [(str(folders[age]), "older-than", "planned") for age in AGES if age > 3]


def test_the_first_config_found_wins(
    runner: CliRunner, tmp_path: Path, temp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = aged_tree(temp, AGES)
    levels = places(tmp_path)
    for n, path in enumerate(levels.values(), 1):  # --config says 1d, the env 2d, …
        write(path, config_text(temp, f"{n}d").encode())
    monkeypatch.setenv("GRADIO_CLEAN_CONFIG", str(levels["GRADIO_CLEAN_CONFIG"]))

    seen = []
    for n, (level, path) in enumerate(levels.items(), 1):
        doc = run_json(runner, *prune_args(level, levels["--config"]))
        assert doc["rules"]["config_file"] == str(path), level
        assert doc["rules"]["older_than"] == f"{n}d"
        assert planned(doc) == [(str(folders[a]), "older-than", "planned") for a in AGES if a > n]
        seen.append(len(doc["actions"]))
        # the next run goes without this level
        if level == "GRADIO_CLEAN_CONFIG":
            monkeypatch.delenv("GRADIO_CLEAN_CONFIG")
        elif level != "--config":
            path.unlink()
    assert seen == [4, 3, 2, 1]


def test_a_named_config_must_exist(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "gradio-clean.toml", b'older_than = "1d"\n')  # never a fallback
    monkeypatch.setenv("GRADIO_CLEAN_CONFIG", "missing.toml")
    assert (
        one_line_error(run(runner, "prune"), ExitCode.USAGE)
        == "GRADIO_CLEAN_CONFIG=missing.toml: no such file"
    )
    assert (
        one_line_error(run(runner, "config", "--config", "gone.toml"), ExitCode.USAGE)
        == "--config gone.toml: no such file"
    )


def test_flags_override_the_file_and_a_rule_flag_replaces_all_its_rules(
    runner: CliRunner, tmp_path: Path, temp: Path
) -> None:
    photo = b"same bytes" * 100
    old_dup = write(temp / SHA256_A / "photo.png", photo, age=3 * DAY)
    new_dup = write(temp / SHA256_B / "photo.png", photo, age=2 * HOUR)
    old = write(temp / SHA256_DUP / "old.bin", b"old", age=3 * DAY)
    write(temp / "tmpab12cd34", b"", age=3 * HOUR)
    cfg = write(
        tmp_path / "gc.toml",
        textwrap.dedent(f"""\
            roots = ["{temp}"]
            older_than = "1d"
            orphaned_sessions = true
            session_ttl = "5h"
            dedupe = "delete"
        """).encode(),
    )

    # A non-rule flag overrides its key only: the file's rules still run.
    doc = run_json(runner, "prune", "--config", str(cfg), "--session-ttl", "2h")
    rules = doc["rules"]
    assert (rules["older_than"], rules["sources"]["older_than"]) == ("1d", str(cfg))
    assert (rules["orphaned_sessions"], rules["sources"]["orphaned_sessions"]) == (True, str(cfg))
    assert (rules["session_ttl"], rules["sources"]["session_ttl"]) == ("2h", "command line")
    assert planned(doc) == [
        (str(old_dup.parent), "older-than", "planned"),
        (str(old.parent), "older-than", "planned"),
        (str(temp / "tmpab12cd34"), "orphaned-sessions", "planned"),
    ]

    # A rule flag replaces all of the file's rules; other keys still come from the file.
    doc = run_json(runner, "prune", "--config", str(cfg), "--duplicates")
    rules = doc["rules"]
    assert {k: (rules[k], rules["sources"][k]) for k in ("older_than", "duplicates")} == {
        "older_than": (None, "default"),
        "duplicates": (True, "command line"),
    }
    assert (rules["orphaned_sessions"], rules["sources"]["orphaned_sessions"]) == (
        False,
        "default",
    )
    assert (rules["dedupe"], rules["sources"]["dedupe"]) == ("delete", str(cfg))
    assert [(a["path"], a["rule"], a["keep"], a["dedupe"]) for a in doc["actions"]] == [
        (str(old_dup), "duplicates", str(new_dup), "delete")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'older-than = "7d"\n',
            "unknown key older-than (did you mean older_than?); accepted keys: roots, "
            "sessions_dirs, older_than, duplicates, orphaned_sessions, max_size, min_free, "
            "age_by, session_ttl, min_age, dedupe, keep, verify, include, exclude, categories",
        ),
        (
            'older_than = "7d"\ndedupe = "symlink"\n',
            'dedupe = "symlink": expected "delete" or "hardlink"',
        ),
        ("duplicates = 1\n", "duplicates = 1: expected true or false"),
        (
            'categories = ["cache", "everything"]\n',
            'categories[1] = "everything": expected "cache", "leftover", "session", '
            '"examples", "flagged", "internal" or "other"',
        ),
    ],
)
@pytest.mark.parametrize("command", ["prune", "scan", "config", "schedule"])
def test_a_bad_config_is_one_line_naming_the_file_and_key(
    runner: CliRunner, tmp_path: Path, text: str, message: str, command: str
) -> None:
    cfg = write(tmp_path / "gradio-clean.toml", text.encode())
    assert one_line_error(run(runner, command), ExitCode.USAGE) == f"{cfg}: {message}"


CONFIG = """\
roots = ["gradio"]
older_than = "36h"
session_ttl = "2h"
exclude = ["keep-me/"]
categories = ["cache", "leftover"]
"""


def test_config_shows_effective_values_and_where_each_came_from(
    runner: CliRunner, tmp_path: Path, temp: Path
) -> None:
    cfg = write(tmp_path / "etc" / "gc.toml", CONFIG.encode())
    result = run(runner, "config", "--config", str(cfg))
    assert result.exit_code == 0, result.stderr
    here = str(tmp_path / "etc" / "gradio")  # relative roots: from the file's folder
    expected = [
        f"# config file: {cfg}",
        f'roots = ["{here}"]',
        "# sessions_dirs is not set",
        'older_than = "36h"',
        "duplicates = false",
        "orphaned_sessions = false",
        "# max_size is not set",
        "# min_free is not set",
        'age_by = "newest"',
        'session_ttl = "2h"',
        'min_age = "10m"',
        'dedupe = "hardlink"',
        'keep = "newest"',
        "verify = false",
        "include = []",
        'exclude = ["keep-me/"]',
        'categories = ["cache", "leftover"]',
    ]
    sources = [str(cfg), "default", str(cfg), "default", "default", "default", "default"]
    sources += ["default", str(cfg), "default", "default", "default", "default", "default"]
    sources += [str(cfg), str(cfg)]
    assert result.stdout.splitlines() == [expected[0]] + [
        f"{line:<48} # {source}" for line, source in zip(expected[1:], sources, strict=True)
    ]


def test_config_json_is_exact(runner: CliRunner, tmp_path: Path) -> None:
    cfg = write(tmp_path / "etc" / "gc.toml", CONFIG.encode())
    doc = run_json(runner, "config", "--config", str(cfg))
    from_file = {
        "roots": [str(tmp_path / "etc" / "gradio")],
        "older_than": "36h",
        "session_ttl": "2h",
        "exclude": ["keep-me/"],
        "categories": ["cache", "leftover"],
    }
    assert doc == {
        "schema_version": 1,
        "command": "config",
        "config_file": str(cfg),
        "searched": [
            str(tmp_path / "gradio-clean.toml"),
            str(tmp_path / "xdg" / "gradio-clean" / "config.toml"),
            SYSTEM_CONFIG,
        ],
        "values": {**RULE_DEFAULTS, **from_file},
        "sources": {k: str(cfg) if k in from_file else "default" for k in RULE_DEFAULTS},
    }


def test_config_without_a_file_says_where_it_looked(runner: CliRunner, tmp_path: Path) -> None:
    if os.path.exists(SYSTEM_CONFIG):
        pytest.skip(f"this machine has {SYSTEM_CONFIG}")
    result = run(runner, "config")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == (
        f"# no config file; looked at: {tmp_path}/gradio-clean.toml, "
        f"{tmp_path}/xdg/gradio-clean/config.toml, {SYSTEM_CONFIG}"
    )
    doc = run_json(runner, "config")
    assert doc["config_file"] is None
    assert doc["values"] == RULE_DEFAULTS
    assert set(doc["sources"].values()) == {"default"}


def test_prune_json_carries_the_config_file_and_sources_under_rules(
    runner: CliRunner, tmp_path: Path
) -> None:
    cfg = write(tmp_path / "gc.toml", CONFIG.encode())
    (tmp_path / "gradio").mkdir()
    result = runner.invoke(app, ["prune", "--config", str(cfg), "--keep", "oldest", "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    from_file = {
        "roots": [str(tmp_path / "gradio")],
        "older_than": "36h",
        "session_ttl": "2h",
        "exclude": ["keep-me/"],
        "categories": ["cache", "leftover"],
    }
    sources = {k: str(cfg) if k in from_file else "default" for k in RULE_DEFAULTS}
    assert doc["rules"] == {
        **RULE_DEFAULTS,
        **from_file,
        "keep": "oldest",
        "config_file": str(cfg),
        "sources": {**sources, "keep": "command line"},
    }
    assert [r["path"] for r in doc["roots"]] == [str(tmp_path / "gradio")]


# -- quiet ----------------------------------------------------------------------------


def hold_open(procs: list[subprocess.Popen[bytes]], path: Path) -> str:
    """Keep `path` open in another process; the detail prune reports for it."""
    pid = hold(
        procs,
        f"""
        import time
        f = open({str(path)!r}, "rb")
        print("ready", flush=True)
        time.sleep(120)
        """,
    )
    comm = Path(f"/proc/{pid}/comm").read_text().strip()
    return f"open by process {pid} ({comm})"


ALL_RULES = ["--older-than", "1d", "--duplicates", "--orphaned-sessions"]


def test_quiet_apply_prints_nothing_on_success(runner: CliRunner, gradio_tree: GradioTree) -> None:
    t = gradio_tree
    result = run(runner, "prune", str(t.temp), str(t.app), *ALL_RULES, "--apply", "--quiet")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert not (t.temp / SHA1_OLD).exists()  # it did run
    assert not (t.app / JS_SESSION).exists()


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1) to mount a folder inside the root",
)
def test_quiet_prints_nothing_on_success_even_when_the_scan_warned(temp: Path) -> None:
    old = write(temp / SHA256_A / "old.bin", b"o", age=3 * DAY)
    (temp / SHA256_B).mkdir()  # a tmpfs is mounted here, in the child's mount namespace only
    script = 'mount -t tmpfs none "$1" && shift && exec "$@"'
    mount = ["unshare", "--mount", "sh", "-c", script, "sh", str(temp / SHA256_B)]
    prune = ["-m", "gradio_clean", "prune", str(temp), "--older-than", "1d", "--age-by", "mtime"]
    prune += ["--apply", "--quiet"]
    proc = subprocess.run(
        [*mount, sys.executable, *prune],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert not old.exists()  # the run did its work and succeeded
    assert (proc.stdout, proc.stderr) == ("", "")


def test_quiet_prints_what_it_left_on_stderr_and_exits_3(
    runner: CliRunner, temp: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    busy = write(temp / SHA256_A / "busy.bin", b"b" * 10, age=3 * DAY)
    write(temp / SHA256_A / "fresh.bin", b"f")  # so busy.bin is an action of its own
    idle = write(temp / SHA256_B / "idle.bin", b"i" * 20, age=3 * DAY)
    set_age(idle.parent, 3 * DAY)
    detail = hold_open(holder, busy)

    result = run(runner, "prune", str(temp), "--older-than", "1d", "--apply", "--quiet")

    assert result.exit_code == ExitCode.PARTIAL
    assert result.stdout == ""
    assert result.stderr == (
        f"skipped: {busy}: {detail}\n"
        "Freed 20 Bytes in 1 file (1 folder).\n"
        "1 entry skipped, 0 failed; see above or --json.\n"
    )
    assert busy.exists() and not idle.parent.exists()


# -- metrics --------------------------------------------------------------------------


def metrics(path: Path) -> Exposition:
    return parse_exposition(path.read_text())


def by_label(doc: Exposition, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for (n, labels), value in doc.samples.items() if n == name}


def test_metrics_agree_with_the_json_and_with_a_scan(
    runner: CliRunner, tmp_path: Path, gradio_tree: GradioTree
) -> None:
    t = gradio_tree
    b = t.temp / SHA256_B
    expected_bytes = {
        # 3 days old: B's files (hard.bin's other link in A frees no bytes), the sha1 report
        "older-than": sum(os.path.getsize(p) for p in b.iterdir())
        + os.path.getsize(t.temp / SHA1_OLD / "report.txt"),
        # A's two copies of the photo become hard links to DUP's: bytes, not files
        "duplicates": 2 * os.path.getsize(t.temp / SHA256_DUP / "photo.png"),
        # stale sessions and Gradio's leftovers older than 1h
        "orphaned-sessions": sum(
            os.path.getsize(p)
            for p in (
                t.app / JS_SESSION / "upload.txt",
                t.app / UUID_SESSION / "result.txt",
                t.temp / SHA256_A / ".photo.png.ab12cd34",
                t.temp / "tmpab12cd34",
                t.temp / "tmpzz99yy88.mp4",
                t.temp / "tmpq1w2e3r4" / "clip.mp4",
            )
        ),
    }
    expected_files = {"older-than": 3 + 1 + 1, "duplicates": 0, "orphaned-sessions": 6}
    for budget_rule in ("max-size", "min-free"):  # every rule is written, zeros included
        expected_bytes[budget_rule] = expected_files[budget_rule] = 0
    scan = run_json(runner, "scan", str(t.temp), str(t.app))
    prom = tmp_path / "textfile" / "gradio_clean.prom"
    prom.parent.mkdir()

    doc = run_json(
        runner, "prune", str(t.temp), str(t.app), *ALL_RULES, "--apply", "--metrics-file", str(prom)
    )

    m = metrics(prom)
    assert by_label(m, "gradio_clean_freed_bytes", "rule") == expected_bytes
    assert by_label(m, "gradio_clean_freed_files", "rule") == expected_files
    totals = doc["totals"]
    assert sum(expected_bytes.values()) == totals["freed_bytes"]
    assert sum(expected_files.values()) == totals["freed_files"]
    assert m.value("gradio_clean_skipped_entries") == totals["skipped"] == 0
    assert m.value("gradio_clean_failed_entries") == totals["failed"] == 0
    for what in ("files", "bytes"):
        counted: dict[str, float] = {}
        for root in scan["roots"]:
            for category, tally in root["categories"].items():
                counted[category] = counted.get(category, 0) + tally[what]
        assert by_label(m, f"gradio_clean_scanned_{what}", "category") == counted
    assert m.value("gradio_clean_success") == 1
    assert m.value(LAST_SUCCESS) == m.value("gradio_clean_last_run_timestamp_seconds") > 0
    assert 0 < m.value("gradio_clean_duration_seconds") < 60


@pytest.mark.parametrize("failure", ["busy", "missing root"])
def test_a_failed_run_writes_success_0_and_keeps_the_last_success(
    runner: CliRunner,
    tmp_path: Path,
    temp: Path,
    holder: list[subprocess.Popen[bytes]],
    failure: str,
) -> None:
    old = write(temp / SHA256_A / "old.bin", b"o", age=3 * DAY)
    prom = tmp_path / "gradio_clean.prom"
    args = ["prune", str(temp), "--older-than", "1d", "--apply", "--quiet"]
    first = run(runner, *args, "--metrics-file", str(prom))
    assert first.exit_code == 0
    before = metrics(prom)
    write(temp / SHA256_B / "old.bin", b"o", age=3 * DAY)

    if failure == "busy":
        hold_lock(holder, temp)
        result = run(runner, *args, "--wait", "0.2", "--metrics-file", str(prom))
        message = one_line_error(result, ExitCode.BUSY)
        assert message == (
            f"{temp}: another gradio-clean run is working on it (waited 0.2s); try again later"
        )
        assert (temp / SHA256_B / "old.bin").exists()
    else:
        result = run(runner, *args, str(tmp_path / "gone"), "--metrics-file", str(prom))
        assert one_line_error(result, ExitCode.ERROR) == f"{tmp_path / 'gone'}: no such directory"

    after = metrics(prom)
    assert after.value("gradio_clean_success") == 0
    assert after.value(LAST_SUCCESS) == before.value(LAST_SUCCESS) > 0
    assert after.value("gradio_clean_last_run_timestamp_seconds") > before.value(LAST_SUCCESS)
    assert set(by_label(after, "gradio_clean_freed_bytes", "rule").values()) == {0}
    assert not old.exists()  # by the first run
    assert [n for n in os.listdir(tmp_path) if "prom" in n] == ["gradio_clean.prom"]  # no temp


# -- schedule -------------------------------------------------------------------------


def scheduled_tree(tmp_path: Path) -> tuple[Path, Path]:
    temp = tmp_path / "gradio"
    write(temp / SHA256_A / "old.bin", b"o" * 10, age=10 * DAY)
    write(temp / SHA256_B / "new.bin", b"n" * 10)
    write(temp / "tmpab12cd34", b"", age=3 * HOUR)
    sessions = tmp_path / "sessions"
    write(sessions / JS_SESSION / "upload.txt", b"u", age=2 * DAY)
    set_age(sessions / JS_SESSION, 2 * DAY)
    return temp, sessions


SCHEDULED_RULES = [
    *("--older-than", "7d", "--orphaned-sessions", "--session-ttl", "2h"),
    *("--age-by", "mtime"),  # utime cannot age a ctime
]


def check_argv_runs_as_a_dry_prune(runner: CliRunner, argv: list[str], tmp_path: Path) -> None:
    """The scheduled argv without --apply is a prune our parser accepts; it deletes nothing."""
    exe, *args = argv
    assert os.path.isabs(exe) and os.access(exe, os.X_OK)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout == f"gradio-clean {__version__}\n"  # the installed console script
    assert args[:3] == ["prune", "--apply", "--quiet"]
    before = files_under(tmp_path)
    doc = run_json(runner, *[a for a in args if a != "--apply"])
    assert doc["dry_run"] is True
    assert sorted(planned(doc)) == [
        (str(tmp_path / "gradio" / SHA256_A), "older-than", "planned"),
        (str(tmp_path / "gradio" / "tmpab12cd34"), "orphaned-sessions", "planned"),
        (str(tmp_path / "sessions" / JS_SESSION), "orphaned-sessions", "planned"),
    ]
    assert files_under(tmp_path) - {"gradio_clean.prom"} == before - {"gradio_clean.prom"}


def test_the_crontab_line_runs_the_installed_executable_on_absolute_roots(
    runner: CliRunner, tmp_path: Path
) -> None:
    scheduled_tree(tmp_path)
    result = run(
        runner,
        "schedule",
        "gradio",  # relative, as typed in a shell
        "--sessions-dir",
        "sessions",
        *SCHEDULED_RULES,
        "--every",
        "6h",
        "--metrics-file",
        "gradio_clean.prom",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    line = result.stdout.rstrip("\n")
    assert "\n" not in line
    *fields, command = line.split(" ", 5)
    assert fields == ["0", "*/6", "*", "*", "*"]
    argv = shlex.split(command)  # cron hands the command to /bin/sh
    assert argv[1:] == [
        "prune",
        "--apply",
        "--quiet",
        "--metrics-file",
        str(tmp_path / "gradio_clean.prom"),
        "--older-than",  # the flags in --help order, then the folders
        "7d",
        "--age-by",
        "mtime",
        "--orphaned-sessions",
        "--session-ttl",
        "2h",
        "--sessions-dir",
        str(tmp_path / "sessions"),
        str(tmp_path / "gradio"),
    ]
    check_argv_runs_as_a_dry_prune(runner, argv, tmp_path)


def test_the_systemd_units_run_the_same_argv_and_it_parses(
    runner: CliRunner, tmp_path: Path
) -> None:
    scheduled_tree(tmp_path)
    args = ["gradio", "--sessions-dir", "sessions", *SCHEDULED_RULES]
    result = run(runner, "schedule", *args, "--systemd", "--metrics-file", "gradio_clean.prom")
    assert result.exit_code == 0, result.stderr
    service, timer = result.stdout.split("\n\n# /etc/systemd/system/gradio-clean.timer\n")
    assert service.startswith("# /etc/systemd/system/gradio-clean.service,")
    s = unit_settings(service + "\n")["Service"]
    t = unit_settings(timer)["Timer"]
    assert only(s, "Type") == "oneshot"
    assert systemd_split(only(s, "ReadWritePaths")) == [
        f"-{tmp_path / 'gradio'}",
        f"-{tmp_path / 'sessions'}",
        f"-{tmp_path}",  # the metrics file's folder
    ]
    assert only(t, "OnCalendar") == "daily"
    argv = systemd_split(only(s, "ExecStart"))
    cron = run(runner, "schedule", *args, "--metrics-file", "gradio_clean.prom")
    assert argv == shlex.split(cron.stdout.split(" ", 5)[5])  # the same run as the cron line
    check_argv_runs_as_a_dry_prune(runner, argv, tmp_path)


def test_schedule_pins_the_config_file_and_the_roots_found_now(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cron starts elsewhere, without GRADIO_TEMP_DIR: what the shell found now goes in the line."""
    temp, _ = scheduled_tree(tmp_path)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(temp))
    write(tmp_path / "gradio-clean.toml", b'older_than = "7d"\n')
    result = run(runner, "schedule")
    assert result.exit_code == 0, result.stderr
    argv = shlex.split(result.stdout.split(" ", 5)[5])
    assert argv[1:] == [
        "prune",
        "--apply",
        "--quiet",
        "--config",
        str(tmp_path / "gradio-clean.toml"),
        str(temp),
    ]


def test_schedule_without_a_rule_is_a_usage_error(runner: CliRunner, temp: Path) -> None:
    message = one_line_error(run(runner, "schedule", str(temp)), ExitCode.USAGE)
    assert message.startswith("no rule selected: give --older-than DUR, --duplicates, ")


SANDBOX = """\
set -eu
# What ProtectSystem=strict with ReadWritePaths= does, for the folders Python's
# tempfile looks at: /tmp and /var/tmp read-only, the root writable again.
mount --make-rprivate /
for d in /tmp /var/tmp; do mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"; done
mount --bind "$ROOT" "$ROOT"; mount -o remount,bind,rw "$ROOT"
# /run is read-only too; RuntimeDirectory= makes its own folder there, writable.
mkdir -p -m 0700 "/run/$RUNTIME"
mount --bind /run /run; mount -o remount,bind,ro /run
mount --bind "/run/$RUNTIME" "/run/$RUNTIME"; mount -o remount,bind,rw "/run/$RUNTIME"
cd /tmp   # systemd starts services in /, which is read-only under ProtectSystem=strict
unset TMPDIR TEMP TMP GRADIO_TEMP_DIR
exec "$@"
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1) to build the unit's read-only mounts",
)
def test_the_systemd_service_runs_under_its_own_sandbox(runner: CliRunner, tmp_path: Path) -> None:
    temp, _ = scheduled_tree(tmp_path)
    result = run(
        runner, "schedule", str(temp), "--older-than", "7d", "--age-by", "mtime", "--systemd"
    )
    service = result.stdout.split("\n\n# /etc/systemd/system/gradio-clean.timer\n")[0]
    s = unit_settings(service + "\n")["Service"]
    assert only(s, "ProtectSystem") == "strict"
    assert systemd_split(only(s, "ReadWritePaths")) == [f"-{temp}"]
    assert only(s, "RuntimeDirectoryMode") == "0700"
    argv = systemd_split(only(s, "ExecStart"))
    proc = subprocess.run(
        ["unshare", "--mount", "sh", "-c", SANDBOX, "sh", *argv],
        env={**os.environ, "ROOT": str(temp), "RUNTIME": only(s, "RuntimeDirectory")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-600:]
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert not (temp / SHA256_A).exists()


# -- exit codes (the README's table) --------------------------------------------------


def test_exit_0_nothing_to_do(runner: CliRunner, temp: Path) -> None:
    write(temp / SHA256_A / "new.bin", b"n")
    result = run(runner, "prune", str(temp), "--older-than", "1d", "--apply")
    assert result.exit_code == 0
    assert result.stderr.startswith(f"{temp}: temp (") and result.stderr.count("\n") == 1
    assert result.stdout == "Freed 0 Bytes in 0 files (0 folders).\n"


def test_exit_1_missing_root(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "prune", "no-such-dir", "--older-than", "1d")
    assert one_line_error(result, ExitCode.ERROR) == "no-such-dir: no such directory"


def test_exit_2_bad_arguments_without_a_traceback(runner: CliRunner, temp: Path) -> None:
    result = run(runner, "prune", str(temp), "--older-than", "3x")
    assert one_line_error(result, ExitCode.USAGE) == (
        "--older-than '3x': unknown unit 'x'; expected a duration like 90m, 12h, 1d, 2w or "
        "1d12h (units s, m, h, d, w)"
    )
    result = run(runner, "prune", str(temp), "--older", "1d")  # not an option: typer's usage
    assert result.exit_code == ExitCode.USAGE
    assert "no such option: --older" in result.stderr
    assert "Traceback" not in result.output


def test_exit_3_partial(
    runner: CliRunner, temp: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    busy = write(temp / SHA256_A / "busy.bin", b"b", age=3 * DAY)
    set_age(busy.parent, 3 * DAY)
    detail = hold_open(holder, busy)
    doc = run_json(runner, "prune", str(temp), "--older-than", "1d", "--apply", code=3)
    assert [(a["path"], a["status"], a["detail"]) for a in doc["actions"]] == [
        (str(busy.parent), "skipped", f"busy.bin is {detail}")
    ]


def test_exit_4_busy(runner: CliRunner, temp: Path, holder: list[subprocess.Popen[bytes]]) -> None:
    write(temp / SHA256_EMPTY / "old.bin", b"o", age=3 * DAY)
    hold_lock(holder, temp)
    result = run(runner, "prune", str(temp), "--older-than", "1d", "--apply", "--wait", "0")
    assert one_line_error(result, ExitCode.BUSY).startswith(f"{temp}: another gradio-clean run")


def test_a_missing_metrics_folder_is_refused_before_anything_is_deleted(tmp_path: Path) -> None:
    old = write(tmp_path / "gradio" / SHA256_A / "old.bin", b"o", age=3 * DAY)
    metrics = tmp_path / "no-such-folder" / "gradio_clean.prom"
    args = ["prune", str(tmp_path / "gradio"), "--older-than", "1d", "--age-by", "mtime"]
    done = run_cli(*args, "--apply", "--yes", "--metrics-file", str(metrics))
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().endswith(f"no such folder {metrics.parent}\n")
    assert old.exists()


def test_schedule_with_nothing_found_is_refused_rather_than_pinning_nothing(
    tmp_path: Path,
) -> None:
    env_temp = tmp_path / "no-cache-here"
    done = subprocess.run(
        [sys.executable, "-m", "gradio_clean", "schedule", "--older-than", "1d"],
        capture_output=True,
        cwd=tmp_path,
        env=cli_env(GRADIO_TEMP_DIR=str(env_temp)),
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert b"no Gradio cache found to schedule" in done.stderr
    assert done.stdout == b""
