"""schedule: cron fields, argv that survives cron and sh, systemd units that systemd accepts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradio_clean.errors import ExitCode, UsageError
from gradio_clean.schedule import (
    DEFAULT_EVERY,
    command_argv,
    crontab_line,
    parse_every,
    systemd_units,
)
from tests.helpers import only, systemd_split, unit_settings

EXE = "/opt/gradio clean/bin/gradio-clean"
PRUNE = ["prune", "--apply", "--quiet"]
# Any text but control characters, which are refused (tested below).
ARG = st.text(
    st.characters(codec="utf-8").filter(lambda c: not ("\0" <= c < " " or "\x7f" <= c <= "\x9f")),
    max_size=12,
)
# Everything the two formats treat specially, to make the round trips work for it.
AWKWARD = [
    "",
    " ",
    "a b",
    "50%",
    "%",
    "\\%",
    "a\\\\%b",
    "'",
    '"',
    "$HOME",
    "${X}",
    "$$",
    ";",
    "--",
    "\\",
]


def usage(fn: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(UsageError) as caught:
        fn(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.exit_code is ExitCode.USAGE
    assert "\n" not in caught.value.message
    return caught.value.message


# -- every -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("every", "fields"),
    [
        ("hourly", "0 * * * *"),
        ("daily", "0 0 * * *"),
        ("weekly", "0 0 * * 1"),
        ("1m", "* * * * *"),
        ("5m", "*/5 * * * *"),
        ("30m", "*/30 * * * *"),
        ("60m", "0 * * * *"),
        ("3600s", "0 * * * *"),
        ("1h", "0 * * * *"),
        ("6h", "0 */6 * * *"),
        ("12h", "0 */12 * * *"),
        ("24h", "0 0 * * *"),
        ("1d", "0 0 * * *"),
        ("7d", "0 0 * * 1"),
        ("1w", "0 0 * * 1"),
    ],
)
def test_cron_fields_repeat_exactly(every: str, fields: str) -> None:
    line = crontab_line(every, [], "/usr/bin/gradio-clean")
    assert line == f"{fields} /usr/bin/gradio-clean prune --apply --quiet"


def test_default_is_daily() -> None:
    assert DEFAULT_EVERY == "daily"
    assert crontab_line(DEFAULT_EVERY, [], "/x").startswith("0 0 * * * ")


@pytest.mark.parametrize(
    ("every", "exactly"), [("7m", "7m"), ("90m", "90m"), ("1h30m", "90m"), ("5h", "5h"),
                           ("2d", "2d"), ("2w", "2w"), ("61s", "61s"), ("3h1m", "3h1m")]
)  # fmt: skip
def test_cron_refuses_what_it_cannot_repeat_exactly(every: str, exactly: str) -> None:
    assert usage(crontab_line, every, [], "/x") == (
        f"--every {every!r}: cron cannot repeat exactly every {exactly}; use minutes that "
        "divide an hour, hours that divide a day, 1d or 1w (or --systemd, whose timers can)"
    )
    _, timer = systemd_units(every, [], "/x")  # systemd can
    assert f"OnUnitActiveSec={exactly}\n" in timer


@pytest.mark.parametrize(
    ("every", "message"),
    [
        ("fortnightly", "--every 'fortnightly': expected hourly, daily, weekly or a duration"),
        ("Daily", "--every 'Daily': expected hourly"),
        ("", "--every '': expected hourly"),
        ("-1h", "--every '-1h': expected hourly"),
        ("30s", "--every '30s': at least 1m; expected hourly"),
        ("0m", "--every '0m': at least 1m"),
    ],
)
def test_bad_every_is_a_usage_error_for_both(every: str, message: str) -> None:
    assert usage(parse_every, every).startswith(message)
    assert usage(crontab_line, every, [], "/x").startswith(message)
    assert usage(systemd_units, every, [], "/x").startswith(message)


def test_the_executable_must_be_absolute_and_args_printable() -> None:
    assert "absolute path, not 'gradio-clean'" in usage(crontab_line, "daily", [], "gradio-clean")
    assert "absolute path" in usage(systemd_units, "daily", [], "./gradio-clean")
    for bad in ("a\nb", "a\rb", "tab\there", "nul\0", "del\x7f", "c1\x85"):
        assert "control character" in usage(crontab_line, "daily", [bad], "/x")
        assert "control character" in usage(systemd_units, "daily", [bad], "/x")


def test_apply_and_quiet_come_before_the_users_args() -> None:
    """After a user's `--` they would be paths, and the run a dry run."""
    assert command_argv(["--", "-odd"], "/x") == ["/x", *PRUNE, "--", "-odd"]


