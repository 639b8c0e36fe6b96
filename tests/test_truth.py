"""The dry run tells the truth, and apply never touches what was not planned.

Hypothesis over random real trees (hash folders, sessions, leftovers, user data, and
symlinks, FIFOs, hard links, non-UTF-8 names, an ignore file, files held open) and
random rules. Each example plans, forecasts (the dry run), applies, and checks:

1. the forecast is the outcome: each action planned goes (deleted or linked), each one
   forecast as skipped is skipped for the same reason, and what the dry run would free
   is what apply freed;
2. apply removes exactly the planned entries (a folder with all it holds) and the folders
   it emptied; a linked copy keeps its path and content on the kept copy's inode;
3. nothing outside the roots changes (symlink targets, outside names of hard links);
4. the same rules planned again right after apply select nothing new.

A plan is built with `now` moved forward by a random shift: the tree is made seconds
before, so without it every ctime (and so every age by `newest` or `ctime`) would be
young. Apply's re-checks compare identities, never ages, so the shift changes nothing
there.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Category, Role
from gradio_clean.options import Dedupe, Keep
from gradio_clean.plan import DONE, ApplyResult, Plan, Rule, Status
from gradio_clean.preflight import preflight
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from gradio_clean.sizes import parse_min_free
from tests.conftest import DAY, HOUR, run_cli, set_age, write

# -- the trees ---------------------------------------------------------------------------

AGES = (0, 2 * HOUR, 3 * DAY, 40 * DAY)
NAMES = ("a.png", "b.wav", "copy of a.png", "c.txt", "d.bin")
# What a folder may hold besides its files: Gradio's leftovers and adversarial entries.
EXTRAS = ("staging", "tmpdir", "link_in", "link_out", "dangling", "fifo", "latin1", "empty_sub")
LATIN1 = os.fsdecode(b"caf\xe9.bin")


class File(NamedTuple):
    name: str
    content: int  # 0: empty; files of equal content are duplicates
    age: int


class Folder(NamedTuple):
    files: list[File]
    sub: list[File]  # in its folder sub/
    extras: frozenset[str]
    age: int


class Tree(NamedTuple):
    hashes: list[tuple[bool, Folder]]  # sha1 (40 hex) or sha256 (64 hex), what it holds
    empty_hashes: list[int]  # their ages
    tmp_files: list[File]  # top-level tmpXXXXXXXX files of the temp dir
    tmp_dirs: list[Folder]  # tmpXXXXXXXX folders (ffmpeg output)
    top: frozenset[str]  # other top-level entries of the temp dir
    ignore: tuple[str, ...]  # the temp dir's .gradiocleanignore (none if empty)
    sessions: list[tuple[int, Folder]] | None  # an app dir's session folders (shape, what)
    app: frozenset[str]  # what else the app dir holds
    links: list[tuple[int, int]]  # another name for file i: in folder j (-1: outside)
    held: list[int]  # files a process holds open
    shift: int  # how far `now` is moved forward


def _data(content: int) -> bytes:
    return bytes([64 + content]) * (300 * content)


_file = st.builds(File, st.sampled_from(NAMES), st.integers(0, 3), st.sampled_from(AGES))


def _files(most: int) -> st.SearchStrategy[list[File]]:
    return st.lists(_file, max_size=most, unique_by=lambda f: f.name)


_folder = st.builds(
    Folder,
    _files(4),
    _files(2),
    st.frozensets(st.sampled_from(EXTRAS), max_size=3),
    st.sampled_from(AGES),
)
_tmp_file = st.builds(
    File, st.sampled_from(("tmpab12cd34", "tmpzz99yy88.mp4", "tmpq1w2e3r4_processed.mp4")),
    st.integers(0, 3), st.sampled_from(AGES),
)  # fmt: skip
IGNORES = ("*.txt", "sub/", "b.wav")
TOP = ("notes", "symlink", "fifo", "vibe")
APP = ("own", "flagged", "examples")

_trees = st.builds(
    Tree,
    st.lists(st.tuples(st.booleans(), _folder), max_size=5),
    st.lists(st.sampled_from(AGES), max_size=2),
    st.lists(_tmp_file, max_size=2, unique_by=lambda f: f.name),
    st.lists(_folder, max_size=1),
    st.frozensets(st.sampled_from(TOP)),
    st.lists(st.sampled_from(IGNORES), max_size=2, unique=True).map(tuple),
    st.one_of(st.none(), st.lists(st.tuples(st.integers(0, 2), _folder), max_size=3)),
    st.frozensets(st.sampled_from(APP)),
    st.lists(st.tuples(st.integers(0, 30), st.integers(-1, 8)), max_size=4),
    st.lists(st.integers(0, 30), max_size=1),
    st.sampled_from((0, 3 * DAY, 40 * DAY)),
)


def _session_name(shape: int, n: int) -> str:
    """A browser hash, a Python client's uuid4, or the queue's uuid4().hex."""
    return (f"ses{n}x{n}q{n}", f"{n:08x}-4c1f-4a8e-9d1e-2f3c4b5a6d7e", f"{n:032x}")[shape]


@dataclass
class Built:
    """A tree on disk: its roots, what lies outside them, and the processes holding files."""

    base: Path
    temp: Path
    app: Path | None
    outside: Path
    files: list[Path] = field(default_factory=list)  # regular files, in making order
    folders: list[Path] = field(default_factory=list)  # where hard links may go
    ages: list[tuple[Path, int]] = field(default_factory=list)  # folders, set last
    holders: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def roots(self) -> list[Root]:
        roots = [Root(str(self.temp), Role.TEMP, "test")]
        if self.app is not None:
            roots.append(Root(str(self.app), Role.APP, "test"))
        return roots

    def file(self, path: Path, content: int, age: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_data(content))
        set_age(path, age)
        self.files.append(path)

    def folder(self, path: Path, spec: Folder, *, linkable: bool = True) -> None:
        path.mkdir(parents=True)
        for f in spec.files:
            self.file(path / f.name, f.content, f.age)
        for f in spec.sub:
            self.file(path / "sub" / f.name, f.content, f.age)
        if spec.sub:
            self.ages.append((path / "sub", spec.age))
        extras = spec.extras
        if "staging" in extras:
            self.file(path / ".a.png.ab12cd34", 1, spec.age)
        if "tmpdir" in extras:
            self.file(path / "tmpq1w2e3r4" / "clip.mp4", 2, spec.age)
            self.ages.append((path / "tmpq1w2e3r4", spec.age))
        if "latin1" in extras:
            self.file(path / LATIN1, 3, spec.age)
        if "link_in" in extras:
            os.symlink(spec.files[0].name if spec.files else "c.txt", path / "link-in")
        if "link_out" in extras:
            os.symlink(self.outside / "dir", path / "link-out")
        if "dangling" in extras:
            os.symlink("no-such-file", path / "dangling")
        if "fifo" in extras:
            os.mkfifo(path / "fifo")
        if "empty_sub" in extras:
            (path / "empty").mkdir()
            self.ages.append((path / "empty", spec.age))
        for p in (path / "link-in", path / "link-out", path / "dangling", path / "fifo"):
            if p.is_symlink() or p.exists():
                set_age(p, spec.age)
        self.ages.append((path, spec.age))
        if linkable:
            self.folders.append(path)

    def close(self) -> None:
        for p in self.holders:
            p.kill()
            p.wait()


def build(base: Path, tree: Tree) -> Built:
    b = Built(
        base, base / "gradio", base / "app" if tree.sessions is not None else None, base / "outside"
    )
    (b.outside / "dir").mkdir(parents=True)
    (b.outside / "dir" / "inner.txt").write_bytes(b"outside")
    (b.outside / "secret.txt").write_bytes(b"do not touch")
    b.temp.mkdir()
    for n, (sha1, spec) in enumerate(tree.hashes):
        b.folder(b.temp / (f"{n + 1:040x}" if sha1 else f"{n + 1:064x}"), spec)
    for n, age in enumerate(tree.empty_hashes):
        (b.temp / f"{n + 100:064x}").mkdir()
        b.ages.append((b.temp / f"{n + 100:064x}", age))
    for f in tree.tmp_files:
        b.file(b.temp / f.name, f.content, f.age)
    for n, spec in enumerate(tree.tmp_dirs):
        b.folder(b.temp / f"tmpdir{n:05d}", spec, linkable=False)
    _top(b, tree)
    if b.app is not None:
        _app(b, tree)
    for n, (i, j) in enumerate(tree.links):
        if b.files:
            where = b.outside if j < 0 or not b.folders else b.folders[j % len(b.folders)]
            os.link(b.files[i % len(b.files)], where / f"l{n}.bin")
    for path, age in reversed(b.ages):  # inner folders first; links changed their mtimes
        set_age(path, age)
    for i in tree.held:
        if b.files:
            with open(b.files[i % len(b.files)], "rb") as held:
                b.holders.append(subprocess.Popen(["sleep", "600"], stdin=held))
    return b


def _top(b: Built, tree: Tree) -> None:
    if "notes" in tree.top:
        b.file(b.temp / "notes.txt", 1, 40 * DAY)
    if "symlink" in tree.top:
        os.symlink(b.outside / "secret.txt", b.temp / "link-out")
    if "fifo" in tree.top:
        os.mkfifo(b.temp / "fifo")
    if "vibe" in tree.top:
        (b.temp / "vibe_edit_history").mkdir()
        b.ages.append((b.temp / "vibe_edit_history", 40 * DAY))
    if tree.ignore:
        ignore = b.temp / ".gradiocleanignore"
        ignore.write_text("\n".join(tree.ignore) + "\n")
        set_age(ignore, 40 * DAY)


def _app(b: Built, tree: Tree) -> None:
    app = b.app
    assert app is not None and tree.sessions is not None
    app.mkdir()
    for n, (shape, spec) in enumerate(tree.sessions):
        b.folder(app / _session_name(shape, n), spec)
    if "own" in tree.app:
        b.file(app / "app.py", 1, 40 * DAY)
        b.file(app / "outputs1" / "keep.txt", 2, 40 * DAY)
        b.ages.append((app / "outputs1", 40 * DAY))
    if "flagged" in tree.app:
        flagged = app / ".gradio" / "flagged"
        b.file(flagged / "dataset1.csv", 1, 40 * DAY)
        b.file(flagged / "image" / ("f" * 20) / "in.png", 2, 40 * DAY)
        b.ages.append((flagged / "image" / ("f" * 20), 40 * DAY))
    if "examples" in tree.app:
        b.file(app / ".gradio" / "cached_examples" / "12" / "log.csv", 2, 3 * DAY)


# -- the rules ---------------------------------------------------------------------------

INCLUDES = ("*.png", "sub/")
EXCLUDES = ("*.wav", "sub/", "d.bin")
BUDGETS: dict[str, tuple[dict[str, Any], tuple[str, str]]] = {  # RuleSet fields, flags
    "max-size 0": ({"max_size": 0}, ("--max-size", "0")),
    "max-size 20000": ({"max_size": 20_000}, ("--max-size", "20000")),
    "min-free 99.99%": ({"min_free": parse_min_free("99.99%")}, ("--min-free", "99.99%")),
    "min-free 1B": ({"min_free": parse_min_free("1B")}, ("--min-free", "1B")),
}


class Rules(NamedTuple):
    older_than: int | None
    age_by: AgeBy
    duplicates: bool
    dedupe: Dedupe
    keep: Keep
    orphaned: bool
    ttl: int
    budget: str | None
    categories: frozenset[Category] | None
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    jobs: int

    def rule_set(self) -> RuleSet:
        extra: dict[str, Any] = dict(BUDGETS[self.budget][0]) if self.budget else {}
        if self.categories:
            extra.update(categories=self.categories, explicit_categories=True)
        return RuleSet(
            older_than=self.older_than,
            age_by=self.age_by,
            duplicates=self.duplicates,
            dedupe=self.dedupe,
            keep=self.keep,
            orphaned_sessions=self.orphaned,
            session_ttl=self.ttl,
            include=self.include,
            exclude=self.exclude,
            min_age=0,
            **extra,
        )

    def args(self) -> list[str]:
        out = ["--age-by", self.age_by.value]
        if self.older_than is not None:
            out += ["--older-than", f"{self.older_than}s"]
        if self.duplicates:
            out += ["--duplicates", "--dedupe", self.dedupe.value, "--keep", self.keep.value]
        if self.orphaned:
            out += ["--orphaned-sessions", "--session-ttl", f"{self.ttl}s"]
        if self.budget:
            out += [*BUDGETS[self.budget][1], "--min-age", "0s"]
        for c in sorted(self.categories or ()):
            out += ["--category", c.value]
        for p in self.include:
            out += ["--include", p]
        for p in self.exclude:
            out += ["--exclude", p]
        return out


_rules = st.builds(
    Rules,
    st.sampled_from((None, HOUR, DAY, 30 * DAY)),
    st.sampled_from(AgeBy),
    st.booleans(),
    st.sampled_from(Dedupe),
    st.sampled_from(Keep),
    st.booleans(),
    st.sampled_from((HOUR, 2 * DAY)),
    st.sampled_from((None, *BUDGETS)),
    st.one_of(st.none(), st.frozensets(st.sampled_from(Category), min_size=1, max_size=3)),
    st.lists(st.sampled_from(INCLUDES), max_size=1).map(tuple),
    st.lists(st.sampled_from(EXCLUDES), max_size=2, unique=True).map(tuple),
    st.sampled_from((1, 2)),
).map(
    lambda r: (
        r if r.duplicates or r.orphaned or r.budget else r._replace(older_than=r.older_than or DAY)
    )
)


# -- what is on disk ---------------------------------------------------------------------


class Seen(NamedTuple):
    """An entry as lstat shows it, and what a file holds (its digest).

    A symlink's target is not read: readlink moves the link's atime whatever the open
    flags (there is no O_NOATIME for it), which would make its folder young to --age-by
    atime. Nor is it needed: a target cannot change in place, so the same inode with the
    same mtime and size is the same link."""

    kind: int  # S_IFMT
    mode: int
    ino: int
    size: int
    mtime_ns: int
    atime_ns: int
    holds: bytes  # regular file: sha256 of its content; else empty

    def same(self, other: Seen, *, atime: bool = False) -> bool:
        """Unchanged, as far as it can be without a change to it: a folder's mtime moves
        when an entry in it goes, an inode's ctime and link count when another name goes.
        `atime`: the atime too, a folder's and a symlink's included (listing a folder,
        or reading or following a link, moves it)."""
        if atime and self.atime_ns != other.atime_ns:
            return False
        if self.kind == stat.S_IFDIR:
            return (self.kind, self.mode, self.ino) == (other.kind, other.mode, other.ino)
        mine = (self.kind, self.mode, self.ino, self.size, self.mtime_ns, self.holds)
        theirs = (other.kind, other.mode, other.ino, other.size, other.mtime_ns, other.holds)
        return mine == theirs


def _seen(path: bytes, st: os.stat_result) -> Seen:
    holds = b""
    if stat.S_ISREG(st.st_mode):  # O_NOATIME: looking must not make a file young
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOATIME | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            holds = hashlib.sha256(f.read()).digest()
    return Seen(
        stat.S_IFMT(st.st_mode), st.st_mode, st.st_ino, st.st_size,
        st.st_mtime_ns, st.st_atime_ns, holds,
    )  # fmt: skip


def snapshot(top: Path) -> dict[bytes, Seen]:
    """Every path under `top` (bytes: any name), never following a link, never opening a
    FIFO, and moving no atime: each folder is listed through an O_NOATIME descriptor, as
    the tool lists them. A plain listing would make every folder young to --age-by atime,
    so the plan made after a snapshot would see another tree than the one before it."""
    out: dict[bytes, Seen] = {}
    stack = [os.fsencode(top)]
    while stack:
        folder = stack.pop()
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NOATIME)
        try:
            with os.scandir(fd) as listing:  # reads a dup of fd: O_NOATIME holds
                for entry in listing:
                    path = folder + b"/" + os.fsencode(entry.name)
                    st = entry.stat(follow_symlinks=False)
                    out[path] = _seen(path, st)
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(path)
        finally:
            os.close(fd)
    return out


def _changed(
    before: dict[bytes, Seen], after: dict[bytes, Seen], *, atime: bool = False
) -> list[str]:
    out = [f"gone: {p!r}" for p in sorted(before.keys() - after.keys())]
    out += [f"new: {p!r}" for p in sorted(after.keys() - before.keys())]
    out += [
        f"changed: {p!r} {before[p]} -> {after[p]}"
        for p in sorted(before.keys() & after.keys())
        if not before[p].same(after[p], atime=atime)
    ]
    return out


# -- the properties ----------------------------------------------------------------------


def check_forecast(plan: Plan, result: ApplyResult) -> None:
    """1. The dry run is apply: each action's status and detail, and what it frees."""
    assert not result.interrupted
    outcomes = result.outcomes
    for i, action in enumerate(plan.actions):
        state = outcomes.state(i)
        assert state is not None, action
        status, detail = state
        forecast = plan.skips.get(i)
        if forecast is None:
            assert status in DONE and detail is None, (action.rel, status, detail)
        else:
            assert (status, detail) == (Status.SKIPPED, forecast), (action.rel, status, detail)
    nbytes, files, folders = plan.to_free
    assert (nbytes, files) == (result.freed_bytes, result.freed_files)
    linked = sum(o.freed_bytes for o in outcomes if o.status is Status.LINKED)
    assert plan.going.link_bytes == linked
    # A dry run's folders are the whole folders that go; apply's also those it emptied.
    whole = sum(1 for o in outcomes if o.action.is_dir and o.status is Status.DELETED)
    assert folders == whole
    assert result.folders == whole + len(result.folders_removed)


