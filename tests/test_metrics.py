"""Metrics: exact text, a strict exposition-format parse, the carried-over success, atomicity."""

from __future__ import annotations

import os
import re
import stat
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradio_clean.classify import Category
from gradio_clean.errors import GradioCleanError
from gradio_clean.metrics import (
    LAST_SUCCESS,
    Count,
    RunMetrics,
    read_last_success,
    render_metrics,
    write_metrics,
)
from gradio_clean.plan import Rule

# -- a strict parser for the text exposition format (what node_exporter reads) ----------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
_LABEL = rf"[a-zA-Z_][a-zA-Z0-9_]*={_LABEL_VALUE}"
_FLOAT = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?Inf|NaN"
_SAMPLE = re.compile(rf"({_NAME})(?:\{{((?:{_LABEL})(?:,{_LABEL})*)?\}})? ({_FLOAT})")
_LABEL_RE = re.compile(rf"([a-zA-Z_][a-zA-Z0-9_]*)=({_LABEL_VALUE})")
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}

Series = tuple[str, frozenset[tuple[str, str]]]


@dataclass
class Exposition:
    samples: dict[Series, float] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, frozenset(labels.items()))]


def parse_exposition(text: str) -> Exposition:
    """Refuses anything node_exporter's textfile collector would refuse, and more.

    No sample timestamps (the collector rejects them), HELP and TYPE at most once
    and before the samples, a metric's samples together, no series twice.
    """
    assert text.endswith("\n"), "the last line must end with a newline"
    doc = Exposition()
    seen_names: list[str] = []
    for n, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {n}: {line!r}"
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            kind, name, rest = line[2:6], *line[7:].split(" ", 1)
            assert re.fullmatch(_NAME, name), where
            assert name not in seen_names, f"{kind} after samples of {name}, {where}"
            table = doc.helps if kind == "HELP" else doc.types
            assert name not in table, f"second {kind}, {where}"
            if kind == "TYPE":
                assert rest in {"counter", "gauge", "histogram", "summary", "untyped"}, where
            else:
                assert re.fullmatch(r"(?:[^\\\n]|\\[\\n])*", rest), where
            table[name] = rest
            continue
        assert not line.startswith("#") or line.startswith("# "), where
        if line.startswith("#"):
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, f"not a sample without timestamp, {where}"
        name, label_text, value = match.groups()
        labels = frozenset(
            (k, re.sub(r'\\[\\"n]', lambda e: _UNESCAPE[e.group()], v[1:-1]))
            for k, v in _LABEL_RE.findall(label_text or "")
        )
        assert len(labels) == len(_LABEL_RE.findall(label_text or "")), f"repeated label, {where}"
        if seen_names and seen_names[-1] != name:
            assert name not in seen_names, f"samples of {name} not together, {where}"
        if not seen_names or seen_names[-1] != name:
            seen_names.append(name)
        assert (name, labels) not in doc.samples, f"series twice, {where}"
        doc.samples[(name, labels)] = float(value)
    return doc


def test_the_parser_refuses_what_it_should() -> None:
    for bad in (
        "x 1",  # no final newline
        "x 1 1700000000000\n",  # a timestamp
        'x{a="1"} 1\ny 1\nx{a="2"} 1\n',  # x split in two
        "x 1\nx 2\n",  # same series twice
        "x 1\n# TYPE x gauge\n",  # TYPE after samples
        'x{a="\\q"} 1\n',  # bad escape
        "x one\n",
        "#HELP x y\n",
    ):
        with pytest.raises(AssertionError):
            parse_exposition(bad)


# -- rendering ------------------------------------------------------------------------------

RUN = RunMetrics(
    scanned={Category.CACHE: Count(files=3, bytes=3000), "session": Count(files=2, bytes=20)},
    freed={Rule.DUPLICATES: Count(files=1, bytes=1000)},
    skipped=2,
    failed=1,
    duration_seconds=1.25,
    success=True,
    timestamp=1_700_000_000.5,
)


