"""find_duplicates on real files: the stages, the keep rule and the safety rules."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import mmap
import os
import random
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradio_clean.duplicates import (
    BUFFER_SIZE,
    CHANGED,
    DENIED,
    FOLDER_SWAPPED,
    FORK_MIN_FILES,
    NOT_REGULAR,
    PARTIAL_SIZE,
    SYMLINK,
    VANISHED,
    Candidate,
    DuplicateReport,
    DuplicateSet,
    Keep,
    find_duplicates,
)
from gradio_clean.folders import Folders
from gradio_clean.hashing import CHANGED_WHILE_READ, OPEN_FLAGS, Inode, Reader

KEEPS: tuple[Keep, ...] = (Keep.NEWEST, Keep.OLDEST)
HEAD = bytes(range(256)) * (PARTIAL_SIZE // 256 + 8)  # longer than the partial hash reads
MID_SIZE = 64 << 10  # a file several partial reads long


def put(path: Path, data: bytes, mtime: int = 1_700_000_000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime * 10**9, mtime * 10**9))
    return path


def link(src: Path, dst: Path) -> Path:
    """Another name for the same inode."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.link(src, dst)
    return dst


def cand(path: Path | str) -> Candidate:
    """What the scan hands over: the lstat of the path, never followed."""
    return Candidate.from_stat(str(path), os.lstat(path))


def cands(*paths: Path | str) -> list[Candidate]:
    return [cand(p) for p in paths]


def groups(report: DuplicateReport) -> set[frozenset[str]]:
    return {frozenset([s.keep.path, *(c.path for c in s.extras)]) for s in report.sets}


def names(paths: Sequence[Path]) -> frozenset[str]:
    return frozenset(str(p) for p in paths)


def warned(report: DuplicateReport) -> dict[str, str]:
    return dict(report.warnings)


@contextlib.contextmanager
def deadline(seconds: float, fifo: Path) -> Iterator[None]:
    """Fail instead of hanging; first open the FIFO's write end so a blocked reader wakes."""

    def expire(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        raise TimeoutError(f"still running after {seconds} s: a FIFO was opened")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- what is a duplicate ----------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_same_content_in_one_folder_and_across_folders(tmp_path: Path, workers: int) -> None:
    a = put(tmp_path / "h1" / "photo.png", b"png" * 100, mtime=1000)
    b = put(tmp_path / "h1" / "copy of photo.png", b"png" * 100, mtime=2000)
    c = put(tmp_path / "h2" / "photo.png", b"png" * 100, mtime=3000)
    other = put(tmp_path / "h3" / "other.png", b"gif" * 100)
    report = find_duplicates(cands(a, b, c, other), workers=workers)
    assert groups(report) == {names([a, b, c])}
    (dup,) = report.sets
    assert dup.keep.path == str(c)  # the newest
    assert dup.size == 300
    assert dup.freed_bytes == 600
    assert report.warnings == ()


def test_digest_is_the_sha256_of_the_content(tmp_path: Path) -> None:
    import hashlib

    for data in (b"small", HEAD + b"tail"):
        x = put(tmp_path / "x", data)
        y = put(tmp_path / "y", data)
        (dup,) = find_duplicates(cands(x, y)).sets
        assert dup.digest == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "first, second",
    [
        (b"a" * 4000, b"b" * 4000),  # same size, differs at once
        (HEAD + b"x", HEAD + b"y"),  # same head the partial hash sees, differs in the last byte
        (HEAD[:PARTIAL_SIZE] + b"x" + HEAD[:1000], HEAD[:PARTIAL_SIZE] + b"y" + HEAD[:1000]),
        (b"s" * PARTIAL_SIZE, b"s" * (PARTIAL_SIZE - 1) + b"t"),  # exactly the partial size
    ],
)
def test_same_size_different_content_is_not_a_duplicate(
    tmp_path: Path, first: bytes, second: bytes
) -> None:
    assert len(first) == len(second)
    report = find_duplicates(cands(put(tmp_path / "a", first), put(tmp_path / "b", second)))
    assert report.sets == ()
    assert report.warnings == ()


