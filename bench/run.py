"""Benchmark gradio-clean against the system's own tools, in one run, on one tree per size.

    python bench/run.py --files 200000 --reps 5 --work /tmp/gcbench [--only scan,dupes,older]
    python bench/run.py --files 200000,2000000 ...   # both trees, then the scaling row

Comparisons (issue 12's targets):
  scan   `gradio-clean scan --json ROOT` vs `du -sb ROOT`: wall time <= 0.9x, peak RSS <= 150 MB.
         Context: `gdu -n -p -s -a`, `find -printf '%s\\n' | awk`, and gradio-clean's start-up.
  dupes  `gradio-clean prune ROOT --duplicates --json` (dry run) vs `jdupes -r -q -m ROOT`:
         wall time <= 0.7x, peak RSS <= 150 MB (jdupes' own shown beside it), and the same
         duplicate sets. Context: rdfind -dryrun, fdupes -m.
  older  `gradio-clean prune ROOT --older-than 30d --age-by mtime --apply --yes --json` vs
         `find ROOT -type f -mtime +30 -delete`, each on a fresh `cp -a` of the tree:
         wall time <= 1.1x, and the same files left behind.
  budget `gradio-clean prune ROOT --max-size HALF --age-by mtime --json` (dry run; HALF: half
         the tree's `du -sB1` usage) vs `gradio-clean scan --json ROOT` (issue 9): wall and
         CPU time <= 1.1x, peak RSS <= 150 MB; the plan evicts exactly the least recently used
         units and brings the usage at or under HALF. Context: the same with --quiet.
  scaling  with two sizes or more (or --scale-from an earlier --json-out): gradio-clean's time
         and memory per file on the largest tree within 1.2x of the smallest's, peak <= 1 GB.

Every repetition runs each tool once, rotating the order; warm-up runs are not counted.
Wall time is measured around the child; peak RSS is GNU time's %M for that child
(for a shell pipeline: the largest process in it). Ratios are gradio-clean's median over
the peer's median; "paired" is the median of the per-repetition ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from stat import S_ISDIR
from typing import Any

import make_tree

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MAKE_TREE = os.path.join(HERE, "make_tree.py")
MAX_TEMPLATE_AGE = 0.4 * 86400  # make_tree's age gap holds for half a day
# Issue 12's targets.
SCAN_RATIO = 0.9
SCAN_RSS_MB = 150.0
OLDER_RATIO = 1.1
DUPES_RATIO = 0.7
DUPES_RSS_MB = 150.0
SCALE_RATIO = 1.2  # time and memory per file, largest tree over smallest
SCALE_RSS_MB = 1000.0
DEFAULT_FILES = 200_000
BUDGET_RATIO = 1.1  # issue 9: wall and CPU time over scan's
BUDGET_RSS_MB = 150.0
COMPARISONS = ("scan", "dupes", "older", "budget")
TAG = str(os.getpid())  # per-run file names: two runs may share --work (and its tree)
RUN_FILES = (
    ("stderr", ".txt"),
    ("older-copy", ""),
    ("prune-dupes", ".json"),
    ("prune-older", ".json"),
    ("prune-budget", ".json"),
    ("prune-budget-all", ".json"),
    ("scan", ".json"),
)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# -- running one command ------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    maxrss_kib: int  # peak RSS of the largest single process (GNU time %M)
    cpu: float  # user + system seconds, the tool and its children
    pss_kib: int  # peak of the summed PSS of the whole process tree, sampled; 0 if too quick
    rc: int


class TreeSampler(threading.Thread):
    """Samples the summed PSS of a process tree, so forked workers count too.

    PSS splits shared (copy-on-write) pages among the processes sharing them, so the sum
    is the tree's real footprint; RSS would count those pages once per process.
    """

    def __init__(self, pid: int, skip_root: bool, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.skip_root = skip_root
        self.interval = interval
        self.done = threading.Event()
        self.peak_kib = 0

    def run(self) -> None:
        while True:
            total = sum(self.pss(p) for p in self.tree())
            self.peak_kib = max(self.peak_kib, total)
            if self.done.wait(self.interval):
                return

    def tree(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                        todo.extend(int(c) for c in f.read().split())
            except OSError:
                continue
        return pids[1:] if self.skip_root else pids

    @staticmethod
    def pss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0


@dataclass
class Tool:
    name: str
    argv: list[str]
    stdout: str | None = None  # a file to keep stdout in; None sends it to /dev/null
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


TIME = "/usr/bin/time"  # GNU time: forks the tool from its own small process


def run_once(tool: Tool, errfile: str) -> Sample:
    """Run `tool` to completion: wall time, peak RSS, CPU time and sampled tree PSS.

    wait4() on our own child would report at least this Python process's RSS: the
    high-water mark survives the fork and exec. So GNU time, a small C program, starts
    the tool and reports the tool's own peak (%M); wait4() is the fallback.
    """
    rssfile = errfile + ".rss"
    argv = tool.argv
    wrapped = os.access(TIME, os.X_OK)
    if wrapped:
        argv = [TIME, "-f", "%M %U %S", "-o", rssfile, *argv]
    with (
        open(tool.stdout or os.devnull, "wb") as out,
        open(errfile, "wb") as err,
    ):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        sampler = TreeSampler(proc.pid, skip_root=wrapped)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        sampler.done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    maxrss, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    if wrapped:
        with open(rssfile, encoding="utf-8", errors="replace") as f:
            last = f.read().strip().splitlines()[-1:]  # after "Command exited with ..."
        os.unlink(rssfile)
        fields = last[0].split() if last else []
        if len(fields) == 3 and fields[0].isdigit():
            maxrss, cpu = int(fields[0]), float(fields[1]) + float(fields[2])
    sample = Sample(wall, maxrss, cpu, sampler.peak_kib, proc.returncode)
    if sample.rc != 0 and tool.error is None:
        with open(errfile, "rb") as f:
            tail = f.read()[-2000:].decode("utf-8", "replace").strip().splitlines()
        tool.error = f"exit {sample.rc}: " + " | ".join(tail[-2:])
    return sample


def capture(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    proc = subprocess.run(list(argv), capture_output=True, check=False, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def version_of(argv: Sequence[str]) -> str:
    try:
        rc, out, err = capture(argv)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    text = (out or err).decode("utf-8", "replace").strip().splitlines()
    return text[0] if text else f"exit {rc}"


# -- the tree -------------------------------------------------------------------------


def walk_files(root: str) -> Iterable[tuple[str, os.stat_result]]:
    """(path relative to root, lstat) for every regular file; iterative, no links followed."""
    stack = [root]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                elif e.is_file(follow_symlinks=False):
                    yield os.path.relpath(e.path, root), e.stat(follow_symlinks=False)


def fingerprint(root: str) -> dict[str, int]:
    """Cheap identity of a tree: file paths, distinct inodes, bytes, newest mtime."""
    paths = nbytes = newest = 0
    inodes: set[int] = set()
    for _, st in walk_files(root):
        paths += 1
        if st.st_ino not in inodes:
            inodes.add(st.st_ino)
            nbytes += st.st_size
        newest = max(newest, st.st_mtime_ns)
    return {"files": paths, "inodes": len(inodes), "bytes": nbytes, "newest_ns": newest}


def tree_dir(work: str, files: int) -> str:
    """WORK/tree for the default size (so existing trees are reused), WORK/tree-N otherwise."""
    return os.path.join(work, "tree" if files == DEFAULT_FILES else f"tree-{files}")


def ensure_tree(work: str, files: int, seed: int, regen: bool) -> dict[str, Any]:
    """The template tree and its manifest; regenerated when missing, stale or different."""
    tree = tree_dir(work, files)
    mpath = make_tree.manifest_path(tree)
    manifest: dict[str, Any] | None = None
    if not regen and os.path.isdir(tree):
        try:
            with open(mpath, encoding="utf-8") as f:
                manifest = json.load(f)
        except (OSError, ValueError):
            manifest = None
    why = "none yet" if manifest is None else ""
    if manifest is not None:
        if (manifest.get("gen_version"), manifest.get("files"), manifest.get("seed")) != (
            make_tree.GEN_VERSION,
            files,
            seed,
        ):
            why = "different parameters"
        elif time.time() - float(manifest["now"]) > MAX_TEMPLATE_AGE:
            why = "older than the age gap allows"
        else:
            fp = fingerprint(tree)
            if (fp["files"], fp["inodes"], fp["bytes"]) != (
                manifest["files"],
                manifest["inodes"],
                manifest["bytes"],
            ):
                why = f"changed on disk ({fp['files']} files)"
    if regen:
        why = "--regen"
    if why:
        log(f"generating {files:,} files into {tree} ({why}) ...")
        cmd = [sys.executable, MAKE_TREE, tree, "--files", str(files), "--seed", str(seed)]
        subprocess.run([*cmd, "--force"], check=True)
        with open(mpath, encoding="utf-8") as f:
            manifest = json.load(f)
    assert manifest is not None
    if not why:
        log(f"reusing {tree} (generated {(time.time() - float(manifest['now'])) / 60:.0f} min ago)")
    return manifest


# -- one comparison -------------------------------------------------------------------


Hook = Callable[[Tool], None]


@dataclass
class Comparison:
    key: str
    title: str
    ours: Tool
    peer: Tool
    context: list[Tool] = field(default_factory=list)
    ratio_target: float | None = None
    rss_target_mb: float | None = None
    cpu_ratio_target: float | None = None  # also on the CPU time (user + system)
    prepare: Hook | None = None  # before each run of a tool, untimed
    after: Hook | None = None  # after each run of a tool, untimed
    available: bool = True
    reason: str = ""
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def tools(self) -> list[Tool]:
        return [self.ours, self.peer, *self.context]


def cpu_idle(window: float) -> float:
    """Fraction of CPU time idle over `window` seconds (from /proc/stat)."""

    def snap() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v[:8])  # idle + iowait, total

    i0, t0 = snap()
    time.sleep(window)
    i1, t1 = snap()
    return (i1 - i0) / (t1 - t0) if t1 > t0 else 1.0


def settle(idle: float, max_wait: float) -> tuple[float, float]:
    """Wait (up to max_wait s) until the CPUs are at least `idle` idle; (waited, idle seen)."""
    if idle <= 0:
        return 0.0, -1.0
    start = time.monotonic()
    while True:
        seen = cpu_idle(0.5)
        waited = time.monotonic() - start
        if seen >= idle or waited >= max_wait:
            return waited, seen


def bench(
    comp: Comparison, reps: int, warmup: int, errfile: str, calm: tuple[float, float]
) -> None:
    """Warm-up rounds, then `reps` rounds; the two compared tools run back to back, in
    alternating order, so both see the same machine; context tools follow, rotating."""
    tools = [t for t in comp.tools if t.error is None]
    pair = [t for t in (comp.ours, comp.peer) if t in tools]
    rest = [t for t in tools if t not in pair]
    for i in range(warmup + reps):
        k = i % len(rest) if rest else 0
        order = (pair if i % 2 == 0 else pair[::-1]) + rest[k:] + rest[:k]
        label = "warm-up" if i < warmup else f"rep {i - warmup + 1}/{reps}"
        for tool in order:
            if comp.prepare is not None:
                comp.prepare(tool)
            if comp.prepare is not None or tool is order[0] or tool in rest:
                waited, seen = settle(*calm)
                if waited >= 1.0:
                    log(f"{comp.key}: waited {waited:.0f} s for a calmer CPU ({seen:.0%} idle)")
            s = run_once(tool, errfile)
            if comp.after is not None:
                comp.after(tool)
            log(
                f"{comp.key}: {label} {tool.name}: {s.wall:.3f} s, cpu {s.cpu:.2f} s, "
                f"{s.maxrss_kib * 1024 / 1e6:.0f} MB, tree PSS {s.pss_kib * 1024 / 1e6:.0f} MB"
            )
            if i >= warmup:
                tool.samples.append(s)


def median_wall(t: Tool) -> float | None:
    return statistics.median(s.wall for s in t.samples) if t.samples else None


def peak_mb(t: Tool) -> float | None:
    """Peak RSS of the largest single process (GNU time %M), in MB."""
    return max(s.maxrss_kib for s in t.samples) * 1024 / 1e6 if t.samples else None


def pss_mb(t: Tool) -> float | None:
    """Peak summed PSS of the process tree (forked workers included), sampled; in MB."""
    peak = max((s.pss_kib for s in t.samples), default=0)
    return peak * 1024 / 1e6 if peak else None


def memory_mb(t: Tool) -> float | None:
    """What the memory target is checked against: the larger of the two peaks."""
    known = [x for x in (peak_mb(t), pss_mb(t)) if x is not None]
    return max(known) if known else None


def median_cpu(t: Tool) -> float | None:
    return statistics.median(s.cpu for s in t.samples) if t.samples else None


def ratio(a: Tool, b: Tool) -> float | None:
    ma, mb = median_wall(a), median_wall(b)
    return ma / mb if ma is not None and mb else None


def best_ratio(a: Tool, b: Tool) -> float | None:
    """Fastest over fastest: noise only ever adds time, so this is the least noisy view."""
    if not a.samples or not b.samples:
        return None
    return min(s.wall for s in a.samples) / min(s.wall for s in b.samples)


def cpu_ratio(a: Tool, b: Tool) -> float | None:
    ma, mb = median_cpu(a), median_cpu(b)
    return ma / mb if ma is not None and mb else None


def paired_ratio(a: Tool, b: Tool) -> float | None:
    pairs = [x.wall / y.wall for x, y in zip(a.samples, b.samples, strict=False) if y.wall > 0]
    return statistics.median(pairs) if pairs else None


def verdict(comp: Comparison) -> dict[str, Any]:
    out: dict[str, Any] = {}
    r = ratio(comp.ours, comp.peer)
    if comp.ratio_target is not None and r is not None:
        out["ratio_ok"] = r <= comp.ratio_target
    c = cpu_ratio(comp.ours, comp.peer)
    if comp.cpu_ratio_target is not None and c is not None:
        out["cpu_ratio_ok"] = c <= comp.cpu_ratio_target
    rss = memory_mb(comp.ours)
    if comp.rss_target_mb is not None and rss is not None:
        out["rss_ok"] = rss <= comp.rss_target_mb
    failed = [t.name for t in comp.tools if t.error is not None]
    if failed:
        out["failed_tools"] = failed
    return out


# -- scan -------------------------------------------------------------------------------


def scan_comparison(gc: str, tree: str, manifest: dict[str, Any], work: str) -> Comparison:
    q = shlex.quote(tree)
    comp = Comparison(
        "scan",
        "gradio-clean scan --json vs du -sb",
        Tool("gradio-clean scan --json", [gc, "scan", "--json", tree]),
        Tool("du -sb", ["du", "-sb", tree]),
        [
            Tool("gdu -n -p -s -a", ["gdu", "-n", "-p", "-s", "-a", "-c", tree]),
            Tool(
                "find -printf | awk",
                ["sh", "-c", f"find {q} -printf '%s\\n' | awk '{{s += $1}} END {{print s}}'"],
            ),
            Tool("gradio-clean --version", [gc, "--version"]),
        ],
        ratio_target=SCAN_RATIO,
        rss_target_mb=SCAN_RSS_MB,
    )
    comp.context = [t for t in comp.context if shutil.which(t.argv[0])]
    # One untimed run, to check the figures against the manifest.
    out = os.path.join(work, f"scan.{TAG}.json")
    probe = Tool("probe", comp.ours.argv, stdout=out)
    s = run_once(probe, os.path.join(work, f"stderr.{TAG}.txt"))
    if s.rc != 0:
        comp.available, comp.reason = False, probe.error or f"exit {s.rc}"
        return comp
    with open(out, encoding="utf-8") as f:
        root = json.load(f)["roots"][0]
    os.unlink(out)
    comp.checks = {
        "role": root.get("role"),
        "files": root.get("files"),
        "bytes": root.get("bytes"),
        "expected_files": manifest["inodes"],
        "expected_bytes": manifest["bytes"],
        "counts_match": (root.get("files"), root.get("bytes"))
        == (manifest["inodes"], manifest["bytes"]),
    }
    return comp


# -- prune: availability ------------------------------------------------------------------


def prune_missing(gc: str, flags: Sequence[str]) -> str:
    """Why `gradio-clean prune` cannot be benchmarked yet, or "" when it can."""
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", TERM="dumb")
    try:
        rc, out, err = capture([gc, "prune", "--help"], env=env)
    except OSError as exc:
        return f"{gc}: {exc.strerror}"
    if rc != 0:
        lines = [ln.strip(" │╭╮╰╯─") for ln in (err or out).decode("utf-8", "replace").splitlines()]
        found = [ln for ln in lines if "prune" in ln] + [ln for ln in lines if "rror" in ln]
        msg = found[0] if found else f"exit {rc}"
        return f"`gradio-clean prune --help` failed (exit {rc}): {msg.strip()}"
    text = out.decode("utf-8", "replace")
    missing = [f for f in flags if f not in text]
    return f"`gradio-clean prune` has no {', '.join(missing)}" if missing else ""


# -- dupes --------------------------------------------------------------------------------


InodeSet = frozenset[tuple[int, int]]


def inode_sets(sets: Iterable[Iterable[str]]) -> tuple[set[InodeSet], int]:
    """Each set of paths as the set of distinct inodes it holds; plus paths that vanished."""
    result: set[InodeSet] = set()
    missing = 0
    for paths in sets:
        keys = set()
        for p in paths:
            try:
                st = os.lstat(p)
            except OSError:
                missing += 1
                continue
            keys.add((st.st_dev, st.st_ino))
        if len(keys) > 1:
            result.add(frozenset(keys))
    return result, missing


def parse_jdupes(out: bytes) -> list[list[str]]:
    sets: list[list[str]] = []
    for block in out.split(b"\n\n"):
        paths = [os.path.normpath(os.fsdecode(ln)) for ln in block.split(b"\n") if ln]
        if paths:
            sets.append(paths)
    return sets


def parse_prune(path: str, root: str, rule: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    actions = [a for a in doc.get("actions", []) if a.get("rule") == rule]
    for a in actions:
        for key in ("path", "keep"):
            if isinstance(a.get(key), str):
                a[key] = os.path.normpath(os.path.join(root, a[key]))
    return actions, doc


def prune_sets(actions: list[dict[str, Any]]) -> list[list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for a in actions:
        groups[str(a.get("keep"))].append(str(a["path"]))
    return [[keep, *extras] for keep, extras in groups.items()]


def dupes_comparison(gc: str, tree: str, manifest: dict[str, Any], work: str) -> Comparison:
    out = os.path.join(work, f"prune-dupes.{TAG}.json")
    comp = Comparison(
        "dupes",
        "gradio-clean prune --duplicates (dry run) vs jdupes -r -q -m",
        Tool("gradio-clean prune --duplicates", [gc, "prune", tree, "--duplicates", "--json"], out),
        Tool("jdupes -r -q -m", ["jdupes", "-r", "-q", "-m", tree]),
        [
            Tool(
                "rdfind -dryrun",
                ["rdfind", "-dryrun", "true", "-makeresultsfile", "false", tree],
            ),
            Tool("fdupes -r -q -m -n", ["fdupes", "-r", "-q", "-m", "-n", tree]),
        ],
        ratio_target=DUPES_RATIO,
        rss_target_mb=DUPES_RSS_MB,
    )
    comp.context = [t for t in comp.context if shutil.which(t.argv[0])]
    return comp


def check_dupes(comp: Comparison, tree: str, manifest: dict[str, Any], before: Any) -> None:
    """Same duplicate sets as jdupes (compared by inode), the dry run changed nothing."""
    assert comp.ours.stdout is not None
    checks: dict[str, Any] = {"expected_sets": manifest["dup_sets"]}
    checks["expected_extra_copies"] = manifest["dup_extra_inodes"]
    after = fingerprint(tree)
    checks["tree_unchanged"] = after == before
    rc, out, _ = capture(["jdupes", "-r", "-q", tree])
    theirs, missing_j = inode_sets(parse_jdupes(out))
    try:
        actions, _ = parse_prune(comp.ours.stdout, tree, "duplicates")
    except (OSError, ValueError, KeyError) as exc:
        checks["error"] = f"cannot read prune's JSON: {exc}"
        comp.checks = checks
        return
    if actions and not all("keep" in a for a in actions):
        checks["error"] = 'prune\'s actions have no "keep": cannot rebuild the sets'
    ours, missing_o = inode_sets(prune_sets(actions))
    checks["statuses"] = dict(Counter(str(a.get("status")) for a in actions))
    checks["ours_sets"] = len(ours)
    checks["ours_extra_copies"] = sum(len(s) - 1 for s in ours)
    checks["ours_bytes"] = sum(int(a.get("bytes") or 0) for a in actions)
    checks["jdupes_sets"] = len(theirs)
    checks["jdupes_extra_copies"] = sum(len(s) - 1 for s in theirs)
    checks["missing_paths"] = missing_j + missing_o
    checks["only_ours"] = len(ours - theirs)
    checks["only_jdupes"] = len(theirs - ours)
    checks["same_sets"] = ours == theirs and rc == 0
    checks["examples"] = [sorted(f"{d}:{i}" for d, i in s)[:4] for s in list(ours ^ theirs)[:3]]
    newest_kept = 0
    for keep, *extras in prune_sets(actions):
        try:
            kt = os.lstat(keep).st_mtime_ns
            newest_kept += all(os.lstat(p).st_mtime_ns <= kt for p in extras)
        except OSError:
            pass
    checks["keep_is_newest"] = f"{newest_kept}/{len(prune_sets(actions))}"
    comp.checks = checks


# -- older --------------------------------------------------------------------------------


def older_comparison(gc: str, tree: str, manifest: dict[str, Any], work: str) -> Comparison:
    copy = os.path.join(work, f"older-copy.{TAG}")
    cut = f"{manifest['cut_days']:g}"
    out = os.path.join(work, f"prune-older.{TAG}.json")
    remaining: dict[str, list[tuple[int, str]]] = defaultdict(list)  # (count, digest) per run
    last: dict[str, frozenset[str]] = {}  # each tool's last survivors, for examples
    q = shlex.quote(copy)

    regenerate = bool(no_room_for_copy(tree, manifest, work))

    def prepare(_: Tool) -> None:
        if os.path.lexists(copy):
            subprocess.run(["rm", "-rf", copy], check=True)
        if regenerate:  # the same tree again, from the seed and the template's clock
            same = ["--files", str(manifest["files"]), "--seed", str(manifest["seed"])]
            same += ["--now", repr(float(manifest["now"])), "--cut-days", cut]
            subprocess.run([sys.executable, MAKE_TREE, copy, *same, "--force", "-q"], check=True)
            os.unlink(make_tree.manifest_path(copy))
        else:
            subprocess.run(["cp", "-a", tree, copy], check=True)
        os.sync()  # no writeback of the copy racing the timed run

    def after(tool: Tool) -> None:
        left = frozenset(p for p, _ in walk_files(copy))
        remaining[tool.name].append((len(left), survivors_digest(left)))
        last[tool.name] = left
        subprocess.run(["rm", "-rf", copy], check=True)

    comp = Comparison(
        "older",
        f"gradio-clean prune --older-than {cut}d --apply vs find -mtime +{cut} -delete",
        Tool(
            f"gradio-clean prune --older-than {cut}d --age-by mtime --apply",
            # --age-by mtime: the same test as find's -mtime (the default, newest, also
            # counts ctime, which every file of a freshly written tree has from today)
            [
                gc,
                "prune",
                copy,
                "--older-than",
                f"{cut}d",
                "--age-by",
                "mtime",
                "--apply",
                "--yes",
                "--json",
            ],
            out,
        ),
        Tool(
            f"find -type f -mtime +{cut} -delete",
            ["find", copy, "-type", "f", "-mtime", f"+{cut}", "-delete"],
        ),
        [
            Tool(  # prune also removes the folders it empties; this does the same work
                "find -delete, then empty dirs",
                [
                    "sh",
                    "-c",
                    f"find {q} -type f -mtime +{cut} -delete"
                    f" && find {q} -mindepth 1 -type d -empty -delete",
                ],
            )
        ],
        ratio_target=OLDER_RATIO,
        prepare=prepare,
        after=after,
    )
    comp.checks = {"_remaining": remaining, "_last": last}
    why = no_room_for_tree(manifest, work) if regenerate else ""
    if why:
        comp.available, comp.reason = False, why
    return comp


def survivors_digest(paths: Iterable[str]) -> str:
    """One sha256 over the sorted paths: 2M paths compared without keeping each run's set."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(os.fsencode(p) + b"\0")
    return h.hexdigest()


