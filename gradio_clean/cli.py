"""The command line: parse, call the library, render. No decisions live here."""

from __future__ import annotations

import contextlib
import enum
import sys
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.live import Live
from rich.text import Text

from gradio_clean import __version__
from gradio_clean.classify import Category
from gradio_clean.delete import apply_plan, lock_roots
from gradio_clean.durations import DurationError, parse_duration
from gradio_clean.errors import ExitCode, GradioCleanError, UsageError
from gradio_clean.plan import ApplyResult, Plan
from gradio_clean.report import (
    apply_summary,
    dry_run_summary,
    dump_json,
    prune_to_dict,
    render_plan,
    render_scan,
    render_warnings,
    scan_to_dict,
    size,
)
from gradio_clean.roots import Root, default_roots, refuse_dangerous, resolve_roots
from gradio_clean.rules import DEFAULT_CATEGORIES, AgeBy, RuleSet, build_plan
from gradio_clean.scan import Hooks, ScanResult, scan


class Dedupe(str, enum.Enum):
    HARDLINK = "hardlink"
    DELETE = "delete"


class Keep(str, enum.Enum):
    NEWEST = "newest"
    OLDEST = "oldest"


app = typer.Typer(
    name="gradio-clean",
    help="Audit and clean the files Gradio apps leave on disk.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ROOTS_PANEL = "Where to look"
OUTPUT_PANEL = "Output"
RULES_PANEL = "Rules (any that match select an entry)"
SCOPE_PANEL = "Scope"
APPLY_PANEL = "Applying"

# -- options shared by several commands, declared once ----------------------------

PathsArg = Annotated[
    Optional[list[str]],  # noqa: UP045 - typer needs Optional at runtime on 3.10
    typer.Argument(
        help="Gradio temp dirs, app directories or .gradio folders. "
        "Default: GRADIO_TEMP_DIR (else <tmp>/gradio) and ./.gradio, ./flagged, "
        "./gradio_cached_examples when present.",
        show_default=False,
    ),
]
SessionsDirOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--sessions-dir",
        help="A folder whose subfolders are per-session folders named by session hash. "
        "Repeat for several.",
        rich_help_panel=ROOTS_PANEL,
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout.", rich_help_panel=OUTPUT_PANEL),
]
TopOpt = Annotated[
    int,
    typer.Option(
        "--top",
        min=0,
        help="How many of the largest hash folders and sessions to list.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]


def _consoles() -> tuple[Console, Console]:
    """Data to stdout, everything else to stderr."""
    return Console(), Console(stderr=True)


@contextlib.contextmanager
def handled(err: Console) -> Iterator[None]:
    """The one place a GradioCleanError becomes a one-line message and an exit code."""
    try:
        yield
    except GradioCleanError as exc:
        err.print(f"gradio-clean: error: {exc.message}", markup=False, highlight=False)
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        err.print("gradio-clean: interrupted", markup=False)
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


def _roots(paths: list[str] | None, sessions_dirs: list[str] | None, err: Console) -> list[Root]:
    if paths or sessions_dirs:
        return resolve_roots(paths or [], sessions_dirs or [])
    roots, looked_at = default_roots()
    if not roots:
        err.print(
            "gradio-clean: no Gradio cache found; looked at " + ", ".join(looked_at),
            markup=False,
            highlight=False,
        )
    return roots


def _duration(text: str, flag: str) -> float:
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise UsageError(f"{flag} {text!r}: {exc.reason}") from None


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

    [b]scan[/b] shows what is there; [b]prune[/b] removes what rules select (dry run unless
    --apply).
    """


@app.command("scan")
def scan_command(
    paths: PathsArg = None,
    *,
    sessions_dir: SessionsDirOpt = None,
    json_out: JsonOpt = False,
    top: TopOpt = 10,
) -> None:
    """Show how much the Gradio caches hold, what holds it, how old it is, and where."""
    out, err = _consoles()
    with handled(err):
        roots = _roots(paths, sessions_dir, err)
        result = _scan_with_progress(roots, err, top)
        render_warnings(
            ((w.path, w.message) for w in result.warnings), result.warnings_dropped, err
        )
        if json_out:
            typer.echo(dump_json(scan_to_dict(result)))
        else:
            for r in result.roots:
                err.print(
                    f"{r.path}: {r.role.value} ({r.role_why})",
                    markup=False,
                    highlight=False,
                    style="dim",
                )
            render_scan(result, out, top=top)


def _scan_with_progress(roots: list[Root], err: Console, top: int) -> ScanResult:
    if not err.is_terminal:
        return scan(roots, top=top)
    with _progress_line(err, "Scanning…") as progress:
        return scan(roots, top=top, hooks=Hooks(progress=progress))


@contextlib.contextmanager
def _progress_line(
    err: Console, label: str, show: bool = True
) -> Iterator[Callable[[int, int], None] | None]:
    """A transient status line on stderr, refreshed by the walk itself at most 10 times a
    second: no refresh thread, so the scan may fork its workers safely."""
    if not show:
        yield None
        return
    last = 0.0
    with Live(Text(label), console=err, auto_refresh=False, transient=True) as live:

        def progress(files: int, nbytes: int) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= 0.1:
                last = now
                live.update(Text(f"{label} {files:,} files, {size(nbytes)}"), refresh=True)

        yield progress


def _apply_with_progress(plan: Plan, err: Console, show: bool) -> ApplyResult:
    with _progress_line(err, "Deleting…", show) as line:
        if line is None:
            return apply_plan(plan)
        report = line

        def progress(done: int, total: int, freed: int) -> None:
            report(done, freed)

        return apply_plan(plan, progress=progress)


QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print nothing on success (for cron); errors still go "
        "to stderr and the exit code still tells.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]


@app.command("prune")
def prune_command(
    paths: PathsArg = None,
    *,
    sessions_dir: SessionsDirOpt = None,
    older_than: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--older-than",
            metavar="DUR",
            show_default=False,
            help="Select files not modified for DUR: 90m, 12h, 1d, 2w, 1d12h.",
            rich_help_panel=RULES_PANEL,
        ),
    ] = None,
    age_by: Annotated[
        AgeBy,
        typer.Option(
            "--age-by",
            help="Which timestamp --older-than and the TTL compare. "
            "mtime by default: Gradio touches a reused cached copy's mtime.",
            rich_help_panel=RULES_PANEL,
        ),
    ] = AgeBy.MTIME,
    duplicates: Annotated[
        bool,
        typer.Option(
            "--duplicates",
            help="Select extra copies of identical files "
            "(size, then partial hash, then full hash).",
            rich_help_panel=RULES_PANEL,
        ),
    ] = False,
    dedupe: Annotated[
        Dedupe,
        typer.Option(
            "--dedupe",
            help="hardlink: replace each extra copy by a hard link to the "
            "kept one, so every path keeps working; delete: remove it.",
            rich_help_panel=RULES_PANEL,
        ),
    ] = Dedupe.HARDLINK,
    keep: Annotated[
        Keep,
        typer.Option(
            "--keep",
            help="Which copy of a duplicate set stays (ties: by path).",
            rich_help_panel=RULES_PANEL,
        ),
    ] = Keep.NEWEST,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify", help="Also compare duplicates byte by byte.", rich_help_panel=RULES_PANEL
        ),
    ] = False,
    orphaned_sessions: Annotated[
        bool,
        typer.Option(
            "--orphaned-sessions",
            help="Select session folders idle for longer than "
            "--session-ttl, Gradio's stale leftovers, and empty hash folders.",
            rich_help_panel=RULES_PANEL,
        ),
    ] = False,
    session_ttl: Annotated[
        str,
        typer.Option(
            "--session-ttl",
            metavar="DUR",
            help="Idle time after which a session "
            "folder or leftover is orphaned (Gradio's own window is 60 minutes).",
            rich_help_panel=RULES_PANEL,
        ),
    ] = "1h",
    category: Annotated[
        Optional[list[Category]],  # noqa: UP045
        typer.Option(
            "--category",
            show_default=False,
            help="Only touch these categories. flagged and examples are user data: "
            "no rule touches them unless named here.",
            rich_help_panel=SCOPE_PANEL,
        ),
    ] = None,
    include: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--include",
            metavar="PATTERN",
            show_default=False,
            help="Only entries matching this gitignore-style pattern (relative to the root).",
            rich_help_panel=SCOPE_PANEL,
        ),
    ] = None,
    exclude: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--exclude",
            metavar="PATTERN",
            show_default=False,
            help="Never entries matching this pattern; a root's .gradiocleanignore adds more.",
            rich_help_panel=SCOPE_PANEL,
        ),
    ] = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Delete for real (the default is a dry run).",
            rich_help_panel=APPLY_PANEL,
        ),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Do not ask for confirmation on a terminal.",
            rich_help_panel=APPLY_PANEL,
        ),
    ] = False,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            min=0,
            help="How long to wait for another run on the same root to finish.",
            rich_help_panel=APPLY_PANEL,
        ),
    ] = 10.0,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=0,
            help="Rows shown per rule in the table (0: all).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = 50,
) -> None:
    """Remove what the rules select: a dry run unless --apply."""
    out, err = _consoles()
    with handled(err):
        rules = RuleSet(
            older_than=None if older_than is None else _duration(older_than, "--older-than"),
            age_by=age_by,
            duplicates=duplicates,
            hardlink=dedupe is Dedupe.HARDLINK,
            keep_oldest=keep is Keep.OLDEST,
            verify=verify,
            orphaned_sessions=orphaned_sessions,
            session_ttl=_duration(session_ttl, "--session-ttl"),
            categories=frozenset(category) if category else DEFAULT_CATEGORIES,
            explicit_categories=bool(category),
            include=tuple(include or ()),
            exclude=tuple(exclude or ()),
        )
        if not rules.any:
            raise UsageError(
                "no rule selected: give --older-than DUR, --duplicates or --orphaned-sessions "
                "(or set rules in a config file)"
            )
        roots = _roots(paths, sessions_dir, err)
        if apply:
            for root in roots:
                refuse_dangerous(root)
        settings = {
            "older_than": older_than,
            "age_by": age_by.value,
            "duplicates": duplicates,
            "dedupe": dedupe.value,
            "keep": keep.value,
            "verify": verify,
            "orphaned_sessions": orphaned_sessions,
            "session_ttl": session_ttl,
            "categories": sorted(c.value for c in rules.categories),
            "include": list(rules.include),
            "exclude": list(rules.exclude),
        }
        lock = lock_roots(roots, wait) if apply else contextlib.nullcontext()
        with lock:
            now = time.time()
            show = err.is_terminal and not quiet
            with _progress_line(err, "Planning…", show) as progress:
                plan = build_plan(roots, rules, now=now, progress=progress)
            render_warnings(
                ((w.path, w.message) for w in plan.warnings), plan.scan.warnings_dropped, err
            )
            result = None
            if apply and plan.actions:
                if not yes and sys.stdin.isatty():
                    render_plan(plan, err if json_out else out, now=now, limit=limit)
                    if not typer.confirm(
                        f"Delete {len(plan.actions):,} entries ({size(plan.bytes)})?",
                        default=False,
                        err=True,
                    ):
                        raise typer.Exit(int(ExitCode.OK))
                result = _apply_with_progress(plan, err, show)
            elif apply:
                result = ApplyResult((), (), 0.0)
        if json_out:
            typer.echo(dump_json(prune_to_dict(plan, result, settings)))
        elif not quiet:
            render_plan(plan, out, now=now, limit=limit, result=result)
            lines = dry_run_summary(plan) if result is None else apply_summary(plan, result)
            for line in lines:
                out.print(line, markup=False, highlight=False)
        elif result is not None and not result.complete:
            for line in apply_summary(plan, result):
                err.print(line, markup=False, highlight=False)
        if result is not None and not result.complete:
            raise typer.Exit(int(ExitCode.PARTIAL))


def main() -> None:
    """Console-script entry point."""
    app(prog_name="gradio-clean")
