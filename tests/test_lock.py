"""The run lock: a file of our own, keyed by the root, that no other user can take.

Also roots that nest across two runs, and one folder named twice in a run.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Role
from gradio_clean.cli import app
from gradio_clean.errors import ExitCode, GradioCleanError
from gradio_clean.lock import folder_key, open_lock_dir
from gradio_clean.plan import Status
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from tests.conftest import (
    DAY,
    NOBODY,
    SHA256_A,
    cli_env,
    hold_lock,
    run_unprivileged,
    write,
)
from tests.helpers import without_role_lines

PRUNE = [sys.executable, "-m", "gradio_clean", "prune"]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (another user, mounts)")


def lock_path(root: Path) -> Path:
    fd, folder = open_lock_dir()
    os.close(fd)
    dev, ino = folder_key(str(root))
    return Path(folder) / f"{dev:x}-{ino:x}.lock"


def prune(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app, ["prune", *args, "--older-than", "1d", "--age-by", "mtime", "--apply", "--yes"]
    )
    return result.exit_code, without_role_lines(result.stderr)


def root_is_flocked(root: Path) -> bool:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


# -- whose lock -------------------------------------------------------------------


@needs_root
@pytest.mark.skipif(not (shutil.which("setpriv") and shutil.which("flock")), reason="util-linux")
def test_another_user_locking_the_root_blocks_no_run(runner: CliRunner, world_dir: Path) -> None:
    root = world_dir / "gradio"
    old = write(root / SHA256_A / "old.bin", b"o", age=3 * DAY)
    ids = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    attacker = subprocess.Popen(["setpriv", *ids, "flock", "-x", str(root), "sleep", "60"])
    try:
        deadline = time.monotonic() + 10
        while not root_is_flocked(root):
            assert time.monotonic() < deadline and attacker.poll() is None
            time.sleep(0.01)
        code, stderr = prune(runner, str(root), "--wait", "0")
    finally:
        attacker.kill()
        attacker.wait()
    assert (code, stderr) == (0, "")
    assert not old.exists()


def test_the_lock_is_a_file_of_ours_in_a_folder_of_ours(runner: CliRunner, tmp_path: Path) -> None:
    root = tmp_path / "temp"
    write(root / SHA256_A / "old.bin", b"o", age=3 * DAY)
    assert prune(runner, str(root)) == (0, "")
    lock = lock_path(root)
    folder = os.lstat(lock.parent)
    assert stat.S_ISDIR(folder.st_mode)
    assert (folder.st_uid, stat.S_IMODE(folder.st_mode)) == (os.geteuid(), 0o700)
    held = os.lstat(lock)
    assert stat.S_ISREG(held.st_mode) and held.st_uid == os.geteuid()


def test_a_symlink_at_the_lock_files_path_is_not_followed(
    runner: CliRunner, tmp_path: Path
) -> None:
    root = tmp_path / "temp"
    old = write(root / SHA256_A / "old.bin", b"o", age=3 * DAY)
    target = tmp_path / "elsewhere"
    lock = lock_path(root)
    lock.unlink(missing_ok=True)
    lock.symlink_to(target)
    try:
        code, stderr = prune(runner, str(root))
    finally:
        lock.unlink()
    assert code == ExitCode.ERROR
    assert stderr == f"gradio-clean: error: {lock}: cannot use it as a lock: is a symlink\n"
    assert not target.exists()
    assert old.exists()


@needs_root
@pytest.mark.parametrize("planted", ["symlink", "folder"])
def test_a_lock_folder_planted_in_the_temp_dir_is_refused(
    world_dir: Path, monkeypatch: pytest.MonkeyPatch, planted: str
) -> None:
    """Without /run or XDG_RUNTIME_DIR the folder is <tmp>/gradio-clean-<uid>: anyone
    could make it first. It must be ours, and a real folder, or the run stops."""
    monkeypatch.setattr(tempfile, "tempdir", str(world_dir))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    spot = world_dir / f"gradio-clean-{NOBODY}"
    if planted == "symlink":
        (world_dir / "theirs").mkdir(mode=0o777)
        spot.symlink_to(world_dir / "theirs")
        want = f"{spot}: the lock folder is a symlink or not a folder; refusing it"
    else:
        spot.mkdir(mode=0o777)
        spot.chmod(0o777)
        want = f"{spot}: the lock folder belongs to uid 0, not to us; refusing it"

    def attempt() -> str:
        try:
            os.close(open_lock_dir()[0])
        except GradioCleanError as exc:
            return exc.message
        return "accepted"

    assert run_unprivileged(attempt, warm_up=lambda: None) == want
    assert os.listdir(world_dir / "theirs" if planted == "symlink" else spot) == []


# -- roots that nest across runs, one folder named twice ----------------------------


def test_a_run_inside_a_locked_root_waits_and_the_reverse(
    runner: CliRunner, tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    temp = tmp_path / "temp"
    inner = temp / "sessions"
    write(inner / "k3x9q0ab1z" / "old.bin", b"o", age=3 * DAY)
    hold_lock(holder, temp)
    code, stderr = prune(runner, "--sessions-dir", str(inner), "--wait", "0.2")
    assert code == ExitCode.BUSY
    assert stderr == (
        f"gradio-clean: error: {inner}: another gradio-clean run is working on {temp}, "
        "which holds it (waited 0.2s); try again later\n"
    )
    release(holder)
    hold_lock(holder, inner)
    code, stderr = prune(runner, str(temp), "--wait", "0.2")
    assert code == ExitCode.BUSY
    assert "another gradio-clean run is working on it" in stderr
    release(holder)
    (temp / "other").mkdir()
    hold_lock(holder, temp / "other")  # a run on a sibling does not matter
    assert prune(runner, "--sessions-dir", str(inner), "--wait", "0") == (0, "")


def release(holder: list[subprocess.Popen[bytes]]) -> None:
    p = holder.pop()
    p.kill()
    p.wait()


def build_sessions(folder: Path, sessions: int) -> None:
    """`sessions` idle session folders of three old files, and one fresh file beside them."""
    folder.mkdir(parents=True)
    stamp = f"@{int(time.time() - 3 * DAY)}"
    names = "".join(f"k3x9q{i:05d}\n" for i in range(sessions))
    files = "".join(f"k3x9q{i:05d}/f{j}\n" for i in range(sessions) for j in range(3))
    for cmd, text in (
        (["xargs", "mkdir"], names),
        (["xargs", "touch", "-d", stamp], files),
        (["xargs", "touch", "-d", stamp], names),
    ):
        subprocess.run(cmd, input=text.encode(), cwd=folder, check=True)
    write(folder / "fresh.txt", b"keeps the folder")


def test_nested_roots_in_two_concurrent_runs_report_no_failure(tmp_path: Path) -> None:
    """`prune TEMP` deletes the session files one by one while `prune --sessions-dir
    TEMP/sessions` removes the same sessions whole: neither may report a failure."""
    temp = tmp_path / "temp"
    inner = temp / "sessions"
    runs = [
        [str(temp), "--older-than", "1d", "--age-by", "mtime"],
        ["--sessions-dir", str(inner), "--orphaned-sessions", "--age-by", "mtime"],
    ]
    deadline = time.monotonic() + 60
    for trial in range(3):
        if trial and time.monotonic() > deadline:
            break
        shutil.rmtree(temp, ignore_errors=True)
        write(temp / SHA256_A / "fresh.bin", b"a temp dir")
        build_sessions(inner, 1000)
        procs = [
            subprocess.Popen(
                [*PRUNE, *args, "--apply", "--yes", "--quiet", "--wait", "60"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=cli_env(),
            )
            for args in runs
        ]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert (p.returncode, out, err) == (0, b"", b""), trial
        assert sorted(os.listdir(inner)) == ["fresh.txt"]


def test_an_entry_whose_folder_vanished_is_already_gone(tmp_path: Path) -> None:
    root = tmp_path / "temp"
    write(root / SHA256_A / "fresh.bin", b"a temp dir")
    write(root / "sessions" / "fresh.txt", b"keeps the folder")
    old = write(root / "sessions" / "k3x9q0ab1z" / "old.bin", b"o", age=3 * DAY)
    plan = build_plan(
        [Root(str(root), Role.TEMP, "test")],
        RuleSet(age_by=AgeBy.MTIME, older_than=DAY),
        now=time.time(),
    )
    assert [a.path for a in plan.actions] == [str(old)]
    shutil.rmtree(old.parent)  # another run took the whole session meanwhile
    result = apply_plan(plan, why=lambda _dev, _ino: None)
    assert [(o.status, o.detail) for o in result.outcomes] == [(Status.DELETED, "already gone")]


@needs_root
@pytest.mark.skipif(not shutil.which("unshare"), reason="needs unshare")
def test_a_folder_and_its_bind_mount_are_one_root(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    old = write(temp / SHA256_A / "old.bin", b"o", age=3 * DAY)
    bind = tmp_path / "bind"
    bind.mkdir()
    script = f'mount --make-rprivate / && mount --bind "{temp}" "{bind}" && exec "$@"'
    args = [
        str(temp),
        str(bind),
        "--older-than",
        "1d",
        "--age-by",
        "mtime",
        "--apply",
        "--yes",
        "--quiet",
    ]
    started = time.monotonic()
    p = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", *PRUNE, *args, "--wait", "5"],
        capture_output=True,
        env=cli_env(),
        timeout=60,
        check=False,
    )
    if p.returncode != 0 and b"mount" in p.stderr and b"gradio-clean" not in p.stderr:
        pytest.skip(f"no private mount namespace here: {p.stderr.decode().strip()}")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")
    assert time.monotonic() - started < 5  # it did not wait on its own lock
    assert not old.exists()
