"""parse_duration and format_duration: exact values, refusals, and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradio_clean.durations import (
    ACCEPTED,
    MAX_SECONDS,
    UNITS,
    DurationError,
    format_duration,
    parse_duration,
)
from gradio_clean.errors import ExitCode, UsageError

SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90m", 5400),
        ("12h", 43200),
        ("1d", 86400),
        ("2w", 1209600),
        ("1d12h", 129600),
        ("1w2d3h4m5s", 604800 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
        ("45s", 45),
        ("0s", 0),
        ("0", 0),  # zero in every unit: the one bare number
        ("007m", 420),
        ("36500d", MAX_SECONDS),
    ],
)
def test_parses_exact_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("-1h", "negative"),
        ("-0s", "negative"),
        ("3 days", ""),
        ("3days", "unknown unit 'days'"),
        ("1y", "unknown unit 'y'"),
        ("1H", "unknown unit 'H'"),
        ("90", ""),
        ("00", ""),  # only "0" itself: one spelling
        ("1", ""),
        ("-0", "negative"),
        ("h", ""),
        ("1.5h", ""),
        ("1h30", ""),
        (" 1h", ""),
        ("1h ", ""),
        ("+1h", ""),
        ("1h1h", "largest to smallest"),
        ("30m1h", "largest to smallest"),
        ("\u0661h", ""),  # a non-ASCII digit that int() would accept
        ("36500d1s", "too long"),
        ("99999999999999999999w", "too long"),
        ("9" * 5000 + "s", "too long"),  # past int()'s own digit limit
        ("1d\n", ""),
    ],
)
def test_refuses_with_what_is_accepted(text: str, why: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    exc = caught.value
    assert why in exc.reason
    assert exc.reason.endswith(ACCEPTED)
    assert exc.message == f"invalid duration {text!r}: {exc.reason}"
    assert "\n" not in exc.message.replace(repr(text), "")  # one line, whatever the input
    assert isinstance(exc, UsageError)
    assert exc.exit_code is ExitCode.USAGE


def test_accepted_names_every_unit() -> None:
    for unit, _ in UNITS:
        assert unit in ACCEPTED.split("units ")[1]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59.4, "59s"),
        (59.6, "1m"),
        (129600, "36h"),
        (604800 + 1, "1w1s"),
        (5400, "90m"),
        (30 * 86400, "30d"),  # not 4w2d: what --older-than 30d is shown as
        (14 * 86400, "2w"),
        (90000, "25h"),  # shorter than 1d1h
        (70 * 86400, "10w"),  # as short as 70d: the larger unit wins a tie
        (86400 + 60, "1d1m"),
        (3661, "1h1m1s"),
    ],
)
def test_formats_shortest(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_format_refuses_non_durations(bad: float) -> None:
    with pytest.raises(ValueError, match="cannot format"):
        format_duration(bad)


@given(st.integers(min_value=0, max_value=MAX_SECONDS))
def test_format_then_parse_is_identity(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(
    st.lists(st.sampled_from([u for u, _ in UNITS]), min_size=1, max_size=5, unique=True).flatmap(
        lambda units: st.tuples(
            st.just(sorted(units, key=lambda u: -SECONDS[u])),
            st.lists(st.integers(0, 999), min_size=len(units), max_size=len(units)),
        )
    )
)
def test_any_written_combination_parses_to_its_sum(case: tuple[list[str], list[int]]) -> None:
    units, counts = case
    text = "".join(f"{n}{u}" for n, u in zip(counts, units, strict=True))
    assert parse_duration(text) == sum(n * SECONDS[u] for n, u in zip(counts, units, strict=True))
    # and formatting the result gives the canonical spelling of the same duration
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


@given(st.text(max_size=12))
def test_any_text_parses_or_raises_a_usage_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except DurationError as exc:
        assert exc.reason.endswith(ACCEPTED)
    else:
        assert 0 <= seconds <= MAX_SECONDS
        assert seconds == int(seconds)


@given(
    st.integers(min_value=0, max_value=10**6).map(str)
    | st.from_regex(r"[0-9]{1,8}", fullmatch=True)
)
def test_no_bare_number_parses_but_zero(text: str) -> None:
    """A bare number is refused (90 could be seconds, minutes or days), but for "0"."""
    if text == "0":
        assert parse_duration(text) == 0
    else:
        with pytest.raises(DurationError):
            parse_duration(text)
