"""--max-size and --min-free on real trees: least recently used units go, whole, and
nothing outside the scope does; what the plan says it frees is what du sees after."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Role
from gradio_clean.documents import prune_to_dict
from gradio_clean.errors import ExitCode
from gradio_clean.metrics import RunMetrics, budget_gauges, render_metrics, run_metrics
from gradio_clean.options import AgeBy
from gradio_clean.plan import BudgetTarget, Plan, Rule
from gradio_clean.preflight import preflight
from gradio_clean.roots import Root
from gradio_clean.rules import RuleSet, build_plan
from gradio_clean.sizes import MinFree, human_size
from gradio_clean.summary import dry_run_summary, over_budget_line, size
from tests.conftest import DAY, HOUR, REPO, cli_env, hold, run_cli, set_age, write

KI = 1024


def unit_name(i: int) -> str:
    """A Gradio 6 hash folder name (64 hex digits), distinct per i."""
    return f"{i:064x}"


def make_unit(root: Path, i: int, size: int, age: float) -> Path:
    folder = root / unit_name(i)
    write(folder / "file.bin", os.urandom(size), age=age)
    set_age(folder, age)
    return folder


def du(path: Path) -> int:
    out = subprocess.run(["du", "-sB1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def plan_for(roots: list[Root], **rules: object) -> Plan:
    ruleset = RuleSet(age_by=AgeBy.MTIME, **rules)  # type: ignore[arg-type]
    return build_plan(roots, ruleset, now=time.time(), jobs=1)


def only_target(plan: Plan) -> BudgetTarget:
    assert plan.budget is not None
    (target,) = plan.budget.targets
    return target


def lru_prefix(folders: list[Path], usage: int, budget: int) -> set[str]:
    """The fewest oldest folders whose removal brings usage to the budget, counted by du."""
    chosen: set[str] = set()
    for folder in sorted(folders, key=lambda f: f.stat().st_mtime_ns):
        if usage <= budget:
            break
        usage -= du(folder)
        chosen.add(folder.name)
    return chosen


def test_max_size_at_half_evicts_exactly_the_least_recently_used_units(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    temp, app = tmp_path / "temp", tmp_path / "app"
    eligible = [
        make_unit(temp, i, (i % 5 + 1) * 9 * KI, (i * 7 % 20 + 2) * HOUR) for i in range(20)
    ]
    # Oldest of all, but out of scope: excluded, held open, young, user data.
    excluded = make_unit(temp, 100, 50 * KI, 30 * DAY)
    held = make_unit(temp, 101, 50 * KI, 29 * DAY)
    young = make_unit(temp, 102, 50 * KI, 60)
    flagged = write(app / ".gradio" / "flagged" / "data.csv", b"x" * 50 * KI, age=40 * DAY)
    code = f"import time\nf = open({str(held / 'file.bin')!r})\nprint('ready', flush=True)\n"
    hold(holder, code + "time.sleep(120)")
    roots = [Root(str(temp), Role.TEMP, "test"), Root(str(app), Role.APP, "test")]
    usage = du(temp) + du(app)
    budget = usage // 2

    plan = plan_for(roots, max_size=budget, exclude=(f"{excluded.name}/",))

    target = only_target(plan)
    assert (target.rule, target.usage, target.target) == (Rule.MAX_SIZE, usage, budget)
    expected = lru_prefix(eligible, usage, budget)
    assert {a.rel for a in plan.actions} == expected
    assert all(a.rule is Rule.MAX_SIZE and a.is_dir for a in plan.actions)
    assert plan.actions[0].reason == f"least recently used; budget {human_size(budget)}"
    assert target.evicted == len(expected) and target.over == 0 and target.why_over is None
    newest = max((temp / rel).stat().st_mtime_ns for rel in expected)
    assert target.newest_evicted_ns == newest

    result = apply_plan(preflight(plan))
    assert result.complete
    assert du(temp) + du(app) == target.after <= budget
    for kept in (excluded, held, young, flagged):
        assert kept.exists()
    assert {f.name for f in eligible if not f.exists()} == expected


def test_min_age_protects_young_units_and_the_shortfall_says_why(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    old = [make_unit(temp, i, 20 * KI, 2 * HOUR + i) for i in range(3)]
    young = [make_unit(temp, 10 + i, 20 * KI, 60 + i) for i in range(3)]
    plan = plan_for([Root(str(temp), Role.TEMP, "test")], max_size=0, min_age=600.0)

    assert {a.rel for a in plan.actions} == {f.name for f in old}
    target = only_target(plan)
    young_bytes = sum(du(f) for f in young)
    assert target.over == du(temp) - sum(du(f) for f in old) > 0
    assert target.why_over is not None
    assert target.why_over.startswith("still ")
    assert f"{human_size(young_bytes)} is younger than 10m" in target.why_over
    assert plan.budget is not None and not plan.budget.met

    later = plan_for([Root(str(temp), Role.TEMP, "test")], max_size=0, min_age=30.0)
    assert {a.rel for a in later.actions} == {f.name for f in old + young}


def test_protected_remainder_is_reported_over_by_how_much_and_why(tmp_path: Path) -> None:
    app = tmp_path / "app"
    write(app / ".gradio" / "flagged" / "big.csv", b"f" * 400 * KI, age=10 * DAY)
    write(app / "app.py", b"import gradio\n", age=10 * DAY)
    session = write(app / "k3x9q0ab1z" / "upload.txt", b"s" * 8 * KI, age=5 * HOUR)
    set_age(session.parent, 5 * HOUR)
    plan = plan_for([Root(str(app), Role.APP, "test")], max_size=100 * KI)

    assert [a.rel for a in plan.actions] == ["k3x9q0ab1z"]  # the one session; no user data
    target = only_target(plan)
    assert target.over > 0
    assert target.why_over is not None
    assert "is protected (user data, app files or excluded)" in target.why_over
    assert target.why_over.startswith("still ")


def test_shared_inodes_are_freed_only_with_their_last_link(tmp_path: Path) -> None:
    """Hard-link dedupe makes hash folders share inodes: evicting one frees its own only."""
    temp = tmp_path / "temp"
    a = make_unit(temp, 1, 4 * KI, 3 * DAY)
    b = make_unit(temp, 2, 4 * KI, 2 * DAY)
    make_unit(temp, 3, 4 * KI, 1 * DAY)
    shared = write(a / "shared.bin", os.urandom(200 * KI), age=3 * DAY)
    os.link(shared, b / "shared.bin")
    set_age(a, 3 * DAY)
    set_age(b, 2 * DAY)
    usage = du(temp)
    root = Root(str(temp), Role.TEMP, "test")

    # Freeing 10 KiB: a alone cannot (its big file stays at b), so a and b go.
    plan = plan_for([root], max_size=usage - 10 * KI)
    assert {x.rel for x in plan.actions} == {a.name, b.name}
    target = only_target(plan)
    assert usage - target.freed == target.after
    assert apply_plan(preflight(plan)).complete
    assert du(temp) == target.after


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(0, 40),  # KiB
            st.integers(0, 200),  # hours old (0: younger than min-age)
            st.booleans(),  # excluded
        ),
        min_size=1,
        max_size=10,
    ),
    st.floats(0.0, 1.0),
)
def test_evicted_units_are_a_prefix_of_the_eligible_ones(
    specs: list[tuple[int, int, bool]], fraction: float
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        temp = Path(tmp) / "temp"
        temp.mkdir()
        folders = []
        for i, (kib, hours, _) in enumerate(specs):
            age = hours * HOUR + i + (0 if hours else 0.0)  # distinct ages; 0 h: young
            folders.append(make_unit(temp, i, kib * KI, age if hours else 30))
        set_age(temp, 0)
        excluded = tuple(f"{f.name}/" for f, s in zip(folders, specs, strict=True) if s[2])
        usage = du(temp)
        budget = int(usage * fraction)
        plan = plan_for([Root(str(temp), Role.TEMP, "test")], max_size=budget, exclude=excluded)

        eligible = [f for f, s in zip(folders, specs, strict=True) if s[1] and not s[2]]
        eligible.sort(key=lambda f: f.stat().st_mtime_ns)
        evicted = {a.rel for a in plan.actions}
        assert evicted == {f.name for f in eligible[: len(evicted)]}
        target = only_target(plan)
        assert target.usage == usage
        if usage - sum(du(f) for f in eligible) <= budget:
            assert target.after <= budget
            assert target.why_over is None
        else:
            assert len(evicted) == len(eligible) and target.why_over is not None


MIN_FREE_CHILD = """
import json, os, sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from gradio_clean.classify import Role
from gradio_clean.apply import apply_plan
from gradio_clean.options import AgeBy
from gradio_clean.errors import ExitCode
from gradio_clean.metrics import RunMetrics, budget_gauges, render_metrics, run_metrics
from gradio_clean.preflight import preflight
from gradio_clean.documents import prune_to_dict
from gradio_clean.summary import dry_run_summary, over_budget_line, size
from gradio_clean.roots import Root
from gradio_clean.rules import RuleSet, build_plan
from gradio_clean.sizes import MinFree

