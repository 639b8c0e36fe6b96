"""The command line: parse, call the library, render. No decisions live here."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Optional, ParamSpec

import typer

from gradio_clean import __version__
from gradio_clean.classify import Category
from gradio_clean.durations import AgeBy, DurationError, parse_duration
from gradio_clean.errors import (
    ExitCode,
    GradioCleanError,
    Interrupted,
    UsageError,
    signal_exit_code,
    signal_name,
)
from gradio_clean.patterns import MAX_PATTERNS, PatternError, parse_pattern
from gradio_clean.schedule import DEFAULT_EVERY
from gradio_clean.text import shown
from gradio_clean.workers import raise_on_stop, stop_on_signals

# Only what the options need is imported here, so --help starts fast; rich and the
# library are imported by the commands that use them.
if TYPE_CHECKING:
    from rich.console import Console

    from gradio_clean.config import Config
    from gradio_clean.metrics import RunMetrics
    from gradio_clean.plan import ApplyResult, Plan
    from gradio_clean.roots import Root
    from gradio_clean.rules import RuleSet

P = ParamSpec("P")


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
    # The shipped scripts (completions/) answer Tab without starting Python; typer's own
    # would start it, and import everything, at every Tab.
    add_completion=False,
    # Plain help: it reads well at 80 columns, shows no type beside a flag that takes no
    # value, and needs no rich at start-up.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ROOTS_PANEL = "Where to look"
RULES_PANEL = "Rules (an entry goes if any selected rule picks it)"
SCOPE_PANEL = "Scope"
APPLY_PANEL = "Applying"
OUTPUT_PANEL = "Output"
SCHEDULE_PANEL = "Schedule"

# -- options shared by several commands, declared once ----------------------------
# `Optional[...]` rather than `X | None`: typer reads these at runtime on 3.10.
# Rule and scope options default to None ("not given") so a config file can fill them.

PathsArg = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Argument(
        metavar="PATH",
        help="Gradio temp dirs, app directories or .gradio folders. Default: the config's "
        "roots, else GRADIO_TEMP_DIR (or <tmp>/gradio) and ./.gradio, ./flagged, "
        "./gradio_cached_examples when present.",
        show_default=False,
    ),
]
SessionsDirOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--sessions-dir",
        metavar="DIR",
        show_default=False,
        help="A folder whose subfolders are per-session folders. Repeatable.",
        rich_help_panel=ROOTS_PANEL,
    ),
]
ConfigOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--config",
        metavar="FILE",
        show_default=False,
        help="Config file (default: $GRADIO_CLEAN_CONFIG, ./gradio-clean.toml, "
        "$XDG_CONFIG_HOME/gradio-clean/config.toml, /etc/gradio-clean/config.toml).",
        rich_help_panel=ROOTS_PANEL,
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout.", rich_help_panel=OUTPUT_PANEL),
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print nothing on success (for cron); errors and "
        "skipped entries still reach stderr and the exit code.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
TopOpt = Annotated[
    int,
    typer.Option(
        "--top",
        min=0,
        metavar="N",
        help="How many of the largest hash folders and sessions to list.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
MetricsOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--metrics-file",
        metavar="FILE",
        show_default=False,
        help="Write Prometheus textfile-collector metrics here (atomically).",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
OlderThanOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--older-than",
        metavar="DUR",
        show_default=False,
        help="Files older than DUR (see --age-by): 90m, 12h, 1d, 2w, 1d12h.",
        rich_help_panel=RULES_PANEL,
    ),
]
AgeByOpt = Annotated[
    Optional[AgeBy],  # noqa: UP045
    typer.Option(
        "--age-by",
        show_default=False,
        help="Timestamp the ages compare [default: newest, the latest of mtime, ctime "
        "and a file's atime: Gradio's cached copies keep their source's mtime].",
        rich_help_panel=RULES_PANEL,
    ),
]
DuplicatesOpt = Annotated[
    Optional[bool],  # noqa: UP045
    typer.Option(
        "--duplicates/--no-duplicates",
        show_default=False,
        help="Extra copies of identical files (size, partial hash, full hash).",
        rich_help_panel=RULES_PANEL,
    ),
]
DedupeOpt = Annotated[
    Optional[Dedupe],  # noqa: UP045
    typer.Option(
        "--dedupe",
        show_default=False,
        help="hardlink [default]: replace each extra copy by a hard link to the kept "
        "one, so every path keeps working; delete: remove it.",
        rich_help_panel=RULES_PANEL,
    ),
]
KeepOpt = Annotated[
    Optional[Keep],  # noqa: UP045
    typer.Option(
        "--keep",
        show_default=False,
        help="Which copy of a duplicate set stays [default: newest; ties by path].",
        rich_help_panel=RULES_PANEL,
    ),
]
VerifyOpt = Annotated[
    Optional[bool],  # noqa: UP045
    typer.Option(
        "--verify/--no-verify",
        show_default=False,
        help="Also compare duplicates byte by byte.",
        rich_help_panel=RULES_PANEL,
    ),
]
OrphanedOpt = Annotated[
    Optional[bool],  # noqa: UP045
    typer.Option(
        "--orphaned-sessions/--no-orphaned-sessions",
        show_default=False,
        help="Session folders idle longer than --session-ttl, Gradio's stale "
        "leftovers, and empty hash folders.",
        rich_help_panel=RULES_PANEL,
    ),
]
SessionTtlOpt = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--session-ttl",
        metavar="DUR",
        show_default=False,
        help="Idle time after which a session folder or leftover is orphaned "
        "[default: 1h, Gradio's own window].",
        rich_help_panel=RULES_PANEL,
    ),
]
CategoryOpt = Annotated[
    Optional[list[Category]],  # noqa: UP045
    typer.Option(
        "--category",
        metavar="CATEGORY",
        show_default=False,
        help="Only touch these categories ("
        + ", ".join(c.value for c in Category)
        + "). flagged and examples are user data: no "
        "rule touches them unless named here. Repeatable.",
        rich_help_panel=SCOPE_PANEL,
    ),
]
IncludeOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--include",
        metavar="PATTERN",
        show_default=False,
        help="Only entries matching this gitignore-style pattern (root-relative).",
        rich_help_panel=SCOPE_PANEL,
    ),
]
ExcludeOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option(
        "--exclude",
        metavar="PATTERN",
        show_default=False,
        help="Never entries matching this pattern; a root's .gradiocleanignore adds more.",
        rich_help_panel=SCOPE_PANEL,
    ),
]

DEFAULTS: dict[str, object] = {
    "roots": None,
    "sessions_dirs": None,
    "older_than": None,
    "duplicates": False,
    "orphaned_sessions": False,
    "age_by": AgeBy.NEWEST.value,
    "session_ttl": "1h",
    "dedupe": Dedupe.HARDLINK.value,
    "keep": Keep.NEWEST.value,
    "verify": False,
    "include": (),
    "exclude": (),
    "categories": None,
}


@dataclasses.dataclass(frozen=True)
class Flags:
    """What the command line said, None where it was silent (config and defaults fill in)."""

    paths: Sequence[str] | None = None
    sessions_dir: Sequence[str] | None = None
    older_than: str | None = None
    age_by: AgeBy | None = None
    duplicates: bool | None = None
    dedupe: Dedupe | None = None
    keep: Keep | None = None
    verify: bool | None = None
    orphaned_sessions: bool | None = None
    session_ttl: str | None = None
    category: Sequence[Category] | None = None
    include: Sequence[str] | None = None
    exclude: Sequence[str] | None = None

    def values(self) -> dict[str, object | None]:
        """Keyed like the config file."""

        def seq(v: Sequence[Any] | None) -> tuple[Any, ...] | None:
            return tuple(x.value if isinstance(x, enum.Enum) else x for x in v) if v else None

        def val(v: enum.Enum | None) -> str | None:
            return None if v is None else str(v.value)

        return {
            "roots": seq(self.paths),
            "sessions_dirs": seq(self.sessions_dir),
            "older_than": self.older_than,
            "duplicates": self.duplicates,
            "orphaned_sessions": self.orphaned_sessions,
            "age_by": val(self.age_by),
            "session_ttl": self.session_ttl,
            "dedupe": val(self.dedupe),
            "keep": val(self.keep),
            "verify": self.verify,
            "include": seq(self.include),
            "exclude": seq(self.exclude),
            "categories": seq(self.category),
        }

    def argv(self) -> list[str]:
        """The same flags again, for a scheduled run (paths made absolute)."""
        out: list[str] = []
        for flag, value in (
            ("--older-than", self.older_than),
            ("--session-ttl", self.session_ttl),
            ("--age-by", self.age_by),
            ("--dedupe", self.dedupe),
            ("--keep", self.keep),
        ):
            if value is not None:
                out += [flag, value.value if isinstance(value, enum.Enum) else value]
        for name, switch in (
            ("duplicates", self.duplicates),
            ("verify", self.verify),
            ("orphaned-sessions", self.orphaned_sessions),
        ):
            if switch is not None:
                out.append(f"--{name}" if switch else f"--no-{name}")
        for flag, values in (
            ("--category", [c.value for c in self.category or ()]),
            ("--include", self.include or ()),
            ("--exclude", self.exclude or ()),
            ("--sessions-dir", [os.path.abspath(p) for p in self.sessions_dir or ()]),
        ):
            for v in values:
                out += [flag, v]
        return out + [os.path.abspath(p) for p in self.paths or ()]


@dataclasses.dataclass(frozen=True)
class Settings:
    values: dict[str, object]
    sources: dict[str, str]
    config: Config | None
    looked_at: tuple[str, ...]

    def get(self, key: str) -> Any:
        return self.values[key]


def _settings(flags: Flags, config_path: str | None, err: Console) -> Settings:
    from gradio_clean.config import (
        ENV_VAR,
        find_config,
        load_config,
        local_config,
        merge,
        search_path,
    )

    cwd = os.getcwd()

    def warn(message: str) -> None:  # a planted ./gradio-clean.toml: always said, even --quiet
        err.print(f"gradio-clean: warning: {shown(message)}", markup=False, highlight=False)

    found = find_config(config_path, os.environ, cwd, warn=warn)
    searched = config_path is None and not os.environ.get(ENV_VAR)
    config = load_config(found, local=searched and found == local_config(cwd)) if found else None
    values, sources = merge(flags.values(), config, DEFAULTS)
    return Settings(values, sources, config, search_path(os.environ, cwd))


def _duration(text: str, source: str, key: str) -> float:
    from gradio_clean.config import CLI_SOURCE

    try:
        return parse_duration(text)
    except DurationError as exc:
        where = f"--{key.replace('_', '-')}" if source == CLI_SOURCE else f"{source}: {key} ="
        raise UsageError(f"{where} {text!r}: {exc.reason}") from None


def _rules(s: Settings) -> RuleSet:
    from gradio_clean.rules import DEFAULT_CATEGORIES, RuleSet

    older = s.get("older_than")
    categories = s.get("categories")
    return RuleSet(
        older_than=None
        if older is None
        else _duration(older, s.sources["older_than"], "older_than"),
        age_by=AgeBy(s.get("age_by")),
        duplicates=bool(s.get("duplicates")),
        hardlink=s.get("dedupe") == Dedupe.HARDLINK.value,
        keep_oldest=s.get("keep") == Keep.OLDEST.value,
        verify=bool(s.get("verify")),
        orphaned_sessions=bool(s.get("orphaned_sessions")),
        session_ttl=_duration(s.get("session_ttl"), s.sources["session_ttl"], "session_ttl"),
        categories=frozenset(Category(c) for c in categories) if categories else DEFAULT_CATEGORIES,
        explicit_categories=bool(categories),
        include=_patterns(s, "include"),
        exclude=_patterns(s, "exclude"),
    )


def _patterns(s: Settings, key: str) -> tuple[str, ...]:
    """The command line's patterns, checked before anything is walked (the config's
    were checked when it was read)."""
    from gradio_clean.config import CLI_SOURCE

    values = tuple(s.get(key) or ())
    if s.sources[key] != CLI_SOURCE:
        return values
    if len(values) > MAX_PATTERNS:
        raise UsageError(f"--{key}: more than {MAX_PATTERNS:,} patterns")
    for value in values:
        try:
            parse_pattern(value)
        except PatternError as exc:
            raise UsageError(
                f"--{key} {shlex.quote(value)}: not a gitignore-style pattern ({exc.reason})"
            ) from None
    return values


NO_RULE = (
    "no rule selected: give --older-than DUR, --duplicates or --orphaned-sessions, "
    "or set older_than, duplicates or orphaned_sessions in a config file"
)


def _consoles() -> tuple[Console, Console]:
    """Data to stdout, everything else to stderr."""
    from rich.console import Console

    return Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)


@contextlib.contextmanager
def handled(err: Console) -> Iterator[None]:
    """The one place a GradioCleanError becomes a one-line message and an exit code."""
    try:
        yield
    except Interrupted as exc:  # not an error: asked for
        err.print(f"gradio-clean: {exc.message}", markup=False, highlight=False)
        raise typer.Exit(int(exc.exit_code)) from None
    except GradioCleanError as exc:
        err.print(f"gradio-clean: error: {shown(exc.message)}", markup=False, highlight=False)
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        err.print("gradio-clean: interrupted", markup=False)
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


def _stopping_on_signals(command: Callable[P, None]) -> Callable[P, None]:
    """SIGINT and SIGTERM stop the command between entries, so it can say what it did."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with stop_on_signals():
            command(*args, **kwargs)

    return run