def no_room_for_copy(tree: str, manifest: dict[str, Any], work: str) -> str:
    """Why `older` cannot copy the tree (a 2M-file tree is ~28 GB on disk), or ""."""
    need = int(manifest["bytes"] * 1.6) + 4096 * int(manifest["dirs"] + manifest["files"])
    free = shutil.disk_usage(work).free
    if free < need:
        return f"a copy of the tree needs ~{need / 1e9:.0f} GB free in {work}: {free / 1e9:.0f} GB"
    return ""


def no_room_for_tree(manifest: dict[str, Any], work: str) -> str:
    """Why `older` cannot even write the tree again from its seed (the template's own
    size, with a 10% margin), or "": what it does where a `cp -a` has no room."""
    need = int(manifest["bytes"] * 1.1) + 4096 * int(manifest["dirs"] + manifest["files"])
    free = shutil.disk_usage(work).free
    if free < need:
        return f"another tree needs ~{need / 1e9:.0f} GB free in {work}: {free / 1e9:.0f} GB"
    return ""


def check_older(comp: Comparison, tree: str, manifest: dict[str, Any]) -> None:
    remaining: dict[str, list[tuple[int, str]]] = comp.checks.pop("_remaining")
    last: dict[str, frozenset[str]] = comp.checks.pop("_last")
    ours = remaining.get(comp.ours.name, [])
    theirs = remaining.get(comp.peer.name, [])
    checks: dict[str, Any] = {"expected_left": manifest["files"] - manifest["older_paths"]}
    checks["ours_left"] = sorted({n for n, _ in ours})
    checks["find_left"] = sorted({n for n, _ in theirs})
    checks["ours_consistent"] = len(set(ours)) <= 1
    if ours and theirs:
        mine, find = last[comp.ours.name], last[comp.peer.name]
        checks["only_ours_left"] = len(mine - find)
        checks["only_find_left"] = len(find - mine)
        checks["examples"] = sorted(mine ^ find)[:5]
        checks["same_files_left"] = set(ours) == set(theirs) and len(set(ours)) == 1
    for t in comp.context:
        if remaining.get(t.name) and theirs:
            checks[f"same_left:{t.name}"] = remaining[t.name][-1] == theirs[-1]
    assert comp.ours.stdout is not None
    try:
        _, doc = parse_prune(comp.ours.stdout, tree, "older-than")
        all_actions = doc.get("actions", [])
        checks["statuses"] = dict(Counter(str(a.get("status")) for a in all_actions))
        checks["rules"] = dict(Counter(str(a.get("rule")) for a in all_actions))
    except (OSError, ValueError) as exc:
        checks["error"] = f"cannot read prune's JSON: {exc}"
    comp.checks = checks


