"""folders.py: a file beneath the root is opened in one openat2 call, or not at all."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gradio_clean.folders import Folders, NotAFolder

FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def has_openat2() -> bool:
    """Whether this kernel (and sandbox) lets the fast way run at all."""
    import ctypes

    call = ctypes.CDLL(None, use_errno=True).syscall
    call.restype = ctypes.c_long
    how = (ctypes.c_uint64 * 3)(os.O_RDONLY | os.O_DIRECTORY, 0, 0)
    fd = call(ctypes.c_long(437), ctypes.c_long(-100), b"/", ctypes.byref(how), ctypes.c_size_t(24))
    if fd < 0:
        return False
    os.close(fd)
    return True


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not has_openat2(), reason="no openat2 here")
def test_a_file_beneath_the_root_is_opened_without_its_folders(tmp_path: Path) -> None:
    """One descriptor for the file and none held for its folders: one call, not three."""
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "f").write_bytes(b"data")
    folders = Folders(str(tmp_path), FLAGS)
    try:
        before = open_fds()
        fd = folders.open_file(str(deep / "f"))
        try:
            assert open_fds() == before + 1
            assert os.read(fd, 10) == b"data"
            assert os.fstat(fd).st_ino == (deep / "f").stat().st_ino
        finally:
            os.close(fd)
    finally:
        folders.close()


def test_a_symlink_on_the_way_or_at_the_end_is_never_followed(tmp_path: Path) -> None:
    """The fast way fails on either; the slow way then names which it was."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "swapped").symlink_to(outside)
    (root / "real").mkdir()
    (root / "real" / "link").symlink_to(outside / "f")
    folders = Folders(str(root), FLAGS)
    try:
        with pytest.raises(NotAFolder):
            folders.open_file(str(root / "swapped" / "f"))
        with pytest.raises(OSError) as raised:
            folders.open_file(str(root / "real" / "link"))
        assert raised.value.errno == errno.ELOOP
        assert not isinstance(raised.value, NotAFolder)
    finally:
        folders.close()


MOUNT_CHILD = """
import errno, os, sys
sys.path.insert(0, sys.argv[2])
from gradio_clean.folders import Folders
root = sys.argv[1]
with open(os.path.join(root, "mnt", "f"), "wb") as f:
    f.write(b"on tmpfs")
folders = Folders(root, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
try:
    folders.open_file(os.path.join(root, "mnt", "f"))
except OSError as exc:
    print(errno.errorcode[exc.errno])
else:
    print("opened")
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1) to mount a tmpfs",
)
def test_a_file_on_a_mount_inside_the_root_is_not_opened(tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    script = 'mount -t tmpfs -o size=1m none "$1/mnt" && exec "$2" -c "$3" "$1" "$4"'
    repo = str(Path(__file__).resolve().parents[1])
    argv = ["unshare", "--mount", "sh", "-c", script, "sh", str(tmp_path)]
    proc = subprocess.run(
        [*argv, sys.executable, MOUNT_CHILD, repo],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0 and "Operation not permitted" in proc.stderr:
        pytest.skip("unshare is not permitted here")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "EXDEV"
