"""A folder goes whole or not at all: what cannot be removed is found before anything is."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Role
from gradio_clean.plan import Status
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from tests.conftest import (
    HOUR,
    JS_SESSION,
    give_to_nobody,
    mark_folder,
    run_in_private_mounts,
    run_unprivileged,
    set_age,
    write,
)


def never_busy(_dev: int, _ino: int) -> str | None:
    return None


def old_session(app_dir: Path) -> Path:
    session = app_dir / JS_SESSION
    write(session / "a.txt", b"a", age=2 * HOUR)
    write(session / "sub" / "b.txt", b"b", age=2 * HOUR)
    write(session / "sub2" / "c.txt", b"c", age=2 * HOUR)
    for p in (session / "sub", session / "sub2", session):
        set_age(p, 2 * HOUR)
    return session


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("flag", "where"),
    [("+i", "sub/b.txt"), ("+i", "sub"), ("+a", "sub"), ("+i", ".")],
    ids=["immutable-file", "immutable-subfolder", "append-only-subfolder", "immutable-session"],
)
def test_a_chattr_flag_leaves_the_session_whole(
    tmp_path: Path, immutable: list[Path], flag: str, where: str
) -> None:
    session = old_session(tmp_path / "app")
    frozen = session / where
    made = subprocess.run(["chattr", flag, str(frozen)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"this filesystem has no such flag: {made.stderr!r}")
    immutable.append(frozen)
    before = files_under(session)
    plan = build_plan(
        [Root(str(tmp_path / "app"), Role.APP, "t")],
        RuleSet(age_by=AgeBy.MTIME, orphaned_sessions=True),
        now=time.time(),
    )
    assert [a.rel for a in plan.actions] == [JS_SESSION]

    result = apply_plan(plan, why=never_busy)

    outcome = result.outcomes[0]
    assert outcome.status is Status.SKIPPED
    assert "immutable or append-only" in (outcome.detail or "")
    assert files_under(session) == before  # nothing went before the refusal
    assert outcome.freed_files == 0


def test_an_unwritable_subfolder_leaves_its_session_whole(world_dir: Path) -> None:
    """Run without root: a subfolder another user owns cannot be emptied, so nothing goes."""
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the tree to another user")
    app_dir = world_dir / "app"
    session = old_session(app_dir)
    give_to_nobody(world_dir)
    os.chown(session / "sub", 0, 0)  # root's: mode 0755, nobody may not remove b.txt
    for folder in (session / "sub", session):
        set_age(folder, 2 * HOUR)
    before = files_under(session)

    def plan_only() -> int:
        return len(build_plan([Root(str(app_dir), Role.APP, "t")], rules, now=time.time()).actions)

    def prune() -> tuple[str, str | None, int]:
        plan = build_plan([Root(str(app_dir), Role.APP, "t")], rules, now=time.time())
        outcome = apply_plan(plan, why=never_busy).outcomes[0]
        return outcome.status.value, outcome.detail, outcome.freed_files

    rules = RuleSet(age_by=AgeBy.MTIME, orphaned_sessions=True)
    status, detail, freed = run_unprivileged(prune, warm_up=plan_only)

    assert (status, freed) == ("skipped", 0), detail
    assert "no permission" in (detail or "")
    assert files_under(session) == before


def test_a_bind_mount_of_the_same_filesystem_is_not_entered(tmp_path: Path) -> None:
    """Same st_dev, another place: only the mount id of the descriptor tells them apart."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    app_dir, elsewhere = tmp_path / "app", tmp_path / "elsewhere"
    session = old_session(app_dir)
    kept = write(elsewhere / "precious.txt", b"not in the session", age=3 * HOUR)
    set_age(elsewhere, 3 * HOUR)  # as old as the session: only the mount gives it away
    code = f"""
        import os, subprocess, time
        from gradio_clean.classify import Role
        from gradio_clean.apply import apply_plan
        from gradio_clean.roots import Root
        from gradio_clean.rules import AgeBy, RuleSet, build_plan
        plan = build_plan([Root({str(app_dir)!r}, Role.APP, "t")],
                          RuleSet(age_by=AgeBy.MTIME, orphaned_sessions=True), now=time.time())
        assert [a.rel for a in plan.actions] == [{JS_SESSION!r}], plan.actions
        subprocess.run(["mount", "--bind", {str(elsewhere)!r}, {str(session / "sub")!r}],
                       check=True)
        result = apply_plan(plan, why=lambda dev, ino: None)
        print(result.outcomes[0].status.value, result.outcomes[0].detail)
    """
    stdout = run_in_private_mounts(code)
    assert stdout.startswith("skipped"), stdout
    assert "another filesystem" in stdout
    assert kept.read_bytes() == b"not in the session"


