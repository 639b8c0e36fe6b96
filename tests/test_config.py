"""The config file: search order, every check's exact message, and merging with flags."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradio_clean import config as config_module
from gradio_clean.config import (
    CLI_SOURCE,
    DEFAULT_SOURCE,
    MAX_BYTES,
    Config,
    find_config,
    load_config,
    merge,
    search_path,
    toml_value,
)
from gradio_clean.durations import ACCEPTED, Duration
from gradio_clean.errors import ExitCode, GradioCleanError, UsageError
from gradio_clean.options import KEYS, RULE_KEYS, AgeBy, Dedupe, Keep
from gradio_clean.sizes import Size, parse_min_free
from tests.conftest import NOBODY, cli_env, run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]


def write_config(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def usage_message(path: str) -> str:
    with pytest.raises(UsageError) as caught:
        load_config(path)
    assert caught.value.exit_code is ExitCode.USAGE
    assert "\n" not in caught.value.message
    return caught.value.message


# -- finding the file ------------------------------------------------------------


class Places:
    """All five places a config can be, inside tmp_path."""

    def __init__(self, tmp: Path) -> None:
        self.cwd = tmp / "work"
        self.cwd.mkdir()
        self.home = tmp / "home"
        self.explicit = tmp / "explicit.toml"
        self.from_env = tmp / "env.toml"
        self.local = self.cwd / "gradio-clean.toml"
        self.xdg = tmp / "xdg" / "gradio-clean" / "config.toml"
        self.system = tmp / "etc" / "gradio-clean" / "config.toml"
        self.env = {"GRADIO_CLEAN_CONFIG": str(self.from_env), "XDG_CONFIG_HOME": str(tmp / "xdg")}

    def find(self, explicit: str | None = None, env: dict[str, str] | None = None) -> str | None:
        return find_config(
            explicit, self.env if env is None else env, str(self.cwd), system=str(self.system)
        )


@pytest.fixture
def places(tmp_path: Path) -> Places:
    p = Places(tmp_path)
    for f in (p.explicit, p.from_env, p.local, p.xdg, p.system):
        write_config(f, "")
    return p


def test_first_match_wins_in_the_documented_order(places: Places) -> None:
    assert places.find(str(places.explicit)) == str(places.explicit)
    assert places.find() == str(places.from_env)
    del places.env["GRADIO_CLEAN_CONFIG"]
    assert places.find() == str(places.local)
    places.local.unlink()
    assert places.find() == str(places.xdg)
    places.xdg.unlink()
    assert places.find() == str(places.system)
    places.system.unlink()
    assert places.find() is None


def test_a_named_file_must_exist(places: Places) -> None:
    places.explicit.unlink()
    places.from_env.unlink()
    with pytest.raises(UsageError, match=r"^--config .*explicit\.toml: no such file$"):
        places.find(str(places.explicit))
    # no silent fall-back to ./gradio-clean.toml when the variable names a missing file
    with pytest.raises(UsageError, match=r"^GRADIO_CLEAN_CONFIG=.*env\.toml: no such file$"):
        places.find()
    with pytest.raises(UsageError, match=r"is a directory"):
        places.find(str(places.cwd))


def test_relative_explicit_is_taken_from_cwd_and_empty_variable_is_unset(places: Places) -> None:
    assert places.find("gradio-clean.toml") == str(places.local)
    places.env["GRADIO_CLEAN_CONFIG"] = ""
    assert places.find() == str(places.local)


def test_xdg_default_is_home_dot_config_and_a_relative_xdg_is_ignored(places: Places) -> None:
    places.local.unlink()
    in_home = places.home / ".config" / "gradio-clean" / "config.toml"
    write_config(in_home, "")
    assert places.find(env={"HOME": str(places.home)}) == str(in_home)
    assert places.find(env={"HOME": str(places.home), "XDG_CONFIG_HOME": "rel"}) == str(in_home)
    assert search_path({"HOME": str(places.home)}, "/w", system="/etc/x.toml") == (
        "/w/gradio-clean.toml",
        str(in_home),
        "/etc/x.toml",
    )


def test_a_folder_where_the_file_would_be_is_not_a_config(places: Places) -> None:
    places.env.pop("GRADIO_CLEAN_CONFIG")
    places.local.unlink()
    places.local.mkdir()
    assert places.find() == str(places.xdg)


# -- reading it ------------------------------------------------------------------


def documented_example() -> str:
    """The indented block after the module docstring's "::"."""
    doc = config_module.__doc__ or ""
    lines = doc.split("::\n\n", 1)[1].splitlines()
    block = []
    for line in lines:
        if line and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block))


