"""Sizes as operators write them: ``500M``, ``20G``, ``1.5T``, ``10%`` for free space.

One parser serves ``prune --max-size``/``--min-free`` and the config file, so a
value that works in one place works in all of them and is refused with the same
words everywhere. Single letters and ``KiB``/``MiB``… are powers of 1024, as du,
df and ccache read them; ``KB``/``MB``… are powers of 1000, as disk vendors write
them. A size that could be misread is refused, never guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from gradio_clean.errors import UsageError

_BINARY = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_UNITS: dict[str, int] = dict(_BINARY)
for _letter, _power in (("k", 1), ("m", 2), ("g", 3), ("t", 4), ("p", 5)):
    _UNITS[f"{_letter}ib"] = 1 << (10 * _power)
    _UNITS[f"{_letter}b"] = 1000**_power
MAX_BYTES = 1 << 70  # a zebibyte: more than any filesystem, far from any overflow
ACCEPTED = (
    "expected a size like 500M, 20G, 1.5T or 1048576 bytes (K, M, G, T, P and KiB, MiB "
    "and so on are powers of 1024; KB, MB, GB, TB, PB powers of 1000)"
)
ACCEPTED_FREE = f"expected a percentage like 10% or {ACCEPTED.removeprefix('expected ')}"
_SHAPE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s?([A-Za-z]*)")
_MAX_DIGITS = 30


class SizeError(UsageError):
    """A size that does not parse; `reason` is the part after the value (see DurationError)."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"invalid size {text!r}: {reason}")
        self.text = text
        self.reason = reason


def parse_size(text: str, *, accepted: str = ACCEPTED) -> int:
    """Bytes in `text` (rounded down to a whole byte); raise SizeError (exit 2) if not one."""
    if not text or not text.strip():
        raise SizeError(text, f"empty; {accepted}")
    stripped = text.strip()
    if stripped.startswith("-"):
        raise SizeError(text, f"negative; {accepted}")
    match = _SHAPE.fullmatch(stripped) if stripped.isascii() else None
    if match is None:
        raise SizeError(text, accepted)
    digits, unit = match.groups()
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise SizeError(text, f"unknown unit {unit!r}; {accepted}")
    if factor == 1 and "." in digits:
        raise SizeError(text, f"a fraction of a byte; {accepted}")
    if len(digits) > _MAX_DIGITS:
        raise SizeError(text, f"too large; {accepted}")
    try:
        value = int(Decimal(digits) * factor)
    except InvalidOperation:  # pragma: no cover - the shape admits only plain decimals
        raise SizeError(text, accepted) from None
    if value > MAX_BYTES:
        raise SizeError(text, f"too large; {accepted}")
    return value


@dataclass(frozen=True)
class Size:
    """A parsed size that keeps the user's spelling (as durations.Duration does), so
    `gradio-clean config` and a scheduled line show ``20G``, not a byte count."""

    bytes: int
    text: str

    @classmethod
    def parse(cls, text: str) -> Size:
        """`parse_size`, keeping `text`; raises SizeError."""
        return cls(parse_size(text), text)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class MinFree:
    """--min-free: free space to keep, as bytes or as a percentage of the filesystem."""

    bytes: int | None = None
    percent: float | None = None
    spelled: str = field(default="", compare=False)  # as the user wrote it, if parsed

    @property
    def text(self) -> str:
        return self.spelled or str(self)

    def target(self, total: int) -> int:
        """The free bytes wanted on a filesystem of `total` bytes."""
        if self.percent is not None:
            return int(total * self.percent / 100)
        return self.bytes or 0

    def __str__(self) -> str:
        if self.spelled:
            return self.spelled
        if self.percent is not None:
            return f"{self.percent:g}%"
        return format_size(self.bytes or 0)


def parse_min_free(text: str) -> MinFree:
    """``10%`` (0 < pct < 100) or a size as `parse_size` reads it."""
    stripped = text.strip()
    if not stripped.endswith("%"):
        return MinFree(bytes=parse_size(text, accepted=ACCEPTED_FREE), spelled=text)
    number = stripped[:-1].strip()
    if not number.isascii() or re.fullmatch(r"[0-9]{1,3}(?:\.[0-9]{1,6})?", number) is None:
        raise SizeError(text, ACCEPTED_FREE)
    pct = float(number)
    if not 0 < pct < 100:
        raise SizeError(text, f"a percentage must be above 0 and below 100; {ACCEPTED_FREE}")
    return MinFree(percent=pct, spelled=text)


def format_size(n: int) -> str:
    """The shortest text `parse_size` reads back to exactly `n`: ``20G``, ``1.5T``,
    ``3GB``, else plain bytes (what config and schedule write back). Negative sizes (a
    shortfall) keep their sign; `human_size` is for messages."""
    if n < 0:
        return "-" + format_size(-n)
    best = str(n)
    for unit, factor in _UNITS.items():
        if unit in ("", "b") or unit.endswith("ib") or n < factor:
            continue  # plain bytes are the fallback; KiB and K are the same, K is shorter
        text = f"{(Decimal(n) / factor).normalize():f}"
        if "." in text and (len(unit) > 1 or len(text.partition(".")[2]) > 3):
            continue  # fractions only of the binary letters, and short: 1.5T, not 1.234567G
        if int(Decimal(text) * factor) == n and len(text) + len(unit) < len(best):
            best = text + unit.upper()
    return best


def human_size(n: int) -> str:
    """For people: ``1.2 GiB``, ``200.0 MiB``, ``512 Bytes``, as every table and line says
    it (humanize, powers of 1024)."""
    import humanize  # here: a --json run never says a size to a person, nor imports it

    if n < 0:
        return "-" + human_size(-n)
    return humanize.naturalsize(n, binary=True)