def _swap(session: Path, outside: Path, into: str) -> None:
    """Put something else at the planned folder's name; the session itself moves away."""
    session.rename(session.with_name("moved-away"))
    if into == "symlink":
        session.symlink_to(outside, target_is_directory=True)
    elif into == "file":
        write(session, b"a file now", age=2 * HOUR)
    else:  # another folder, as old as the session and holding the same names
        shutil.copytree(outside, session)
        for p in (session, *session.rglob("*")):
            set_age(p, 2 * HOUR)


@pytest.mark.parametrize("into", ["symlink", "file", "folder"])
def test_a_planned_folder_swapped_after_planning_is_skipped_untouched(
    tmp_path: Path, into: str
) -> None:
    """The planned folder is opened (O_NOFOLLOW | O_DIRECTORY) and checked through its
    descriptor, with no lstat of its name first: whatever took its name is refused, in
    the words the identity check gives, and nothing there or outside is removed."""
    app_dir, outside = tmp_path / "app", tmp_path / "outside"
    session = old_session(app_dir)
    shutil.copytree(session, outside)
    for p in (outside, *outside.rglob("*")):
        set_age(p, 2 * HOUR)
    plan = build_plan(
        [Root(str(app_dir), Role.APP, "t")],
        RuleSet(age_by=AgeBy.MTIME, orphaned_sessions=True),
        now=time.time(),
    )
    assert [a.rel for a in plan.actions] == [JS_SESSION]
    outside_before = files_under(outside)
    _swap(session, outside, into)

    outcome = apply_plan(plan, why=never_busy).outcomes[0]

    assert (outcome.status, outcome.detail) == (
        Status.SKIPPED,
        "replaced since planning (another inode)",
    )
    assert outcome.freed_files == 0
    assert files_under(outside) == outside_before
    assert files_under(app_dir / "moved-away") == ["a.txt", "sub/b.txt", "sub2/c.txt"]
    assert os.path.lexists(session)
    if into == "folder":
        assert files_under(session) == outside_before