def test_the_documented_example_loads_and_sets_every_key(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.toml", documented_example())
    cfg = load_config(path)
    assert cfg == Config(
        roots=("/var/tmp/gradio", "/srv/chatbot"),
        sessions_dirs=("/srv/chatbot/sessions",),
        older_than=Duration(7 * 86400, "7d"),
        duplicates=True,
        orphaned_sessions=True,
        max_size=Size(20 << 30, "20G"),
        min_free=parse_min_free("10%"),
        age_by=AgeBy.MTIME,
        session_ttl=Duration(3600, "1h"),
        min_age=Duration(600, "10m"),
        dedupe=Dedupe.HARDLINK,
        keep=Keep.NEWEST,
        verify=False,
        include=("*.png", "*.wav"),
        exclude=("keep-me/",),
        categories=("cache", "leftover", "session"),
        source=path,
    )
    assert tuple(cfg.settings()) == KEYS


def test_an_empty_file_sets_nothing(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", "# nothing yet\n")
    assert load_config(path) == Config(source=path)
    assert load_config(path).settings() == {}


def test_relative_paths_are_taken_from_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = write_config(
        tmp_path / "etc" / "c.toml",
        """
        roots = ["gradio", "../srv/app/", "~/apps/demo", "/abs/./x"]
        sessions_dirs = []
        """,
    )
    cfg = load_config(path)
    assert cfg.values["roots"] == (
        str(tmp_path / "etc" / "gradio"),
        str(tmp_path / "srv" / "app"),
        str(tmp_path / "home" / "apps" / "demo"),
        "/abs/x",
    )
    assert cfg.values["sessions_dirs"] == ()


def test_categories_keep_order_and_drop_repeats(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", 'categories = ["session", "cache", "session"]\n')
    assert load_config(path).values["categories"] == ("session", "cache")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('older_than = "3 days"', f'older_than = "3 days": {ACCEPTED}'),
        ('session_ttl = "-1h"', f'session_ttl = "-1h": negative; {ACCEPTED}'),
        (
            "older_than = 3",
            'older_than = 3: expected a duration string like "90m", "12h", "1d", "2w" or "1d12h"',
        ),
        ('duplicates = "yes"', 'duplicates = "yes": expected true or false'),
        ("verify = 1", "verify = 1: expected true or false"),
        ('dedupe = "symlink"', 'dedupe = "symlink": expected "delete" or "hardlink"'),
        ('keep = "Newest"', 'keep = "Newest": expected "newest" or "oldest"'),
        ('age_by = "birth"', 'age_by = "birth": expected "mtime", "atime", "ctime" or "newest"'),
        (
            'categories = ["cache", "junk"]',
            'categories[1] = "junk": expected "cache", "leftover", "session", "examples", '
            '"flagged", "internal" or "other"',
        ),
        (
            "categories = []",
            "categories = []: expected at least one category; leave the key out for the default",
        ),
        ('roots = "/tmp/gradio"', 'roots = "/tmp/gradio": expected an array of paths'),
        ("roots = []", "roots = []: expected at least one path; leave the key out for the default"),
        ('roots = ["/a", ""]', 'roots[1] = "": expected a path (a non-empty string)'),
        ("sessions_dirs = [1]", "sessions_dirs[0] = 1: expected a path (a non-empty string)"),
        ('roots = ["/a\\u0000b"]', 'roots[0] = "/a\\u0000b": expected a path (a non-empty string)'),
        (
            'include = ["*.png", "!"]',
            'include[1] = "!": not a gitignore-style pattern (matches nothing)',
        ),
        (
            'exclude = ["\\\\"]',
            'exclude[0] = "\\\\": not a gitignore-style pattern '
            "(a backslash at the end of a segment escapes nothing)",
        ),
        (
            "exclude = [[1]]",
            "exclude[0] = [1]: expected a gitignore-style pattern (a non-empty string)",
        ),
    ],
)
def test_a_bad_value_names_file_key_and_what_is_accepted(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write_config(tmp_path / "config.toml", text + "\n")
    assert usage_message(path) == f"{path}: {expected}"


def test_a_size_may_be_a_toml_integer_of_bytes(tmp_path: Path) -> None:
    """`max_size = 20000000000` reads as 20,000,000,000 bytes, as the flag reads it."""
    path = write_config(tmp_path / "c.toml", "max_size = 20000000000\nmin_free = 1073741824\n")
    values = load_config(path).values
    assert values["max_size"] == Size(20_000_000_000, "20000000000")
    assert values["min_free"] == parse_min_free("1073741824")
    assert values["min_free"].bytes == 1 << 30


def test_config_shows_a_size_of_bytes_as_the_number_it_was(tmp_path: Path) -> None:
    """What `gradio-clean config` prints reads back the same: a number of bytes stays
    a TOML integer, a size written with a unit stays that string."""
    path = write_config(tmp_path / "c.toml", 'max_size = 20000000000\nmin_free = "10%"\n')
    done = run_cli("config", "--config", str(path))
    assert done.returncode == 0, done.stderr
    shown = {
        line.split(" = ")[0]: line.split("#")[0].split(" = ")[1].strip()
        for line in done.stdout.decode().splitlines()
        if line.startswith(("max_size", "min_free"))
    }
    assert shown == {"max_size": "20000000000", "min_free": '"10%"'}
    again = write_config(tmp_path / "again.toml", f"max_size = {shown['max_size']}\n")
    assert load_config(again).values["max_size"] == Size(20_000_000_000, "20000000000")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_size = -5", "max_size = -5: negative; expected a size like"),
        (
            "max_size = 1.5",
            'max_size = 1.5: expected a size string like "500M", "20G" or "1.5T", '
            "or a number of bytes",
        ),
        (
            "max_size = true",
            'max_size = true: expected a size string like "500M", "20G" or "1.5T", '
            "or a number of bytes",
        ),
        ("min_free = -1", "min_free = -1: negative; expected a percentage like 10%"),
        (
            "min_free = [10]",
            'min_free = [10]: expected a percentage or size string like "10%" or "5G", '
            "or a number of bytes",
        ),
    ],
)
def test_a_bad_size_number_names_what_is_accepted(tmp_path: Path, text: str, expected: str) -> None:
    path = write_config(tmp_path / "c.toml", text + "\n")
    assert usage_message(path).startswith(f"{path}: {expected}")