# -- budget -------------------------------------------------------------------------------


def du_usage(tree: str) -> int:
    """The tree's usage as `du -sB1` counts it: allocated bytes, each hard-linked inode once."""
    rc, out, err = capture(["du", "-sB1", tree])
    if rc != 0 or not out.split()[:1]:
        raise OSError(f"du -sB1 {tree}: exit {rc}: {err.decode('utf-8', 'replace').strip()}")
    return int(out.split()[0])


def budget_comparison(gc: str, tree: str, work: str) -> Comparison:
    half = du_usage(tree) // 2
    out = os.path.join(work, f"prune-budget.{TAG}.json")
    argv = [gc, "prune", tree, "--max-size", str(half), "--age-by", "mtime"]
    comp = Comparison(
        "budget",
        "gradio-clean prune --max-size HALF (dry run) vs gradio-clean scan --json",
        Tool("gradio-clean prune --max-size --json", [*argv, "--json"], out),
        Tool("gradio-clean scan --json", [gc, "scan", "--json", tree]),
        [Tool("gradio-clean prune --max-size --quiet", [*argv, "--quiet"])],
        ratio_target=BUDGET_RATIO,
        cpu_ratio_target=BUDGET_RATIO,
        rss_target_mb=BUDGET_RSS_MB,
    )
    comp.checks = {"usage": half * 2, "budget": half}
    return comp


