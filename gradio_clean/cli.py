"""The command line: parse, call the library, render. No decisions live here.

The rule and scope options come from options.py's table (cli_flags.py turns it
into typer parameters); what they mean is decided in the library.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, ParamSpec

import typer

from gradio_clean import __version__
from gradio_clean.cli_flags import (
    SCHEDULE_PANEL,
    ApplyOpt,
    Flags,
    JsonOpt,
    LimitOpt,
    MetricsOpt,
    QuietOpt,
    TopOpt,
    WaitOpt,
    YesOpt,
    with_flags,
)
from gradio_clean.consoles import (
    Consoles,
    OneLineUsageErrors,
    WholeFlagsHelp,
    handled,
    progress_line,
    show_warnings,
)
from gradio_clean.errors import (
    ExitCode,
    Interrupted,
    UsageError,
    signal_exit_code,
)
from gradio_clean.options import (
    KEYS,
    SCOPE_KEYS,
    argv,
    no_rule_message,
)
from gradio_clean.schedule import DEFAULT_EVERY
from gradio_clean.text import shown
from gradio_clean.workers import raise_on_stop, stop_on_signals

# Only what the options need is imported here, so --help starts fast; rich and the
# library are imported by the commands that use them.
if TYPE_CHECKING:
    from gradio_clean.config import Settings
    from gradio_clean.metrics import RunMetrics
    from gradio_clean.plan import ApplyResult, Plan
    from gradio_clean.roots import Root
    from gradio_clean.rules import RuleSet

P = ParamSpec("P")

app = typer.Typer(
    name="gradio-clean",
    cls=OneLineUsageErrors,
    help="Audit and clean the files Gradio apps leave on disk.",
    no_args_is_help=True,
    # The shipped scripts (completions/) answer Tab without starting Python; typer's own
    # would start it, and import everything, at every Tab.
    add_completion=False,
    # Plain help: it reads well at 80 columns, shows no type beside a flag that takes no
    # value, and needs no rich at start-up.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _settings(flags: Flags, io: Consoles) -> Settings:
    from gradio_clean.config import effective

    def warn(message: str) -> None:  # a planted ./gradio-clean.toml: always said, even --quiet
        io.err.print(f"gradio-clean: warning: {shown(message)}", markup=False, highlight=False)

    return effective(flags.given, flags.config, os.environ, os.getcwd(), warn=warn)


def _rules(settings: Settings) -> RuleSet:
    """The rules, refused (exit 2) when none is selected."""
    from gradio_clean.rules import RuleSet

    rules = RuleSet.from_values(settings.values)
    if not rules.any:
        raise UsageError(no_rule_message())
    return rules


def _stopping_on_signals(command: Callable[P, None]) -> Callable[P, None]:
    """SIGINT and SIGTERM stop the command between entries, so it can say what it did."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with stop_on_signals():
            command(*args, **kwargs)

    return run


