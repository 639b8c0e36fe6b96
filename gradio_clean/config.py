"""The config file: where it is, what it may say, and how it meets the command line.

An operator writes the rules once, in a file, and cron runs ``gradio-clean prune``
with no flags. The file is TOML with flat top-level keys, each spelled like its
flag with ``_`` for ``-`` (``--older-than`` is ``older_than``), so the flag
reference is the config reference and an error can name the key as written::

    # /etc/gradio-clean/config.toml
    roots = ["/var/tmp/gradio", "/srv/chatbot"]     # default: GRADIO_TEMP_DIR and ./.gradio
    sessions_dirs = ["/srv/chatbot/sessions"]

    # The rules. `prune` without a rule flag runs these; a rule flag on the
    # command line replaces all of them, so rules never mix across the two.
    older_than = "7d"
    duplicates = true
    orphaned_sessions = true
    max_size = "20G"            # the roots' du -s at most this, least recently used first
    min_free = "10%"            # free space to keep on each root's filesystem

    # How the rules work.
    age_by = "mtime"            # newest (the default), mtime, atime or ctime
    session_ttl = "1h"
    min_age = "10m"             # the budget (max_size, min_free) evicts nothing younger
    dedupe = "hardlink"         # delete or hardlink
    keep = "newest"             # newest or oldest
    verify = false              # byte-compare duplicates after hashing

    # What the rules may touch.
    include = ["*.png", "*.wav"]
    exclude = ["keep-me/"]
    categories = ["cache", "leftover", "session"]

There are no tables: every key applies to the whole run, and one level is one
less thing to get wrong in a file that decides what gets deleted. Relative paths
(and ``~``) in ``roots`` and ``sessions_dirs`` are taken from the config file's
own folder, not from wherever cron happens to start.

Every value is checked when the file is read, with the same parsers the flags
use; a wrong one is a one-line usage error naming the file, the key and what is
accepted, before anything is scanned.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gradio_clean.errors import GradioCleanError, UsageError
from gradio_clean.ignore import file_kind
from gradio_clean.options import (
    DEFAULTS,
    KEYS,
    OPTIONS,
    RULE_KEYS,
    Kind,
    Option,
    from_command_line,
    plain,
)

ENV_VAR = "GRADIO_CLEAN_CONFIG"
LOCAL_NAME = "gradio-clean.toml"
SYSTEM_CONFIG = "/etc/gradio-clean/config.toml"
CLI_SOURCE = "command line"
DEFAULT_SOURCE = "default"
MAX_BYTES = 1 << 20  # a config is a few lines; this only stops a huge file
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block the open


@dataclass(frozen=True, init=False)
class Config:
    """What one config file sets, typed by the option table; only the keys it sets."""

    source: str  # the file these came from, as it is named in messages
    values: Mapping[str, object]

    def __init__(self, *, source: str, **values: object) -> None:
        unknown = set(values) - set(KEYS)
        if unknown:
            raise TypeError(f"unknown config keys: {', '.join(sorted(unknown))}")
        object.__setattr__(self, "source", source)
        object.__setattr__(
            self, "values", {k: values[k] for k in KEYS if values.get(k) is not None}
        )

    def settings(self) -> dict[str, object]:
        """The keys the file sets, in the documented order."""
        return dict(self.values)


# -- finding the file ------------------------------------------------------------


def search_path(
    env: Mapping[str, str], cwd: str, *, system: str = SYSTEM_CONFIG
) -> tuple[str, ...]:
    """Where a config is looked for when neither --config nor $GRADIO_CLEAN_CONFIG names one.

    Listed whole so that `gradio-clean config` can say where it looked.
    """
    places = [os.path.join(cwd, LOCAL_NAME)]
    xdg = env.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(xdg):  # the XDG spec: a relative value is to be ignored
        home = env.get("HOME") or os.path.expanduser("~")
        xdg = os.path.join(home, ".config") if os.path.isabs(home) else ""
    if xdg:
        places.append(os.path.join(xdg, "gradio-clean", "config.toml"))
    places.append(system)
    return tuple(places)


def find_config(
    explicit: str | None,
    env: Mapping[str, str],
    cwd: str,
    *,
    system: str = SYSTEM_CONFIG,
    warn: Callable[[str], None] | None = None,
) -> str | None:
    """The config file that applies, first match wins; None if there is none.

    A file the user named (``--config`` or ``$GRADIO_CLEAN_CONFIG``) must exist: an
    unattended run that silently fell back to another file, or to none, would
    delete by rules nobody chose. The places searched by default may be absent.

    ``./gradio-clean.toml`` lies in whatever folder cron or a shell starts in, which
    may be one every user can write to (/tmp). It is used only when nobody else can
    have written it (see `untrusted_local`); otherwise `warn` is told and the search
    goes on.
    """
    if explicit is not None:
        return _named(explicit, cwd, f"--config {explicit}")
    from_env = env.get(ENV_VAR, "")
    if from_env:
        return _named(from_env, cwd, f"{ENV_VAR}={from_env}")
    local = local_config(cwd)
    for place in search_path(env, cwd, system=system):
        try:
            st = os.lstat(place) if place == local else os.stat(place)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            continue
        problem = untrusted_local(st) if place == local else _not_regular(st)
        if problem is None:
            return place
        if warn is not None:
            warn(f"ignoring {place}: {problem}")
    return None


def local_config(cwd: str) -> str:
    """The working directory's config, which must pass `untrusted_local`."""
    return os.path.join(cwd, LOCAL_NAME)


