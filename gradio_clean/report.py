"""Renderers: one result, a rich table for people and versioned JSON for machines.

Nothing here decides anything; it only turns frozen results into text.
Paths may hold bytes that are not UTF-8 (kept by Python as surrogate escapes):
`jsonable()` makes them valid Unicode for JSON, and `shown()` also escapes what a
terminal would act on (a newline, a carriage return, ESC), so that a name another
user chose can neither forge a line nor drive the terminal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import humanize
from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from gradio_clean.classify import Category
from gradio_clean.config import Settings, toml_key, toml_value
from gradio_clean.errors import signal_name
from gradio_clean.ignore import IgnoreFile, ScopeReport
from gradio_clean.options import plain
from gradio_clean.plan import (
    DONE,
    Action,
    ApplyResult,
    Budget,
    BudgetTarget,
    Outcome,
    Plan,
    Rule,
    Status,
)
from gradio_clean.scanned import Item, RootScan, ScanResult
from gradio_clean.text import jsonable, shown
from gradio_clean.text import plural as plural  # re-exported: the CLI words counts with it

SCHEMA_VERSION = 1
# prune's JSON: 2 since a duplicate replaced by a hard link has status "linked" (it said
# "deleted", though its path stays) and duplicates shown only are listed under "reported".
PRUNE_SCHEMA_VERSION = 2


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
# Longest age shown; a timedelta cannot hold the span of an int64-second mtime.
_MAX_AGE = 1e13


def iso(ts: float | None) -> str | None:
    """UTC, whole seconds. Dates datetime cannot hold (tmpfs keeps any int64 mtime)
    are clamped to year 1 or 9999 rather than crash the report."""
    if ts is None:
        return None
    try:
        moment = _EPOCH + dt.timedelta(seconds=ts)
    except OverflowError:
        moment = (dt.datetime.max if ts > 0 else dt.datetime.min).replace(tzinfo=dt.timezone.utc)
    return moment.isoformat(timespec="seconds")


def size(n: int) -> str:
    return humanize.naturalsize(n, binary=True)


def age(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    return humanize.naturaldelta(dt.timedelta(seconds=min(max(0.0, now - ts), _MAX_AGE)))


def dump_json(doc: Mapping[str, Any]) -> str:
    return "".join(iter_json(doc))


def iter_json(doc: Mapping[str, Any]) -> Iterator[str]:
    """The document as text, in pieces: valid UTF-8 whatever it holds (paths go through
    jsonable() where they are built; this also catches names that reach a message).

    A prune can plan hundreds of thousands of actions, and "actions" may be a lazy
    iterable: each is written as one compact line (C encoder, `grep`-able) as it comes,
    so the document is never whole in memory. The rest is indented.
    """
    actions = doc.get("actions")
    if actions is None or isinstance(actions, (str, Mapping)):
        yield json.dumps(_printable(doc), indent=2, ensure_ascii=False)
        return
    sep = "{\n"
    for key, value in doc.items():
        yield sep
        sep = ",\n"
        if key != "actions":
            text = json.dumps(_printable(value), indent=2, ensure_ascii=False)
            yield f"  {json.dumps(key)}: " + text.replace("\n", "\n  ")
            continue
        yield '  "actions": ['
        row_sep = "\n    "
        for row in value:
            yield row_sep + _row(row)
            row_sep = ",\n    "
        yield "\n  ]" if row_sep != "\n    " else "]"
    yield "\n}"


_compact = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode


def _row(value: Any) -> str:
    """One action; _action_to_dict already made it printable, so the check is cheap."""
    text = _compact(value)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _compact(_printable(value))
    return text


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return value if value.isascii() else jsonable(value)
    if isinstance(value, Mapping):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value


# -- scan -----------------------------------------------------------------------


def scan_to_dict(result: ScanResult, scopes: Sequence[ScopeReport] = ()) -> dict[str, Any]:
    """`scopes`: each root's ignore file, `ignored` counting the top-level entries it excludes."""
    found = {s.root: s for s in scopes}
    roots = []
    for r in result.roots:
        doc = _root_to_dict(r)
        scope = found.get(r.path)
        if scope is not None:
            doc["ignore_file"] = ignore_file_to_dict(scope.ignore_file)
            if doc["ignore_file"] is not None:
                doc["ignore_file"]["top_level_excluded"] = scope.ignored
        roots.append(doc)
    return {
        "schema_version": SCHEMA_VERSION,
        "command": "scan",
        "scanned_at": iso(result.started),
        "duration_seconds": round(result.duration, 3),
        "roots": roots,
        "warnings": [{"path": jsonable(w.path), "message": w.message} for w in result.warnings],
        "warnings_dropped": result.warnings_dropped,
    }