def _roots(s: Settings, err: Console, *, quiet: bool = False) -> list[Root]:
    from gradio_clean.roots import default_roots, resolve_roots

    paths, sessions = s.get("roots"), s.get("sessions_dirs")
    if paths or sessions:
        return resolve_roots(paths or (), sessions or ())
    roots, looked_at = default_roots()
    if not roots and not quiet:
        err.print(
            "gradio-clean: no Gradio cache found; looked at " + shown(", ".join(looked_at)),
            markup=False,
            highlight=False,
        )
    return roots


@contextlib.contextmanager
def _progress_line(
    err: Console, label: str, show: bool = True
) -> Iterator[Callable[[int, int], None] | None]:
    """A transient status line on stderr, refreshed by the walk itself at most 10 times a
    second: no refresh thread, so the scan may fork its workers safely."""
    from rich.live import Live
    from rich.text import Text

    from gradio_clean.report import plural, size

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
                live.update(Text(f"{label} {plural(files, 'file')}, {size(nbytes)}"), refresh=True)

        yield progress


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


# -- scan ---------------------------------------------------------------------------


@app.command("scan")
@_stopping_on_signals
def scan_command(
    paths: PathsArg = None,
    *,
    sessions_dir: SessionsDirOpt = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    top: TopOpt = 10,
) -> None:
    """Show how much the Gradio caches hold, what holds it, how old it is, and where."""
    from gradio_clean.ignore import ignore_file_report
    from gradio_clean.report import (
        dump_json,
        render_scan,
        render_warnings,
        scan_to_dict,
        scope_lines,
    )
    from gradio_clean.scan import Hooks, ScanResult, ScanWarning, scan

    out, err = _consoles()
    with handled(err):
        settings = _settings(Flags(paths=paths, sessions_dir=sessions_dir), config, err)
        roots = _roots(settings, err)
        if not roots and not json_out:
            return  # _roots said why; empty tables would add nothing
        with _progress_line(err, "Scanning…", err.is_terminal) as progress:
            result: ScanResult = scan(roots, top=top, hooks=Hooks(progress=progress))
        scopes = [ignore_file_report(root) for root in roots]
        refused = tuple(
            ScanWarning(s.ignore_file.path, f"ignored: {s.ignore_file.problem}")
            for s in scopes
            if s.ignore_file is not None and not s.ignore_file.used
        )
        result = dataclasses.replace(result, warnings=(*refused, *result.warnings))
        render_warnings(
            ((w.path, w.message) for w in result.warnings), result.warnings_dropped, err
        )
        if json_out:
            typer.echo(dump_json(scan_to_dict(result, scopes)))
            return
        _say_roles(((r.path, r.role.value, r.role_why) for r in result.roots), err)
        for line in scope_lines(scopes, scan=True):
            err.print(line, markup=False, highlight=False, style="dim", soft_wrap=True)
        render_scan(result, out, top=top)


