"""Forked workers for the walks and deletions, which are mostly system calls.

The kernel side of stat, getdents, unlink and rmdir runs on whichever core asks,
so two processes finish a large tree in about half the time. Workers are forked
(they inherit open descriptors and the root lock), run one share of the work,
and send back a pickled result. `run_shares` is the one way in, for scan and
delete alike: it adds up the shares' progress, and does the share of a worker that
died itself (unless the run is stopping), so a crash costs time, never correctness.

SIGINT and SIGTERM stop a run between entries, never inside one: the handlers
only set a flag, which the walks and the delete loop check (`stop_signal`,
`check_stop`). The parent forwards the signal to its workers, which finish the
entry in hand and send back what they did. A worker also stops when its parent
dies, even by SIGKILL (PR_SET_PDEATHSIG on Linux, and a getppid() check between
entries everywhere), so no worker goes on deleting alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Generic, TypeVar

from gradio_clean.errors import Interrupted, signal_name

T = TypeVar("T")
MAX_JOBS = 4
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
Report = Callable[[int, int], None]  # a share's two running totals, e.g. files and bytes


class _Stop:
    """This process's view of a stop request; a forked worker gets its own copy."""

    def __init__(self) -> None:
        self.signum = 0  # the first SIGINT or SIGTERM received, 0 if none
        self.parent = 0  # in a worker: the pid whose death means stop; 0 in the main process
        self.children: dict[int, int] = {}  # running workers' pids and result pipes
        self.raise_now = False  # nothing in hand (a prompt): the handler raises at once


_STOP = _Stop()


def stop_signal() -> int:
    """The signal that asked this run to stop, or 0. Cheap: call it between entries."""
    if _STOP.parent and not _STOP.signum and os.getppid() != _STOP.parent:
        _STOP.signum = signal.SIGTERM  # the parent died (it may have been SIGKILLed)
    return _STOP.signum


def check_stop() -> None:
    """Raise Interrupted if a stop was asked for: for work that changes nothing (walks).
    Called once per entry: in a main process not asked to stop, one test and no call."""
    if _STOP.signum or _STOP.parent:
        signum = stop_signal()
        if signum:
            raise Interrupted(signum, f"interrupted by {signal_name(signum)}")


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _STOP.parent:  # a worker: stop after the entry in hand, however often told
        _STOP.signum = _STOP.signum or signum
        return
    if _STOP.signum:  # the second signal: end at once (workers die with us)
        os.write(2, f"gradio-clean: {signal_name(signum)} again: stopping at once\n".encode())
        os._exit(128 + _STOP.signum)
    _STOP.signum = signum
    _forward(signum)
    if _STOP.raise_now:
        check_stop()


def _forward(signum: int) -> None:
    for pid in tuple(_STOP.children):  # pids not yet reaped: never another process's
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside, SIGINT and SIGTERM ask for a stop instead of ending the process.

    The first one sets the flag (see `stop_signal`); a second one ends the process at
    once with 128 + the first signal's number. Outside the main thread, a no-op.
    """
    try:
        previous = {s: signal.signal(s, _on_signal) for s in STOP_SIGNALS}
    except ValueError:  # not the main thread: signals are not ours to take
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _STOP.signum = 0
        _STOP.raise_now = False


@contextlib.contextmanager
def raise_on_stop() -> Iterator[None]:
    """Around a wait with nothing in hand (a prompt): a stop raises Interrupted at once."""
    _STOP.raise_now = True
    try:
        check_stop()
        yield
    finally:
        _STOP.raise_now = False


class _Prctl:
    """prctl(PR_SET_PDEATHSIG, sig), looked up once in the parent, before any fork."""

    loaded = False
    call: Callable[..., int] | None = None

    @classmethod
    def die_with_parent(cls) -> Callable[..., int] | None:
        if not cls.loaded:
            cls.loaded = True
            if sys.platform.startswith("linux"):
                import ctypes  # here, as pickle and mmap: a run that forks no worker needs none

                with contextlib.suppress(OSError, AttributeError):
                    cls.call = ctypes.CDLL(None, use_errno=True).prctl
        return cls.call


def _become_worker(parent: int, prctl: Callable[..., int] | None) -> None:
    """In a fresh child: stop (not die) on signals, and when the parent dies."""
    _STOP.parent = parent
    for pipe in _STOP.children.values():  # the parent's ends of earlier workers' pipes
        os.close(pipe)
    _STOP.children = {}
    _STOP.raise_now = False
    for s in STOP_SIGNALS:
        signal.signal(s, _on_signal)
    if prctl is not None:
        import ctypes  # loaded by the parent with prctl: no file is read in the child

        zero = ctypes.c_ulong(0)  # prctl is variadic: pass what the kernel reads
        prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM), zero, zero, zero)
    stop_signal()  # the parent may have died before prctl took effect


def available_jobs() -> int:
    """One worker per core this process may run on, up to MAX_JOBS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(MAX_JOBS, cores))


