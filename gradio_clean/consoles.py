"""Where output goes: data to stdout, everything else to stderr, and the one place
an error becomes a one-line message and an exit code."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import typer

from gradio_clean.errors import ExitCode, GradioCleanError, Interrupted
from gradio_clean.text import shown

if TYPE_CHECKING:
    from rich.console import Console


class Consoles:
    """Data to stdout, everything else to stderr, as rich Consoles made on first use:
    a --json run with nothing to say on stderr never imports rich (nor report.py)."""

    @functools.cached_property
    def out(self) -> Console:
        from rich.console import Console

        return Console(soft_wrap=True)

    @functools.cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, soft_wrap=True)

    def err_is_terminal(self) -> bool:
        """rich's `is_terminal` for stderr; without rich where the answer is plainly no:
        stderr is no tty, and neither TTY_COMPATIBLE nor FORCE_COLOR says it is one."""
        forced = any(name in os.environ for name in ("TTY_COMPATIBLE", "FORCE_COLOR"))
        if sys.stderr is not None and not forced:
            try:
                if not sys.stderr.isatty():
                    return False
            except ValueError:  # closed: rich says no as well
                return False
        return self.err.is_terminal


@contextlib.contextmanager
def handled(io: Consoles) -> Iterator[None]:
    """The one place a GradioCleanError becomes a one-line message and an exit code."""
    try:
        yield
    except Interrupted as exc:  # not an error: asked for
        io.err.print(f"gradio-clean: {exc.message}", markup=False, highlight=False)
        raise typer.Exit(int(exc.exit_code)) from None
    except GradioCleanError as exc:
        io.err.print(f"gradio-clean: error: {shown(exc.message)}", markup=False, highlight=False)
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        io.err.print("gradio-clean: interrupted", markup=False)
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


def progress_line(
    io: Consoles, label: str, show: bool
) -> contextlib.AbstractContextManager[Callable[[int, int], None] | None]:
    """report's progress line where one is shown; none (and no rich) where not."""
    if not show:
        return contextlib.nullcontext()
    from gradio_clean.report import progress_line

    return progress_line(io.err, label)


def show_warnings(io: Consoles, warnings: Sequence[tuple[str, str]], dropped: int) -> None:
    """The warnings on stderr; report.py (and rich) only when there are some."""
    if warnings or dropped:
        from gradio_clean.report import render_warnings

        render_warnings(warnings, dropped, io.err)
