"""gradio-clean against what a real Gradio app (from PyPI) leaves on disk.

The app (gradio_app.py) runs in a subprocess; gradio_client uploads files,
gets images and audio back and flags once; then the app is stopped with SIGTERM
or kept serving, and the real `gradio-clean` command runs on its folders.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import EXAMPLE_NAME, PLAN, Flow, run_cli, snapshot

pytestmark = pytest.mark.e2e

HOUR = 3600
HEX64 = "[0-9a-f]{64}"
HEX20 = "[0-9a-f]{20}"
UUID4 = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"

# What Gradio 6.31 wrote in this flow, path by path, and the category each path
# must get. Written from what the app did, not from gradio_clean.classify.
TEMP_FILES: tuple[tuple[str, str], ...] = (
    # uploads (sha256 of seed + content), outputs (image.webp, audio.wav), the example's copy
    (rf"{HEX64}/[^/]+", "cache"),
    # the empty NamedTemporaryFile gr.File(type="filepath") makes per file, never deleted
    (r"tmp[a-z0-9_]{8}", "leftover"),
)
TEMP_DIRS = (HEX64, "vibe_edit_history")


def app_files(sessions: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The app dir's layout; session folders are the clients' own session hashes."""
    any_session = "|".join(map(re.escape, sessions))
    return (
        # the resource-cleanup demo's per-session folder, one image per call
        (rf"(?:{any_session})/[A-Za-z0-9_-]{{11}}\.webp", "session"),
        (r"\.gradio/cached_examples/[0-9]+/(?:log|indices)\.csv", "examples"),
        (
            rf"\.gradio/cached_examples/[0-9]+/(?:picture|sound)/{HEX20}/(?:image\.webp|audio\.wav)",
            "examples",
        ),
        (r"\.gradio/flagged/dataset1\.csv", "flagged"),
        (rf"\.gradio/flagged/(?:uploads|picture|sound)/{HEX20}/[^/]+", "flagged"),
        (rf"app\.py|{re.escape(EXAMPLE_NAME)}", "other"),
    )


def app_dirs(sessions: Sequence[str]) -> tuple[str, ...]:
    return (
        "|".join(map(re.escape, sessions)),
        r"\.gradio",
        r"\.gradio/(?:cached_examples|flagged)",
        rf"\.gradio/cached_examples/[0-9]+(?:/(?:picture|sound)(?:/{HEX20})?)?",
        rf"\.gradio/flagged/(?:uploads|picture|sound)(?:/{HEX20})?",
    )


def files_under(root: Path) -> dict[str, int]:
    """Regular files below `root` by relative path, with their sizes."""
    return {rel: size for rel, (kind, _, size, _) in snapshot(root).items() if kind == "f"}


def dirs_under(root: Path) -> list[str]:
    return [rel for rel, (kind, *_) in snapshot(root).items() if kind == "d"]