mnt = Path(sys.argv[1])
now = time.time()
ages = {}
for i in range(12):  # 12 units of 512 KiB on 8 MiB: about 80% used
    folder = mnt / f"{i:064x}"
    folder.mkdir()
    (folder / "f.bin").write_bytes(os.urandom(512 * 1024))
    t = now - (i * 7 % 12 + 1) * 3600
    os.utime(folder / "f.bin", (t, t))
    os.utime(folder, (t, t))
    ages[folder.name] = t

def free() -> float:
    v = os.statvfs(mnt)
    return v.f_bavail / v.f_blocks

before = free()
rules = RuleSet(age_by=AgeBy.MTIME, min_free=MinFree(percent=50.0))
plan = build_plan([Root(str(mnt), Role.TEMP, "test")], rules, now=now, jobs=1)
result = apply_plan(preflight(plan))
(target,) = plan.budget.targets
print(json.dumps({
    "before": before, "after": free(), "complete": result.complete,
    "evicted": sorted(a.rel for a in plan.actions), "ages": ages,
    "rule": target.rule.value, "over": target.over, "mount": target.filesystem,
}))
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1) to mount a tmpfs",
)
def test_min_free_on_a_small_tmpfs_evicts_the_oldest_units_only(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = 'mount -t tmpfs -o size=8m none "$1" && exec "$2" -c "$3" "$1" "$4"'
    child = [sys.executable, textwrap.dedent(MIN_FREE_CHILD), str(REPO)]
    proc = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", str(mnt), *child],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if (
        proc.returncode != 0
        and "unshare" in proc.stderr
        and "Operation not permitted" in proc.stderr
    ):
        pytest.skip("unshare is not permitted here")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["before"] < 0.5 <= out["after"]
    assert out["complete"] and out["rule"] == "min-free" and out["over"] == 0
    assert out["mount"] == str(mnt)
    by_age = sorted(out["ages"], key=out["ages"].get)
    assert out["evicted"] == sorted(by_age[: len(out["evicted"])])
    assert 0 < len(out["evicted"]) < len(by_age)