def _say_roles(roles: Iterable[tuple[str, str, str]], err: Console) -> None:
    """What each root was taken for, and why: dim, on stderr, before anything else."""
    for path, role, why in roles:
        err.print(
            shown(f"{path}: {role} ({why})"),
            markup=False,
            highlight=False,
            style="dim",
            soft_wrap=True,
        )


# -- prune --------------------------------------------------------------------------


@app.command("prune")
@_stopping_on_signals
def prune_command(
    paths: PathsArg = None,
    *,
    sessions_dir: SessionsDirOpt = None,
    config: ConfigOpt = None,
    older_than: OlderThanOpt = None,
    age_by: AgeByOpt = None,
    duplicates: DuplicatesOpt = None,
    dedupe: DedupeOpt = None,
    keep: KeepOpt = None,
    verify: VerifyOpt = None,
    orphaned_sessions: OrphanedOpt = None,
    session_ttl: SessionTtlOpt = None,
    category: CategoryOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
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
            metavar="N",
            help="Rows shown per rule in the table (0: all).",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = 50,
    metrics_file: MetricsOpt = None,
) -> None:
    """Remove what the rules select: a dry run unless --apply."""
    from gradio_clean.metrics import write_metrics
    from gradio_clean.roots import refuse_dangerous

    out, err = _consoles()
    started = time.time()
    metrics: list[RunMetrics] = []
    try:
        with handled(err):
            flags = Flags(
                paths,
                sessions_dir,
                older_than,
                age_by,
                duplicates,
                dedupe,
                keep,
                verify,
                orphaned_sessions,
                session_ttl,
                category,
                include,
                exclude,
            )
            settings = _settings(flags, config, err)
            rules = _rules(settings)
            if not rules.any:
                raise UsageError(NO_RULE)
            if metrics_file is not None:  # before anything is deleted, not after
                _check_metrics_folder(metrics_file)
            roots = _roots(settings, err, quiet=quiet)
            for root in roots:  # a dry run must not offer a run that --apply refuses
                refuse_dangerous(root)
            try:
                plan, result = _plan_and_apply(
                    roots,
                    rules,
                    out,
                    err,
                    apply=apply,
                    yes=yes,
                    wait=wait,
                    quiet=quiet,
                    json_out=json_out,
                    limit=limit,
                )
            except Interrupted as exc:  # apply reports a stop in its result, never raises it
                raise Interrupted(exc.signum, f"{exc.message}; nothing was deleted") from None
            stopped = result.interrupted if result is not None else 0
            metrics.append(_metrics(plan, result, started, success=not stopped))
            _render_prune(
                plan,
                result,
                settings,
                out,
                err,
                json_out=json_out,
                quiet=quiet,
                limit=limit,
                now=started,
            )
            if result is not None and stopped:
                raise _stopped(stopped, len(result.outcomes), len(plan.actions), err)
            if result is not None and not result.complete:
                raise typer.Exit(int(ExitCode.PARTIAL))
    finally:
        if metrics_file is not None and _metrics_folder_exists(metrics_file):
            run = metrics[0] if metrics else _failed_metrics(started)
            with handled(err):
                write_metrics(metrics_file, run)


