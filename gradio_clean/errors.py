"""The one error type, and the exit codes it maps to.

Library code raises `GradioCleanError`; only `cli.main` turns it into a
one-line message and an exit code, so every command fails the same way.
"""

from __future__ import annotations

import enum
import signal


class ExitCode(enum.IntEnum):
    """Documented in the README; cron and systemd units key off these."""

    OK = 0
    ERROR = 1
    USAGE = 2
    PARTIAL = 3  # the run finished, but some entries were skipped or failed (or folders kept)
    BUSY = 4  # another gradio-clean run holds the root's lock
    OVER_BUDGET = 5  # --max-size/--min-free not met: what is left is protected, young or in use
    INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2, as shells report it
    TERMINATED = 143  # SIGTERM (systemd stop, Kubernetes deadline): 128 + 15


class GradioCleanError(Exception):
    """An error the user can act on, with the exit code it deserves."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(GradioCleanError):
    """Bad arguments or config values: exit 2, like any other usage error."""

    def __init__(self, message: str) -> None:
        super().__init__(message, ExitCode.USAGE)


class Interrupted(GradioCleanError):
    """SIGINT or SIGTERM stopped the run early; the exit status says which."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message, signal_exit_code(signum))
        self.signum = signum


def signal_exit_code(signum: int) -> ExitCode:
    """130 for SIGINT, 143 for SIGTERM (the only two that stop a run gracefully)."""
    return ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED


def signal_name(signum: int) -> str:
    """SIGTERM rather than 15, for messages."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