@dataclass
class Units:
    """Each top-level item of a tree (a unit of the budget): its last use (the newest mtime
    in it, its own included), the allocated bytes of what only it holds, and the names it
    holds of files with several links: read with lstat, apart from gradio-clean."""

    newest: dict[str, int] = field(default_factory=dict)
    disk: dict[str, int] = field(default_factory=dict)
    linked: dict[tuple[int, int], list[Any]] = field(default_factory=dict)  # blocks, nlink, units

    @classmethod
    def of(cls, tree: str) -> Units:
        units = cls()
        with os.scandir(tree) as it:
            tops = [(e.name, e.path) for e in it]
        for name, path in tops:
            newest = disk = 0
            stack = [path]
            while stack:
                p = stack.pop()
                st = os.lstat(p)
                newest = max(newest, st.st_mtime_ns)
                if S_ISDIR(st.st_mode):
                    with os.scandir(p) as it:
                        stack.extend(e.path for e in it)
                if st.st_nlink > 1 and not S_ISDIR(st.st_mode):
                    seen = units.linked.setdefault((st.st_dev, st.st_ino), [0, st.st_nlink, []])
                    seen[0] = st.st_blocks * 512
                    seen[2].append(name)
                else:
                    disk += st.st_blocks * 512
            units.newest[name], units.disk[name] = newest, disk
        return units

    def frees(self, names: set[str]) -> int:
        """What evicting these units frees: their own bytes, and each linked file's blocks
        when every one of its links is among them."""
        total = sum(self.disk[n] for n in names)
        for blocks, nlink, holders in self.linked.values():
            if sum(1 for h in holders if h in names) >= nlink:
                total += blocks
        return total