def check_only_planned(
    plan: Plan, result: ApplyResult, before: dict[bytes, Seen], after: dict[bytes, Seen]
) -> None:
    """2. Apply removed the planned entries (a folder with all it holds) and the folders it
    emptied, nothing else; a linked copy is the kept copy's inode, its content unchanged."""
    gone: set[bytes] = set()
    linked: dict[bytes, bytes] = {}  # copy -> kept copy
    for i, action in enumerate(plan.actions):
        state = result.outcomes.state(i)
        path = os.fsencode(action.path)
        if state is not None and state[0] is Status.DELETED:
            gone.add(path)
            if action.is_dir:
                gone.update(p for p in before if p.startswith(path + b"/"))
        elif state is not None and state[0] is Status.LINKED:
            assert action.keep is not None
            linked[path] = os.fsencode(action.keep)
    emptied = {os.fsencode(folder) for folder in result.folders_removed}
    gone |= emptied
    for path in emptied:  # emptied by the run: only of what it removed
        inside = {p for p in before if p.startswith(path + b"/")}
        assert inside and inside <= gone, (path, inside - gone)
    assert gone <= before.keys(), gone - before.keys()
    assert after.keys() == before.keys() - gone, _changed(before, after)
    for path, now in after.items():
        was = before[path]
        if path in linked:
            kept = before[linked[path]]
            assert (now.kind, now.ino, now.size, now.holds) == (
                kept.kind,
                kept.ino,
                was.size,
                was.holds,
            )
        else:
            assert was.same(now), (path, was, now)


