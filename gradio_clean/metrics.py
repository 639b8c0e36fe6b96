"""What a run did, as Prometheus textfile-collector metrics.

A fleet already runs node_exporter; pointing ``--metrics-file`` into its
``--collector.textfile.directory`` is all it takes to graph and alert on every
server's cleanup, with no daemon of ours. Typical alerts::

    time() - gradio_clean_last_success_timestamp_seconds > 2 * 86400
    gradio_clean_failed_entries > 0

Shape, chosen for that collector:

- Every metric is a gauge describing the last run, so a value never depends on
  a previous file, except ``gradio_clean_last_success_timestamp_seconds``, which
  a failed run carries over from the file it replaces. Without that, one failure
  would erase the very value the staleness alert keys on. A machine that never
  succeeded reports 0, so that alert fires for it too.
- Every category and every rule is written, zeros included, so series do not
  come and go and ``rate``/``absent`` behave.
- No sample timestamps: node_exporter refuses them in textfiles.
- The file is replaced atomically: written to a hidden temp name in the same
  folder (the collector reads ``*.prom`` only, and a rename is atomic only within
  a filesystem), fsynced, made 0644 (node_exporter runs as its own user; mkstemp
  gives 0600), then renamed over the old file. A scrape sees the old file or
  the new one, never half of either. mkstemp creates the temp with O_EXCL, so a
  link planted at its name is never followed; the name,
  ``.<file>.gradio-clean-XXXXXXXX.tmp``, is ours, and a run removes such
  temps that a killed run left (ours, older than an hour, one link).
- The previous file is read (for the last success) without following a link and
  without blocking: a FIFO planted at the path must not hang the run.

One file per scheduled job: two jobs writing one file would overwrite each
other's numbers.
"""

from __future__ import annotations

import contextlib
import enum
import math
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gradio_clean.classify import Category
from gradio_clean.errors import GradioCleanError, UsageError
from gradio_clean.plan import ApplyResult, Budget, Plan, Rule, Status

PREFIX = "gradio_clean_"
LAST_SUCCESS = PREFIX + "last_success_timestamp_seconds"
FILE_MODE = 0o644
_MAX_READ = 1 << 20  # an old metrics file is a few KiB; never slurp whatever sits there
TEMP_MARK = ".gradio-clean-"  # in the temp's name: .<file>.gradio-clean-XXXXXXXX.tmp
STALE_TEMP_SECONDS = 3600.0


@dataclass(frozen=True)
class Count:
    files: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class BudgetGauge:
    """One budget target's numbers: usage and its ceiling, as budget.py counts them."""

    rule: str  # max-size or min-free
    filesystem: str  # min-free: the mount point; max-size: "" (all roots)
    target_bytes: int  # the most usage allowed
    usage_before_bytes: int
    usage_after_bytes: int

    @property
    def over_bytes(self) -> int:
        return max(0, self.usage_after_bytes - self.target_bytes)


def budget_gauges(budget: Budget | None, unfreed: int = 0) -> tuple[BudgetGauge, ...]:
    """The gauges for a plan's budget; `unfreed`: what the entries apply left still hold
    on disk (du.unfreed_disk), added back to every target's usage after."""
    if budget is None:
        return ()
    return tuple(
        BudgetGauge(t.rule.value, t.filesystem or "", t.target, t.usage, t.after + max(0, unfreed))
        for t in budget.targets
    )


@dataclass(frozen=True)
class RunMetrics:
    """One run's numbers. Keys are category and rule values (enums are accepted too)."""

    scanned: Mapping[str, Count]  # by category: what the roots held when scanned
    freed: Mapping[str, Count]  # by rule: what this run removed
    skipped: int  # entries left alone on purpose: in use, changed since planned
    failed: int  # entries that could not be removed
    duration_seconds: float
    success: bool  # the run finished and did what it set out to do
    timestamp: float  # when the run ended, Unix seconds
    # by rule: copies replaced by a hard link (their bytes count in `freed`, their
    # paths stay, so they are not in `freed`'s files)
    linked: Mapping[str, Count] = field(default_factory=dict)
    budget: tuple[BudgetGauge, ...] = ()  # --max-size / --min-free: one per target


