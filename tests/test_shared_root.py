"""A mode-1777 root shared by real users (issue 14): prune as root beside a hostile user.

Each test creates what users would: files written by forked children that dropped to
the user's uid and gid. Races are loops bounded in trials and in time.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import stat
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Role
from gradio_clean.plan import Status
from gradio_clean.roots import Root
from gradio_clean.rules import RuleSet, build_plan
from tests.conftest import DAY, SHA256_A, SHA256_B, SHA256_DUP, cli_env

HASH_C = "f" * 63 + "6"


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int


def _useradd(name: str) -> User:
    for _ in range(20):  # other test runs may hold the passwd lock for a moment
        proc = subprocess.run(
            ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-U", name],
            capture_output=True,
            check=False,
        )
        if proc.returncode == 0:
            break
        time.sleep(0.2)
    else:
        pytest.skip(f"useradd {name} failed: {proc.stderr.decode(errors='replace').strip()}")
    pw = pwd.getpwnam(name)
    return User(name, pw.pw_uid, pw.pw_gid)


@pytest.fixture(scope="module")
def users() -> Iterator[tuple[User, User]]:
    """A victim and an attacker: two ordinary users, made for this module, removed after."""
    if os.geteuid() != 0:
        pytest.skip("creating users needs root")
    made: list[User] = []
    try:
        for role in ("vic", "atk"):
            made.append(_useradd(f"gc{role}{os.getpid()}"))
        yield made[0], made[1]
    finally:
        for user in made:
            subprocess.run(["userdel", user.name], capture_output=True, check=False)


@pytest.fixture
def root(world_dir: Path) -> Path:
    """A shared cache folder as `/tmp/gradio` often is: mode 1777."""
    path = world_dir / "gradio"
    path.mkdir()
    path.chmod(0o1777)
    return path


def _drop(user: User) -> None:
    os.setgroups([])
    os.setgid(user.gid)
    os.setuid(user.uid)
    os.umask(0o022)


def as_user(user: User, fn: Callable[[], object]) -> None:
    """Run `fn` in a forked child that is `user`; fail with its traceback if it raised."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(read_end)
            _drop(user)
            fn()
            code = 0
        except BaseException:
            os.write(write_end, traceback.format_exc().encode())
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as source:
        error = source.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"as {user.name}:\n{error}"


@contextlib.contextmanager
def looping(user: User, step: Callable[[], None], seconds: float) -> Iterator[None]:
    """`step` over and over as `user` in a child, from before the block starts until it
    ends (or `seconds`)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - killed by the parent
        try:
            os.close(read_end)
            _drop(user)
            end = time.monotonic() + seconds
            with contextlib.suppress(OSError):
                step()
            os.write(write_end, b"1")  # running: the block may start
            while time.monotonic() < end:
                with contextlib.suppress(OSError):
                    step()
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        os.read(read_end, 1)
        os.close(read_end)
        yield
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def put(path: Path, data: bytes, *, age: float = 0.0, folder_mode: int = 0o755) -> None:
    """Write a 0644 file (and its folder) as the calling user, `age` seconds old."""
    if not path.parent.exists():
        path.parent.mkdir()
        path.parent.chmod(folder_mode)
    path.write_bytes(data)
    path.chmod(0o644)
    t = time.time() - age
    os.utime(path, (t, t))


def prune(root: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The real CLI as root, with `root` as Gradio's temp dir (so its role is temp)."""
    return subprocess.run(
        [sys.executable, "-m", "gradio_clean", "prune", str(root), *args],
        capture_output=True,
        env=cli_env(GRADIO_TEMP_DIR=str(root)),
        timeout=120,
        check=False,
    )


def plan_dupes(root: Path) -> tuple[Root, RuleSet]:
    return Root(str(root), Role.TEMP, "test"), RuleSet(duplicates=True)


# -- duplicates across owners (the PWNED case) --------------------------------------------


