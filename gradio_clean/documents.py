"""The JSON documents of scan, prune and config: one result, read by machines.

Plain dicts with a `schema_version`, no rich: the renderers in report.py draw the
same results for people. Paths go through `jsonable()`, so a document is valid
UTF-8 whatever bytes a name holds.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from json.encoder import encode_basestring
from typing import Any, cast

from gradio_clean.actions import Brief
from gradio_clean.config import Settings
from gradio_clean.filesystems import Filesystem, filesystems_of
from gradio_clean.ignore import IgnoreFile, ScopeReport
from gradio_clean.options import plain
from gradio_clean.plan import (
    ApplyResult,
    Budget,
    BudgetTarget,
    Plan,
    Status,
)
from gradio_clean.scanned import Item, RootScan, ScanResult
from gradio_clean.text import jsonable

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)  # summary.EPOCH, without humanize
SCHEMA_VERSION = 1  # scan's JSON; `filesystems` came within 1: keys may be added


# prune's JSON: 2 since a duplicate replaced by a hard link has status "linked" (it said
# "deleted", though its path stays) and duplicates shown only are listed under "reported".
PRUNE_SCHEMA_VERSION = 2


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
        rows = value.texts() if isinstance(value, ActionRows) else map(_row, value)
        first = next(rows, None)
        if first is None:
            yield "]"
            continue
        yield "\n    " + first
        while batch := list(itertools.islice(rows, _ROWS_AT_ONCE)):  # one write per batch
            yield ",\n    " + ",\n    ".join(batch)
        yield "\n  ]"
    yield "\n}"


_ROWS_AT_ONCE = 512  # action rows joined into one piece of the document


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


def scan_to_dict(
    result: ScanResult,
    scopes: Sequence[ScopeReport] = (),
    *,
    filesystems: Sequence[Filesystem] | None = None,
) -> dict[str, Any]:
    """`scopes`: each root's ignore file, `ignored` counting the top-level entries it excludes.
    `filesystems`: the roots' filesystems (default: measured now, with `filesystems_of`)."""
    if filesystems is None:
        filesystems = filesystems_of(result.roots)
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
        "filesystems": [_filesystem_to_dict(fs) for fs in filesystems],
        "warnings": [{"path": jsonable(w.path), "message": w.message} for w in result.warnings],
        "warnings_dropped": result.warnings_dropped,
    }


