"""Gitignore-style patterns, matched in time linear in the path.

pathspec compiles each pattern to a Python regular expression, and those
backtrack: `*a*a*…*X` against one 120-character name never finishes, and each
`**` multiplies the work by the path's length. Here a pattern is a list of
segment globs and `**` gaps. The path's segments are walked once per token,
carrying the set of positions reached (a `**` widens the set, it never
branches); a segment glob is cut at its `*`s into fixed-length chunks, each
found leftmost-first, which needs no backtracking. A match costs
O(len(pattern) x len(path)).

The meaning is that of pathspec's `GitIgnoreSpec` (the tests compare the two),
with differences on the safe side only: an unclosed `[` or a reversed range
such as `[z-a]` is an error instead of a silently dropped pattern (or a
`re.error` traceback), and a name holding a newline is matched like any other.

A key is a root-relative path, with a trailing `/` for a folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MAX_PATTERN_CHARS = 1024  # a path is at most 4096 bytes; no sane pattern is this long
MAX_PATTERNS = 1000  # per source: the command line, the config, an ignore file


class PatternError(ValueError):
    """A pattern that cannot be used. `line` is its 1-based place among its lines."""

    def __init__(self, reason: str, line: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(frozen=True, slots=True)
class _Glob:
    """One segment's glob, as the fixed-length chunks between its `*`s."""

    literal: str | None  # no wildcard at all: compared as a string
    whole: re.Pattern[str] | None  # at most one `*`: one regex, which cannot blow up
    chunks: tuple[tuple[re.Pattern[str], int], ...]  # (regex, length); stars + 1 of them
    min_len: int
    nonempty: bool  # a lone `*` matches a whole segment, never an empty one
    needle: str = ""  # its longest run of literal characters: a match contains it

    def matches(self, seg: str) -> bool:
        if self.literal is not None:
            return seg == self.literal
        if self.whole is not None:
            return self.whole.fullmatch(seg) is not None
        n = len(seg)
        if n < self.min_len or (self.nonempty and not n):
            return False
        chunks = self.chunks
        if len(chunks) == 1:
            return chunks[0][0].fullmatch(seg) is not None
        first, pos = chunks[0]
        last, last_len = chunks[-1]
        end = n - last_len
        if first.match(seg) is None or last.fullmatch(seg, end) is None:
            return False
        for chunk, _ in chunks[1:-1]:
            found = chunk.search(seg, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True


_ANY, _SLASH = 1, 2  # pathspec's shortcuts for `*`, `**` and `*/`


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str  # as written
    negate: bool  # a `!` line: re-includes what earlier lines matched
    dir_only: bool  # ends with `/`
    leading: bool  # starts with `**` (or has no `/` before its end): any depth
    trailing: bool  # ends with `**`: only what lies below
    tokens: tuple[_Glob | None, ...]  # None: a `**` gap of zero or more segments
    special: int = 0
    needle: str = ""  # a substring of every key it matches: a cheap first test

    def priority(self, segs: list[str], key: str) -> int:
        """0: no match; 1: matched through a folder above (or as a folder); 2: itself.

        As pathspec: where both are possible, matching at the path's end wins.
        """
        if self.special == _ANY:
            return 2
        if self.special == _SLASH:
            return 0 if "/" not in key else 1 if self.dir_only else 2
        n = len(segs)
        if self.leading and len(self.tokens) == 1:  # most patterns: `*.png`, `keep-me/`
            return self._anywhere(self.tokens[0], segs)  # type: ignore[arg-type]
        reached = set(range(n)) if self.leading else {0}
        for token in self.tokens:
            if token is None:
                reached = set(range(min(reached), n))
            else:
                reached = {p + 1 for p in reached if p < n and token.matches(segs[p])}
            if not reached:
                return 0
        if self.trailing:
            return 0 if min(reached) >= n else 1 if self.dir_only else 2
        return 2 if n in reached else 1

    def _anywhere(self, glob: _Glob, segs: list[str]) -> int:
        """`priority` for one segment glob at any depth, without the position sets."""
        last = len(segs) - 1
        if self.trailing:
            found = any(glob.matches(segs[p]) for p in range(last))
            return 0 if not found else 1 if self.dir_only else 2
        if glob.matches(segs[last]):
            return 2
        return 1 if any(glob.matches(segs[p]) for p in range(last)) else 0


@dataclass(frozen=True)
class PatternSet:
    patterns: tuple[Pattern, ...]

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def match(self, key: str) -> bool | None:
        """True if the patterns exclude `key`, False if a `!` line took it back, None if silent.

        A match on the entry itself beats a match through a folder above it; among
        equals the last line wins (git's rule, as pathspec's GitIgnoreSpec has it).
        """
        segs = key.split("/")
        through_folder: bool | None = None
        for pattern in reversed(self.patterns):
            if pattern.needle not in key:
                continue
            found = pattern.priority(segs, key)
            if found == 2:
                return not pattern.negate
            if found == 1 and through_folder is None:
                through_folder = not pattern.negate
        return through_folder


def compile_patterns(lines: Iterable[str]) -> PatternSet:
    """Blank lines and `#` comments are skipped; a bad line raises PatternError(line=N)."""
    patterns: list[Pattern] = []
    for number, line in enumerate(lines, start=1):
        try:
            pattern = parse_pattern(line)
        except PatternError as exc:
            raise PatternError(exc.reason, number) from None
        if pattern is None:
            continue
        if len(patterns) == MAX_PATTERNS:
            raise PatternError(f"more than {MAX_PATTERNS:,} patterns", number)
        patterns.append(pattern)
    return PatternSet(tuple(patterns))


def parse_pattern(line: str) -> Pattern | None:
    """One gitignore line; None for a blank line or a comment."""
    if len(line) > MAX_PATTERN_CHARS:
        raise PatternError(f"longer than {MAX_PATTERN_CHARS:,} characters")
    text = line if line.endswith("\\ ") else line.rstrip()
    if not text or text.startswith("#") or text == "/":
        return None
    negate = text.startswith("!")
    segs = (text[1:] if negate else text).split("/")
    dir_only = not segs[-1]
    if not segs[0]:
        del segs[0]  # a leading `/` anchors the pattern at the root
    elif (len(segs) == 1 or (len(segs) == 2 and not segs[1])) and segs[0] != "**":
        segs.insert(0, "**")  # no `/` before the end: at any depth
    if not segs:
        raise PatternError("matches nothing")
    if not segs[-1]:
        segs[-1] = "**"
    segs = [s for i, s in enumerate(segs) if not (s == "**" and i and segs[i - 1] == "**")]
    if segs == ["**"] or segs == ["**", "*", "**"]:
        special = _SLASH if dir_only or len(segs) == 3 else _ANY
        return Pattern(line, negate, dir_only, True, False, (), special)
    if segs == ["**", "*"]:
        return Pattern(line, negate, dir_only, True, False, (), _ANY)
    leading = segs[0] == "**"
    trailing = segs[-1] == "**"
    middle = segs[int(leading) : len(segs) - int(trailing)]
    tokens = tuple(None if s == "**" else _glob(s) for s in middle)
    needle = max((t.needle for t in tokens if t is not None), key=len, default="")
    return Pattern(line, negate, dir_only, leading, trailing, tokens, needle=needle)


def _glob(seg: str) -> _Glob:
    chunks: list[list[str]] = [[]]  # regex atoms, one per character, between stars
    raw: list[str] = []  # the characters, while there is no wildcard
    run: list[str] = []  # the current run of literal characters
    needle = ""
    plain = True
    i = 0
    while i < len(seg):
        c = seg[i]
        i += 1
        if c in "*?[":
            needle = max(needle, "".join(run), key=len)
            run = []
        if c == "\\":
            if i == len(seg):
                raise PatternError("a backslash at the end of a segment escapes nothing")
            chunks[-1].append(re.escape(seg[i]))
            raw.append(seg[i])
            run.append(seg[i])
            i += 1
        elif c == "*":
            chunks.append([])
            plain = False
        elif c == "?":
            chunks[-1].append(".")
            plain = False
        elif c == "[":
            atom, i = _bracket(seg, i)
            chunks[-1].append(atom)
            plain = False
        else:
            chunks[-1].append(re.escape(c))
            raw.append(c)
            run.append(c)
    needle = max(needle, "".join(run), key=len)
    if plain:
        return _Glob("".join(raw), None, (), 0, False, needle)
    if seg == "*":
        return _Glob(None, re.compile(".+", re.DOTALL), (), 1, True)
    if len(chunks) <= 2:
        whole = re.compile(".*".join("".join(a) for a in chunks), re.DOTALL)
        return _Glob(None, whole, (), 0, False, needle)
    compiled = tuple((re.compile("".join(a), re.DOTALL), len(a)) for a in chunks)
    return _Glob(None, None, compiled, sum(len(a) for a in chunks), False, needle)


def _bracket(seg: str, start: int) -> tuple[str, int]:
    """`[...]` from just after its `[`: the regex class and where the glob goes on."""
    j = start
    if j < len(seg) and seg[j] in "!^":
        j += 1
    if j < len(seg) and seg[j] == "]":
        j += 1  # a `]` first is a member
    while j < len(seg) and seg[j] != "]":
        j += 1
    if j >= len(seg):
        raise PatternError("an unclosed [")
    body = seg[start:j]
    negate = body[0] in "!^"
    if negate:
        body = body[1:]
    members: list[str] = []
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            lo, hi = body[k], body[k + 2]
            if lo > hi:
                raise PatternError(f"a reversed range {lo}-{hi}")
            members.append(f"{re.escape(lo)}-{re.escape(hi)}")
            k += 3
        else:
            members.append(re.escape(body[k]))
            k += 1
    return "[" + ("^" if negate else "") + "".join(members) + "]", j + 1
