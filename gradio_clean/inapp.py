"""`attach(demo)`: the rules inside a running Gradio app, and marks for live sessions.

For Spaces and containers without cron. The rules run on a daemon thread with the
engine the CLI uses (plan, re-check, delete, the root lock), one process, no fork:
never on the event loop, and an error is logged, never raised into the app.

Whether or not any rule is given, what live sessions use is marked (see live.py),
so a `gradio-clean prune` from cron in another process spares it too. Gradio is
imported only when `attach` is called; `import gradio_clean` never pulls it in.
"""

from __future__ import annotations

import difflib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Role
from gradio_clean.config import Where, check_value
from gradio_clean.durations import Duration
from gradio_clean.errors import GradioCleanError, UsageError
from gradio_clean.inuse import InUseWatcher
from gradio_clean.live import REASON, LiveSessions, LiveStats
from gradio_clean.lock import lock_roots
from gradio_clean.options import KEYS, OPTIONS, duration_option
from gradio_clean.outcomes import Outcomes
from gradio_clean.plan import DONE, ApplyResult, Plan, Status
from gradio_clean.roots import (
    Root,
    detect_role,
    gradio_temp_dir,
    make_root,
    nest_roots,
    refuse_dangerous,
)
from gradio_clean.rules import RuleSet, build_plan
from gradio_clean.text import plural

logger = logging.getLogger("gradio_clean")

LABEL = "attach()"
FIRST_RUN = 5.0  # seconds after startup: the app is serving by then
TICK = 1.0  # how often lapsed sessions are released
LOCK_WAIT = 1.0  # a cron run holding the root lock: skip this run, try at the next
MAX_FILE_NODES = 10_000  # JSON nodes looked at per payload, for file paths


@dataclass(frozen=True)
class Options:
    """attach()'s keywords, checked: what runs, how often, and where."""

    every: float
    grace: float
    roots: tuple[str, ...] | None  # None: the app's own
    sessions_dirs: tuple[str, ...]
    rules: RuleSet


def parse_options(
    every: str,
    grace: str,
    sessions_dirs: object,
    roots: object,
    rules: Mapping[str, object],
) -> Options:
    """Every keyword through the option table's parsers, as config.py checks a file:
    the same values, the same errors."""
    where = os.getcwd()  # relative paths are the app's, as in a config file's folder
    values: dict[str, object] = {}
    given = {"roots": roots, "sessions_dirs": sessions_dirs, **rules}
    for key, value in given.items():
        if value is None:
            continue
        option = OPTIONS.get(key)
        if option is None:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(
                f"{LABEL}: unknown keyword {key}{hint}; accepted: every, grace, " + ", ".join(KEYS)
            )
        values[key] = check_value(Where(LABEL, key, where), option, _as_toml(key, value))
    return Options(
        every=_seconds("every", every, minimum=1.0),
        grace=_seconds("grace", grace, minimum=0.0),
        roots=cast("tuple[str, ...] | None", values.pop("roots", None)),
        sessions_dirs=cast("tuple[str, ...]", values.pop("sessions_dirs", ())),
        rules=RuleSet.from_values(values),
    )


def _as_toml(key: str, value: object) -> object:
    """Python spellings of what TOML writes: a Path for a string, a tuple for an array."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and OPTIONS[key].path:
        return [value]  # one folder, written the natural way
    if isinstance(value, (tuple, list, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else list(value)
        return [os.fspath(v) if isinstance(v, os.PathLike) else v for v in items]
    return value


def _seconds(key: str, value: object, *, minimum: float) -> float:
    where = Where(LABEL, key, "")
    duration = cast(Duration, check_value(where, duration_option(key), value))
    if duration.seconds < minimum:
        raise where.bad(value, f"expected at least {minimum:g}s")
    return duration.seconds


# -- where ------------------------------------------------------------------------


def app_temp_dir() -> str:
    """Gradio's temp dir as the running Gradio resolves it (it may differ by version)."""
    try:
        from gradio.utils import get_upload_folder
    except ImportError:
        return gradio_temp_dir()
    return os.path.abspath(str(get_upload_folder()))


