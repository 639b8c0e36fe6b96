"""Write a deterministic, Gradio-like temp dir (and optionally an app dir) for benchmarks.

Same seed and file count, same tree: names, sizes, bytes, duplicates and hard links are
drawn from one seeded RNG. Only the mtimes depend on the clock: ages are drawn, then
counted back from --now (default: the time of the run).

What the temp dir holds (fractions of --files):
- sha256 hash folders (a few sha1 ones) holding 1-3 files with realistic names, sizes
  mostly 1-64 KiB with a tail of a few MiB;
- ~25% of files byte-identical to another file: some under another name in the same
  folder ("copy of photo.png"), most in other folders; a few popular contents repeat
  dozens of times;
- ~1% hard links (never duplicates) and ~2% empty files (never duplicates);
- leftovers: top-level tmpXXXXXXXX files (half of them empty), tmp* folders, empty hash
  folders, staging copies `.<name>.XXXXXXXX` inside hash folders (truncated copies);
- internal entries: vibe_edit_history/, deep_links/<id>/state.json, workflow_<16hex>.json.

Ages are spread uniformly over 0-60 days with a gap around --cut-days (no file aged
cut-0.5 d .. cut+1.5 d), so `--older-than 30d` and `find -mtime +30` (which means
"at least 31 whole days") select the same files, even some hours after generation.

A manifest with the expected counts is written next to the tree, as OUT.manifest.json.

    python bench/make_tree.py /tmp/gcbench/tree --files 200000 --app-dir /tmp/gcbench/app
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

GEN_VERSION = 1
DAY = 86400.0
KIB = 1024
MIB = 1024 * KIB
MAX_SIZE = 8 * MIB
POOL_SIZE = MAX_SIZE + 16 * MIB
TAG_LEN = 16
HEADER_LEN = 8 * KIB  # shared by a quarter of the contents, like a common file header
MIN_SIZE = TAG_LEN + 8
FILE_MODE = 0o644
TMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC

# (name, weight): what Gradio's components write (image.webp, audio.wav) and what users upload.
NAMES: tuple[tuple[str, int], ...] = (
    ("image.webp", 30),
    ("image.png", 20),
    ("audio.wav", 12),
    ("video.mp4", 4),
    ("photo.jpg", 8),
    ("photo (1).jpg", 2),
    ("file.txt", 4),
    ("a.txt", 2),
    ("data.csv", 3),
    ("output.json", 3),
    ("recording.webm", 2),
    ("sample.flac", 1),
    ("model.glb", 1),
    ("subtitles.vtt", 1),
    ("Screenshot 2024-05-01 at 10.22.31.png", 2),
    ("My Document (final) v2.pdf", 1),
    ("résumé final.pdf", 1),
    ("фото.jpg", 1),
    ("日本語のファイル.txt", 1),
    ("Ünïcødé ñame.wav", 1),
    ("😀 smile.png", 1),
    ("naïve café.txt", 1),
    ("very long file name " * 9 + ".png", 1),
)
EMPTY_NAMES = ("output.txt", "log.txt", "empty.csv", "transcript.vtt")
SESSION_FILES = ("input.png", "output.wav", "chat.json", "result.webp", "notes.txt")


_NAME_LIST = tuple(n for n, _ in NAMES)
_NAME_CUM = tuple(itertools.accumulate(w for _, w in NAMES))


def _name(rng: random.Random) -> str:
    return rng.choices(_NAME_LIST, cum_weights=_NAME_CUM)[0]


@dataclass
class Manifest:
    """What make_tree wrote; run.py checks tools against it."""

    gen_version: int
    root: str
    seed: int
    files: int  # regular-file paths, hard links included
    now: float
    cut_days: float
    generated_at: float = 0.0
    gen_seconds: float = 0.0
    inodes: int = 0  # regular files, a hard-linked inode once
    bytes: int = 0  # apparent size, a hard-linked inode once
    dirs: int = 0  # folders below the root
    hash_dirs: int = 0
    empty_hash_dirs: int = 0
    empty_files: int = 0
    hardlink_paths: int = 0  # paths that are an extra link to an inode already written
    dup_sets: int = 0  # contents held by >= 2 distinct non-empty inodes
    dup_inodes: int = 0  # inodes in those sets
    dup_extra_inodes: int = 0  # dup_inodes - dup_sets: what --duplicates would remove
    dup_extra_bytes: int = 0
    dup_same_folder: int = 0  # extra copies written next to the original, under another name
    older_paths: int = 0  # file paths whose mtime is older than cut_days
    older_inodes: int = 0
    leftover_files: int = 0
    leftover_dirs: int = 0
    app_dir: str | None = None
    app: dict[str, int] = field(default_factory=dict)


class Writer:
    """Writes files from a seeded byte pool; each content id has its own bytes."""

    def __init__(self, seed: int, now: float, cut_days: float) -> None:
        self.rng = random.Random(seed)
        pool_rng = random.Random(seed ^ 0x5EED)
        self.pool = memoryview(pool_rng.randbytes(POOL_SIZE))
        self.now = now
        self.cut_s = cut_days * DAY
        self.sizes: list[int] = []  # content id -> size
        self.inodes: list[int] = []  # content id -> distinct inodes written
        self.cid_path: list[str] = []  # content id -> a path holding it
        self.link_sources: list[tuple[str, float]] = []  # (path, age) of non-empty files
        self.prefixes: set[bytes] = set()  # digests of truncated copies, kept unique
        self.popular: list[int] = []
        self.files = 0
        self.dirs = 0
        self.bytes = 0
        self.empty = 0
        self.older_paths = 0
        self.older_inodes = 0

    # -- draws ------------------------------------------------------------------

    def size(self) -> int:
        r = self.rng.random()
        if r < 0.0003:
            return self.rng.randint(1 * MIB, MAX_SIZE)
        if r < 0.0073:
            return int(64 * KIB * 16 ** self.rng.random())  # 64 KiB .. 1 MiB, log-uniform
        return max(MIN_SIZE, min(64 * KIB, int(self.rng.lognormvariate(8.2, 1.0))))

    def age(self) -> float:
        """Seconds; uniform over 0-60 days minus the gap around the cut."""
        while True:
            a = self.rng.uniform(60.0, 60 * DAY)
            if not (self.cut_s - 0.5 * DAY <= a <= self.cut_s + 1.5 * DAY):
                return a

    def hexname(self, nchars: int) -> str:
        return f"{self.rng.getrandbits(nchars * 4):0{nchars}x}"

    def tmpname(self) -> str:
        return "tmp" + "".join(self.rng.choice(TMP_CHARS) for _ in range(8))

    # -- content ----------------------------------------------------------------

    def new_content(self, size: int | None = None) -> int:
        cid = len(self.sizes)
        self.sizes.append(self.size() if size is None else size)
        self.inodes.append(0)
        self.cid_path.append("")
        if len(self.popular) < 64:
            self.popular.append(cid)
        return cid

    def chunks(self, cid: int) -> list[memoryview | bytes]:
        size = self.sizes[cid]
        tag = cid.to_bytes(8, "big") + b"gcbench\x00"
        span = size - TAG_LEN
        off = (cid * 2654435761) % (POOL_SIZE - span)
        if cid % 4 == 0 and span > HEADER_LEN:  # same first 8 KiB as other such files
            body = off + HEADER_LEN
            return [self.pool[:HEADER_LEN], self.pool[body : body + span - HEADER_LEN], tag]
        return [tag, self.pool[off : off + span]]

    # -- writing ----------------------------------------------------------------

    def _write(self, path: str, chunks: list[memoryview | bytes], age: float) -> None:
        fd = os.open(path, WRITE_FLAGS, FILE_MODE)
        try:
            if chunks:
                os.writev(fd, chunks)
            t = int((self.now - age) * 1e9)
            os.utime(fd, ns=(t, t))
        finally:
            os.close(fd)
        self.files += 1
        if age > self.cut_s:
            self.older_paths += 1
            self.older_inodes += 1

    def content_file(self, path: str, cid: int, age: float) -> None:
        self._write(path, self.chunks(cid), age)
        self.bytes += self.sizes[cid]
        self.inodes[cid] += 1
        if not self.cid_path[cid]:
            self.cid_path[cid] = path
        self.link_sources.append((path, age))

    def empty_file(self, path: str, age: float) -> None:
        self._write(path, [], age)
        self.empty += 1

    def raw_file(self, path: str, data: bytes, age: float) -> None:
        self._write(path, [data], age)
        self.bytes += len(data)

    def truncated_copy(self, path: str, cid: int, age: float) -> None:
        """An interrupted copy or upload: a prefix of `cid`, unique among such prefixes."""
        data = b"".join(self.chunks(cid))
        n = self.rng.randint(1, max(1, len(data) - 1))
        while n > 0 and hashlib.blake2b(data[:n], digest_size=16).digest() in self.prefixes:
            n -= 1
        if n == 0:  # every prefix taken: fresh bytes instead
            self.content_file(path, self.new_content(), age)
            return
        self.prefixes.add(hashlib.blake2b(data[:n], digest_size=16).digest())
        self.raw_file(path, data[:n], age)

    def hardlink(self, path: str, src: str, src_age: float) -> None:
        """Another path to an inode already written: never a duplicate."""
        os.link(src, path)
        self.files += 1
        if src_age > self.cut_s:
            self.older_paths += 1

    def mkdir(self, path: str) -> None:
        os.mkdir(path)
        self.dirs += 1

    def set_mtime(self, path: str, age: float) -> None:
        t = int((self.now - age) * 1e9)
        os.utime(path, ns=(t, t), follow_symlinks=False)


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    if f"copy of {name}" not in taken:
        return f"copy of {name}"
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    i = 1
    while True:
        cand = f"{stem} ({i}).{ext}" if dot else f"{stem} ({i})"
        if cand not in taken:
            return cand
        i += 1


def _second_name(name: str, rng: random.Random) -> str:
    """Another name for the same bytes in the same folder."""
    if name == "a.txt":
        return "b.txt"
    stem, _, ext = name.rpartition(".")
    return rng.choice((f"copy of {name}", f"{stem} (1).{ext}", f"{stem}_copy.{ext}"))


def _session_name(rng: random.Random) -> str:
    """A session hash in one of the three shapes Gradio's clients use."""
    r = rng.random()
    if r < 0.25:
        return str(uuid_from(rng))
    if r < 0.40:
        return f"{rng.getrandbits(128):032x}"
    while True:  # Math.random().toString(36).substring(2): 10-11 of [0-9a-z]
        name = "".join(rng.choice(B36) for _ in range(rng.choice((10, 11))))
        runs = 1 + sum(a.isdigit() != b.isdigit() for a, b in itertools.pairwise(name))
        if runs >= 3:  # has a digit and a letter, and looks nothing like a word
            return name