ALL_KEYS = ", ".join(KEYS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'olderthan = "1d"',
            f"unknown key olderthan (did you mean older_than?); accepted keys: {ALL_KEYS}",
        ),
        (
            'older-than = "1d"',
            f"unknown key older-than (did you mean older_than?); accepted keys: {ALL_KEYS}",
        ),
        (
            '[prune]\nolder_than = "1d"',
            "unknown key prune (the config has no tables: put its keys at the top level); "
            f"accepted keys: {ALL_KEYS}",
        ),
        ('"my key" = 1', f'unknown key "my key"; accepted keys: {ALL_KEYS}'),
    ],
)
def test_an_unknown_key_is_named_with_a_hint(tmp_path: Path, text: str, expected: str) -> None:
    path = write_config(tmp_path / "config.toml", text + "\n")
    assert usage_message(path) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ('older_than = "7d"\nduplicates = tru\n', ":2:14: invalid TOML: Invalid value"),
        (
            'older_than = "7d"\nroots = [\n',
            ":3:1: invalid TOML: Invalid value (at the end of the file)",
        ),
        ("verify = true\nverify = false\n", ":2:15: invalid TOML: Cannot overwrite a value"),
    ],
)
def test_invalid_toml_is_one_line_with_file_and_line(
    tmp_path: Path, text: str, position: str
) -> None:
    path = write_config(tmp_path / "config.toml", text)
    assert usage_message(path) == f"{path}{position}"


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'verify = true\nolder_than = "7\xe9d"\n')
    assert usage_message(str(path)) == f"{path}:2: invalid TOML: not UTF-8"


def test_something_that_is_not_a_config_file(tmp_path: Path) -> None:
    assert usage_message("/dev/zero") == "/dev/zero: not a regular file (a character device)"
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (MAX_BYTES + 1))
    assert usage_message(str(big)) == f"{big}: not a config file (larger than 1024 KiB)"
    assert usage_message(str(tmp_path)) == f"{tmp_path}: not a regular file (a folder)"
    with pytest.raises(GradioCleanError) as caught:
        load_config(str(tmp_path / "missing.toml"))
    assert caught.value.message.endswith(
        "missing.toml: cannot read config: No such file or directory"
    )
    assert caught.value.exit_code is ExitCode.ERROR