# -- cron: the line, and what cron and sh make of it -------------------------------------


def cron_command(line: str) -> str:
    """What cron passes to /bin/sh: the command field, cut at an unescaped %.

    Mirrors cronie's do_command.c: a backslash takes the next character with it,
    and is dropped when that character is %; a bare % ends the command.
    """
    fields = line.split(" ", 5)
    assert len(fields) == 6, "five time fields and a command"
    out: list[str] = []
    chars = iter(fields[5])
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append(nxt if nxt == "%" else ch + nxt)
        elif ch == "%":
            pytest.fail(f"unescaped % would end the command: {line!r}")
        else:
            out.append(ch)
    return "".join(out)


@pytest.fixture(scope="module")
def argv_printer(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An executable, at a path that needs quoting, that prints the argv it got."""
    folder = tmp_path_factory.mktemp("bin") / "my tools %d"
    folder.mkdir()
    exe = folder / "gradio-clean"
    exe.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    exe.chmod(0o755)
    return str(exe)


def run_as_cron_would(line: str) -> list[str]:
    result = subprocess.run(
        ["/bin/sh", "-c", cron_command(line)], capture_output=True, text=True, check=True
    )
    argv: list[str] = json.loads(result.stdout)
    return argv


def test_awkward_args_reach_prune_unchanged_through_cron_and_sh(argv_printer: str) -> None:
    line = crontab_line("6h", AWKWARD, argv_printer)
    assert line.startswith("0 */6 * * * ")
    assert run_as_cron_would(line) == [*PRUNE, *AWKWARD]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(ARG | st.sampled_from(AWKWARD), max_size=5))
def test_any_args_reach_prune_unchanged_through_cron_and_sh(
    argv_printer: str, args: list[str]
) -> None:
    assert run_as_cron_would(crontab_line("daily", args, argv_printer)) == [*PRUNE, *args]


# -- systemd: keys, a model of its unquoting (tests/helpers.py), and systemd-analyze itself


def test_service_runs_prune_idle_and_hardened() -> None:
    service, _ = systemd_units(
        "daily",
        ["--older-than", "7d", "/tmp/gradio"],
        "/usr/local/bin/gradio-clean",
        roots=["/tmp/gradio", "/srv/my app"],
        metrics_file="/var/lib/node_exporter/textfile/gradio_clean.prom",
    )
    s = unit_settings(service)["Service"]
    assert only(s, "Type") == "oneshot"
    assert systemd_split(only(s, "ExecStart")) == [
        "/usr/local/bin/gradio-clean",
        *PRUNE,
        "--older-than",
        "7d",
        "/tmp/gradio",
    ]
    assert only(s, "Nice") == "10"
    assert only(s, "IOSchedulingClass") == "idle"
    assert only(s, "PrivateTmp") == "false"
    assert "# PrivateTmp=false: Gradio's cache is in the real /tmp" in service
    assert only(s, "ProtectSystem") == "strict"
    assert only(s, "ProtectHome") == "read-only"
    assert systemd_split(only(s, "ReadWritePaths")) == [
        "-/tmp/gradio",
        "-/srv/my app",
        "-/var/lib/node_exporter/textfile",
    ]
    assert only(s, "NoNewPrivileges") == "true"
    assert "ProtectProc" not in dict(s)
    assert "User" not in dict(s)
    assert unit_settings(service)["Unit"][0][0] == "Description"


def test_without_roots_the_service_keeps_data_folders_writable() -> None:
    service, _ = systemd_units("daily", [], "/usr/bin/gradio-clean")
    s = dict(unit_settings(service)["Service"])
    assert s["ProtectSystem"] == "full"
    assert "ReadWritePaths" not in s
    assert "ProtectHome" not in s


def test_roots_must_be_absolute() -> None:
    assert "absolute paths" in usage(systemd_units, "daily", [], "/x", roots=["rel/dir"])
    assert "absolute paths" in usage(systemd_units, "daily", [], "/x", roots=["/a\nb"])


def test_exec_start_gives_prune_exactly_the_awkward_args() -> None:
    service, _ = systemd_units("daily", AWKWARD, "/opt/100% tools/gradio-clean")
    exec_start = only(unit_settings(service)["Service"], "ExecStart")
    assert systemd_split(exec_start) == ["/opt/100% tools/gradio-clean", *PRUNE, *AWKWARD]


@given(st.lists(ARG | st.sampled_from(AWKWARD), max_size=6))
def test_exec_start_gives_prune_exactly_any_args(args: list[str]) -> None:
    service, _ = systemd_units("6h", args, EXE)
    exec_start = only(unit_settings(service)["Service"], "ExecStart")
    assert systemd_split(exec_start) == [EXE, *PRUNE, *args]


@pytest.mark.parametrize(
    ("every", "expected"),
    [
        ("hourly", {"OnCalendar": "hourly", "Persistent": "true", "RandomizedDelaySec": "6m"}),
        ("daily", {"OnCalendar": "daily", "Persistent": "true", "RandomizedDelaySec": "15m"}),
        ("weekly", {"OnCalendar": "weekly", "Persistent": "true", "RandomizedDelaySec": "15m"}),
        ("6h", {"OnBootSec": "15m", "OnUnitActiveSec": "6h", "RandomizedDelaySec": "15m"}),
        ("30m", {"OnBootSec": "15m", "OnUnitActiveSec": "30m", "RandomizedDelaySec": "3m"}),
        ("1d12h", {"OnBootSec": "15m", "OnUnitActiveSec": "36h", "RandomizedDelaySec": "15m"}),
    ],
)
def test_timer_keys(every: str, expected: dict[str, str]) -> None:
    _, timer = systemd_units(every, [], EXE)
    sections = unit_settings(timer)
    assert dict(sections["Timer"]) == expected
    assert sections["Install"] == [("WantedBy", "timers.target")]


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("every", ["daily", "weekly", "hourly", "30m", "1d12h"])
def test_systemd_analyze_verify_accepts_the_units(
    tmp_path: Path, argv_printer: str, every: str
) -> None:
    """verify resolves specifiers and finds the executable, so a wrong escape fails it."""
    service, timer = systemd_units(
        every,
        AWKWARD,
        argv_printer,  # its folder has a space and a % in its name
        roots=[str(tmp_path / "temp dir"), "/srv/app"],
        metrics_file=str(tmp_path / "metrics" / "gradio_clean.prom"),
    )
    (tmp_path / "gradio-clean.service").write_text(service)
    (tmp_path / "gradio-clean.timer").write_text(timer)
    assert SYSTEMD_ANALYZE is not None
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "gradio-clean.service", "gradio-clean.timer"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )
    assert (result.returncode, result.stderr, result.stdout) == (0, "", "")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_would_catch_a_bad_escape(tmp_path: Path, argv_printer: str) -> None:
    """The check above is not vacuous: with %d undoubled, systemd would run another path."""
    service, _ = systemd_units("daily", [], argv_printer)
    (tmp_path / "gradio-clean.service").write_text(service.replace("%%", "%"))
    assert SYSTEMD_ANALYZE is not None
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "gradio-clean.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "/run/credentials/gradio-clean.service/gradio-clean is not executable" in result.stderr
