"""Sizes for --max-size and --min-free: what is read, what is refused, and how it prints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradio_clean.errors import ExitCode
from gradio_clean.sizes import (
    ACCEPTED,
    MinFree,
    SizeError,
    format_size,
    human_size,
    parse_min_free,
    parse_size,
)

KI, MI, GI, TI = 1 << 10, 1 << 20, 1 << 30, 1 << 40


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500M", 500 * MI),
        ("20G", 20 * GI),
        ("20g", 20 * GI),
        ("1.5T", TI + TI // 2),
        ("512K", 512 * KI),
        ("512KiB", 512 * KI),
        ("2mib", 2 * MI),
        ("1P", 1 << 50),
        ("1048576", 1048576),
        ("100B", 100),
        ("1KB", 1000),
        ("3GB", 3 * 10**9),
        ("2 tb", 2 * 10**12),
        ("0", 0),
        ("0.5K", 512),
    ],
)
def test_parse_size_reads_what_operators_write(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("-1G", "negative"),
        ("1X", "unknown unit 'X'"),
        ("1.5", "a fraction of a byte"),
        ("G", "expected a size"),
        ("1e3", "expected a size"),
        ("1,5G", "expected a size"),
        ("10%", "expected a size"),
        ("1" * 40, "too large"),
        ("99999999P", "too large"),
    ],
)
def test_bad_sizes_say_what_is_accepted(text: str, why: str) -> None:
    with pytest.raises(SizeError) as info:
        parse_size(text)
    assert why in info.value.reason
    assert info.value.reason.endswith(ACCEPTED)
    assert info.value.exit_code is ExitCode.USAGE


def test_min_free_is_a_percentage_or_a_size() -> None:
    assert parse_min_free("10%") == MinFree(percent=10.0)
    assert parse_min_free("2.5%").target(1000) == 25
    assert parse_min_free("2G") == MinFree(bytes=2 * GI)
    assert parse_min_free("2G").target(1) == 2 * GI
    assert str(parse_min_free("10%")) == "10%"
    assert str(parse_min_free("2G")) == "2G"
    for bad in ("0%", "100%", "150%", "-5%", "%", "x%", "1e1%"):
        with pytest.raises(SizeError) as info:
            parse_min_free(bad)
        assert "percentage" in info.value.reason


@given(st.integers(min_value=0, max_value=1 << 60))
def test_format_size_reads_back_exactly(n: int) -> None:
    assert parse_size(format_size(n)) == n


def test_format_size_is_short() -> None:
    assert [format_size(n) for n in (0, 1023, 20 * GI, TI + TI // 2, 10**9, 1536)] == [
        "0",
        "1023",
        "20G",
        "1.5T",
        "1GB",
        "1536",
    ]


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["", "K", "M", "G", "T", "KiB", "MiB", "GiB", "KB", "MB", "GB"]),
)
def test_whole_sizes_round_trip_exactly(number: int, unit: str) -> None:
    n = parse_size(f"{number}{unit}")
    assert parse_size(format_size(n)) == n


@given(st.text(max_size=30))
def test_any_text_parses_or_raises_size_error(text: str) -> None:
    for parse in (parse_size, parse_min_free):
        try:
            value = parse(text)
        except SizeError as exc:
            assert exc.reason
        else:
            assert value is not None


def test_human_size_says_a_size_as_the_tables_do() -> None:
    assert human_size(100) == "100 Bytes"
    assert human_size(1288490189) == "1.2 GiB"
    assert human_size(200 * MI) == "200.0 MiB"  # as the tables say it
    assert human_size(-3 * KI) == "-3.0 KiB"