def _filesystem_to_dict(fs: Filesystem) -> dict[str, Any]:
    return {
        "mount_point": jsonable(fs.mount),
        "roots": [jsonable(r) for r in fs.roots],
        "size_bytes": fs.size,
        "free_bytes": fs.free,
        "used_bytes": fs.used,
        "roots_disk_bytes": fs.roots_usage,
        "roots_share": fs.share,
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


def _item_to_dict(item: Item) -> dict[str, Any]:
    return {
        "path": jsonable(item.path),
        "category": item.category.value,
        "files": item.files,
        "bytes": item.bytes,
        "newest": iso(item.newest_ns / 1e9),
    }


_DAYS: dict[int, str] = {}  # days since the epoch -> "YYYY-MM-DD" (the per-action dates)
_FAST_DATES = 1 << 32  # seconds: below this, a date is formatted from its day (iso_ns)
_TWO = tuple(f"{n:02d}" for n in range(60))  # hours, minutes, seconds: no format() per date


def iso_ns(ns: int) -> str:
    """`iso(ns / 1e9)`, made from the day's date and the time's digits: a plan writes two
    dates per action. A time within 10 us of the next second, which float rounding could
    carry over, and one out of range are left to iso()."""
    seconds, frac = divmod(ns, 1_000_000_000)
    if not 0 <= seconds < _FAST_DATES or frac >= 999_990_000:
        return cast(str, iso(ns / 1e9))
    days, second = divmod(seconds, 86400)
    date = _DAYS.get(days)
    if date is None:
        date = _DAYS[days] = (_EPOCH + dt.timedelta(days=days)).date().isoformat()
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{date}T{_TWO[hour]}:{_TWO[minute]}:{_TWO[second]}+00:00"


_TYPES = ("file", "folder")


def _action_to_dict(
    action: Brief,
    outcome: tuple[Status, str | None] | None,
    skip: str | None = None,
    *,
    status: Status | None = None,
    prefixes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`skip`: in a dry run, why apply is expected to leave the entry alone. `outcome`:
    apply's status and detail. `prefixes`: each root's path with its "/", made once."""
    if status is None:
        status = outcome[0] if outcome else Status.SKIPPED if skip else Status.PLANNED
    root, rel = action.root, action.rel
    if prefixes is None:
        path = os.path.join(root, rel)
    else:
        prefix = prefixes.get(root)
        if prefix is None:
            prefix = prefixes[root] = os.path.join(root, "")
        path = prefix + rel
    age = action.age_ns
    doc: dict[str, Any] = {
        "path": path if path.isascii() else jsonable(path),
        "rule": action.rule.value,
        "category": action.category.value,
        "type": _TYPES[action.is_dir],
        "bytes": action.bytes,
        "files": action.files,
        "status": status.value,
        "reason": action.reason,
        "detail": outcome[1] if outcome else skip,
        "mtime": iso_ns(action.newest_ns),
        "age_from": None if age is None else iso_ns(age),
    }
    if action.keep is not None:
        doc["keep"] = jsonable(action.keep)
        reported = status is Status.REPORTED
        doc["dedupe"] = None if reported else "hardlink" if action.hardlink else "delete"
    return doc


class ActionRows:
    """prune's action rows, read from the plan's columns (no Action built), lazily: as
    dicts when iterated (the document's value), or as their JSON text (`texts`, what
    iter_json writes), with no dict and no encoder call per row."""

    def __init__(self, plan: Plan, result: ApplyResult | None) -> None:
        self.plan, self.result = plan, result

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for brief, outcome, skip, prefixes in self._rows():
            yield _action_to_dict(brief, outcome, skip, prefixes=prefixes)

    def texts(self) -> Iterator[str]:
        """Each row as `_row(dict)` writes it (pinned by a test), a row at a time, the
        plan's columns read in one pass (Actions.briefs)."""
        prefixes: dict[str, str] = {}
        skips: Mapping[int, str] = self.plan.skips if self.result is None else {}
        state = None if self.result is None else self.result.outcomes.state
        for i, brief in enumerate(self.plan.actions.briefs()):
            outcome = None if state is None else state(i)
            skip = skips.get(i) if skips else None
            text = _row_text(brief, outcome, skip, prefixes)
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate in a reason or detail
                    text = _row(_action_to_dict(brief, outcome, skip, prefixes=prefixes))
            yield text

    def _rows(
        self,
    ) -> Iterator[tuple[Brief, tuple[Status, str | None] | None, str | None, dict[str, str]]]:
        actions = self.plan.actions
        prefixes: dict[str, str] = {}
        if self.result is None:
            skips = self.plan.skips
            for i in range(len(actions)):
                yield actions.brief(i), None, skips.get(i), prefixes
        else:
            outcomes = self.result.outcomes
            for i in range(len(actions)):
                yield actions.brief(i), outcomes.state(i), None, prefixes


_quote = encode_basestring  # a str as the encoder writes it (ensure_ascii=False), in C
_TYPE_TEXTS = tuple(_quote(t) for t in _TYPES)


def _row_text(
    action: Brief,
    outcome: tuple[Status, str | None] | None,
    skip: str | None,
    prefixes: dict[str, str],
) -> str:
    """`_compact(_action_to_dict(...))`, written directly: the enums are str subclasses
    whose text is their value, the dates ASCII digits and signs."""
    root, rel, rule, category, is_dir, size, files, reason, newest, age, keep, hardlink = action
    status = outcome[0] if outcome else Status.SKIPPED if skip else Status.PLANNED
    detail = outcome[1] if outcome else skip
    prefix = prefixes.get(root)
    if prefix is None:
        prefix = prefixes[root] = os.path.join(root, "")
    path = prefix + rel
    mtime = _quote(iso_ns(newest))
    text = (
        f'{{"path": {_quote(path if path.isascii() else jsonable(path))}, '
        f'"rule": {_quote(rule)}, "category": {_quote(category)}, '
        f'"type": {_TYPE_TEXTS[is_dir]}, "bytes": {size}, '
        f'"files": {files}, "status": {_quote(status)}, '
        f'"reason": {_quote(reason)}, '
        f'"detail": {"null" if detail is None else _quote(detail)}, '
        f'"mtime": {mtime}, '
        f'"age_from": {"null" if age is None else mtime if age == newest else _quote(iso_ns(age))}'
    )
    if keep is None:
        return text + "}"
    reported = status is Status.REPORTED
    dedupe = "null" if reported else '"hardlink"' if hardlink else '"delete"'
    return f'{text}, "keep": {_quote(jsonable(keep))}, "dedupe": {dedupe}}}'


def prune_to_dict(
    plan: Plan, result: ApplyResult | None, settings: Mapping[str, Any]
) -> dict[str, Any]:
    actions = ActionRows(plan, result)  # lazy
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
        going = plan.going  # read once: it reads every action
        nbytes, files, folders = plan.frees(going)
        totals["skipped"] = len(plan.skips)
        totals["would_free"] = {"files": files, "folders": folders, "bytes": nbytes}
        totals["folders_removed"] = plan.removes(going)  # whole and emptied: as apply's
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
                "folders_kept": [
                    {"path": jsonable(path), "reason": why} for path, why in result.folders_kept
                ],
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
        "reported": [
            _action_to_dict(Brief.of(a), None, status=Status.REPORTED) for a in plan.reported
        ],
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
