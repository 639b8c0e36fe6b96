"""Where output goes and how it is folded: prose stays one line when piped."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import DAY, cli_env, write


def test_a_summary_stays_one_line_when_piped(tmp_path: Path) -> None:
    """Piped (cron's mail), rich took 80 columns and broke `Budget --max-size 1K: …`
    over two lines, `after` at the end of one and the rest on the next; the mail reader
    folds a line itself. Tables still fit the 80 columns."""
    temp = tmp_path / "srv" / ("very-long-application-name-" * 3) / "gradio-temporary-files"
    for i in range(4):
        write(temp / f"{i:064x}" / "image.png", b"x" * 20000, age=(40 + i) * DAY)
    write(temp / f"{9:064x}" / "notes.txt", b"n", age=40 * DAY)
    env = cli_env()
    env.pop("COLUMNS", None)
    args = ["prune", "--age-by", "mtime", "--max-size", "1K"]
    args += ["--min-age", "0s", "--limit", "1", "--exclude", "*.txt", str(temp)]
    proc = subprocess.run(
        [sys.executable, "-m", "gradio_clean", *args], capture_output=True, env=env, check=False
    )
    assert proc.returncode == 5, proc.stderr  # the excluded file keeps the budget unmet
    out, err = proc.stdout.decode(), proc.stderr.decode()
    lines = out.splitlines()
    budget = [line for line in lines if line.startswith("Budget --max-size 1K: ")]
    assert len(budget) == 1 and len(budget[0]) > 80, out
    assert re.search(r"; evicting 4 folders last used before .* UTC\.$", budget[0]), out
    assert any(re.fullmatch(r"Budget not met: still .* over: .*\.", line) for line in lines), out
    more = r"  … and \d+ more \(--limit 0 shows all, --json lists every entry\)"
    assert any(re.fullmatch(more, line) for line in lines), out
    assert f"--exclude/exclude patterns excluded 1 files in {temp}" in lines, out
    unmet = r"^gradio-clean: budget not met: --max-size 1K still .* over: "
    stderr_line = unmet + r".*, 4\.0 KiB is the root folder itself$"
    assert re.search(stderr_line, err, re.M), err
    rows = [line for line in lines if line.startswith(" ")]
    assert rows and all(len(line) <= 80 for line in rows), out
