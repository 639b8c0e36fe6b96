"""Renderers: one result, a rich table for people and versioned JSON for machines.

Nothing here decides anything; it only turns frozen results into text.
Paths may hold bytes that are not UTF-8 (kept by Python as surrogate escapes):
`jsonable()` makes them valid Unicode for JSON, and `shown()` also escapes what a
terminal would act on (a newline, a carriage return, ESC), so that a name another
user chose can neither forge a line nor drive the terminal.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, JustifyMethod, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from gradio_clean.classify import Category
from gradio_clean.consoles import folds
from gradio_clean.filesystems import Filesystem, filesystems_of
from gradio_clean.pathfit import PathCell, fit_path, short_hashes
from gradio_clean.plan import (
    Action,
    ApplyResult,
    Outcome,
    Plan,
    Rule,
)
from gradio_clean.scanned import RootScan, ScanResult
from gradio_clean.summary import (
    age,
    apply_summary,
    dry_run_summary,
    scope_lines,
    size,
)
from gradio_clean.text import plural, shown

# -- scan -----------------------------------------------------------------------


def render_scan(
    result: ScanResult,
    console: Console,
    *,
    top: int,
    filesystems: Sequence[Filesystem] | None = None,
) -> None:
    """`filesystems`: as for `documents.scan_to_dict`."""
    now = result.started
    _render_roots(result.roots, console, now)
    _render_filesystems(
        filesystems_of(result.roots) if filesystems is None else filesystems, console
    )
    _render_categories(result.roots, console)
    _render_ages(result.roots, console)
    _render_largest(result.roots, console, now, top)
    extras = [
        plural(sum(r.symlinks for r in result.roots), "symlink") + " (not followed)",
        plural(sum(r.special for r in result.roots), "FIFO/socket/device", "FIFOs/sockets/devices")
        + " (not opened)",
        plural(sum(r.hardlinks for r in result.roots), "extra hard link") + " (counted once)",
    ]
    say(console, [f"{e};" for e in extras[:-1]] + extras[-1:], style="dim", indent="  ", hang="")


def _render_roots(roots: Sequence[RootScan], console: Console, now: float) -> None:
    """A root's path is never cut short (`scan | cat` gets 80 columns): it folds in the
    room the numbers leave, or, where too little is left, gets a line of its own."""
    columns = ("role", "files", "folders", "size", "on disk", "oldest", "newest")
    rows = [
        (
            r.role.value,
            f"{r.files:,}",
            f"{r.dirs:,}",
            size(r.bytes),
            size(r.disk_bytes),
            age(r.oldest, now),
            age(r.newest, now),
        )
        for r in roots
    ]
    numbers = Table(box=box.SIMPLE_HEAD)
    for col in columns:
        numbers.add_column(col, no_wrap=True)
    for row in rows:
        numbers.add_row(*row)
    room = console.width - console.measure(numbers).maximum - 2  # the root column's padding
    longest = max((len(shown(r.path)) for r in roots), default=4)
    table = Table(title="Roots", box=box.SIMPLE_HEAD, title_justify="left")
    if room >= min(longest, 24):
        table.add_column("root", overflow="fold", width=min(longest, room))
        labels = [Text(shown(r.path)) for r in roots]
    else:
        console.print("Roots", style="italic")
        for i, r in enumerate(roots, 1):
            console.print(Text(f"  {i}: {shown(r.path)}", overflow="fold"))
        numbered = [(str(i), *row) for i, row in enumerate(rows, 1)]
        for part in fitted(("#", *columns), numbered, console, left=("role",)):
            console.print(part)
        return
    for col in columns:
        table.add_column(col, justify="left" if col == "role" else "right")
    for label, row in zip(labels, rows, strict=True):
        table.add_row(label, *row)
    console.print(table)


_WIDE = 1 << 30  # measuring a table as if the console had no width


def fitted(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    console: Console,
    *,
    left: Sequence[str] = (),
    title: str | None = None,
) -> list[Table]:
    """Cells that never wrap, in as few tables as fit the console: each after the first
    repeats the first column, so a line still says whose numbers it holds. At 60 columns
    the Roots table had split `32.2 MiB` and `an hour` over two lines and cut its headers
    to `fold…`. Columns in `left` are aligned left, the others (numbers) right."""

    def table(cols: Sequence[int], name: str | None) -> Table:
        out = Table(title=name, box=box.SIMPLE_HEAD, title_justify="left")
        for c in cols:
            side: JustifyMethod = "left" if c == 0 or headers[c] in left else "right"
            out.add_column(headers[c], justify=side, no_wrap=True)
        for row in rows:
            out.add_row(*(row[c] for c in cols))
        return out

    unbounded = console.options.update_width(_WIDE)
    groups: list[list[int]] = [[0]]
    for c in range(1, len(headers)):
        trial = [*groups[-1], c]
        width = console.measure(table(trial, None), options=unbounded).maximum
        if len(trial) > 2 and width > console.width:
            groups.append([0, c])
        else:
            groups[-1] = trial
    return [table(cols, title if i == 0 else None) for i, cols in enumerate(groups)]


def _render_filesystems(filesystems: Sequence[Filesystem], console: Console) -> None:
    """What `--max-size` and `--min-free` are sized from: free is what unprivileged users
    may still write (statvfs f_bavail), share is the roots' usage of the whole size."""
    if not filesystems:
        return
    table = Table(title="Filesystems", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("mount point", overflow="fold")
    for col in ("size", "free", "roots use", "share"):
        table.add_column(col, justify="right", no_wrap=True)
    for fs in filesystems:
        table.add_row(
            Text(shown(fs.mount)),
            size(fs.size),
            size(fs.free),
            size(fs.roots_usage),
            "< 0.1%" if 0 < fs.share < 0.0005 else f"{100 * fs.share:.1f}%",
        )
    console.print(table)


def _render_categories(roots: Iterable[RootScan], console: Console) -> None:
    roots = list(roots)
    total = sum(r.bytes for r in roots) or 1
    rows = []
    for cat in Category:
        files = sum(r.categories[cat].files for r in roots)
        dirs = sum(r.categories[cat].dirs for r in roots)
        nbytes = sum(r.categories[cat].bytes for r in roots)
        if files or dirs:
            rows.append(((cat.value, f"{files:,}", f"{dirs:,}", size(nbytes)), nbytes / total))
    _render_shares("By category", ("category", "files", "folders", "size"), rows, console)


def _render_ages(roots: Sequence[RootScan], console: Console) -> None:
    if not roots:
        return
    total = sum(b.bytes for r in roots for b in r.ages) or 1
    rows = []
    for i, bucket in enumerate(roots[0].ages):
        files = sum(r.ages[i].files for r in roots)
        nbytes = sum(r.ages[i].bytes for r in roots)
        rows.append(((bucket.label, f"{files:,}", size(nbytes)), nbytes / total))
    _render_shares("By age (mtime)", ("age", "files", "size"), rows, console)


_BAR_LEAST = 4  # a bar narrower than this draws too few eighths to compare


def _render_shares(
    title: str,
    headers: Sequence[str],
    rows: Sequence[tuple[Sequence[str], float]],
    console: Console,
) -> None:
    """A label, its numbers, a bar and the share. The bar is drawn in the room the
    numbers leave (up to BAR_WIDTH cells), not cut: at 60 columns rich cut a 79% bar
    to `███████…`, shorter than it was and no longer to scale with the others."""
    cells = [(*numbers, f"{100 * share:.1f}%") for numbers, share in rows]

    def drawn(width: int) -> Table:
        table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
        for col in (*headers, "", "share"):
            side: JustifyMethod = "left" if col in (headers[0], "") else "right"
            table.add_column(col, justify=side, no_wrap=True)
        for (numbers, share), row in zip(rows, cells, strict=True):
            table.add_row(*numbers, Text(bar(share, width), style="cyan"), row[-1])
        return table

    unbounded = console.options.update_width(_WIDE)
    over = console.measure(drawn(BAR_WIDTH), options=unbounded).maximum - console.width
    if BAR_WIDTH - over >= _BAR_LEAST:
        console.print(drawn(min(BAR_WIDTH, BAR_WIDTH - over)))
        return
    for table in fitted((*headers, "share"), cells, console, title=title):
        console.print(table)


def _render_largest(roots: Sequence[RootScan], console: Console, now: float, top: int) -> None:
    items = sorted((i for r in roots for i in r.largest), key=lambda i: i.bytes, reverse=True)
    if not items or top <= 0:
        return
    table = Table(
        title=f"Largest hash folders and sessions (top {top})",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    for col in ("path", "category", "files", "size", "last change"):
        table.add_column(
            col, justify="left" if col in ("path", "category") else "right", no_wrap=col != "path"
        )
    for item in items[:top]:
        table.add_row(
            PathCell(shown(item.path), shown(item.path[: len(item.path) - len(item.rel)])),
            item.category.value,
            f"{item.files:,}",
            size(item.bytes),
            age(item.newest_ns / 1e9, now) + " ago",
        )
    console.print(table)


BAR_WIDTH = 20
_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A share drawn as ncdu does: `width` cells of full blocks, then eighths, padded."""
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (_EIGHTHS[part] if part else "")
    return text.ljust(width)


def say(
    console: Console,
    units: Sequence[str],
    *,
    style: str = "bold",
    indent: str = "",
    hang: str = "  ",
) -> None:
    """`units` joined by spaces, on as many lines as the console needs (each after the
    first indented by `hang` more), a unit never split: where the terminal wraps a line, it cuts
    a size (`1.1` over `MiB`) or a word. A unit wider than the console folds at its spaces.
    One line where the console does not fold prose (`consoles.folds`: piped, as to cron)."""
    if not folds(console):
        console.print(Text(indent + " ".join(units), style=style), soft_wrap=True)
        return
    line = indent
    for unit in units:
        if line.strip() and cell_len(f"{line} {unit}") > console.width:
            console.print(Text(line, style=style), soft_wrap=False)
            line = indent + hang
        line = f"{line} {unit}" if line.strip() else line + unit
    console.print(Text(line, style=style), soft_wrap=False)


def render_warnings(warnings: Iterable[tuple[str, str]], dropped: int, console: Console) -> None:
    for path, message in warnings:
        console.print(Text(f"warning: {shown(path)}: {shown(message)}"), style="yellow")
    if dropped:
        console.print(f"warning: {plural(dropped, 'more warning')} not shown", style="yellow")


# -- prune ------------------------------------------------------------------------


def render_plan(
    plan: Plan, console: Console, *, now: float, limit: int, result: ApplyResult | None = None
) -> None:
    """Per rule, largest first, a table per root (its path once, as the title) with
    root-relative paths; --json has every entry with its full path."""
    skips = plan.skips
    actions = plan.actions
    for rule in Rule:
        picked = actions.of_rule(rule)
        if not picked:
            continue
        largest = actions.bytes_of
        top = heapq.nlargest(limit, picked, key=largest) if limit > 0 else None
        indices = top if top is not None else sorted(picked, key=lambda i: -largest(i))
        rows = [(i, actions[i]) for i in indices]
        usual = _usual_reason([a for _, a in rows])
        count = plural(len(picked), "entry", "entries")
        heading = f"{rule.value}: {count}, {size(sum(largest(i) for i in picked))}"
        console.print()
        say(console, [heading, f"({shown(short_hashes(usual))})"] if usual else [heading])
        with_status = result is not None or any(i in skips for i, _ in rows)
        for root, group in _by_root(rows):
            with_reasons = rule is Rule.DUPLICATES or any(a.reason != usual for _, a in group)
            cells: list[list[RenderableType]] = []
            for i, action in group:
                row: list[RenderableType] = [
                    PathCell(shown(action.rel) + ("/" if action.is_dir else "")),
                    action.category.value,
                    size(action.bytes),
                    age(None if action.age_ns is None else action.age_ns / 1e9, now),
                ]
                if with_reasons:
                    row.append(_reason(action, usual))
                if with_status:
                    outcome = None if result is None else result.outcomes.at(i)
                    row.append(Text(shown(_status(outcome, skips.get(i), result))))
                cells.append(row)
            reasons = _reason_header(rule) if with_reasons else ""
            console.print(_plan_table(shown(root) + "/", cells, console, reasons, with_status))
        if 0 < limit < len(picked):
            more = f"… and {len(picked) - limit:,} more"
            units = [more, "(--limit 0 shows all,", "--json lists every entry)"]
            say(console, units, style="dim", indent="  ")
    _render_reported(plan, console, now=now, limit=limit)


def _render_reported(plan: Plan, console: Console, *, now: float, limit: int) -> None:
    """Duplicates that are shown and left alone (session files), laid out as the
    duplicates rule's rows: each beside the copy it has the same content as. Each row
    had said why in a column of its own, which at 80 columns folded over 7 lines; the
    summary says it once."""
    if not plan.reported:
        return
    actions = sorted(plan.reported, key=lambda a: -a.bytes)
    console.print()
    count = f"{len(actions):,} entries, {size(sum(a.bytes for a in actions))}"
    say(console, ["duplicates shown only", f"(not linked): {count}"])
    groups: dict[str, list[list[RenderableType]]] = {}
    for a in actions[:limit] if limit > 0 else actions:
        keep = PathCell(shown(os.path.relpath(a.keep or a.path, a.root)))
        row = [PathCell(shown(a.rel)), a.category.value, size(a.bytes)]
        groups.setdefault(a.root, []).append([*row, age(a.newest_ns / 1e9, now), keep])
    for root, rows in groups.items():
        console.print(_plan_table(shown(root) + "/", rows, console, "same content as", None))


def _reason_header(rule: Rule) -> str:
    return "copy that stays" if rule is Rule.DUPLICATES else "reason"


def _reason(action: Action, usual: str | None) -> RenderableType:
    """What the other columns do not say: the copy that stays, or an unusual reason."""
    if action.keep is not None:
        return PathCell(shown(os.path.relpath(action.keep, action.root)))
    reason = "" if action.reason == usual else shown(short_hashes(action.reason))
    return Text(reason, no_wrap=True, overflow="ellipsis")


STATUS_ROOM = len("skipped")  # apply's status column gets at least this; a dry run too


def _plan_table(
    title: str,
    rows: list[list[RenderableType]],
    console: Console,
    reasons: str,
    status: bool | None,
    path: str = "path",
) -> Table:
    """One root's rows. The path columns (the path, the copy that stays) get widths from
    the rows and the console width alone, as if a status column of STATUS_ROOM cells were
    there in a dry run too: so the dry run and apply's result cut each path alike. A
    reason in words keeps a third of the room at least, and the status's room too when
    there is no status. `status` None: a table that never has one (duplicates shown
    only). Two paths that would be cut shorter than _PAIR_LEAST side by side go one above
    the other, in one column."""
    table = Table(title=Text(title), box=box.SIMPLE_HEAD, title_justify="left", show_edge=False)
    # path, category, size, age, the reason, status (or its room)
    columns = 4 + bool(reasons) + (status is not None)
    overhead = _overhead(console, columns)
    fixed = sum(max(cell_len(h), *(cell_len(str(r[c])) for r in rows)) for c, h in _FIXED)
    spare = console.width - overhead - fixed
    spare -= 0 if status is None else _status_room(rows, status, spare)
    path_width = max(*map(cell_len, path.splitlines()), *(_width(r[0]) for r in rows))
    second = max(cell_len(reasons), *(_width(r[4]) for r in rows)) if reasons else 0
    if reasons and all(isinstance(r[4], PathCell) for r in rows):
        shared = _share(spare, path_width, second)
        wanted = (min(path_width, _PAIR_LEAST), min(second, _PAIR_LEAST))
        if shared[0] < wanted[0] or shared[1] < wanted[1]:
            pairs = [[_Pair(r[0], r[4]), *r[1:4], *r[5:]] for r in rows]
            return _plan_table(title, pairs, console, "", status, f"path\n{_KEEPS} {reasons}")
        path_width, reason_width = shared
    elif reasons:
        reason_width = min(second, max(spare // 3, spare - path_width))
        path_width = min(path_width, spare - reason_width)
        if status is False:  # the status's room, and its column's padding
            room = STATUS_ROOM + overhead - _overhead(console, columns - 1)
            reason_width = min(second, reason_width + room)
    table.add_column(path, width=max(1, min(path_width, spare)), no_wrap=True)
    table.add_column("category", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("age", justify="right", no_wrap=True)
    if reasons:
        table.add_column(reasons, width=max(1, reason_width), no_wrap=True)
    if status:
        table.add_column("status", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


_FIXED = ((1, "category"), (2, "size"), (3, "age"))
_SKIPPED = len("skipped: ")


def _status_room(rows: list[list[RenderableType]], status: bool, spare: int) -> int:
    """The status column's room: a skip's reason on one line where a third of the room
    allows. Counted as apply's result says it ("skipped: …"), so that a dry run
    ("skip: …") and its apply keep the same room for the paths."""
    if not status:
        return STATUS_ROOM
    said = (str(r[-1]).partition(": ") for r in rows)
    longest = max((_SKIPPED + cell_len(why) if sep else cell_len(word) for word, sep, why in said))
    return max(STATUS_ROOM, min(longest, spare // 3))


def _width(cell: RenderableType) -> int:
    """A path cell's width uncut, or a reason's."""
    if isinstance(cell, (PathCell, _Pair)):
        return cell_len(cell.full)
    return cell.cell_len if isinstance(cell, Text) else cell_len(str(cell))


def _share(spare: int, first: int, second: int) -> tuple[int, int]:
    """Two columns' widths in `spare` cells: both whole if they fit, else the narrower
    whole if it fits in half, the other the rest; else half each."""
    if first + second <= spare:
        return first, second
    half = spare // 2
    if second <= half:
        return spare - second, second
    if first <= spare - half:
        return first, spare - first
    return spare - half, max(half, 1)


def _overhead(console: Console, columns: int) -> int:
    """What a plan table's borders and padding take beside its cells."""
    probe = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for _ in range(columns):
        probe.add_column(no_wrap=True)
    probe.add_row(*(["x"] * columns))
    return console.measure(probe).maximum - columns


def _status(outcome: Outcome | None, skip: str | None, result: ApplyResult | None) -> str:
    if result is None:
        return f"skip: {skip}" if skip else ""
    if outcome is None:
        return "-"
    return outcome.status.value + (f": {outcome.detail}" if outcome.detail else "")


def _usual_reason(actions: Sequence[Action]) -> str | None:
    """The reason most rows share: said once in the title, not on every row."""
    if actions and actions[0].keep is not None:  # duplicates: a row names its copy that stays
        return "extra copies, replaced by hard links" if actions[0].hardlink else "extra copies"
    counts: dict[str, int] = {}
    for a in actions:
        counts[a.reason] = counts.get(a.reason, 0) + 1
    reason, n = max(counts.items(), key=lambda kv: kv[1], default=("", 0))
    return reason if n > 1 or len(actions) == 1 else None


def _by_root(rows: Sequence[tuple[int, Action]]) -> list[tuple[str, list[tuple[int, Action]]]]:
    """Rows grouped by root, in the order their roots first appear (largest first)."""
    groups: dict[str, list[tuple[int, Action]]] = {}
    for row in rows:
        groups.setdefault(row[1].root, []).append(row)
    return list(groups.items())


_PAIR_LEAST = 16  # a duplicate's path and its copy's, side by side, keep this many cells
_KEEPS = "→"


class _Pair:
    """A duplicate's path over the copy that stays: at 60 columns, side by side, each got
    8 cells (`8…e/fi…t   1…6/im…p`), which named neither file."""

    def __init__(self, copy: RenderableType, keep: RenderableType) -> None:
        assert isinstance(copy, PathCell) and isinstance(keep, PathCell)
        self.copy, self.keep = copy, keep
        self.full = max(copy.full, f"{_KEEPS} {keep.full}", key=cell_len)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = cell_len(self.full)
        return Measurement(min(width, 12), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        yield Text(fit_path(self.copy.path, width, self.copy.root), no_wrap=True)
        keep = fit_path(self.keep.path, width - len(_KEEPS) - 1, self.keep.root)
        yield Text(f"{_KEEPS} {keep}", no_wrap=True)


# -- budget (--max-size, --min-free) -------------------------------------------------


@contextlib.contextmanager
def progress_line(
    err: Console, label: str, show: bool = True
) -> Iterator[Callable[[int, int], None] | None]:
    """A transient status line on stderr, refreshed by the walk itself at most 10 times a
    second: no refresh thread, so the scan may fork its workers safely."""
    from rich.live import Live

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


def say_roles(roles: Iterable[tuple[str, str, str]], err: Console) -> None:
    """What each root was taken for, and why: dim, on stderr, before anything else."""
    for path, role, why in roles:
        err.print(
            shown(f"{path}: {role} ({why})"),
            markup=False,
            highlight=False,
            style="dim",
            soft_wrap=True,
        )


def render_prune(
    plan: Plan, result: ApplyResult | None, out: Console, *, limit: int, now: float
) -> None:
    """prune's tables and summary, for people (cli.py writes --json and --quiet itself)."""
    render_plan(plan, out, now=now, limit=limit, result=result)
    for line in scope_lines(plan.scopes):
        out.print(line, markup=False, highlight=False, style="dim", soft_wrap=True)
    for line in dry_run_summary(plan) if result is None else apply_summary(plan, result):
        say(out, units(line), style="")


_SIZE_UNIT = re.compile(r"(?:Bytes?|[KMGTPE]iB)\b")


def units(line: str) -> list[str]:
    """`line` cut at its single spaces, but between a size's number and its unit: joined
    by spaces again, the units give `line` back as it was."""
    out: list[str] = []
    for word in re.split(r"(?<=\S) (?=\S)", line):
        if out and out[-1][-1:].isdigit() and _SIZE_UNIT.match(word):
            out[-1] += " " + word
        else:
            out.append(word)
    return out
