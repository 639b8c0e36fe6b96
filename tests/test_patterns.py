"""Gitignore-style patterns: pathspec's meaning, without its backtracking."""

from __future__ import annotations

import time
import warnings

import pathspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradio_clean.patterns import (
    MAX_PATTERN_CHARS,
    MAX_PATTERNS,
    PatternError,
    compile_patterns,
)

# Pattern pieces pathspec and we read alike. Not `[!a]`: pathspec's regex lets a
# negated class match `/`, which git's wildmatch never does (tested apart below).
PIECES = ["a", "b", "c", "*", "**", "?", "/", "[ab]", "[a-c]", "[]a]", "\\*", "!", " ", "#"]
NAME_CHARS = "abc*!]- #"

patterns = st.lists(st.sampled_from(PIECES), min_size=1, max_size=7).map("".join)
segments = st.text(alphabet=NAME_CHARS, min_size=1, max_size=4)
keys = st.tuples(st.lists(segments, min_size=1, max_size=4), st.booleans()).map(
    lambda t: "/".join(t[0]) + ("/" if t[1] else "")
)


def reference(lines: list[str]) -> pathspec.GitIgnoreSpec | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # re's "possible nested set" FutureWarning
        try:
            return pathspec.GitIgnoreSpec.from_lines(lines)
        except ValueError:
            return None


@settings(max_examples=600, deadline=None)
@given(st.lists(patterns, min_size=1, max_size=4), st.lists(keys, min_size=1, max_size=8))
def test_same_answers_as_pathspec(lines: list[str], paths: list[str]) -> None:
    ref = reference(lines)
    try:
        mine = compile_patterns(lines)
    except PatternError:
        assert ref is None
        return
    assert ref is not None
    for key in paths:
        assert mine.match(key) == ref.check_file(key).include, (lines, key)


@pytest.mark.parametrize(
    ("lines", "key", "expected"),
    [
        (["keep-me/"], "keep-me/", True),
        (["keep-me/"], "keep-me/a.png", True),
        (["keep-me/"], "keep-me", None),  # a file of that name is not the folder
        (["*.png", "!keep.png"], "x/keep.png", False),
        (["/top"], "a/top", None),
        (["a/**/b"], "a/x/y/b", True),
        (["[!a]"], "b", True),
        (["[!a]"], "a/", None),  # git: a bracket never matches the `/`
        (["x[!a]"], "xa/", None),
        (["caf\\*"], "caf*", True),
        (["caf\\*"], "cafe", None),
        (["line\nbreak"], "line\nbreak", True),  # pathspec's `$` and `.` miss these
        (["**/b"], "a\nx/b", True),
    ],
)
def test_examples(lines: list[str], key: str, expected: bool | None) -> None:
    assert compile_patterns(lines).match(key) is expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("\\", "a backslash at the end of a segment escapes nothing"),
        ("a\\/b", "a backslash at the end of a segment escapes nothing"),
        ("!", "matches nothing"),
        ("[ab", "an unclosed ["),
        ("x[z-a]", "a reversed range z-a"),
        ("a" * (MAX_PATTERN_CHARS + 1), f"longer than {MAX_PATTERN_CHARS:,} characters"),
    ],
)
def test_a_bad_pattern_says_why_and_where(line: str, reason: str) -> None:
    with pytest.raises(PatternError) as caught:
        compile_patterns(["ok/", "# fine", line])
    assert (caught.value.reason, caught.value.line) == (reason, 3)


def test_the_pattern_count_is_bounded() -> None:
    assert len(compile_patterns(["a"] * MAX_PATTERNS + ["", "# x"]).patterns) == MAX_PATTERNS
    with pytest.raises(PatternError, match=f"more than {MAX_PATTERNS:,} patterns"):
        compile_patterns(["a"] * (MAX_PATTERNS + 1))


def test_pathological_patterns_match_in_linear_time() -> None:
    """Issue 14's `*a*a*…*X` (25 `*a`) never finished on one 120-character name."""
    cases = [
        ("*a" * 25 + "*X", "a" * 120),
        ("*a" * 25 + "*X", "a" * 255),
        ("**/a/**/a/**/a/**/a/**/X", "/".join(["a"] * 2000)),
        ("a*" * 500 + "X", "a" * 255),  # the longest pattern allowed
        ("?" * 200 + "*" * 200 + "X", "a" * 255),
    ]
    for line, name in cases:
        spec = compile_patterns([line])
        started = time.perf_counter()
        for key in (name, name + "/", "dir/" + name):
            assert spec.match(key) is None
        assert time.perf_counter() - started < 1.0, line[:30]
    thousand = compile_patterns(["*a" * 25 + f"*X{i}" for i in range(MAX_PATTERNS)])
    started = time.perf_counter()
    assert thousand.match("a" * 120) is None
    assert time.perf_counter() - started < 1.0