def test_exact_text() -> None:
    text = render_metrics(RUN)
    assert text.startswith(
        "# HELP gradio_clean_scanned_bytes Bytes in regular files found by the last run.\n"
        "# TYPE gradio_clean_scanned_bytes gauge\n"
        'gradio_clean_scanned_bytes{category="cache"} 3000\n'
        'gradio_clean_scanned_bytes{category="leftover"} 0\n'
        'gradio_clean_scanned_bytes{category="session"} 20\n'
    )
    assert text.endswith(
        "# HELP gradio_clean_last_success_timestamp_seconds"
        " When the last successful run ended; 0 if none has.\n"
        "# TYPE gradio_clean_last_success_timestamp_seconds gauge\n"
        "gradio_clean_last_success_timestamp_seconds 1700000000.5\n"
    )
    assert "gradio_clean_duration_seconds 1.25\n" in text
    assert "gradio_clean_success 1\n" in text


def test_parses_with_every_value_and_every_category_and_rule() -> None:
    doc = parse_exposition(render_metrics(RUN))
    assert all(name.startswith("gradio_clean_") for name, _ in doc.samples)
    assert set(doc.types.values()) == {"gauge"}
    assert doc.types.keys() == doc.helps.keys() == {name for name, _ in doc.samples}
    for cat in Category:
        expected = {"cache": 3000, "session": 20}.get(cat.value, 0)
        assert doc.value("gradio_clean_scanned_bytes", category=cat.value) == expected
    assert doc.value("gradio_clean_scanned_files", category="cache") == 3
    for rule in Rule:
        assert doc.value("gradio_clean_freed_bytes", rule=rule.value) == (
            1000 if rule is Rule.DUPLICATES else 0
        )
    assert doc.value("gradio_clean_freed_files", rule="duplicates") == 1
    assert doc.value("gradio_clean_skipped_entries") == 2
    assert doc.value("gradio_clean_failed_entries") == 1
    assert doc.value("gradio_clean_duration_seconds") == 1.25
    assert doc.value("gradio_clean_success") == 1
    assert doc.value("gradio_clean_last_run_timestamp_seconds") == 1_700_000_000.5
    assert doc.value(LAST_SUCCESS) == 1_700_000_000.5


@given(
    st.dictionaries(st.text(min_size=1, max_size=8), st.integers(0, 2**63)),
    st.floats(min_value=0, allow_infinity=False),
)
def test_any_label_value_and_number_survive_a_parse(rules: dict[str, int], duration: float) -> None:
    m = RunMetrics(
        scanned={},
        freed={k: Count(files=v, bytes=v) for k, v in rules.items()},
        skipped=0,
        failed=0,
        duration_seconds=duration,
        success=False,
        timestamp=0.0,
    )
    doc = parse_exposition(render_metrics(m))
    for k, v in rules.items():
        if k not in {r.value for r in Rule}:
            assert doc.value("gradio_clean_freed_bytes", rule=k) == float(v)
    assert doc.value("gradio_clean_duration_seconds") == duration


# -- writing --------------------------------------------------------------------------------


def failed(at: float) -> RunMetrics:
    return RunMetrics({}, {}, 0, 3, 0.5, success=False, timestamp=at)


def succeeded(at: float) -> RunMetrics:
    return RunMetrics({}, {}, 0, 0, 0.5, success=True, timestamp=at)