def check_outside(b: Built, before: dict[bytes, Seen], after: dict[bytes, Seen]) -> None:
    """3. Nothing outside the roots changed: symlink targets, another name of a file."""
    outside = os.fsencode(b.outside) + b"/"
    assert not _changed(
        {p: s for p, s in before.items() if p.startswith(outside)},
        {p: s for p, s in after.items() if p.startswith(outside)},
    )


def check_rerun(plan: Plan, again: Plan, result: ApplyResult) -> None:
    """4. The same rules right after apply select nothing but what apply skipped, with one
    exception: where a budget evicted a duplicate set's kept copy, the set was left alone
    (budget.py), and its copies left are a set of their own the next run links."""
    skipped = set()
    for i, a in enumerate(plan.actions):
        state = result.outcomes.state(i)
        if state is None or state[0] not in DONE:
            skipped.add((a.root, a.rel))
    evicted = plan.budget is not None and plan.budget.evicted > 0
    new = [
        (a.rel, a.rule.value, a.reason)
        for a in again.actions
        if (a.root, a.rel) not in skipped and not (evicted and a.rule is Rule.DUPLICATES)
    ]
    assert not new


PHASES = [p for p in Phase if p is not Phase.explain]  # explaining costs minutes of reruns


@contextlib.contextmanager
def made(tree: Tree) -> Iterator[Built]:
    with tempfile.TemporaryDirectory() as base:
        built = build(Path(base), tree)
        try:
            yield built
        finally:
            built.close()


