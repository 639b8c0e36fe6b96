"""Whether the run may empty a folder and take entries from it is the kernel's answer,
asked through a descriptor on the folder (permissions.may_write): ACLs count, and a link
put where a folder was is never followed. The dry run's forecast and apply ask alike, so
a real run as nobody skips what the forecast said it would, with the same words.

`old_kernel` runs the same with faccessat2 made ENOSYS by a seccomp filter, as on Linux
before 5.8: glibc then answers an access check with AT_SYMLINK_NOFOLLOW from mode bits
alone (the question removal asked before 90235ad, blind to ACLs), while one without it,
through a descriptor or by name, still goes to the kernel.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import time
from pathlib import Path

import pytest

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Role
from gradio_clean.plan import Plan
from gradio_clean.preflight import preflight
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from tests.conftest import DAY, NOBODY, give_to_nobody, run_unprivileged, set_age, write

OLD = 3 * DAY
RULES = RuleSet(older_than=DAY, age_by=AgeBy.MTIME)
GRANTED = "a" * 63 + "1"  # root's 0755 folder, its ACL lets nobody write it
DENIED = "b" * 63 + "2"  # root's 0777 folder, its ACL lets nobody only read it
LINKED = "c" * 63 + "3"  # nobody's own folder, swapped for a link after planning

_UNDEFINED = 0xFFFFFFFF  # ACL_UNDEFINED_ID
# <linux/posix_acl_xattr.h> tags: USER_OBJ, USER, GROUP_OBJ, MASK, OTHER
_USER_OBJ, _USER, _GROUP_OBJ, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x10, 0x20


def set_acl(path: Path, uid: int, perm: int, other: int) -> None:
    """Give `path` the access ACL u::rwx, u:`uid`:`perm`, g::r-x, m::rwx, o::`other`,
    written as its system.posix_acl_access xattr (what setfacl writes; no tool needed).
    Skips where the filesystem has no ACLs."""
    entries = [
        (_USER_OBJ, 7, _UNDEFINED),
        (_USER, perm, uid),
        (_GROUP_OBJ, 5, _UNDEFINED),
        (_MASK, 7, _UNDEFINED),
        (_OTHER, other, _UNDEFINED),
    ]
    value = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)
    try:
        os.setxattr(path, "system.posix_acl_access", value)
    except OSError as exc:
        pytest.skip(f"no POSIX ACLs here: {exc}")


_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_FACCESSAT2 = 439  # the same number on every architecture (new syscalls are unified)


def deny_faccessat2() -> None:
    """From here on, this process's faccessat2 fails with ENOSYS, as before Linux 5.8: a
    seccomp filter (irreversible, so only in run_unprivileged's forked child)."""
    arch = _AUDIT_ARCH[platform.machine()]
    ld_w_abs, jeq_k, ret_k = 0x20, 0x15, 0x06
    program = [
        (ld_w_abs, 0, 0, 4),  # seccomp_data.arch
        (jeq_k, 0, 3, arch),
        (ld_w_abs, 0, 0, 0),  # seccomp_data.nr
        (jeq_k, 0, 1, _FACCESSAT2),
        (ret_k, 0, 0, 0x00050000 | 38),  # SECCOMP_RET_ERRNO | ENOSYS
        (ret_k, 0, 0, 0x7FFF0000),  # SECCOMP_RET_ALLOW
    ]
    code = ctypes.create_string_buffer(b"".join(struct.pack("<HBBI", *f) for f in program))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Fprog(len(program), ctypes.cast(code, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


def _needs_root_and_seccomp(old_kernel: bool) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the tree to another user")
    if old_kernel and platform.machine() not in _AUDIT_ARCH:
        pytest.skip(f"no seccomp filter written for {platform.machine()}")


Outcomes = dict[str, tuple[str, str | None]]


def _forecast_and_apply(plan: Plan, old_kernel: bool) -> tuple[Outcomes, Outcomes]:
    """As nobody (on an 'old kernel' if asked): the plan's forecast (rel -> planned or
    skipped, and why) and apply's outcomes."""

    def run() -> tuple[Outcomes, Outcomes]:
        if old_kernel:
            deny_faccessat2()
        forecast = preflight(plan)
        result = apply_plan(forecast)
        dry: Outcomes = {
            a.rel: ("planned" if why is None else "skipped", why) for a, why in forecast.expected()
        }
        done = {o.action.rel: (o.status.value, o.detail) for o in result.outcomes}
        return dry, done

    def warm_up() -> object:  # as root, deleting nothing: every lazy import before the fork
        return preflight(plan).skips

    return run_unprivileged(run, warm_up=warm_up)


@pytest.mark.parametrize("old_kernel", [False, True], ids=["faccessat2", "old-kernel"])
def test_an_acl_decides_what_the_run_may_empty_and_take(world_dir: Path, old_kernel: bool) -> None:
    """root's 0755 root whose ACL lets nobody write it, and in it two root folders of old
    files, nobody's: GRANTED (0755, its ACL lets nobody write) and DENIED (0777, its ACL
    lets nobody read and search it only). Mode bits say the opposite of the kernel for each.
    The forecast skips DENIED with apply's words, and apply skips it; GRANTED goes."""
    _needs_root_and_seccomp(old_kernel)
    temp = world_dir / "gradio"
    for name in (GRANTED, DENIED):
        write(temp / name / "old.bin", b"o" * 10, age=OLD)
        give_to_nobody(temp / name / "old.bin")
        set_age(temp / name, OLD)
    (temp / DENIED).chmod(0o777)
    set_acl(temp, NOBODY, 7, 5)
    set_acl(temp / GRANTED, NOBODY, 7, 5)
    set_acl(temp / DENIED, NOBODY, 5, 7)
    plan = build_plan([Root(str(temp), Role.TEMP, "t")], RULES, now=time.time())
    assert sorted(a.rel for a in plan.actions) == [GRANTED, DENIED]

    dry, done = _forecast_and_apply(plan, old_kernel)

    why = f"cannot be removed whole: no permission to empty {DENIED}"
    assert dry == {GRANTED: ("planned", None), DENIED: ("skipped", why)}
    assert done == {GRANTED: ("deleted", None), DENIED: ("skipped", why)}
    assert not (temp / GRANTED).exists() and (temp / DENIED / "old.bin").exists()


@pytest.mark.parametrize("old_kernel", [False, True], ids=["faccessat2", "old-kernel"])
def test_a_link_put_where_a_planned_folder_was_is_not_followed(
    world_dir: Path, old_kernel: bool
) -> None:
    """nobody's root and folder of old files; after planning, the folder is moved away
    and a link to it put in its place. Apply follows no link: it skips the entry, and the
    folder the link points to keeps its file. (A link put there between an lstat and the
    access check that follows it, which may_write no longer follows, is a race no test
    here can stage.)"""
    _needs_root_and_seccomp(old_kernel)
    temp = world_dir / "gradio"
    write(temp / LINKED / "old.bin", b"o" * 10, age=OLD)
    set_age(temp / LINKED, OLD)
    give_to_nobody(temp)
    plan = build_plan([Root(str(temp), Role.TEMP, "t")], RULES, now=time.time())
    assert [a.rel for a in plan.actions] == [LINKED]
    moved = world_dir / "moved"
    (temp / LINKED).rename(moved)
    (temp / LINKED).symlink_to(moved)

    dry, done = _forecast_and_apply(plan, old_kernel)

    # The forecast reads no identity: a change since planning is apply's to find.
    assert dry == {LINKED: ("planned", None)}
    assert done == {LINKED: ("skipped", "replaced since planning (another inode)")}
    assert (moved / "old.bin").exists() and (temp / LINKED).is_symlink()
