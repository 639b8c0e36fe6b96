"""Deletion that cannot hurt: every test here fails if its protection is removed."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Category, Role, category_in_hash_dir, is_our_temp_name
from gradio_clean.cli import app
from gradio_clean.delete import temp_link_name
from gradio_clean.errors import ExitCode
from gradio_clean.inuse import snapshot
from gradio_clean.plan import Status
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from tests.conftest import (
    DAY,
    HOUR,
    JS_SESSION,
    SHA256_A,
    SHA256_B,
    cli_env,
    hold,
    hold_flock,
    hold_lock,
    run_in_private_mounts,
    set_age,
    write,
)
from tests.helpers import WorkerKiller

OLD = 3 * DAY
# Ages here are set with utime, which cannot move a ctime back: the rules age by mtime.
MTIME = AgeBy.MTIME
OLDER_1D = ["--older-than", "1d", "--age-by", "mtime"]


def temp_root(path: Path) -> Root:
    return Root(str(path), Role.TEMP, "test")


def plan_older(root: Path, *, seconds: float = DAY) -> tuple[Root, RuleSet]:
    return temp_root(root), RuleSet(older_than=seconds, age_by=MTIME)


def never_busy(_dev: int, _ino: int) -> str | None:
    return None


def test_folder_swapped_for_symlink_is_not_followed(tmp_path: Path) -> None:
    """The planned file's folder becomes a link to a folder outside holding the SAME inode.

    The identity re-check passes (same inode, size, mtime); only opening each folder with
    O_NOFOLLOW relative to its parent keeps the outside path alive.
    """
    temp, outside = tmp_path / "temp", tmp_path / "outside"
    target = write(temp / SHA256_A / "photo.png", b"x" * 100, age=OLD)
    root, rules = plan_older(temp)
    plan = build_plan([root], rules, now=time.time())
    assert [a.rel for a in plan.actions] == [SHA256_A]  # the whole old hash folder
    outside.mkdir()
    os.link(target, outside / "photo.png")
    set_age(outside, 0)
    (temp / SHA256_A).rename(temp / "moved-away")
    (temp / SHA256_A).symlink_to(outside)

    result = apply_plan(plan, why=never_busy)

    assert (outside / "photo.png").read_bytes() == b"x" * 100
    assert (temp / "moved-away" / "photo.png").exists()
    assert [o.status for o in result.outcomes] == [Status.SKIPPED]


def test_file_action_through_swapped_parent_is_skipped(tmp_path: Path) -> None:
    temp, outside = tmp_path / "temp", tmp_path / "outside"
    write(temp / SHA256_A / "old.png", b"o" * 10, age=OLD)
    fresh = write(temp / SHA256_A / "fresh.png", b"f" * 10)
    plan = build_plan([temp_root(temp)], RuleSet(older_than=DAY, age_by=MTIME), now=time.time())
    assert [a.rel for a in plan.actions] == [f"{SHA256_A}/old.png"]
    outside.mkdir()
    os.link(temp / SHA256_A / "old.png", outside / "old.png")
    (temp / SHA256_A).rename(temp / "away")
    (temp / SHA256_A).symlink_to(outside)

    result = apply_plan(plan, why=never_busy)

    assert (outside / "old.png").exists()
    assert result.outcomes[0].status is Status.SKIPPED
    assert "symlink" in (result.outcomes[0].detail or "")
    assert not fresh.exists()  # moved with its folder, not deleted
    assert (temp / "away" / "fresh.png").exists()


def test_symlink_is_removed_as_a_link_never_followed(tmp_path: Path) -> None:
    """A link inside an orphaned session folder goes; what it points to stays."""
    app_dir, outside = tmp_path / "app", tmp_path / "outside"
    secret = write(outside / "secret.txt", b"keep me")
    session = app_dir / JS_SESSION
    write(session / "upload.txt", b"u", age=2 * HOUR)
    (session / "link").symlink_to(secret)
    (session / "dirlink").symlink_to(outside, target_is_directory=True)
    for p in (session / "link", session / "dirlink"):
        set_age(p, 2 * HOUR)
    set_age(session, 2 * HOUR)
    root = Root(str(app_dir), Role.APP, "test")
    plan = build_plan([root], RuleSet(orphaned_sessions=True, age_by=MTIME), now=time.time())
    assert [a.rel for a in plan.actions] == [JS_SESSION]

    result = apply_plan(plan, why=never_busy)

    assert result.complete
    assert not session.exists()
    assert secret.read_bytes() == b"keep me"


def test_changed_since_planning_is_skipped(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    grown = write(temp / "a" / "grown.bin", b"1" * 10, age=OLD)
    touched = write(temp / "b" / "touched.bin", b"2" * 10, age=OLD)
    replaced = write(temp / "c" / "replaced.bin", b"3" * 10, age=OLD)
    vanished = write(temp / "d" / "vanished.bin", b"4" * 10, age=OLD)
    for d in "abcd":  # keep the folders fresh so each file is its own action
        write(temp / d / "fresh", b"")
    plan = build_plan([temp_root(temp)], RuleSet(older_than=DAY, age_by=MTIME), now=time.time())
    assert len(plan.actions) == 4

    with grown.open("ab") as fh:
        fh.write(b"more")
    set_age(grown, OLD)  # same old mtime: only the size gives it away
    set_age(touched, OLD - 10)
    # Same name and size, another inode (made before the old one goes, so no inode reuse).
    os.replace(write(replaced.with_name("new"), b"3" * 10, age=OLD), replaced)
    os.utime(replaced, ns=(replaced.stat().st_atime_ns, plan.actions[2].identity.mtime_ns))
    vanished.unlink()

    result = apply_plan(plan, why=never_busy)
    by_name = {Path(o.action.rel).name: o for o in result.outcomes}

    assert by_name["grown.bin"].status is Status.SKIPPED
    assert by_name["grown.bin"].detail == "changed since planning (size)"
    assert by_name["touched.bin"].detail == "changed since planning (mtime)"
    assert by_name["replaced.bin"].detail == "replaced since planning (another inode)"
    assert (by_name["vanished.bin"].status, by_name["vanished.bin"].detail) == (
        Status.DELETED,
        "already gone",
    )
    assert grown.exists() and touched.exists() and replaced.exists()


def test_folder_with_a_newer_entry_is_skipped(tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    session = app_dir / JS_SESSION
    write(session / "old.txt", b"o", age=2 * HOUR)
    set_age(session, 2 * HOUR)
    plan = build_plan(
        [Root(str(app_dir), Role.APP, "t")],
        RuleSet(orphaned_sessions=True, age_by=MTIME),
        now=time.time(),
    )
    assert len(plan.actions) == 1
    write(session / "sub" / "new.txt", b"the user came back")
    set_age(session, 2 * HOUR)

    result = apply_plan(plan, why=never_busy)

    assert result.outcomes[0].status is Status.SKIPPED
    assert (session / "sub" / "new.txt").exists() and (session / "old.txt").exists()


def test_open_file_is_spared(tmp_path: Path, holder: list[subprocess.Popen[bytes]]) -> None:
    temp = tmp_path / "temp"
    busy = write(temp / "h1" / "busy.bin", b"b" * 10, age=OLD)
    write(temp / "h1" / "fresh.bin", b"f")  # so busy.bin is a file action of its own
    busy_in_folder = write(temp / "h2" / "busy.bin", b"c" * 10, age=OLD)  # a folder action
    idle = write(temp / "h3" / "idle.bin", b"i" * 10, age=OLD)
    hold(
        holder,
        f"""
        import sys, time
        a = open({str(busy)!r}, "rb")
        b = open({str(busy_in_folder)!r}, "rb")
        print("ready", flush=True)
        time.sleep(60)
    """,
    )
    plan = build_plan([temp_root(temp)], RuleSet(older_than=DAY, age_by=MTIME), now=time.time())
    assert [(a.rel, a.is_dir) for a in plan.actions] == [
        ("h1/busy.bin", False),
        ("h2", True),
        ("h3", True),
    ]

    result = apply_plan(plan)  # the real /proc snapshot

    assert busy.exists() and busy_in_folder.exists() and not idle.exists()
    skipped = [o for o in result.outcomes if o.status is Status.SKIPPED]
    assert [o.action.rel for o in skipped] == ["h1/busy.bin", "h2"]
    assert all("open by process" in (o.detail or "") for o in skipped)


def test_mapped_file_is_spared(tmp_path: Path, holder: list[subprocess.Popen[bytes]]) -> None:
    """A mapping outlives its descriptor: /proc/<pid>/maps still shows it."""
    temp = tmp_path / "temp"
    mapped = write(temp / "h1" / "mapped.bin", b"m" * 8192, age=OLD)
    hold(
        holder,
        f"""
        import mmap, os, time
        fd = os.open({str(mapped)!r}, os.O_RDONLY)
        m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        os.close(fd)
        print("ready", flush=True)
        time.sleep(60)
    """,
    )
    st = mapped.stat()
    assert snapshot().why(st.st_dev, st.st_ino) is not None
    plan = build_plan([temp_root(temp)], RuleSet(older_than=DAY, age_by=MTIME), now=time.time())
    result = apply_plan(plan)
    assert mapped.exists()
    assert result.outcomes[0].status is Status.SKIPPED


def test_flock_is_seen_in_proc_locks(tmp_path: Path, holder: list[subprocess.Popen[bytes]]) -> None:
    locked = write(tmp_path / "locked.bin", b"l")
    hold_flock(holder, locked)
    st = locked.stat()
    snap = snapshot()
    assert (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino) in snap.locked


def test_fifo_is_never_opened(tmp_path: Path) -> None:
    """A FIFO inside an orphaned session is unlinked; nothing ever blocks opening it."""
    app_dir = tmp_path / "app"
    session = app_dir / JS_SESSION
    write(session / "f.txt", b"x", age=2 * HOUR)
    os.mkfifo(session / "pipe")
    set_age(session / "pipe", 2 * HOUR)
    set_age(session, 2 * HOUR)
    os.mkfifo(app_dir / "top-fifo")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gradio_clean",
            "prune",
            str(app_dir),
            "--orphaned-sessions",
            "--duplicates",
            "--older-than",
            "1m",
            "--age-by",
            "mtime",
            "--apply",
            "--json",
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert not session.exists()
    assert (app_dir / "top-fifo").exists()


def test_dangerous_roots_are_refused(runner: CliRunner, tmp_path: Path) -> None:
    for path in ("/", "/tmp", str(Path.home())):
        if not Path(path).is_dir():
            continue
        result = runner.invoke(app, ["prune", path, *OLDER_1D, "--apply"])
        assert result.exit_code == ExitCode.USAGE, (path, result.output)
        assert "refusing to prune" in result.stderr
        assert "Traceback" not in result.output


def test_second_run_waits_then_gives_up(
    runner: CliRunner, tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    temp = tmp_path / "temp"
    old = write(temp / SHA256_A / "old.bin", b"o", age=OLD)
    hold_lock(holder, temp)
    started = time.monotonic()
    result = runner.invoke(app, ["prune", str(temp), *OLDER_1D, "--apply", "--wait", "0.5"])
    waited = time.monotonic() - started
    assert result.exit_code == ExitCode.BUSY
    assert "another gradio-clean run" in result.stderr
    assert waited >= 0.5
    assert old.exists()


def test_non_utf8_names_are_deleted_and_reported(runner: CliRunner, tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    weird = os.fsdecode(b"caf\xe9-\xff.bin")
    write(temp / SHA256_A / weird, b"w", age=OLD)
    write(temp / SHA256_A / "keep", b"k")
    result = runner.invoke(app, ["prune", str(temp), *OLDER_1D, "--apply", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [a["path"] for a in doc["actions"]] == [str(temp / SHA256_A / "caf\\xe9-\\xff.bin")]
    assert doc["actions"][0]["status"] == "deleted"
    assert os.listdir(temp / SHA256_A) == ["keep"]


def _as_nobody(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run gradio-clean unprivileged: the only way to meet EACCES when tests run as root."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    return subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-m",
            "gradio_clean",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A folder another user can reach (pytest's own tmp_path is 0700 under root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the tree to another user")
    base = Path(tempfile.mkdtemp(prefix="gradio-clean-test-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def test_permission_error_is_recorded_and_the_run_goes_on(world_dir: Path) -> None:
    base = world_dir
    temp = base / "temp"
    locked_dir = temp / SHA256_A
    write(locked_dir / "old.bin", b"x", age=OLD)
    write(locked_dir / "fresh", b"")
    mine = write(temp / SHA256_B / "old.bin", b"y", age=OLD)
    write(temp / SHA256_B / "fresh", b"")
    for p in (temp, temp / SHA256_B):
        os.chown(p, 65534, 65534)
    os.chown(mine, 65534, 65534)
    locked_dir.chmod(0o755)  # readable, not writable by nobody

    proc = _as_nobody(["prune", str(temp), *OLDER_1D, "--apply", "--json"], base)

    assert proc.returncode == ExitCode.PARTIAL, proc.stderr
    doc = json.loads(proc.stdout)
    status = {Path(a["path"]).parent.name: a["status"] for a in doc["actions"]}
    assert status == {SHA256_A: "failed", SHA256_B: "deleted"}
    assert (locked_dir / "old.bin").exists() and not mine.exists()


def test_never_crosses_a_mount(tmp_path: Path) -> None:
    """A tmpfs mounted inside an old hash folder, in a private mount namespace."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    temp = tmp_path / "temp"
    write(temp / SHA256_A / "old.bin", b"o", age=OLD)
    mnt = temp / SHA256_A / "mnt"
    mnt.mkdir()
    set_age(mnt, OLD)
    set_age(temp / SHA256_A, OLD)
    script = f"""
        set -e
        mount -t tmpfs none {mnt}
        printf x > {mnt}/on-tmpfs.bin
        touch -d '10 days ago' {mnt}/on-tmpfs.bin {mnt}
        {sys.executable} -m gradio_clean prune {temp} --older-than 1d --age-by mtime \\
            --apply --json \\
            > {tmp_path}/out.json || true
        test -e {mnt}/on-tmpfs.bin && echo survived
    """
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "mount:" in proc.stderr:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    assert proc.stdout.strip() == "survived", proc.stderr
    doc = json.loads((tmp_path / "out.json").read_text())
    # The planner saw the mount: only the file beside it is planned, never the folder.
    assert [(a["type"], a["status"]) for a in doc["actions"]] == [("file", "deleted")]
    assert any("another filesystem" in w["message"] for w in doc["warnings"])


