"""Where output goes: data to stdout, everything else to stderr, and the one place
an error becomes a one-line message and an exit code."""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

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


def folds(console: Console) -> bool:
    """Whether prose (a summary, a heading) is folded to `console`'s width: on a terminal,
    or where COLUMNS says how wide. Piped (cron's mail, a log), rich takes 80 columns, a
    width no one chose, and broke `Budget --max-size 1M: … after` from its end: there a
    line stays whole, for the mail reader to fold. Tables still take the width. Asked of
    each console: stdout may be a terminal while stderr goes to a log."""
    return console.is_terminal or "COLUMNS" in os.environ


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


_HELD = "\ue000"  # private use: what the wrapper sees for a hyphen, one cell as "-" is


class WholeFlagsHelp(TyperCommand):
    """Plain help whose options never break a line at a hyphen: click's wrapper
    (textwrap) put `--session-` and `ttl` on two lines, and `./gradio-` and `clean.toml`,
    17 times over the commands at 60 columns, 4 at 80, and an operator copies a flag or
    a path whole. The hyphens of each word that fits the help column are held while
    the table is laid out, then given back: the text is as before, broken at spaces.
    Only a word wider than the column (a config path at 60) still breaks at a hyphen."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        records = [(p.param_type_name, p.get_help_record(ctx)) for p in self.get_params(ctx)]
        for kind, title in (("argument", "Arguments"), ("option", "Options")):
            rows = [r for k, r in records if k == kind and r]
            # the help column's width, as click's write_dl makes it
            room = max(formatter.width - min(max((len(r[0]) for r in rows), default=0), 30) - 4, 10)
            rows = [(first, _held(second, room)) for first, second in rows]
            if rows:
                with formatter.section(title):
                    start = len(formatter.buffer)
                    formatter.write_dl(rows)
                    laid = formatter.buffer[start:]
                    formatter.buffer[start:] = [text.replace(_HELD, "-") for text in laid]


def _held(text: str, room: int) -> str:
    """`text` with the hyphens held in each word that fits in `room` cells: one wider
    still breaks at a hyphen, where a wrapper with nowhere else to break cuts a letter."""
    return re.sub(rf"(?<!\S)\S{{1,{room}}}(?!\S)", lambda m: m[0].replace("-", _HELD), text)


# typer 0.29 and later carry a copy of click of their own, so these are not `click.*`:
# they are found from typer's public exceptions, whichever click they come from.
_UsageError: Any = typer.BadParameter.__mro__[1]
_ClickException: Any = _UsageError.__mro__[1]


class OneLineUsageErrors(TyperGroup):
    """click's own usage errors (an unknown option or command, a missing value) as the
    one line every other bad argument gets, exit 2, instead of click's usage, hint and
    error on three lines. Run with no arguments, the help is still shown."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        run = functools.partial(
            super().main,
            args,
            prog_name,
            complete_var,
            windows_expand_args=windows_expand_args,
            **extra,
        )
        if not standalone_mode:
            return run(standalone_mode=False)
        try:
            code = run(standalone_mode=False)
        except _UsageError as exc:
            _usage_error(exc)
        except _ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:
            print("Aborted!", file=sys.stderr)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _usage_error(exc: Any) -> NoReturn:
    if type(exc).__name__ == "NoArgsIsHelpError":  # click 8.2 and later: the help
        exc.show()
        sys.exit(exc.exit_code)
    where = exc.ctx.command_path if exc.ctx is not None else "gradio-clean"
    if type(exc).__name__ == "NoSuchOption" and exc.ctx is not None:  # click's own hint
        message = exc.message + _closest(exc.option_name, exc.ctx.command.params)  # is noisy
    else:
        message = " ".join(exc.format_message().split()).rstrip(".")
    message = message.replace(": Value error, ", ": ")  # pydantic's wording, via typer 0.29
    if message[1:2].islower():  # "No such option" as ours are worded; "GRADIO_…" stays
        message = message[0].lower() + message[1:]
    print(f"gradio-clean: error: {shown(message)} (see '{where} -h')", file=sys.stderr)
    sys.exit(exc.exit_code)


def _closest(typed: str, params: Sequence[Any]) -> str:
    """The options a mistyped one was likely meant to be: those it begins (`--older`:
    --older-than), else those close to it by difflib, compared without their dashes
    (click compares them with, so `--older` came back as --exclude, --include)."""
    flags = {f.lstrip("-"): f for p in params for f in (*p.opts, *p.secondary_opts) if f[:1] == "-"}
    bare = typed.lstrip("-").replace("_", "-")
    close = [flags[f] for f in flags if len(bare) > 1 and f.startswith(bare)]
    if not 0 < len(close) <= 3:
        close = [flags[f] for f in difflib.get_close_matches(bare, flags, n=3, cutoff=0.6)]
    return f" (did you mean {' or '.join(close)}?)" if close else ""