def uuid_from(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    h = h[:12] + "4" + h[13:16] + "89ab"[rng.randrange(4)] + h[17:]
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def write_temp_dir(root: str, n_files: int, w: Writer, m: Manifest) -> None:
    rng = w.rng
    os.makedirs(root)
    n_left_top = max(4, n_files // 400)  # top-level tmpXXXXXXXX files
    n_left_dirs = max(1, n_files // 2000)  # top-level tmp* folders, 3 files each
    n_staging = max(2, n_files // 1000)  # .<name>.XXXXXXXX inside hash folders
    n_internal = max(2, n_files // 20000)  # deep_links/<id>/state.json and workflow_*.json
    n_empty_hash = max(2, n_files // 100)
    main_budget = n_files - (n_left_top + 3 * n_left_dirs + n_staging + 2 * n_internal)
    if main_budget < 10:
        raise SystemExit(f"make_tree: --files must be at least {n_files - main_budget + 10}")

    staging_every = max(1, int(main_budget / 1.3 / n_staging))
    staging_left = n_staging
    written = 0
    while written < main_budget:
        folder = os.path.join(root, w.hexname(40 if rng.random() < 0.03 else 64))
        w.mkdir(folder)
        m.hash_dirs += 1
        r = rng.random()
        k = min(1 if r < 0.75 else 2 if r < 0.93 else 3, main_budget - written)
        age = w.age()
        taken: set[str] = set()
        first: tuple[str, int] | None = None  # (name, content id) of the folder's first content
        for _ in range(k):
            fage = max(0.0, age - rng.uniform(0, 60))  # written within a minute of each other
            r = rng.random()
            if first is not None and rng.random() < 0.25:  # a.txt and b.txt, same bytes
                fname = _unique(_second_name(first[0], rng), taken)
                w.content_file(os.path.join(folder, fname), first[1], fage)
                m.dup_same_folder += 1
            elif r < 0.02:
                fname = _unique(rng.choice(EMPTY_NAMES), taken)
                w.empty_file(os.path.join(folder, fname), fage)
            elif r < 0.03 and w.link_sources:
                src, src_age = w.link_sources[rng.randrange(len(w.link_sources))]
                fname = _unique(os.path.basename(src), taken)
                w.hardlink(os.path.join(folder, fname), src, src_age)
                m.hardlink_paths += 1
            elif r < 0.23 and w.sizes:  # the same bytes in another folder
                cid = rng.choice(w.popular) if rng.random() < 0.05 else rng.randrange(len(w.sizes))
                same = rng.random() < 0.8
                fname = _unique(os.path.basename(w.cid_path[cid]) if same else _name(rng), taken)
                w.content_file(os.path.join(folder, fname), cid, fage)
                first = first or (fname, cid)
            else:
                cid = w.new_content()
                fname = _unique(_name(rng), taken)
                w.content_file(os.path.join(folder, fname), cid, fage)
                first = first or (fname, cid)
            taken.add(fname)
            written += 1
        if staging_left and first is not None and m.hash_dirs % staging_every == 0:
            sname = f".{first[0]}.{''.join(rng.choice(TMP_CHARS) for _ in range(8))}"
            w.truncated_copy(os.path.join(folder, sname), first[1], age)
            staging_left -= 1
            m.leftover_files += 1
        w.set_mtime(folder, age)

    # Leftovers at the top level (plus any staging copies no folder took).
    for i in range(n_left_top + staging_left):
        suffix = rng.choice(("", "", "", ".mp4", ".vtt", "_processed.mp4"))
        path = os.path.join(root, w.tmpname() + suffix)
        if i % 2:
            w.empty_file(path, w.age())  # gr.File(type="filepath") placeholder
        else:
            w.truncated_copy(path, rng.randrange(len(w.sizes)), w.age())  # cut-off upload
        m.leftover_files += 1
    for _ in range(n_left_dirs):  # ffmpeg output folders
        d = os.path.join(root, w.tmpname())
        w.mkdir(d)
        m.leftover_dirs += 1
        age = w.age()
        for fname in ("output.mp4", "frame_0001.png", "audio.wav"):
            w.content_file(os.path.join(d, fname), w.new_content(), age)
            m.leftover_files += 1
        w.set_mtime(d, age)
    for _ in range(n_empty_hash):  # delete_cache removes files, never their folders
        d = os.path.join(root, w.hexname(64))
        w.mkdir(d)
        w.set_mtime(d, w.age())
        m.empty_hash_dirs += 1
        m.leftover_dirs += 1

    # Internal entries.
    w.mkdir(os.path.join(root, "vibe_edit_history"))
    links = os.path.join(root, "deep_links")
    w.mkdir(links)
    for _ in range(n_internal):
        ident = "".join(rng.choice(B36 + "ABCDEFGHIJKLMNOPQRSTUVWXYZ_-") for _ in range(11))
        d = os.path.join(links, ident)
        w.mkdir(d)
        state = json.dumps({"id": ident, "components": []}).encode()
        w.raw_file(os.path.join(d, "state.json"), state, w.age())
        wf = f"workflow_{w.hexname(16)}"
        w.raw_file(os.path.join(root, f"{wf}.json"), b'{"name": "%s"}' % wf.encode(), w.age())


def write_app_dir(app: str, n_sessions: int, w: Writer) -> dict[str, int]:
    """An app's working directory: its own files, .gradio/ and per-session folders."""
    rng = w.rng
    files0 = w.files
    counts = {"sessions": 0, "sessions_older_than_1h": 0, "session_files": 0}
    os.makedirs(app)

    def put(rel: str, size: int, age: float) -> None:
        path = os.path.join(app, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        w.content_file(path, w.new_content(size), age)

    for rel, size in (
        ("app.py", 2 * KIB),
        ("requirements.txt", 64),
        ("checkpoints/model.bin", 1 * MIB),
        ("static/style.css", 3 * KIB),
        ("__pycache__/app.cpython-311.pyc", 4 * KIB),
        ("outputs1/result.png", 40 * KIB),
        ("run2024/log.txt", 1 * KIB),
        (".gradio/certificate.pem", 2 * KIB),
        (".gradio/flagged/dataset1.csv", 1 * KIB),
        (".gradio/cached_examples/17/log.csv", 512),
    ):
        put(rel, size, w.age())
    counts["app_files"] = w.files - files0
    for i in range(8):
        put(f".gradio/flagged/image/{w.hexname(20)}/image.webp", w.size(), w.age())
        if i < 4:
            put(f".gradio/cached_examples/17/image/{w.hexname(20)}/image.webp", w.size(), 0.0)
    counts["flagged_files"] = 8
    counts["examples_files"] = 4
    for _ in range(n_sessions):
        name = _session_name(rng)
        d = os.path.join(app, name)
        os.mkdir(d)
        # Half live (< 50 min), half long gone (> 70 min): a 1 h TTL splits them cleanly.
        old = rng.random() < 0.5
        age = rng.uniform(70 * 60, 3 * DAY) if old else rng.uniform(0, 50 * 60)
        k = rng.randint(1, 4)
        for fname in rng.sample(SESSION_FILES, k):
            w.content_file(os.path.join(d, fname), w.new_content(), age)
        w.set_mtime(d, age)
        counts["sessions"] += 1
        counts["sessions_older_than_1h"] += old
        counts["session_files"] += k
    counts["files"] = w.files - files0
    return counts


def generate(
    out: str,
    n_files: int,
    *,
    seed: int = 1,
    now: float | None = None,
    cut_days: float = 30.0,
    app_dir: str | None = None,
    sessions: int = 300,
) -> Manifest:
    t0 = time.perf_counter()
    now = time.time() if now is None else now
    root = os.path.abspath(out)
    w = Writer(seed, now, cut_days)
    m = Manifest(GEN_VERSION, root, seed, n_files, now, cut_days)
    write_temp_dir(root, n_files, w, m)
    if w.files != n_files:
        raise AssertionError(f"wrote {w.files} files, meant {n_files}")
    m.inodes = w.files - m.hardlink_paths
    m.bytes = w.bytes
    m.dirs = w.dirs
    m.empty_files = w.empty
    m.older_paths = w.older_paths
    m.older_inodes = w.older_inodes
    for cid, n in enumerate(w.inodes):
        if n >= 2:
            m.dup_sets += 1
            m.dup_inodes += n
            m.dup_extra_inodes += n - 1
            m.dup_extra_bytes += (n - 1) * w.sizes[cid]
    if app_dir is not None:
        m.app_dir = os.path.abspath(app_dir)
        m.app = write_app_dir(m.app_dir, sessions, w)
    w.set_mtime(root, 0.0)
    m.generated_at = time.time()
    m.gen_seconds = round(time.perf_counter() - t0, 2)
    return m


def manifest_path(out: str) -> str:
    return os.path.abspath(out).rstrip("/") + ".manifest.json"


def load_manifest(out: str) -> dict[str, Any] | None:
    try:
        with open(manifest_path(out), encoding="utf-8") as f:
            doc: dict[str, Any] = json.load(f)
    except (OSError, ValueError):
        return None
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("out", help="the temp dir to create (must not exist unless --force)")
    p.add_argument("--files", type=int, default=200_000, help="regular-file paths (200000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--now", type=float, default=None, help="epoch seconds ages count back from")
    p.add_argument("--cut-days", type=float, default=30.0, help="age with a gap around it (30)")
    p.add_argument("--app-dir", default=None, help="also write an app dir with session folders")
    p.add_argument("--sessions", type=int, default=300, help="session folders in --app-dir")
    p.add_argument("--force", action="store_true", help="delete OUT (and --app-dir) first")
    p.add_argument("-q", "--quiet", action="store_true")
    a = p.parse_args(argv)
    for path in (a.out, a.app_dir):
        if path is not None and os.path.lexists(path):
            if not a.force:
                p.error(f"{path} exists; pass --force to replace it")
            shutil.rmtree(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(manifest_path(a.out))
    m = generate(
        a.out,
        a.files,
        seed=a.seed,
        now=a.now,
        cut_days=a.cut_days,
        app_dir=a.app_dir,
        sessions=a.sessions,
    )
    with open(manifest_path(a.out), "w", encoding="utf-8") as f:
        json.dump(asdict(m), f, indent=2)
        f.write("\n")
    if not a.quiet:
        print(
            f"make_tree: {m.files:,} files ({m.bytes / MIB:,.0f} MiB, {m.dirs:,} folders) "
            f"in {m.gen_seconds:.1f} s: {m.dup_extra_inodes:,} duplicate copies in "
            f"{m.dup_sets:,} sets, {m.hardlink_paths:,} hard links, {m.empty_files:,} empty, "
            f"{m.older_paths:,} older than {m.cut_days:g} d -> {manifest_path(a.out)}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
