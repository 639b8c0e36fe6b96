"""The renderers: printable paths, valid JSON, dates that cannot crash, tables with numbers."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from gradio_clean.classify import Category, Role
from gradio_clean.cli import app
from gradio_clean.documents import dump_json, iso, iso_ns, prune_to_dict, scan_to_dict
from gradio_clean.report import render_scan, render_warnings
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from gradio_clean.scan import ScanResult, scan
from gradio_clean.summary import age
from gradio_clean.text import jsonable, shown
from tests.conftest import SHA256_A, SHA256_B, GradioTree, invoke_unprivileged, write


def console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=1000, color_system=None), buffer


def scan_tree(tree: GradioTree) -> ScanResult:
    return scan(
        [Root(str(tree.temp), Role.TEMP, "test"), Root(str(tree.app), Role.APP, "test")],
        now=time.time(),
    )


# -- paths ----------------------------------------------------------------------------


@given(st.binary(min_size=1, max_size=60))
@example(b"caf\xe9")
@example(b"\xff\xfe")
@example("naïve 日本.png".encode())
def test_any_name_becomes_printable_valid_utf8(raw: bytes) -> None:
    name = os.fsdecode(raw)
    assert jsonable(name) == raw.decode("utf-8", "backslashreplace")
    out = shown(name)
    assert out.isprintable()  # no newline, carriage return or ESC reaches a terminal
    out.encode("utf-8")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        assert "\\x" in out
    else:
        if decoded.isprintable():
            assert out == decoded  # printable UTF-8 is left alone


def test_json_keeps_unicode_and_escapes_only_bad_bytes() -> None:
    doc = {"path": jsonable(os.fsdecode("naïve/".encode() + b"caf\xe9"))}
    text = dump_json(doc)
    assert "naïve/caf\\\\xe9" in text
    assert json.loads(text.encode("utf-8"))["path"] == "naïve/caf\\xe9"


def test_warnings_with_undecodable_paths_make_valid_json(tmp_path: Path) -> None:
    """A warning's message carries no path of its own: the path is in `path`, escaped."""
    missing = os.fsdecode(os.fsencode(tmp_path) + b"/gone-\xe9")
    result = scan([Root(missing, Role.TEMP, "test")])
    text = dump_json(scan_to_dict(result))
    doc = json.loads(text.encode("utf-8"))  # strict UTF-8 all the way
    assert doc["warnings"] == [
        {"path": str(tmp_path) + "/gone-\\xe9", "message": "no such directory"}
    ]
    out, buffer = console()
    render_warnings(((w.path, w.message) for w in result.warnings), 0, out)
    assert buffer.getvalue() == f"warning: {tmp_path}/gone-\\xe9: no such directory\n"


def test_dropped_warnings_are_counted() -> None:
    out, buffer = console()
    render_warnings([("/a", "permission denied")], 1234, out)
    assert buffer.getvalue().splitlines() == [
        "warning: /a: permission denied",
        "warning: 1,234 more warnings not shown",
    ]


# -- dates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (None, None),
        (0, "1970-01-01T00:00:00+00:00"),
        (1.999, "1970-01-01T00:00:01+00:00"),
        (-1, "1969-12-31T23:59:59+00:00"),
        (1_700_000_000, "2023-11-14T22:13:20+00:00"),
        (253402300799, "9999-12-31T23:59:59+00:00"),
        (2**40, "9999-12-31T23:59:59+00:00"),  # tmpfs keeps any int64 second
        (9.2e18, "9999-12-31T23:59:59+00:00"),
        (-(2**40), "0001-01-01T00:00:00+00:00"),
        (-9.2e18, "0001-01-01T00:00:00+00:00"),
    ],
)
def test_iso_never_raises(ts: float | None, text: str | None) -> None:
    assert iso(ts) == text


SECOND = 10**9


@given(
    st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.integers(min_value=0, max_value=2**32).map(lambda s: s * SECOND - 1),
        st.integers(min_value=0, max_value=2**32).flatmap(
            lambda s: st.integers(min_value=s * SECOND - 20_000, max_value=s * SECOND + 20_000)
        ),
        st.integers(min_value=1_600_000_000 * SECOND, max_value=2_000_000_000 * SECOND),
    )
)
@example(0)
@example(SECOND - 10_001)  # the last nanosecond iso_ns formats itself, and the first after
@example(SECOND - 10_000)
@example(2**32 * SECOND - 1)
@example(2**32 * SECOND)
@example(253402300799 * SECOND + SECOND - 1)
def test_iso_ns_writes_what_iso_writes(ns: int) -> None:
    """prune --json's per-action dates, made from a cached day: byte for byte iso's."""
    assert iso_ns(ns) == iso(ns / 1e9)


