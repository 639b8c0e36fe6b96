"""Ready-to-install crontab lines and systemd units for unattended prunes.

Both run ``<exe> prune --apply --quiet <args>``:

- ``exe`` is the absolute path of the installed executable: cron runs commands
  with ``PATH=/usr/bin:/bin``, and a virtualenv or pipx install is on neither.
- ``--apply`` because nobody is there to read a dry run, ``--quiet`` so that a
  clean run prints nothing and cron mails nothing; errors still print.
- Both go before the user's arguments, so an ``--`` among those cannot turn
  them into paths.
- No ``flock(1)`` wrapper: a run still going when the next one starts is
  already kept out by prune's own lock on each root, and exits BUSY.

The arguments are written so that cron's ``/bin/sh`` and systemd's own command
line parser each hand prune exactly the argv given, whatever it contains
(spaces, quotes, ``%``, ``$``, ``;``). Control characters are refused: neither
format can carry them on one line without a decoding step we would have to
trust. The caller should pass roots, sessions dirs and ``--config`` explicitly:
cron and systemd start with another environment and working directory than the
shell that ran ``gradio-clean schedule``, so defaults would find other folders.

``every`` is ``hourly``, ``daily`` (the default), ``weekly`` or a duration. The
named ones run when systemd's ``hourly``/``daily``/``weekly`` calendar events
fire (minute 0; midnight; Monday midnight), in both formats. A duration is
exact or refused: cron can only repeat a number of minutes that divides an
hour, of hours that divides a day, a day or a week (``*/7`` in the minute field
runs at :00, :07, … :56 and then :00 again, which is not every 7 minutes).
systemd repeats any duration, counted from the last run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from gradio_clean.durations import DurationError, format_duration, parse_duration
from gradio_clean.errors import GradioCleanError, UsageError

DEFAULT_EVERY = "daily"
UNIT_NAME = "gradio-clean"
SYSTEMD_DIR = "/etc/systemd/system"
BOOT_DELAY = 15 * 60  # first run after a boot: soon, but not in the middle of it
MAX_RANDOM_DELAY = 15 * 60

_NAMED: dict[str, tuple[str, int]] = {  # name: (cron fields, seconds)
    "hourly": ("0 * * * *", 3600),
    "daily": ("0 0 * * *", 86400),
    "weekly": ("0 0 * * 1", 7 * 86400),
}
_EVERY_ACCEPTED = "expected hourly, daily, weekly or a duration like 30m, 6h or 1d"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1
_SYSTEMD_PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


@dataclass(frozen=True)
class Every:
    text: str  # as the user wrote it, for messages
    seconds: int
    calendar: str | None  # systemd's OnCalendar= name, for hourly/daily/weekly


def parse_every(every: str) -> Every:
    """Check `every` once for both formats; a bad one is a one-line usage error."""
    if every in _NAMED:
        return Every(every, _NAMED[every][1], every)
    try:
        seconds = int(parse_duration(every))
    except DurationError:
        raise UsageError(f"--every {every!r}: {_EVERY_ACCEPTED}") from None
    if seconds < 60:
        raise UsageError(f"--every {every!r}: at least 1m; {_EVERY_ACCEPTED}")
    return Every(every, seconds, None)


def prune_args(
    flag_args: Sequence[str],
    *,
    pinned: bool,
    found: Sequence[str],
    config_file: str | None,
    metrics_file: str | None,
) -> list[str]:
    """The arguments the scheduled prune gets after ``prune --apply --quiet``.

    `pinned`: the roots were given (flags or config). Otherwise the roots found now
    (`found`) are pinned: cron and systemd start elsewhere, without GRADIO_TEMP_DIR.
    """
    args = list(flag_args)
    if not pinned:
        if not found:  # a line with nothing pinned would prune wherever cron starts
            raise UsageError(
                "no Gradio cache found to schedule; give its folder as PATH "
                "(or set roots in a config file)"
            )
        args += found
    if config_file is not None:
        args = ["--config", os.path.abspath(config_file), *args]
    if metrics_file is not None:
        args = ["--metrics-file", os.path.abspath(metrics_file), *args]
    return args


def command_argv(args: Sequence[str], exe: str) -> list[str]:
    """The argv both formats run."""
    if not exe.startswith("/"):
        raise UsageError(
            f"the executable must be given as an absolute path, not {exe!r}: "
            "cron and systemd do not search the PATH of your shell"
        )
    argv = [exe, "prune", "--apply", "--quiet", *args]
    for arg in argv:
        if _CONTROL.search(arg):
            raise UsageError(
                f"{arg!r}: a control character (newline, tab …) cannot go into a crontab "
                "line or a unit file"
            )
    return argv


# -- cron ---------------------------------------------------------------------------


def cron_fields(every: Every) -> str:
    """The five time fields that repeat exactly `every`, or a UsageError."""
    if every.calendar is not None:
        return _NAMED[every.calendar][0]
    minutes, seconds = divmod(every.seconds, 60)
    if seconds == 0 and minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    hours, minutes = divmod(minutes, 60)
    if seconds == 0 and minutes == 0:
        if hours < 24 and 24 % hours == 0:
            return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
        if hours == 24:
            return _NAMED["daily"][0]
        if hours == 7 * 24:
            return _NAMED["weekly"][0]
    exactly = format_duration(every.seconds)
    raise UsageError(
        f"--every {every.text!r}: cron cannot repeat exactly every {exactly}; "
        "use minutes that divide an hour, hours that divide a day, 1d or 1w "
        "(or --systemd, whose timers can)"
    )


def crontab_line(every: str, args: Sequence[str], exe: str) -> str:
    """One line for ``crontab -e``: five time fields and the command."""
    fields = cron_fields(parse_every(every))
    return f"{fields} " + " ".join(cron_word(a) for a in command_argv(args, exe))


def cron_word(arg: str) -> str:
    """`arg` as one word of a crontab command.

    Cron hands the command to ``/bin/sh``, so the word is shell-quoted. Before
    that, cron cuts the command at an unescaped ``%`` (the rest becomes stdin) and
    turns ``\\%`` into ``%``, but a backslash also swallows whatever follows it, so
    ``\\%`` inside single quotes after another backslash would not work. Each
    ``%`` is therefore written ``\\%`` outside the quotes, where the shell takes a
    bare ``%`` literally.
    """
    if not arg:
        return "''"
    return "\\%".join(shlex.quote(piece) if piece else "" for piece in arg.split("%"))


# -- systemd ------------------------------------------------------------------------


def systemd_word(arg: str) -> str:
    """`arg` as one word of a unit-file command line or path list.

    Quoted and backslash-escaped as systemd unquotes it (so ``;`` is an argument,
    not a command separator), then ``%`` doubled against specifier expansion and
    ``$`` doubled against environment variable substitution.
    """
    if not _SYSTEMD_PLAIN.fullmatch(arg):
        arg = '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg.replace("%", "%%").replace("$", "$$")


def systemd_units(
    every: str,
    args: Sequence[str],
    exe: str,
    *,
    roots: Sequence[str] = (),
    metrics_file: str | None = None,
) -> tuple[str, str]:
    """``gradio-clean.service`` and ``gradio-clean.timer``, ready for /etc/systemd/system.

    `roots` (the roots and sessions dirs the run prunes, absolute) and the folder
    of `metrics_file` become the only writable paths under ProtectSystem=strict.
    Without `roots` the unit falls back to ProtectSystem=full, which leaves
    /tmp, /var, /srv and /home writable: safer than guessing and failing.
    """
    when = parse_every(every)
    argv = command_argv(args, exe)
    service = _service(when, argv, roots, metrics_file)
    return service, _timer(when)


def _service(
    when: Every, argv: Sequence[str], roots: Sequence[str], metrics_file: str | None
) -> str:
    writable = list(roots)
    if metrics_file is not None:
        writable.append(os.path.dirname(metrics_file))
    for path in writable:
        if not path.startswith("/") or _CONTROL.search(path):
            raise UsageError(f"{path!r}: the unit needs absolute paths without control characters")
    if roots:
        # "-": a root that does not exist yet (no Gradio app has run since boot) must
        # not stop the unit from starting; prune then reports it like any missing root.
        paths = " ".join(systemd_word("-" + p) for p in dict.fromkeys(writable))
        protect = [
            "# Everything is read-only except the folders it prunes (and its metrics file's).",
            "ProtectSystem=strict",
            f"ReadWritePaths={paths}",
            "ProtectHome=read-only",
        ]
    else:
        protect = [
            "# No roots were given, so /tmp, /var, /srv and /home stay writable; give the",
            "# roots to `gradio-clean schedule` to make everything else read-only.",
            "ProtectSystem=full",
        ]
    lines = [
        f"# {SYSTEMD_DIR}/{UNIT_NAME}.service, started by {UNIT_NAME}.timer.",
        "# Written by `gradio-clean schedule --systemd`.",
        "[Unit]",
        "Description=Remove files Gradio apps left on disk (gradio-clean prune)",
        "After=local-fs.target",
        "",
        "[Service]",
        "Type=oneshot",
        "ExecStart=" + " ".join(systemd_word(a) for a in argv),
        "# Cleaning up must never compete with the apps it cleans up after.",
        "Nice=10",
        "IOSchedulingClass=idle",
        "# Runs as root: apps run as other users, and their files are removed and their",
        "# open files found in /proc/PID/fd. Root keeps only these powers:",
        "# DAC_* to read and remove any file, FOWNER to remove or hard-link another",
        "# user's file in a sticky /tmp, SYS_PTRACE to read other users' /proc/PID/fd.",
        "CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_SYS_PTRACE",
        "# PrivateTmp=false: Gradio's cache is in the real /tmp; a private one would hide it.",
        "PrivateTmp=false",
        *protect,
        "# The run lock lives in /run/gradio-clean, which no other user can enter; kept",
        "# between runs, so that a run by hand still excludes the timer's.",
        "RuntimeDirectory=gradio-clean",
        "RuntimeDirectoryMode=0700",
        "RuntimeDirectoryPreserve=yes",
        "# No ProtectProc= or ProcSubset=: files in use are found through every process's",
        "# /proc/PID/fd and /proc/PID/maps, and through /proc/locks.",
        "NoNewPrivileges=true",
        "PrivateMounts=true",
        "PrivateNetwork=true",
        "PrivateDevices=true",
        "ProtectKernelTunables=true",
        "ProtectKernelModules=true",
        "ProtectKernelLogs=true",
        "ProtectControlGroups=true",
        "ProtectClock=true",
        "ProtectHostname=true",
        "RestrictNamespaces=true",
        "RestrictRealtime=true",
        "RestrictSUIDSGID=true",
        "RestrictAddressFamilies=AF_UNIX",
        "LockPersonality=true",
        "MemoryDenyWriteExecute=true",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged",
        "# A call outside the filter fails (and is reported) instead of killing the run.",
        "SystemCallErrorNumber=EPERM",
    ]
    return "\n".join(lines) + "\n"


def _timer(when: Every) -> str:
    spread = format_duration(min(when.seconds // 10, MAX_RANDOM_DELAY))
    if when.calendar is not None:
        schedule = [
            f"OnCalendar={when.calendar}",
            "# A run missed while the machine was off happens at the next boot.",
            "Persistent=true",
        ]
        description = when.calendar
    else:
        interval = format_duration(when.seconds)
        schedule = [
            "# First run soon after boot (or at once when enabled later), then every",
            f"# {interval} after the previous run started. Persistent= applies only to",
            "# OnCalendar=; OnBootSec= is what catches up after a reboot here.",
            f"OnBootSec={format_duration(BOOT_DELAY)}",
            f"OnUnitActiveSec={interval}",
        ]
        description = f"every {interval}"
    lines = [
        f"# {SYSTEMD_DIR}/{UNIT_NAME}.timer",
        f"# Enable: systemctl daemon-reload && systemctl enable --now {UNIT_NAME}.timer",
        "[Unit]",
        f"Description=Run gradio-clean prune {description}",
        "",
        "[Timer]",
        *schedule,
        "# Spread a fleet's runs so that they do not all start at the same second.",
        f"RandomizedDelaySec={spread}",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]
    return "\n".join(lines) + "\n"


def installed_executable() -> str:
    """The installed console script, as an absolute path (cron has its own PATH)."""
    beside = os.path.join(os.path.dirname(sys.executable), "gradio-clean")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("gradio-clean")
    if found:
        return os.path.abspath(found)
    raise GradioCleanError(
        "cannot find the installed gradio-clean executable; "
        "install the package (pip install gradio-clean) first"
    )
