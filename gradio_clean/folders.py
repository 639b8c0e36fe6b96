"""Open files through their folders' descriptors, never by path (issue 14).

A folder is opened from the root's descriptor one component at a time with
O_NOFOLLOW | O_DIRECTORY and must be on the root's filesystem. A folder swapped
for a symlink after the walk then fails to open instead of leading outside the
root, where even opening a FIFO has an effect (it releases a blocked writer).

Where the kernel has openat2 (Linux 5.6+), a file is first opened in one call from
the root's descriptor with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV:
the kernel then refuses a symlink or a mount anywhere on the way, and a path
leaving the root. That saves a folder's open, fstat and close per file (issue 12).
Any failure takes the component-by-component way, whose error is the one reported.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys
import threading
from collections.abc import Callable
from typing import cast

from gradio_clean.roots import NOATIME as _NOATIME
from gradio_clean.roots import open_at

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# openat2's number in the unified syscall table; alpha and the MIPS ABIs number it
# otherwise, so there (and anywhere not listed) the folder-by-folder way is used.
_SYS_OPENAT2 = 437
_UNIFIED_TABLE = (
    "x86_64",
    "i386",
    "i486",
    "i586",
    "i686",
    "aarch64",
    "arm",
    "riscv",
    "ppc",
    "s390",
)
# RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH
_RESOLVE = 0x01 | 0x02 | 0x04 | 0x08


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64))


def _openat2_call() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux") or not platform.machine().startswith(_UNIFIED_TABLE):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    # No argtypes: syscall(2) is variadic, and each call passes ctypes objects made once
    # (Folders._args) and the path as bytes, which ctypes hands over without converting
    # anything (~1.5 us a file less than with argtypes, issue 12).
    call.restype = ctypes.c_long
    return cast("Callable[..., int]", call)


_OPENAT2 = _openat2_call()


class NotAFolder(OSError):
    """A folder on a file's way is a symlink (or no folder) now: nothing is opened through it."""


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
        self._prefix = "" if self.root is None else self.root.rstrip("/") + "/"
        flags = [file_flags | _NOATIME, file_flags] if _NOATIME else [file_flags]
        self._how = [_OpenHow(f, 0, _RESOLVE) for f in flags]  # kept alive: pointed to below
        # openat2's arguments but the path, as ctypes objects: (number, dirfd), each how
        # (O_NOATIME first) and its size
        self._args = (ctypes.c_long(_SYS_OPENAT2), ctypes.c_long(self.root_fd))
        self._hows = [ctypes.c_void_p(ctypes.addressof(h)) for h in self._how]
        self._how_size = ctypes.c_size_t(ctypes.sizeof(_OpenHow))
        self._openat2 = _OPENAT2 if self.root_fd >= 0 else None

    @property
    def prefix(self) -> str:
        """What open_beneath's paths are relative to: the root and a slash ("" without one)."""
        return self._prefix

    def open_file(self, path: str) -> int:
        """An fd on `path`'s file through its folder's descriptor; raises OSError."""
        if self._openat2 is not None and path.startswith(self._prefix):
            fd = self.open_beneath(os.fsencode(path[len(self._prefix) :]))
            if fd >= 0:
                return fd
        head, _, name = path.rpartition("/")
        return open_at(self._folder(head or "/"), name, self.file_flags)

    def open_beneath(self, rel: bytes) -> int:
        """openat2 from the root of the path `prefix + rel`, O_NOATIME first as open_at
        does; -1 if it fails at all (open_file then says why). A caller holding encoded
        paths relative to the root (hashing.py, from a Pool) calls it directly, once per
        file: no decoding or encoding on the way."""
        call = self._openat2
        if call is None or not rel:
            return -1
        number, dirfd = self._args
        fd: int = call(number, dirfd, rel, self._hows[0], self._how_size)
        return fd if fd >= 0 else self._beneath_failed(rel)

    def _beneath_failed(self, rel: bytes) -> int:
        """After a failed openat2: give it up on ENOSYS; on EPERM (O_NOATIME on another
        user's file) try without O_NOATIME; else -1."""
        err = ctypes.get_errno()
        call = self._openat2
        number, dirfd = self._args
        for how in self._hows[1:]:
            if err != errno.EPERM or call is None:
                break
            fd = int(call(number, dirfd, rel, how, self._how_size))
            if fd >= 0:
                return fd
            err = ctypes.get_errno()
        if err == errno.ENOSYS:  # an old kernel, or a sandbox that forbids it
            self._openat2 = None
        return -1

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
        self._openat2 = None
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1