def _stopped(signum: int, done: int, total: int, err: Console) -> typer.Exit:
    """Say where a signal stopped the deletion; the exit status names the signal."""
    err.print(
        f"gradio-clean: interrupted by {signal_name(signum)}: stopped after {done:,} of "
        f"{total:,} entries; the rest is left for the next run",
        markup=False,
        highlight=False,
    )
    return typer.Exit(int(signal_exit_code(signum)))


def _plan_and_apply(
    roots: list[Root],
    rules: RuleSet,
    out: Console,
    err: Console,
    *,
    apply: bool,
    yes: bool,
    wait: float,
    quiet: bool,
    json_out: bool,
    limit: int,
) -> tuple[Plan, ApplyResult | None]:
    from gradio_clean.delete import apply_plan
    from gradio_clean.lock import lock_roots
    from gradio_clean.plan import ApplyResult
    from gradio_clean.preflight import preflight
    from gradio_clean.report import plural, render_plan, render_warnings, size
    from gradio_clean.rules import build_plan

    show = err.is_terminal and not quiet
    lock = lock_roots(roots, wait) if apply else contextlib.nullcontext()
    with lock:
        if not (quiet or json_out):
            _say_roles(((r.path, r.role.value, r.why) for r in roots), err)
        now = time.time()
        with _progress_line(err, "Planning…", show) as progress:
            plan = build_plan(roots, rules, now=now, progress=progress)
        if not quiet:  # --quiet: nothing on a successful run, so cron mails nothing
            render_warnings(
                ((w.path, w.message) for w in plan.warnings), plan.scan.warnings_dropped, err
            )
        if not apply:
            return preflight(plan), None
        if not plan.actions:
            return plan, ApplyResult((), (), 0.0)
        if not yes and sys.stdin.isatty():
            plan = preflight(plan)
            render_plan(plan, err if json_out else out, now=now, limit=limit)
            links = sum(1 for a in plan.actions if a.hardlink)
            entries = plural(len(plan.actions) - links, "entry", "entries")
            copies = plural(links, "copy", "copies")
            what = (
                f"Delete {entries}"
                if not links
                else f"Link {copies}"
                if links == len(plan.actions)
                else f"Delete {entries} and link {copies}"
            )
            question = f"{what} ({size(plan.bytes)})?"
            with raise_on_stop():  # nothing in hand at a prompt: a signal ends it now
                confirmed = typer.confirm(question, default=False, err=True)
            if not confirmed:
                raise typer.Exit(int(ExitCode.OK))
        with _progress_line(err, "Deleting…", show) as line:
            report = line

            def progress3(done: int, total: int, freed: int) -> None:
                if report is not None:
                    report(done, freed)

            return plan, apply_plan(plan, progress=progress3)


