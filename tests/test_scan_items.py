"""Each item the walk hands to prune, against an independent walk of the same tree.

The walk counts an item folder's own entries in one loop and each subfolder's tree on a
stack of open folders: these trees mix both, with hard links between the two, folders
a hash folder's staging rules apply to and folders they do not, and dates before 1970.
"""

from __future__ import annotations

import os
import random
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gradio_clean.classify import Category, Kind, Role
from gradio_clean.roots import Root
from gradio_clean.scan import Held, Hooks, Item, scan

NS = 1_000_000_000
NOW = 1_700_000_000


@dataclass
class Built:
    """What the tree was made of: each regular file's path and the category it must get."""

    temp: Path
    categories: dict[str, Category] = field(default_factory=dict)


def _stamp(path: Path, ns: int) -> None:
    os.utime(path, ns=(ns, ns), follow_symlinks=False)


def _date(rng: random.Random, before_1970: bool) -> int:
    if before_1970:
        return rng.randint(-40 * 86400, -1) * NS + rng.randint(0, NS - 1)
    return (NOW - rng.randint(0, 9_000_000)) * NS + rng.randint(0, NS - 1)


def _file(built: Built, rel: str, cat: Category, rng: random.Random, before_1970: bool) -> None:
    path = built.temp / rel
    path.write_bytes(rng.randbytes(rng.choice([0, 7, 5000])))
    _stamp(path, _date(rng, before_1970))
    built.categories[rel] = cat


def _subtree(built: Built, rel: str, cat: Category, rng: random.Random, old: bool) -> None:
    """A folder inside an item: files (staging-shaped names too), maybe deeper folders."""
    (built.temp / rel).mkdir()
    for i in range(rng.randint(0, 3)):
        name = rng.choice([f"f{i}.bin", f".f{i}.bin.ab12cd34"])  # a leftover only directly
        _file(built, f"{rel}/{name}", cat, rng, old)
    if rel.count("/") < 4 and rng.random() < 0.6:
        _subtree(built, f"{rel}/d{rng.randint(0, 9)}", cat, rng, old)
    _stamp(built.temp / rel, _date(rng, old))


def build(base: Path, seed: int) -> Built:
    rng = random.Random(seed)
    built = Built(base / "temp")
    built.temp.mkdir()
    regular: list[str] = []
    for n in range(150):
        item = f"{rng.getrandbits(256):064x}"
        old = rng.random() < 0.2  # the whole item before 1970
        (built.temp / item).mkdir()
        for i in range(rng.choice([0, 1, 1, 2, 3])):  # an empty hash folder is a leftover
            _file(built, f"{item}/file{i}.webp", Category.CACHE, rng, old)
        if rng.random() < 0.2:
            _file(built, f"{item}/.file.webp.x1y2z3w4", Category.LEFTOVER, rng, old)
        if rng.random() < 0.4:  # ffmpeg's tmp* folder in a hash folder holds leftovers
            sub = rng.choice(["sub", "tmpabcd1234"])
            cat = Category.LEFTOVER if sub.startswith("tmp") else Category.CACHE
            _subtree(built, f"{item}/{sub}", cat, rng, old)
        if rng.random() < 0.1:
            os.symlink("/etc/passwd", built.temp / item / "link")
        if rng.random() < 0.05:
            os.mkfifo(built.temp / item / "fifo")
        regular.extend(r for r in built.categories if r.startswith(f"{item}/"))
        if regular and rng.random() < 0.3:  # a hard link, in this item or to an earlier one
            src = rng.choice(regular)
            dst = f"{item}/hard{n}.bin"
            os.link(built.temp / src, built.temp / dst)
            built.categories[dst] = Category.CACHE  # by its own name and place
            regular.append(dst)
        _stamp(built.temp / item, _date(rng, old))
    for n in range(5):
        _file(built, f"tmp{n:08d}.mp4", Category.LEFTOVER, rng, False)
    return built


