"""unlink_checked: a name goes only if it is still the entry surveyed, and only this
run's own unlinks excuse a moved ctime."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gradio_clean.removal import Ctimes, Refused, seen, unlink_checked, unlink_noting
from tests.conftest import DAY, write


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
        assert ctimes == {(now.st_dev, now.st_ino): now.st_ctime_ns}
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
