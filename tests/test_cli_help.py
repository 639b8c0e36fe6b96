"""Every command answers --help; --version works; bad options fail cleanly.

Commands are found through typer's own registry, so commands added later are
covered without touching this file.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from gradio_clean import __version__
from gradio_clean.cli import app
from tests.conftest import REPO, cli_env, run_cli


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subcommands: Mapping[str, Any] = getattr(command, "commands", None) or {}
    for name in sorted(subcommands):
        sub = subcommands[name]
        yield (*path, name), sub
        yield from _walk(sub, (*path, name))


COMMANDS = dict(_walk(typer.main.get_command(app)))


def test_the_registry_is_walked() -> None:
    assert ("scan",) in COMMANDS


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_command_answers_help(runner: CliRunner, path: tuple[str, ...], flag: str) -> None:
    result = runner.invoke(app, [*path, flag])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    words = " ".join(result.stdout.split())  # rich wraps at the console width
    assert f"Usage: gradio-clean {' '.join(path)} " in words
    help_text = re.sub(r"\[/?[a-z ]+\]", "", COMMANDS[path].help or "").strip()
    assert help_text, f"{' '.join(path)} has no help text"
    assert " ".join(help_text.split()[:4]) in words


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_rejects_an_unknown_option(runner: CliRunner, path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--no-such-option"])
    assert result.exit_code == 2, result.output
    command = " ".join(("gradio-clean", *path))
    assert (result.stdout, result.stderr) == (
        "",
        f"gradio-clean: error: no such option: --no-such-option (see '{command} -h')\n",
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["prune", "--older", "1d"], "no such option: --older (did you mean --older-than?)"),
        (["prune", "--dupes"], "no such option: --dupes (did you mean --dedupe or --duplicates?)"),
        (
            ["prune", "--categories", "cache"],
            "no such option: --categories (did you mean --category?)",
        ),
        (["scan", "--tpo", "3"], "no such option: --tpo (did you mean --top?)"),
        (["prune", "--verbose"], "no such option: --verbose"),
        (["prune", "--root", "x"], "no such option: --root"),  # an argument, not an option
    ],
)
def test_a_mistyped_option_names_only_the_options_close_to_it(
    runner: CliRunner, args: list[str], error: str
) -> None:
    """click's hint compared the names with their dashes, so `--older` got
    "(Possible options: --exclude, --include, --older-than)"."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    command = f"gradio-clean {args[0]}"
    assert (result.stdout, result.stderr) == (
        "",
        f"gradio-clean: error: {error} (see '{command} -h')\n",
    )
    if args[1] == "--older":  # the README shows this one
        assert (
            f"`gradio-clean: error: {error} (see '{command} -h')`"
            in (REPO / "README.md").read_text()
        )