def untrusted_local(st: os.stat_result) -> str | None:
    """Why ./gradio-clean.toml may have been planted by another user; None if it cannot."""
    problem = _not_regular(st)
    if problem is not None:
        return problem
    euid = os.geteuid()
    if st.st_uid not in (0, euid):
        return (
            f"owned by uid {st.st_uid}, not by root or the user running gradio-clean (uid {euid})"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _not_regular(st: os.stat_result) -> str | None:
    return None if stat.S_ISREG(st.st_mode) else f"not a regular file ({file_kind(st.st_mode)})"


def _named(path: str, cwd: str, label: str) -> str:
    full = os.path.normpath(os.path.join(cwd, path))
    try:
        st = os.stat(full)
    except FileNotFoundError:
        raise UsageError(f"{label}: no such file") from None
    except OSError:
        return full  # reading it says why it cannot be read
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{label}: is a directory, not a config file")
    problem = _not_regular(st)
    if problem is not None:
        raise UsageError(f"{label}: {problem}")
    return full


# -- reading it ------------------------------------------------------------------


def load_config(path: str, *, local: bool = False) -> Config:
    """Read and check one config file; every problem is a one-line error naming it.

    `local`: the file is ./gradio-clean.toml, found by the search; the file opened
    must still pass `untrusted_local` (it may have been swapped since).
    """
    data = _read(path, local=local)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UsageError(f"{path}:{line}: invalid TOML: not UTF-8") from None
    try:
        return _load(path, text)
    except RecursionError:  # tomllib recurses once per nested array or table
        raise UsageError(f"{path}: invalid TOML: nested too deeply") from None


def _load(path: str, text: str) -> Config:
    if sys.version_info >= (3, 11):  # imported here: most runs read no config file
        import tomllib
    else:  # tomllib arrived in 3.11; tomli is the same parser, published separately
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}{_toml_error(exc, text)}") from None
    base = os.path.dirname(os.path.abspath(path))
    values: dict[str, object] = {}
    for key, value in doc.items():
        option = OPTIONS.get(key)
        if option is None:
            raise UsageError(_unknown_key(path, key, value))
        values[key] = check_value(Where(path, key, base), option, value)
    return Config(source=path, **values)


