"""unlink_checked: a name goes only if it is still the entry surveyed, and only this
run's own unlinks excuse a moved ctime. One statx reads what lstat and the chattr flag read."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from gradio_clean.removal import (
    Ctimes,
    Mount,
    Refused,
    remove_tree,
    seen,
    survey,
    unlink_checked,
    unlink_noting,
)
from gradio_clean.statx import frozen, fstat_mount, lstat_frozen, mount_and_frozen, mount_id
from tests.conftest import DAY, mark_folder, write


def never_busy(_dev: int, _ino: int) -> str | None:
    return None


def two_names(tmp_path: Path) -> tuple[int, Path, Path]:
    """A folder's descriptor, a file in it, and a second name of that file elsewhere."""
    folder = tmp_path / "folder"
    first = write(folder / "a.bin", b"old bytes", age=40 * DAY)
    other = tmp_path / "elsewhere.bin"
    os.link(first, other)
    return os.open(folder, os.O_RDONLY | os.O_DIRECTORY), first, other


def test_a_name_of_the_file_removed_by_this_run_is_no_change(tmp_path: Path) -> None:
    fd, first, other = two_names(tmp_path)
    try:
        want = seen(first.stat())
        ctimes: Ctimes = {}
        time.sleep(0.05)  # past the coarse clock's tick, so the unlink moves the ctime
        dir_fd = os.open(other.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert unlink_noting(dir_fd, other.name, other.stat(), ctimes)
        finally:
            os.close(dir_fd)
        now = first.stat()
        assert (now.st_nlink, now.st_ctime_ns == want[5]) == (1, False)
        assert list(ctimes) == [(now.st_dev, now.st_ino)]
        assert list(ctimes[(now.st_dev, now.st_ino)])[-1] == now.st_ctime_ns
        assert unlink_checked(fd, first.name, want, never_busy, ctimes) is not None
        assert not first.exists()
    finally:
        os.close(fd)


def test_a_file_rewritten_while_another_process_drops_a_name_is_refused(
    tmp_path: Path,
) -> None:
    """Its size and mtime restored and its link count fallen, but its ctime moved by
    someone else: the bytes may be new. It stays (the old check let it go)."""
    fd, first, other = two_names(tmp_path)
    try:
        before = first.stat()
        want = seen(before)
        time.sleep(0.05)  # past the coarse clock's tick, so the ctime moves
        other.unlink()  # someone else's unlink: the link count falls
        first.write_bytes(b"new bytes")  # the same size, and the mtime put back
        os.utime(first, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert seen(first.stat())[:5] == want[:5] and first.stat().st_nlink == 1
        with pytest.raises(Refused, match="changed while being removed"):
            unlink_checked(fd, first.name, want, never_busy, {})
        assert first.read_bytes() == b"new bytes"
    finally:
        os.close(fd)


def test_a_name_replaced_before_its_unlink_is_left(tmp_path: Path) -> None:
    """unlink_noting drops nothing when the name is no longer the inode it was told of."""
    fd, first, _ = two_names(tmp_path)
    try:
        st = first.stat()
        first.unlink()
        write(first, b"another file")
        assert not unlink_noting(fd, first.name, st, {})
        assert first.read_bytes() == b"another file"
    finally:
        os.close(fd)


# The fields os.stat fills on Linux, compared between it and one statx.
_FIELDS = (
    "st_mode", "st_ino", "st_dev", "st_nlink", "st_uid", "st_gid", "st_size",
    "st_atime_ns", "st_mtime_ns", "st_ctime_ns", "st_atime", "st_mtime", "st_ctime",
    "st_blksize", "st_blocks", "st_rdev",
)  # fmt: skip


def _fields(st: os.stat_result) -> tuple[object, ...]:
    return (*(getattr(st, f) for f in _FIELDS), tuple(st))


def test_one_statx_reads_what_lstat_and_the_chattr_flag_read(tmp_path: Path) -> None:
    """The survey's stat and flag of each name, and a folder descriptor's fstat, mount id
    and flag, now come from one statx each: every field os.stat gives is the same, for
    every kind of entry the survey meets, and the flag and mount id are frozen()'s and
    mount_and_frozen()'s."""
    folder = tmp_path / "folder"
    write(folder / "file.bin", b"x" * 5000, age=40 * DAY)
    write(folder / "empty", b"")
    os.link(folder / "file.bin", folder / "second name")
    (folder / "sub").mkdir()
    (folder / "link").symlink_to("file.bin")
    (folder / "dangling").symlink_to("nowhere")
    os.mkfifo(folder / "fifo")
    if os.geteuid() == 0:  # a device node: never opened, but surveyed like any name
        os.mknod(folder / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    write(folder / os.fsdecode(b"caf\xe9.bin"), b"not UTF-8")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        names = os.listdir(fd)
        assert len(names) >= 8
        for name in names:
            st, flag = lstat_frozen(fd, name)
            want = os.stat(name, dir_fd=fd, follow_symlinks=False)
            assert _fields(st) == _fields(want), name
            assert flag is frozen(fd, name) is False, name
        for name in ("sub", ""):
            sub = os.open(name or ".", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            try:
                st, mnt, flag = fstat_mount(sub)
                assert _fields(st) == _fields(os.fstat(sub))
                assert (mnt, flag) == mount_and_frozen(sub)
            finally:
                os.close(sub)
        with pytest.raises(FileNotFoundError):
            lstat_frozen(fd, "no such name")
    finally:
        os.close(fd)


def test_one_statx_reads_the_chattr_flag(tmp_path: Path) -> None:
    """The flag that keeps a folder whole (an immutable file in it) read with the stat."""
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("needs root and chattr(1)")
    file = write(tmp_path / "folder" / "kept.bin", b"k")
    made = subprocess.run(["chattr", "+i", str(file)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"this filesystem has no such flag: {made.stderr!r}")
    fd = os.open(file.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        st, flag = lstat_frozen(fd, file.name)
        assert flag and frozen(fd, file.name)
        assert _fields(st) == _fields(file.lstat())
    finally:
        os.close(fd)
        subprocess.run(["chattr", "-i", str(file)], check=False)


def test_a_subfolder_flocked_between_the_survey_and_its_removal_is_left(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """remove_tree takes each subfolder's flock, exclusively and without waiting, as it
    enters it: one a live app marked after the survey stops the removal there, and
    what is in it stays (what was removed before it is gone: the survey saw no mark)."""
    top = tmp_path / "item"
    for rel in ["a.txt", "marked/shown.webp", "marked/deeper/x.bin", "zz/b.txt"]:
        write(top / rel, b"x", age=DAY)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        mount = Mount(os.fstat(fd).st_dev, mount_id(fd))
        tree = survey(fd, mount, lambda *_: None)
        mark_folder(holder, top / "marked")
        with pytest.raises(Refused, match=r"^marked is locked by another process \(flock\)$"):
            remove_tree(fd, tree, mount, never_busy, lambda _st: None)
    finally:
        os.close(fd)
    assert sorted(str(p.relative_to(top)) for p in top.rglob("*")) == [
        "marked",
        "marked/deeper",
        "marked/deeper/x.bin",
        "marked/shown.webp",
    ]


def test_a_subfolder_flocked_before_the_survey_refuses_the_folder_whole(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    top = tmp_path / "item"
    for rel in ["a.txt", "sub/marked/shown.webp"]:
        write(top / rel, b"x", age=DAY)
    mark_folder(holder, top / "sub" / "marked")
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        mount = Mount(os.fstat(fd).st_dev, mount_id(fd))
        with pytest.raises(Refused, match=r"^sub/marked is locked by another process"):
            survey(fd, mount, lambda *_: None)
    finally:
        os.close(fd)
    assert (top / "a.txt").exists() and (top / "sub/marked/shown.webp").exists()