def run_metrics(
    plan: Plan, result: ApplyResult | None, started: float, *, success: bool
) -> RunMetrics:
    """A prune's numbers: what the scan found by category, what went by rule."""
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
    unfreed = 0
    if result is not None and plan.budget is not None:
        from gradio_clean.du import unfreed_disk  # a budget's numbers only

        unfreed = unfreed_disk(plan, result)
    return RunMetrics(
        scanned=scanned,
        freed=freed,
        skipped=result.count(Status.SKIPPED) if result else 0,
        failed=result.count(Status.FAILED) if result else 0,
        duration_seconds=time.time() - started,
        success=success,
        timestamp=time.time(),
        linked=linked,
        budget=budget_gauges(plan.budget, unfreed),
    )


def failed_run(started: float) -> RunMetrics:
    """A run that ended before it had a plan: nothing scanned, nothing freed."""
    return RunMetrics(
        scanned={},
        freed={},
        skipped=0,
        failed=0,
        duration_seconds=time.time() - started,
        success=False,
        timestamp=time.time(),
    )


def folder_exists(path: str) -> bool:
    return os.path.isdir(os.path.dirname(os.path.abspath(path)))


def check_folder(path: str) -> None:
    """Refused up front (exit 2), so a run never deletes and then fails to report."""
    if not folder_exists(path):
        folder = os.path.dirname(os.path.abspath(path))
        raise UsageError(f"--metrics-file {path}: no such folder {folder}")


def render_metrics(m: RunMetrics, *, last_success: float | None = None) -> str:
    """The text exposition format for `m`.

    `last_success` is the previous successful run's timestamp, used only when
    this run failed (`write_metrics` reads it back from the file it replaces).
    """
    scanned = _by("category", _fill(m.scanned, Category))
    freed = _by("rule", _fill(m.freed, Rule))
    linked = _by("rule", _fill(m.linked, Rule))
    metrics: list[tuple[str, str, dict[str, float]]] = [
        (
            "scanned_bytes",
            "Bytes in regular files found by the last run.",
            {labels: c.bytes for labels, c in scanned},
        ),
        (
            "scanned_files",
            "Regular files found by the last run.",
            {labels: c.files for labels, c in scanned},
        ),
        (
            "freed_bytes",
            "Bytes freed by the last run (deleted or linked), by the rule that selected them.",
            {labels: c.bytes for labels, c in freed},
        ),
        (
            "freed_files",
            "Files removed by the last run, by the rule that selected them.",
            {labels: c.files for labels, c in freed},
        ),
        (
            "linked_files",
            "Duplicate copies the last run replaced by a hard link (the path stays), by rule.",
            {labels: c.files for labels, c in linked},
        ),
        (
            "skipped_entries",
            "Entries the last run left alone (in use or changed).",
            {"": m.skipped},
        ),
        ("failed_entries", "Entries the last run failed to remove.", {"": m.failed}),
        ("duration_seconds", "How long the last run took.", {"": m.duration_seconds}),
        ("success", "1 if the last run succeeded, else 0.", {"": int(m.success)}),
        ("last_run_timestamp_seconds", "When the last run ended.", {"": m.timestamp}),
        (
            "last_success_timestamp_seconds",
            "When the last successful run ended; 0 if none has.",
            {"": m.timestamp if m.success else (last_success or 0)},
        ),
    ]
    metrics += _budget_metrics(m.budget)
    out: list[str] = []
    for name, help_text, samples in metrics:
        full = PREFIX + name
        out.append(f"# HELP {full} {_escape_help(help_text)}\n# TYPE {full} gauge\n")
        for labels, value in samples.items():
            out.append(
                f"{full}{{{labels}}} {_number(value)}\n" if labels else f"{full} {_number(value)}\n"
            )
    return "".join(out)


