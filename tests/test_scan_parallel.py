"""Worker processes must not change a single number of the result."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from gradio_clean.classify import Role
from gradio_clean.roots import Root
from gradio_clean.scan import Hooks, scan
from tests.conftest import GradioTree, write
from tests.helpers import WorkerKiller


def test_parallel_equals_serial_on_the_gradio_tree(gradio_tree: GradioTree) -> None:
    roots = [Root(str(gradio_tree.temp), Role.TEMP, "t"), Root(str(gradio_tree.app), Role.APP, "t")]
    serial = scan(roots, jobs=1, now=1e9 + 0.5)
    parallel = scan(roots, jobs=3, now=1e9 + 0.5)
    assert parallel.roots == serial.roots
    assert sorted(parallel.warnings, key=str) == sorted(serial.warnings, key=str)


def test_hard_links_across_workers_count_once(tmp_path: Path) -> None:
    """Links spread over many hash folders land in different workers' shares."""
    rng = random.Random(7)
    temp = tmp_path / "temp"
    originals = []
    for i in range(60):
        folder = temp / f"{i:064x}"
        originals.append(
            write(
                folder / "f.bin", os.urandom(rng.randint(1, 5000)), age=rng.randint(0, 40 * 86400)
            )
        )
    for i, src in enumerate(originals[:30]):
        for j in rng.sample(range(60), 3):
            dst = temp / f"{j:064x}" / f"link-{i}.bin"
            if not dst.exists():
                os.link(src, dst)
    os.mkfifo(temp / f"{0:064x}" / "fifo")
    roots = [Root(str(temp), Role.TEMP, "t")]
    serial = scan(roots, jobs=1, top=5)
    for jobs in (2, 4):
        parallel = scan(roots, jobs=jobs, top=5, now=serial.started)
        assert parallel.roots[0].files == 60 == serial.roots[0].files
        assert parallel.roots[0] == serial.roots[0]


def test_a_killed_worker_share_is_walked_again(tmp_path: Path) -> None:
    """SIGKILL a real forked worker mid-walk: its share is walked again in the parent,
    so every number (and the largest items) equals an undisturbed walk's."""
    temp = tmp_path / "temp"
    for i in range(3000):  # 6000 files: each of 3 shares outlasts the parent's first report
        write(temp / f"{i:064x}" / "a.bin", b"x" * (i + 1), age=i * 600)
        write(temp / f"{i:064x}" / "b.bin", b"y" * 7, age=i * 60)
    roots = [Root(str(temp), Role.TEMP, "t")]
    serial = scan(roots, jobs=1, top=5)
    deadline = time.monotonic() + 60
    for _trial in range(5):
        killer = WorkerKiller()
        killed = scan(roots, jobs=3, top=5, now=serial.started, hooks=Hooks(progress=killer))
        assert killed.roots == serial.roots
        if killer.killed or time.monotonic() > deadline:
            break
    assert killer.killed, "no worker was caught still walking"
    assert serial.roots[0].files == 6000
