"""prune stays within a small container's memory (issue 13, section 5).

A real cgroup with a memory limit, made here (cgroup v1's memory controller, or a
cgroup v2 folder with the memory controller; skipped where neither can be made),
and a real tree of empty files: one hash folder holding all of them, the same number
spread over hash folders of 100, and one hash folder per file (Gradio's own shape:
an action per folder). The dry run and then --apply must exit 0
with no OOM kill in the cgroup. The 1M-file case is marked slow (run it with
`-m slow`); the 200k case runs in the normal suite under a proportionally smaller
ceiling (the interpreter and its imports alone take ~40 MB).
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import cli_env

MIB = 1 << 20
V1 = Path("/sys/fs/cgroup/memory")
V2 = Path("/sys/fs/cgroup")
PER_FOLDER = 100  # the many-folders tree: files per hash folder


class MemoryCgroup:
    """A cgroup of our own with a memory limit and no swap; removed by `remove`."""

    def __init__(self, limit: int) -> None:
        name = f"gradio-clean-test-{os.getpid()}-{time.monotonic_ns()}"
        if (V1 / "memory.limit_in_bytes").exists():
            self.path, self.v2 = V1 / name, False
            self.path.mkdir()
            self._set("memory.limit_in_bytes", limit)
            if (self.path / "memory.memsw.limit_in_bytes").exists():
                self._set("memory.memsw.limit_in_bytes", limit)
        else:
            self.path, self.v2 = V2 / name, True
            self.path.mkdir()
            self._set("memory.max", limit)
            if (self.path / "memory.swap.max").exists():
                self._set("memory.swap.max", 0)

    def _set(self, knob: str, value: int) -> None:
        (self.path / knob).write_text(f"{value}\n")

    def run(self, *args: str, temp_dir: Path) -> subprocess.CompletedProcess[bytes]:
        """`python -m gradio_clean ARGS`, moved into the cgroup before it starts."""
        procs = str(self.path / "cgroup.procs")
        move = 'echo $$ > "$0" && exec "$@"'
        return subprocess.run(
            ["sh", "-c", move, procs, sys.executable, "-m", "gradio_clean", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=cli_env(GRADIO_TEMP_DIR=str(temp_dir)),
            timeout=900,
            check=False,
        )

    def oom_kills(self) -> int:
        """OOM kills in the cgroup so far (memory.oom_control or memory.events)."""
        knob = "memory.events" if self.v2 else "memory.oom_control"
        for line in (self.path / knob).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0  # a kernel that does not count them: the exit status still tells

    def peak(self) -> str:
        knob = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        path = self.path / knob
        return f"{int(path.read_text()) / MIB:.0f} MiB" if path.exists() else "unknown"

    def remove(self) -> None:
        for _ in range(50):  # the last process may take a moment to leave
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        self.path.rmdir()


def _can_make_cgroup() -> str | None:
    """Why no memory cgroup can be made here; None if one can."""
    if os.geteuid() != 0:
        return "needs root to make a cgroup"
    if (V1 / "memory.limit_in_bytes").exists():
        return None if os.access(V1, os.W_OK) else "cgroup v1 memory controller not writable"
    controllers = V2 / "cgroup.controllers"
    if not controllers.exists() or "memory" not in controllers.read_text().split():
        return "no cgroup memory controller"
    subtree = V2 / "cgroup.subtree_control"
    if "memory" not in subtree.read_text().split():
        return "memory controller not enabled for child cgroups"
    return None


@pytest.fixture
def cgroup() -> Iterator[type[MemoryCgroup]]:
    why = _can_make_cgroup()
    if why is not None:
        pytest.skip(why)
    yield MemoryCgroup


def _make_files(temp: Path, files: int, per_folder: int) -> None:
    """`files` empty files in 64-hex hash folders of `per_folder` each: one syscall a file."""
    mode = stat.S_IFREG | 0o644
    for n in range(0, files, per_folder):
        folder = temp / hashlib.sha256(str(n).encode()).hexdigest()
        folder.mkdir(parents=True)
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for i in range(min(per_folder, files - n)):
                os.mknod(f"upload_{i:07d}.bin", mode, dir_fd=dfd)
        finally:
            os.close(dfd)


def _prune_within(cgroup: type[MemoryCgroup], temp: Path, limit: int, files: int) -> None:
    """Dry run, then --apply, each in a fresh cgroup of `limit`: exit 0, no OOM kill."""
    time.sleep(1.1)  # every file older than the --older-than 1s below
    for extra in ((), ("--apply", "--yes")):
        group = cgroup(limit)
        try:
            done = group.run("prune", "--older-than", "1s", *extra, temp_dir=temp)
            kills = group.oom_kills()
            peak = group.peak()
        finally:
            group.remove()
        what = f"prune {' '.join(extra) or '(dry run)'} of {files:,} files: peak {peak}"
        assert kills == 0, f"{what}: OOM-killed under {limit // MIB} MiB"
        assert done.returncode == 0, f"{what}: exit {done.returncode}, {done.stderr[-2000:]!r}"
    assert not any(temp.iterdir()), "--apply left files behind"


# Gradio's own shape: a hash folder per upload, one file in it. Each is an action of its own.
SHAPES = [200_000, PER_FOLDER, 1]
SHAPE_IDS = ["one-folder", "many-folders", "hash-folders"]


@pytest.mark.parametrize("per_folder", SHAPES, ids=SHAPE_IDS)
def test_prune_of_200k_files_within_128_mib(
    cgroup: type[MemoryCgroup], tmp_path: Path, per_folder: int
) -> None:
    temp = tmp_path / "temp"
    _make_files(temp, 200_000, per_folder)
    _prune_within(cgroup, temp, 128 * MIB, 200_000)


@pytest.mark.slow
@pytest.mark.parametrize("per_folder", [1_000_000, PER_FOLDER, 1], ids=SHAPE_IDS)
def test_prune_of_1m_files_within_256_mib(
    cgroup: type[MemoryCgroup], tmp_path: Path, per_folder: int
) -> None:
    temp = tmp_path / "temp"
    _make_files(temp, 1_000_000, per_folder)
    _prune_within(cgroup, temp, 256 * MIB, 1_000_000)