@settings(max_examples=50, phases=PHASES, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_trees, rules=_rules)
def test_the_dry_run_is_what_apply_does_and_apply_touches_only_the_plan(
    tree: Tree, rules: Rules
) -> None:
    with made(tree) as b:
        rule_set = rules.rule_set()
        first = snapshot(b.base)
        now = time.time() + tree.shift
        plan = preflight(build_plan(b.roots(), rule_set, now=now, jobs=rules.jobs))
        before = snapshot(b.base)
        # Nothing changed, not even an atime, a folder's included (but the ignore file's,
        # which is read).
        ignore = os.fsencode(b.temp / ".gradiocleanignore")
        if ignore in first:
            first[ignore] = first[ignore]._replace(atime_ns=before[ignore].atime_ns)
        assert not _changed(first, before, atime=True), "the dry run changed the tree"
        result = apply_plan(plan, jobs=rules.jobs)
        after = snapshot(b.base)

        for status in Status:
            if result.count(status):
                event(f"some {status.value}")
        event(f"{min(len(plan.actions), 10)}{'+' if len(plan.actions) >= 10 else ''} actions")
        check_forecast(plan, result)
        check_only_planned(plan, result, before, after)
        check_outside(b, before, after)
        again = build_plan(b.roots(), rule_set, now=time.time() + tree.shift, jobs=rules.jobs)
        check_rerun(plan, preflight(again), result)