def test_a_file_no_bigger_than_the_partial_size_is_read_once(tmp_path: Path) -> None:
    small = [put(tmp_path / f"s{i}", b"z" * PARTIAL_SIZE) for i in range(2)]
    big = [put(tmp_path / f"b{i}", HEAD + b"!") for i in range(2)]
    assert find_duplicates(cands(*small)).bytes_hashed == 2 * PARTIAL_SIZE
    assert find_duplicates(cands(*big)).bytes_hashed == 2 * len(HEAD + b"!")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_large_files(tmp_path: Path, workers: int) -> None:
    """Past the partial size and past one read buffer, with tails that differ late."""
    rng = random.Random(3)
    body = rng.randbytes(PARTIAL_SIZE + BUFFER_SIZE - 1)  # + 1 byte: the tail is one full buffer
    big = [put(tmp_path / f"big{i}", body + b"xxy"[i % 3 : i % 3 + 1]) for i in range(6)]
    mid = rng.randbytes(MID_SIZE * 3)
    mids = [put(tmp_path / f"mid{i}", mid, mtime=1000 + i) for i in range(3)]
    lone = [put(tmp_path / f"lone{i}", rng.randbytes(len(mid))) for i in range(2)]  # heads differ
    fds = open_fds()
    report = find_duplicates(cands(*big, *mids, *lone), workers=workers)
    assert open_fds() == fds
    assert groups(report) == {
        names([big[0], big[1], big[3], big[4]]),
        names([big[2], big[5]]),
        names(mids),
    }
    assert report.bytes_hashed == 6 * len(body + b"x") + 3 * len(mid) + 2 * PARTIAL_SIZE


def test_many_large_batches(tmp_path: Path) -> None:
    """Several batches of large files."""
    rng = random.Random(5)
    files = []
    for i in range(70):
        data = rng.randbytes(MID_SIZE + 1 + i)
        files += [put(tmp_path / f"g{i}-a", data), put(tmp_path / f"g{i}-b", data)]
    fds = open_fds()
    report = find_duplicates(cands(*files), workers=2)
    assert open_fds() == fds
    assert groups(report) == {names(files[i : i + 2]) for i in range(0, 140, 2)}