def test_prune_json_rows_say_what_the_actions_hold(tmp_path: Path) -> None:
    """The rows are read from the plan's columns; each says what its Action says."""
    root = tmp_path / "temp"
    name = os.fsdecode(b'caf\xe9 "q".bin')
    write(root / SHA256_A / name, b"same" * 100, age=40 * 86400)
    write(root / SHA256_B / "copy.bin", b"same" * 100, age=3 * 86400)
    write(root / SHA256_A / "young.bin", b"young", age=86400)  # so the old name goes alone
    write(root / SHA256_B / "copy2.bin", b"same" * 100, age=4 * 86400)
    write(root / "tmpab12cd34", b"x", age=50 * 86400)
    rules = RuleSet(older_than=30 * 86400.0, age_by=AgeBy.MTIME, duplicates=True)
    plan = build_plan([Root(str(root), Role.TEMP, "test")], rules, now=time.time(), jobs=1)
    assert len(plan.actions) == 3  # an old file, a duplicate, a leftover
    rows = list(prune_to_dict(plan, None, {})["actions"])
    expected = []
    for a in plan.actions:
        row = {
            "path": jsonable(a.path),
            "rule": a.rule.value,
            "category": a.category.value,
            "type": "folder" if a.is_dir else "file",
            "bytes": a.bytes,
            "files": a.files,
            "status": "planned",
            "reason": a.reason,
            "detail": None,
            "mtime": iso(a.newest_ns / 1e9),
            "age_from": None if a.age_ns is None else iso(a.age_ns / 1e9),
        }
        if a.keep is not None:
            row.update(keep=jsonable(a.keep), dedupe="hardlink")
        expected.append(row)
    assert rows == expected
    assert "caf\\xe9" in rows[0]["path"] and rows[1]["keep"].endswith("/copy.bin")
    text = dump_json(prune_to_dict(plan, None, {}))
    assert json.loads(text.encode("utf-8"))["actions"] == expected


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (None, "-"),
        (1000.0, "a moment"),  # in the future: no negative ages
        (1000.0 - 3 * 3600, "3 hours"),
        (1000.0 - 86400, "1 day"),
        (1000.0 - 20 * 86400, "20 days"),  # humanize says "a month"
        (1000.0 - 59.9 * 86400, "59 days"),
        (1000.0 - 61 * 86400, "2 months"),
        (-(2**40), "34,865 years"),
        (-9.2e18, "317,098 years"),  # clamped, not an OverflowError
    ],
)
def test_age_never_raises(ts: float | None, text: str) -> None:
    assert age(ts, 1000.0) == text


