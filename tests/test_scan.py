"""scan on real trees: categories, totals against an independent count, and safety."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from gradio_clean.classify import Category, Role
from gradio_clean.cli import app
from gradio_clean.pathfit import short_hashes
from gradio_clean.roots import Root
from gradio_clean.scan import FORK_MIN_ENTRIES, MAX_WARNINGS, MOUNT_WARNING, Hooks, ScanResult, scan
from tests.conftest import (
    DAY,
    HOUR,
    JS_SESSION,
    SHA256_A,
    SHA256_B,
    UUID_SESSION,
    GradioTree,
    cli_env,
    invoke_unprivileged,
    make_private,
    run_cli,
    run_unprivileged,
    write,
)


def scan_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["scan", "--json", *args])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def independent_count(root: Path) -> tuple[int, int, int]:
    """(files, bytes, disk bytes) by find and du: inodes once, no links followed."""
    out = subprocess.run(
        ["find", str(root), "-type", "f", "-printf", "%i %s\n"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    inodes = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()}
    du = subprocess.run(["du", "-sxB1", str(root)], check=True, capture_output=True, text=True)
    return len(inodes), sum(inodes.values()), int(du.stdout.split()[0])


def test_totals_equal_find_and_du(runner: CliRunner, gradio_tree: GradioTree) -> None:
    doc = scan_json(runner, str(gradio_tree.temp), str(gradio_tree.app))
    assert doc["schema_version"] == 1
    for root_doc, root in zip(doc["roots"], (gradio_tree.temp, gradio_tree.app), strict=True):
        files, nbytes, disk = independent_count(root)
        assert (root_doc["files"], root_doc["bytes"], root_doc["disk_bytes"]) == (
            files,
            nbytes,
            disk,
        )
        assert sum(c["files"] for c in root_doc["categories"].values()) == files
        assert sum(c["bytes"] for c in root_doc["categories"].values()) == nbytes


def test_overlapping_roots_are_a_usage_error(runner: CliRunner, gradio_tree: GradioTree) -> None:
    inner = str(gradio_tree.app / ".gradio")
    result = runner.invoke(app, ["scan", str(gradio_tree.app), inner])
    assert result.exit_code == 2
    assert "roots overlap" in result.stderr
    assert "Traceback" not in result.output


def test_one_folder_named_twice_is_scanned_once(runner: CliRunner, gradio_tree: GradioTree) -> None:
    again = str(gradio_tree.app / ".gradio" / "..")
    result = runner.invoke(app, ["scan", str(gradio_tree.app), again, "--json"])
    assert result.exit_code == 0, result.output
    assert [r["path"] for r in json.loads(result.stdout)["roots"]] == [str(gradio_tree.app)]


def test_every_file_lands_in_its_category(runner: CliRunner, gradio_tree: GradioTree) -> None:
    doc = scan_json(runner, str(gradio_tree.temp), str(gradio_tree.app))
    temp, app_root = doc["roots"]
    assert (temp["role"], app_root["role"]) == ("temp", "app")

    def count(category: str, root: Path) -> int:
        return sum(
            1
            for p in gradio_tree.expected.get(category, ())
            if (root / p).exists() and (root / p).is_relative_to(root)
        )

    # temp: 3 photos + audio + report + café + hard.bin (hard-link.bin is the same inode)
    assert temp["categories"]["cache"]["files"] == 7
    assert temp["categories"]["leftover"]["files"] == 4  # staging, tmp file x2, ffmpeg clip
    assert temp["categories"]["leftover"]["dirs"] == 2  # the empty hash folder, the tmp folder
    assert temp["categories"]["internal"]["files"] == 2
    assert temp["categories"]["other"]["files"] == 1  # notes.txt
    assert (temp["symlinks"], temp["special"], temp["hardlinks"]) == (1, 1, 1)
    assert app_root["categories"]["session"]["files"] == 3
    assert app_root["categories"]["flagged"]["files"] == 2
    assert app_root["categories"]["examples"]["files"] == 1
    assert app_root["categories"]["internal"]["files"] == 1
    assert app_root["categories"]["other"]["files"] == 5  # app.py, model, logo, pyc, outputs1
    assert count("session", gradio_tree.app) == 3


# -- helpers ----------------------------------------------------------------------------

SHAPE_TOP = {
    "schema_version",
    "command",
    "scanned_at",
    "duration_seconds",
    "roots",
    "filesystems",
    "warnings",
    "warnings_dropped",
}
SHAPE_ROOT = {
    "path",
    "role",
    "role_reason",
    "ignore_file",  # null without a .gradiocleanignore
    "files",
    "dirs",
    "bytes",
    "disk_bytes",
    "symlinks",
    "special",
    "hardlinks",
    "oldest",
    "newest",
    "categories",
    "ages",
    "largest",
}
CATEGORIES = ["cache", "leftover", "session", "examples", "flagged", "internal", "other"]
AGE_LABELS = ["< 1 h", "1 h - 1 d", "1 - 7 d", "7 - 30 d", "> 30 d"]


def find_files(root: Path) -> dict[int, tuple[int, float]]:
    """inode -> (size, mtime) of every regular file under root, by find(1)."""
    out = subprocess.run(
        ["find", str(root), "-xdev", "-type", "f", "-printf", "%i %s %T@\n"],
        check=True,
        capture_output=True,
    ).stdout.decode()
    files = {}
    for line in out.splitlines():
        ino, size, mtime = line.split()
        files[int(ino)] = (int(size), float(mtime))
    return files


def du_bytes(root: Path) -> int:
    du = subprocess.run(["du", "-sxB1", str(root)], check=True, capture_output=True)
    return int(du.stdout.split()[0])


def root_by_path(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    found: list[dict[str, Any]] = [r for r in doc["roots"] if r["path"] == str(path)]
    assert len(found) == 1
    return found[0]


def cats(root_doc: dict[str, Any], field: str = "files") -> dict[str, int]:
    return {name: c[field] for name, c in root_doc["categories"].items() if c[field]}


def utc(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")


# -- JSON shape ---------------------------------------------------------------------------


def test_json_shape(runner: CliRunner, gradio_tree: GradioTree) -> None:
    doc = scan_json(runner, str(gradio_tree.temp), str(gradio_tree.app))
    assert set(doc) == SHAPE_TOP
    assert (doc["schema_version"], doc["command"]) == (1, "scan")
    assert doc["warnings"] == [] and doc["warnings_dropped"] == 0
    assert isinstance(doc["duration_seconds"], float)
    assert dt.datetime.fromisoformat(doc["scanned_at"]).tzinfo is not None
    for root in doc["roots"]:
        assert set(root) == SHAPE_ROOT
        assert list(root["categories"]) == CATEGORIES
        for tally in root["categories"].values():
            assert set(tally) == {"files", "dirs", "bytes"}
            assert all(isinstance(v, int) for v in tally.values())
        assert [a["age"] for a in root["ages"]] == AGE_LABELS
        assert all(set(a) == {"age", "files", "bytes"} for a in root["ages"])
        assert all(
            set(i) == {"path", "category", "files", "bytes", "newest"} for i in root["largest"]
        )
        for key in ("files", "dirs", "bytes", "disk_bytes", "symlinks", "special", "hardlinks"):
            assert isinstance(root[key], int) and root[key] >= 0
        assert sum(a["files"] for a in root["ages"]) == root["files"]
        assert sum(a["bytes"] for a in root["ages"]) == root["bytes"]
        assert sum(c["dirs"] for c in root["categories"].values()) == root["dirs"]
    temp, app_root = doc["roots"]
    assert temp["dirs"] == 9  # 5 hash folders, tmp folder, vibe_edit_history, deep_links x2
    assert app_root["dirs"] == 13


def test_every_category_exactly(runner: CliRunner, gradio_tree: GradioTree) -> None:
    doc = scan_json(runner, str(gradio_tree.temp), str(gradio_tree.app))
    temp, app_root = doc["roots"]
    photo = 4 + 256 * 40
    assert cats(temp) == {"cache": 7, "leftover": 4, "internal": 2, "other": 1}
    assert cats(temp, "bytes") == {
        "cache": 3 * photo + 5004 + 550 + 12 + 120,
        "leftover": 100 + 7 + 10,
        "internal": 4,
        "other": 4,
    }
    assert cats(temp, "dirs") == {"cache": 4, "leftover": 2, "internal": 3}
    assert cats(app_root) == {
        "session": 3,
        "flagged": 2,
        "examples": 1,
        "internal": 1,
        "other": 5,
    }
    assert cats(app_root, "bytes") == {
        "session": 13 + 13 + 14,
        "flagged": 4 + photo,
        "examples": 2,
        "internal": 3,
        "other": 20 + 3000 + photo + 3 + 10,
    }
    # .gradio itself, checkpoints, static, __pycache__, outputs1 | 3 sessions |
    # flagged, flagged/image, flagged/image/<20hex> | cached_examples, cached_examples/12
    assert cats(app_root, "dirs") == {"other": 5, "session": 3, "flagged": 3, "examples": 2}


# -- safety ---------------------------------------------------------------------------------


def test_symlinks_out_of_the_root_are_counted_not_followed(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside"
    big = write(outside / "big.bin")
    os.truncate(big, 10**9)  # sparse: huge if anything reads or stats through the link
    write(outside / "dir" / "more.bin", b"x" * 5000)
    temp = tmp_path / "temp"
    write(temp / SHA256_A / "photo.png", b"12345")
    (temp / "link-file").symlink_to(big)
    (temp / "link-dir").symlink_to(outside / "dir", target_is_directory=True)
    (temp / SHA256_A / "inner-link").symlink_to(big)
    (temp / SHA256_A / "inner-dir-link").symlink_to(outside, target_is_directory=True)
    (temp / SHA256_B).symlink_to(outside, target_is_directory=True)  # a "hash folder" link
    (temp / "dangling").symlink_to(tmp_path / "gone")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(temp))  # links make it no temp dir otherwise

    root = root_by_path(scan_json(runner, str(temp)), temp)
    assert (root["files"], root["bytes"], root["symlinks"]) == (1, 5, 6)
    assert root["dirs"] == 1
    assert root["disk_bytes"] == du_bytes(temp)  # du -x does not follow links either
    assert root["largest"][0]["path"] == str(temp / SHA256_A)
    assert len(root["largest"]) == 1  # the linked "hash folder" is not one


def test_fifo_socket_and_device_are_recorded_and_the_scan_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(temp))  # a FIFO makes it no temp dir otherwise
    write(temp / SHA256_A / "photo.png", b"12345")
    os.mkfifo(temp / "fifo")
    os.mkfifo(temp / SHA256_A / "fifo-in-hash")
    os.mkfifo(tmp_path / "outside-fifo")
    (temp / "link-to-fifo").symlink_to(tmp_path / "outside-fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(os.path.relpath(temp / "sock"))  # relative: AF_UNIX paths are short
        special = 3
        try:
            os.mknod(temp / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
            special += 1
        except PermissionError:
            pass  # no CAP_MKNOD here; the FIFOs and socket still prove the point
        proc = run_cli("scan", "--json", str(temp), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert b"Traceback" not in proc.stderr
    root = json.loads(proc.stdout)["roots"][0]
    assert (root["files"], root["bytes"], root["special"], root["symlinks"]) == (1, 5, special, 1)
    assert cats(root) == {"cache": 1}


def test_non_utf8_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names that are not UTF-8: valid UTF-8 JSON with \\xNN, and a table that prints them."""
    monkeypatch.setenv("COLUMNS", "1000")  # long tmp paths must not be folded in the table
    base = os.fsencode(tmp_path)
    temp = base + b"/caf\xe9-temp"  # the root itself, so the table shows it
    os.makedirs(temp + b"/" + SHA256_A.encode() + b"/dir-\xff\xfe")
    with open(temp + b"/" + SHA256_A.encode() + b"/dir-\xff\xfe/f\xe9.bin", "wb") as f:
        f.write(b"123")
    with open(temp + b"/" + SHA256_A.encode() + b"/\x80.png", "wb") as f:
        f.write(b"4567")
    with open(temp + b"/tmpab12cd34", "wb") as f:
        f.write(b"89")
    os.makedirs(temp + b"/\xe9tc")  # an unrecognised folder with a bad name
    with open(temp + b"/\xe9tc/x", "wb") as f:
        f.write(b"0")
    monkeypatch.setenv("GRADIO_TEMP_DIR", os.fsdecode(temp))  # \xe9tc/ is no Gradio name

    proc = run_cli("scan", "--json", os.fsdecode(temp))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.decode("utf-8"))  # strict: must be valid UTF-8
    root = doc["roots"][0]
    assert root["path"] == str(tmp_path) + "/caf\\xe9-temp"
    assert root["largest"][0]["path"] == str(tmp_path) + "/caf\\xe9-temp/" + SHA256_A
    assert (root["files"], root["bytes"]) == (4, 10)
    assert cats(root) == {"cache": 2, "leftover": 1, "other": 1}

    proc = run_cli("scan", os.fsdecode(temp))
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.decode("utf-8")
    assert "caf\\xe9-temp" in table
    assert "\ufffd" not in table