# -- the same through the command line and its JSON -------------------------------------


def _prune(b: Built, rules: Rules, *extra: str) -> dict[str, Any]:
    roots = [str(b.temp)] + ([str(b.app)] if b.app is not None else [])
    done = run_cli("prune", *roots, *rules.args(), "--json", *extra, temp_dir=b.temp)
    assert done.returncode in (0, 3, 5), done.stderr
    doc = json.loads(done.stdout)
    assert isinstance(doc, dict)
    return doc


def _states(doc: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(a["path"], a["status"], a["detail"]) for a in doc["actions"]]


@settings(max_examples=12, phases=PHASES, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_trees, rules=_rules)
def test_the_json_dry_run_would_free_what_apply_freed(tree: Tree, rules: Rules) -> None:
    with made(tree._replace(shift=0)) as b:
        dry = _prune(b, rules)
        before = snapshot(b.base)
        done = _prune(b, rules, "--apply", "--yes")
        after = snapshot(b.base)
    promised = [
        (path, "skipped" if status == "skipped" else "done", detail)
        for path, status, detail in _states(dry)
    ]
    got = [
        (path, "done" if status in ("deleted", "linked") else status, detail)
        for path, status, detail in _states(done)
    ]
    assert got == promised
    would, totals = dry["totals"]["would_free"], done["totals"]
    assert (would["bytes"], would["files"]) == (totals["freed_bytes"], totals["freed_files"])
    wholes = {
        os.fsencode(a["path"])
        for a in done["actions"]
        if a["type"] == "folder" and a["status"] == "deleted"
    }
    emptied = [
        p for p in before.keys() - after.keys()
        if before[p].kind == stat.S_IFDIR and p not in wholes
        and not any(p.startswith(w + b"/") for w in wholes)
    ]  # fmt: skip
    assert would["folders"] == len(wholes)
    assert totals["folders_removed"] == len(wholes) + len(emptied)