def test_written_file_is_the_rendering_readable_by_all_and_alone(tmp_path: Path) -> None:
    path = tmp_path / "gradio_clean.prom"
    old = os.umask(0o077)
    try:
        write_metrics(str(path), RUN)
    finally:
        os.umask(old)
    assert path.read_text() == render_metrics(RUN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == ["gradio_clean.prom"]


def test_a_failed_run_keeps_the_last_success(tmp_path: Path) -> None:
    path = str(tmp_path / "gradio_clean.prom")
    write_metrics(path, failed(100.0))
    assert parse_exposition(Path(path).read_text()).value(LAST_SUCCESS) == 0
    write_metrics(path, succeeded(200.0))
    write_metrics(path, failed(300.0))
    write_metrics(path, failed(400.0))
    doc = parse_exposition(Path(path).read_text())
    assert doc.value(LAST_SUCCESS) == 200.0
    assert doc.value("gradio_clean_last_run_timestamp_seconds") == 400.0
    assert doc.value("gradio_clean_success") == 0
    assert doc.value("gradio_clean_failed_entries") == 3
    write_metrics(path, succeeded(500.0))
    assert read_last_success(path) == 500.0


@pytest.mark.parametrize(
    "previous",
    [
        b"",
        b"garbage\x00\xff\n",
        f"{LAST_SUCCESS} soon\n".encode(),
        f"{LAST_SUCCESS} NaN\n".encode(),
    ],
)
def test_an_unreadable_previous_file_means_no_success_yet(tmp_path: Path, previous: bytes) -> None:
    path = tmp_path / "gradio_clean.prom"
    path.write_bytes(previous)
    write_metrics(str(path), failed(100.0))
    assert parse_exposition(path.read_text()).value(LAST_SUCCESS) == 0


# Audit hooks see the real os.replace call, so the test needs no stand-in for our code.
_renames: list[tuple[str, str]] = []
_recording = threading.Event()


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "os.rename" and _recording.is_set():
        _renames.append((os.fsdecode(args[0]), os.fsdecode(args[1])))  # type: ignore[arg-type]


sys.addaudithook(_audit)


@pytest.fixture
def renames() -> Iterator[list[tuple[str, str]]]:
    _renames.clear()
    _recording.set()
    try:
        yield _renames
    finally:
        _recording.clear()


def test_the_file_is_renamed_into_place_from_a_hidden_temp_beside_it(
    tmp_path: Path, renames: list[tuple[str, str]]
) -> None:
    path = tmp_path / "gradio_clean.prom"
    path.write_text("old\n")
    with path.open() as before:  # a reader that opened the old file keeps reading it whole
        write_metrics(str(path), RUN)
        assert before.read() == "old\n"
    assert len(renames) == 1
    src, dst = renames[0]
    assert dst == str(path)
    assert os.path.dirname(src) == str(tmp_path)  # same folder, so same filesystem
    assert os.path.basename(src).startswith(".gradio_clean.prom.")
    assert not src.endswith(".prom")  # the collector's *.prom glob never picks it up
    assert not os.path.exists(src)


def test_readers_only_ever_see_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "gradio_clean.prom"
    big = RunMetrics(
        scanned={f"extra-{i}": Count(i, i) for i in range(2000)},
        freed={},
        skipped=0,
        failed=0,
        duration_seconds=1.0,
        success=True,
        timestamp=1.0,
    )
    versions = {render_metrics(big), render_metrics(RUN)}
    write_metrics(str(path), RUN)
    stop = threading.Event()
    seen: list[str] = []

    def read_loop() -> None:
        while not stop.is_set():
            seen.append(path.read_text())

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for i in range(60):
            write_metrics(str(path), big if i % 2 else RUN)
    finally:
        stop.set()
        reader.join()
    assert seen
    assert set(seen) <= versions


def test_a_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "gradio_clean.prom"
    target.mkdir()  # os.replace cannot put a file over a folder
    with pytest.raises(GradioCleanError) as caught:
        write_metrics(str(target), RUN)
    assert caught.value.message == f"cannot write metrics file {target}: Is a directory"
    assert os.listdir(tmp_path) == ["gradio_clean.prom"]
    assert os.listdir(target) == []


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "gradio_clean.prom"
    with pytest.raises(GradioCleanError, match=r"^cannot write metrics file .*: No such file"):
        write_metrics(str(path), RUN)


def test_a_killed_run_s_temp_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    """Issue 13: a kill between mkstemp and rename leaves a temp; the next run removes
    it once it is old, and nothing else: not a young one, a link, or another shape."""
    path = tmp_path / "gradio_clean.prom"
    old_temp = tmp_path / ".gradio_clean.prom.ab_cd123.tmp"
    young = tmp_path / ".gradio_clean.prom.zz99yy88.tmp"
    other = tmp_path / ".other.prom.ab_cd123.tmp"
    link = tmp_path / ".gradio_clean.prom.linkxxxx.tmp"
    for p in (old_temp, young, other):
        p.write_bytes(b"half a file")
    link.symlink_to(other)
    hours_ago = time.time() - 2 * 3600
    for p in (old_temp, other, link):
        os.utime(p, (hours_ago, hours_ago), follow_symlinks=False)
    write_metrics(str(path), RUN)
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["gradio_clean.prom", young.name, other.name, link.name]
    )
