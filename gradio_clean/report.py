"""Renderers: one result, a rich table for people and versioned JSON for machines.

Nothing here decides anything; it only turns frozen results into text.
Paths may hold bytes that are not UTF-8 (kept by Python as surrogate escapes):
`shown()` makes them printable for a terminal, `jsonable()` for JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import humanize
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gradio_clean.classify import Category
from gradio_clean.plan import Action, ApplyResult, Outcome, Plan, Rule, Status
from gradio_clean.scan import Item, RootScan, ScanResult

SCHEMA_VERSION = 1


def shown(path: str) -> str:
    """A path a terminal can print: undecodable bytes become \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def jsonable(path: str) -> str:
    """JSON strings must be valid Unicode: undecodable bytes become \\xNN, as in `shown`."""
    return shown(path)


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


def scan_to_dict(result: ScanResult) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "command": "scan",
        "scanned_at": iso(result.started),
        "duration_seconds": round(result.duration, 3),
        "roots": [_root_to_dict(r) for r in result.roots],
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
        f"{sum(r.symlinks for r in result.roots):,} symlinks (not followed)",
        f"{sum(r.special for r in result.roots):,} FIFOs/sockets/devices (not opened)",
        f"{sum(r.hardlinks for r in result.roots):,} extra hard links (counted once)",
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
    for col in ("category", "files", "folders", "size", "share"):
        table.add_column(col, justify="left" if col == "category" else "right")
    for cat in Category:
        files = sum(r.categories[cat].files for r in roots)
        dirs = sum(r.categories[cat].dirs for r in roots)
        nbytes = sum(r.categories[cat].bytes for r in roots)
        if files or dirs:
            table.add_row(
                cat.value, f"{files:,}", f"{dirs:,}", size(nbytes), f"{100 * nbytes / total:.1f}%"
            )
    console.print(table)


def _render_ages(roots: Sequence[RootScan], console: Console) -> None:
    table = Table(title="By age (mtime)", box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("age", "files", "size"):
        table.add_column(col, justify="left" if col == "age" else "right")
    if not roots:
        return
    for i, bucket in enumerate(roots[0].ages):
        files = sum(r.ages[i].files for r in roots)
        nbytes = sum(r.ages[i].bytes for r in roots)
        table.add_row(bucket.label, f"{files:,}", size(nbytes))
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
            col, justify="left" if col in ("path", "category") else "right", overflow="fold"
        )
    for item in items[:top]:
        table.add_row(
            Text(shown(item.path)),
            item.category.value,
            f"{item.files:,}",
            size(item.bytes),
            age(item.newest_ns / 1e9, now) + " ago",
        )
    console.print(table)


def render_warnings(warnings: Iterable[tuple[str, str]], dropped: int, console: Console) -> None:
    for path, message in warnings:
        console.print(Text(f"warning: {shown(path)}: {message}"), style="yellow")
    if dropped:
        console.print(f"warning: {dropped:,} more warnings not shown", style="yellow")


# -- prune ------------------------------------------------------------------------


def _action_to_dict(action: Action, outcome: Outcome | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "path": jsonable(action.path),
        "rule": action.rule.value,
        "category": action.category.value,
        "type": "folder" if action.is_dir else "file",
        "bytes": action.bytes,
        "files": action.files,
        "status": (outcome.status if outcome else Status.PLANNED).value,
        "reason": action.reason,
        "detail": outcome.detail if outcome else None,
        "mtime": iso(action.newest_ns / 1e9),
        "age_from": None if action.age_ns is None else iso(action.age_ns / 1e9),
    }
    if action.keep is not None:
        doc["keep"] = jsonable(action.keep)
        doc["dedupe"] = "hardlink" if action.hardlink else "delete"
    return doc


def prune_to_dict(
    plan: Plan, result: ApplyResult | None, settings: Mapping[str, Any]
) -> dict[str, Any]:
    outcomes = {id(o.action): o for o in result.outcomes} if result is not None else {}
    actions = (_action_to_dict(a, outcomes.get(id(a))) for a in plan.actions)  # lazy
    totals: dict[str, Any] = {
        "planned": {
            "entries": len(plan.actions),
            "files": plan.files,
            "folders": plan.folders,
            "bytes": plan.bytes,
        },
    }
    if result is not None:
        totals.update(
            {
                "deleted": result.count(Status.DELETED),
                "skipped": result.count(Status.SKIPPED),
                "failed": result.count(Status.FAILED),
                "freed_bytes": result.freed_bytes,
                "freed_files": result.freed_files,
                "folders_removed": result.folders,
                "duration_seconds": round(result.duration, 3),
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "command": "prune",
        "dry_run": result is None,
        "roots": [
            {"path": jsonable(r.path), "role": r.role.value, "role_reason": r.why}
            for r in plan.roots
        ],
        "rules": dict(settings),
        "actions": actions,
        "warnings": [{"path": jsonable(w.path), "message": w.message} for w in plan.warnings],
        "totals": totals,
    }


def render_plan(
    plan: Plan, console: Console, *, now: float, limit: int, result: ApplyResult | None = None
) -> None:
    """Entries grouped by rule, largest first; --json has them all."""
    outcomes = {id(o.action): o for o in result.outcomes} if result is not None else {}
    for rule in Rule:
        actions = sorted((a for a in plan.actions if a.rule is rule), key=lambda a: -a.bytes)
        if not actions:
            continue
        total = sum(a.bytes for a in actions)
        table = Table(
            title=f"{rule.value}: {len(actions):,} entries, {size(total)}",
            box=box.SIMPLE_HEAD,
            title_justify="left",
            expand=True,  # so the ratios give long paths the room
        )
        table.add_column("path", overflow="fold", ratio=3)
        table.add_column("category")
        table.add_column("size", justify="right")
        table.add_column("age", justify="right", no_wrap=True)
        table.add_column("reason", overflow="fold", ratio=2)
        if result is not None:
            table.add_column("status", overflow="fold", ratio=2)
        for action in actions[:limit] if limit > 0 else actions:
            row = [
                Text(shown(action.path) + ("/" if action.is_dir else "")),
                action.category.value,
                size(action.bytes),
                age(None if action.age_ns is None else action.age_ns / 1e9, now),
                action.reason,
            ]
            if result is not None:
                outcome = outcomes.get(id(action))
                status = outcome.status.value if outcome else "-"
                if outcome and outcome.detail:
                    status += f": {outcome.detail}"
                row.append(status)
            table.add_row(*row)
        console.print(table)
        if 0 < limit < len(actions):
            console.print(
                f"  … and {len(actions) - limit:,} more (--limit 0 shows all, "
                "--json lists every entry)",
                style="dim",
            )


def dry_run_summary(plan: Plan) -> list[str]:
    return [
        f"Would free {size(plan.bytes)} in {plan.files:,} files ({plan.folders:,} folders).",
        "Dry run: nothing was deleted. Re-run with --apply to delete.",
    ]


def apply_summary(plan: Plan, result: ApplyResult) -> list[str]:
    lines = [
        f"Freed {size(result.freed_bytes)} in {result.freed_files:,} files "
        f"({result.folders:,} folders)."
    ]
    skipped, failed = result.count(Status.SKIPPED), result.count(Status.FAILED)
    if skipped or failed:
        lines.append(f"{skipped:,} entries skipped, {failed:,} failed; see above or --json.")
    return lines