@pytest.mark.parametrize(
    ("args", "attacker_age"),
    [
        ((), 0.0),  # --keep newest: the attacker's fresh copy would be kept
        (("--dedupe", "delete"), 0.0),
        (("--keep", "oldest"), 30 * DAY),  # the attacker backdates its copy
    ],
    ids=["hardlink", "delete", "keep-oldest"],
)
def test_duplicates_across_owners_are_never_linked_or_deleted(
    users: tuple[User, User], root: Path, args: tuple[str, ...], attacker_age: float
) -> None:
    victim, attacker = users
    data = os.urandom(5000)
    own = os.urandom(3000)
    report = root / SHA256_A / "report.pdf"
    mine = [root / SHA256_A / "mine.bin", root / HASH_C / "mine.bin"]
    theirs = root / SHA256_B / "x.bin"

    def victim_writes() -> None:
        put(report, data, age=2 * DAY)
        put(mine[0], own, age=2 * DAY)
        put(mine[1], own, age=1 * DAY)

    as_user(victim, victim_writes)
    as_user(attacker, lambda: put(theirs, report.read_bytes(), age=attacker_age))

    proc = prune(root, "--duplicates", "--apply", "--yes", *args)
    assert proc.returncode == 0, proc.stderr.decode()

    as_user(attacker, lambda: theirs.write_bytes(b"PWNED\n"))
    assert report.read_bytes() == data
    assert os.lstat(report).st_uid == victim.uid
    assert os.lstat(report).st_ino != os.lstat(theirs).st_ino
    # The rule still works within one owner: the victim's own pair was deduplicated.
    left = [p for p in mine if p.exists()]
    if "delete" in args:
        assert len(left) == 1
    else:
        assert os.lstat(mine[0]).st_ino == os.lstat(mine[1]).st_ino


# -- the kept copy changes between the hash and the link ----------------------------------


def test_a_kept_copy_rewritten_after_hashing_is_not_linked(
    users: tuple[User, User], root: Path
) -> None:
    """Rewritten with its size and mtime put back: only ctime shows it, and it is checked."""
    victim, _ = users
    data = os.urandom(4000)
    keep = root / SHA256_B / "photo.png"
    copy = root / SHA256_A / "photo.png"

    def write_both() -> None:
        put(copy, data, age=DAY)
        put(keep, data)

    as_user(victim, write_both)
    groot, rules = plan_dupes(root)
    plan = build_plan([groot], rules, now=time.time())
    assert [(a.path, a.keep) for a in plan.actions] == [(str(copy), str(keep))]

    def rewrite() -> None:
        st = os.stat(keep)
        keep.write_bytes(b"other content".ljust(len(data), b"!"))
        os.utime(keep, ns=(st.st_atime_ns, st.st_mtime_ns))

    as_user(victim, rewrite)
    result = apply_plan(plan, why=lambda dev, ino: None, jobs=1)
    (outcome,) = result.outcomes
    assert outcome.status is Status.SKIPPED
    assert outcome.detail is not None and "ctime" in outcome.detail
    assert copy.read_bytes() == data
    assert os.lstat(copy).st_ino != os.lstat(keep).st_ino


def test_the_attacker_rewriting_its_copy_in_a_loop_never_reaches_a_victim(
    users: tuple[User, User], root: Path
) -> None:
    """The issue's race: the attacker's copy (the newest, so the one kept) is rewritten
    and its size and mtime put back, over and over, while prune runs."""
    victim, attacker = users
    data = os.urandom(3000)
    theirs = root / SHA256_DUP / "x.bin"
    copies = [root / f"{i:064x}" / "report.pdf" for i in range(40)]

    def victim_writes() -> None:
        for c in copies:
            put(c, data, age=DAY)

    as_user(victim, victim_writes)
    as_user(attacker, lambda: put(theirs, data))

    def rewrite() -> None:
        st = os.stat(theirs)
        for content in (b"PWNED".ljust(len(data), b"!"), data):
            theirs.write_bytes(content)
            os.utime(theirs, ns=(st.st_atime_ns, st.st_mtime_ns))

    changed = trials = 0
    end = time.monotonic() + 15
    while trials < 20 and time.monotonic() < end:
        trials += 1
        groot, rules = plan_dupes(root)
        plan = build_plan([groot], rules, now=time.time())
        with looping(attacker, rewrite, 30):
            apply_plan(plan, why=lambda dev, ino: None, jobs=1)
        changed += sum(
            1 for c in copies if os.lstat(c).st_uid != victim.uid or c.read_bytes() != data
        )
    print(f"rewrite: {trials} trials, {changed} victim files changed")
    assert changed == 0


