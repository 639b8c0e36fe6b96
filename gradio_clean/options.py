"""Every rule and scope option, declared once.

One `Option` per config key says all the rest of the code needs: the flag (the key
with ``-`` for ``_``), how a text becomes its typed value, the default, the help and
its panel, whether it is a rule switch, and how it is written back. From this table
cli.py builds its typer parameters, config.py checks a file's values, inapp.py checks
attach()'s keywords (both with the parsers the flags use), `gradio-clean config`
and `schedule` write values back (`plain`, `argv`), and `rules.RuleSet.from_values`
takes its fields.

Adding an option: an `Option` here, its field in `rules.RuleSet`, and the code that
uses it. A parser may live in another module; it raises ValueError(reason), and the
caller puts the flag or the config key in front of the reason.

No typer or rich here: config.py and inapp.py use this without the command line.
"""

from __future__ import annotations

import enum
import json
import os
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from gradio_clean.classify import Category
from gradio_clean.durations import Duration, DurationError
from gradio_clean.errors import UsageError
from gradio_clean.patterns import MAX_PATTERNS, PatternError, parse_pattern
from gradio_clean.sizes import MinFree, Size, SizeError, parse_min_free


class AgeBy(str, enum.Enum):
    """Which timestamp an age is measured by. newest is the default: a copy Gradio makes
    keeps its source's mtime (copy2), so only ctime says when it entered the cache, and
    atime when it was last read."""

    MTIME = "mtime"
    ATIME = "atime"
    CTIME = "ctime"
    NEWEST = "newest"


class Dedupe(str, enum.Enum):
    """What happens to an extra copy: replaced by a hard link to the kept one, or removed."""

    HARDLINK = "hardlink"
    DELETE = "delete"


class Keep(str, enum.Enum):
    """Which copy of a duplicate set stays."""

    NEWEST = "newest"
    OLDEST = "oldest"


class Kind(enum.Enum):
    VALUE = "value"  # --flag VALUE; a string in the config
    SWITCH = "switch"  # --flag / --no-flag; true or false
    LIST = "list"  # --flag VALUE, repeatable; an array of strings


ROOTS_PANEL = "Where to look"
RULES_PANEL = "Rules (an entry goes if any selected rule picks it)"
SCOPE_PANEL = "Scope"


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Option:
    """One rule or scope option: what the command line, the config file, attach() and
    RuleSet each need to know of it."""

    key: str  # the config key, and attach()'s keyword
    kind: Kind
    help: str
    panel: str
    parse: Callable[[str], Any] | None = None  # text -> typed value; ValueError(reason)
    default: Any = None  # typed; None: not set
    metavar: str | None = None
    choices: type[enum.Enum] | None = None  # the command line offers these by name
    rule: bool = False  # a rule switch: the rule switches are decided together (merge)
    expects: str = ""  # what a config value of the wrong TOML type is told
    item: str = ""  # LIST: what one element is, for the config's messages
    empty_ok: bool = True  # LIST: the config may give []
    limit: Callable[[Sequence[Any]], None] | None = None  # LIST: checks the whole list
    flag_text: str = ""  # the flag, when it is not --key
    argument: bool = False  # the command line takes it as PATH arguments
    path: bool = False  # paths: a config's are taken from its folder, a schedule's made absolute
    quote: Callable[[str], str] = repr  # how a flag's error shows the bad text
    field: str | None = ""  # the RuleSet field ("": the key); None: not a rule parameter
    to_rule: Callable[[Any], Any] = _same  # typed value -> the RuleSet field's value
    byte_count: bool = False  # VALUE: a TOML integer (attach(): an int) is that many bytes

    @property
    def flag(self) -> str:
        return self.flag_text or "--" + self.key.replace("_", "-")

    @property
    def param(self) -> str:
        """The command function's parameter name."""
        return "paths" if self.argument else self.flag[2:].replace("-", "_")

    @property
    def rule_field(self) -> str | None:
        return self.key if self.field == "" else self.field

    def accepted(self) -> str:
        """What the config is told for a value of the wrong type."""
        if self.expects:
            return self.expects
        if self.choices is not None:
            return "expected " + one_of([str(c.value) for c in self.choices])
        return "expected true or false" if self.kind is Kind.SWITCH else "expected a string"


