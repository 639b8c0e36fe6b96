"""What one statx call tells of an entry or an open descriptor: its stat as os.stat
gives it, the mount it is on, and its chattr flags (immutable, append-only).

os.stat reads neither the mount id nor the flags, and separate calls read them at
different moments. Each helper here makes one statx call, into a buffer kept per
thread; where statx is missing or leaves a basic field unfilled, os.stat gives the
stat, and an unknown mount id is None. The removal path (removal.py, delete.py)
reads entries and folders through these.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import threading

_AT_EMPTY_PATH = 0x1000
_AT_SYMLINK_NOFOLLOW = 0x100
_STATX_BASIC_STATS = 0x7FF  # type, mode, nlink, uid, gid, times, ino, size, blocks
_STATX_MNT_ID = 0x1000
_FSTAT_MASK = _STATX_BASIC_STATS | _STATX_MNT_ID
_STATX_ATTR_IMMUTABLE = 0x10
_STATX_ATTR_APPEND = 0x20

_libc = ctypes.CDLL(None, use_errno=True)
_statx = getattr(_libc, "statx", None)
if _statx is not None:
    _statx.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_char_p]
# struct statx, up to stx_mnt_id: mask, blksize, attributes, nlink, uid, gid, mode, ino,
# size, blocks, attributes_mask, four timestamps (sec, nsec), rdev and dev (major,
# minor), mnt_id.
_STATX = struct.Struct("=IIQIIIH2xQQQQ" + "qI4x" * 4 + "IIIIQ")
_NS = 1_000_000_000


class _Buffer(threading.local):
    """statx's output buffer, one per thread (the call releases the GIL), made once:
    a buffer per call cost more than the call itself."""

    def __init__(self) -> None:
        self.raw = ctypes.create_string_buffer(256)


_BUFFER = _Buffer()


def _statx_raw(
    dir_fd: int, name: str | bytes, flags: int, mask: int
) -> ctypes.Array[ctypes.c_char] | None:
    """The statx buffer, read in place by struct.unpack_from before the next call (no
    copy of its bytes); None where statx failed or is missing (ctypes' errno says which)."""
    if _statx is None:
        return None
    buf = _BUFFER.raw
    rc = _statx(dir_fd, name if isinstance(name, bytes) else os.fsencode(name), flags, mask, buf)
    return None if rc != 0 else buf


def _stat_of(buf: ctypes.Array[ctypes.c_char]) -> tuple[os.stat_result, int | None, bool] | None:
    """A statx buffer as os.stat would have given it, the mount id (None where the kernel
    does not tell it) and the immutable or append-only flag; None unless the kernel
    filled every basic field (then the caller asks os.stat instead)."""
    fields = _STATX.unpack_from(buf)
    (mask, blksize, attributes, nlink, uid, gid, mode, ino, size, blocks, _, a_s, a_ns,
     _, _, c_s, c_ns, m_s, m_ns, r_major, r_minor, major, minor, mnt) = fields  # fmt: skip
    if mask & _STATX_BASIC_STATS != _STATX_BASIC_STATS:
        return None
    st = os.stat_result(
        (mode, ino, os.makedev(major, minor), nlink, uid, gid, size, a_s, m_s, c_s,
         a_s + a_ns * 1e-9, m_s + m_ns * 1e-9, c_s + c_ns * 1e-9,
         a_s * _NS + a_ns, m_s * _NS + m_ns, c_s * _NS + c_ns,
         blksize, blocks, os.makedev(r_major, r_minor))
    )  # fmt: skip
    frozen = bool(attributes & (_STATX_ATTR_IMMUTABLE | _STATX_ATTR_APPEND))
    return st, (mnt if mask & _STATX_MNT_ID else None), frozen


def lstat_frozen(dir_fd: int, name: str) -> tuple[os.stat_result, bool]:
    """os.stat(name, dir_fd=dir_fd, follow_symlinks=False) and `frozen(dir_fd, name)`,
    from one statx: the entry's stat and its flag read at the same moment, where two
    calls read them one after the other. FileNotFoundError as os.stat raises it."""
    raw = _statx_raw(dir_fd, name, _AT_SYMLINK_NOFOLLOW, _STATX_BASIC_STATS)
    got = None if raw is None else _stat_of(raw)
    if got is not None:
        return got[0], got[2]
    if raw is None and _statx is not None and ctypes.get_errno() == errno.ENOENT:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False), frozen(dir_fd, name)


def fstat_mount(fd: int) -> tuple[os.stat_result, int | None, bool]:
    """os.fstat(fd) and `mount_and_frozen(fd)`, from one statx of the descriptor."""
    raw = _statx_raw(fd, b"", _AT_EMPTY_PATH | _AT_SYMLINK_NOFOLLOW, _FSTAT_MASK)
    got = None if raw is None else _stat_of(raw)
    if got is not None:
        return got
    return (os.fstat(fd), *mount_and_frozen(fd))


def mount_id(fd: int) -> int | None:
    """The mount the open descriptor is on (kernel 5.8+), or None where unknown."""
    return mount_and_frozen(fd)[0]


def mount_and_frozen(fd: int) -> tuple[int | None, bool]:
    """mount_id(fd) and whether the open file itself is immutable or append-only (as
    `frozen`), from one statx: entering a folder asks both of the same descriptor."""
    raw = _statx_raw(fd, b"", _AT_EMPTY_PATH | _AT_SYMLINK_NOFOLLOW, _STATX_MNT_ID)
    if raw is None:
        return None, False
    mask, _, attributes = struct.unpack_from("IIQ", raw, 0)
    mnt = int(struct.unpack_from("Q", raw, 144)[0]) if mask & _STATX_MNT_ID else None
    return mnt, bool(attributes & (_STATX_ATTR_IMMUTABLE | _STATX_ATTR_APPEND))


def frozen(dir_fd: int, name: str) -> bool:
    """True if `name` (or, if empty, dir_fd itself) is immutable or append-only (chattr
    +i / +a): it cannot be removed, nor, for a folder, anything in it. False where the
    filesystem does not say."""
    flags = _AT_SYMLINK_NOFOLLOW | (_AT_EMPTY_PATH if not name else 0)
    raw = _statx_raw(dir_fd, name, flags, 0)
    if raw is None:
        return False
    (attributes,) = struct.unpack_from("Q", raw, 8)
    return bool(attributes & (_STATX_ATTR_IMMUTABLE | _STATX_ATTR_APPEND))