@pytest.mark.parametrize("swap", ["symlink", "hardlink"])
def test_the_kept_name_swapped_in_a_loop_never_reaches_a_copy(
    users: tuple[User, User], root: Path, swap: str
) -> None:
    """The attacker owns the kept copy's folder and renames a symlink to a root-only file,
    or a hard link to its own file, over the kept name, then puts the victim's file back,
    over and over, while prune links the victim's copies to it."""
    victim, attacker = users
    secret = root.parent / "shadow"
    secret.write_bytes(b"root only")
    secret.chmod(0o600)
    data = os.urandom(2000)
    keep = root / SHA256_DUP / "photo.png"
    copies = [root / f"{i:064x}" / "photo.png" for i in range(100)]
    own = root / SHA256_DUP / "attacker.bin"
    aside, alt = keep.with_name("aside"), keep.with_name("alt")

    def attacker_setup() -> None:
        (root / SHA256_DUP).mkdir()
        (root / SHA256_DUP).chmod(0o777)  # its own folder, open to all (not sticky)
        put(own, b"A" * len(data))
        if swap == "symlink":
            os.symlink(secret, alt)
        else:
            os.link(own, alt)

    def attack() -> None:  # four renames: the victim's file is put back each time
        os.rename(keep, aside)
        os.rename(alt, keep)
        os.rename(keep, alt)
        os.rename(aside, keep)

    as_user(attacker, attacker_setup)
    changed = symlinks = linked = trials = 0
    end = time.monotonic() + 20
    while trials < 40 and time.monotonic() < end:
        trials += 1

        def victim_writes() -> None:
            for c in copies:
                with contextlib.suppress(FileNotFoundError):
                    c.unlink()
                put(c, data, age=DAY)
            if not keep.exists():
                put(keep, data)

        as_user(victim, victim_writes)
        groot, rules = plan_dupes(root)
        plan = build_plan([groot], rules, now=time.time())
        with looping(attacker, attack, 30):
            result = apply_plan(plan, why=lambda dev, ino: None, jobs=1)
        if os.path.lexists(aside):  # the attacker was stopped mid-loop: undo its step
            if not os.path.lexists(alt):
                os.rename(keep, alt)
            os.rename(aside, keep)
        linked += result.count(Status.LINKED)
        for c in copies:
            st = os.lstat(c)
            if stat.S_ISLNK(st.st_mode):
                symlinks += 1
            elif c.read_bytes() != data or st.st_uid != victim.uid:
                changed += 1
    print(f"{swap}: {trials} trials, {linked} copies linked, {changed} changed, {symlinks} links")
    assert (changed, symlinks) == (0, 0)
    assert secret.read_bytes() == b"root only"


# -- reading outside the root while hashing ------------------------------------------------


def test_a_hash_folder_swapped_in_a_loop_never_opens_a_fifo_outside(
    users: tuple[User, User], root: Path
) -> None:
    """The attacker swaps its hash folder for a symlink to the folder of a victim's FIFO,
    on which the victim's writer waits; opening the FIFO would release the writer."""
    victim, attacker = users
    outside = root.parent / "victim"
    outside.mkdir()
    fifo = outside / "f.bin"
    os.mkfifo(fifo)
    os.chown(fifo, victim.uid, victim.gid)
    writer = subprocess.Popen(
        ["sh", "-c", 'echo x > "$1"', "sh", str(fifo)],
        user=victim.uid,
        group=victim.gid,
        extra_groups=[],
    )
    folder = root / SHA256_B
    real = root / "real-folder"

    def attacker_setup() -> None:
        put(folder / "f.bin", b"same bytes")
        put(root / SHA256_A / "f.bin", b"same bytes", age=DAY)

    def swap() -> None:
        os.rename(folder, real)
        os.symlink(outside, folder)
        os.unlink(folder)
        os.rename(real, folder)

    try:
        as_user(attacker, attacker_setup)
        time.sleep(0.2)  # the writer is now blocked in open()
        groot, rules = plan_dupes(root)
        trials = 0
        end = time.monotonic() + 15
        while trials < 40 and time.monotonic() < end and writer.poll() is None:
            trials += 1
            with looping(attacker, swap, 30):
                build_plan([groot], rules, now=time.time())
            if real.exists():  # the swapper was stopped mid-swap
                if folder.is_symlink():
                    folder.unlink()
                os.rename(real, folder)
        time.sleep(0.1)
        print(f"{trials} trials; writer released: {writer.poll() is not None}")
        assert writer.poll() is None, "the FIFO outside the root was opened"
    finally:
        with contextlib.suppress(OSError):  # release the writer if it still waits
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.kill()
        writer.wait()