def test_a_mount_over_the_planned_folder_itself_is_not_entered(tmp_path: Path) -> None:
    """A tmpfs mounted on the planned folder after planning: the folder opened by its name
    is the tmpfs's root, another inode than planned, and nothing on the tmpfs (nor under
    it) is removed. Worded as when the name's lstat was checked before the open."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    app_dir = tmp_path / "app"
    session = old_session(app_dir)
    code = f"""
        import os, subprocess, time
        from gradio_clean.classify import Role
        from gradio_clean.apply import apply_plan
        from gradio_clean.roots import Root
        from gradio_clean.rules import AgeBy, RuleSet, build_plan
        plan = build_plan([Root({str(app_dir)!r}, Role.APP, "t")],
                          RuleSet(age_by=AgeBy.MTIME, orphaned_sessions=True), now=time.time())
        assert [a.rel for a in plan.actions] == [{JS_SESSION!r}], plan.actions
        subprocess.run(["mount", "-t", "tmpfs", "none", {str(session)!r}], check=True)
        with open({str(session / "on-tmpfs.txt")!r}, "w") as fh:
            fh.write("x")
        old = time.time() - 3 * 3600
        for p in ({str(session / "on-tmpfs.txt")!r}, {str(session)!r}):
            os.utime(p, (old, old))
        result = apply_plan(plan, why=lambda dev, ino: None)
        print(result.outcomes[0].status.value, result.outcomes[0].detail)
        print(os.path.exists({str(session / "on-tmpfs.txt")!r}))
    """
    stdout = run_in_private_mounts(code)
    status, survived = stdout.strip().splitlines()
    assert status == "skipped replaced since planning (another inode)"
    assert survived == "True"
    assert files_under(session) == ["a.txt", "sub/b.txt", "sub2/c.txt"]  # under the mount


def test_a_folder_holding_two_names_of_one_inode_goes_whole(tmp_path: Path) -> None:
    """Removing one name moves the inode's ctime, which the other name's own check sees:
    a name going is no change to the file (--duplicates links copies in one folder)."""
    temp = tmp_path / "gradio"
    folder = temp / f"{7:064x}"
    first = write(folder / "image.png", b"x" * 5000, age=40 * 86400)
    os.link(first, folder / "image (1).png")
    os.link(first, folder / "image (2).png")
    set_age(folder, 40 * 86400)
    plan = build_plan(
        [Root(str(temp), Role.TEMP, "test")],
        RuleSet(older_than=30 * 86400, age_by=AgeBy.MTIME),
        now=time.time(),
        jobs=1,
    )
    result = apply_plan(plan, why=never_busy, jobs=1)
    assert [(o.status, o.detail) for o in result.outcomes] == [(Status.DELETED, None)]
    assert not folder.exists()
    assert (result.freed_bytes, result.freed_files) == (5000, 3)


def test_a_folder_removing_a_name_of_the_kept_copy_does_not_spoil_its_link(
    tmp_path: Path,
) -> None:
    """The budget evicts a folder holding one name of the copy a duplicate is linked to:
    that unlink moves the kept inode's ctime. It is the run's own change, noted like a
    file action's, so the link is still made (found by tests/test_truth.py)."""
    temp = tmp_path / "gradio"
    content = b"same bytes" * 100
    keep = write(temp / f"{1:064x}" / "keep.bin", content)  # its folder is protected:
    os.symlink("keep.bin", temp / f"{1:064x}" / "link")  # a symlink inside
    (temp / f"{2:064x}").mkdir()  # evicted: it holds only another name of the kept copy
    os.link(keep, temp / f"{2:064x}" / "other-name.bin")
    copy = write(temp / f"{3:064x}" / "copy.bin", content, age=HOUR)
    os.symlink("copy.bin", temp / f"{3:064x}" / "link")
    rules = RuleSet(duplicates=True, max_size=0, min_age=0)
    plan = build_plan([Root(str(temp), Role.TEMP, "test")], rules, now=time.time())
    assert [(a.rel, a.keep) for a in plan.actions] == [
        (f"{2:064x}", None),
        (f"{3:064x}/copy.bin", str(keep)),
    ]
    result = apply_plan(plan, why=never_busy, jobs=1)
    assert [(o.status, o.detail) for o in result.outcomes] == [
        (Status.DELETED, None),
        (Status.LINKED, None),
    ]
    assert copy.stat().st_ino == keep.stat().st_ino
    assert not (temp / f"{2:064x}").exists()


@pytest.mark.parametrize("shape", ["nested temp dir", "session sub-folder"])
def test_a_subfolder_marked_by_a_live_app_since_the_last_snapshot_keeps_the_folder_whole(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]], shape: str
) -> None:
    """attach() flocks the item folder of a file a page shows, relative to *its* roots:
    an app whose GRADIO_TEMP_DIR is a folder inside the temp dir a cron run cleans
    (/tmp/gradio/app1) marks /tmp/gradio/app1/<hash>, a subfolder of the `other`
    folder the run removes whole; a worker following systemd-tmpfiles' convention
    flocks its job folder in a session. Taken after the run's last /proc snapshot,
    only the flock shows it: the whole folder is skipped, and nothing of it goes.
    On a87893a the marked folder was emptied and removed with the rest."""
    if shape == "nested temp dir":
        root = Root(str(tmp_path / "temp"), Role.TEMP, "test")
        top = tmp_path / "temp" / "app1"
        marked = top / f"{7:064x}"
    else:
        root = Root(str(tmp_path / "app"), Role.APP, "test")
        top = tmp_path / "app" / JS_SESSION
        marked = top / "outputs"
    for rel in ["a.txt", f"{marked.relative_to(top)}/shown.webp", "zz/b.txt"]:
        write(top / rel, b"x", age=3 * HOUR)
    for folder in (marked, top / "zz", top):
        set_age(folder, 3 * HOUR)
    plan = build_plan([root], RuleSet(older_than=HOUR, age_by=AgeBy.MTIME), now=time.time())
    assert [a.rel for a in plan.actions] == [top.name]
    mark_folder(holder, marked)
    (outcome,) = apply_plan(plan, why=never_busy, jobs=1).outcomes
    assert outcome.status is Status.SKIPPED, outcome.detail
    assert outcome.detail == f"{marked.name} is locked by another process (flock)"
    assert files_under(top) == sorted(["a.txt", f"{marked.name}/shown.webp", "zz/b.txt"])