def test_the_strategies_make_every_kind_of_entry(tmp_path: Path) -> None:
    """The trees are what the module says: each extra and top-level entry appears."""
    spec = Folder([File("a.png", 1, 40 * DAY)], [File("c.txt", 0, 0)], frozenset(EXTRAS), DAY)
    tree = Tree(
        [(False, spec), (True, spec)], [DAY], [File("tmpab12cd34", 0, DAY)], [spec],
        frozenset(TOP), IGNORES, [(0, spec), (1, spec), (2, spec)], frozenset(APP),
        [(0, 0), (0, 1), (1, -1)], [0], 0,
    )  # fmt: skip
    b = build(tmp_path, tree)
    try:
        seen = snapshot(tmp_path)
    finally:
        b.close()
    kinds = {s.kind for s in seen.values()}
    assert kinds == {stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK, stat.S_IFIFO}
    assert any(p.endswith(b"/caf\xe9.bin") for p in seen)
    assert (tmp_path / "outside" / "l2.bin").stat().st_nlink == 2
    assert (tmp_path / "gradio" / f"{2:040x}" / "l1.bin").stat().st_nlink == 3
    assert (tmp_path / "app" / "ses0x0q0").is_dir()
    assert (tmp_path / "app" / ".gradio" / "flagged" / "dataset1.csv").is_file()


