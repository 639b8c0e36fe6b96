"""Durations as operators write them: ``90m``, ``12h``, ``1d``, ``2w``, ``1d12h``.

One parser serves ``prune --older-than``/``--session-ttl``, the config file and
``schedule --every``, so a value that works in one place works in all of them
and is refused with the same words everywhere.

The grammar is deliberately narrow: whole numbers, one of the units ``w d h m s``,
each unit at most once and largest first. ``3 days``, ``1.5h``, ``90`` or ``1h1h``
are refused rather than guessed at, because a misread age on a tool that deletes
files is worse than an error. The one bare number is ``0``: zero in every unit (as
systemd reads it), so there is nothing to misread; ``00`` stays refused, one spelling.
The unit letters are the ones systemd time spans also read the same way, so
`format_duration` output can go into a timer as is.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from gradio_clean.errors import UsageError

UNITS: tuple[tuple[str, int], ...] = (
    ("w", 7 * 86400),
    ("d", 86400),
    ("h", 3600),
    ("m", 60),
    ("s", 1),
)
_SECONDS = dict(UNITS)


_RANK = {unit: i for i, (unit, _) in enumerate(UNITS)}

# Anything longer cannot mean a file's age (the epoch is younger than this), and a
# bound keeps `now - duration` and its nanoseconds far from any overflow.
MAX_SECONDS = 36500 * 86400
ACCEPTED = "expected a duration like 90m, 12h, 1d, 2w or 1d12h (units s, m, h, d, w)"

_TOKEN = re.compile(r"([0-9]+)([A-Za-z]+)")
_SHAPE = re.compile(r"(?:[0-9]+[A-Za-z]+)+")
_MAX_DIGITS = 12  # more than MAX_SECONDS has; checked before int() ever sees them


class DurationError(UsageError):
    """A duration that does not parse; `reason` is the part after the value.

    Callers that know where the value came from (a flag, a config key) put their
    own prefix in front of `reason`, so every message ends with what is accepted.
    """

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"invalid duration {text!r}: {reason}")
        self.text = text
        self.reason = reason


def parse_duration(text: str) -> float:
    """Seconds in `text`; raise DurationError (a UsageError, exit 2) if it is not one."""
    if not text:
        raise DurationError(text, f"empty; {ACCEPTED}")
    if text.startswith("-"):
        raise DurationError(text, f"negative; {ACCEPTED}")
    if text == "0":
        return 0.0
    if not text.isascii() or _SHAPE.fullmatch(text) is None:
        raise DurationError(text, ACCEPTED)
    total = 0
    last_rank = -1
    for digits, unit in _TOKEN.findall(text):
        if unit not in _SECONDS:
            raise DurationError(text, f"unknown unit {unit!r}; {ACCEPTED}")
        rank = _RANK[unit]
        if rank <= last_rank:
            raise DurationError(
                text, f"units must go from largest to smallest, each once; {ACCEPTED}"
            )
        last_rank = rank
        if len(digits.lstrip("0")) > _MAX_DIGITS:
            raise DurationError(text, f"too long, at most {MAX_SECONDS // 86400}d; {ACCEPTED}")
        total += int(digits) * _SECONDS[unit]
    if total > MAX_SECONDS:
        raise DurationError(text, f"too long, at most {MAX_SECONDS // 86400}d; {ACCEPTED}")
    return float(total)


@dataclass(frozen=True)
class Duration:
    """A parsed duration that keeps the user's spelling, so `gradio-clean config` and a
    scheduled line show what was written, not a number of seconds."""

    seconds: float
    text: str

    @classmethod
    def parse(cls, text: str) -> Duration:
        """`parse_duration`, keeping `text`; raises DurationError."""
        return cls(parse_duration(text), text)

    def __str__(self) -> str:
        return self.text


def format_duration(seconds: float) -> str:
    """The shortest `parse_duration` text for `seconds`, rounded to a whole second.

    ``2592000`` gives ``30d`` (not ``4w2d``), ``129600`` gives ``36h``, ``604801`` gives
    ``1w1s``; ``0`` gives ``0s``. Used to show ages and intervals back to the user in
    the same notation they type. One unit is used only with a count under 100 (``3661``
    stays ``1h1m1s``, not ``3661s``); a tie goes to the larger units.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"cannot format {seconds!r} as a duration")
    rest = round(seconds)
    if rest == 0:
        return "0s"
    parts = []
    for unit, size in UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    mixed = "".join(parts)
    whole = round(seconds)
    single = [
        f"{whole // size}{unit}" for unit, size in UNITS if whole % size == 0 and whole < 100 * size
    ]
    return min([mixed, *single], key=len)  # min keeps the first of equal lengths
