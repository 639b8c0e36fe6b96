"""Every table read at 60, 80 and 120 columns (a narrow tmux pane, a phone's SSH client,
`| cat`): no line wider than the terminal, no number, size or header split over lines or
cut, and each row saying on its own line (or its pair of lines) whose numbers it holds.
Each number is checked against the JSON of the same run."""

from __future__ import annotations

import io
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from gradio_clean.cli import app
from gradio_clean.report import fitted, units
from gradio_clean.summary import size
from tests.conftest import DAY, JS_SESSION, JS_SESSION_FRESH, REPO, UUID_SESSION, write

WIDTHS = [60, 80, 120]
CELL = re.compile(r"\s{2,}")  # rich pads cells with 2 spaces at least; words have 1
HEADERS = {"role", "files", "folders", "size", "on disk", "oldest", "newest", "share"}
KEYS = ("files", "dirs", "bytes")
BLOCKS = "█▏▎▍▌▋▊▉"


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """bench/make_tree.py's temp dir and app dir: every rule has rows, with hash names,
    duplicates across folders, a non-ASCII name and session folders."""
    base = tmp_path_factory.mktemp("widths")
    temp, app_dir = base / "gradio", base / "app"
    args = ["--files", "600", "--app-dir", str(app_dir), "--sessions", "20", "-q"]
    make_tree = str(REPO / "bench" / "make_tree.py")
    subprocess.run([sys.executable, make_tree, str(temp), *args], check=True, capture_output=True)
    return str(temp), str(app_dir)


def invoke(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, columns: int, *args: str) -> str:
    """The command's stdout, each of its lines within `columns`, but for a table's title
    that is a root (a path, never cut short: a terminal folds it)."""
    monkeypatch.setenv("COLUMNS", str(columns))
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    for line in result.stdout.splitlines():
        titled = line.rstrip("/") in args
        assert cell_len(line) <= columns or titled, f"wider than {columns}: {line!r}"
    return result.stdout


def json_of(runner: CliRunner, *args: str) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def cells(line: str) -> list[str]:
    return CELL.split(line.strip())


def section(text: str, start: str, end: str) -> list[str]:
    lines = text.splitlines()
    first = lines.index(start)
    return lines[first : next(i for i in range(first, len(lines)) if lines[i] == end)]


def rows_of(lines: list[str], label: str) -> list[list[str]]:
    """The cells of each line whose first cell is `label` (a split table has one per part)."""
    return [cells(line) for line in lines if cells(line)[0] == label]


def assert_whole(rows: list[list[str]], values: list[str]) -> None:
    """Each value is a cell of one of the rows, whole: not `32.2` over `MiB`."""
    found = {cell for row in rows for cell in row}
    assert rows and set(values) <= found, (values, rows)


