"""What a run imports: on a small tree, start-up is most of what a run costs.

A run that prints only JSON, or nothing (cron's `prune --apply --quiet`), imports
neither rich nor the table renderer, nor humanize (the tables' and summary's words); a
dry run not the deleter either; a run without --duplicates not that rule's hashing. The
runs that draw tables are checked too, so the check itself can fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from gradio_clean.config import SYSTEM_CONFIG
from gradio_clean.scan import FORK_MIN_ENTRIES
from gradio_clean.workers import available_jobs
from tests.conftest import build_gradio_tree, cli_env

RENDERING = ("rich", "humanize", "gradio_clean.report", "gradio_clean.delete")

IMPORTED = """
import runpy, sys
watched = sys.argv.pop(1).split()
sys.argv = ["gradio-clean", *sys.argv[1:]]
try:
    runpy.run_module("gradio_clean", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(code, " ".join(m for m in watched if m in sys.modules), sep="|", file=sys.stderr)
"""


def _imported(
    args: list[str],
    cwd: Path,
    watched: Sequence[str],
    temp: Path | None = None,
    codes: Sequence[str] = ("0",),
) -> tuple[str, str]:
    """The run's stdout, and which of `watched` it imported (its exit code checked: one of
    `codes`). No config file but the system's is found from `cwd`; `temp`: GRADIO_TEMP_DIR."""
    env = cli_env(COLUMNS="80", XDG_CONFIG_HOME=str(cwd), GRADIO_TEMP_DIR=str(temp or cwd))
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "GRADIO_CLEAN_CONFIG"):
        env.pop(name, None)  # stderr is a pipe, and says so; no config is named
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTED, " ".join(watched), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
        timeout=60,
    )
    code, _, imported = proc.stderr.strip().splitlines()[-1].partition("|")
    assert code in codes, proc.stderr
    return proc.stdout, imported


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["scan", "{temp}", "--json"], ""),
        (["prune", "{temp}", "--older-than", "1d", "--age-by", "mtime", "--json"], ""),
        (["prune", "{temp}", "--older-than", "1d", "--age-by", "mtime", "--quiet"], ""),
        (
            ["prune", "{temp}", "--older-than", "1d", "--age-by", "mtime", "--apply", "--quiet"],
            "gradio_clean.delete",
        ),
        (["scan", "{temp}"], "rich humanize gradio_clean.report"),
        (
            ["prune", "{temp}", "--older-than", "1d", "--age-by", "mtime"],
            "rich humanize gradio_clean.report",
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else f"imports: {v or 'none'}",
)
def test_a_run_imports_only_what_its_output_needs(
    tmp_path: Path, args: list[str], allowed: str
) -> None:
    tree = build_gradio_tree(tmp_path)
    argv = [a.format(temp=tree.temp) for a in args]
    stdout, imported = _imported(argv, tmp_path, RENDERING, tree.temp)
    assert imported == allowed
    if "--json" in argv:  # the document is whole, and the run had work to do
        doc = json.loads(stdout)
        assert doc["command"] == argv[0]
        assert doc["roots"][0]["files"] if argv[0] == "scan" else doc["actions"]


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--older-than", "1d", "--json"], ""),
        (["--max-size", "1K", "--json"], ""),  # exit 5: over budget, the root's own blocks
        (["--duplicates", "--json"], "gradio_clean.dedupe gradio_clean.hashing"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else f"imports: {v or 'none'}",
)
def test_only_the_duplicates_rule_imports_its_hashing(
    tmp_path: Path, args: list[str], allowed: str
) -> None:
    """The duplicates rule's modules (hashing with mmap, a pool, the set finder) are
    imported by a run that asks for it, not by every prune."""
    tree = build_gradio_tree(tmp_path)
    watched = ("gradio_clean.dedupe", "gradio_clean.hashing")
    argv = ["prune", str(tree.temp), "--age-by", "mtime", *args]
    _, imported = _imported(argv, tmp_path, watched, tree.temp, codes=("0", "5"))
    assert imported == allowed


def test_a_small_scan_loads_no_worker_tools_and_no_toml_parser(tmp_path: Path) -> None:
    """pickle, ctypes and mmap serve forked workers, which a small tree does not get;
    the TOML parser serves a config file, and there is none. A config file read and a
    large tree forked show that each is still loaded where it is used."""
    if os.path.exists(SYSTEM_CONFIG):
        pytest.skip(f"{SYSTEM_CONFIG} exists: every run reads it")
    if available_jobs() < 2:
        pytest.skip("one core: no scan forks workers")
    tree = build_gradio_tree(tmp_path)
    tools = ("pickle", "ctypes", "mmap", "tomllib")
    _, imported = _imported(["scan", str(tree.temp), "--json"], tmp_path, tools)
    assert imported == ""
    (tmp_path / "gradio-clean.toml").write_text("older_than = '1d'\n")
    many = tmp_path / "many"
    many.mkdir()
    for i in range(FORK_MIN_ENTRIES + 10):
        (many / f"f{i}").touch()
    _, imported = _imported(["scan", str(many), "--json"], tmp_path, tools)
    assert imported == " ".join(tools)