def one_of(choices: Sequence[str]) -> str:
    """``"a", "b" or "c"``, as the config spells them."""
    quoted = [json.dumps(c) for c in choices]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _or(words: Sequence[str]) -> str:
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else "".join(words)


# -- parsers: text -> typed value, ValueError(reason) ---------------------------------


def parse_duration_value(text: str) -> Duration:
    try:
        return Duration.parse(text)
    except DurationError as exc:
        raise ValueError(exc.reason) from None


DURATION_EXPECTS = 'expected a duration string like "90m", "12h", "1d", "2w" or "1d12h"'


def _choice(choices: type[enum.Enum], said: Sequence[str] = ()) -> Callable[[str], Any]:
    """`said`: the order an error lists the choices in, when not the enum's."""
    accepted = "expected " + one_of(list(said) or [str(c.value) for c in choices])

    def parse(text: str) -> Any:
        try:
            return choices(text)
        except ValueError:
            raise ValueError(accepted) from None

    return parse


def _pattern(text: str) -> str:
    try:
        parse_pattern(text)
    except PatternError as exc:
        raise ValueError(f"not a gitignore-style pattern ({exc.reason})") from None
    return text


def _pattern_count(items: Sequence[Any]) -> None:
    if len(items) > MAX_PATTERNS:
        raise ValueError(f"more than {MAX_PATTERNS:,} patterns")


def parse_size_value(text: str) -> Size:
    try:
        return Size.parse(text)
    except SizeError as exc:
        raise ValueError(exc.reason) from None


def parse_min_free_value(text: str) -> MinFree:
    try:
        return parse_min_free(text)
    except SizeError as exc:
        raise ValueError(exc.reason) from None


def _bytes(value: Size | None) -> int | None:
    return None if value is None else value.bytes


def _seconds(value: Duration | None) -> float | None:
    return None if value is None else value.seconds


def duration_option(
    key: str, *, default: Duration | None = None, help: str = "", rule: bool = False
) -> Option:
    """A duration option; inapp.py checks its own every= and grace= through one too."""
    return Option(
        key,
        Kind.VALUE,
        help,
        RULES_PANEL,
        parse=parse_duration_value,
        default=default,
        metavar="DUR",
        expects=DURATION_EXPECTS,
        rule=rule,
        to_rule=_seconds,
    )


def _choice_option(
    key: str, choices: type[enum.Enum], default: enum.Enum, help: str, said: Sequence[str] = ()
) -> Option:
    parse = _choice(choices, said)
    return Option(
        key,
        Kind.VALUE,
        help,
        RULES_PANEL,
        parse=parse,
        default=default,
        choices=choices,
        expects="expected " + one_of(list(said)) if said else "",
    )


def _switch(key: str, help: str, *, rule: bool = False) -> Option:
    return Option(key, Kind.SWITCH, help, RULES_PANEL, default=False, rule=rule)


def _patterns(key: str, help: str) -> Option:
    return Option(
        key,
        Kind.LIST,
        help,
        SCOPE_PANEL,
        parse=_pattern,
        default=(),
        metavar="PATTERN",
        item="gitignore-style pattern",
        limit=_pattern_count,
        quote=shlex.quote,
        to_rule=tuple,
    )


# -- the table, in the config file's order --------------------------------------------