def _root_to_dict(root: RootScan) -> dict[str, Any]:
    return {
        "path": jsonable(root.path),
        "role": root.role.value,
        "role_reason": root.role_why,
        "files": root.files,
        "dirs": root.dirs,
        "bytes": root.bytes,
        "disk_bytes": root.disk_bytes,
        "symlinks": root.symlinks,
        "special": root.special,
        "hardlinks": root.hardlinks,
        "oldest": iso(root.oldest),
        "newest": iso(root.newest),
        "categories": {
            c.value: {"files": t.files, "dirs": t.dirs, "bytes": t.bytes}
            for c, t in root.categories.items()
        },
        "ages": [{"age": a.label, "files": a.files, "bytes": a.bytes} for a in root.ages],
        "largest": [_item_to_dict(i) for i in root.largest],
    }


def ignore_file_to_dict(ignore: IgnoreFile | None) -> dict[str, Any] | None:
    if ignore is None:
        return None
    return {
        "path": jsonable(ignore.path),
        "used": ignore.used,
        "patterns": len(ignore.patterns.patterns) if ignore.patterns is not None else 0,
        "problem": ignore.problem,
    }


def scope_lines(scopes: Iterable[ScopeReport], *, scan: bool = False) -> list[str]:
    """What excludes kept out, per root: a blinding ignore file (a lone `*`) shows here."""
    lines = []
    for s in scopes:
        if s.excluded:
            lines.append(
                f"--exclude/exclude patterns excluded {s.excluded:,} files in {shown(s.root)}"
            )
        ignore = s.ignore_file
        if ignore is None or ignore.patterns is None:
            continue
        n = len(ignore.patterns.patterns)
        what = f"{n:,} pattern{'s' if n != 1 else ''}"
        if scan:
            lines.append(f"{shown(ignore.path)}: {what}, excluding {s.ignored:,} top-level entries")
        else:
            lines.append(f"{shown(ignore.path)} ({what}) excluded {s.ignored:,} files")
    return lines


def _item_to_dict(item: Item) -> dict[str, Any]:
    return {
        "path": jsonable(item.path),
        "category": item.category.value,
        "files": item.files,
        "bytes": item.bytes,
        "newest": iso(item.newest_ns / 1e9),
    }


def render_scan(result: ScanResult, console: Console, *, top: int) -> None:
    now = result.started
    _render_roots(result.roots, console, now)
    _render_categories(result.roots, console)
    _render_ages(result.roots, console)
    _render_largest(result.roots, console, now, top)
    extras = [
        plural(sum(r.symlinks for r in result.roots), "symlink") + " (not followed)",
        plural(sum(r.special for r in result.roots), "FIFO/socket/device", "FIFOs/sockets/devices")
        + " (not opened)",
        plural(sum(r.hardlinks for r in result.roots), "extra hard link") + " (counted once)",
    ]
    console.print("  " + "; ".join(extras), style="dim")


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
        table.title = None
        console.print("Roots", style="italic")
        for i, r in enumerate(roots, 1):
            console.print(Text(f"  {i}: {shown(r.path)}", overflow="fold"))
        table.add_column("#", justify="right")
        labels = [Text(str(i)) for i in range(1, len(roots) + 1)]
    for col in columns:
        table.add_column(col, justify="left" if col == "role" else "right")
    for label, row in zip(labels, rows, strict=True):
        table.add_row(label, *row)
    console.print(table)


