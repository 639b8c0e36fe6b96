"""A path too wide for its column is cut where it tells least (the new-user walkthrough):
the root's folders first (a table's title names the root), then the folders between,
then the middle of a hash name; the name stays whole whenever it fits. A dry run and
apply's result cut each path alike, so the two read line by line."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from gradio_clean.cli import app
from tests.conftest import DAY, hold, set_age, write

# Three hash folders that differ only at an end: the first digit, or the last one.
HASHES = (
    "1234567" + "0" * 56 + "a",
    "9234567" + "0" * 56 + "a",
    "1234567" + "0" * 56 + "b",
)
LONG = "generated_output_{}_of_many_long_name.webp"
H = "90a1cc9a" + "3" * 52 + "c6be"


def deep_temp(base: Path) -> Path:
    """A temp dir under a long path: in each hash folder an old image, an old file with a
    long name and a fresh file (so the old ones are planned one by one), and a tmp file."""
    temp = base / "srv" / "very-long-application-name" / "gradio-temporary-files"
    for i, name in enumerate(HASHES):
        write(temp / name / "image.png", b"x" * 1000 * (i + 1), age=40 * DAY)
        write(temp / name / LONG.format(i), b"y" * 1000 * (i + 1), age=40 * DAY)
        write(temp / name / "fresh.txt", b"new")
    write(temp / "tmpq1w2e3r4.mp4", b"z" * 10, age=40 * DAY)
    return temp


def invoke(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, columns: int, *args: str) -> str:
    monkeypatch.setenv("COLUMNS", str(columns))
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def path_cells(text: str, columns: int) -> list[str]:
    """The first cell of each row of the tables (the lines after a table's rule line),
    each row within `columns`."""
    cells, inside = [], False
    for line in text.splitlines():
        if set(line.strip()) == {"─"}:
            inside = True
        elif not line.strip() or not line.startswith(" "):
            inside = False
        elif inside:
            assert cell_len(line) <= columns, f"wider than {columns}: {line!r}"
            cells.append(line.split()[0])
    return cells


def pattern(cut: str) -> re.Pattern[str]:
    """What a cut path can stand for: each ellipsis any run of characters."""
    return re.compile(".*".join(re.escape(part) for part in cut.split("…")))


def assert_each_row_names_its_entry(cells: list[str], entries: list[str]) -> None:
    """Every row reads as exactly one entry, and each entry has its own row."""
    matched = []
    for cut in cells:
        found = [e for e in entries if pattern(cut).fullmatch(e)]
        assert len(found) == 1, f"{cut!r} reads as {found}"
        matched.append(found[0])
    assert sorted(matched) == sorted(entries)
    assert all(part.count("…") <= 1 for cut in cells for part in cut.split("/")), cells


PRUNE = ("prune", "--older-than", "1d", "--age-by", "mtime", "--limit", "0")


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_a_dry_run_row_names_its_entry_at_any_width(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, columns: int
) -> None:
    """The hash folders differ only at one end: cutting a row in its middle, or keeping
    the root's path, made two rows read alike (`12345670…000…g_name.webp`)."""
    temp = deep_temp(tmp_path)
    text = invoke(runner, monkeypatch, columns, *PRUNE, str(temp))
    doc = json.loads(invoke(runner, monkeypatch, columns, *PRUNE, "--json", str(temp)))
    entries = [a["path"][len(str(temp)) + 1 :] for a in doc["actions"]]
    assert len(entries) == 7
    assert_each_row_names_its_entry(path_cells(text, columns), entries)
    assert text.count(str(temp)) == 1  # the title, never a row


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_the_scan_largest_table_drops_the_root_before_the_hash(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, columns: int
) -> None:
    temp = deep_temp(tmp_path)
    text = invoke(runner, monkeypatch, columns, "scan", "--top", "3", str(temp))
    largest = text[text.index("Largest hash folders") :]
    cells = path_cells(largest, columns)
    assert len(cells) == 3
    assert_each_row_names_its_entry(cells, [str(temp / h) for h in HASHES])


ORPHANED = ("prune", "--orphaned-sessions", "--age-by", "mtime", "--limit", "0")


@pytest.mark.parametrize("columns", [60, 80, 120])
@pytest.mark.parametrize("rules", [PRUNE, ORPHANED], ids=["older-than", "orphaned"])
def test_apply_cuts_each_path_as_its_dry_run_did(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    columns: int,
    rules: tuple[str, ...],
) -> None:
    """Apply's status column used to take its room from the paths: the same entry read
    `90a1cc9a…c6be/generate…f_many_long_name.webp` in the dry run and
    `90a1cc9a…c6be/gen…y_long_name.webp` after it. With --orphaned-sessions the rows'
    reasons differ, so the table has a reason column too."""
    temp = deep_temp(tmp_path)
    for name in HASHES:  # what a killed run left: the claims alone, and a staging copy
        write(temp / name / ".gradio-clean-0123456789ab.del", b"c", age=40 * DAY)
        write(temp / name / f".{LONG.format(9)}.ab12cd34", b"s", age=40 * DAY)
    write(temp / "tmpab12cd34" / LONG.format(8), b"ffmpeg", age=40 * DAY)
    set_age(temp / "tmpab12cd34", 40 * DAY)  # a whole folder, for a reason of its own
    (temp / H).mkdir()
    set_age(temp / H, 40 * DAY)  # an empty hash folder: another reason
    dry = invoke(runner, monkeypatch, columns, *rules, str(temp))
    applied = invoke(runner, monkeypatch, columns, *rules, "--apply", "--yes", str(temp))
    count = len(path_cells(dry, columns))
    assert count >= 7 and applied.count(" deleted") == count
    assert ("reason" in dry) is (rules == ORPHANED)
    assert path_cells(applied, columns) == path_cells(dry, columns)


def test_duplicates_cut_the_copy_that_stays_as_the_copy(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two path columns share the room; each cell still names its file."""
    temp = tmp_path / "srv" / "very-long-application-name" / "gradio-temporary-files"
    for name in HASHES:
        write(temp / name / LONG.format(0), b"same bytes" * 100, age=2 * DAY)
    args = ("prune", "--duplicates", "--keep", "oldest", str(temp))
    text = invoke(runner, monkeypatch, 80, *args)
    doc = json.loads(invoke(runner, monkeypatch, 80, *args, "--json"))
    assert len(path_cells(text, 80)) == 2
    rows = [line.split() for line in text.splitlines() if " cache " in line]
    pairs = [(a["path"], a["keep"]) for a in doc["actions"]]
    assert len(rows) == len(pairs) == 2
    for copy, *_, keep in rows:
        found = [
            (p, k)
            for p, k in pairs
            if pattern(f"…/{copy}").fullmatch(p) and pattern(f"…/{keep}").fullmatch(k)
        ]
        assert len(found) == 1, (copy, keep)


@pytest.mark.parametrize("columns", [100, 160, 200])
def test_a_skip_reason_is_said_on_one_line_where_room_allows(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    holder: list[subprocess.Popen[bytes]],
    columns: int,
) -> None:
    """The status column had only len('skipped') cells: a skip's reason wrapped over 5 to 7
    lines, splitting the file's name, even at 160 columns (the new-user walkthrough)."""
    temp = deep_temp(tmp_path)
    busy = temp / HASHES[1] / "image.png"
    pid = hold(
        holder,
        f"import time\nf = open({str(busy)!r}, 'rb')\nprint('ready', flush=True)\ntime.sleep(120)",
    )
    monkeypatch.setenv("COLUMNS", str(columns))
    args = ["prune", "--older-than", "30d", "--age-by", "mtime", str(temp)]
    dry = runner.invoke(app, args)
    applied = runner.invoke(app, [*args, "--apply", "--yes"])
    assert (dry.exit_code, applied.exit_code) == (0, 3), dry.output + applied.output
    if columns >= 160:  # at 100 the reason gets a third of the room, and folds in it
        for out, said in ((dry.stdout, "skip"), (applied.stdout, "skipped")):
            assert re.search(rf" {said}: open by process {pid} \(\S+\)\s*$", out, re.M), out
    assert path_cells(applied.stdout, columns) == path_cells(dry.stdout, columns)
