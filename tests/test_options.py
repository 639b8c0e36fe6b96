"""The option table (options.py) is the one place an option is defined: the command
line, the config file, attach(), `gradio-clean config`, `schedule` and RuleSet all
follow it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gradio_clean.cli import app
from gradio_clean.config import Where, check_value
from gradio_clean.durations import Duration
from gradio_clean.errors import UsageError
from gradio_clean.inapp import parse_options
from gradio_clean.options import (
    DEFAULTS,
    OPTIONS,
    RULE_KEYS,
    TABLE,
    AgeBy,
    Dedupe,
    Keep,
    Kind,
    Option,
    argv,
    from_command_line,
    no_rule_message,
    plain,
    selects,
)
from gradio_clean.rules import RuleSet


def help_text(runner: CliRunner, command: str) -> str:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("command", ["prune", "schedule"])
def test_every_option_of_the_table_is_a_flag(runner: CliRunner, command: str) -> None:
    text = help_text(runner, command)
    for option in TABLE:
        assert (option.metavar or "") + " " in text if option.argument else option.flag in text
        assert " ".join(option.help.split()[:5]) in " ".join(text.split())


def test_scan_takes_the_scope_options_and_no_rule(runner: CliRunner) -> None:
    text = help_text(runner, "scan")
    assert "--sessions-dir" in text
    for key in RULE_KEYS:
        assert OPTIONS[key].flag not in text


def test_the_defaults_are_the_rule_sets_defaults() -> None:
    assert RuleSet.from_values({}) == RuleSet()
    assert RuleSet.from_values(DEFAULTS) == RuleSet()
    assert not RuleSet.from_values(DEFAULTS).any


def test_rule_set_fields_come_typed_from_the_values() -> None:
    rules = RuleSet.from_values(
        {
            "older_than": Duration(129600.0, "1d12h"),
            "dedupe": Dedupe.DELETE,
            "keep": Keep.OLDEST,
            "age_by": AgeBy.CTIME,
            "session_ttl": Duration(7200.0, "2h"),
        }
    )
    assert (rules.older_than, rules.session_ttl) == (129600.0, 7200.0)
    assert (rules.dedupe, rules.keep, rules.age_by) == (Dedupe.DELETE, Keep.OLDEST, AgeBy.CTIME)
    assert rules.any


SAMPLES: dict[str, Any] = {
    "older_than": "1d12h",
    "age_by": "ctime",
    "session_ttl": "2h",
    "dedupe": "delete",
    "keep": "oldest",
    "include": ["*.png"],
    "exclude": ["keep/"],
    "categories": ["session", "cache"],
}


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_a_flag_a_config_key_and_attach_parse_alike(key: str) -> None:
    """The same text gives the same typed value on the command line, in a file and in
    attach(); only where the error is said differs."""
    option = OPTIONS[key]
    text = SAMPLES[key]
    raw: Any = text
    if option.choices is not None:  # typer hands choices over typed
        raw = (
            [option.choices(t) for t in text] if option.kind is Kind.LIST else option.choices(text)
        )
    flag = from_command_line({key: raw})[key]
    file = check_value(Where("/c.toml", key, "/"), option, text)
    assert flag == file
    assert plain(flag) == text  # written back as given, durations in the user's spelling
    in_app = parse_options("30m", "60s", (), None, {key: text}).rules
    assert in_app == RuleSet.from_values({key: file})


def test_a_bad_duration_is_named_by_flag_by_key_and_by_keyword() -> None:
    with pytest.raises(UsageError) as flag:
        from_command_line({"older_than": "3 days"})
    assert flag.value.message.startswith("--older-than '3 days': expected a duration")
    with pytest.raises(UsageError) as file:
        check_value(Where("/c.toml", "older_than", "/"), OPTIONS["older_than"], "3 days")
    assert file.value.message.startswith('/c.toml: older_than = "3 days": expected a duration')


def test_the_scheduled_argv_parses_back_to_the_same_values(
    runner: CliRunner, tmp_path: Path
) -> None:
    """What `schedule` writes, `prune` reads to the same effective values."""
    root = tmp_path / "gradio"
    root.mkdir()
    given: dict[str, Any] = {
        "roots": [str(root)],
        "older_than": "1d12h",
        "age_by": AgeBy.MTIME,
        "duplicates": False,
        "dedupe": Dedupe.DELETE,
        "keep": Keep.OLDEST,
        "verify": True,
        "orphaned_sessions": True,
        "session_ttl": "2h",
        "categories": [],
        "include": ["*.png", "a b/"],
        "exclude": ["keep/"],
    }
    args = argv(given)
    assert args[-1] == str(root)  # the folders last
    result = runner.invoke(app, ["prune", *args, "--json"])
    assert result.exit_code == 0, result.stderr
    rules = json.loads(result.stdout)["rules"]
    expected = {key: plain(value) for key, value in from_command_line(given).items()}
    assert {key: rules[key] for key in expected} == {
        **expected,
        "categories": None,  # none given
    }
    assert {key for key, source in rules["sources"].items() if source == "command line"} == {
        key for key in given if key != "categories"
    }


def test_no_rule_message_names_each_rule_switch() -> None:
    message = no_rule_message()
    assert message == (
        "no rule selected: give --older-than DUR, --duplicates, --orphaned-sessions, "
        "--max-size SIZE or --min-free SIZE|PCT%, or set older_than, duplicates, "
        "orphaned_sessions, max_size or min_free in a config file"
    )
    for key in RULE_KEYS:
        assert key in message and OPTIONS[key].flag in message


def test_a_rule_switch_that_is_a_value_selects_whenever_it_is_set() -> None:
    """A rule like max_size (a size) selects at any value, 0 too; a switch only when on."""
    assert selects(0) and selects(0.0) and selects(Duration(0.0, "0s"))
    assert not selects(None) and not selects(False)
    assert RuleSet(older_than=0.0).any


@dataclass(frozen=True)
class _Size:
    bytes: int
    text: str


def test_a_value_that_keeps_its_spelling_is_written_as_it_was_given() -> None:
    """A typed value with the text it came from (a Duration, a size) is shown as that."""
    assert plain(_Size(2 << 30, "2G")) == "2G"
    assert plain(Duration(90.0, "90s")) == "90s"
    assert plain((Dedupe.DELETE, "x")) == ["delete", "x"]


def test_an_option_may_take_its_parser_from_another_module() -> None:
    """A parser raises ValueError(reason); the config check names the file and key."""

    def parse_size(text: str) -> int:
        if not text.endswith("G"):
            raise ValueError("expected a size like 500M or 20G")
        return int(text[:-1]) << 30

    option = Option("max_size", Kind.VALUE, "At most SIZE.", "Rules", parse=parse_size, rule=True)
    where = Where("/c.toml", "max_size", "/")
    assert check_value(where, option, "2G") == 2 << 30
    with pytest.raises(UsageError) as bad:
        check_value(where, option, "2X")
    assert bad.value.message == '/c.toml: max_size = "2X": expected a size like 500M or 20G'
    assert option.flag == "--max-size" and option.rule_field == "max_size"