def evicted_units(path: str, tree: str) -> list[str]:
    """The units a `prune --max-size --json` document evicts (rule max-size), by name."""
    actions, _ = parse_prune(path, tree, "max-size")
    return [os.path.relpath(str(a["path"]), tree) for a in actions]


def check_budget(comp: Comparison, tree: str, before: dict[str, int]) -> None:
    """The plan evicts the least recently used units (every unit the budget may evict is
    what a run with --max-size 0 evicts), no more than it needs, and the usage it leaves
    (counted here, apart from gradio-clean) is at or under the budget; the tree is unchanged.
    """
    checks = comp.checks
    usage, half = int(checks["usage"]), int(checks["budget"])
    checks["tree_unchanged"] = fingerprint(tree) == before
    assert comp.ours.stdout is not None
    try:
        evicted = evicted_units(comp.ours.stdout, tree)
        with open(comp.ours.stdout, encoding="utf-8") as f:
            (target,) = json.load(f)["budget"]["targets"]
        every = os.path.join(os.path.dirname(comp.ours.stdout), f"prune-budget-all.{TAG}.json")
        zero = [*comp.ours.argv[: comp.ours.argv.index("--max-size")], "--max-size", "0"]
        with open(every, "wb") as f:
            every_argv = [*zero, "--age-by", "mtime", "--json"]  # exit 5: the root's own blocks
            subprocess.run(every_argv, stdout=f, stderr=subprocess.DEVNULL, check=False)
        eligible = set(evicted_units(every, tree))
        os.unlink(every)
    except (OSError, ValueError, KeyError) as exc:
        checks["error"] = f"cannot read prune's JSON: {exc}"
        return
    units = Units.of(tree)
    chosen = set(evicted)
    kept = eligible - chosen
    after = usage - units.frees(chosen)
    checks["units"] = len(units.newest)
    checks["eligible"] = len(eligible)
    checks["evicted"] = len(chosen)
    checks["nested"] = sum(1 for n in chosen | eligible if n not in units.newest)
    if checks["nested"]:  # not a top-level item: this check does not know its last use
        checks["lru"] = None
        return
    newest_evicted = max((units.newest[n] for n in chosen), default=0)
    checks["lru"] = chosen <= eligible and all(units.newest[n] >= newest_evicted for n in kept)
    checks["usage_after"] = after
    checks["met"] = after <= half
    checks["claimed_after"] = target.get("after_bytes")
    checks["claim_true"] = target.get("after_bytes") == after
    if chosen:  # the newest evicted unit kept, the budget would not be met
        last = max(chosen, key=units.newest.__getitem__)
        checks["minimal"] = usage - units.frees(chosen - {last}) > half