def test_top_level_help(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    for name in (p[0] for p in COMMANDS):
        assert name in result.stdout


def test_unknown_top_level_option_and_command(runner: CliRunner) -> None:
    for args, error in (
        (["--no-such-option"], "no such option: --no-such-option"),
        (["no-such-command"], "no such command 'no-such-command'"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.stderr == f"gradio-clean: error: {error} (see 'gradio-clean -h')\n"


def test_a_bad_value_for_a_typed_option_is_one_line() -> None:
    proc = run_cli("scan", "--top", "-1", timeout=60)
    assert proc.returncode == 2
    line = proc.stderr.decode()  # the middle is typer's wording, which changes
    assert line.startswith("gradio-clean: error: invalid value for '--top': ")
    assert line.endswith(" (see 'gradio-clean scan -h')\n")
    assert line.count("\n") == 1


def test_a_bad_choice_is_one_line_naming_the_choices() -> None:
    proc = run_cli("prune", "--older-than", "1d", "--age-by", "foo", timeout=60)
    assert proc.returncode == 2
    line = proc.stderr.decode()
    assert line.startswith("gradio-clean: error: invalid value for '--age-by': ")
    assert "'mtime'" in line and "'newest'" in line and "Value error" not in line
    assert line.endswith(" (see 'gradio-clean prune -h')\n") and line.count("\n") == 1


def test_no_arguments_still_show_the_help() -> None:
    proc = run_cli(timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith("Usage: gradio-clean [OPTIONS] COMMAND [ARGS]...")


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(runner: CliRunner, flag: str) -> None:
    result = runner.invoke(app, [flag])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"gradio-clean {__version__}\n"


def test_python_m_gradio_clean_version() -> None:
    proc = run_cli("--version", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == f"gradio-clean {__version__}\n"


def test_python_m_gradio_clean_unknown_option() -> None:
    proc = run_cli("scan", "--no-such-option", timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.decode() == (
        "gradio-clean: error: no such option: --no-such-option (see 'gradio-clean scan -h')\n"
    )


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_help_reads_well_at_80_columns(path: tuple[str, ...]) -> None:
    """No type beside a flag that takes no value, no help squeezed into a narrow column,
    and a help text's own [default: ...] kept (rich markup used to eat it)."""
    proc = subprocess.run(
        [sys.executable, "-m", "gradio_clean", *path, "--help"],
        capture_output=True,
        text=True,
        env=cli_env(COLUMNS="80"),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), proc.stdout
    assert "<bool>" not in proc.stdout
    for line in lines:
        first, _, help_text = line.strip().partition("  ")
        if first.startswith("-") and help_text.strip():
            assert len(line) - len(help_text.lstrip()) <= 36, f"help starts too far right: {line}"
    if path == ("prune",):
        assert "[default: newest," in proc.stdout
        assert "Files older than DUR (see --age-by): 90m," in proc.stdout


def _flags(command: Any) -> set[str]:
    return {f for p in command.params for f in (*p.opts, *p.secondary_opts) if f[:2] == "--"}


FLAGS = set().union({"--help"}, *map(_flags, COMMANDS.values()))


@pytest.mark.parametrize("columns", [60, 80])
@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_help_never_breaks_a_flag_or_a_name_at_its_hyphen(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...], columns: int
) -> None:
    """An operator copies a flag from the help: at 60 columns the wrapper broke
    `--session-ttl` over two lines as `--session-` / `ttl` (and `--min-free`, and
    `./gradio-clean.toml`), 17 times over the commands, 4 times at 80. A word wider
    than the help column ($XDG_CONFIG_HOME/gradio-clean/config.toml at 60) still breaks
    at a hyphen rather than inside a word."""
    monkeypatch.setenv("COLUMNS", str(columns))
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    own = _flags(COMMANDS[path])
    said = re.findall(r"(?<![\w-])--[a-zA-Z][\w-]*\w", result.stdout)
    assert own <= set(said)  # each of its own flags, whole
    assert set(said) <= FLAGS, set(said) - FLAGS  # and none cut short
    lines = result.stdout.splitlines()
    for line, after in itertools.pairwise(lines):
        if re.search(r"\w-$", line):  # only a word wider than the help column breaks
            word = line.split()[-1] + after.split()[0]
            room = columns - 2 - (len(after) - len(after.lstrip()))
            assert len(word) > room, f"{word} broken at its hyphen:\n{line}\n{after}"


IMPORTED = """
import runpy, sys
sys.argv = ["gradio-clean", *sys.argv[1:]]
try:
    runpy.run_module("gradio_clean", run_name="__main__")
except SystemExit:
    pass
heavy = ("typer", "rich", "humanize", "pathspec", "gradio_clean.cli", "gradio_clean.rules",
         "gradio_clean.scan", "gradio_clean.delete", "gradio_clean.report", "gradio_clean.config")
print(" ".join(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--version"], ""),
        (["--help"], "gradio_clean.cli typer"),
        (["prune", "-h"], "gradio_clean.cli typer"),
    ],
)
def test_version_and_help_import_only_what_they_need(args: list[str], allowed: str) -> None:
    """--version answers before typer is imported; --help needs typer but neither rich
    nor the library (the time a shell user waits is mostly imports)."""
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTED, *args],
        capture_output=True,
        text=True,
        env=cli_env(COLUMNS="80"),
        check=False,
    )
    assert proc.stdout.startswith(("gradio-clean ", "Usage: gradio-clean")), proc.stderr
    imported = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    assert imported == allowed