def test_a_fifo_named_as_the_config_is_refused_without_blocking(tmp_path: Path) -> None:
    """Issue 14: `--config FIFO` and GRADIO_CLEAN_CONFIG=FIFO hung; open(O_NONBLOCK), then fstat."""
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    for args, env in (
        (["config", "--config", str(fifo)], cli_env()),
        (["config"], cli_env(GRADIO_CLEAN_CONFIG=str(fifo))),
        (["prune", "--older-than", "1d", str(tmp_path)], cli_env(GRADIO_CLEAN_CONFIG=str(fifo))),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "gradio_clean", *args],
            capture_output=True,
            timeout=30,
            env=env,
            cwd=tmp_path,
            check=False,
        )
        assert done.returncode == ExitCode.USAGE, done.stderr
        assert done.stderr.decode().endswith("fifo.toml: not a regular file (a FIFO)\n")
        assert done.stderr.count(b"\n") == 1
    # and load_config itself, given the FIFO's path, opens it without blocking
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from gradio_clean.config import load_config; load_config({str(fifo)!r})",
        ],
        capture_output=True,
        timeout=30,
        env=cli_env(),
        check=False,
    )
    assert b"not a regular file (a FIFO)" in child.stderr


def test_a_deeply_nested_config_is_a_one_line_usage_error(tmp_path: Path) -> None:
    """Issue 14: 5,000 nested arrays gave a RecursionError traceback."""
    path = write_config(tmp_path / "deep.toml", "include = " + "[" * 5000 + "]" * 5000 + "\n")
    assert usage_message(path) == f"{path}: invalid TOML: nested too deeply"
    done = run_cli("config", "--config", path)
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.decode() == f"gradio-clean: error: {path}: invalid TOML: nested too deeply\n"


def _symlink(p: Path) -> None:
    p.unlink()
    p.symlink_to(p.parent.parent / "explicit.toml")


def _fifo(p: Path) -> None:
    p.unlink()
    os.mkfifo(p)