def _roots(s: Settings, io: Consoles, *, quiet: bool = False) -> list[Root]:
    from gradio_clean.roots import default_roots, resolve_roots

    paths, sessions = s.get("roots"), s.get("sessions_dirs")
    if paths or sessions:
        return resolve_roots(paths or (), sessions or ())
    roots, looked_at = default_roots()
    if not roots and not quiet:
        io.err.print(
            "gradio-clean: no Gradio cache found; looked at " + shown(", ".join(looked_at)),
            markup=False,
            highlight=False,
        )
    return roots


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradio-clean {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Audit and clean the files Gradio apps leave on disk.

    scan shows what is there; prune removes what rules select (a dry run unless
    --apply); schedule prints a cron line or systemd units for it; config shows the
    effective configuration.
    """


@app.command("scan", cls=WholeFlagsHelp)
@_stopping_on_signals
@with_flags(SCOPE_KEYS)
def scan_command(
    flags: Flags,
    *,
    json_out: JsonOpt = False,
    top: TopOpt = 10,
) -> None:
    """Show how much the Gradio caches hold, what holds it, how old it is, and where."""
    from gradio_clean import documents
    from gradio_clean.filesystems import filesystems_of
    from gradio_clean.ignore import ignore_file_report, refused_files
    from gradio_clean.scan import Hooks, ScanResult, ScanWarning, scan

    io = Consoles()
    with handled(io):
        settings = _settings(flags, io)
        roots = _roots(settings, io)
        if not roots and not json_out:
            return  # _roots said why; empty tables would add nothing
        with progress_line(io, "Scanning…", io.err_is_terminal()) as progress:
            result: ScanResult = scan(roots, top=top, hooks=Hooks(progress=progress))
        scopes = [ignore_file_report(root) for root in roots]
        refused = tuple(ScanWarning(path, message) for path, message in refused_files(scopes))
        result = dataclasses.replace(result, warnings=(*refused, *result.warnings))
        show_warnings(io, [(w.path, w.message) for w in result.warnings], result.warnings_dropped)
        disks = filesystems_of(result.roots)
        if json_out:
            doc = documents.scan_to_dict(result, scopes, filesystems=disks)
            typer.echo(documents.dump_json(doc))
            return
        from gradio_clean import report, summary  # the tables: rich, humanize

        report.say_roles(((r.path, r.role.value, r.role_why) for r in result.roots), io.err)
        for line in summary.scope_lines(scopes, scan=True):
            io.err.print(line, markup=False, highlight=False, style="dim", soft_wrap=True)
        report.render_scan(result, io.out, top=top, filesystems=disks)


# -- prune --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PruneRun:
    """How prune runs and shows its plan (everything but the rules and the roots)."""

    apply: bool
    yes: bool
    wait: float
    quiet: bool
    json_out: bool
    limit: int


@app.command("prune", cls=WholeFlagsHelp)
@_stopping_on_signals
@with_flags(KEYS)
def prune_command(
    flags: Flags,
    *,
    apply: ApplyOpt = False,
    yes: YesOpt = False,
    wait: WaitOpt = 10.0,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    limit: LimitOpt = 50,
    metrics_file: MetricsOpt = None,
) -> None:
    """Remove what the rules select: a dry run unless --apply."""
    from gradio_clean import metrics, summary
    from gradio_clean.roots import refuse_dangerous

    run = PruneRun(apply, yes, wait, quiet, json_out, limit)
    io = Consoles()
    started = time.time()
    numbers: RunMetrics | None = None
    try:
        with handled(io):
            settings = _settings(flags, io)
            rules = _rules(settings)
            if metrics_file is not None:  # before anything is deleted, not after
                metrics.check_folder(metrics_file)
            roots = _roots(settings, io, quiet=quiet)
            for root in roots:  # a dry run must not offer a run that --apply refuses
                refuse_dangerous(root)
            plan, result = _plan_and_apply(roots, rules, run, io)
            stopped = result.interrupted if result is not None else 0
            numbers = metrics.run_metrics(plan, result, started, success=not stopped)
            _show_prune(plan, result, settings, run, io, started)
            if result is not None and stopped:
                line = summary.stopped_line(stopped, result, plan)
                io.err.print(line, markup=False, highlight=False)
                raise typer.Exit(int(signal_exit_code(stopped)))
            over = summary.over_budget_line(plan, [g.usage_after_bytes for g in numbers.budget])
            if over is not None:  # said even with --quiet: cron mails it
                io.err.print(f"gradio-clean: {over}", markup=False, highlight=False, soft_wrap=True)
                raise typer.Exit(int(ExitCode.OVER_BUDGET))
            if result is not None and not result.complete:
                raise typer.Exit(int(ExitCode.PARTIAL))
    finally:
        if metrics_file is not None and metrics.folder_exists(metrics_file):
            with handled(io):
                metrics.write_metrics(metrics_file, numbers or metrics.failed_run(started))


def _plan_and_apply(
    roots: list[Root], rules: RuleSet, run: PruneRun, io: Consoles
) -> tuple[Plan, ApplyResult | None]:
    """Lock (with --apply), plan, forecast, ask on a terminal, apply."""
    from gradio_clean import summary
    from gradio_clean.preflight import preflight
    from gradio_clean.rules import build_plan

    show = io.err_is_terminal() and not run.quiet
    try:
        with _locked(roots, run.wait) if run.apply else contextlib.nullcontext():
            if not (run.quiet or run.json_out):
                from gradio_clean.report import say_roles  # rich: not for --json or --quiet

                say_roles(((r.path, r.role.value, r.why) for r in roots), io.err)
            now = time.time()
            with progress_line(io, "Planning…", show) as progress:
                plan = build_plan(roots, rules, now=now, progress=progress)
            if not run.quiet:  # --quiet: nothing on a successful run, so cron mails nothing
                show_warnings(
                    io, [(w.path, w.message) for w in plan.warnings], plan.scan.warnings_dropped
                )
            if not run.apply:
                return preflight(plan), None
            from gradio_clean.apply import apply_plan  # what only --apply needs
            from gradio_clean.outcomes import Outcomes
            from gradio_clean.plan import ApplyResult

            if not plan.actions:
                return plan, ApplyResult(Outcomes(plan.actions), (), 0.0)
            if not run.yes and sys.stdin.isatty():
                from gradio_clean.report import render_plan

                plan = preflight(plan)
                render_plan(plan, io.err if run.json_out else io.out, now=now, limit=run.limit)
                with raise_on_stop():  # nothing in hand at a prompt: a signal ends it now
                    confirmed = typer.confirm(
                        summary.confirm_question(plan), default=False, err=True
                    )
                if not confirmed:
                    raise typer.Exit(int(ExitCode.OK))
            with progress_line(io, "Deleting…", show) as line:
                deleting = None if line is None else (lambda done, _, freed: line(done, freed))
                return plan, apply_plan(plan, progress=deleting)
    except Interrupted as exc:  # apply reports a stop in its result, never raises it
        raise Interrupted(exc.signum, f"{exc.message}; nothing was deleted") from None


def _locked(roots: list[Root], wait: float) -> contextlib.AbstractContextManager[object]:
    """The roots' lock (lock.py: imported only by a run that applies)."""
    from gradio_clean.lock import lock_roots

    return lock_roots(roots, wait)


def _show_prune(
    plan: Plan, result: ApplyResult | None, s: Settings, run: PruneRun, io: Consoles, now: float
) -> None:
    """prune's output: the JSON document, or the tables and summary; with --quiet only
    what a run left behind, on stderr (cron mails it)."""
    from gradio_clean import summary

    if run.json_out:
        from gradio_clean.documents import iter_json, prune_to_dict

        for chunk in iter_json(prune_to_dict(plan, result, s.document())):
            sys.stdout.write(chunk)
        sys.stdout.write("\n")
    elif not run.quiet:
        from gradio_clean.report import render_prune  # the tables: rich

        render_prune(plan, result, io.out, limit=run.limit, now=now)
    elif result is not None and not result.complete:
        for line in [*summary.left_behind(result), *summary.apply_summary(plan, result)]:
            io.err.print(line, markup=False, highlight=False, soft_wrap=True)


# -- config -------------------------------------------------------------------------


@app.command("config", cls=WholeFlagsHelp)
@with_flags(())
def config_command(flags: Flags, *, json_out: JsonOpt = False) -> None:
    """Show the effective configuration and where each value comes from."""
    from gradio_clean.documents import config_to_dict, dump_json
    from gradio_clean.summary import config_lines

    io = Consoles()
    with handled(io):
        settings = _settings(flags, io)
        if json_out:
            typer.echo(dump_json(config_to_dict(settings)))
            return
        for line in config_lines(settings):
            io.out.print(line, markup=False, highlight=False, soft_wrap=True)


# -- schedule -----------------------------------------------------------------------


@app.command("schedule", cls=WholeFlagsHelp)
@with_flags(KEYS)
def schedule_command(
    flags: Flags,
    *,
    every: Annotated[
        str,
        typer.Option(
            "--every",
            metavar="WHEN",
            help="hourly, daily, weekly, or a duration like 30m or 6h.",
            rich_help_panel=SCHEDULE_PANEL,
        ),
    ] = DEFAULT_EVERY,
    systemd: Annotated[
        bool,
        typer.Option(
            "--systemd",
            help="Print a .service and .timer pair instead of a crontab line.",
            rich_help_panel=SCHEDULE_PANEL,
        ),
    ] = False,
    metrics_file: MetricsOpt = None,
) -> None:
    """Print a crontab line (or systemd units) that runs prune --apply --quiet."""
    from gradio_clean.schedule import crontab_line, installed_executable, prune_args, systemd_units

    io = Consoles()
    with handled(io):
        settings = _settings(flags, io)
        _rules(settings)
        roots = [r.path for r in _roots(settings, io)]
        args = prune_args(
            argv(flags.given),
            pinned=any(settings.get(k) for k in SCOPE_KEYS),
            found=roots,
            config_file=settings.config.source if settings.config else None,
            metrics_file=metrics_file,
        )
        exe = installed_executable()
        if not systemd:
            line = crontab_line(every, args, exe)
            io.out.print(line, markup=False, highlight=False, soft_wrap=True)
            return
        metrics = metrics_file and os.path.abspath(metrics_file)
        for unit in systemd_units(every, args, exe, roots=roots, metrics_file=metrics):
            io.out.print(unit, markup=False, highlight=False)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="gradio-clean")