def test_a_dry_run_by_atime_leaves_the_folders_it_plans_as_old(tmp_path: Path) -> None:
    """The smallest case the JSON property found: an empty hash folder 2 h old, a dry run
    that plans it by atime, and an apply after it that no longer found it old (the walk
    listed folders without O_NOATIME, and the listing moved the atime)."""
    temp = tmp_path / "gradio"
    empty = temp / f"{1:064x}"
    empty.mkdir(parents=True)
    set_age(empty, 2 * HOUR)
    rules = ("--orphaned-sessions", "--session-ttl", "1h", "--age-by", "atime", "--json")
    dry = json.loads(run_cli("prune", str(temp), *rules, temp_dir=temp).stdout)
    assert [a["path"] for a in dry["actions"]] == [str(empty)]
    run_cli("prune", str(temp), *rules, "--apply", "--yes", temp_dir=temp)
    assert not empty.exists()


def _old_by_atime(temp: Path) -> list[Path]:
    """Gradio leftovers last used 2 h ago, which a run by atime plans: an empty hash
    folder (a listing moves its atime), a tmp folder of a file, and one of a symlink only
    (reading the link moves its atime, and so its folder's age)."""
    empty, tmp, linked = temp / f"{1:064x}", temp / "tmpq1w2e3r4", temp / "tmpz9y8x7w6"
    empty.mkdir(parents=True)
    write(tmp / "clip.mp4", b"ffmpeg out", age=2 * HOUR)
    linked.mkdir()
    os.symlink("clip.mp4", linked / "link-in")
    set_age(linked / "link-in", 2 * HOUR)
    for folder in (empty, tmp, linked):
        set_age(folder, 2 * HOUR)
    return [empty, tmp, linked]


def test_the_snapshot_moves_no_atime(tmp_path: Path) -> None:
    """The properties snapshot the tree between runs: a plain listing would make each folder
    young by atime, and a readlink each symlink (relatime: the ctime utime gave them is
    newer than their atime)."""
    folders = _old_by_atime(tmp_path / "gradio")
    entries = [*folders, folders[2] / "link-in"]
    was = [os.lstat(e).st_atime_ns for e in entries]
    seen = snapshot(tmp_path)
    assert [os.lstat(e).st_atime_ns for e in entries] == was
    assert [seen[os.fsencode(e)].atime_ns for e in entries] == was
    os.listdir(folders[0])  # the mount records atimes: the checks above could fail
    os.readlink(entries[-1])
    if [os.lstat(e).st_atime_ns for e in (folders[0], entries[-1])] == [was[0], was[-1]]:
        pytest.skip("this mount does not record atimes (noatime)")


def test_a_snapshot_between_the_json_dry_run_and_apply_changes_no_plan_by_atime(
    tmp_path: Path,
) -> None:
    """The one failure the JSON property saw by atime: the dry run planned an old folder,
    the snapshot taken between the runs listed it (or read a symlink in it), and apply
    found it young and planned nothing. The snapshot now lists with O_NOATIME and reads
    no link."""
    temp = tmp_path / "gradio"
    folders = _old_by_atime(temp)
    rules = ("--orphaned-sessions", "--session-ttl", "1h", "--age-by", "atime", "--json")
    dry = json.loads(run_cli("prune", str(temp), *rules, temp_dir=temp).stdout)
    assert sorted(a["path"] for a in dry["actions"]) == sorted(map(str, folders))
    snapshot(tmp_path)
    done = json.loads(run_cli("prune", str(temp), *rules, "--apply", "--yes", temp_dir=temp).stdout)
    assert _states(done) == [(path, "deleted", None) for path, _, _ in _states(dry)]
    assert not any(f.exists() for f in folders)