@pytest.mark.parametrize(
    ("plant", "problem"),
    [
        (lambda p: p.chmod(0o664), "writable by group or others (mode 0664)"),
        (lambda p: p.chmod(0o646), "writable by group or others (mode 0646)"),
        (_symlink, "not a regular file (a symlink)"),
        (_fifo, "not a regular file (a FIFO)"),
    ],
    ids=["group-writable", "world-writable", "symlink", "fifo"],
)
def test_a_local_config_others_could_write_is_skipped_with_a_warning(
    places: Places, plant: Callable[[Path], object], problem: str
) -> None:
    del places.env["GRADIO_CLEAN_CONFIG"]
    plant(places.local)
    warned: list[str] = []
    found = find_config(
        None, places.env, str(places.cwd), system=str(places.system), warn=warned.append
    )
    assert found == str(places.xdg)  # the next place in the search path
    assert warned == [f"ignoring {places.local}: {problem}"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_a_local_config_of_another_user_is_skipped(places: Places, world_dir: Path) -> None:
    """Issue 14: a ./gradio-clean.toml planted in a world-writable folder overrode /etc's."""
    del places.env["GRADIO_CLEAN_CONFIG"]
    os.chown(places.local, NOBODY, NOBODY)
    warned: list[str] = []
    found = find_config(
        None, places.env, str(places.cwd), system=str(places.system), warn=warned.append
    )
    assert found == str(places.xdg)
    owner = f"owned by uid {NOBODY}, not by root or the user running gradio-clean (uid 0)"
    assert warned == [f"ignoring {places.local}: {owner}"]
    # swapped in after the search looked: the file opened is checked again
    with pytest.raises(UsageError, match=f"^{re.escape(str(places.local))}: owned by uid"):
        load_config(str(places.local), local=True)
    # the whole command, from a world-writable folder holding another user's config
    world_dir.chmod(0o1777)
    planted = world_dir / "gradio-clean.toml"
    planted.write_text('categories = ["flagged", "examples"]\nolder_than = "1s"\n')
    os.chown(planted, NOBODY, NOBODY)
    done = run_cli("config", cwd=world_dir)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode() == f"gradio-clean: warning: ignoring {planted}: {owner}\n"
    assert f"# config file: {places.xdg}\n".encode() in done.stdout  # the next place
    assert b"flagged" not in done.stdout
    # an explicitly named file is the operator's choice, whoever owns it
    assert load_config(str(planted)).values["categories"] == ("flagged", "examples")


# -- meeting the command line ----------------------------------------------------

DEFAULTS: dict[str, object] = {
    "older_than": None,
    "duplicates": False,
    "orphaned_sessions": False,
    "max_size": None,
    "min_free": None,
    "session_ttl": "1h",
    "dedupe": "delete",
    "keep": "newest",
    "age_by": "mtime",
}


def test_command_line_beats_file_beats_default() -> None:
    cfg = Config(dedupe="hardlink", keep="oldest", source="/etc/gc.toml")
    cli: dict[str, object | None] = {"keep": "newest", "dedupe": None, "age_by": None}
    values, sources = merge(cli, cfg, DEFAULTS)
    assert values["keep"] == "newest"
    assert sources["keep"] == CLI_SOURCE
    assert (values["dedupe"], sources["dedupe"]) == ("hardlink", "/etc/gc.toml")
    assert (values["age_by"], sources["age_by"]) == ("mtime", DEFAULT_SOURCE)
    assert list(values) == list(DEFAULTS)  # defaults' order, nothing missing
    assert values.keys() == sources.keys()


def test_keys_only_the_file_or_command_line_know_are_kept() -> None:
    cfg = Config(roots=("/srv/a",), source="/c.toml")
    values, sources = merge({"json": True}, cfg, {})
    assert values == {"json": True, "roots": ("/srv/a",)}
    assert sources == {"json": CLI_SOURCE, "roots": "/c.toml"}


def test_no_rule_flag_runs_the_files_rules() -> None:
    cfg = Config(older_than="7d", duplicates=True, session_ttl="2h", source="/c.toml")
    cli: dict[str, object | None] = dict.fromkeys(RULE_KEYS)
    values, sources = merge(cli, cfg, DEFAULTS)
    assert {k: values[k] for k in RULE_KEYS} == {
        "older_than": "7d",
        "duplicates": True,
        "orphaned_sessions": False,
        "max_size": None,
        "min_free": None,
    }
    assert [sources[k] for k in RULE_KEYS] == ["/c.toml", "/c.toml", *[DEFAULT_SOURCE] * 3]
    assert (values["session_ttl"], sources["session_ttl"]) == ("2h", "/c.toml")


def test_a_rule_flag_replaces_all_of_the_files_rules() -> None:
    """`prune --duplicates` with older_than in the file must not delete by age too."""
    cfg = Config(older_than="7d", orphaned_sessions=True, session_ttl="2h", source="/c.toml")
    values, sources = merge({"duplicates": True, "older_than": None}, cfg, DEFAULTS)
    assert {k: values[k] for k in RULE_KEYS} == {
        "older_than": None,
        "duplicates": True,
        "orphaned_sessions": False,
        "max_size": None,
        "min_free": None,
    }
    assert [sources[k] for k in RULE_KEYS] == [
        CLI_SOURCE and DEFAULT_SOURCE,
        CLI_SOURCE,
        DEFAULT_SOURCE,
        DEFAULT_SOURCE,
        DEFAULT_SOURCE,
    ]
    # a rule's parameters still come from the file
    assert (values["session_ttl"], sources["session_ttl"]) == ("2h", "/c.toml")


def test_without_groups_every_key_merges_alone() -> None:
    cfg = Config(older_than="7d", source="/c.toml")
    values, _ = merge({"duplicates": True}, cfg, DEFAULTS, groups=())
    assert (values["older_than"], values["duplicates"]) == ("7d", True)


def test_no_config_file() -> None:
    values, sources = merge({"keep": None}, None, {"keep": "newest"})
    assert (values, sources) == ({"keep": "newest"}, {"keep": DEFAULT_SOURCE})


# -- TOML spelling -----------------------------------------------------------------

toml_scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(st.characters(codec="utf-8"))
)


@given(
    st.recursive(
        toml_scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=10,
    )
)
def test_toml_value_reads_back_as_the_same_value(value: object) -> None:
    text = toml_value(value)
    assert "\n" not in text
    assert tomllib.loads(f"k = {text}")["k"] == value


def test_toml_value_escapes_what_a_terminal_would_act_on() -> None:
    text = "a\x7fb\x9b2Jc\u2028d\u202ee\n\x1b"
    shown = toml_value(text)
    assert shown == '"a\\u007fb\\u009b2Jc\\u2028d\\u202ee\\n\\u001b"'
    assert shown.isprintable()
    assert tomllib.loads(f"x = {shown}")["x"] == text


def test_toml_value_of_a_tuple_and_a_table() -> None:
    assert toml_value(("a", 1, True)) == '["a", 1, true]'
    assert toml_value({"a b": 1, "c": [2]}) == '{ "a b" = 1, c = [2] }'
