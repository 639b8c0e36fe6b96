"""SIGTERM, SIGINT and SIGKILL sent to real `prune --apply` runs with forked workers.

systemd stops a unit with SIGTERM and Kubernetes does at activeDeadlineSeconds; a
terminal sends SIGINT. The run must stop in every process after the entry in hand,
say what it did, write its metrics with success 0 and exit 143 or 130, and no
worker may go on deleting after the parent is gone, even when it was SIGKILLed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gradio_clean.errors import ExitCode
from gradio_clean.workers import available_jobs
from tests.conftest import DAY, cli_env
from tests.helpers import without_role_lines

ENTRIES = 20_000  # hash folders of one old file each: a few seconds of forked deletion

needs_two_cores = pytest.mark.skipif(
    available_jobs() < 2, reason="one core: prune runs no workers to stop"
)


def build_cache(root: Path, folders: int, files: int = 1) -> None:
    """`folders` old hash folders of `files` empty files each, built by xargs (fast)."""
    root.mkdir()
    stamp = f"@{int(time.time() - 3 * DAY)}"
    names = "".join(f"{i:064x}\n" for i in range(folders))
    paths = "".join(f"{i:064x}/f{j}.bin\n" for i in range(folders) for j in range(files))
    for cmd, text in (
        (["xargs", "mkdir"], names),
        (["xargs", "touch", "-d", stamp], paths),
        (["xargs", "touch", "-d", stamp], names),
    ):
        subprocess.run(cmd, input=text.encode(), cwd=root, check=True)


def start_prune(root: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    """The scheduled command line, in its own session so that its processes can be found."""
    args = ["prune", str(root), "--older-than", "1d", "--age-by", "mtime", "--apply", "--yes"]
    return subprocess.Popen(
        [sys.executable, "-m", "gradio_clean", *args, "--metrics-file", str(tmp_path / "m.prom")],
        stdout=(tmp_path / "stdout").open("wb"),
        stderr=(tmp_path / "stderr").open("wb"),
        env=cli_env(),
        start_new_session=True,
    )


def live_group(pgid: int) -> list[int]:
    """Processes of the run's process group that still run (zombies have stopped)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(name))
    return pids


def wait_until(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def count(folder: Path) -> int:
    return len(os.listdir(folder))


def metrics(path: Path) -> dict[str, float]:
    lines = path.read_text().splitlines()
    return {k: float(v) for k, v in (ln.rsplit(" ", 1) for ln in lines if not ln.startswith("#"))}


def deleting(p: subprocess.Popen[bytes], root: Path, before: int) -> None:
    """Wait until the run has deleted its first entries."""
    assert wait_until(lambda: count(root) < before or p.poll() is not None, 120)
    assert p.poll() is None, "the run ended before it could be interrupted"


@needs_two_cores
@pytest.mark.parametrize(
    ("sig", "code"),
    [(signal.SIGTERM, ExitCode.TERMINATED), (signal.SIGINT, ExitCode.INTERRUPTED)],
)
def test_a_signal_stops_every_worker_then_reports(
    tmp_path: Path, sig: signal.Signals, code: ExitCode
) -> None:
    root = tmp_path / "temp"
    build_cache(root, ENTRIES)
    p = start_prune(root, tmp_path)
    deleting(p, root, ENTRIES)
    assert len(live_group(p.pid)) >= 2, "the apply runs in forked workers"
    os.kill(p.pid, sig)
    assert p.wait(timeout=60) == code

    assert live_group(p.pid) == []  # the parent waited for its workers
    left = count(root)
    time.sleep(2)
    assert count(root) == left, "something deleted after the run exited"
    done = ENTRIES - left
    assert 0 < done < ENTRIES
    stderr = without_role_lines((tmp_path / "stderr").read_text())
    assert stderr == (
        f"gradio-clean: interrupted by {sig.name}: stopped after {done:,} of {ENTRIES:,} "
        "entries; the rest is left for the next run\n"
    )
    assert (
        f"Freed 0 Bytes in {done:,} files ({done:,} folders)." in (tmp_path / "stdout").read_text()
    )
    m = metrics(tmp_path / "m.prom")
    assert m["gradio_clean_success"] == 0
    assert m['gradio_clean_freed_files{rule="older-than"}'] == done


@needs_two_cores
def test_a_signal_while_planning_stops_the_walk_and_deletes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "temp"
    build_cache(root, ENTRIES)
    p = start_prune(root, tmp_path)
    # the walk forks its workers before any deletion: catch it there
    assert wait_until(lambda: len(live_group(p.pid)) >= 2 or p.poll() is not None, 120)
    assert count(root) == ENTRIES
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(timeout=60) == ExitCode.TERMINATED
    assert live_group(p.pid) == []
    assert without_role_lines((tmp_path / "stderr").read_text()) == (
        "gradio-clean: interrupted by SIGTERM; nothing was deleted\n"
    )
    time.sleep(1)
    assert count(root) == ENTRIES
    assert metrics(tmp_path / "m.prom")["gradio_clean_success"] == 0


@needs_two_cores
def test_workers_stop_when_the_parent_is_killed(tmp_path: Path) -> None:
    root = tmp_path / "temp"
    build_cache(root, ENTRIES)
    p = start_prune(root, tmp_path)
    deleting(p, root, ENTRIES)
    assert len(live_group(p.pid)) >= 2
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    # each worker finishes the entry in hand (one small folder), then goes
    assert wait_until(lambda: not live_group(p.pid), 1.0), "a worker outlived its parent"
    left = count(root)
    time.sleep(2)
    assert count(root) == left
    assert left > 0


def test_a_second_signal_ends_the_run_at_once(tmp_path: Path) -> None:
    """The entry in hand is one folder of 40,000 files; the second SIGTERM does not wait."""
    root = tmp_path / "temp"
    build_cache(root, 1, 40_000)
    folder = root / f"{0:064x}"
    p = start_prune(root, tmp_path)
    deleting(p, folder, 40_000)
    os.kill(p.pid, signal.SIGTERM)
    time.sleep(0.05)
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(timeout=10) == ExitCode.TERMINATED
    assert without_role_lines((tmp_path / "stderr").read_text()) == (
        "gradio-clean: SIGTERM again: stopping at once\n"
    )
    assert count(folder) > 0  # the first signal alone would have let it finish the folder
    assert not (tmp_path / "m.prom").exists()


@needs_two_cores
def test_a_worker_stopped_alone_makes_the_run_incomplete(tmp_path: Path) -> None:
    """systemd's KillMode=control-group signals every process: a worker may hear it first.
    Its unfinished share must not pass for done."""
    root = tmp_path / "temp"
    build_cache(root, ENTRIES)
    p = start_prune(root, tmp_path)
    deleting(p, root, ENTRIES)
    workers = [pid for pid in live_group(p.pid) if pid != p.pid]
    assert workers
    os.kill(workers[0], signal.SIGTERM)
    assert p.wait(timeout=120) == ExitCode.TERMINATED
    left = count(root)
    assert left > 0  # the stopped worker's share is still there
    done = ENTRIES - left
    assert without_role_lines((tmp_path / "stderr").read_text()) == (
        f"gradio-clean: interrupted by SIGTERM: stopped after {done:,} of {ENTRIES:,} "
        "entries; the rest is left for the next run\n"
    )
    assert metrics(tmp_path / "m.prom")["gradio_clean_success"] == 0
