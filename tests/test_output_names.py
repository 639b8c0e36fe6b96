"""Names another user chose cannot forge lines or drive the terminal (issue 14).

Every human-readable output escapes control characters: a newline, a carriage
return and ESC in a name come out as `\\n`, `\\r` and `\\x1b`. Real processes, bytes
compared.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gradio_clean.errors import ExitCode
from tests.conftest import DAY, cli_env, hold, run_cli, write

NASTY = "x\nskipped: etc-shadow: forged\r\x1b[2J\x1b]0;owned\x07.png"
SHOWN = "x\\nskipped: etc-shadow: forged\\r\\x1b[2J\\x1b]0;owned\\x07.png"
HASH_A, HASH_B = "a" * 64, "b" * 64


def nasty_root(base: Path) -> Path:
    """A temp dir whose old file has a nasty name, with a duplicate of the same name."""
    root = base / "gradio"
    for folder in (HASH_A, HASH_B):
        write(root / folder / NASTY, b"same bytes " * 20, age=3 * DAY)
    return root


def assert_clean(out: bytes) -> None:
    for raw in (b"\x1b", b"\r", b"\x07", b"\nskipped: etc-shadow"):
        assert raw not in out, out


def test_the_plan_table_and_summary_escape_names(tmp_path: Path) -> None:
    root = nasty_root(tmp_path)
    done = subprocess.run(  # wide enough that no cell folds
        [sys.executable, "-m", "gradio_clean", "prune", "--duplicates", str(root)],
        capture_output=True,
        env=cli_env(COLUMNS="1000"),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert_clean(done.stdout + done.stderr)
    assert done.stdout.count(SHOWN.encode()) == 2  # the path, and the kept copy in the reason
    # JSON keeps the real name: it escapes control characters its own way
    done = run_cli("prune", "--json", "--duplicates", str(root))
    names = {os.path.basename(a["path"]) for a in json.loads(done.stdout)["actions"]}
    assert names == {NASTY}


def test_quiet_skipped_lines_cannot_be_forged(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """--quiet prints one line per entry left alone; cron mails it. A name must not add one."""
    root = tmp_path / "gradio"
    write(root / HASH_B / "f.bin", b"x", age=3 * DAY)
    held = write(root / NASTY, b"held", age=3 * DAY)
    code = f"f = open({str(held)!r}, 'rb')\nprint('ready', flush=True)\nimport time\ntime.sleep(60)"
    pid = hold(holder, code)
    done = run_cli(
        "prune",
        "--older-than",
        "1d",
        "--age-by",
        "mtime",
        "--apply",
        "--quiet",
        str(root),
        temp_dir=root,  # vouched for: its odd names alone would make it an app dir
    )
    assert done.returncode == ExitCode.PARTIAL, done.stderr
    assert_clean(done.stderr)
    skipped = [line for line in done.stderr.decode().splitlines() if line.startswith("skipped: ")]
    assert len(skipped) == 1
    assert skipped[0].startswith(f"skipped: {root}/{SHOWN}: open by process {pid}")
    assert held.exists() and not (root / HASH_B).exists()


def test_errors_warnings_and_role_lines_escape_paths(tmp_path: Path) -> None:
    missing = tmp_path / "no\nsuch\x1b[2J"
    done = run_cli("prune", "--older-than", "1d", "--age-by", "mtime", str(missing))
    assert done.returncode == ExitCode.ERROR
    assert done.stderr.count(b"\n") == 1
    assert_clean(done.stderr)
    assert b"no\\nsuch\\x1b[2J" in done.stderr
    root = tmp_path / "ca\rche\n\x1b[2J"
    write(root / HASH_A / "f.bin", b"x", age=3 * DAY)
    (root / ".gradiocleanignore").write_text("*\n")
    (root / ".gradiocleanignore").chmod(0o666)  # ignored, with a warning naming it
    for args in (
        ["scan", str(root)],
        ["prune", "--older-than", "1d", "--age-by", "mtime", str(root)],
    ):
        done = run_cli(*args)
        assert done.returncode == 0, done.stderr
        assert_clean(done.stdout + done.stderr)
        assert b"ca\\rche\\n\\x1b[2J/.gradiocleanignore: ignored: writable" in done.stderr
    done = run_cli("scan", str(root))
    assert b"ca\\rche\\n\\x1b[2J: temp (" in done.stderr  # the role line


def test_a_config_path_is_escaped(tmp_path: Path) -> None:
    config = tmp_path / "con\nfig\x1b[2J.toml"
    config.write_text("verify = 1\n")
    done = run_cli("config", "--config", str(config))
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.count(b"\n") == 1
    assert_clean(done.stderr)
    config.write_text("verify = true\n")
    done = run_cli("config", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert_clean(done.stdout)
    assert b"# config file: " + str(tmp_path).encode() + b"/con\\nfig\\x1b[2J.toml" in done.stdout