def write_metrics(path: str, m: RunMetrics) -> None:
    """Replace `path` atomically with `m`'s metrics, keeping the last success if `m` failed."""
    previous = None if m.success else read_last_success(path)
    data = render_metrics(m, last_success=previous).encode("utf-8")
    try:
        _replace(path, data)
    except OSError as exc:
        raise GradioCleanError(f"cannot write metrics file {path}: {exc.strerror or exc}") from None


def read_last_success(path: str) -> float | None:
    """The last-success timestamp recorded in an earlier metrics file, if there is one.

    Anything unreadable counts as "none": metrics must never be why a run fails.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None  # a FIFO, socket or device: never read
        text = os.read(fd, _MAX_READ).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == LAST_SUCCESS:
            try:
                seconds = float(value.strip())
            except ValueError:
                return None
            return seconds if math.isfinite(seconds) and seconds > 0 else None
    return None


def _replace(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    remove_stale_temporaries(folder, name)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}{TEMP_MARK}", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The rename is atomic either way; this makes it survive a power cut too.
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def remove_stale_temporaries(folder: str, name: str, *, now: float | None = None) -> list[str]:
    """Remove the temps a killed run left beside `name`; returns the names removed.

    Only what is surely ours: our name's shape, a regular file of the user running
    this with one link, untouched for an hour (a run in progress writes its temp
    within a second of creating it).
    """
    shape = re.compile(re.escape(f".{name}{TEMP_MARK}") + r"[a-z0-9_]{8}\.tmp")
    cutoff = (time.time() if now is None else now) - STALE_TEMP_SECONDS
    removed: list[str] = []
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return removed
    try:
        for entry in os.listdir(dfd):
            if not shape.fullmatch(entry):
                continue
            with contextlib.suppress(OSError):
                st = os.stat(entry, dir_fd=dfd, follow_symlinks=False)
                if (
                    stat.S_ISREG(st.st_mode)
                    and st.st_uid == os.geteuid()
                    and st.st_nlink == 1
                    and st.st_mtime < cutoff
                ):
                    os.unlink(entry, dir_fd=dfd)
                    removed.append(entry)
    except OSError:
        pass
    finally:
        os.close(dfd)
    return removed


def _fill(counts: Mapping[str, Count], known: Iterable[enum.Enum]) -> dict[str, Count]:
    """Every known label value (zero if absent) in their own order, then any others sorted."""
    given = {_label(k): v for k, v in counts.items()}
    filled = {str(k.value): given.pop(str(k.value), Count()) for k in known}
    filled.update(sorted(given.items()))
    return filled


def _label(key: object) -> str:
    return str(key.value) if isinstance(key, enum.Enum) else str(key)


def _by(label: str, counts: Mapping[str, Count]) -> list[tuple[str, Count]]:
    return [(f'{label}="{_escape_label(key)}"', count) for key, count in counts.items()]


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _budget_metrics(gauges: tuple[BudgetGauge, ...]) -> list[tuple[str, str, dict[str, float]]]:
    """Written when a budget rule ran (a schedule keeps its rules, so the series stay)."""
    if not gauges:
        return []
    over = int(any(g.over_bytes > 0 for g in gauges))
    labels = [(f'rule="{g.rule}",filesystem="{_escape_label(g.filesystem)}"', g) for g in gauges]
    out: list[tuple[str, str, dict[str, float]]] = [
        (
            "budget_bytes",
            "The most usage a budget allows (--max-size; --min-free: size less free wanted).",
            {key: g.target_bytes for key, g in labels},
        ),
        (
            "budget_usage_before_bytes",
            "Usage a budget counted before the last run (du's blocks; statvfs for min-free).",
            {key: g.usage_before_bytes for key, g in labels},
        ),
        (
            "budget_usage_after_bytes",
            "Usage after the last run, by what it freed.",
            {key: g.usage_after_bytes for key, g in labels},
        ),
        (
            "budget_over_bytes",
            "How far usage is still over the budget after the last run; 0 when met.",
            {key: g.over_bytes for key, g in labels},
        ),
        (
            "over_budget",
            "1 if the last run left some budget unmet (what is left is protected, young or "
            "in use), else 0.",
            {"": over},
        ),
    ]
    return out