def app_roots(options: Options) -> list[Root]:
    """The roots of one run, looked up again each time: a folder may appear later."""
    roots: list[Root] = []
    if options.roots is not None:
        roots = [make_root(p, *detect_role(p)) for p in options.roots if os.path.isdir(p)]
    else:
        for path, role, why in (
            (app_temp_dir(), Role.TEMP, "Gradio's temp dir"),
            (os.path.abspath(".gradio"), Role.GRADIO, "the app's .gradio"),
        ):
            if os.path.isdir(path) and not os.path.islink(path):
                roots.append(make_root(path, role, why))
        roots = nest_roots(roots)  # as the command line's: each folder walked once
    for path in options.sessions_dirs:
        if os.path.isdir(path) and not os.path.islink(path):
            roots.append(Root(path, Role.SESSIONS, "given with sessions_dirs"))
    return roots


# -- the runs -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    deleted: int
    skipped: int
    failed: int
    freed_bytes: int
    freed_files: int
    seconds: float
    over_budget: str | None = None  # "budget not met: …" when max_size/min_free is not met

    def line(self) -> str:
        text = (
            f"gradio-clean: freed {_size(self.freed_bytes)} in {plural(self.freed_files, 'file')} "
            f"({self.deleted:,} deleted, {self.skipped:,} skipped, {self.failed:,} failed) "
            f"in {self.seconds:.1f}s"
        )
        return f"{text}; {self.over_budget}" if self.over_budget else text


def over_budget(plan: Plan, result: ApplyResult) -> str | None:
    """Why a budget is still unmet after the run, in one clause, as the CLI's exit-5 line
    says it; what a live session uses is named: it is the protected remainder too."""
    if plan.budget is None:
        return None
    spared = [o for o in result.outcomes if o.status not in DONE]
    unfreed = sum(o.action.bytes for o in spared)
    live = sum(o.action.bytes for o in spared if REASON in (o.detail or ""))
    parts = []
    for t in plan.budget.targets:
        over = t.after + unfreed - t.target
        if over <= 0:
            continue
        why = [t.why_over.partition(": ")[2]] if t.why_over and ": " in t.why_over else []
        if live:
            why.append(f"{_size(live)} is {REASON}")
        if unfreed > live:
            why.append(f"{_size(unfreed - live)} was skipped or failed")
        where = f" on {t.filesystem}" if t.filesystem else ""
        head = f"--{t.rule.value} {t.limit}{where} still {_size(over)} over"
        parts.append(f"{head}: {', '.join(why)}" if why else head)
    return "budget not met: " + "; ".join(parts) if parts else None


def _size(n: int) -> str:
    import humanize

    return str(humanize.naturalsize(n, binary=True))


def run_rules(options: Options, live: LiveSessions) -> RunSummary | None:
    """One run, as `prune --apply` would do it, sparing what live sessions use.

    None when another run holds a root's lock (a cron run): this one is skipped.
    """
    started = time.monotonic()
    roots = app_roots(options)
    for root in roots:
        refuse_dangerous(root)
    if not roots:
        return RunSummary(0, 0, 0, 0, 0, 0.0)
    watcher = InUseWatcher()

    def why(dev: int, ino: int) -> str | None:
        return live.why(dev, ino) or watcher.why(dev, ino)

    try:
        with lock_roots(roots, wait=LOCK_WAIT):
            # The budget passes over the marks this app holds, as over any entry in
            # use, and evicts the next unit instead.
            own = live.pending_folders()  # not locked yet: told, as /proc/locks cannot
            plan = build_plan(roots, options.rules, now=time.time(), jobs=1, own_marks=own)
            if plan.actions:
                result = apply_plan(plan, why=why, jobs=1)
            else:
                result = ApplyResult(Outcomes(plan.actions), (), 0.0)
    except GradioCleanError as exc:
        if "another gradio-clean run" in exc.message:
            logger.info("gradio-clean: skipped this run: %s", exc.message)
            return None
        raise
    return RunSummary(
        deleted=result.count(Status.DELETED),
        skipped=result.count(Status.SKIPPED),
        failed=result.count(Status.FAILED),
        freed_bytes=result.freed_bytes,
        freed_files=result.freed_files,
        seconds=time.monotonic() - started,
        over_budget=over_budget(plan, result),
    )