def test_a_mount_that_appears_after_planning_is_not_entered(tmp_path: Path) -> None:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    temp = tmp_path / "temp"
    write(temp / SHA256_A / "old.bin", b"o", age=OLD)
    mnt = temp / SHA256_A / "mnt"
    mnt.mkdir()
    set_age(mnt, OLD)
    set_age(temp / SHA256_A, OLD)
    code = f"""
        import os, subprocess, time
        from gradio_clean.classify import Role
        from gradio_clean.apply import apply_plan
        from gradio_clean.roots import Root
        from gradio_clean.rules import AgeBy, RuleSet, build_plan
        rules = RuleSet(older_than=86400, age_by=AgeBy.MTIME)
        plan = build_plan([Root({str(temp)!r}, Role.TEMP, "t")], rules, now=time.time())
        assert [a.is_dir for a in plan.actions] == [True], plan.actions
        subprocess.run(["mount", "-t", "tmpfs", "none", {str(mnt)!r}], check=True)
        with open({str(mnt)!r} + "/on-tmpfs.bin", "w") as fh:
            fh.write("x")
        old = time.time() - 10 * 86400
        for p in ({str(mnt)!r} + "/on-tmpfs.bin", {str(mnt)!r}):
            os.utime(p, (old, old))
        result = apply_plan(plan, why=lambda dev, ino: None)
        print(result.outcomes[0].status.value, result.outcomes[0].detail)
        print(os.path.exists({str(mnt)!r} + "/on-tmpfs.bin"))
    """
    proc = subprocess.run(
        ["unshare", "-m", sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    if "mount:" in proc.stderr:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    status, survived = proc.stdout.strip().splitlines()
    assert status.startswith("skipped") and "mount" in status
    assert survived == "True"
    assert (temp / SHA256_A / "old.bin").exists()  # verification runs before any deletion


def test_a_folder_on_the_way_bind_mounted_after_planning_is_not_entered(tmp_path: Path) -> None:
    """A file action's folder replaced, after planning, by a bind mount of the same
    filesystem: same st_dev, so only the mount id read from the descriptor opened (one
    statx with its fstat) tells it apart. The file of the same name there stays."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    temp, elsewhere = tmp_path / "temp", tmp_path / "elsewhere"
    write(temp / SHA256_A / "old.bin", b"o", age=OLD)
    write(temp / SHA256_A / "new.bin", b"n")  # a file action, not the whole folder
    kept = write(elsewhere / "old.bin", b"o", age=OLD)
    code = f"""
        import os, subprocess, time
        from gradio_clean.classify import Role
        from gradio_clean.apply import apply_plan
        from gradio_clean.roots import Root
        from gradio_clean.rules import AgeBy, RuleSet, build_plan
        rules = RuleSet(older_than=86400, age_by=AgeBy.MTIME)
        plan = build_plan([Root({str(temp)!r}, Role.TEMP, "t")], rules, now=time.time())
        assert [(a.rel, a.is_dir) for a in plan.actions] == [
            ({SHA256_A + "/old.bin"!r}, False)], plan.actions
        subprocess.run(["mount", "--bind", {str(elsewhere)!r}, {str(temp / SHA256_A)!r}],
                       check=True)
        result = apply_plan(plan, why=lambda dev, ino: None)
        print(result.outcomes[0].status.value, result.outcomes[0].detail)
    """
    stdout = run_in_private_mounts(code)
    assert stdout.strip() == f"skipped {SHA256_A} on the way is on another filesystem", stdout
    assert kept.read_bytes() == b"o" and (temp / SHA256_A / "old.bin").exists()


def test_workers_apply_exactly_what_one_process_does(tmp_path: Path) -> None:
    """The same plan on two identical trees: forked workers change no outcome."""
    from tests.conftest import build_gradio_tree

    results = []
    for jobs, name in ((1, "serial"), (3, "parallel")):
        tree = build_gradio_tree(tmp_path / name)
        roots = [Root(str(tree.temp), Role.TEMP, "t"), Root(str(tree.app), Role.APP, "t")]
        rules = RuleSet(older_than=DAY, orphaned_sessions=True, duplicates=True, age_by=MTIME)
        plan = build_plan(roots, rules, now=time.time())
        assert len(plan.actions) > 8
        result = apply_plan(plan, why=never_busy, jobs=jobs)
        # Which of two hard links goes last (and frees the bytes) may differ between
        # processes; what each action did and the total freed may not.
        outcomes = [
            (os.path.relpath(o.action.path, tmp_path / name), o.status) for o in result.outcomes
        ]
        left = sorted(
            os.path.relpath(os.path.join(d, f), tmp_path / name)
            for d, dirs, files in os.walk(tmp_path / name)
            for f in dirs + files
        )
        removed = [os.path.relpath(p, tmp_path / name) for p in result.folders_removed]
        results.append((outcomes, left, removed, result.freed_bytes, result.freed_files))
    assert results[0] == results[1]
    statuses = {status for _, status in results[0][0]}
    assert statuses == {Status.DELETED, Status.LINKED}  # duplicates are linked, not deleted


# -- duplicates: linked, not deleted; sessions; interrupted links (issues 7, 13, 14) ------


def prune_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["prune", *args, "--json"])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def test_linked_duplicates_say_linked_in_summary_json_and_metrics(
    runner: CliRunner, tmp_path: Path
) -> None:
    temp = tmp_path / "temp"
    data = os.urandom(3000)
    keep = write(temp / SHA256_A / "photo.png", data)
    extras = [write(temp / f"{i:064x}" / "photo.png", data, age=DAY) for i in range(3)]
    dry = runner.invoke(app, ["prune", str(temp), "--duplicates"])
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[-2:] == [
        "Would link 3 copies, freeing 8.8 KiB.",
        "Dry run: nothing was deleted or linked. Re-run with --apply to link.",
    ]
    metrics = tmp_path / "m.prom"
    args = ["prune", str(temp), "--duplicates", "--apply", "--metrics-file", str(metrics)]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[-1] == "Linked 3 copies, freed 8.8 KiB."
    assert "Freed" not in done.stdout  # nothing was deleted
    lines = metrics.read_text().splitlines()
    assert 'gradio_clean_linked_files{rule="duplicates"} 3' in lines
    assert 'gradio_clean_freed_bytes{rule="duplicates"} 9000' in lines
    assert 'gradio_clean_freed_files{rule="duplicates"} 0' in lines
    assert all(os.stat(p).st_ino == os.stat(keep).st_ino for p in extras)

    for p in extras:  # the same again, as JSON: the dry run promises what apply does
        p.unlink()
        write(p, data, age=DAY)
    would = prune_json(runner, str(temp), "--duplicates")["totals"]["would_free"]
    assert would == {"files": 0, "folders": 0, "bytes": 9000}  # linked paths stay
    doc = prune_json(runner, str(temp), "--duplicates", "--apply")
    assert doc["schema_version"] == 2
    assert [a["status"] for a in doc["actions"]] == ["linked"] * 3
    totals = doc["totals"]
    assert (totals["deleted"], totals["linked"], totals["freed_bytes"]) == (0, 3, 9000)
    assert (totals["freed_files"], totals["freed_bytes"]) == (would["files"], would["bytes"])


def test_session_duplicates_are_reported_never_linked(runner: CliRunner, tmp_path: Path) -> None:
    """An app rewrites its own session files: a link would carry one session's writes into
    another. Deleted only with --dedupe delete and an explicit --category session."""
    app_dir = tmp_path / "app"
    state = b'{"step": 1, "user": "same"}' * 20
    a = write(app_dir / JS_SESSION / "state.json", state, age=HOUR)
    b = write(app_dir / "p0q1r2s3t4" / "state.json", state)

    for extra in ((), ("--dedupe", "delete"), ("--category", "session")):
        doc = prune_json(runner, str(app_dir), "--duplicates", "--apply", *extra)
        assert doc["actions"] == [], extra
        assert [(r["path"], r["status"]) for r in doc["reported"]] == [(str(a), "reported")]
        assert doc["totals"]["reported"] == 1
        assert os.stat(a).st_ino != os.stat(b).st_ino
    shown = runner.invoke(app, ["prune", str(app_dir), "--duplicates"])
    assert "duplicates shown only (not linked)" in shown.stdout
    assert "1 duplicate session file shown only, never linked" in shown.stdout
    b.write_text("session B only")  # what the app does; A must not see it
    assert a.read_bytes() == state

    write(b, state)
    args = ("--duplicates", "--apply", "--dedupe", "delete", "--category", "session")
    doc = prune_json(runner, str(app_dir), *args)
    assert [(x["path"], x["status"]) for x in doc["actions"]] == [(str(a), "deleted")]
    assert not a.exists() and b.read_bytes() == state


PRUNE = (sys.executable, "-m", "gradio_clean", "prune")


def test_a_kill_between_link_and_rename_is_cleaned_up_by_a_later_run(tmp_path: Path) -> None:
    """SIGKILL a real `prune --duplicates --apply` mid-run; no copy is ever lost, and the
    next run removes the temporary links it left once they are old, and nothing else."""
    temp = tmp_path / "temp"
    data = os.urandom(200)
    keep = temp / SHA256_A / "keep.bin"
    extras = [temp / SHA256_B / f"{i:05}.bin" for i in range(3000)]
    rng = random.Random(1)
    trials = strays_seen = 0
    end = time.monotonic() + 40
    while trials < 15 and time.monotonic() < end:
        trials += 1
        shutil.rmtree(temp, ignore_errors=True)
        write(keep, data)
        for p in extras:
            write(p, data, age=DAY)
        proc = subprocess.Popen(
            [*PRUNE, str(temp), "--duplicates", "--apply", "--yes", "--quiet"],
            env=cli_env(GRADIO_TEMP_DIR=str(temp)),
        )
        ino = os.stat(keep).st_ino
        while proc.poll() is None and os.stat(extras[0]).st_ino != ino:
            time.sleep(0.001)  # wait for the first link
        time.sleep(rng.uniform(0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        strays = [p for p in (temp / SHA256_B).iterdir() if is_our_temp_name(p.name)]
        strays_seen += len(strays)
        for p in extras:  # every path still answers with its content
            assert p.read_bytes() == data
        if strays:
            break
    print(f"{trials} kills, {strays_seen} temporary links left")

    # One stray made exactly as the tool makes them, plus two that must stay: a file of
    # the same shape that is no hard link, and (below) any stray while it is young.
    planted = temp / SHA256_B / temp_link_name()
    os.link(keep, planted)
    lone = write(temp / SHA256_B / temp_link_name(), b"not a link")
    strays = [p for p in (temp / SHA256_B).iterdir() if is_our_temp_name(p.name) and p != lone]
    root, rules = temp_root(temp), RuleSet(duplicates=True)

    young = build_plan([root], rules, now=time.time())
    assert not [a for a in young.actions if a.stray_link]
    assert category_in_hash_dir(planted.name, False, 1) is Category.LEFTOVER

    later = build_plan([root], rules, now=time.time() + 2 * HOUR)
    assert sorted(a.path for a in later.actions if a.stray_link) == sorted(map(str, strays))
    result = apply_plan(later, why=never_busy, jobs=1)
    assert result.complete, [o.detail for o in result.outcomes if o.detail]
    left = [p.name for p in (temp / SHA256_B).iterdir() if is_our_temp_name(p.name)]
    assert left == [lone.name]
    assert all(os.stat(p).st_ino == os.stat(keep).st_ino for p in extras)
    assert keep.read_bytes() == data


def test_a_stray_that_is_no_longer_a_link_is_left_alone_at_apply(tmp_path: Path) -> None:
    """Planned while a link, its other name removed before apply: it may be the only copy."""
    temp = tmp_path / "temp"
    keep = write(temp / SHA256_A / "keep.bin", b"content" * 10)
    stray = temp / SHA256_A / temp_link_name()
    os.link(keep, stray)
    plan = build_plan([temp_root(temp)], RuleSet(duplicates=True), now=time.time() + 2 * HOUR)
    assert [a.path for a in plan.actions] == [str(stray)]
    keep.unlink()
    (outcome,) = apply_plan(plan, why=never_busy, jobs=1).outcomes
    assert outcome.status is Status.SKIPPED
    assert stray.read_bytes() == b"content" * 10


def test_workers_link_every_copy_of_a_set_spread_over_many_items(tmp_path: Path) -> None:
    """Each link moves the kept copy's ctime; a set must not trip over its own links."""
    temp = tmp_path / "temp"
    data = os.urandom(500)
    keep = write(temp / SHA256_A / "keep.bin", data)
    extras = [write(temp / f"{i:064x}" / "copy.bin", data, age=DAY) for i in range(1200)]
    plan = build_plan([temp_root(temp)], RuleSet(duplicates=True), now=time.time())
    result = apply_plan(plan, why=never_busy, jobs=3)
    assert result.count(Status.LINKED) == len(extras), {o.detail for o in result.outcomes}
    assert {os.stat(p).st_ino for p in extras} == {os.stat(keep).st_ino}


def test_a_killed_worker_share_is_planned_and_done_again(tmp_path: Path) -> None:
    """SIGKILL a real forked worker while planning, then another while deleting: each
    share is done again in the parent (every action re-checked, what the dead worker
    deleted found already gone), so the plan and the files deleted equal an undisturbed
    run's. A worker killed between claiming a file and unlinking it leaves that one
    file under its claimed name (`.gradio-clean-<hex>.del`, a leftover: README)."""

    def tree(name: str) -> Root:
        temp = tmp_path / name
        for i in range(3000):  # an old and a new file each: 3000 single-file actions
            write(temp / f"{i:064x}" / "old.bin", b"o" * (i % 50), age=OLD)
            write(temp / f"{i:064x}" / "new.bin", b"n")
        return temp_root(temp)

    def run(root: Root, jobs: int) -> tuple[tuple[list[str], list[Status], list[str]], bool]:
        planner, applier = WorkerKiller(), WorkerKiller()
        rules = RuleSet(older_than=DAY, age_by=MTIME)
        plan = build_plan([root], rules, now=time.time(), jobs=jobs, progress=planner)
        result = apply_plan(plan, why=never_busy, jobs=jobs, progress=applier)
        every = sorted(str(p.relative_to(root.path)) for p in Path(root.path).rglob("*"))
        left = [rel for rel in every if not is_our_temp_name(rel.rpartition("/")[2])]
        assert len(every) - len(left) <= (1 if applier.killed else 0), every
        done = [a.rel for a in plan.actions], [o.status for o in result.outcomes], left
        return done, bool(planner.killed and applier.killed)

    undisturbed, _ = run(tree("serial"), 1)
    assert len(undisturbed[0]) == 3000
    assert set(undisturbed[1]) == {Status.DELETED}
    deadline = time.monotonic() + 120
    for trial in range(3):  # a trial counts if both workers were caught still busy
        disturbed, both_killed = run(tree(f"killed{trial}"), 3)
        assert disturbed == undisturbed
        if both_killed or time.monotonic() > deadline:
            break
    assert both_killed, "no worker was caught still busy"
