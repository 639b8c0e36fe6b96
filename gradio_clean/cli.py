"""The command line: parse, call the library, render. No decisions live here."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Optional

import typer
from rich.console import Console

from gradio_clean import __version__
from gradio_clean.errors import ExitCode, GradioCleanError
from gradio_clean.report import dump_json, render_scan, render_warnings, scan_to_dict, size
from gradio_clean.roots import Root, default_roots, resolve_roots
from gradio_clean.scan import Hooks, ScanResult, scan

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
    with err.status("Scanning…") as status:

        def progress(files: int, nbytes: int) -> None:
            status.update(f"Scanning… {files:,} files, {size(nbytes)}")

        return scan(roots, top=top, hooks=Hooks(progress=progress))


def main() -> None:
    """Console-script entry point."""
    app(prog_name="gradio-clean")