def expected_item(top: Path) -> tuple[int, int, int, int, int]:
    """(files, other, bytes, newest mtime, disk bytes) of one item, by a recursive walk:
    regular files' bytes and blocks once per inode within the item, folders' blocks each."""
    st = os.lstat(top)
    if not stat.S_ISDIR(st.st_mode):
        regular = stat.S_ISREG(st.st_mode)
        return (
            int(regular),
            int(not regular),
            st.st_size if regular else 0,
            st.st_mtime_ns,
            st.st_blocks * 512,
        )
    files = other = nbytes = 0
    newest = st.st_mtime_ns
    disk = st.st_blocks * 512
    seen: set[tuple[int, int]] = set()
    folders = [top]
    while folders:
        for entry in os.scandir(folders.pop()):
            est = entry.stat(follow_symlinks=False)
            newest = max(newest, est.st_mtime_ns)
            if stat.S_ISDIR(est.st_mode):
                disk += est.st_blocks * 512
                folders.append(Path(entry.path))
            elif stat.S_ISREG(est.st_mode):
                files += 1
                if (est.st_dev, est.st_ino) not in seen:
                    seen.add((est.st_dev, est.st_ino))
                    nbytes += est.st_size
                    disk += est.st_blocks * 512
            else:
                other += 1
                disk += est.st_blocks * 512
    return files, other, nbytes, newest, disk


class Seen:
    """Hooks that record every item and file, from this process and from workers."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.items: dict[str, Item] = {}
        self.files: dict[str, Category] = {}

    def on_item(
        self, rel: str, st: os.stat_result, kind: Kind, cat: Category, is_dir: bool, held: Held
    ) -> None:
        assert rel not in self.items
        self.items[rel] = Item.of(self.root, rel, st, kind, cat, is_dir, held)

    def on_file(self, rel: str, st: os.stat_result, cat: Category) -> None:
        assert rel not in self.files
        self.files[rel] = cat

    def export(self) -> object:
        return (self.items, self.files)

    def absorb(self, payload: object) -> None:
        items: dict[str, Item]
        files: dict[str, Category]
        items, files = payload  # type: ignore[misc]
        self.items.update(items)
        self.files.update(files)

    def hooks(self) -> Hooks:
        return Hooks(
            on_item=self.on_item, on_file=self.on_file, export=self.export, absorb=self.absorb
        )


@pytest.mark.parametrize("seed", [1, 2])
def test_each_item_equals_an_independent_walk(tmp_path: Path, seed: int) -> None:
    built = build(tmp_path, seed)
    for jobs in (1, 3):
        seen = Seen(str(built.temp))
        result = scan([Root(str(built.temp), Role.TEMP, "t")], jobs=jobs, hooks=seen.hooks())
        assert not result.warnings
        assert seen.files == built.categories
        assert sorted(seen.items) == sorted(os.listdir(built.temp))
        for rel, item in seen.items.items():
            top = built.temp / rel
            files, other, nbytes, newest, disk = expected_item(top)
            st = os.lstat(top)
            assert (item.files, item.other, item.bytes, item.disk_bytes) == (
                files,
                other,
                nbytes,
                disk,
            ), rel
            assert item.newest_ns == item.age_ns == newest, rel
            assert (item.mtime_ns, item.dev, item.ino, item.path) == (
                st.st_mtime_ns,
                st.st_dev,
                st.st_ino,
                str(top),
            )
            if rel.startswith("tmp"):
                assert (item.kind, item.category) == (Kind.TMP_FILE, Category.LEFTOVER)
            else:
                empty = not os.listdir(top)
                assert item.kind is Kind.HASH_DIR
                assert item.category is (Category.LEFTOVER if empty else Category.CACHE), rel
            assert item.is_dir is stat.S_ISDIR(st.st_mode), rel
        assert any(item.newest_ns < 0 for item in seen.items.values())  # dates before 1970
        # the largest the scan keeps are built from the same numbers the hook is handed
        largest = result.roots[0].largest
        assert len(largest) == 10
        assert all(seen.items[item.rel] == item for item in largest)
        assert any(item.files > 1 and item.other for item in seen.items.values())
