"""Forked workers for the walks and deletions, which are mostly system calls.

The kernel side of stat, getdents, unlink and rmdir runs on whichever core asks,
so two processes finish a large tree in about half the time. Workers are forked
(they inherit open descriptors and the root lock), run one share of the work,
and send back a pickled result; a worker that dies yields None and the caller
does that share itself, so a crash costs time, never correctness.
"""

from __future__ import annotations

import mmap
import os
import pickle
import struct
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
MAX_JOBS = 4


def available_jobs() -> int:
    """One worker per core this process may run on, up to MAX_JOBS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(MAX_JOBS, cores))


class Counters:
    """Anonymous shared memory: each worker publishes two numbers for a progress line."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.mem = mmap.mmap(-1, 16 * jobs)

    def publish(self, index: int, a: int, b: int) -> None:
        struct.pack_into("qq", self.mem, 16 * index, a, b)

    def others(self, index: int) -> tuple[int, int]:
        """The sum over every worker but `index` (whose own numbers the caller has)."""
        sa = sb = 0
        for i in range(self.jobs):
            if i != index:
                a, b = struct.unpack_from("qq", self.mem, 16 * i)
                sa += a
                sb += b
        return sa, sb


class Share(Generic[T]):
    """A running forked worker and the pipe its result comes back on."""

    def __init__(self, pid: int, pipe: int) -> None:
        self.pid = pid
        self.pipe = pipe

    def result(self) -> T | None:
        with os.fdopen(self.pipe, "rb") as src:
            data = src.read()
        _, status = os.waitpid(self.pid, 0)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0 or not data:
            return None
        value: T = pickle.loads(data)  # noqa: S301 - our own forked child's output
        return value


def fork(work: Callable[[], T]) -> Share[T]:
    """Run `work` in a forked child; its pickled return value comes back through a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_end)
        return Share(pid, read_end)
    code = 1
    try:  # in the child: never return into the caller's stack
        os.close(read_end)
        data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_end, "wb") as out:
            out.write(data)
        code = 0
    finally:
        os._exit(code)


def run_shares(shares: Sequence[Callable[[], T]]) -> list[T | None]:
    """shares[1:] in forked children, shares[0] here meanwhile; results in order."""
    started = [fork(work) for work in shares[1:]]
    first = shares[0]()
    return [first, *(s.result() for s in started)]