class _Runner(threading.Thread):
    """Releases lapsed sessions every TICK; runs the rules first after FIRST_RUN, then
    every `every`. Nothing raised here reaches the app."""

    def __init__(self, options: Options, live: LiveSessions, sweep: Callable[[], None]) -> None:
        super().__init__(name="gradio-clean", daemon=True)
        self.options = options
        self.live = live
        self.sweep = sweep
        self.stopping = threading.Event()

    def run(self) -> None:
        due = time.monotonic() + min(FIRST_RUN, self.options.every)
        while not self.stopping.wait(TICK):
            try:
                self.sweep()
                logger.debug("gradio-clean: live: %s", self.live.stats())
            except Exception:
                logger.exception("gradio-clean: could not release lapsed sessions")
            if not self.options.rules.any or time.monotonic() < due:
                continue
            self.run_once()
            due = time.monotonic() + self.options.every

    def run_once(self) -> RunSummary | None:
        try:
            summary = run_rules(self.options, self.live)
        except GradioCleanError as exc:
            logger.error("gradio-clean: run failed: %s", exc.message)
            return None
        except Exception as exc:  # never take the app down
            logger.error("gradio-clean: run failed: %r", exc, exc_info=True)
            return None
        if summary is not None:
            logger.info("%s", summary.line())
        return summary


# -- the handle ----------------------------------------------------------------------


class Attached:
    """What attach() returns: the live sessions, and the cleaning thread once started."""

    def __init__(self, demo: Any, options: Options) -> None:
        self.demo = demo
        self.options = options
        roots = [app_temp_dir(), *(options.roots or ())]
        self.live = LiveSessions(roots, options.sessions_dirs, options.grace)
        self._runner: _Runner | None = None
        self._start_lock = threading.Lock()

    def start(self) -> None:
        """Start the thread (once); attach() arranges this at the app's startup."""
        with self._start_lock:
            if self._runner is None or not self._runner.is_alive():
                self._runner = _Runner(self.options, self.live, self.sweep)
                self._runner.start()

    def stop(self) -> None:
        runner = self._runner
        if runner is not None:
            runner.stopping.set()
            runner.join(timeout=10)

    def run_now(self) -> RunSummary | None:
        """One run of the rules in the calling thread (for tests and scripts)."""
        return _Runner(self.options, self.live, self.sweep).run_once()

    def sweep(self) -> None:
        queue = getattr(self.demo, "_queue", None)
        events = getattr(queue, "event_ids_to_events", None)

        def still_queued(body: object) -> bool:
            event_id = getattr(body, "event_id", None)
            return event_id is None or events is None or event_id in events

        self.live.sweep(still_queued)

    def stats(self) -> LiveStats:
        return self.live.stats()


def attach(
    demo: Any,
    *,
    every: str = "30m",
    grace: str = "60s",
    sessions_dirs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str] = (),
    roots: Sequence[str | os.PathLike[str]] | None = None,
    **rules: object,
) -> Attached:
    """Protect what live sessions of `demo` use, and run the rules inside the app.

    The keywords are the config file's keys (``older_than="1d"``,
    ``orphaned_sessions=True`` …), checked the same way; ``every`` is how often the
    rules run, ``grace`` how long a session stays protected after it ends. With no
    rule, nothing is deleted from inside: the marks are for runs from outside.
    Call it before ``demo.launch()`` or ``gr.mount_gradio_app``.
    """
    options = parse_options(every, grace, sessions_dirs, roots, rules)
    from gradio_clean import hooks  # imports gradio: only now

    handle = Attached(demo, options)
    hooks.install(demo, handle)
    return handle


__all__ = ["Attached", "Options", "RunSummary", "attach", "parse_options", "run_rules"]
