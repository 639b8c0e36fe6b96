"""Counts of one read as singulars, and a scan that finds nothing says only that."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.conftest import DAY, SHA256_A, SHA256_B, hold, run_cli, write

ONE = re.compile(r"(?<![\w.,])1 ([A-Za-z/]+)")
SINGULAR_ENDING_IN_S = frozenset({"process", "is", "was"})


def _plurals_after_one(text: str) -> list[str]:
    return [m.group(0) for m in ONE.finditer(text) if m.group(1).endswith("s")]


def test_no_count_of_one_is_worded_as_a_plural(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    temp = tmp_path / "gradio"
    write(temp / SHA256_A / "old.bin", b"o" * 10, age=3 * DAY)  # one folder, one file
    busy = write(temp / SHA256_B / "busy.bin", b"b" * 5, age=3 * DAY)  # one skipped entry
    fresh = write(temp / SHA256_B / "fresh.bin", b"f")
    os.link(fresh, temp / SHA256_B / "fresh-link.bin")  # one extra hard link
    os.symlink("/etc/passwd", temp / "link")  # one symlink
    os.mkfifo(temp / "fifo")  # one FIFO
    hold(
        holder,
        f"""
        import time
        fh = open({str(busy)!r}, "rb")
        print("ready", flush=True)
        time.sleep(120)
        """,
    )
    outputs = []
    for args in (
        ["scan", str(temp)],
        ["prune", str(temp), "--older-than", "1d", "--age-by", "mtime"],
        ["prune", str(temp), "--older-than", "1d", "--age-by", "mtime", "--apply", "--yes"],
        ["prune", str(temp), "--older-than", "1d", "--age-by", "mtime", "--apply", "--quiet"],
    ):
        proc = run_cli(*args, temp_dir=temp)  # its symlink and FIFO make it no temp dir
        text = proc.stdout.decode() + proc.stderr.decode()
        assert proc.returncode in (0, 3), text
        outputs.append(text)
    everything = "\n".join(outputs)
    assert "1 file" in everything and "1 folder" in everything and "1 entry" in everything
    assert "1 symlink " in everything and "1 extra hard link " in everything
    bad = [p for p in _plurals_after_one(everything) if p[2:] not in SINGULAR_ENDING_IN_S]
    assert not bad, bad


def test_the_check_catches_a_plural() -> None:
    assert _plurals_after_one("Freed 1 KiB in 1 files (1 folders); 11 files") == [
        "1 files",
        "1 folders",
    ]


def test_a_scan_that_finds_nothing_prints_only_the_message(tmp_path: Path) -> None:
    proc = run_cli("scan", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout == b""
    assert proc.stderr.decode().startswith("gradio-clean: no Gradio cache found; looked at ")
    assert len(proc.stderr.decode().splitlines()) == 1
