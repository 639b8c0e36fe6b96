"""The floor of `older` (issue 12): the safe minimum per entry, with no abstractions.

    python bench/older_floor.py COPY --yes [--days 30]

It deletes, with no dry run: give it a copy of a bench tree, and --yes to say so.

What `prune COPY --older-than 30d --age-by mtime --apply --yes` must do at least,
written out flat, for timing against `find COPY -type f -mtime +30 -delete` on a
fresh copy of a bench tree (`make_tree.py`; no app folder):

- walk through descriptors (openat O_NOFOLLOW, the device read from the descriptor),
  one lstat per entry (the mtime);
- a top-level hash folder whose every file is old goes whole: opened, its inode and
  device checked through the descriptor, its flock taken, listed, every entry
  lstat'ed and checked before anything goes, listed again (nothing new), then each
  file removed as below, and the folder lstat'ed and rmdir'ed;
- each file (there, or one old file elsewhere): lstat re-check (inode, size, mtime),
  not in use in the /proc snapshot, claimed by a rename that replaces nothing
  (RENAME_NOREPLACE), the claimed name lstat'ed, a lease probe (open, fstat, F_SETSIG,
  F_SETLEASE, close), unlink;
- two forked processes share the folders and files in turn; one in-use snapshot each.

Not done (so the floor is below what prune can reach): the folders a single-file
removal empties are left, the rules and classification, the report and JSON.
Standard library plus gradio_clean.inuse.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import signal
import stat
import sys
import time

from gradio_clean.inuse import InUse, snapshot

DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOATIME
PROBE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
F_SETSIG = 10
RENAME_NOREPLACE = 1
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = _libc.renameat2
_renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]

File = tuple[str, str, int, int, int]  # parent rel, name, ino, size, mtime_ns


class Walk:
    def __init__(self, root_fd: int, dev: int, cut_ns: float) -> None:
        self.root_fd, self.dev, self.cut = root_fd, dev, cut_ns
        self.folders: list[tuple[str, int]] = []  # whole folders: name, ino
        self.files: list[File] = []

    def tree(self, fd: int, rel: str) -> tuple[bool, bool]:
        """(every file old, any file) under fd; old files appended."""
        every, anyfile = True, False
        with os.scandir(fd) as it:
            entries = list(it)
        for e in entries:
            st = e.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(e.name, DIR, dir_fd=fd)
                try:
                    if os.fstat(sub).st_dev != self.dev:
                        every = False
                        continue
                    a, f = self.tree(sub, f"{rel}{e.name}/")
                finally:
                    os.close(sub)
                every &= a and f
                anyfile |= f
                continue
            anyfile = True
            if st.st_mtime_ns < self.cut:
                self.files.append((rel, e.name, st.st_ino, st.st_size, st.st_mtime_ns))
            else:
                every = False
        return every, anyfile

    def top(self) -> None:
        with os.scandir(self.root_fd) as it:
            entries = list(it)
        for e in entries:
            st = e.stat(follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                if st.st_mtime_ns < self.cut:
                    self.files.append(("", e.name, st.st_ino, st.st_size, st.st_mtime_ns))
                continue
            sub = os.open(e.name, DIR, dir_fd=self.root_fd)
            try:
                if os.fstat(sub).st_dev != self.dev:
                    continue
                n = len(self.files)
                every, anyfile = self.tree(sub, f"{e.name}/")
            finally:
                os.close(sub)
            if every and anyfile and len(e.name) >= 40:  # a hash folder, whole
                del self.files[n:]
                self.folders.append((e.name, st.st_ino))


def remove_file(dfd: int, name: str, ino: int, size: int, mtime: int, snap: InUse) -> bool:
    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    if (st.st_ino, st.st_size, st.st_mtime_ns) != (ino, size, mtime):
        return False
    if snap.why(st.st_dev, st.st_ino):
        return False
    tmp = f".gradio-clean-{os.urandom(6).hex()}.del".encode()
    if _renameat2(dfd, os.fsencode(name), dfd, tmp, RENAME_NOREPLACE) != 0:
        return False
    got = os.stat(tmp, dir_fd=dfd, follow_symlinks=False)
    if (got.st_ino, got.st_size, got.st_mtime_ns) != (ino, size, mtime):
        _renameat2(dfd, tmp, dfd, os.fsencode(name), RENAME_NOREPLACE)
        return False
    fd = os.open(tmp, PROBE, dir_fd=dfd)
    try:
        if os.fstat(fd).st_ino != ino:
            return False
        fcntl.fcntl(fd, F_SETSIG, signal.SIGURG)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    finally:
        os.close(fd)
    os.unlink(tmp, dir_fd=dfd)
    return True


def remove_folder(root_fd: int, dev: int, name: str, ino: int, cut: float, snap: InUse) -> None:
    fd = os.open(name, DIR, dir_fd=root_fd)
    try:
        st = os.fstat(fd)
        if (st.st_ino, st.st_dev) != (ino, dev):
            return
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        names = os.listdir(fd)
        checked = []
        for n in names:
            s = os.stat(n, dir_fd=fd, follow_symlinks=False)
            if s.st_mtime_ns >= cut or not stat.S_ISREG(s.st_mode):
                return
            checked.append((n, s.st_ino, s.st_size, s.st_mtime_ns))
        os.lseek(fd, 0, os.SEEK_SET)
        if sorted(os.listdir(fd)) != sorted(names):
            return
        for n, i, size, mtime in checked:
            if not remove_file(fd, n, i, size, mtime, snap):
                return
        if os.stat(name, dir_fd=root_fd, follow_symlinks=False).st_ino == ino:
            os.rmdir(name, dir_fd=root_fd)
    finally:
        os.close(fd)


def work(w: Walk, k: int, jobs: int) -> None:
    snap = snapshot()
    for name, ino in w.folders[k::jobs]:
        remove_folder(w.root_fd, w.dev, name, ino, w.cut, snap)
    rel_open, cfd = "", w.root_fd
    for rel, name, ino, size, mtime in w.files[k::jobs]:
        if rel != rel_open:
            if cfd != w.root_fd:
                os.close(cfd)
            cfd = w.root_fd
            for part in rel.strip("/").split("/") if rel else []:
                nfd = os.open(part, DIR, dir_fd=cfd)
                os.fstat(nfd)
                if cfd != w.root_fd:
                    os.close(cfd)
                cfd = nfd
            rel_open = rel
        if cfd != w.root_fd:
            fcntl.flock(cfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(cfd, fcntl.LOCK_UN)
        remove_file(cfd, name, ino, size, mtime, snap)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root")
    p.add_argument("--days", type=float, default=30.0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--sorted", action="store_true", help="remove in name order, as prune does")
    p.add_argument("--yes", action="store_true", help="ROOT is a copy: delete its old files")
    a = p.parse_args()
    if not a.yes:
        p.error(f"this deletes every file older than {a.days:g} days under {a.root}: add --yes")
    root_fd = os.open(a.root, DIR)
    w = Walk(root_fd, os.fstat(root_fd).st_dev, time.time() * 1e9 - a.days * 86400e9)
    w.top()
    if a.sorted:
        w.folders.sort()
        w.files.sort()
    kids = []
    for k in range(1, a.jobs):
        pid = os.fork()
        if pid == 0:
            work(w, k, a.jobs)
            os._exit(0)
        kids.append(pid)
    work(w, 0, a.jobs)
    for pid in kids:
        os.waitpid(pid, 0)
    print(f"{len(w.folders)} whole folders, {len(w.files)} files", file=sys.stderr)


if __name__ == "__main__":
    main()
