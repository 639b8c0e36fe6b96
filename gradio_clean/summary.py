"""What a run says in sentences: the summary lines, the prompt, what was left behind.

Plain text, no rich: report.py prints these under its tables, and cli.py prints some
on stderr. Counts are worded here, with their plurals, once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from gradio_clean.config import Settings, toml_setting
from gradio_clean.errors import signal_name
from gradio_clean.ignore import ScopeReport
from gradio_clean.plan import (
    DONE,
    ApplyResult,
    BudgetTarget,
    Plan,
    Rule,
    Status,
)
from gradio_clean.sizes import human_size
from gradio_clean.text import plural, shown

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


# Longest age shown; a timedelta cannot hold the span of an int64-second mtime.
_MAX_AGE = 1e13


def size(n: int) -> str:
    return human_size(n)


_DAY = 86400
# humanize says "a month" from 20 days on: next to the histogram's "7 - 30 d" row and an
# --older-than 30d, an age is given in days up to this many.
_DAYS_SHOWN = 60


def age(ts: float | None, now: float) -> str:
    if ts is None:
        return "-"
    seconds = min(max(0.0, now - ts), _MAX_AGE)
    if _DAY <= seconds < _DAYS_SHOWN * _DAY:
        return plural(int(seconds // _DAY), "day")
    import humanize  # here: prune --json and --quiet show no age (as sizes.human_size)

    return humanize.naturaldelta(dt.timedelta(seconds=seconds))


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


def _reported_line(plan: Plan) -> list[str]:
    if not plan.reported:
        return []
    return [
        f"{plural(len(plan.reported), 'duplicate session file', 'duplicate session files')} "
        "shown only, never linked (an app may rewrite them); "
        "--dedupe delete --category session deletes them."
    ]


def _in(files: int, folders: int) -> str:
    return f"{plural(files, 'file')} ({plural(folders, 'folder')})"


def dry_run_summary(plan: Plan) -> list[str]:
    """What --apply would do, deletions and links apart, leaving out forecast skips."""
    going = plan.going
    links = going.links
    lines = []
    if going.files or going.folders or not links:
        folders = plan.removes(going)  # whole and emptied, as apply's "Freed … in" counts
        lines.append(f"Would free {size(going.bytes)} in {_in(going.files, folders)}.")
    if links:
        lines.append(
            f"Would link {plural(links, 'copy', 'copies')}, freeing {size(going.link_bytes)}."
        )
    if plan.skips:
        skipped = plural(len(plan.skips), "entry", "entries")
        lines[0] = f"{lines[0][:-1]}; {skipped} would be skipped (see the status column)."
    lines += _reported_line(plan)
    lines += budget_lines(plan)
    if plan.actions.hardlinks:
        verbs = "delete and link" if going.files or going.folders else "link"
        lines.append(f"Dry run: nothing was deleted or linked. Re-run with --apply to {verbs}.")
    else:
        lines.append("Dry run: nothing was deleted. Re-run with --apply to delete.")
    return lines


def apply_summary(plan: Plan, result: ApplyResult) -> list[str]:
    """Deletions and links apart: a linked copy's path stays, only its blocks are freed."""
    linked = [o for o in result.outcomes if o.status is Status.LINKED]
    lines = []
    if not linked or plan.actions.hardlinks < len(plan.actions):
        freed = result.freed_bytes - sum(o.freed_bytes for o in linked)
        lines.append(f"Freed {size(freed)} in {_in(result.freed_files, result.folders)}.")
    lines += _kept_line(result)
    if linked:
        lines.append(
            f"Linked {plural(len(linked), 'copy', 'copies')}, "
            f"freed {size(sum(o.freed_bytes for o in linked))}."
        )
    lines += _reported_line(plan)
    lines += budget_lines(plan)  # the cut applied; an unmet one also says so on stderr
    skipped, failed = result.count(Status.SKIPPED), result.count(Status.FAILED)
    if skipped or failed:
        lines.append(
            f"{plural(skipped, 'entry', 'entries')} skipped, {failed:,} failed; "
            "see above or --json."
        )
    return lines


def _kept_line(result: ApplyResult) -> list[str]:
    """The folders the dry run counted as emptied that the run kept: the first, and why."""
    kept = result.folders_kept
    if not kept:
        return []
    path, why = kept[0]
    more = f" and {len(kept) - 1:,} more; see --json" if len(kept) > 1 else ""
    folders = plural(len(kept), "folder")
    return [shown(f"Kept {folders} the dry run counted as emptied: {path}: {why}{more}.")]


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
        if t.why_over is not None and usage > t.after:  # over by more than the plan said
            planned = f"still {size(t.over)} over"
            why = f"still {size(over)} over{why.removeprefix(planned)}"
            why += ", and entries were skipped or failed"
        parts.append(f"--{t.rule.value} {t.limit}{where} {why}")
    return "budget not met: " + "; ".join(parts) if parts else None


def _evicting(plan: Plan, t: BudgetTarget) -> str:
    if not t.evicted or t.newest_evicted_ns is None:
        return "nothing to evict" if t.over == 0 else "nothing left to evict"
    folders, files = plan.actions.by_rule(t.rule, t.roots)
    what = " and ".join(plural(n, noun) for n, noun in ((folders, "folder"), (files, "file")) if n)
    minute = (t.newest_evicted_ns // 60_000_000_000 + 1) * 60  # the next minute: "before" holds
    when = EPOCH + dt.timedelta(seconds=minute)
    return f"evicting {what} last used before {when:%Y-%m-%d %H:%M} UTC"


def confirm_question(plan: Plan) -> str:
    """What --apply asks on a terminal: deletions and links apart, how many the forecast
    expects apply to skip, and the bytes the dry run says they free (a file with several
    names counted once, forecast skips left out), not the sum of the entries' sizes."""
    links = plan.actions.hardlinks
    entries = plural(len(plan.actions) - links, "entry", "entries")
    copies = plural(links, "copy", "copies")
    if not links:
        what = f"Delete {entries}"
    elif links == len(plan.actions):
        what = f"Link {copies}"
    else:
        what = f"Delete {entries} and link {copies}"
    if plan.skips:  # counted above, as planned; apply is expected to spare them
        what += f", {len(plan.skips):,} expected to be skipped"
    return f"{what} (frees {size(plan.to_free[0])})?"


def left_behind(result: ApplyResult) -> list[str]:
    """What a run did not delete and why, one line each, and the emptied folders it kept
    (quiet mode: for cron's mail)."""
    lines = [
        shown(f"{o.status.value}: {o.action.path}: {o.detail}")
        for o in result.outcomes
        if o.status not in DONE
    ]
    return lines + [shown(f"kept: {path}: {why}") for path, why in result.folders_kept]


def config_lines(settings: Settings) -> list[str]:
    """The effective configuration as a config file, each value's source beside it."""
    if settings.config:
        lines = [f"# config file: {shown(settings.config.source)}"]
    else:
        lines = ["# no config file; looked at: " + shown(", ".join(settings.looked_at))]
    for key, value in settings.values.items():
        line = f"# {key} is not set"
        if value is not None:
            line = toml_setting(key, value)
        lines.append(f"{line:<48} # {shown(settings.sources[key])}")
    return lines


def stopped_line(signum: int, result: ApplyResult, plan: Plan) -> str:
    """Where a signal stopped the deletion (the exit status names the signal)."""
    done, total = len(result.outcomes), len(plan.actions)
    return (
        f"gradio-clean: interrupted by {signal_name(signum)}: stopped after {done:,} of "
        f"{total:,} entries; the rest is left for the next run"
    )
