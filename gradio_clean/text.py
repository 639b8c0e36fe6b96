"""Names as a terminal or a JSON document can carry them, whatever bytes they hold.

Kept apart from report.py (which imports rich) so the command line can escape a
name without paying for rich at start-up.
"""

from __future__ import annotations

import os


def shown(text: str) -> str:
    """Text a terminal prints as it is: undecodable bytes become \\xNN, and every
    character that is not printable (control characters, line and paragraph
    separators, format characters) an escape such as \\n, \\x1b or \\u202e."""
    text = jsonable(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(c: str) -> str:
    code = ord(c)
    if c in _ESCAPES:
        return _ESCAPES[c]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def jsonable(text: str) -> str:
    """JSON strings must be valid Unicode: undecodable bytes become \\xNN, as in `shown`."""
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name decodes to
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def plural(n: int, one: str, many: str | None = None) -> str:
    """`1 file`, `2 files`, `1,204 entries`: the one way counts are worded."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"