@pytest.mark.parametrize("columns", WIDTHS)
def test_scan_says_each_number_whole_on_its_row(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, trees: tuple[str, str], columns: int
) -> None:
    """At 60 columns the Roots table split `32.2 MiB` and `an hour` over two lines and cut
    its headers to `fold…`; the category bar was cut to `███████…`."""
    text = invoke(runner, monkeypatch, columns, "scan", *trees)
    doc = json_of(runner, "scan", *trees)
    roots, lines = doc["roots"], section(text, "Roots", "Filesystems")
    headers = {cell for line in lines for cell in cells(line)} & HEADERS
    assert headers == HEADERS - {"share"}, lines
    for i, root in enumerate(roots, 1):
        rows = [  # the root's number, or its path (folded where long)
            c
            for c in map(cells, lines)
            if c[0] == str(i) or (c[1:2] == [root["role"]] and root["path"].startswith(c[0]))
        ]
        numbers = [root["role"], f"{root['files']:,}", f"{root['dirs']:,}"]
        assert_whole(rows, [*numbers, size(root["bytes"]), size(root["disk_bytes"])])

    (fs,) = doc["filesystems"]
    rows = rows_of(section(text, "Filesystems", "By category"), fs["mount_point"])
    assert_whole(rows, [size(fs["size_bytes"]), size(fs["roots_disk_bytes"])])

    total = sum(r["bytes"] for r in roots)
    lines = section(text, "By category", "By age (mtime)")
    for cat in roots[0]["categories"]:
        files, dirs, nbytes = (sum(r["categories"][cat][k] for r in roots) for k in KEYS)
        if files or dirs:
            share = f"{100 * nbytes / total:.1f}%"
            assert_whole(rows_of(lines, cat), [f"{files:,}", f"{dirs:,}", size(nbytes), share])
            assert_drawn(rows_of(lines, cat), nbytes / total, columns)

    lines = section(text, "By age (mtime)", "Largest hash folders and sessions (top 10)")
    total = sum(b["bytes"] for r in roots for b in r["ages"])
    for i, bucket in enumerate(roots[0]["ages"]):
        files, nbytes = (sum(r["ages"][i][k] for r in roots) for k in ("files", "bytes"))
        share = f"{100 * nbytes / total:.1f}%"
        assert_whole(rows_of(lines, bucket["age"]), [f"{files:,}", size(nbytes), share])

    items = sorted((i for r in roots for i in r["largest"]), key=lambda i: -i["bytes"])[:10]
    lines = text[text.index("Largest hash folders") :].splitlines()
    rows = [cells(line) for line in lines if line.endswith(" ago  ")]
    assert [row[1:-1] for row in rows] == [
        [i["category"], f"{i['files']:,}", size(i["bytes"])] for i in items
    ]


def assert_drawn(rows: list[list[str]], share: float, columns: int) -> None:
    """The bar, where there is one, is drawn whole: never cut by an ellipsis, never longer
    than a full bar, and at full width to scale."""
    (row,) = rows
    bar = row[-2] if len(row) == 6 else ""
    assert "…" not in "".join(row) and set(bar) <= set(BLOCKS) and cell_len(bar) <= 20, row
    if columns >= 120:
        assert abs(bar.count("█") + (bar[-1:] not in ("█", "")) - share * 20) <= 1, row


PRUNE = ("prune", "--age-by", "mtime", "--limit", "0")
RULES = {
    "duplicates": ("--duplicates",),
    "older-than": ("--older-than", "30d"),
    "orphaned-sessions": ("--orphaned-sessions",),
}


def plan_rows(text: str) -> list[list[str]]:
    """Each plan row's cells; a path stacked over its copy (`→ copy`) adds that as a cell."""
    rows: list[list[str]] = []
    inside = False
    for line in text.splitlines():
        if set(line.strip()) == {"─"}:
            inside = True
        elif not line.startswith(" ") or not line.strip():
            inside = False
        elif inside and line.startswith(" → "):
            rows[-1].append(line.strip()[2:])
        elif inside:
            rows.append(cells(line))
    return rows


def pattern(cut: str) -> re.Pattern[str]:
    """What a cut path can stand for: each ellipsis any run of characters."""
    return re.compile(".*".join(re.escape(part) for part in cut.split("…")))