# -- report -------------------------------------------------------------------------------


def fmt(x: float | None, spec: str, suffix: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def word(ok: bool | None) -> str:
    return "-" if ok is None else "PASS" if ok else "FAIL"


def render(comps: list[Comparison], meta: dict[str, Any]) -> str:
    lines = [
        f"gradio-clean bench: {meta['files']:,} files, {meta['reps']} reps "
        f"(+{meta['warmup']} warm-up), warm page cache, {meta['cpus']} CPUs, "
        f"load {meta['load_before']} -> {meta['load_after']}",
        f"gradio-clean: {meta['gc']} ({meta['gradio_clean']}, source {meta['source']})",
    ]
    for c in comps:
        lines.append("")
        lines.append(f"[{c.key}] {c.title}")
        if not c.available:
            lines.append(f"  not available: {c.reason}")
            continue
        lines.append(
            f"  {'tool':<40} {'median s':>9} {'min s':>7} {'max s':>7} {'x peer':>7}"
            f" {'cpu s':>6} {'RSS MB':>7} {'PSS MB':>7}"
        )
        for t in c.tools:
            r = ratio(t, c.peer)
            lines.append(
                f"  {t.name[:40]:<40} {fmt(median_wall(t), '.3f'):>9}"
                f" {fmt(min((s.wall for s in t.samples), default=None), '.3f'):>7}"
                f" {fmt(max((s.wall for s in t.samples), default=None), '.3f'):>7}"
                f" {fmt(r, '.2f', 'x'):>7} {fmt(median_cpu(t), '.2f'):>6}"
                f" {fmt(peak_mb(t), '.1f'):>7} {fmt(pss_mb(t), '.1f'):>7}"
            )
            if t.error:
                lines.append(f"    ! {t.error[:300]}")
        r, pr, br = ratio(c.ours, c.peer), paired_ratio(c.ours, c.peer), best_ratio(c.ours, c.peer)
        v = verdict(c)
        parts = [
            f"ratio {fmt(r, '.2f', 'x')} (paired {fmt(pr, '.2f', 'x')},"
            + f" min/min {fmt(br, '.2f', 'x')})"
        ]
        if c.ratio_target is not None:
            parts.append(f"target <= {c.ratio_target:.2f}x: {word(v.get('ratio_ok'))}")
        if c.cpu_ratio_target is not None:
            parts.append(
                f"cpu {fmt(cpu_ratio(c.ours, c.peer), '.2f', 'x')}, target <= "
                f"{c.cpu_ratio_target:.2f}x: {word(v.get('cpu_ratio_ok'))}"
            )
        if c.rss_target_mb is not None:
            parts.append(
                f"memory {fmt(memory_mb(c.ours), '.0f')} MB, target <= {c.rss_target_mb:.0f} MB: "
                f"{word(v.get('rss_ok'))}"
            )
        lines.append("  " + "; ".join(parts))
        if c.checks:
            shown = ", ".join(f"{k}={v}" for k, v in c.checks.items() if k != "examples")
            lines.append(f"  checks: {shown}")
            if c.checks.get("examples"):
                lines.append(f"  differences, e.g.: {c.checks['examples']}")
    return "\n".join(lines)


def to_json(comps: list[Comparison], meta: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"meta": meta, "comparisons": {}}
    for c in comps:
        tools = {
            t.name: {
                "command": t.command,
                "walls": [round(s.wall, 4) for s in t.samples],
                "maxrss_kib": [s.maxrss_kib for s in t.samples],
                "pss_kib": [s.pss_kib for s in t.samples],
                "cpu_s": [round(s.cpu, 3) for s in t.samples],
                "median_s": median_wall(t),
                "peak_rss_mb": peak_mb(t),
                "peak_tree_pss_mb": pss_mb(t),
                "median_cpu_s": median_cpu(t),
                "ratio_to_peer": ratio(t, c.peer),
                "error": t.error,
            }
            for t in c.tools
        }
        doc["comparisons"][c.key] = {
            "title": c.title,
            "available": c.available,
            "reason": c.reason or None,
            "ours": c.ours.name,
            "peer": c.peer.name,
            "ratio": ratio(c.ours, c.peer),
            "paired_ratio": paired_ratio(c.ours, c.peer),
            "best_ratio": best_ratio(c.ours, c.peer),
            "ratio_target": c.ratio_target,
            "cpu_ratio": cpu_ratio(c.ours, c.peer),
            "cpu_ratio_target": c.cpu_ratio_target,
            "rss_target_mb": c.rss_target_mb,
            "verdict": verdict(c),
            "checks": c.checks,
            "tools": tools if c.available else {},
        }
    return doc


def passed(c: Comparison) -> bool:
    """Not available counts as passing; a missed target, a failed run or a failed check does not."""
    if not c.available:
        return True
    v = verdict(c)
    if v.get("failed_tools") or False in (v.get(k) for k in ("ratio_ok", "cpu_ratio_ok", "rss_ok")):
        return False
    return all(
        c.checks.get(k) is not False
        for k in ("counts_match", "same_sets", "tree_unchanged", "same_files_left", "lru", "met")
    )


# -- main ---------------------------------------------------------------------------------


def source_state() -> str:
    """The commit gradio-clean runs from, and whether its package has uncommitted edits."""
    try:
        _, head, _ = capture(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
        _, dirty, _ = capture(["git", "-C", REPO, "status", "--porcelain", "gradio_clean"])
    except OSError:
        return "unknown"
    return head.decode().strip() + (" + uncommitted gradio_clean/ edits" if dirty.strip() else "")


def compile_source() -> str:
    """Byte-compile the repository's package, as an installed one is: with
    PYTHONDONTWRITEBYTECODE set (and no __pycache__ yet) every run compiles each module it
    imports, and prune imports more of them than scan (~0.15 s more CPU a run here)."""
    pkg = os.path.join(REPO, "gradio_clean")
    rc, _, err = capture([sys.executable, "-m", "compileall", "-q", pkg])
    if rc != 0:
        log(f"compileall {pkg}: exit {rc}: {err.decode('utf-8', 'replace').strip()[-300:]}")
    return "compiled" if rc == 0 else f"compileall failed (exit {rc})"


def default_gc() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "gradio-clean")
    return beside if os.access(beside, os.X_OK) else shutil.which("gradio-clean") or "gradio-clean"


def sizes(text: str) -> list[int]:
    """--files: one size, or several separated by commas (200000,2000000); 2M or 200k too."""
    out = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        scale = {"k": 1000, "m": 1000_000}.get(part[-1:], 1)
        number = part[:-1] if scale > 1 else part
        if not number.isdigit() or int(number) * scale < 1:
            raise argparse.ArgumentTypeError(f"not a file count: {part!r}")
        out.append(int(number) * scale)
    return sorted(set(out))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--files",
        type=sizes,
        default=[DEFAULT_FILES],
        help="files in the tree (200000); several, e.g. 200000,2000000, add the scaling row",
    )
    p.add_argument("--reps", type=int, default=5, help="timed repetitions per tool (5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs per tool first (1)")
    p.add_argument("--work", default="/tmp/gcbench", help="where trees go (/tmp/gcbench)")
    p.add_argument("--only", default=",".join(COMPARISONS), help="scan,dupes,older,budget")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--regen", action="store_true", help="regenerate the tree even if reusable")
    p.add_argument("--gradio-clean", dest="gc", default=default_gc(), help="the binary to time")
    p.add_argument("--json-out", default=None, help="also write every sample to this file")
    p.add_argument(
        "--scale-from",
        default=None,
        help="a --json-out file of an earlier run: its smallest tree is the scaling row's base",
    )
    p.add_argument(
        "--calm",
        type=float,
        default=0.7,
        help="before each pair, wait until this fraction of CPU is idle (0.7; 0: don't)",
    )
    p.add_argument("--calm-wait", type=float, default=15.0, help="but at most this long (15 s)")
    p.add_argument(
        "--no-context",
        action="store_true",
        help="time gradio-clean and each row's peer only (at 2M, rdfind and fdupes alone"
        " take ~15 min, and older's third copy of the tree ~20 min)",
    )
    a = p.parse_args(argv)
    a.only = [s.strip() for s in a.only.split(",") if s.strip()]
    bad = [s for s in a.only if s not in COMPARISONS]
    if bad:
        p.error(f"--only: unknown {', '.join(bad)}; choose from {', '.join(COMPARISONS)}")
    if a.reps < 1 or a.warmup < 0:
        p.error("--reps must be >= 1 and --warmup >= 0")
    a.work = os.path.abspath(a.work)
    if (a.work + "/").startswith(os.path.realpath(REPO) + "/"):
        p.error("--work must be outside the repository (trees are gigabytes)")
    return a


