"""A live app's folder mark is a flock other processes see, even when a cleaner held the
folder exclusively at the moment of marking: waited out if brief, else pending and
taken at the next tick, take or give."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gradio_clean.inapp import parse_options, run_rules
from gradio_clean.live import LiveSessions, Marks
from tests.conftest import HOUR, SHA256_A, SHA256_B, cli_env, write

SESSION = "k3x9q0ab1z"
LOCKED = "locked by another process (flock/fcntl)"

# Holds a folder's flock exclusively, as a cleaner does, until a byte arrives on stdin;
# releases it argv[2] seconds later and says so, and lives on.
EXCLUSIVE = """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("ready", flush=True)
    sys.stdin.buffer.read(1)
    time.sleep(float(sys.argv[2]))
    fcntl.flock(fd, fcntl.LOCK_UN)
    print("released", flush=True)
    time.sleep(600)
"""

# What a cleaner in another process sees: a fresh /proc snapshot, and delete's probe.
OUTSIDE = """
    import os, sys
    from gradio_clean.removal import lock_free
    from gradio_clean.inuse import snapshot
    st = os.stat(sys.argv[1])
    fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
    print(snapshot().why(st.st_dev, st.st_ino), lock_free(fd, hold=False), sep="|")
"""


class Exclusive:
    """Another process holding a folder's flock exclusively until `release`."""

    def __init__(self, folder: Path, after: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(EXCLUSIVE), str(folder), str(after)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.stdout, self.stdin = self.proc.stdout, self.proc.stdin
        assert self.stdout.readline().strip() == b"ready"

    def release(self) -> None:
        """Released `after` seconds from now; returns at once."""
        self.stdin.write(b"x")
        self.stdin.flush()

    def released(self) -> None:
        assert self.stdout.readline().strip() == b"released"


@pytest.fixture
def exclusive() -> Iterator[Callable[[Path, float], Exclusive]]:
    made: list[Exclusive] = []

    def make(folder: Path, after: float) -> Exclusive:
        made.append(Exclusive(folder, after))
        return made[-1]

    yield make
    for e in made:
        e.proc.kill()
        e.proc.wait()


def seen_outside(folder: Path) -> tuple[str, bool]:
    """(why a fresh snapshot says it is in use, whether delete's probe finds it free)."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(OUTSIDE), str(folder)],
        capture_output=True,
        text=True,
        env=cli_env(),
        check=True,
    )
    why, free = out.stdout.strip().split("|")
    return why, free == "True"


def test_a_mark_waits_out_a_cleaners_brief_hold(
    tmp_path: Path, exclusive: Callable[[Path, float], Exclusive]
) -> None:
    folder = tmp_path / "temp" / SHA256_A
    folder.mkdir(parents=True)
    holder = exclusive(folder, 0.001)
    marks = Marks()
    holder.release()  # 1 ms from now: after the first try, within the retries
    assert marks.take("dir", str(folder)) == ("dir", str(folder))
    holder.released()
    assert seen_outside(folder) == (LOCKED, False)
    assert marks.pending == 0


def _show_another(live: LiveSessions, tmp_path: Path) -> None:
    other = write(tmp_path / "temp" / SHA256_B / "other.png", b"o")
    live.show("otherpage01", "1", [str(other)])


def _give_an_event(live: LiveSessions, tmp_path: Path) -> None:
    upload = write(tmp_path / "temp" / SHA256_B / "in.txt", b"i")
    live.pin(1, "otherpage01", [str(upload)], body=None)
    live.unpin(1)


@pytest.mark.parametrize(
    "retry",
    [
        pytest.param(lambda live, tmp_path: live.sweep(), id="the tick's sweep"),
        pytest.param(_show_another, id="the next take"),
        pytest.param(_give_an_event, id="the next give"),
    ],
)
def test_a_mark_refused_by_a_long_hold_is_pending_then_taken(
    tmp_path: Path,
    exclusive: Callable[[Path, float], Exclusive],
    retry: Callable[[LiveSessions, Path], None],
) -> None:
    image = write(tmp_path / "temp" / SHA256_A / "image.webp", b"img")
    folder = image.parent
    holder = exclusive(folder, 0.0)
    live = LiveSessions([str(tmp_path / "temp")], [], grace=60)
    live.show(SESSION, "1", [str(image)])
    assert live.stats().pending == 1
    st = os.stat(folder)
    assert live.why(st.st_dev, st.st_ino)  # the app's own cleaner spares it meanwhile
    holder.release()
    holder.released()
    assert seen_outside(folder) == ("None", True)  # pending: not a lock yet
    retry(live, tmp_path)
    assert live.stats().pending == 0
    assert seen_outside(folder) == (LOCKED, False)
    live.close()
    assert seen_outside(folder) == ("None", True)


def test_a_pending_mark_given_back_is_gone(
    tmp_path: Path, exclusive: Callable[[Path, float], Exclusive]
) -> None:
    folder = tmp_path / "temp" / SHA256_A
    folder.mkdir(parents=True)
    holder = exclusive(folder, 0.0)
    marks = Marks()
    name = marks.take("dir", str(folder))
    assert name is not None and marks.pending == 1
    marks.give(name)
    assert (marks.pending, len(marks)) == (0, 0)
    holder.release()
    holder.released()
    assert seen_outside(folder) == ("None", True)


def test_an_uncontended_mark_is_locked_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "temp" / SHA256_A
    folder.mkdir(parents=True)
    marks = Marks()
    assert marks.take("dir", str(folder)) is not None
    assert marks.pending == 0
    assert seen_outside(folder) == (LOCKED, False)


def test_an_inside_budget_passes_over_a_folder_whose_mark_is_pending(
    tmp_path: Path, exclusive: Callable[[Path, float], Exclusive]
) -> None:
    """A cleaner held the least recently used folder when a page showed a file in it, and
    has let go since: the mark is pending, the folder locked by nobody. The in-app budget
    passes over it all the same (apply would skip it: the app marks it) and evicts the
    next unit, so what it plans is what goes."""
    temp = tmp_path / "gradio"
    shown = write(temp / SHA256_A / "shown.bin", b"s" * 200_000, age=2 * HOUR)
    newer = write(temp / SHA256_B / "output.bin", b"o" * 100_000, age=HOUR)
    holder = exclusive(shown.parent, 0.0)
    live = LiveSessions([str(temp)], [], grace=60)
    live.show(SESSION, "1", [str(shown)])
    holder.release()
    holder.released()
    assert live.stats().pending == 1  # no take, give or tick since: still pending
    rules = {"max_size": "150K", "min_age": "0s", "age_by": "mtime"}
    summary = run_rules(parse_options("30m", "60s", (), [str(temp)], rules), live)
    assert summary is not None
    assert (summary.deleted, summary.skipped) == (1, 0), summary
    assert shown.exists() and not newer.exists()
    live.close()
