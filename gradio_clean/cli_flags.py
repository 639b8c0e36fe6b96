"""The option table (options.py) as typer parameters, and the options of one command.

Each table option becomes one typer parameter here, with its flag, help and panel
from the table; a command decorated with `with_flags` gets them all as one `Flags`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, Optional

import typer

from gradio_clean.options import ROOTS_PANEL, SCOPE_KEYS, Kind, Option, in_flag_order

APPLY_PANEL = "Applying"
OUTPUT_PANEL = "Output"
SCHEDULE_PANEL = "Schedule"

# -- options ------------------------------------------------------------------------
# `Optional[...]` rather than `X | None`: typer reads these at runtime on 3.10.

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

ApplyOpt = Annotated[
    bool,
    typer.Option(
        "--apply", help="Delete for real (the default is a dry run).", rich_help_panel=APPLY_PANEL
    ),
]
YesOpt = Annotated[
    bool,
    typer.Option(
        "--yes",
        "-y",
        help="Do not ask for confirmation on a terminal.",
        rich_help_panel=APPLY_PANEL,
    ),
]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        min=0,
        help="How long to wait for another run on the same root to finish.",
        rich_help_panel=APPLY_PANEL,
    ),
]
LimitOpt = Annotated[
    int,
    typer.Option(
        "--limit",
        min=0,
        metavar="N",
        help="Rows shown per rule in the table (0: all).",
        rich_help_panel=OUTPUT_PANEL,
    ),
]


@dataclasses.dataclass(frozen=True)
class Flags:
    """What the command line said: the table's options as given (None: not given, so
    the config and the defaults fill in), keyed like the config, and --config."""

    given: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    config: str | None = None


def typer_parameter(option: Option) -> inspect.Parameter:
    """One option of the table as typer reads a parameter: Annotated[type, Option]."""
    value: Any = option.choices or str
    if option.argument:
        info: Any = typer.Argument(metavar=option.metavar, help=option.help, show_default=False)
    else:
        decl = option.flag
        if option.kind is Kind.SWITCH:
            decl, value = f"{option.flag}/--no-{option.flag[2:]}", bool
        info = typer.Option(
            decl,
            metavar=option.metavar,
            show_default=False,
            help=option.help,
            rich_help_panel=option.panel,
        )
    if option.kind is Kind.LIST:
        value = list[value]
    kind = (
        inspect.Parameter.POSITIONAL_OR_KEYWORD
        if option.argument
        else inspect.Parameter.KEYWORD_ONLY
    )
    return inspect.Parameter(
        option.param,
        kind,
        default=None,
        annotation=Annotated[Optional[value], info],  # noqa: UP045
    )


def with_flags(keys: Iterable[str]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the table's options for `keys`, and --config; the command gets
    them as one `Flags`, its first parameter, and keeps its own parameters after."""
    chosen = in_flag_order(keys)
    scope = [typer_parameter(o) for o in chosen if o.key in SCOPE_KEYS]
    rules = [typer_parameter(o) for o in chosen if o.key not in SCOPE_KEYS]
    config = inspect.Parameter(
        "config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigOpt
    )

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]

        @functools.wraps(command)
        def run(**kwargs: Any) -> None:
            given = {o.key: kwargs.pop(o.param) for o in chosen}
            command(Flags(given, kwargs.pop("config")), **kwargs)

        params = [*scope, config, *rules, *own]
        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run

    return decorate