@pytest.fixture
def wide_time_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder whose filesystem keeps mtimes datetime cannot hold (tmpfs, btrfs)."""
    candidates = [tmp_path, Path("/dev/shm")]
    for base in candidates:
        if not base.is_dir() or not os.access(base, os.W_OK):
            continue
        folder = Path(tempfile.mkdtemp(dir=base))
        probe = write(folder / "probe")
        os.utime(probe, (2**40, 2**40))
        kept = os.stat(probe).st_mtime == 2**40
        probe.unlink()
        if kept:
            try:
                yield folder
            finally:
                if base != tmp_path:
                    shutil.rmtree(folder)
            return
    pytest.skip("no filesystem here keeps an mtime beyond year 9999 (ext4 clamps to 2446)")


def test_far_future_and_far_past_mtimes_do_not_crash_the_scan(
    wide_time_dir: Path, runner: CliRunner
) -> None:
    temp = wide_time_dir / "temp"
    future = write(temp / SHA256_A / "future.bin", b"12")
    past = write(temp / SHA256_A / "past.bin", b"345")
    write(temp / SHA256_B / "now.bin", b"6")
    os.utime(future, (2**40, 2**40))
    os.utime(past, (-(2**40), -(2**40)))
    result = runner.invoke(app, ["scan", "--json", str(temp)])
    assert result.exit_code == 0, result.output
    root = json.loads(result.stdout)["roots"][0]
    assert (root["oldest"], root["newest"]) == (
        "0001-01-01T00:00:00+00:00",
        "9999-12-31T23:59:59+00:00",
    )
    assert [(a["files"], a["bytes"]) for a in root["ages"]] == [
        (2, 3),  # now.bin, and future.bin: nothing is younger than now
        (0, 0),
        (0, 0),
        (0, 0),
        (1, 3),
    ]
    result = runner.invoke(app, ["scan", str(temp)])
    assert result.exit_code == 0, result.output
    assert re.search(r"\b3\d,\d{3} years", result.stdout)  # the oldest: about 34,900 years


# -- tables -----------------------------------------------------------------------------


def row(text: str, first: str) -> list[str]:
    """The cells of the table line that starts with `first`."""
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{text}")


def test_render_scan_shows_the_numbers_of_the_result(gradio_tree: GradioTree) -> None:
    result = scan_tree(gradio_tree)
    out, buffer = console()
    render_scan(result, out, top=3)
    text = buffer.getvalue()
    temp, app_root = result.roots

    assert row(text, str(gradio_tree.temp))[:4] == [str(gradio_tree.temp), "temp", "14", "9"]
    assert row(text, str(gradio_tree.app))[:4] == [str(gradio_tree.app), "app", "12", "13"]
    total = temp.bytes + app_root.bytes
    for cat in Category:
        files = temp.categories[cat].files + app_root.categories[cat].files
        nbytes = temp.categories[cat].bytes + app_root.categories[cat].bytes
        share = f"{100 * nbytes / total:.1f}%"
        assert row(text, cat.value)[1] == str(files)
        assert row(text, cat.value)[-1] == share
    for i, label in enumerate(["< 1 h", "1 h - 1 d", "1 - 7 d", "7 - 30 d", "> 30 d"]):
        files = temp.ages[i].files + app_root.ages[i].files
        assert row(text, label)[1] == f"{files:,}"
    assert row(text, "> 30 d")[1] == "1"  # the sha1 report, 40 days old
    assert "Largest hash folders and sessions (top 3)" in text
    assert (
        "1 symlink (not followed); 1 FIFO/socket/device (not opened); "
        "1 extra hard link (counted once)"
    ) in text


def test_render_scan_of_nothing(gradio_tree: GradioTree) -> None:
    out, buffer = console()
    render_scan(scan([]), out, top=10)
    text = buffer.getvalue()
    assert "Roots" in text
    assert "Largest" not in text
    assert "0 symlinks" in text


def test_table_prints_undecodable_root_paths_escaped(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    raw = os.fsencode(tmp_path) + b"/\xe9t\xe9"
    os.makedirs(raw + b"/" + SHA256_A.encode())
    with open(raw + b"/" + SHA256_A.encode() + b"/f", "wb") as f:
        f.write(b"1")
    result = scan([Root(os.fsdecode(raw), Role.TEMP, "test")])
    out, buffer = console()
    render_scan(result, out, top=10)
    assert f"{tmp_path}/\\xe9t\\xe9" in buffer.getvalue()
    assert f"{tmp_path}/\\xe9t\\xe9/{SHA256_A[:8]}…{SHA256_A[-4:]}" in buffer.getvalue()
    cli = runner.invoke(app, ["scan", os.fsdecode(raw)])
    assert cli.exit_code == 0, cli.output
    assert f"{tmp_path}/\\xe9t\\xe9" in cli.stdout


def test_json_is_valid_utf8_when_a_message_holds_an_undecodable_name(tmp_path: Path) -> None:
    """An OSError's filename is a raw name; it can reach a message (prune's detail)."""
    with pytest.raises(OSError) as caught:
        os.unlink(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.bin"))
    exc = caught.value
    detail = f"{exc.strerror} ({exc.filename})"
    text = dump_json({"actions": [{"detail": detail, "bytes": 3}], "note": ("naïve", None)})
    doc = json.loads(text.encode("utf-8"))  # strict
    assert doc == {
        "actions": [{"detail": f"No such file or directory ({tmp_path}/caf\\xe9.bin)", "bytes": 3}],
        "note": ["naïve", None],
    }


def test_prune_json_survives_a_failed_delete_of_an_undecodable_name(world_dir: Path) -> None:
    """As another user, deleting from a shared cache fails; the JSON must still print."""
    temp, scratch = world_dir / "temp", world_dir / "scratch"
    name = os.fsdecode(b"caf\xe9.bin")
    for root in (temp, scratch):
        write(root / SHA256_A / name, b"x", age=10 * 86400)
    apply = ["prune", "--older-than", "1d", "--age-by", "mtime", "--apply", "--yes", "--json"]
    # the warm-up, run as root, deletes from a copy: the same code runs, and so
    # loads what it imports lazily before the unprivileged child needs it
    result = invoke_unprivileged([*apply, str(temp)], warm_up=[*apply, str(scratch)])
    assert result.crash is None, result.crash
    doc = json.loads(result.stdout)
    # refused up front (skipped: no permission to empty it) or failed midway
    details = [a["detail"] for a in doc["actions"] if a["status"] in ("failed", "skipped")]
    assert details, doc["actions"]
    assert all("\udce9" not in d for d in details)
    assert (temp / SHA256_A / name).exists()


def test_scan_never_cuts_a_root_path_when_not_a_terminal(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scan | cat`, cron mail, CI logs: 80 columns, and the path must survive whole."""
    root = tmp_path / ("a-long-folder-name-" * 3) / "final-part-of-the-root"
    write(root / SHA256_A / "f.bin", b"x")
    layouts = set()
    for columns in ("80", "100", "140"):
        monkeypatch.setenv("COLUMNS", columns)
        result = runner.invoke(app, ["scan", str(root)])  # CliRunner's stdout is no terminal
        assert result.exit_code == 0, result.output
        lines = result.stdout.split("By category")[0].splitlines()
        assert not any("…" in line for line in lines), lines
        if any(str(root) in line for line in lines):  # on a line of its own
            layouts.add("line")
            continue
        header = next(i for i, line in enumerate(lines) if " role " in line)
        width = lines[header].index("role")
        folded = "".join(line[:width].strip() for line in lines[header + 2 :])
        assert str(root) in folded, lines
        layouts.add("folded")
    assert layouts == {"line", "folded"}