TABLE: tuple[Option, ...] = (
    Option(
        "roots",
        Kind.LIST,
        "Gradio temp dirs, app directories or .gradio folders. Default: the config's "
        "roots, else GRADIO_TEMP_DIR (or <tmp>/gradio) and ./.gradio, ./flagged, "
        "./gradio_cached_examples when present.",
        ROOTS_PANEL,
        metavar="PATH",
        item="path",
        empty_ok=False,
        argument=True,
        path=True,
        field=None,
    ),
    Option(
        "sessions_dirs",
        Kind.LIST,
        "A folder whose subfolders are per-session folders. Repeatable.",
        ROOTS_PANEL,
        metavar="DIR",
        item="path",
        flag_text="--sessions-dir",
        path=True,
        field=None,
    ),
    duration_option(
        "older_than",
        help="Files older than DUR (see --age-by): 90m, 12h, 1d, 2w, 1d12h.",
        rule=True,
    ),
    _switch(
        "duplicates",
        "Extra copies of identical files (size, partial hash, full hash).",
        rule=True,
    ),
    _switch(
        "orphaned_sessions",
        "Session folders idle longer than --session-ttl, Gradio's stale "
        "leftovers, and empty hash folders.",
        rule=True,
    ),
    Option(
        "max_size",
        Kind.VALUE,
        "Keep the roots' disk usage (du -s) at or under SIZE, evicting whole hash "
        "folders, sessions and leftovers least recently used first: 500M, 20G, 1.5T.",
        RULES_PANEL,
        parse=parse_size_value,
        metavar="SIZE",
        rule=True,
        expects='expected a size string like "500M", "20G" or "1.5T", or a number of bytes',
        to_rule=_bytes,
        byte_count=True,
    ),
    Option(
        "min_free",
        Kind.VALUE,
        "Keep at least this much free on each root's filesystem (for unprivileged "
        "users), evicting as --max-size does: 10%, 5G.",
        RULES_PANEL,
        parse=parse_min_free_value,
        metavar="SIZE|PCT%",
        rule=True,
        expects='expected a percentage or size string like "10%" or "5G", or a number of bytes',
        byte_count=True,
    ),
    _choice_option(
        "age_by",
        AgeBy,
        AgeBy.NEWEST,
        "Timestamp the ages compare [default: newest, the latest of mtime, ctime "
        "and a file's atime: Gradio's cached copies keep their source's mtime].",
    ),
    duration_option(
        "session_ttl",
        default=Duration(3600.0, "1h"),
        help="Idle time after which a session folder or leftover is orphaned "
        "[default: 1h, Gradio's own window].",
    ),
    duration_option(
        "min_age",
        default=Duration(600.0, "10m"),
        help="--max-size and --min-free never evict anything used more recently than "
        "DUR, by --age-by [default: 10m: uploads in flight and fresh outputs stay].",
    ),
    _choice_option(
        "dedupe",
        Dedupe,
        Dedupe.HARDLINK,
        "hardlink [default]: replace each extra copy by a hard link to the kept "
        "one, so every path keeps working; delete: remove it.",
        said=("delete", "hardlink"),
    ),
    _choice_option(
        "keep",
        Keep,
        Keep.NEWEST,
        "Which copy of a duplicate set stays [default: newest; ties by path].",
    ),
    _switch("verify", "Also compare duplicates byte by byte."),
    _patterns("include", "Only entries matching this gitignore-style pattern (root-relative)."),
    _patterns(
        "exclude", "Never entries matching this pattern; a root's .gradiocleanignore adds more."
    ),
    Option(
        "categories",
        Kind.LIST,
        "Only touch these categories ("
        + ", ".join(c.value for c in Category)
        + "). flagged and examples are user data: no rule touches them unless named here. "
        "Repeatable.",
        SCOPE_PANEL,
        parse=_choice(Category),
        metavar="CATEGORY",
        choices=Category,
        item="category",
        empty_ok=False,
        flag_text="--category",
        field=None,  # RuleSet.from_values: the set, and whether it was asked for
    ),
)
OPTIONS: dict[str, Option] = {o.key: o for o in TABLE}
KEYS: tuple[str, ...] = tuple(OPTIONS)
RULE_KEYS: tuple[str, ...] = tuple(o.key for o in TABLE if o.rule)
DEFAULTS: dict[str, Any] = {o.key: o.default for o in TABLE}
SCOPE_KEYS: tuple[str, ...] = ("roots", "sessions_dirs")  # scan takes only these