def _render_prune(
    plan: Plan,
    result: ApplyResult | None,
    settings: Settings,
    out: Console,
    err: Console,
    *,
    json_out: bool,
    quiet: bool,
    limit: int,
    now: float,
) -> None:
    from gradio_clean.plan import DONE
    from gradio_clean.report import (
        apply_summary,
        dry_run_summary,
        iter_json,
        prune_to_dict,
        render_plan,
        scope_lines,
    )

    if json_out:
        values = {
            **settings.values,
            "config_file": settings.config.source if settings.config else None,
            "sources": settings.sources,
        }
        for chunk in iter_json(prune_to_dict(plan, result, _jsonable(values))):
            sys.stdout.write(chunk)
        sys.stdout.write("\n")
        return
    incomplete = result is not None and not result.complete
    if quiet:
        if incomplete:  # cron mails stderr: say what was left and why
            assert result is not None
            for o in result.outcomes:
                if o.status not in DONE:
                    err.print(
                        shown(f"{o.status.value}: {o.action.path}: {o.detail}"),
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
            for line in apply_summary(plan, result):
                err.print(line, markup=False, highlight=False)
        return
    render_plan(plan, out, now=now, limit=limit, result=result)
    for line in scope_lines(plan.scopes):
        out.print(line, markup=False, highlight=False, style="dim", soft_wrap=True)
    for line in dry_run_summary(plan) if result is None else apply_summary(plan, result):
        out.print(line, markup=False, highlight=False)


def _jsonable(values: dict[str, object]) -> dict[str, object]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _metrics_folder_exists(path: str) -> bool:
    return os.path.isdir(os.path.dirname(os.path.abspath(path)))


def _check_metrics_folder(path: str) -> None:
    """Refused up front (exit 2), so a run never deletes and then fails to report."""
    if not _metrics_folder_exists(path):
        folder = os.path.dirname(os.path.abspath(path))
        raise UsageError(f"--metrics-file {path}: no such folder {folder}")


def _metrics(
    plan: Plan, result: ApplyResult | None, started: float, *, success: bool
) -> RunMetrics:
    from gradio_clean.metrics import Count, RunMetrics
    from gradio_clean.plan import Status

    scanned: dict[str, Count] = {}
    for root in plan.scan.roots:
        for cat, tally in root.categories.items():
            prev = scanned.get(cat.value, Count())
            scanned[cat.value] = Count(prev.files + tally.files, prev.bytes + tally.bytes)
    freed: dict[str, Count] = {}
    linked: dict[str, Count] = {}
    for o in result.outcomes if result else ():
        prev = freed.get(o.action.rule.value, Count())
        freed[o.action.rule.value] = Count(prev.files + o.freed_files, prev.bytes + o.freed_bytes)
        if o.status is Status.LINKED:
            prev = linked.get(o.action.rule.value, Count())
            linked[o.action.rule.value] = Count(prev.files + 1, prev.bytes + o.freed_bytes)
    return RunMetrics(
        scanned=scanned,
        freed=freed,
        skipped=result.count(Status.SKIPPED) if result else 0,
        failed=result.count(Status.FAILED) if result else 0,
        duration_seconds=time.time() - started,
        success=success,
        timestamp=time.time(),
        linked=linked,
    )


def _failed_metrics(started: float) -> RunMetrics:
    from gradio_clean.metrics import RunMetrics

    return RunMetrics(
        scanned={},
        freed={},
        skipped=0,
        failed=0,
        duration_seconds=time.time() - started,
        success=False,
        timestamp=time.time(),
    )


# -- config -------------------------------------------------------------------------


@app.command("config")
def config_command(config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Show the effective configuration and where each value comes from."""
    from gradio_clean.config import toml_key, toml_value
    from gradio_clean.report import dump_json

    out, err = _consoles()
    with handled(err):
        settings = _settings(Flags(), config, err)
        if json_out:
            typer.echo(
                dump_json(
                    {
                        "schema_version": 1,
                        "command": "config",
                        "config_file": settings.config.source if settings.config else None,
                        "searched": list(settings.looked_at),
                        "values": _jsonable(settings.values),
                        "sources": settings.sources,
                    }
                )
            )
            return
        if settings.config:
            out.print(
                f"# config file: {shown(settings.config.source)}", markup=False, highlight=False
            )
        else:
            out.print(
                "# no config file; looked at: " + shown(", ".join(settings.looked_at)),
                markup=False,
                highlight=False,
            )
        for key, value in settings.values.items():
            line = (
                f"{toml_key(key)} = {toml_value(value)}"
                if value is not None
                else f"# {key} is not set"
            )
            out.print(
                f"{line:<48} # {shown(settings.sources[key])}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )


# -- schedule -----------------------------------------------------------------------


@app.command("schedule")
def schedule_command(
    paths: PathsArg = None,
    *,
    sessions_dir: SessionsDirOpt = None,
    config: ConfigOpt = None,
    older_than: OlderThanOpt = None,
    age_by: AgeByOpt = None,
    duplicates: DuplicatesOpt = None,
    dedupe: DedupeOpt = None,
    keep: KeepOpt = None,
    verify: VerifyOpt = None,
    orphaned_sessions: OrphanedOpt = None,
    session_ttl: SessionTtlOpt = None,
    category: CategoryOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
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
    from gradio_clean.schedule import crontab_line, systemd_units

    out, err = _consoles()
    with handled(err):
        flags = Flags(
            paths,
            sessions_dir,
            older_than,
            age_by,
            duplicates,
            dedupe,
            keep,
            verify,
            orphaned_sessions,
            session_ttl,
            category,
            include,
            exclude,
        )
        settings = _settings(flags, config, err)
        if not _rules(settings).any:
            raise UsageError(NO_RULE)
        roots = _roots(settings, err)
        args = flags.argv()
        if (
            not flags.paths
            and not flags.sessions_dir
            and not settings.get("roots")
            and not settings.get("sessions_dirs")
        ):
            if not roots:  # a line with nothing pinned would prune wherever cron starts
                raise UsageError(
                    "no Gradio cache found to schedule; give its folder as PATH "
                    "(or set roots in a config file)"
                )
            # cron and systemd start elsewhere, without GRADIO_TEMP_DIR: pin what we see now
            args += [r.path for r in roots]
        if settings.config is not None:
            args = ["--config", os.path.abspath(settings.config.source), *args]
        if metrics_file is not None:
            args = ["--metrics-file", os.path.abspath(metrics_file), *args]
        exe = _executable()
        if systemd:
            service, timer = systemd_units(
                every,
                args,
                exe,
                roots=[r.path for r in roots],
                metrics_file=metrics_file and os.path.abspath(metrics_file),
            )
            out.print(service, markup=False, highlight=False)
            out.print(timer, markup=False, highlight=False)
            return
        out.print(crontab_line(every, args, exe), markup=False, highlight=False, soft_wrap=True)


def _executable() -> str:
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


def main() -> None:
    """Console-script entry point."""
    app(prog_name="gradio-clean")
