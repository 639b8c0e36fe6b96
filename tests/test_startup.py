"""What a run imports: on a small tree, start-up is most of what a run costs.

A run that prints only JSON, or nothing (cron's `prune --apply --quiet`), imports
neither rich nor the table renderer; a dry run neither the lock nor the deleter.
The runs that draw tables are checked too, so the check itself can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import build_gradio_tree, cli_env

WATCHED = ("rich", "gradio_clean.report", "gradio_clean.lock", "gradio_clean.delete")

IMPORTED = f"""
import runpy, sys
sys.argv = ["gradio-clean", *sys.argv[1:]]
try:
    runpy.run_module("gradio_clean", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
watched = {WATCHED!r}
print(code, " ".join(m for m in watched if m in sys.modules), sep="|", file=sys.stderr)
"""


def _imported(args: list[str], temp: Path) -> tuple[str, str]:
    """The run's stdout, and which WATCHED modules it imported (its exit code checked)."""
    env = cli_env(GRADIO_TEMP_DIR=str(temp), COLUMNS="80")
    for forcing in ("FORCE_COLOR", "TTY_COMPATIBLE"):  # stderr is a pipe, and says so
        env.pop(forcing, None)
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTED, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    code, _, imported = proc.stderr.strip().splitlines()[-1].partition("|")
    assert code == "0", proc.stderr
    return proc.stdout, imported


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["scan", "{temp}", "--json"], ""),
        (["prune", "{temp}", "--older-than", "1d", "--age-by", "mtime", "--json"], ""),
        (["prune", "{temp}", "--older-than", "1d", "--age-by", "mtime", "--quiet"], ""),
        (
            ["prune", "{temp}", "--older-than", "1d", "--age-by", "mtime", "--apply", "--quiet"],
            "gradio_clean.lock gradio_clean.delete",
        ),
        (["scan", "{temp}"], "rich gradio_clean.report"),
        (
            ["prune", "{temp}", "--older-than", "1d", "--age-by", "mtime"],
            "rich gradio_clean.report",
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else f"imports: {v or 'none'}",
)
def test_a_run_imports_only_what_its_output_needs(
    tmp_path: Path, args: list[str], allowed: str
) -> None:
    tree = build_gradio_tree(tmp_path)
    argv = [a.format(temp=tree.temp) for a in args]
    stdout, imported = _imported(argv, tree.temp)
    assert imported == allowed
    if "--json" in argv:  # the document is whole, and the run had work to do
        doc = json.loads(stdout)
        assert doc["command"] == argv[0]
        assert doc["roots"][0]["files"] if argv[0] == "scan" else doc["actions"]