def _read(path: str, *, local: bool = False) -> bytes:
    """Open without blocking (a FIFO named as the config must not hang a run), then read."""
    try:
        fd = os.open(path, _OPEN_FLAGS | (os.O_NOFOLLOW if local else 0))
    except OSError as exc:
        raise GradioCleanError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        problem = untrusted_local(st) if local else _not_regular(st)
        if problem is not None:
            raise UsageError(f"{path}: {problem}")
        data = b""
        while len(data) <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise GradioCleanError(f"{path}: cannot read config: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise UsageError(f"{path}: not a config file (larger than {MAX_BYTES // 1024} KiB)")
    return data


_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$|\s*\(at end of document\)$")


def _toml_error(exc: ValueError, text: str) -> str:
    """``:LINE:COL: invalid TOML: what`` from tomllib's "what (at line L, column C)"."""
    message = " ".join(str(exc).split())
    found = _POSITION.search(message)
    if found is None:
        return f": invalid TOML: {message}"
    what = message[: found.start()]
    if found.group(1):
        return f":{found.group(1)}:{found.group(2)}: invalid TOML: {what}"
    line = text.count("\n") + 1
    column = len(text) - (text.rfind("\n") + 1) + 1
    return f":{line}:{column}: invalid TOML: {what} (at the end of the file)"


def _unknown_key(path: str, key: str, value: object) -> str:
    hint = ""
    close = difflib.get_close_matches(key.replace("-", "_"), KEYS, n=1)
    if close:
        hint = f" (did you mean {close[0]}?)"
    elif isinstance(value, dict):
        hint = " (the config has no tables: put its keys at the top level)"
    return f"{path}: unknown key {toml_key(key)}{hint}; accepted keys: {', '.join(KEYS)}"


@dataclass(frozen=True)
class Where:
    path: str
    key: str
    base: str  # the config file's folder, for relative paths

    def bad(self, value: object, accepted: str, index: int | None = None) -> UsageError:
        key = toml_key(self.key) + ("" if index is None else f"[{index}]")
        return UsageError(f"{self.path}: {key} = {toml_value(value)}: {accepted}")


def check_value(where: Where, option: Option, value: object) -> object:
    """A TOML value (or an attach() keyword) as `option`'s typed value, through the
    parser its flag uses; a wrong one is a one-line error naming `where`."""
    if option.kind is Kind.SWITCH:
        if not isinstance(value, bool):
            raise where.bad(value, option.accepted())
        return value
    if option.kind is Kind.VALUE:
        if option.byte_count and isinstance(value, int) and not isinstance(value, bool):
            try:  # `max_size = 20000000000`: a number of bytes
                return option.parse(str(value)) if option.parse else value
            except ValueError as exc:
                raise where.bad(value, str(exc)) from None
        if not isinstance(value, str):
            raise where.bad(value, option.accepted())
        return _parsed(where, option, value)
    items = _strings(where, value, option.item, empty_ok=option.empty_ok)
    if option.limit is not None:
        try:
            option.limit(items)
        except ValueError as exc:
            raise UsageError(f"{where.path}: {where.key}: {exc}") from None
    if option.path:
        base = where.base
        items = [os.path.normpath(os.path.join(base, os.path.expanduser(p))) for p in items]
    parsed = tuple(_parsed(where, option, item, i) for i, item in enumerate(items))
    return tuple(dict.fromkeys(parsed)) if option.choices is not None else parsed


def _parsed(where: Where, option: Option, text: str, index: int | None = None) -> object:
    if option.parse is None:
        return text
    try:
        return option.parse(text)
    except ValueError as exc:
        raise where.bad(text, str(exc), index) from None


def _strings(where: Where, value: object, what: str, *, empty_ok: bool) -> list[str]:
    """A TOML array of strings, element errors named by index."""
    if not isinstance(value, list):
        raise where.bad(value, f"expected an array of {what}s")
    if not value and not empty_ok:
        raise where.bad(value, f"expected at least one {what}; leave the key out for the default")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item or "\0" in item:
            raise where.bad(item, f"expected a {what} (a non-empty string)", i)
    return value


# -- meeting the command line ----------------------------------------------------


def merge(
    cli: Mapping[str, object | None],
    config: Config | None,
    defaults: Mapping[str, object],
    *,
    groups: Iterable[Collection[str]] = (RULE_KEYS,),
) -> tuple[dict[str, object], dict[str, str]]:
    """The effective value of every key, and where each came from.

    Layers, first set wins: the command line (None means "not given"), the config
    file (its path is the source), then `defaults` ("default"). The keys are those
    of `defaults`, then any other the command line or the file names.

    The keys of each group are decided together, by the first layer that sets any
    of them; a key of the group that layer leaves unset falls to its default, not
    to a lower layer. By default the group is the rule switches: `prune
    --duplicates` must not inherit the file's `older_than` and delete by age too.
    """
    layers: list[tuple[str, Mapping[str, object]]] = [
        (CLI_SOURCE, {k: v for k, v in cli.items() if v is not None})
    ]
    if config is not None:
        layers.append((config.source, config.settings()))
    keys = list(dict.fromkeys([*defaults, *cli, *(config.settings() if config else ())]))
    group_of = {key: tuple(group) for group in groups for key in group}
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for key in keys:
        group = group_of.get(key, (key,))
        layer = next((lay for lay in layers if any(k in lay[1] for k in group)), None)
        if layer is not None and key in layer[1]:
            values[key], sources[key] = layer[1][key], layer[0]
        else:
            values[key], sources[key] = defaults.get(key), DEFAULT_SOURCE
    return values, sources


@dataclass(frozen=True)
class Settings:
    """The effective value of every option, where each came from, and which file."""

    values: dict[str, object]
    sources: dict[str, str]
    config: Config | None
    looked_at: tuple[str, ...]

    def get(self, key: str) -> Any:
        return self.values[key]

    def document(self) -> dict[str, object]:
        """The values as JSON writes them, with the file and each value's source."""
        return {
            **{key: plain(value) for key, value in self.values.items()},
            "config_file": self.config.source if self.config else None,
            "sources": self.sources,
        }


def effective(
    flags: Mapping[str, object | None],
    explicit: str | None,
    env: Mapping[str, str],
    cwd: str,
    *,
    warn: Callable[[str], None],
) -> Settings:
    """The command line's flags (raw, None: not given) over the config file over the
    defaults. The file is read first, so a bad file is said before a bad flag."""
    found = find_config(explicit, env, cwd, warn=warn)
    searched = explicit is None and not env.get(ENV_VAR)
    config = load_config(found, local=searched and found == local_config(cwd)) if found else None
    values, sources = merge(from_command_line(flags), config, DEFAULTS)
    return Settings(values, sources, config, search_path(env, cwd))


# -- showing values the way the file spells them ---------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    """JSON's escapes are TOML's. JSON leaves DEL, C1 controls (ESC's 8-bit twin
    \\x9b among them) and other unprintable characters raw: TOML escapes them, and
    a terminal shown `gradio-clean config` never sees them."""
    quoted = json.dumps(text, ensure_ascii=False)
    if quoted.isprintable():
        return quoted
    return "".join(c if c.isprintable() else _toml_escape(c) for c in quoted)


def _toml_escape(c: str) -> str:
    code = ord(c)
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def toml_setting(key: str, value: object) -> str:
    """An option's typed value as its config line writes it: `max_size = 21474836480`,
    a number of bytes, as the file may say it (a number, not a string)."""
    text = plain(value)
    if OPTIONS[key].byte_count and isinstance(text, str) and text.isdigit():
        return f"{toml_key(key)} = {int(text)}"
    return f"{toml_key(key)} = {toml_value(text)}"


def toml_value(value: object) -> str:
    """`value` as it would be written in the config, on one line.

    Used in error messages (the value as the user wrote it) and by `gradio-clean
    config` (the effective configuration, ready to paste into a file). None has no
    TOML spelling; callers show an unset value their own way.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if hasattr(value, "isoformat"):  # TOML dates and times
        return str(value.isoformat())
    return repr(value)