def _render_categories(roots: Iterable[RootScan], console: Console) -> None:
    roots = list(roots)
    total = sum(r.bytes for r in roots) or 1
    table = Table(title="By category", box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("category", "files", "folders", "size", "", "share"):
        table.add_column(col, justify="left" if col in ("category", "") else "right")
    for cat in Category:
        files = sum(r.categories[cat].files for r in roots)
        dirs = sum(r.categories[cat].dirs for r in roots)
        nbytes = sum(r.categories[cat].bytes for r in roots)
        if files or dirs:
            table.add_row(
                cat.value,
                f"{files:,}",
                f"{dirs:,}",
                size(nbytes),
                Text(bar(nbytes / total), style="cyan"),
                f"{100 * nbytes / total:.1f}%",
            )
    console.print(table)


def _render_ages(roots: Sequence[RootScan], console: Console) -> None:
    table = Table(title="By age (mtime)", box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("age", "files", "size", "", "share"):
        table.add_column(col, justify="left" if col in ("age", "") else "right")
    if not roots:
        return
    total = sum(b.bytes for r in roots for b in r.ages) or 1
    for i, bucket in enumerate(roots[0].ages):
        files = sum(r.ages[i].files for r in roots)
        nbytes = sum(r.ages[i].bytes for r in roots)
        table.add_row(
            bucket.label,
            f"{files:,}",
            size(nbytes),
            Text(bar(nbytes / total), style="cyan"),
            f"{100 * nbytes / total:.1f}%",
        )
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
            Middle(short_hashes(shown(item.path))),
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


def render_warnings(warnings: Iterable[tuple[str, str]], dropped: int, console: Console) -> None:
    for path, message in warnings:
        console.print(Text(f"warning: {shown(path)}: {shown(message)}"), style="yellow")
    if dropped:
        console.print(f"warning: {plural(dropped, 'more warning')} not shown", style="yellow")


# -- prune ------------------------------------------------------------------------


def _action_to_dict(
    action: Action,
    outcome: Outcome | None,
    skip: str | None = None,
    *,
    status: Status | None = None,
) -> dict[str, Any]:
    """`skip`: in a dry run, why apply is expected to leave the entry alone."""
    if status is None:
        status = outcome.status if outcome else Status.SKIPPED if skip else Status.PLANNED
    doc: dict[str, Any] = {
        "path": jsonable(action.path),
        "rule": action.rule.value,
        "category": action.category.value,
        "type": "folder" if action.is_dir else "file",
        "bytes": action.bytes,
        "files": action.files,
        "status": status.value,
        "reason": action.reason,
        "detail": outcome.detail if outcome else skip,
        "mtime": iso(action.newest_ns / 1e9),
        "age_from": None if action.age_ns is None else iso(action.age_ns / 1e9),
    }
    if action.keep is not None:
        doc["keep"] = jsonable(action.keep)
        reported = status is Status.REPORTED
        doc["dedupe"] = None if reported else "hardlink" if action.hardlink else "delete"
    return doc


def prune_to_dict(
    plan: Plan, result: ApplyResult | None, settings: Mapping[str, Any]
) -> dict[str, Any]:
    outcomes = {id(o.action): o for o in result.outcomes} if result is not None else {}
    if result is None:
        actions = (_action_to_dict(a, None, skip) for a, skip in plan.expected())  # lazy
    else:
        actions = (_action_to_dict(a, outcomes.get(id(a))) for a in plan.actions)
    scopes = {s.root: s for s in plan.scopes}
    totals: dict[str, Any] = {
        "planned": {
            "entries": len(plan.actions),
            "files": plan.files,
            "folders": plan.folders,
            "bytes": plan.bytes,
        },
    }
    if plan.reported:
        totals["reported"] = len(plan.reported)
    if result is None:
        nbytes, files, folders = plan.to_free
        totals["skipped"] = len(plan.skips)
        totals["would_free"] = {"files": files, "folders": folders, "bytes": nbytes}
    else:
        totals.update(
            {
                "deleted": result.count(Status.DELETED),
                "linked": result.count(Status.LINKED),
                "skipped": result.count(Status.SKIPPED),
                "failed": result.count(Status.FAILED),
                "freed_bytes": result.freed_bytes,
                "freed_files": result.freed_files,
                "folders_removed": result.folders,
                "duration_seconds": round(result.duration, 3),
            }
        )
    return {
        "schema_version": PRUNE_SCHEMA_VERSION,
        "command": "prune",
        "dry_run": result is None,
        "roots": [
            {
                "path": jsonable(r.path),
                "role": r.role.value,
                "role_reason": r.why,
                **_scope_to_dict(scopes.get(r.path)),
            }
            for r in plan.roots
        ],
        "rules": dict(settings),
        "actions": actions,
        "reported": [_action_to_dict(a, None, status=Status.REPORTED) for a in plan.reported],
        "warnings": [{"path": jsonable(w.path), "message": w.message} for w in plan.warnings],
        "totals": totals,
        **({"budget": budget_to_dict(plan.budget)} if plan.budget is not None else {}),
    }


def _scope_to_dict(scope: ScopeReport | None) -> dict[str, Any]:
    if scope is None:
        return {}
    return {
        "ignore_file": ignore_file_to_dict(scope.ignore_file),
        "excluded": {"exclude": scope.excluded, "ignore_file": scope.ignored},
    }


def render_plan(
    plan: Plan, console: Console, *, now: float, limit: int, result: ApplyResult | None = None
) -> None:
    """Per rule, largest first, a table per root (its path once, as the title) with
    root-relative paths; --json has every entry with its full path."""
    outcomes = {id(o.action): o for o in result.outcomes} if result is not None else {}
    skips = {id(a): skip for a, skip in plan.expected() if skip is not None}
    for rule in Rule:
        actions = sorted((a for a in plan.actions if a.rule is rule), key=lambda a: -a.bytes)
        if not actions:
            continue
        rows = actions[:limit] if limit > 0 else actions
        usual = _usual_reason(rows)
        count = plural(len(actions), "entry", "entries")
        heading = f"{rule.value}: {count}, {size(sum(a.bytes for a in actions))}"
        console.print()
        console.print(
            Text(f"{heading} ({shown(short_hashes(usual))})" if usual else heading, style="bold")
        )
        with_status = result is not None or any(id(a) in skips for a in rows)
        for root, group in _by_root(rows):
            with_reasons = rule is Rule.DUPLICATES or any(a.reason != usual for a in group)
            table = _plan_table(
                shown(root) + "/",
                reasons=_reason_header(rule) if with_reasons else "",
                status=with_status,
            )
            for action in group:
                row: list[RenderableType] = [
                    Middle(shown(short_rel(action.rel)) + ("/" if action.is_dir else "")),
                    action.category.value,
                    size(action.bytes),
                    age(None if action.age_ns is None else action.age_ns / 1e9, now),
                ]
                if with_reasons:
                    row.append(_reason(action, usual))
                if with_status:
                    row.append(
                        Text(
                            shown(_status(outcomes.get(id(action)), skips.get(id(action)), result))
                        )
                    )
                table.add_row(*row)
            console.print(table)
        if 0 < limit < len(actions):
            console.print(
                f"  … and {len(actions) - limit:,} more (--limit 0 shows all, "
                "--json lists every entry)",
                style="dim",
            )
    _render_reported(plan, console, now=now, limit=limit)


def _render_reported(plan: Plan, console: Console, *, now: float, limit: int) -> None:
    """Duplicates that are shown and left alone (session files), in a table of their own."""
    if not plan.reported:
        return
    actions = sorted(plan.reported, key=lambda a: -a.bytes)
    table = Table(
        title=f"duplicates shown only (not linked): {len(actions):,} entries, "
        f"{size(sum(a.bytes for a in actions))}",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        expand=True,
    )
    table.add_column("path", overflow="fold", ratio=3)
    table.add_column("category")
    table.add_column("size", justify="right")
    table.add_column("age", justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold", ratio=2)
    for action in actions[:limit] if limit > 0 else actions:
        table.add_row(
            Text(shown(action.path)),
            action.category.value,
            size(action.bytes),
            age(action.newest_ns / 1e9, now),
            action.reason,
        )
    console.print(table)


def _reported_line(plan: Plan) -> list[str]:
    if not plan.reported:
        return []
    return [
        f"{plural(len(plan.reported), 'duplicate session file', 'duplicate session files')} "
        "shown only, never linked (an app may rewrite them); "
        "--dedupe delete --category session deletes them."
    ]


def _reason_header(rule: Rule) -> str:
    return "copy that stays" if rule is Rule.DUPLICATES else "reason"


def _reason(action: Action, usual: str | None) -> RenderableType:
    """What the other columns do not say: the copy that stays, or an unusual reason."""
    if action.keep is not None:
        return Middle(shown(short_rel(os.path.relpath(action.keep, action.root))))
    reason = "" if action.reason == usual else shown(short_hashes(action.reason))
    return Text(reason, no_wrap=True, overflow="ellipsis")


def _plan_table(title: str, *, reasons: str, status: bool) -> Table:
    table = Table(
        title=Text(title),
        box=box.SIMPLE_HEAD,
        title_justify="left",
        show_edge=False,
    )
    # Too wide a table gives up width from its widest wrappable columns first; the path
    # and reason cells then shorten in the middle rather than wrap.
    table.add_column("path")
    table.add_column("category", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("age", justify="right", no_wrap=True)
    if reasons:
        table.add_column(reasons)
    if status:
        table.add_column("status", overflow="fold")
    return table


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


def _by_root(actions: Sequence[Action]) -> list[tuple[str, list[Action]]]:
    """Rows grouped by root, in the order their roots first appear (largest first)."""
    groups: dict[str, list[Action]] = {}
    for a in actions:
        groups.setdefault(a.root, []).append(a)
    return list(groups.items())


_HASH = re.compile(r"\b([0-9a-f]{8})[0-9a-f]{24,}([0-9a-f]{4})\b")


def short_hashes(text: str) -> str:
    """Gradio's 40- and 64-hex folder names, shortened in the middle: 90a1cc9a…c6be."""
    return _HASH.sub(r"\1…\2", text)


def short_rel(rel: str) -> str:
    return short_hashes(shown(rel))


class Middle:
    """Text that never wraps: shortened in the middle to the width it is given,
    so a path keeps both its folder and its file name."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = cell_len(self.text)
        return Measurement(min(width, 12), width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(middle(self.text, options.max_width), no_wrap=True, overflow="ellipsis")


def middle(text: str, width: int) -> str:
    """`text` cut to `width` cells by replacing its middle with an ellipsis."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    keep = width - 1
    head, tail = text[: (keep + 1) // 2], text[len(text) - keep // 2 :] if keep // 2 else ""
    while cell_len(head) + cell_len(tail) > keep:  # wide characters take two cells
        if cell_len(head) >= cell_len(tail):
            head = head[:-1]
        else:
            tail = tail[1:]
    return head + "…" + tail


def _in(files: int, folders: int) -> str:
    return f"{plural(files, 'file')} ({plural(folders, 'folder')})"


def dry_run_summary(plan: Plan) -> list[str]:
    """What --apply would do, deletions and links apart, leaving out forecast skips."""
    going = [a for a, skip in plan.expected() if skip is None]
    links = [a for a in going if a.hardlink]
    lines = []
    if len(links) < len(going) or not links:
        rest = [a for a in going if not a.hardlink]
        nbytes = sum(a.bytes for a in rest)
        files = sum(a.files for a in rest)
        folders = sum(1 for a in rest if a.is_dir)
        lines.append(f"Would free {size(nbytes)} in {_in(files, folders)}.")
    if links:
        lines.append(
            f"Would link {plural(len(links), 'copy', 'copies')}, "
            f"freeing {size(sum(a.bytes for a in links))}."
        )
    if plan.skips:
        skipped = plural(len(plan.skips), "entry", "entries")
        lines[0] = f"{lines[0][:-1]}; {skipped} would be skipped (see the status column)."
    lines += _reported_line(plan)
    lines += budget_lines(plan)
    if any(a.hardlink for a in plan.actions):
        verbs = "delete and link" if len(links) < len(going) else "link"
        lines.append(f"Dry run: nothing was deleted or linked. Re-run with --apply to {verbs}.")
    else:
        lines.append("Dry run: nothing was deleted. Re-run with --apply to delete.")
    return lines


def apply_summary(plan: Plan, result: ApplyResult) -> list[str]:
    """Deletions and links apart: a linked copy's path stays, only its blocks are freed."""
    linked = [o for o in result.outcomes if o.status is Status.LINKED]
    lines = []
    if not linked or any(not a.hardlink for a in plan.actions):
        freed = result.freed_bytes - sum(o.freed_bytes for o in linked)
        lines.append(f"Freed {size(freed)} in {_in(result.freed_files, result.folders)}.")
    if linked:
        lines.append(
            f"Linked {plural(len(linked), 'copy', 'copies')}, "
            f"freed {size(sum(o.freed_bytes for o in linked))}."
        )
    lines += _reported_line(plan)
    skipped, failed = result.count(Status.SKIPPED), result.count(Status.FAILED)
    if skipped or failed:
        lines.append(
            f"{plural(skipped, 'entry', 'entries')} skipped, {failed:,} failed; "
            "see above or --json."
        )
    return lines


# -- budget (--max-size, --min-free) -------------------------------------------------


def budget_to_dict(budget: Budget) -> dict[str, Any]:
    """prune --json's `budget`: per target the usage, its ceiling and the cut."""
    return {
        "met": budget.met,
        "min_age_seconds": budget.min_age,
        "targets": [_target_to_dict(t) for t in budget.targets],
    }


def _target_to_dict(t: BudgetTarget) -> dict[str, Any]:
    newest = t.newest_evicted_ns
    return {
        "rule": t.rule.value,
        "limit": t.limit,
        "roots": [jsonable(r) for r in t.roots],
        "filesystem": None if t.filesystem is None else jsonable(t.filesystem),
        "filesystem_bytes": t.size,
        "wanted_free_bytes": t.wanted_free,
        "usage_bytes": t.usage,
        "target_bytes": t.target,
        "frees_bytes": t.freed,
        "after_bytes": t.after,
        "over_bytes": t.over,
        "evicted": t.evicted,
        "evicted_bytes": t.evicted_bytes,
        "newest_evicted_last_use": None if newest is None else iso(newest / 1e9),
        "why_over": t.why_over,
    }


def budget_lines(plan: Plan) -> list[str]:
    """Per budget target: usage now, target, what the plan frees, usage after, and the
    last use of the most recently used unit evicted; then, if unmet, how far and why."""
    if plan.budget is None:
        return []
    lines = []
    for t in plan.budget.targets:
        if t.rule is Rule.MAX_SIZE:
            line = (
                f"Budget --max-size {t.limit}: usage {size(t.usage)} → target "
                f"{size(t.target)}: frees {size(t.freed)}, after {size(t.after)}"
            )
        else:
            total = t.size or 0
            line = (
                f"Budget --min-free {t.limit} on {shown(t.filesystem or '')}: free "
                f"{size(total - t.usage)} of {size(total)} → wanted {size(t.wanted_free or 0)}: "
                f"frees {size(t.freed)}, free after {size(total - t.after)}"
            )
        lines.append(f"{line}; {_evicting(plan, t)}.")
        if t.why_over is not None:
            lines.append(f"Budget not met: {t.why_over}.")
    return lines


def over_budget_line(plan: Plan, after: Sequence[int]) -> str | None:
    """The one line an unmet budget gets (exit 5), from each target's usage `after`
    the run (planned, or what apply really freed): how far over, and why."""
    if plan.budget is None:
        return None
    parts = []
    for t, usage in zip(plan.budget.targets, after, strict=True):
        over = usage - t.target
        if over <= 0:
            continue
        where = f" on {shown(t.filesystem)}" if t.filesystem else ""
        why = t.why_over or f"still {size(over)} over: entries were skipped or failed"
        if t.why_over is not None and usage > t.after:
            why += ", and entries were skipped or failed"
        parts.append(f"--{t.rule.value} {t.limit}{where} {why}")
    return "budget not met: " + "; ".join(parts) if parts else None


def _evicting(plan: Plan, t: BudgetTarget) -> str:
    if not t.evicted or t.newest_evicted_ns is None:
        return "nothing to evict" if t.over == 0 else "nothing left to evict"
    units = [a for a in plan.actions if a.rule is t.rule and a.root in t.roots]
    folders = sum(a.is_dir for a in units)
    files = len(units) - folders
    what = " and ".join(plural(n, noun) for n, noun in ((folders, "folder"), (files, "file")) if n)
    minute = -(-t.newest_evicted_ns // 60_000_000_000) * 60  # rounded up: "before" holds
    when = _EPOCH + dt.timedelta(seconds=minute)
    return f"evicting {what} last used before {when:%Y-%m-%d %H:%M} UTC"


def confirm_question(plan: Plan) -> str:
    """What --apply asks on a terminal: deletions and links apart, and the bytes."""
    links = sum(1 for a in plan.actions if a.hardlink)
    entries = plural(len(plan.actions) - links, "entry", "entries")
    copies = plural(links, "copy", "copies")
    if not links:
        what = f"Delete {entries}"
    elif links == len(plan.actions):
        what = f"Link {copies}"
    else:
        what = f"Delete {entries} and link {copies}"
    return f"{what} ({size(plan.bytes)})?"


def left_behind(result: ApplyResult) -> list[str]:
    """What a run did not delete and why, one line each (quiet mode: for cron's mail)."""
    return [
        shown(f"{o.status.value}: {o.action.path}: {o.detail}")
        for o in result.outcomes
        if o.status not in DONE
    ]


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


def config_to_dict(settings: Settings) -> dict[str, Any]:
    """`gradio-clean config --json`."""
    return {
        "schema_version": 1,
        "command": "config",
        "config_file": settings.config.source if settings.config else None,
        "searched": list(settings.looked_at),
        "values": {k: plain(v) for k, v in settings.values.items()},
        "sources": settings.sources,
    }


def config_lines(settings: Settings) -> list[str]:
    """The effective configuration as a config file, each value's source beside it."""
    if settings.config:
        lines = [f"# config file: {shown(settings.config.source)}"]
    else:
        lines = ["# no config file; looked at: " + shown(", ".join(settings.looked_at))]
    for key, value in settings.values.items():
        line = f"# {key} is not set"
        if value is not None:
            line = f"{toml_key(key)} = {toml_value(plain(value))}"
        lines.append(f"{line:<48} # {shown(settings.sources[key])}")
    return lines


def render_prune(
    plan: Plan,
    result: ApplyResult | None,
    settings: Mapping[str, Any],
    out: Console,
    err: Console,
    *,
    json_out: bool,
    quiet: bool,
    limit: int,
    now: float,
) -> None:
    """prune's output: the JSON document, or the table and summary; with --quiet only
    what a run left behind, on stderr."""
    if json_out:
        for chunk in iter_json(prune_to_dict(plan, result, settings)):
            sys.stdout.write(chunk)
        sys.stdout.write("\n")
        return
    if quiet:
        if result is not None and not result.complete:  # cron mails stderr: what was left, why
            for line in [*left_behind(result), *apply_summary(plan, result)]:
                err.print(line, markup=False, highlight=False, soft_wrap=True)
        return
    render_plan(plan, out, now=now, limit=limit, result=result)
    for line in scope_lines(plan.scopes):
        out.print(line, markup=False, highlight=False, style="dim", soft_wrap=True)
    for line in dry_run_summary(plan) if result is None else apply_summary(plan, result):
        out.print(line, markup=False, highlight=False)


def stopped_line(signum: int, result: ApplyResult, plan: Plan) -> str:
    """Where a signal stopped the deletion (the exit status names the signal)."""
    done, total = len(result.outcomes), len(plan.actions)
    return (
        f"gradio-clean: interrupted by {signal_name(signum)}: stopped after {done:,} of "
        f"{total:,} entries; the rest is left for the next run"
    )