def test_min_free_target_counts_the_filesystem(tmp_path: Path) -> None:
    """Without a mount of our own: the target is the filesystem's, shared by its roots."""
    one, two = tmp_path / "one", tmp_path / "two"
    make_unit(one, 1, 8 * KI, 3 * HOUR)
    make_unit(two, 2, 8 * KI, 2 * HOUR)
    roots = [Root(str(one), Role.TEMP, "test"), Root(str(two), Role.TEMP, "test")]
    plan = plan_for(roots, min_free=MinFree(bytes=0))
    target = only_target(plan)  # one filesystem: one target for both roots
    v = os.statvfs(tmp_path)
    assert target.roots == (str(one), str(two))
    assert target.size == v.f_blocks * v.f_frsize
    assert target.wanted_free == 0 and target.evicted == 0 and plan.actions == ()
    assert abs(target.usage - (v.f_blocks - v.f_bavail) * v.f_frsize) < 64 * 1024 * 1024


def test_a_split_walk_plans_the_same_cut(tmp_path: Path) -> None:
    """Forked workers each collect their share of the units; the parent sorts them all."""
    temp = tmp_path / "temp"
    for i in range(12):
        make_unit(temp, i, (i % 3 + 1) * 8 * KI, (i * 5 % 12 + 1) * HOUR)
    root = Root(str(temp), Role.TEMP, "test")
    rules = RuleSet(age_by=AgeBy.MTIME, max_size=du(temp) // 2)
    now = time.time()
    one = build_plan([root], rules, now=now, jobs=1)
    split = build_plan([root], rules, now=now, jobs=2)
    assert one.actions and split.actions == one.actions
    assert split.budget == one.budget


def test_units_last_used_at_the_same_time_go_by_root_then_rel(tmp_path: Path) -> None:
    """Ties in last use (a copied tree: every ctime alike) are cut in one order over all
    roots: by root, then by rel; the units used earlier go first all the same."""
    roots, units = [], []
    then = (int(time.time()) - 5 * HOUR) * 1_000_000_000
    for name in ("b", "a"):
        temp = tmp_path / name / "temp"
        for i in range(8):
            rel = unit_name(i * 37 % 8) if i % 3 else f"tmp{i * 5 % 8}abcdef"
            path = write(temp / rel / "f.bin" if i % 3 else temp / rel, os.urandom(8 * KI))
            os.utime(path, ns=(then, then))
            os.utime(temp / rel, ns=(then, then))
            units.append((str(temp), rel))
        early = make_unit(temp, 99, 8 * KI, 9 * HOUR)  # used before the tie: goes first
        roots.append(Root(str(temp), Role.TEMP, "test"))
    usage = sum(du(Path(r.path)) for r in roots)
    plan = plan_for(roots, max_size=usage // 2)
    evicted = [(a.root, a.rel) for a in plan.actions]
    assert (str(tmp_path / "a" / "temp"), early.name) in evicted
    assert (str(tmp_path / "b" / "temp"), early.name) in evicted
    tied = sorted(units)
    rest = [u for u in evicted if u[1] != early.name]
    assert 0 < len(rest) < len(tied)
    assert sorted(rest) == tied[: len(rest)]


def test_several_ties_in_last_use_each_go_by_rel(tmp_path: Path) -> None:
    """Runs of units last used at the same time, first, between others and last in the
    order, each cut by rel: as many units go as the budget needs, in (last use, rel) order."""
    temp = tmp_path / "temp"
    base = (int(time.time()) - 9 * HOUR) * 1_000_000_000
    ticks = [0, 0, 0, 1, 2, 2, 3, 4, 4, 4, 4, 5, 6, 6]  # ties of 3, 2, 4 and 2 units
    last_use: dict[str, int] = {}
    for i, tick in enumerate(ticks):
        folder = make_unit(temp, i * 7 % len(ticks) + 1, 8 * KI, 9 * HOUR)
        then = base + tick * 1_000_000_000
        os.utime(folder / "file.bin", ns=(then, then))
        os.utime(folder, ns=(then, then))
        last_use[folder.name] = then
    lru = sorted(last_use, key=lambda rel: (last_use[rel], rel))
    usage = du(temp)
    one = du(temp / lru[0])  # every unit holds as much
    root = Root(str(temp), Role.TEMP, "test")
    for k in range(1, len(ticks)):
        plan = plan_for([root], max_size=usage - k * one)
        assert {a.rel for a in plan.actions} == set(lru[:k]), k


def test_the_cut_is_shown_in_the_dry_run_json_and_metrics(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    for i in range(4):
        make_unit(temp, i, 16 * KI, (i + 1) * DAY)
    young = make_unit(temp, 9, 64 * KI, 60)
    plan = preflight(plan_for([Root(str(temp), Role.TEMP, "test")], max_size=16 * KI))
    target = only_target(plan)
    assert target.evicted == 4 and target.over > 0

    lines = dry_run_summary(plan)
    budget = next(line for line in lines if line.startswith("Budget --max-size 16K: "))
    newest = (temp / unit_name(0)).stat().st_mtime_ns  # the youngest evicted unit's last use
    minute = (newest // 60_000_000_000 + 1) * 60  # strictly after it, even on the minute
    before = time.strftime("%Y-%m-%d %H:%M", time.gmtime(minute))
    assert budget == (
        f"Budget --max-size 16K: usage {size(target.usage)} → target 16.0 KiB: "
        f"frees {size(target.freed)}, after {size(target.after)}; "
        f"evicting 4 folders last used before {before} UTC."
    )
    assert f"Budget not met: still {human_size(target.over)} over: " in "\n".join(lines)
    assert "is younger than 10m" in "\n".join(lines)

    doc = prune_to_dict(plan, None, {})
    assert doc["budget"]["met"] is False
    (t,) = doc["budget"]["targets"]
    assert (t["rule"], t["usage_bytes"], t["target_bytes"]) == ("max-size", target.usage, 16 * KI)
    assert t["after_bytes"] == target.after and t["over_bytes"] == target.over > 0
    assert t["evicted"] == 4 and t["why_over"] == target.why_over
    assert {a["rule"] for a in doc["actions"]} == {"max-size"}
    assert "budget" not in prune_to_dict(plan_for([Root(str(temp), Role.TEMP, "t")]), None, {})
    assert young.exists()

    text = render_metrics(
        RunMetrics({}, {}, 0, 0, 1.0, True, 0.0, budget=budget_gauges(plan.budget))
    )
    assert 'gradio_clean_budget_bytes{rule="max-size",filesystem=""} 16384\n' in text
    assert (
        f'gradio_clean_budget_over_bytes{{rule="max-size",filesystem=""}} {target.over}\n' in text
    )
    assert "gradio_clean_over_budget 1\n" in text
    assert "over_budget" not in render_metrics(RunMetrics({}, {}, 0, 0, 1.0, True, 0.0))
    assert int(ExitCode.OVER_BUDGET) == 5


def test_prune_exits_5_with_one_line_when_the_rest_is_young(tmp_path: Path) -> None:
    """The command line: a budget that cannot be met says how far over and why, on
    stderr even with --quiet, and exits 5 (dry run and --apply alike); a met one is 0."""
    temp = tmp_path / "temp"
    old = [make_unit(temp, i, 40 * KI, 2 * DAY + i) for i in range(4)]
    young = [make_unit(temp, 10 + i, 40 * KI, 60 + i) for i in range(2)]
    base = ["prune", str(temp), "--age-by", "mtime", "--max-size", "1K"]

    dry = run_cli(*base, temp_dir=temp)
    assert dry.returncode == ExitCode.OVER_BUDGET, dry.stderr
    lines = [line for line in dry.stderr.decode().splitlines() if "budget not met" in line]
    young_bytes = human_size(sum(du(f) for f in young))
    over = human_size(du(temp) - 1024 - sum(du(f) for f in old))
    itself = f"{human_size(du(temp) - sum(du(f) for f in old + young))} is the root folder itself"
    assert lines == [
        f"gradio-clean: budget not met: --max-size 1K still {over} over: "
        f"{young_bytes} is younger than 10m, {itself}"
    ]
    assert all(f.exists() for f in old + young)  # a dry run

    shown = run_cli(*base, "--apply", temp_dir=temp)  # without --quiet, stdout says it too
    assert shown.returncode == ExitCode.OVER_BUDGET
    out = shown.stdout.decode().splitlines()
    assert any(line.startswith("Budget --max-size 1K: usage ") for line in out), out
    assert f"Budget not met: still {over} over: {young_bytes} is younger than 10m, {itself}." in out
    assert [x for x in shown.stderr.decode().splitlines() if "budget not met" in x] == lines
    assert not any(f.exists() for f in old) and all(f.exists() for f in young)

    applied = run_cli(*base, "--apply", "--quiet", temp_dir=temp)  # the same again, quiet
    assert applied.returncode == ExitCode.OVER_BUDGET
    assert applied.stdout == b""
    assert applied.stderr.decode().splitlines() == lines
    assert not any(f.exists() for f in old) and all(f.exists() for f in young)

    met = run_cli(*base[:-1], "1G", "--apply", "--quiet", temp_dir=temp)
    assert (met.returncode, met.stdout, met.stderr) == (0, b"", b"")


# A child that counts the /proc snapshots it takes (each reads /proc/locks once).
_COUNT_SNAPSHOTS = """
import sys
reads = []
sys.addaudithook(lambda ev, args: ev == "open" and args[0] == "/proc/locks" and reads.append(0))
from gradio_clean.__main__ import main
try:
    main()
finally:
    sys.stderr.write(f"snapshots: {len(reads)}\\n")
"""


def test_a_budget_dry_run_asks_one_snapshot_and_still_forecasts_skips(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """The budget asks the in-use forecast about every action as it chooses; the dry run
    shows its answers instead of taking a second /proc snapshot (~2 s on a busy host)."""
    temp = tmp_path / "temp"
    old = make_unit(temp, 0, 16 * KI, 3 * DAY)  # --older-than's, held open
    units = [make_unit(temp, i, 16 * KI, (i + 2) * HOUR) for i in range(1, 4)]  # the budget's
    code = f"import time\nf = open({str(old / 'file.bin')!r})\nprint('ready', flush=True)\n"
    hold(holder, code + "time.sleep(60)")
    args = ["prune", str(temp), "--age-by", "mtime", "--older-than", "1d", "--max-size", "1K"]
    run = subprocess.run(
        [sys.executable, "-c", _COUNT_SNAPSHOTS, *args, "--json"],
        capture_output=True,
        timeout=60,
        env=cli_env(GRADIO_TEMP_DIR=str(temp)),
    )
    assert run.returncode == ExitCode.OVER_BUDGET, run.stderr
    assert run.stderr.decode().splitlines()[-1] == "snapshots: 1"
    doc = json.loads(run.stdout)
    statuses = {a["path"]: (a["rule"], a["status"]) for a in doc["actions"]}
    assert statuses == {
        str(old): ("older-than", "skipped"),  # the forecast's answer, as the preflight's was
        **{str(unit): ("max-size", "planned") for unit in units},
    }
    assert doc["totals"]["skipped"] == 1


def test_the_over_line_adds_up_with_du_when_other_rules_empty_folders(tmp_path: Path) -> None:
    """With --older-than and --orphaned-sessions beside --max-size, hash folders whose
    files the two rules plan one by one go as the run empties them, and free their own
    blocks: the plan counted the files only, and said 8 KiB more after (and over) than
    du then saw. The young rest, what other rules leave of it, is what the line names."""
    temp = tmp_path / "temp"
    emptied = []
    for i in (1, 2):  # an old file (older-than) beside a staging copy 2 h old (orphaned)
        folder = temp / unit_name(i)
        write(folder / "f.bin", os.urandom(10_000), age=40 * DAY)
        write(folder / f".f.bin.ab12cd3{i}", os.urandom(100), age=2 * HOUR)
        emptied.append(folder)
    young = [temp / unit_name(i) for i in (6, 7)]
    for folder in young:
        write(folder / "sub" / "g.bin", os.urandom(5000), age=60)
    args = ["prune", str(temp), "--age-by", "mtime", "--max-size", "1K", "--json"]
    args += ["--older-than", "30d", "--orphaned-sessions", "--session-ttl", "1h"]
    before = du(temp)
    dry = json.loads(run_cli(*args, temp_dir=temp).stdout)
    target = dry["budget"]["targets"][0]
    assert target["usage_bytes"] == before
    assert target["after_bytes"] == before - sum(du(f) for f in emptied)

    done = run_cli(*args, "--apply", "--yes", temp_dir=temp)
    assert done.returncode == ExitCode.OVER_BUDGET
    applied = json.loads(done.stdout)["budget"]["targets"][0]
    assert not any(f.exists() for f in emptied)
    assert applied["after_bytes"] == du(temp) == target["after_bytes"]
    assert applied["over_bytes"] == du(temp) - 1024
    young_bytes = human_size(sum(du(f) for f in young))
    itself = human_size(du(temp) - sum(du(f) for f in young))
    assert applied["why_over"] == (
        f"still {human_size(du(temp) - 1024)} over: {young_bytes} is younger than 10m, "
        f"{itself} is the root folder itself"
    )
    over = [x for x in done.stderr.decode().splitlines() if "budget not met" in x]
    assert over == [f"gradio-clean: budget not met: --max-size 1K {applied['why_over']}"]


def test_usage_after_a_skip_at_apply_is_what_du_sees(tmp_path: Path) -> None:
    """A unit the budget evicted changes before apply, which skips it: the usage after
    adds back what it holds on disk (its folder's blocks too), not its apparent size;
    it was 6 KiB below du here."""
    temp = tmp_path / "temp"
    units = [make_unit(temp, i, 10_000, 2 * DAY + i) for i in range(3)]
    root = [Root(str(temp), Role.TEMP, "test")]
    plan = preflight(plan_for(root, max_size=0))
    assert sorted(a.rel for a in plan.actions) == sorted(u.name for u in units)
    with open(units[0] / "file.bin", "ab") as changed:  # a new write: mtime and size move
        changed.write(b"more")
    result = apply_plan(plan)
    assert [o.status.value for o in result.outcomes].count("skipped") == 1
    gauge = run_metrics(plan, result, time.time(), success=True).budget[0]
    assert gauge.usage_after_bytes == du(temp)
    line = over_budget_line(plan, [gauge.usage_after_bytes])
    assert line is not None
    assert f"still {human_size(du(temp))} over" in line  # --max-size 0: all of it


def test_the_over_line_names_the_root_folder_when_it_is_all_that_is_left(
    tmp_path: Path,
) -> None:
    """--max-size under the root folder's own block: every unit goes, and what is left
    over is the root folder itself, which du -s counts and no rule removes. The line said
    "still 3.0 KiB over." and named nothing; it names the root's 4 KiB now, and the
    figures are du's: usage before, after, and over by after less the target."""
    temp = tmp_path / "temp"
    units = [make_unit(temp, i, 10_000, 2 * DAY + i) for i in range(2)]
    args = ["prune", str(temp), "--age-by", "mtime", "--max-size", "1K", "--min-age", "0s"]
    before = du(temp)
    dry = json.loads(run_cli(*args, "--json", temp_dir=temp).stdout)["budget"]["targets"][0]
    root_block = before - sum(du(u) for u in units)
    assert (dry["usage_bytes"], dry["after_bytes"]) == (before, root_block)
    done = run_cli(*args, "--apply", "--yes", temp_dir=temp)
    assert done.returncode == ExitCode.OVER_BUDGET
    assert not any(u.exists() for u in units)
    assert du(temp) == root_block == dry["after_bytes"]
    over, itself = human_size(root_block - 1024), human_size(root_block)
    line = f"still {over} over: {itself} is the root folder itself"
    assert dry["over_bytes"] == root_block - 1024 and dry["why_over"] == line
    stderr = [x for x in done.stderr.decode().splitlines() if "budget not met" in x]
    assert stderr == [f"gradio-clean: budget not met: --max-size 1K {line}"]