def categorize(paths: Iterable[str], layout: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Each path's category by the first pattern it matches fully; unmatched paths fail."""
    out: dict[str, str] = {}
    unmatched = []
    for rel in paths:
        cat = next((c for pattern, c in layout if re.fullmatch(pattern, rel)), None)
        if cat is None:
            unmatched.append(rel)
        else:
            out[rel] = cat
    assert not unmatched, f"Gradio wrote paths this test does not know: {unmatched}"
    return out


def tally(sizes: dict[str, int], cats: dict[str, str]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for rel, cat in cats.items():
        files, nbytes = out.get(cat, (0, 0))
        out[cat] = (files + 1, nbytes + sizes[rel])
    return out


def find_totals(root: Path) -> tuple[int, int, int]:
    """(files, bytes, folders) by find(1), a hard-linked inode counted once."""
    listing = subprocess.run(
        ["find", str(root), "-type", "f", "-printf", r"%D %i %s\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    inodes: dict[tuple[str, str], int] = {}
    for line in listing.splitlines():
        dev, ino, size = line.split()
        inodes[dev, ino] = int(size)
    folders = subprocess.run(
        ["find", str(root), "-mindepth", "1", "-type", "d", "-printf", "d\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.count("d")
    return len(inodes), sum(inodes.values()), folders


def duplicate_sets(paths: Iterable[Path]) -> list[list[Path]]:
    """Non-empty files with the same content and more than one inode among them."""
    by_content: dict[bytes, list[Path]] = {}
    for p in paths:
        if p.lstat().st_size:
            by_content.setdefault(hashlib.sha256(p.read_bytes()).digest(), []).append(p)
    return [
        sorted(group)
        for group in by_content.values()
        if len({(p.lstat().st_dev, p.lstat().st_ino) for p in group}) > 1
    ]


def age_tree(folder: Path, seconds: float) -> None:
    """Make a folder and everything in it look `seconds` old."""
    t = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(folder, topdown=False):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (t, t), follow_symlinks=False)
    os.utime(folder, (t, t), follow_symlinks=False)


# -- what Gradio did ----------------------------------------------------------------------


def test_clients_got_images_and_audio_back(stopped: Flow) -> None:
    assert len(set(stopped.session_hashes)) == len(PLAN)
    for run in stopped.clients:
        image, audio = run.image.read_bytes(), run.audio.read_bytes()
        assert (image[:4], image[8:12]) == (b"RIFF", b"WEBP"), run.image
        assert (audio[:4], audio[8:12]) == (b"RIFF", b"WAVE"), run.audio
        assert run.summary.startswith(f"{len(run.uploaded)} files ")


def test_sigterm_leaves_the_cache_behind(stopped: Flow) -> None:
    app = stopped.app
    # Killed by the signal: no lifespan shutdown ran, so delete_cache=(60, 3600) deleted nothing.
    assert app.returncode == -signal.SIGTERM
    after = snapshot(app.temp_dir)
    assert after == stopped.temp_before_stop
    names = {rel.split("/", 1)[1] for rel in files_under(app.temp_dir) if "/" in rel}
    uploaded = {name for run in stopped.clients for name in run.uploaded}
    assert uploaded | {"image.webp", "audio.wav", EXAMPLE_NAME} <= names


def test_gradio_wrote_the_layout_our_classifier_expects(stopped: Flow) -> None:
    """Pins down Gradio 6.31's on-disk layout; if Gradio changes it, classify.py must too."""
    app, sessions = stopped.app, stopped.session_hashes
    temp_files = files_under(app.temp_dir)
    temp_cats = categorize(temp_files, TEMP_FILES)
    categorize(dirs_under(app.temp_dir), [(d, "dir") for d in TEMP_DIRS])
    assert not os.listdir(app.temp_dir / "vibe_edit_history")
    # sha256 folders, and one empty tmp file per file that went through gr.File,
    # the cached example's included; no staging copy (.<name>.XXXXXXXX) survived.
    leftovers = [rel for rel, cat in temp_cats.items() if cat == "leftover"]
    assert all(temp_files[rel] == 0 for rel in leftovers)
    assert len(leftovers) == 1 + sum(map(len, PLAN))
    assert not [rel for rel in temp_files if os.path.basename(rel).startswith(".")]
    # The same bytes under two names share one hash folder, as two inodes.
    twins = [rel for rel in temp_files if rel.endswith(("/a.txt", "/résumé (copy).txt"))]
    assert len(twins) == 2
    assert len({os.path.dirname(rel) for rel in twins}) == 1
    assert len({(app.temp_dir / rel).stat().st_ino for rel in twins}) == 2

    app_layout = app_files(sessions)
    cats = categorize(files_under(app.app_dir), app_layout)
    for pattern, _ in app_layout:  # every kind of entry was really written
        assert any(re.fullmatch(pattern, rel) for rel in cats), pattern
    categorize(dirs_under(app.app_dir), [(d, "dir") for d in app_dirs(sessions)])
    assert all(re.fullmatch(UUID4, s) for s in sessions)  # gradio_client: str(uuid4())
    assert not (app.app_dir / ".gradio" / "certificate.pem").exists()  # only with share=True
    # The server put nothing in the system temp dir.
    assert not os.listdir(app.sys_tmp)


# -- scan -----------------------------------------------------------------------------------


def scan(flow: Flow) -> dict[str, dict[str, Any]]:
    app = flow.app
    _, doc = run_cli(
        "scan",
        "--json",
        "--top",
        "1000",
        str(app.temp_dir),
        str(app.app_dir),
        temp_dir=app.temp_dir,
        cwd=app.base,
    )
    assert doc["warnings"] == []
    return {r["path"]: r for r in doc["roots"]}


def test_scan_puts_every_file_in_its_category(stopped: Flow) -> None:
    app, sessions = stopped.app, stopped.session_hashes
    roots = scan(stopped)
    temp, appd = roots[str(app.temp_dir)], roots[str(app.app_dir)]
    assert (temp["role"], appd["role"]) == ("temp", "app")
    for root, layout, got in (
        (app.temp_dir, TEMP_FILES, temp),
        (app.app_dir, app_files(sessions), appd),
    ):
        sizes = files_under(root)
        expected = tally(sizes, categorize(sizes, layout))
        categories = got["categories"]
        assert isinstance(categories, dict)
        actual = {c: (t["files"], t["bytes"]) for c, t in categories.items() if t["files"]}
        assert actual == expected, root
    # Every hash folder and every session folder is ranked, under its category.
    hash_dirs = {
        (str(app.temp_dir / d), "cache") for d in dirs_under(app.temp_dir) if re.fullmatch(HEX64, d)
    }
    session_dirs = {(str(app.app_dir / s), "session") for s in sessions}
    largest = [*temp["largest"], *appd["largest"]]
    assert {(i["path"], i["category"]) for i in largest} == hash_dirs | session_dirs


def test_scan_totals_equal_an_independent_count(stopped: Flow) -> None:
    roots = scan(stopped)
    for root in (stopped.app.temp_dir, stopped.app.app_dir):
        got = roots[str(root)]
        files, nbytes, folders = find_totals(root)
        assert (got["files"], got["bytes"], got["dirs"]) == (files, nbytes, folders), root
        categories = got["categories"]
        assert isinstance(categories, dict)
        assert sum(t["files"] for t in categories.values()) == files
        assert sum(t["bytes"] for t in categories.values()) == nbytes


# -- prune ----------------------------------------------------------------------------------


def test_prune_duplicates_hardlink_keeps_every_url_serving(serving: Flow) -> None:
    app = serving.app
    files = [app.temp_dir / rel for rel in files_under(app.temp_dir)]
    dup_sets = duplicate_sets(files)
    # Real duplicates: two names in one hash folder, and one WAV in two hash
    # folders (the app's output, hashed by samples, and its re-upload for flagging).
    assert any(len({p.parent for p in s}) == 1 for s in dup_sets), dup_sets
    assert any(len({p.parent for p in s}) > 1 for s in dup_sets), dup_sets
    with httpx.Client(timeout=10.0, trust_env=False) as http:
        before = {}
        for path in files:
            response = http.get(app.file_url(path))
            if response.status_code == 200:
                before[path] = response.content
        assert {p for p in files if p.parent != app.temp_dir} <= set(before)

        _, doc = run_cli(
            "prune",
            str(app.temp_dir),
            "--duplicates",
            "--dedupe",
            "hardlink",
            "--apply",
            "--yes",
            "--json",
            temp_dir=app.temp_dir,
            cwd=app.base,
        )

        for path, content in before.items():
            response = http.get(app.file_url(path))
            assert response.status_code == 200, path
            assert response.content == content, path
    # Copies are linked only within one owner, group and mode: Gradio writes an output
    # 0600 (a tempfile) and its re-upload 0644, and a link must not change either's mode.
    same_mode = [g for s in dup_sets for g in by_owner_and_mode(s) if len(g) > 1]
    for g in same_mode:
        assert len({(p.lstat().st_dev, p.lstat().st_ino) for p in g}) == 1, g
    actions = doc["actions"]
    assert doc["dry_run"] is False
    assert len(actions) == sum(len(g) - 1 for g in same_mode), actions
    assert {a["status"] for a in actions} == {"linked"}, actions  # each path stays
    assert {a["path"] for a in actions} <= {str(p) for s in dup_sets for p in s}


def by_owner_and_mode(paths: list[Path]) -> list[list[Path]]:
    groups: dict[tuple[int, int, int], list[Path]] = {}
    for p in paths:
        st = p.lstat()
        groups.setdefault((st.st_uid, st.st_gid, st.st_mode), []).append(p)
    return list(groups.values())


def test_prune_orphaned_sessions_removes_stale_keeps_fresh(stopped_for_prune: Flow) -> None:
    app = stopped_for_prune.app
    *stale, fresh = (app.app_dir / h for h in stopped_for_prune.session_hashes)
    for folder in stale:
        age_tree(folder, 2 * HOUR)
    stale_bytes = {str(f): sum(files_under(f).values()) for f in stale}
    names = {f.name for f in stale}
    kept = {rel: e for rel, e in snapshot(app.app_dir).items() if rel.split("/")[0] not in names}
    temp_before = snapshot(app.temp_dir)

    _, doc = run_cli(
        "prune",
        str(app.app_dir),
        "--orphaned-sessions",
        *("--age-by", "mtime"),  # age_tree cannot move a ctime back
        "--apply",
        "--yes",
        "--json",
        temp_dir=app.temp_dir,
        cwd=app.base,
    )

    assert not [f for f in stale if os.path.lexists(f)]
    assert fresh.is_dir()
    # The fresh session, app.py, example.txt and .gradio/ are untouched, down to inodes and mtimes.
    assert snapshot(app.app_dir) == kept
    assert snapshot(app.temp_dir) == temp_before
    actions = doc["actions"]
    assert {a["path"]: a["bytes"] for a in actions} == stale_bytes, actions
    assert {a["status"] for a in actions} == {"deleted"}, actions