def without_context(comp: Comparison, drop: bool) -> Comparison:
    """`comp`, less its context tools if `drop` (--no-context); the checks need none."""
    if drop:
        comp.context = []
    return comp


def run_size(
    a: argparse.Namespace, files: int, errfile: str
) -> tuple[list[Comparison], dict[str, Any]]:
    """Every asked-for comparison on the tree of `files` files."""
    manifest = ensure_tree(a.work, files, a.seed, a.regen)
    tree = manifest["root"]
    meta: dict[str, Any] = {
        "files": files,
        "gc": a.gc,
        "reps": a.reps,
        "warmup": a.warmup,
        "tree": tree,
        "manifest": manifest,
        "cpus": os.cpu_count(),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "gradio_clean": version_of([a.gc, "--version"]),
        "source": source_state(),
        "bytecode": a.bytecode,
        "no_context": a.no_context,
        "peers": {
            n: version_of(v)
            for n, v in {
                "du": ["du", "--version"],
                "find": ["find", "--version"],
                "gdu": ["gdu", "--version"],
                "jdupes": ["jdupes", "-v"],
                "rdfind": ["rdfind", "-v"],
                "fdupes": ["fdupes", "--version"],
            }.items()
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    comps: list[Comparison] = []
    calm = (a.calm, a.calm_wait)
    for key in a.only:
        if key == "scan":
            c = without_context(scan_comparison(a.gc, tree, manifest, a.work), a.no_context)
            if c.available:
                bench(c, a.reps, a.warmup, errfile, calm)
        elif key == "dupes":
            c = without_context(dupes_comparison(a.gc, tree, manifest, a.work), a.no_context)
            why = prune_missing(a.gc, ("--duplicates", "--json"))
            if why:
                c.available, c.reason = False, why
            else:
                before = fingerprint(tree)
                bench(c, a.reps, a.warmup, errfile, calm)
                check_dupes(c, tree, manifest, before)
        elif key == "budget":
            c = without_context(budget_comparison(a.gc, tree, a.work), a.no_context)
            why = prune_missing(a.gc, ("--max-size", "--age-by", "--json", "--quiet"))
            if why:
                c.available, c.reason = False, why
            else:
                before = fingerprint(tree)
                bench(c, a.reps, a.warmup, errfile, calm)
                check_budget(c, tree, before)
        else:
            c = without_context(older_comparison(a.gc, tree, manifest, a.work), a.no_context)
            why = prune_missing(a.gc, ("--older-than", "--apply", "--yes", "--json"))
            if why:
                c.available, c.reason = False, why
            if c.available:
                bench(c, a.reps, a.warmup, errfile, calm)
                check_older(c, tree, manifest)
            else:
                c.checks = {}
        if not c.available:
            log(f"{key}: not available: {c.reason}")
        comps.append(c)
    meta["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return comps, meta


# -- scaling ------------------------------------------------------------------------------


def per_file(doc: dict[str, Any]) -> dict[str, dict[str, float]]:
    """gradio-clean's figures per comparison of one tree, from its to_json document."""
    files = int(doc["meta"]["files"])
    out: dict[str, dict[str, float]] = {}
    for key, c in doc["comparisons"].items():
        t = c["tools"].get(c["ours"]) if c.get("available") else None
        if not t or t.get("median_s") is None:
            continue
        mem = max(x for x in (t.get("peak_rss_mb"), t.get("peak_tree_pss_mb"), 0.0) if x)
        out[key] = {
            "files": files,
            "median_s": t["median_s"],
            "memory_mb": mem,
            "us_per_file": t["median_s"] / files * 1e6,
            "kb_per_file": mem * 1000 / files,
        }
    return out


def scaling(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Time and memory per file of the largest tree over the smallest's, per comparison."""
    small, large = per_file(docs[0]), per_file(docs[-1])
    rows: dict[str, dict[str, Any]] = {}
    for key in small.keys() & large.keys():
        s, b = small[key], large[key]
        t, m = b["us_per_file"] / s["us_per_file"], b["kb_per_file"] / s["kb_per_file"]
        rows[key] = {
            "small": s,
            "large": b,
            "time_ratio": t,
            "memory_ratio": m,
            "ok": t <= SCALE_RATIO and m <= SCALE_RATIO and b["memory_mb"] <= SCALE_RSS_MB,
        }
    return rows


def render_scaling(rows: dict[str, dict[str, Any]]) -> str:
    lines = [
        "",
        f"[scaling] gradio-clean per file, largest tree over smallest: target <= {SCALE_RATIO}x "
        f"in time and memory, peak <= {SCALE_RSS_MB:.0f} MB",
        f"  {'job':<7} {'files':>19} {'us/file':>15} {'x':>6} {'KB/file':>13} {'x':>6}"
        f" {'peak MB':>13} verdict",
    ]
    for key in sorted(rows):
        r = rows[key]
        s, b = r["small"], r["large"]
        lines.append(
            f"  {key:<7} {s['files']:>9,}>{b['files']:<9,} "
            f"{s['us_per_file']:>7.1f}>{b['us_per_file']:<7.1f} {r['time_ratio']:>5.2f}x "
            f"{s['kb_per_file']:>6.2f}>{b['kb_per_file']:<6.2f} {r['memory_ratio']:>5.2f}x "
            f"{s['memory_mb']:>6.0f}>{b['memory_mb']:<6.0f} {word(r['ok'])}"
        )
    if not rows:
        lines.append("  nothing to compare (one tree size, or no job measured on both)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    os.makedirs(a.work, exist_ok=True)
    a.bytecode = compile_source()
    errfile = os.path.join(a.work, f"stderr.{TAG}.txt")
    docs: list[dict[str, Any]] = []
    if a.scale_from:
        with open(a.scale_from, encoding="utf-8") as f:
            earlier = json.load(f)
        docs += earlier.get("sizes", [earlier])[:1]  # the earlier run's smallest tree
    ok = True
    try:
        for files in a.files:
            comps, meta = run_size(a, files, errfile)
            print(render(comps, meta), flush=True)
            docs.append(to_json(comps, meta))
            ok = ok and all(passed(c) for c in comps)
    finally:
        for leftover in (os.path.join(a.work, f"{n}.{TAG}{ext}") for n, ext in RUN_FILES):
            if os.path.isdir(leftover):
                shutil.rmtree(leftover)
            elif os.path.lexists(leftover):
                os.unlink(leftover)
    rows = scaling(docs) if len(docs) > 1 else {}
    if len(docs) > 1:
        print(render_scaling(rows))
        ok = ok and all(r["ok"] for r in rows.values())
    if a.json_out:
        with open(a.json_out, "w", encoding="utf-8") as f:
            json.dump({"sizes": docs, "scaling": rows}, f, indent=2, default=str)
            f.write("\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