# --help lists the flags in this order (an option not named here goes last).
FLAG_ORDER: tuple[str, ...] = (
    "roots",
    "sessions_dirs",
    "older_than",
    "age_by",
    "duplicates",
    "dedupe",
    "keep",
    "verify",
    "orphaned_sessions",
    "session_ttl",
    "max_size",
    "min_free",
    "min_age",
    "categories",
    "include",
    "exclude",
)


def in_flag_order(keys: Iterable[str]) -> list[Option]:
    wanted = set(keys)
    order = [*FLAG_ORDER, *(k for k in KEYS if k not in FLAG_ORDER)]
    return [OPTIONS[k] for k in order if k in wanted]


def no_rule_message() -> str:
    rules = [OPTIONS[k] for k in RULE_KEYS]
    flags = [o.flag + (f" {o.metavar}" if o.kind is Kind.VALUE else "") for o in rules]
    return (
        f"no rule selected: give {_or(flags)}, "
        f"or set {_or([o.key for o in rules])} in a config file"
    )


def selects(value: object) -> bool:
    """Whether a rule switch's value selects its rule (a duration of 0s does)."""
    return value is not None and value is not False


# -- the command line's values --------------------------------------------------------


def from_command_line(given: Mapping[str, Any]) -> dict[str, Any]:
    """The flags' values typed, keyed like the config; None where a flag was not given.

    A bad value is a one-line UsageError naming the flag (``--older-than 'x': …``).
    Choices arrive typed: the command line offers them by name.
    """
    out: dict[str, Any] = {}
    for option in TABLE:
        if option.key not in given:
            continue
        raw = given[option.key]
        if option.kind is Kind.LIST:
            items = tuple(raw or ())
            if items and option.limit is not None:
                try:
                    option.limit(items)
                except ValueError as exc:
                    raise UsageError(f"{option.flag}: {exc}") from None
            if option.choices is None:
                items = tuple(_flag_value(option, item) for item in items)
            out[option.key] = items or None
        elif raw is not None and option.choices is None and option.kind is Kind.VALUE:
            out[option.key] = _flag_value(option, raw)
        else:
            out[option.key] = raw
    return out


def _flag_value(option: Option, text: str) -> Any:
    if option.parse is None:
        return text
    try:
        return option.parse(text)
    except ValueError as exc:
        raise UsageError(f"{option.flag} {option.quote(text)}: {exc}") from None


def argv(given: Mapping[str, Any]) -> list[str]:
    """The same flags again for a scheduled run: the others in --help order, then the
    folders, made absolute."""
    out: list[str] = []
    arguments: list[str] = []
    ordered = in_flag_order(given)
    for option in [o for o in ordered if not o.path] + [o for o in ordered if o.path]:
        value = given[option.key]
        if value is None:
            continue
        if option.kind is Kind.SWITCH:
            out.append(option.flag if value else "--no-" + option.flag[2:])
        elif option.kind is Kind.VALUE:
            out += [option.flag, str(plain(value))]
        else:
            for item in value:
                text = os.path.abspath(item) if option.path else str(plain(item))
                if option.argument:
                    arguments.append(text)
                else:
                    out += [option.flag, text]
    return out + arguments


@runtime_checkable
class Spelled(Protocol):
    """A parsed value that keeps the text it was parsed from (a `Duration`, a size …):
    it is written back as that text, so `gradio-clean config` shows what was written."""

    @property
    def text(self) -> str: ...


def plain(value: Any) -> Any:
    """A typed value as JSON and TOML write it: a duration as written, a choice by name."""
    if isinstance(value, Spelled):
        return value.text
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value
