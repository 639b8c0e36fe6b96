"""Open files through their folders' descriptors, never by path (issue 14).

A folder is opened from the root's descriptor one component at a time with
O_NOFOLLOW | O_DIRECTORY and must be on the root's filesystem. A folder swapped
for a symlink after the walk then fails to open instead of leading outside the
root, where even opening a FIFO has an effect (it releases a blocked writer).
"""

from __future__ import annotations

import errno
import os
import threading

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NOATIME = getattr(os, "O_NOATIME", 0)


class NotAFolder(OSError):
    """A folder on a file's way is a symlink (or no folder) now: nothing is opened through it."""


def open_at(dir_fd: int, name: str, flags: int) -> int:
    """os.open relative to dir_fd, with O_NOATIME where the kernel allows it (our own
    files, or as root), so that reading does not make a file look used to --age-by atime."""
    if _NOATIME:
        try:
            return os.open(name, flags | _NOATIME, dir_fd=dir_fd)
        except PermissionError as exc:
            if exc.errno != errno.EPERM:  # EPERM: not our file; EACCES is final
                raise
    return os.open(name, flags, dir_fd=dir_fd)


class Folders:
    """Descriptors of the folders files are opened in, so no file is ever opened by path.

    With a root, folders are opened from it as the module says. Without a root
    (library use on loose paths), a file's folder is opened by path, without
    following it if it is a symlink itself. Each thread keeps its own few
    descriptors; `close` (one thread, at the end) closes all.
    """

    MAX_HELD = 64  # per thread

    def __init__(self, root: str | None, file_flags: int) -> None:
        self.file_flags = file_flags
        self.root = (root.rstrip("/") or "/") if root is not None else None
        self.root_fd = -1
        self.dev = 0
        self.error: OSError | None = None  # the root could not be opened: every file warns
        if self.root is not None:
            try:
                self.root_fd = os.open(self.root, DIR_FLAGS)
                self.dev = os.fstat(self.root_fd).st_dev
            except OSError as exc:
                self.error = exc
        self._lock = threading.Lock()
        self._caches: list[dict[str, int]] = []
        self._local = threading.local()

    def open_file(self, path: str) -> int:
        """An fd on `path`'s file through its folder's descriptor; raises OSError."""
        head, _, name = path.rpartition("/")
        return open_at(self._folder(head or "/"), name, self.file_flags)

    def _cache(self) -> dict[str, int]:
        cache: dict[str, int] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = {}
            self._local.cache = cache
            with self._lock:
                self._caches.append(cache)
        return cache

    def _folder(self, head: str) -> int:
        cache = self._cache()
        fd = cache.get(head)
        if fd is not None:
            return fd
        if len(cache) >= self.MAX_HELD:
            for old in cache.values():
                os.close(old)
            cache.clear()
        fd = self._open_folder(head)
        cache[head] = fd
        return fd

    def _open_folder(self, head: str) -> int:
        try:
            return self._open_folder_at(head)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise NotAFolder(exc.errno, exc.strerror, head) from None
            raise

    def _open_folder_at(self, head: str) -> int:
        if self.error is not None:
            raise self.error
        root = self.root
        if root is None:  # the file's own folder must at least not be a symlink
            return os.open(head, DIR_FLAGS)
        prefix = "/" if root == "/" else root + "/"
        if head != root and not head.startswith(prefix):
            raise OSError(errno.EXDEV, "outside the root", head)
        parts = [p for p in head[len(root) :].split("/") if p]
        if not parts:
            return os.dup(self.root_fd)  # the cache owns its fds, the root's included
        fd = self.root_fd
        try:
            for part in parts:
                child = os.open(part, DIR_FLAGS, dir_fd=fd)
                if fd != self.root_fd:
                    os.close(fd)
                fd = child
                if os.fstat(fd).st_dev != self.dev:
                    raise OSError(errno.EXDEV, "on another filesystem", head)
        except BaseException:
            if fd != self.root_fd:
                os.close(fd)
            raise
        return fd

    def close(self) -> None:
        for cache in self._caches:
            for fd in cache.values():
                os.close(fd)
            cache.clear()
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1
