"""scan on real trees: categories, totals against an independent count, and safety."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from gradio_clean.cli import app
from tests.conftest import GradioTree


def scan_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["scan", "--json", *args])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def independent_count(root: Path) -> tuple[int, int, int]:
    """(files, bytes, disk bytes) by find and du: inodes once, no links followed."""
    out = subprocess.run(
        ["find", str(root), "-type", "f", "-printf", "%i %s\n"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    inodes = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()}
    du = subprocess.run(["du", "-sxB1", str(root)], check=True, capture_output=True, text=True)
    return len(inodes), sum(inodes.values()), int(du.stdout.split()[0])


def test_totals_equal_find_and_du(runner: CliRunner, gradio_tree: GradioTree) -> None:
    doc = scan_json(runner, str(gradio_tree.temp), str(gradio_tree.app))
    assert doc["schema_version"] == 1
    for root_doc, root in zip(doc["roots"], (gradio_tree.temp, gradio_tree.app), strict=True):
        files, nbytes, disk = independent_count(root)
        assert (root_doc["files"], root_doc["bytes"], root_doc["disk_bytes"]) == (
            files,
            nbytes,
            disk,
        )
        assert sum(c["files"] for c in root_doc["categories"].values()) == files
        assert sum(c["bytes"] for c in root_doc["categories"].values()) == nbytes


def test_overlapping_roots_are_a_usage_error(runner: CliRunner, gradio_tree: GradioTree) -> None:
    again = str(gradio_tree.app / ".gradio" / "..")
    result = runner.invoke(app, ["scan", str(gradio_tree.app), again])
    assert result.exit_code == 2
    assert "roots overlap" in result.stderr
    assert "Traceback" not in result.output


def test_every_file_lands_in_its_category(runner: CliRunner, gradio_tree: GradioTree) -> None:
    doc = scan_json(runner, str(gradio_tree.temp), str(gradio_tree.app))
    temp, app_root = doc["roots"]
    assert (temp["role"], app_root["role"]) == ("temp", "app")

    def count(category: str, root: Path) -> int:
        return sum(
            1
            for p in gradio_tree.expected.get(category, ())
            if (root / p).exists() and (root / p).is_relative_to(root)
        )

    # temp: 3 photos + audio + report + café + hard.bin (hard-link.bin is the same inode)
    assert temp["categories"]["cache"]["files"] == 7
    assert temp["categories"]["leftover"]["files"] == 4  # staging, tmp file x2, ffmpeg clip
    assert temp["categories"]["leftover"]["dirs"] == 2  # the empty hash folder, the tmp folder
    assert temp["categories"]["internal"]["files"] == 2
    assert temp["categories"]["other"]["files"] == 1  # notes.txt
    assert (temp["symlinks"], temp["special"], temp["hardlinks"]) == (1, 1, 1)
    assert app_root["categories"]["session"]["files"] == 3
    assert app_root["categories"]["flagged"]["files"] == 2
    assert app_root["categories"]["examples"]["files"] == 1
    assert app_root["categories"]["internal"]["files"] == 1
    assert app_root["categories"]["other"]["files"] == 5  # app.py, model, logo, pyc, outputs1
    assert count("session", gradio_tree.app) == 3