def rel(path: str, roots: tuple[str, ...]) -> str:
    return next(path[len(r) + 1 :] for r in roots if path.startswith(r + "/"))


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("rule", RULES)
def test_each_plan_row_names_its_entry_and_its_size_whole(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    trees: tuple[str, str],
    columns: int,
    rule: str,
) -> None:
    """At 60 columns a duplicate and the copy that stays got 8 cells each (`8…e/fi…t`
    beside `1…6/im…p`), and the header read `copy th…`. Now a row names its file, and the
    copy's, whole after their hash folders' ends, on one line or a pair of lines."""
    args = (*PRUNE, *RULES[rule], *trees)
    text = invoke(runner, monkeypatch, columns, *args)
    actions = json_of(runner, *args)["actions"]
    rows = plan_rows(text)
    assert len(rows) == len(actions) > 3
    assert "…" not in "".join(line for line in text.splitlines() if line.startswith(" path "))
    for row in rows:
        path, category, said = row[:3]
        found = [
            a
            for a in actions
            if pattern(path.rstrip("/")).fullmatch(rel(a["path"], trees))
            and (a["category"], size(a["bytes"])) == (category, said)
            and (rule != "duplicates" or pattern(row[-1]).fullmatch(rel(a["keep"], trees)))
        ]
        assert found, row
        if rule == "duplicates":  # a short name stays whole, beside its hash folder's ends
            for cut, full in ((path, found[0]["path"]), (row[-1], found[0]["keep"])):
                name = full.rsplit("/", 1)[-1]
                assert cell_len(name) > 12 or cut.endswith("/" + name), (cut, full)


def test_session_duplicates_are_shown_beside_their_copy_at_any_width(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The table of duplicates shown only said its reason on each row, in a column that
    folded over 7 lines at 80 columns and 15 at 60; the summary says it once."""
    state = b'{"step": 1}' * 200
    for i, session in enumerate((UUID_SESSION, JS_SESSION, JS_SESSION_FRESH)):
        write(tmp_path / "app" / session / "state.json", state, age=(2 - i) * DAY)
    args = ("prune", "--duplicates", str(tmp_path / "app"))
    doc = json_of(runner, *args)
    root = (str(tmp_path / "app"),)
    reported = {(rel(r["path"], root), rel(r["keep"], root)) for r in doc["reported"]}
    assert len(reported) == 2
    for columns in WIDTHS:
        text = invoke(runner, monkeypatch, columns, *args)
        rows = plan_rows(text)
        assert {(row[1], row[2]) for row in rows} == {("session", size(len(state)))}
        pairs = {
            next(p for p in reported if pattern(row[0]).fullmatch(p[0]))
            for row in rows
            if pattern(row[-1]).fullmatch(JS_SESSION_FRESH + "/state.json")
        }
        assert pairs == reported, (rows, reported)
        assert text.count("never linked") == 1  # said in the summary, not on each row


# -- fitted, the splitting itself ------------------------------------------------------

word = st.text("abcdefghij ,.%", min_size=1, max_size=12).map(str.strip).filter(bool)


@given(
    st.integers(2, 9).flatmap(
        lambda n: st.tuples(
            st.lists(word, min_size=n, max_size=n),
            st.lists(st.lists(word, min_size=n, max_size=n), min_size=1, max_size=4),
        )
    ),
    st.integers(20, 160),
)
def test_fitted_tables_fit_and_hold_every_cell_once(
    table: tuple[list[str], list[list[str]]], width: int
) -> None:
    """Each column in one part only, the first in all of them; a part is wider than the
    console only where its first column and one other are."""
    headers, rows = table
    parts = fitted(headers, rows, Console(width=width, color_system=None))
    seen: list[str] = []
    for part in parts:
        names = [str(c.header) for c in part.columns]
        assert names[0] == headers[0]
        seen += names[1:]
        if len(names) > 2:  # drawn as wide as it likes: no narrower than the console
            drawn = io.StringIO()
            Console(width=10_000, color_system=None, file=drawn).print(part)
            assert max(map(cell_len, drawn.getvalue().splitlines())) <= width
    assert seen == headers[1:]


@given(st.lists(st.sampled_from(["7", "1,487", "5.8", "MiB", "Bytes", "(1", "KiB.", " ", "a"])))
def test_units_give_the_line_back_and_keep_each_size_whole(words: list[str]) -> None:
    line = " ".join(words)
    said = units(line)
    assert " ".join(said) == line
    for before, unit in itertools.pairwise(said):
        assert not (before[-1:].isdigit() and re.match(r"(Bytes|MiB|KiB)\b", unit)), said