def test_hard_links_are_counted_once(runner: CliRunner, tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    first = write(temp / SHA256_A / "a.bin", b"x" * 1000)
    write(temp / SHA256_B / "b.bin", b"y" * 10)
    os.link(first, temp / SHA256_A / "a-again.bin")  # same folder
    os.link(first, temp / SHA256_B / "a.bin")  # another hash folder
    os.link(first, temp / "tmpab12cd34")  # top level: the first path seen owns the inode
    root = root_by_path(scan_json(runner, str(temp)), temp)
    assert (root["files"], root["bytes"], root["hardlinks"]) == (2, 1010, 3)
    assert sum(cats(root, "bytes").values()) == 1010
    assert sum(cats(root).values()) == 2
    assert root["disk_bytes"] == du_bytes(temp)
    largest = {i["path"]: i["files"] for i in root["largest"]}
    assert largest == {str(temp / SHA256_A): 2, str(temp / SHA256_B): 2}  # paths, not inodes


def test_a_tree_deeper_than_the_recursion_limit_and_path_max(tmp_path: Path) -> None:
    depth = 3000
    assert depth > sys.getrecursionlimit()
    temp = tmp_path / "temp"
    hash_dir = temp / SHA256_A
    hash_dir.mkdir(parents=True)
    fd = os.open(hash_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            os.mkdir("d", dir_fd=fd)
            if level % 1000 == 999:
                leaf = os.open("f.bin", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                os.write(leaf, b"z" * level)
                os.close(leaf)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf = os.open("bottom.bin", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"b" * 7)
        os.close(leaf)
    finally:
        os.close(fd)
    try:
        assert len(str(hash_dir)) + 2 * depth > os.pathconf("/", "PC_PATH_MAX")
        result = scan([Root(str(temp), Role.TEMP, "test")])
        assert result.warnings == ()
        (root,) = result.roots
        assert (root.files, root.dirs) == (4, 1 + depth)
        assert root.bytes == 999 + 1999 + 2999 + 7
        assert root.categories[Category.CACHE].dirs == 1 + depth
        assert (root.largest[0].files, root.largest[0].bytes) == (4, root.bytes)
    finally:
        # pytest's cleanup (shutil.rmtree) recurses once per level on Python < 3.12
        subprocess.run(["rm", "-rf", "--", str(temp)], check=True)


def test_unreadable_folders_become_warnings(world_dir: Path) -> None:
    temp = world_dir / "temp"
    write(temp / SHA256_A / "photo.png", b"12345")
    write(temp / SHA256_A / "locked-file.bin", b"123").chmod(0)  # stat needs no read
    write(temp / SHA256_B / "secret.bin", b"x" * 1000)
    write(temp / SHA256_A / "sub" / "c.txt", b"12")
    bad_name = os.fsdecode(b"priv\xe9")
    write(temp / SHA256_A / bad_name / "hidden.bin", b"x" * 100)
    write(temp / "tmpq1w2e3r4" / "clip.mp4", b"1234567")
    for folder in (temp / SHA256_B, temp / SHA256_A / bad_name, temp / "tmpq1w2e3r4"):
        make_private(folder)

    result = invoke_unprivileged(["scan", "--json", str(temp)])
    assert result.crash is None, result.crash
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    root = doc["roots"][0]
    assert (root["files"], root["bytes"]) == (3, 10)
    assert cats(root, "bytes") == {"cache": 10}
    assert (root["dirs"], cats(root, "dirs")) == (5, {"cache": 4, "leftover": 1})
    assert sorted((w["path"], w["message"]) for w in doc["warnings"]) == sorted(
        [
            (str(temp / SHA256_B), "permission denied"),
            (str(temp / SHA256_A) + "/priv\\xe9", "permission denied"),
            (str(temp / "tmpq1w2e3r4"), "permission denied"),
        ]
    )
    assert "warning: " + str(temp / SHA256_B) + ": permission denied" in result.stderr
    assert "priv\\xe9: permission denied" in result.stderr

    result = invoke_unprivileged(["scan", str(temp)])
    assert result.crash is None, result.crash
    assert result.exit_code == 0, result.output
    assert result.stderr.count("permission denied") == 3


def test_mount_points_are_not_crossed(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare(1) is not installed, so no mount namespace can be made")
    temp, app_dir = tmp_path / "temp", tmp_path / "app"
    write(temp / SHA256_A / "photo.png", b"12345")
    (temp / SHA256_A / "mnt").mkdir()
    (temp / SHA256_B).mkdir()  # a whole hash folder that is a mount point
    write(app_dir / JS_SESSION / "upload.txt", b"123")
    (app_dir / ".gradio").mkdir()  # a nested .gradio that is a mount point
    mounts = [temp / SHA256_A / "mnt", temp / SHA256_B, app_dir / ".gradio"]
    scan_argv = [sys.executable, "-m", "gradio_clean", "scan", "--json", str(temp), str(app_dir)]
    script = "\n".join(
        [
            "set -e",
            *(f'mount -t tmpfs gradio-clean-test "{m}"' for m in mounts),
            *(f'head -c 4096 /dev/zero > "{m}/big.bin"' for m in mounts),
            f'mkdir "{mounts[2]}/flagged"',
            f'head -c 100 /dev/zero > "{mounts[2]}/flagged/log.csv"',
            'exec "$@"',
        ]
    )
    proc = subprocess.run(
        [unshare, "-m", "--propagation", "private", "sh", "-c", script, "sh", *scan_argv],
        capture_output=True,
        timeout=60,
        env=cli_env(),
        check=False,
    )
    if proc.returncode != 0 and not proc.stdout:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode(errors='replace').strip()}")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    temp_doc, app_doc = doc["roots"]
    assert (temp_doc["files"], temp_doc["bytes"]) == (1, 5)
    assert (app_doc["files"], app_doc["bytes"]) == (1, 3)
    assert cats(app_doc) == {"session": 1}
    warned = sorted((w["path"], w["message"]) for w in doc["warnings"])
    assert warned == sorted((str(m), MOUNT_WARNING) for m in mounts)  # each exactly once
    assert not any(m.joinpath("big.bin").exists() for m in mounts)  # the namespace is gone


# -- sizes against an independent count ------------------------------------------------------


@dataclass
class RandomTree:
    temp: Path
    app: Path
    category_bytes: dict[tuple[str, str], int]  # (root name, category) -> bytes
    category_files: dict[tuple[str, str], int]


def build_random_tree(base: Path, seed: int, now: float) -> RandomTree:
    """A few thousand files with random sizes, ages and hard links, shaped like Gradio's."""
    rng = random.Random(seed)
    temp, app_dir = base / "temp", base / "app"
    tree = RandomTree(temp, app_dir, defaultdict(int), defaultdict(int))
    inodes: dict[tuple[str, str], list[Path]] = defaultdict(list)

    def age() -> float:
        # whole seconds, well away from the bucket edges (1 h, 1 d, 7 d, 30 d)
        edge = rng.choice([0, 3600, 86400, 7 * 86400, 30 * 86400, 200 * 86400])
        return edge + rng.randint(120, 3000)

    def make(path: Path, root: str, category: str) -> None:
        same_kind = inodes[root, category]  # the first path seen owns the inode: same category
        if same_kind and rng.random() < 0.05:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(rng.choice(same_kind), path)
            return
        size = rng.choice([0, rng.randint(1, 100), rng.randint(100, 20000)])
        path.parent.mkdir(parents=True, exist_ok=True)
        if rng.random() < 0.03:
            with path.open("wb") as f:
                f.truncate(size * 50)  # sparse
            size *= 50
        else:
            path.write_bytes(rng.randbytes(size))
        t = int(now - age())
        os.utime(path, (t, t))
        same_kind.append(path)
        tree.category_bytes[root, category] += size
        tree.category_files[root, category] += 1

    for i in range(300):
        name = f"{rng.getrandbits(256):064x}" if i % 3 else f"{rng.getrandbits(160):040x}"
        hash_dir = temp / name
        hash_dir.mkdir(parents=True)
        for j in range(rng.randint(0, 12)):
            make(hash_dir / f"file {j}.png", "temp", "cache")
        if rng.random() < 0.1:
            make(hash_dir / f".file 0.png.{rng.getrandbits(32):08x}", "temp", "leftover")
    for i in range(1700):  # over FORK_MIN_ENTRIES entries: the CLI shares them among workers
        make(temp / f"tmp{rng.getrandbits(32):08x}", "temp", "leftover")
        if i % 17 == 0:
            (temp / f"link{i}").symlink_to(f"/etc/{i}")
    for i in range(60):
        session = f"{rng.getrandbits(128):032x}" if i % 2 else f"k{i}x{i + 1}q{rng.randint(0, 9)}z"
        for j in range(rng.randint(1, 20)):
            make(app_dir / session / f"up{j}.bin", "app", "session")
    for j in range(200):
        make(app_dir / "checkpoints" / f"{j % 7}" / f"w{j}.bin", "app", "other")
    for j in range(100):
        make(app_dir / ".gradio" / "flagged" / "image" / f"{j:020x}" / "in.png", "app", "flagged")
    return tree


def test_sizes_equal_find_and_du_on_a_random_tree(runner: CliRunner, tmp_path: Path) -> None:
    now = float(int(time.time()))
    tree = build_random_tree(tmp_path, 1, now)
    assert len(os.listdir(tree.temp)) >= FORK_MIN_ENTRIES
    paths = {"temp": tree.temp, "app": tree.app}
    found = {name: find_files(path) for name, path in paths.items()}
    disk = {name: du_bytes(path) for name, path in paths.items()}
    roots = [Root(str(tree.temp), Role.TEMP, "test"), Root(str(tree.app), Role.APP, "test")]
    for jobs in (1, 3):  # in this process, and shared among forked workers
        result = scan(roots, now=now, jobs=jobs)
        for (name, files), root in zip(found.items(), result.roots, strict=True):
            assert len(files) > 500
            assert root.files == len(files)
            assert root.bytes == sum(s for s, _ in files.values())
            assert root.disk_bytes == disk[name]
            assert root.oldest == min(m for _, m in files.values())
            assert root.newest == max(m for _, m in files.values())
            expected_ages = [0] * 5
            for _size, mtime in files.values():
                age = now - mtime
                expected_ages[sum(age >= edge for edge in (HOUR, DAY, 7 * DAY, 30 * DAY))] += 1
            assert [a.files for a in root.ages] == expected_ages
            for category, tally in root.categories.items():
                assert tally.bytes == tree.category_bytes[name, category.value], category
                assert tally.files == tree.category_files[name, category.value], category

    doc = scan_json(runner, str(tree.temp), str(tree.app))
    for root_doc, (name, files) in zip(doc["roots"], found.items(), strict=True):
        assert (root_doc["files"], root_doc["bytes"], root_doc["disk_bytes"]) == (
            len(files),
            sum(s for s, _ in files.values()),
            disk[name],
        )
        assert root_doc["oldest"] == utc(min(m for _, m in files.values()))


# -- ages and the largest items ----------------------------------------------------------------


def test_age_histogram_and_oldest_newest(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(time.time())
    temp = tmp_path / "temp"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(temp))  # old-link makes it no temp dir otherwise
    ages = {  # age in seconds -> size in bytes
        600: 1,
        1800: 2,
        5 * HOUR: 4,
        2 * DAY: 8,
        10 * DAY: 16,
        20 * DAY: 32,
        45 * DAY: 64,
        400 * DAY: 128,
    }
    for i, (age, size) in enumerate(ages.items()):
        path = write(temp / SHA256_A / f"f{i}.bin", b"x" * size)
        os.utime(path, (now - age, now - age))
    os.link(temp / SHA256_A / "f0.bin", temp / SHA256_A / "f0-link.bin")  # counted once
    (temp / "old-link").symlink_to("nowhere")
    os.utime(temp / "old-link", (now - 9000 * DAY,) * 2, follow_symlinks=False)  # not a file
    os.utime(temp / SHA256_A, (now - 5000 * DAY,) * 2)  # folders do not count either
    root = root_by_path(scan_json(runner, str(temp)), temp)
    assert [(a["age"], a["files"], a["bytes"]) for a in root["ages"]] == [
        ("< 1 h", 2, 3),
        ("1 h - 1 d", 1, 4),
        ("1 - 7 d", 1, 8),
        ("7 - 30 d", 2, 48),
        ("> 30 d", 2, 192),
    ]
    assert root["oldest"] == utc(now - 400 * DAY)
    assert root["newest"] == utc(now - 600)
    assert root["largest"][0]["newest"] == utc(now - 600)


def test_empty_root_has_no_oldest_or_newest(runner: CliRunner, tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    (temp / SHA256_A).mkdir(parents=True)
    root = root_by_path(scan_json(runner, str(temp)), temp)
    assert (root["files"], root["oldest"], root["newest"]) == (0, None, None)
    assert cats(root, "dirs") == {"leftover": 1}  # an empty hash folder


def test_top_lists_the_largest_hash_folders_and_sessions_in_order(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # long tmp paths must not be folded in the table
    temp, app_dir = tmp_path / "temp", tmp_path / "app"
    hash_sizes = {"1" * 64: 5000, "2" * 64: 1000, "3" * 40: 3000, "4" * 64: 4000, "5" * 64: 2000}
    for name, size in hash_sizes.items():
        write(temp / name / "a.bin", b"x" * (size - 10))
        write(temp / name / "b.bin", b"x" * 10)
    write(temp / "tmpab12cd34", b"x" * 99999)  # not a hash folder: never listed
    session_sizes = {JS_SESSION: 2500, UUID_SESSION: 6000, "0" * 32: 100}
    for name, size in session_sizes.items():
        write(app_dir / name / "up.bin", b"s" * size)
    write(app_dir / "checkpoints" / "big.bin", b"c" * 50000)  # not a session: never listed

    doc = scan_json(runner, "--top", "3", str(temp), str(app_dir))
    temp_doc, app_doc = doc["roots"]
    assert [(i["path"], i["bytes"], i["files"]) for i in temp_doc["largest"]] == [
        (str(temp / ("1" * 64)), 5000, 2),
        (str(temp / ("4" * 64)), 4000, 2),
        (str(temp / ("3" * 40)), 3000, 2),
    ]
    assert [(i["path"], i["category"]) for i in app_doc["largest"]] == [
        (str(app_dir / UUID_SESSION), "session"),
        (str(app_dir / JS_SESSION), "session"),
        (str(app_dir / ("0" * 32)), "session"),
    ]
    assert scan_json(runner, "--top", "0", str(temp))["roots"][0]["largest"] == []
    assert len(scan_json(runner, str(temp))["roots"][0]["largest"]) == 5  # default 10

    result = runner.invoke(app, ["scan", "--top", "3", str(temp), str(app_dir)])
    assert result.exit_code == 0, result.output
    table = result.stdout[result.stdout.index("Largest hash folders and sessions (top 3)") :]
    names = [short_hashes(n) for n in (*hash_sizes, *session_sizes)]  # as the table shows them
    shown = sorted((n for n in names if n in table), key=table.index)
    assert shown == [UUID_SESSION, "11111111…1111", "44444444…4444"]

    result = runner.invoke(app, ["scan", "--top", "0", str(temp)])
    assert result.exit_code == 0
    assert "Largest" not in result.stdout
    result = runner.invoke(app, ["scan", "--top", "-1", str(temp)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# -- a tree that changes under the scan ----------------------------------------------------


def test_entries_that_vanish_mid_scan_are_neither_a_crash_nor_counted(tmp_path: Path) -> None:
    """prune's hooks see each file as it is walked; here one deletes the rest of the tree."""
    temp = tmp_path / "temp"
    sizes = {f"{i}" * 64: 10**i for i in range(1, 6)}
    for name, size in sizes.items():
        write(temp / name / "a.bin", b"x" * size)
        write(temp / name / "sub" / "b.bin", b"y")
    seen: list[str] = []

    def delete_everything_else(rel: str, _st: os.stat_result, _cat: Category) -> None:
        seen.append(rel)
        if len(seen) == 1:
            keep = rel.split("/")[0]
            for name in sizes:
                if name != keep:
                    shutil.rmtree(temp / name)
            shutil.rmtree(temp / keep / "sub", ignore_errors=True)

    result = scan([Root(str(temp), Role.TEMP, "test")], hooks=Hooks(on_file=delete_everything_else))
    (survivor,) = os.listdir(temp)
    (root,) = result.roots
    assert all(not w.path.startswith(str(temp / survivor)) for w in result.warnings)
    assert len(seen) in (1, 2)  # b.bin too, if sub/ was walked before a.bin
    assert root.files == len(seen)
    assert root.bytes == sum(sizes[survivor] if p.endswith("a.bin") else 1 for p in seen)


def test_warnings_are_capped(world_dir: Path) -> None:
    temp = world_dir / "temp"
    for i in range(MAX_WARNINGS + 5):
        folder = temp / f"{i:064x}"
        folder.mkdir(parents=True)
        make_private(folder)
    result = invoke_unprivileged(["scan", "--json", str(temp)])
    assert result.crash is None, result.crash
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert (len(doc["warnings"]), doc["warnings_dropped"]) == (MAX_WARNINGS, 5)
    assert doc["roots"][0]["dirs"] == MAX_WARNINGS + 5
    assert result.stderr.count("permission denied") == MAX_WARNINGS
    assert "warning: 5 more warnings not shown" in result.stderr


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_warnings_are_capped_and_counted_across_roots_and_workers(
    world_dir: Path, jobs: int
) -> None:
    """Every warning is kept or counted as dropped, whatever the workers' shares."""
    many, few = world_dir / "many", world_dir / "few"
    for folder, n in ((many, MAX_WARNINGS + 5), (few, 30)):
        for i in range(n):
            locked = folder / f"{i:064x}"
            locked.mkdir(parents=True)
            make_private(locked)
    write(few / "tmpab12cd34", b"123")
    roots = [Root(str(many), Role.TEMP, "test"), Root(str(few), Role.TEMP, "test")]

    def run() -> ScanResult:
        return scan(roots, jobs=jobs)

    result = run_unprivileged(run)
    assert len(result.warnings) == MAX_WARNINGS
    assert result.warnings_dropped == 35
    assert {w.message for w in result.warnings} == {"permission denied"}
    assert len({w.path for w in result.warnings}) == MAX_WARNINGS
    assert [(r.dirs, r.files, r.bytes) for r in result.roots] == [
        (MAX_WARNINGS + 5, 0, 0),
        (30, 1, 3),
    ]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_root_passes_by_the_entries_it_walks_apart(tmp_path: Path, jobs: int) -> None:
    """Root.apart (roots.nest_roots: a temp dir at the top of .gradio): the entry is
    neither counted nor handed to a hook; its own root counts it, once. With jobs=2 the
    entries are shared among forked workers (over FORK_MIN_ENTRIES of them)."""
    gradio_dir = tmp_path / ".gradio"
    write(gradio_dir / "tmp" / SHA256_A / "photo.png", b"12345")
    write(gradio_dir / "flagged" / "dataset1.csv", b"image\n")
    for i in range(FORK_MIN_ENTRIES if jobs > 1 else 0):
        (gradio_dir / f"d{i}").mkdir()
    seen: list[str] = []

    def on_file(rel: str, _st: os.stat_result, _cat: Category) -> None:
        seen.append(rel)

    roots = [  # the shared walk first: its workers fork with nothing seen yet
        Root(str(gradio_dir), Role.GRADIO, "test", apart=("tmp",)),
        Root(str(gradio_dir / "tmp"), Role.TEMP, "test"),
    ]

    def absorb(got: object) -> None:  # a forked worker's share of files
        seen.extend(cast(list[str], got))

    hooks = Hooks(on_file=on_file, export=lambda: list(seen), absorb=absorb)
    result = scan(roots, jobs=jobs, hooks=hooks)
    outer, temp = result.roots
    assert (temp.files, temp.bytes) == (1, 5)
    assert (outer.files, outer.bytes) == (1, 6)
    assert outer.dirs == 1 + FORK_MIN_ENTRIES * (jobs > 1)  # flagged and the d*: not tmp
    assert sorted(seen) == [f"{SHA256_A}/photo.png", "flagged/dataset1.csv"]


def test_a_hash_folder_of_every_kind_of_entry_counts_as_find_and_du_do(tmp_path: Path) -> None:
    """The item folder's own loop counts its common files (regular, one link) apart from
    every other entry: interleaved here with staging copies, hard links, a symlink, a
    FIFO, an empty file and a subfolder, past several progress reports (every 1024 files).
    Every number equals an independent count, and progress is told at each 1024th file."""
    now = float(int(time.time()))
    temp = tmp_path / "temp"
    rng = random.Random(11)
    folder = temp / SHA256_A
    sizes: dict[str, int] = {}
    for i in range(2600):
        name = f"f{i:04d}.bin"
        age = rng.choice((60, 2 * HOUR, 3 * DAY, 10 * DAY, 40 * DAY))
        write(folder / name, b"x" * rng.randint(0, 9000), age=age)
        sizes[name] = (folder / name).stat().st_size
        if i % 97 == 0:
            os.link(folder / name, folder / f"link{i:04d}.bin")  # counted once
        if i % 211 == 0:
            write(folder / f".f{i:04d}.bin.abcd{i:04d}", b"s" * 100)  # a staging copy: leftover
        if i == 1000:
            (folder / "sym").symlink_to("f0000.bin")
            os.mkfifo(folder / "fifo")
            write(folder / "sub" / "deep.bin", b"d" * 4000, age=5 * DAY)
    write(temp / SHA256_B / "one.bin", b"y" * 10)
    files = find_files(temp)
    told: list[int] = []
    for jobs in (1, 2):
        told.clear()
        hooks = Hooks(progress=lambda n, _b: told.append(n))
        result = scan([Root(str(temp), Role.TEMP, "test")], now=now, jobs=jobs, hooks=hooks)
        root = result.roots[0]
        assert root.files == len(files)
        assert root.bytes == sum(s for s, _ in files.values())
        assert root.disk_bytes == du_bytes(temp)
        assert root.oldest == min(m for _, m in files.values())
        assert root.newest == max(m for _, m in files.values())
        assert (root.symlinks, root.special) == (1, 1)
        assert root.hardlinks == len([i for i in range(2600) if i % 97 == 0])
        staging = [i for i in range(2600) if i % 211 == 0]
        assert root.categories[Category.LEFTOVER].files == len(staging)
        assert root.categories[Category.LEFTOVER].bytes == 100 * len(staging)
        assert root.categories[Category.CACHE].files == len(files) - len(staging)
        assert [a.files for a in root.ages] == [
            sum(1 for _, m in files.values() if bucket(now - m) == i) for i in range(5)
        ]
        assert [a.bytes for a in root.ages] == [
            sum(s for s, m in files.values() if bucket(now - m) == i) for i in range(5)
        ]
        assert root.largest[0].files == 1 + 2600 + len(staging) + 27  # every path of a file
        if jobs == 1:
            assert set(told) == {1024, 2048}


def bucket(age: float) -> int:
    """The AGE_BUCKETS index of a file this many seconds old."""
    return sum(age >= edge for edge in (HOUR, DAY, 7 * DAY, 30 * DAY))
