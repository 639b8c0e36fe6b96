"""Tables read at a glance: one line per plan entry, each root once, short hash names,
and shares drawn as bars."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from rich.cells import cell_len

from gradio_clean.report import bar
from tests.conftest import REPO, GradioTree, cli_env, run_cli

SIZE = re.compile(r"\d[\d.,]* (Bytes|Byte|KiB|MiB|GiB) ")
RULES = (
    "--older-than",
    "30d",
    "--age-by",
    "mtime",
    "--duplicates",
    "--orphaned-sessions",
    "--age-by",
    "mtime",
)


@pytest.fixture(scope="module")
def bench_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("bench")
    temp, app = base / "gradio", base / "app"
    make_tree = str(REPO / "bench" / "make_tree.py")
    args = ["--files", "600", "--app-dir", str(app), "--sessions", "20", "-q"]
    subprocess.run(
        [sys.executable, make_tree, str(temp), *args],
        check=True,
        capture_output=True,
    )
    return temp, app


def _prune(columns: int, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "gradio_clean", "prune", *args, *RULES],
        capture_output=True,
        env=cli_env(COLUMNS=str(columns)),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


@pytest.mark.parametrize("columns", [100, 140])
def test_no_plan_row_wraps_and_each_root_is_named_once_per_table(
    bench_tree: tuple[Path, Path], columns: int
) -> None:
    temp, app = bench_tree
    roots = (str(temp), str(app))
    text = _prune(columns, *roots, "--limit", "0")
    plan = json.loads(_prune(columns, *roots, "--json"))
    by_rule = Counter(a["rule"] for a in plan["actions"])
    tables = {(a["rule"], r) for a in plan["actions"] for r in roots if a["path"].startswith(r)}
    assert len(by_rule) == 3 and len(tables) >= 4, "the tree should give every rule rows"

    rows = 0
    for line in text.splitlines():
        assert cell_len(line) <= columns, f"wider than {columns}: {line!r}"
        if not line.strip() or set(line) <= {"─"} or line.startswith(" path "):
            continue
        if line.startswith(tuple(f"{rule}: " for rule in by_rule)):
            continue  # a rule's heading
        if line.rstrip("/") in roots or line.startswith(("Would free", "Would link", "Dry run:")):
            continue
        assert SIZE.search(line), f"a row wrapped onto a line of its own: {line!r}"
        rows += 1
    assert rows == len(plan["actions"])
    for root in roots:
        heading = sum(1 for line in text.splitlines() if line == root + "/")
        assert heading == sum(1 for _, r in tables if r == root)
        assert text.count(root) == heading, "a row repeats its root"


def test_hash_names_are_shortened_in_the_middle_and_full_in_json(
    bench_tree: tuple[Path, Path],
) -> None:
    temp, _ = bench_tree
    text = _prune(140, str(temp), "--limit", "0")
    plan = json.loads(_prune(140, str(temp), "--json"))
    assert not re.search(r"[0-9a-f]{40}", text)
    assert re.search(r"\b[0-9a-f]{8}…[0-9a-f]{4}/", text)
    assert any(re.search(r"/[0-9a-f]{64}", a["path"]) for a in plan["actions"])


def test_bar_draws_a_share_in_eighths_of_a_cell() -> None:
    assert bar(0.0) == " " * 20
    assert bar(1.0) == "█" * 20
    assert bar(0.5) == "█" * 10 + " " * 10
    assert bar(1 / 160) == "▏" + " " * 19
    assert bar(2.0) == bar(1.0) and bar(-1.0) == bar(0.0)


def test_scan_draws_each_category_and_age_bucket_as_a_bar(gradio_tree: GradioTree) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gradio_clean", "scan", str(gradio_tree.temp), str(gradio_tree.app)],
        capture_output=True,
        env=cli_env(COLUMNS="120"),
        check=False,
    )
    text = proc.stdout.decode()
    doc = json.loads(run_cli("scan", "--json", str(gradio_tree.temp), str(gradio_tree.app)).stdout)
    total = sum(r["bytes"] for r in doc["roots"])
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in doc["roots"][0]["categories"] and words[-1].endswith("%"):
            share = float(words[-1][:-1]) / 100
            drawn = "".join(c for c in line if c in "█▏▎▍▌▋▊▉")
            cells = drawn.count("█") + (1 if drawn and drawn[-1] != "█" else 0)
            assert abs(cells - share * 20) <= 1, line
    cat = (
        doc["roots"][0]["categories"]["cache"]["bytes"]
        + doc["roots"][1]["categories"]["cache"]["bytes"]
    )
    assert cat / total > 0.2 and "████" in text
    assert "█" not in run_cli("scan", "--json", str(gradio_tree.temp)).stdout.decode()