class _Board:
    """Anonymous shared memory where each share publishes its two running totals."""

    def __init__(self, jobs: int) -> None:
        import mmap

        self.jobs = jobs
        self.mem = mmap.mmap(-1, 16 * jobs)

    def reporter(self, index: int, progress: Report | None) -> Report:
        """Share `index`'s report: publish its totals, and show the sum over every share."""

        def report(a: int, b: int) -> None:
            struct.pack_into("qq", self.mem, 16 * index, a, b)
            if progress is not None:
                more_a, more_b = self._others(index)
                progress(a + more_a, b + more_b)

        return report

    def _others(self, index: int) -> tuple[int, int]:
        """The sum over every share but `index` (whose own numbers the caller has)."""
        sa = sb = 0
        for i in range(self.jobs):
            if i != index:
                a, b = struct.unpack_from("qq", self.mem, 16 * i)
                sa += a
                sb += b
        return sa, sb


@dataclass(frozen=True)
class Share:
    """What the function doing one share of the work is told."""

    index: int  # which share: 0 .. jobs - 1
    forked: bool  # in a forked worker (its result is pickled back), else in the parent
    report: Report  # call with the share's own two running totals (e.g. files and bytes)


class _Died:
    """What a worker that died (killed, out of memory, an error) sent back: nothing."""


def run_shares(
    jobs: int, work: Callable[[Share], T], progress: Report | None = None
) -> list[T | None]:
    """work(share) for shares 0 .. jobs - 1: share 0 here, the others in forked workers
    meanwhile. Returns their results in share order.

    `progress`, called in this process only, gets the sum of every share's totals each
    time share 0 (or a share redone here) reports. A worker that died has its share
    done again here, after all have ended: a crash costs time, never a result. Only if
    the run is stopping (see `stop_signal`) is that share left undone: its result is None.
    """
    if jobs < 2:
        return [work(Share(0, False, progress or _ignore))]
    board = _Board(jobs)

    def here(index: int) -> Share:
        return Share(index, False, board.reporter(index, progress))

    def forked(index: int) -> Callable[[], T]:
        return lambda: work(Share(index, True, board.reporter(index, None)))

    done = _run_forked(lambda: work(here(0)), [forked(i) for i in range(1, jobs)])
    results: list[T | None] = []
    for index, result in enumerate(done):
        if not isinstance(result, _Died):
            results.append(result)
        elif stop_signal():  # stopping: what it did is unknown, and not redone
            results.append(None)
        else:
            results.append(work(here(index)))
    return results


def _ignore(a: int, b: int) -> None:
    pass


class _Child(Generic[T]):
    """A running forked worker and the pipe its result comes back on."""

    def __init__(self, pid: int, pipe: int) -> None:
        self.pid = pid
        self.pipe = pipe

    def result(self) -> T | _Died:
        """Unpickled as it arrives, never held whole as bytes as well (a plan of a million
        actions is ~100 MB either way); kept only if the worker then exited cleanly."""
        import pickle

        value: T | _Died
        try:
            with os.fdopen(self.pipe, "rb") as src:
                value = pickle.load(src)  # noqa: S301 - our own forked child's output
        except Exception:  # cut short: the worker died while writing
            value = _Died()
        status = self.reap()
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
            return _Died()
        return value

    def abandon(self) -> None:
        """Ask the worker to stop after its entry in hand; its result will not be read."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        os.close(self.pipe)

    def reap(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        _STOP.children.pop(self.pid, None)  # never signal a pid the system may reuse
        return status


def _fork(work: Callable[[], T]) -> _Child[T]:
    """Run `work` in a forked child; its pickled return value comes back through a pipe."""
    import pickle  # before the fork: the child only writes, with what the parent loaded

    prctl = _Prctl.die_with_parent()
    parent = os.getpid()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        _STOP.children[pid] = read_end
        if _STOP.signum:  # a signal came while forking: the child may have missed it
            _forward(_STOP.signum)
        return _Child(pid, read_end)
    code = 1
    try:  # in the child: never return into the caller's stack
        _become_worker(parent, prctl)
        os.close(read_end)
        result = work()
        with os.fdopen(write_end, "wb") as out:  # streamed: no second copy as bytes
            pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
        code = 0
    finally:
        os._exit(code)


def _run_forked(first: Callable[[], T], rest: Sequence[Callable[[], T]]) -> list[T | _Died]:
    """`rest` in forked children, `first` here meanwhile; results in order.

    If `first` raises (an interruption), the workers are stopped and reaped first.
    """
    started: list[_Child[T]] = []
    try:
        for work in rest:
            started.append(_fork(work))
        here = first()
    except BaseException:
        for s in started:
            s.abandon()
        for s in started:  # all told first, then all waited for: none outlives the call
            s.reap()
        raise
    return [here, *(s.result() for s in started)]