def evict(path: Path) -> None:
    """Drop a file's pages from the page cache (written back first), where the kernel can."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def test_heads_out_of_the_page_cache_are_read_as_cached_ones_are(tmp_path: Path) -> None:
    """A head the page cache holds is hashed as it is opened (a read that may not wait);
    one it does not hold (evicted here) is asked for ahead and read when its turn comes:
    the same sets and the same bytes either way, small files and large ones alike."""
    rng = random.Random(11)
    small, large = rng.randbytes(PARTIAL_SIZE // 2), rng.randbytes(MID_SIZE)
    files = [
        put(tmp_path / f"{kind}{i}", data)
        for i in range(4)
        for kind, data in (("s", small), ("l", large))
    ]
    for path in files[::3]:
        evict(path)
    report = find_duplicates(cands(*files), workers=1)
    assert groups(report) == {names(files[0::2]), names(files[1::2])}
    assert report.bytes_hashed == 4 * (len(small) + len(large))
    assert report.warnings == ()


def test_many_files_of_one_size_beyond_the_held_fds(tmp_path: Path) -> None:
    """More same-size files than are opened ahead: the rest are opened when their turn comes."""
    files = [put(tmp_path / f"f{i:03}", HEAD + bytes([i % 7]) * 50) for i in range(300)]
    fds = open_fds()
    report = find_duplicates(cands(*files))
    assert open_fds() == fds
    assert len(report.sets) == 7
    assert sorted(len(s.extras) for s in report.sets) == [41] + [42] * 6
    assert report.warnings == ()


def test_unique_sizes_are_never_read(tmp_path: Path) -> None:
    files = [put(tmp_path / f"f{i}", b"x" * (i + 1)) for i in range(5)]
    report = find_duplicates(cands(*files))
    assert (report.sets, report.bytes_hashed) == ((), 0)


def test_empty_files_are_never_duplicates(tmp_path: Path) -> None:
    empties = [put(tmp_path / f"tmp{i}", b"") for i in range(3)]
    report = find_duplicates(cands(*empties))
    assert (report.sets, report.warnings, report.bytes_hashed) == ((), (), 0)


def test_hard_links_are_one_file_not_duplicates(tmp_path: Path) -> None:
    a = put(tmp_path / "h1" / "a.bin", b"linked" * 50)
    b = link(a, tmp_path / "h1" / "b.bin")
    c = link(a, tmp_path / "h2" / "c.bin")
    report = find_duplicates(cands(a, b, c))
    assert (report.sets, report.bytes_hashed) == ((), 0)


def test_every_path_of_an_extra_inode_is_an_extra_and_none_of_the_kept_one(
    tmp_path: Path,
) -> None:
    old = put(tmp_path / "h1" / "old.bin", b"data" * 40, mtime=1000)
    old_link = link(old, tmp_path / "h2" / "old-link.bin")
    new = put(tmp_path / "h3" / "new.bin", b"data" * 40, mtime=2000)
    new_link = link(new, tmp_path / "h0" / "new-link.bin")

    (newest,) = find_duplicates(cands(old, old_link, new, new_link)).sets
    assert newest.keep.path == str(new_link)  # newest inode; its byte-wise smallest path
    assert [c.path for c in newest.extras] == [str(old), str(old_link)]
    assert newest.freed_bytes == 160  # one inode, however many names

    (oldest,) = find_duplicates(cands(old, old_link, new, new_link), keep=Keep.OLDEST).sets
    assert oldest.keep.path == str(old)
    assert [c.path for c in oldest.extras] == [str(new_link), str(new)]


# -- which copy is kept -------------------------------------------------------------------


def test_keep_newest_oldest_and_ties_by_path(tmp_path: Path) -> None:
    b = put(tmp_path / "b", b"same" * 10, mtime=2000)
    a = put(tmp_path / "a", b"same" * 10, mtime=1000)
    c = put(tmp_path / "c", b"same" * 10, mtime=3000)
    (dup,) = find_duplicates(cands(b, a, c)).sets
    assert (dup.keep.path, [x.path for x in dup.extras]) == (str(c), [str(a), str(b)])
    (dup,) = find_duplicates(cands(b, a, c), keep=Keep.OLDEST).sets
    assert (dup.keep.path, [x.path for x in dup.extras]) == (str(a), [str(b), str(c)])

    tie = [put(tmp_path / "t" / name, b"tie" * 10, mtime=5000) for name in ("b", "a", "B")]
    for keep in KEEPS:
        (dup,) = find_duplicates(cands(*tie), keep=keep).sets
        assert dup.keep.path == str(tmp_path / "t" / "B")  # smallest by bytes: "B" < "a"


def test_result_does_not_depend_on_candidate_order_or_workers(tmp_path: Path) -> None:
    files = [
        put(tmp_path / f"d{i % 3}" / f"f{i}", bytes([i % 4]) * 3000, mtime=1000 + i % 5)
        for i in range(24)
    ]
    base = find_duplicates(cands(*files), workers=1)
    assert len(base.sets) == 4
    shuffled = cands(*files)
    random.Random(7).shuffle(shuffled)
    assert find_duplicates(shuffled, workers=3).sets == base.sets


def test_a_path_given_twice_counts_once(tmp_path: Path) -> None:
    a = put(tmp_path / "a", b"twice" * 10)
    b = put(tmp_path / "b", b"twice" * 10)
    report = find_duplicates(cands(a, a, b, b))
    assert groups(report) == {names([a, b])}
    assert len(report.sets[0].extras) == 1


def test_the_garbage_collector_is_left_as_it_was(tmp_path: Path) -> None:
    files = cands(put(tmp_path / "a", b"gc" * 9), put(tmp_path / "b", b"gc" * 9))
    assert gc.isenabled()
    assert len(find_duplicates(files).sets) == 1
    assert gc.isenabled()
    gc.disable()
    try:
        find_duplicates(files)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="workers"):
        find_duplicates([], workers=0)
    with pytest.raises(ValueError, match="keep"):
        find_duplicates([], keep="largest")  # type: ignore[arg-type]


def test_verify_compares_bytes_and_agrees_with_the_hashes(tmp_path: Path) -> None:
    files = [put(tmp_path / f"f{i}", (HEAD if i % 2 else b"v" * 100) + b"!") for i in range(4)]
    plain = find_duplicates(cands(*files))
    checked = find_duplicates(cands(*files), verify=True)
    assert checked.sets == plain.sets
    assert len(checked.sets) == 2
    assert checked.bytes_compared == 2 * (len(HEAD) + 1) + 2 * 101
    assert plain.bytes_compared == 0


# -- safety: what is never opened, followed or trusted ------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_a_fifo_is_dropped_without_blocking(tmp_path: Path, workers: int) -> None:
    a = put(tmp_path / "a", b"x" * 10)
    b = put(tmp_path / "b", b"x" * 10)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # As if a regular file of the same size had been scanned there and swapped for a FIFO.
    fake = dataclasses.replace(cand(a), path=str(fifo), ino=os.lstat(fifo).st_ino)
    with deadline(10, fifo):
        report = find_duplicates([fake, *cands(a, b)], workers=workers)
    assert groups(report) == {names([a, b])}
    assert warned(report) == {str(fifo): NOT_REGULAR}


def test_a_socket_is_dropped(tmp_path: Path) -> None:
    import socket

    a = put(tmp_path / "a", b"x" * 10)
    b = put(tmp_path / "b", b"x" * 10)
    sock_path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        fake = dataclasses.replace(cand(a), path=str(sock_path), ino=os.lstat(sock_path).st_ino)
        report = find_duplicates([fake, *cands(a, b)])
    assert groups(report) == {names([a, b])}
    assert warned(report) == {str(sock_path): NOT_REGULAR}


def test_a_symlink_is_never_followed(tmp_path: Path) -> None:
    target = put(tmp_path / "real", b"secret" * 20)
    copy = put(tmp_path / "copy", b"secret" * 20)
    link = tmp_path / "link"
    link.symlink_to(target)
    followed = Candidate.from_stat(str(link), os.stat(link))  # the target's own identity
    report = find_duplicates([followed, *cands(target, copy)])
    assert groups(report) == {names([target, copy])}
    assert warned(report) == {str(link): SYMLINK}


def test_a_folder_swapped_for_a_symlink_is_not_read_through(tmp_path: Path) -> None:
    a = put(tmp_path / "h1" / "f", b"abc" * 30)
    b = put(tmp_path / "h2" / "f", b"abc" * 30)
    outside = put(tmp_path / "outside" / "f", b"abc" * 30)
    before = cands(a, b)
    shutil.rmtree(tmp_path / "h2")
    (tmp_path / "h2").symlink_to(outside.parent)  # h2/f would reach another inode
    report = find_duplicates(before)
    assert report.sets == ()
    assert warned(report) == {str(b): FOLDER_SWAPPED}  # the folder is not followed at all


def test_a_file_changed_after_the_scan_is_dropped(tmp_path: Path) -> None:
    a = put(tmp_path / "a", b"same" * 10, mtime=1000)
    b = put(tmp_path / "b", b"same" * 10, mtime=1000)
    c = put(tmp_path / "c", b"same" * 10, mtime=1000)
    scanned = cands(a, b, c)
    put(b, b"SAME" * 10, mtime=2000)  # rewritten in place: same inode and size, new mtime
    put(tmp_path / "c.new", b"same" * 10, mtime=1000).replace(c)  # same bytes, new inode
    report = find_duplicates(scanned)
    assert report.sets == ()
    assert warned(report) == {str(b): CHANGED, str(c): CHANGED}


def test_a_vanished_file_is_a_warning(tmp_path: Path) -> None:
    files = [put(tmp_path / name, b"gone" * 10) for name in ("a", "b", "c")]
    scanned = cands(*files)
    files[1].unlink()
    report = find_duplicates(scanned)
    assert groups(report) == {names([files[0], files[2]])}
    assert warned(report) == {str(files[1]): VANISHED}


def test_a_vanished_link_leaves_the_inode_through_its_other_path(tmp_path: Path) -> None:
    a = put(tmp_path / "a", b"ln" * 30, mtime=1000)
    a2 = link(a, tmp_path / "a2")
    b = put(tmp_path / "b", b"ln" * 30, mtime=2000)
    scanned = cands(a, a2, b)
    a.unlink()
    report = find_duplicates(scanned)
    (dup,) = report.sets
    assert (dup.keep.path, [c.path for c in dup.extras]) == (str(b), [str(a2)])
    assert warned(report) == {str(a): VANISHED}


def test_a_link_path_swapped_for_another_file_is_not_an_extra(tmp_path: Path) -> None:
    a = put(tmp_path / "a", b"ln" * 30, mtime=1000)
    a2 = link(a, tmp_path / "a2")  # never opened: "a" is read for the inode
    b = put(tmp_path / "b", b"ln" * 30, mtime=2000)
    scanned = cands(a, a2, b)
    put(tmp_path / "other", b"precious", mtime=1000).replace(a2)
    report = find_duplicates(scanned)
    (dup,) = report.sets
    assert (dup.keep.path, [c.path for c in dup.extras]) == (str(b), [str(a)])
    assert warned(report) == {str(a2): CHANGED}


def test_non_utf8_names(tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path)
    raw = [folder + b"/caf\xe9.bin", folder + b"/\xff\xfe.bin"]
    for p in raw:
        with open(p, "wb") as f:
            f.write(b"latin-1" * 10)
    paths = [os.fsdecode(p) for p in raw]
    report = find_duplicates(cands(*paths))
    assert groups(report) == {frozenset(paths)}
    assert report.sets[0].keep.path in paths


def summary(report: DuplicateReport) -> dict[str, object]:
    """Sets and warnings as plain JSON, to pass them out of a forked child."""
    return {"groups": sorted(sorted(g) for g in groups(report)), "warnings": warned(report)}


def _run_as_nobody(candidates: list[Candidate]) -> dict[str, object]:
    """Root reads everything, so drop to nobody in a forked child to get EACCES."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            report = find_duplicates(candidates, workers=1)
            os.write(write_end, json.dumps(summary(report)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    doc: dict[str, object] = json.loads(out)
    return doc


def test_an_unreadable_file_is_a_warning() -> None:
    base = Path(tempfile.mkdtemp(prefix="gc-dupes-"))
    try:
        base.chmod(0o755)
        a, b, c = (put(base / name, b"private" * 10) for name in ("a", "sub/b", "c"))
        for p in (a, b, c):  # one mode: files of different modes are never compared
            p.chmod(0o644)
        b.parent.chmod(0o711 if os.geteuid() == 0 else 0o311)  # b's folder cannot be opened
        if os.geteuid() == 0:
            doc = _run_as_nobody(cands(a, b, c))
        else:
            doc = summary(find_duplicates(cands(a, b, c)))
        assert doc == {"groups": [[str(a), str(c)]], "warnings": {str(b): DENIED}}
    finally:
        with contextlib.suppress(OSError):
            (base / "sub").chmod(0o755)
        shutil.rmtree(base)


def test_hashing_leaves_atime_alone(tmp_path: Path) -> None:
    """--age-by atime must not see a file as used because --duplicates read it."""
    files = [put(tmp_path / name, HEAD + b"!", mtime=1000) for name in ("a", "b")]
    before = [os.lstat(p).st_atime_ns for p in files]
    assert len(find_duplicates(cands(*files), verify=True).sets) == 1
    assert [os.lstat(p).st_atime_ns for p in files] == before


def test_open_flags_never_follow_block_or_take_a_terminal() -> None:
    from gradio_clean.duplicates import OPEN_FLAGS

    for flag in (os.O_NOFOLLOW, os.O_NONBLOCK, os.O_NOCTTY, os.O_CLOEXEC):
        assert OPEN_FLAGS & flag
    assert OPEN_FLAGS & os.O_ACCMODE == os.O_RDONLY


# -- property: the sets are exactly the content groups ------------------------------------

BLOBS = st.one_of(
    st.binary(max_size=24),  # includes empty files
    st.binary(min_size=1, max_size=8).map(lambda tail: HEAD + tail),  # same head, other tails
)
FILES = st.lists(
    st.tuples(
        st.integers(0, 3),  # which blob
        st.integers(0, 2),  # which folder
        st.integers(0, 3),  # mtime: few values, so ties happen
        st.integers(0, 4),  # 0: a hard link to the previous file, when there is one
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    blobs=st.lists(BLOBS, min_size=4, max_size=4),
    files=FILES,
    keep=st.sampled_from(KEEPS),
    workers=st.integers(1, 3),
    order=st.randoms(use_true_random=False),
)
def test_sets_are_the_content_groups(
    blobs: list[bytes],
    files: list[tuple[int, int, int, int]],
    keep: Keep,
    workers: int,
    order: random.Random,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths: list[Path] = []
        for i, (blob, folder, mtime, hard) in enumerate(files):
            path = root / f"d{folder}" / f"f{i}"
            if hard == 0 and paths:
                link(paths[-1], path)
            else:
                put(path, blobs[blob], mtime=1000 + mtime)
            paths.append(path)
        candidates = cands(*paths)
        order.shuffle(candidates)
        report = find_duplicates(candidates, keep=keep, workers=workers)
        assert report.warnings == ()
        check_against_ground_truth(report, paths, keep)
        assert find_duplicates(candidates, keep=keep, verify=True).sets == report.sets


def check_against_ground_truth(report: DuplicateReport, paths: list[Path], keep: Keep) -> None:
    by_content: dict[bytes, dict[tuple[int, int], list[str]]] = {}
    for p in paths:
        s = os.lstat(p)
        by_content.setdefault(p.read_bytes(), {}).setdefault((s.st_dev, s.st_ino), []).append(
            str(p)
        )
    expected = {
        frozenset(inodes) for data, inodes in by_content.items() if data and len(inodes) > 1
    }
    found = {
        frozenset({(s.keep.dev, s.keep.ino)} | {(c.dev, c.ino) for c in s.extras})
        for s in report.sets
    }
    assert found == expected

    seen: list[str] = []
    for dup in report.sets:
        check_set(dup, by_content, keep)
        seen += [dup.keep.path, *(c.path for c in dup.extras)]
    assert len(seen) == len(set(seen))


def check_set(
    dup: DuplicateSet, by_content: dict[bytes, dict[tuple[int, int], list[str]]], keep: Keep
) -> None:
    content = Path(dup.keep.path).read_bytes()
    assert len(content) == dup.size
    inodes = by_content[content]
    kept_inode = (dup.keep.dev, dup.keep.ino)
    for extra in dup.extras:
        assert Path(extra.path).read_bytes() == content
        assert (extra.dev, extra.ino) != kept_inode
    # every path of every other inode is an extra; no other path of the kept inode is
    assert sorted(c.path for c in dup.extras) == sorted(
        p for ino, ps in inodes.items() if ino != kept_inode for p in ps
    )

    # keep is the newest (oldest) inode, ties to the byte-wise smallest path
    def rank(ino: tuple[int, int]) -> tuple[int, bytes]:
        mtime = os.lstat(inodes[ino][0]).st_mtime_ns
        return (-mtime if keep == "newest" else mtime, min(os.fsencode(p) for p in inodes[ino]))

    best = min(inodes, key=rank)
    assert kept_inode == best
    assert os.fsencode(dup.keep.path) == min(os.fsencode(p) for p in inodes[best])
    assert stat.S_ISREG(os.lstat(dup.keep.path).st_mode)


# -- a root shared by several users (issue 14) ---------------------------------------------


def test_files_of_another_owner_group_or_mode_are_never_one_set(tmp_path: Path) -> None:
    """Same bytes are not enough: a set across owners would hand one user's path to another."""
    base = put(tmp_path / "base", b"shared bytes" * 10)
    same = put(tmp_path / "same", b"shared bytes" * 10)
    other_mode = put(tmp_path / "mode", b"shared bytes" * 10)
    other_mode.chmod(0o600)
    paths = [base, same, other_mode]
    if os.geteuid() == 0:
        other_uid = put(tmp_path / "uid", b"shared bytes" * 10)
        os.chown(other_uid, 4242, os.lstat(base).st_gid)
        other_gid = put(tmp_path / "gid", b"shared bytes" * 10)
        os.chown(other_gid, os.lstat(base).st_uid, 4242)
        paths += [other_uid, other_gid]
    for p in paths:
        if p != other_mode:
            p.chmod(0o644)
    report = find_duplicates(cands(*paths))
    assert groups(report) == {names([base, same])}


def test_a_file_whose_owner_changed_after_the_scan_is_dropped(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    a = put(tmp_path / "a", b"owned" * 20)
    b = put(tmp_path / "b", b"owned" * 20)
    scanned = cands(a, b)
    os.chown(b, 4242, 4242)
    report = find_duplicates(scanned)
    assert report.sets == ()
    assert warned(report) == {str(b): CHANGED}


@pytest.mark.parametrize("with_root", [True, False])
def test_a_hash_folder_swapped_for_a_symlink_never_opens_a_fifo_outside(
    tmp_path: Path, with_root: bool
) -> None:
    """Opening a FIFO, even O_NONBLOCK, releases a writer blocked on it: the FIFO outside
    the root must never be opened, so its writer stays blocked."""
    root = tmp_path / "root"
    a = put(root / "h1" / "f.bin", b"ten bytes!")
    b = put(root / "h2" / "f.bin", b"ten bytes!")
    scanned = cands(a, b)
    outside = tmp_path / "victim"
    outside.mkdir()
    os.mkfifo(outside / "f.bin")
    writer = subprocess.Popen(["sh", "-c", 'echo x > "$1"', "sh", str(outside / "f.bin")])
    try:
        time.sleep(0.2)  # the writer is blocked in open()
        shutil.rmtree(root / "h2")
        (root / "h2").symlink_to(outside)  # the attacker's swap, after the walk
        with deadline(10, outside / "f.bin"):
            report = find_duplicates(scanned, root=str(root) if with_root else None)
        time.sleep(0.2)
        assert writer.poll() is None, "the FIFO outside the root was opened"
        assert report.sets == ()
        assert warned(report) == {str(b): FOLDER_SWAPPED}
    finally:
        with contextlib.suppress(OSError):
            os.close(os.open(outside / "f.bin", os.O_RDONLY | os.O_NONBLOCK))
        writer.kill()
        writer.wait()


def test_a_root_gone_before_hashing_is_a_warning_per_file(tmp_path: Path) -> None:
    a = put(tmp_path / "root" / "h" / "a", b"gone" * 10)
    b = put(tmp_path / "root" / "h" / "b", b"gone" * 10)
    scanned = cands(a, b)
    shutil.rmtree(tmp_path / "root")
    report = find_duplicates(scanned, root=str(tmp_path / "root"))
    assert report.sets == ()
    assert warned(report) == {str(a): VANISHED, str(b): VANISHED}


@pytest.mark.parametrize("workers", [1, 3])
def test_folder_descriptors_are_all_closed(tmp_path: Path, workers: int) -> None:
    """Files in 150 folders (more than a thread keeps open) and in the root itself."""
    paths = [put(tmp_path / f"h{i:03}" / "f", HEAD) for i in range(150)]
    paths += [put(tmp_path / "top", HEAD)]
    before = len(os.listdir("/proc/self/fd"))
    report = find_duplicates(cands(*paths), workers=workers, root=str(tmp_path))
    assert groups(report) == {names(paths)}
    assert len(os.listdir("/proc/self/fd")) == before


# -- both cores: size groups dealt to forked workers ---------------------------------------


def test_forked_workers_find_the_same_sets_and_warnings(tmp_path: Path) -> None:
    """Enough files to fork: each process's drops (vanished, changed, FIFO, symlink) and
    sets come back to the caller exactly as one process finds them."""
    rng = random.Random(11)
    paths: list[Path] = []
    for g in range(FORK_MIN_FILES // 2 + 20):  # as many size groups, two to four files each
        data = rng.randbytes(100 + g * 61)
        for i in range(2 + g % 3):
            body = data if i < 2 or g % 5 else data[:-1] + b"\0"  # some copies differ at the end
            paths.append(put(tmp_path / f"h{g:03}-{i}" / "f.bin", body, mtime=1000 + i))
    paths.append(link(paths[0], tmp_path / "h000-0" / "link.bin"))
    assert len(paths) >= FORK_MIN_FILES
    scanned = cands(*paths)
    fifo = paths[7]  # each a file of its group, spread over the groups (and so the workers)
    fifo.unlink()
    os.mkfifo(fifo)
    scanned[7] = dataclasses.replace(scanned[7], ino=os.lstat(fifo).st_ino)
    paths[30].unlink()
    put(paths[61], b"X" * os.lstat(paths[61]).st_size, mtime=5000)
    paths[90].unlink()
    paths[90].symlink_to(paths[91])
    expected = {str(fifo): NOT_REGULAR, str(paths[30]): VANISHED, str(paths[61]): CHANGED}
    expected[str(paths[90])] = SYMLINK
    fds = open_fds()
    with deadline(20, fifo):
        one = find_duplicates(scanned, workers=1, root=str(tmp_path))
        two = find_duplicates(scanned, workers=2, root=str(tmp_path))
        three = find_duplicates(list(reversed(scanned)), workers=3, root=str(tmp_path))
    assert open_fds() == fds
    assert warned(one) == expected
    for report in (two, three):
        assert report.sets == one.sets
        assert warned(report) == expected
        assert report.bytes_hashed == one.bytes_hashed
    assert len(one.sets) > FORK_MIN_FILES // 4
    assert any(str(paths[0]) in {c.path for c in s.extras} | {s.keep.path} for s in one.sets)


@pytest.mark.parametrize("size", [mmap.PAGESIZE, PARTIAL_SIZE])
def test_a_small_file_grown_past_a_page_boundary_after_its_check_is_not_hashed(
    tmp_path: Path, size: int
) -> None:
    """A file whose size ends on a page boundary, appended to with O_DIRECT (the new
    page never enters the page cache) after it was opened and checked: a read that may
    not wait would stop at that page and return just the size the scan saw, so the
    growth would pass unseen. Such a file is read by the blocking read, which sees the
    byte past the size and drops it as changed (found by review of the no-wait read)."""
    path = put(tmp_path / "f", random.Random(5).randbytes(size))
    st_ = os.lstat(path)
    want = (
        st_.st_ino,
        st_.st_mtime_ns,
        st_.st_size,
        st_.st_dev,
        st_.st_mode,
        st_.st_uid,
        st_.st_gid,
    )
    reader = Reader(Folders(str(tmp_path), OPEN_FLAGS), lambda i: str(path), lambda i: b"f")
    node = Inode(0, want)
    fd = reader.open_inode(node)
    assert fd is not None
    node.fd = fd
    try:
        w = os.open(path, os.O_WRONLY | os.O_DIRECT)
    except OSError as exc:  # tmpfs and some others refuse O_DIRECT
        os.close(fd)
        pytest.skip(f"O_DIRECT not supported here: {exc}")
    page = mmap.mmap(-1, mmap.PAGESIZE)
    page.write(b"y" * mmap.PAGESIZE)
    try:
        os.pwritev(w, [page], size)
    finally:
        os.close(w)
    if not reader._cached_head(node):
        reader.hash_head(node)
    assert node.digest == b""  # none: dropped
    assert [message for _, message in reader.warnings] == [CHANGED_WHILE_READ]
