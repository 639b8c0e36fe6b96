"""The dry run tells the truth: what it says apply will skip, apply skips, and why."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gradio_clean.actions import Actions
from gradio_clean.apply import apply_plan
from gradio_clean.classify import Category, Role
from gradio_clean.inuse import InUse, Places, snapshot
from gradio_clean.placing import CTIME_MARGIN_NS
from gradio_clean.plan import Plan, Rule, Status, whole_action
from gradio_clean.preflight import Forecast, preflight
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from gradio_clean.scanned import ScanWarning
from tests.conftest import (
    DAY,
    cli_env,
    give_to_nobody,
    hold,
    hold_flock,
    mark_folder,
    run_cli,
    run_in_private_mounts,
    run_unprivileged,
    set_age,
    write,
)

OLD = 10 * DAY
HELD_DIR = "a" * 63 + "1"  # a folder action: every file in it is old
LOCKED_DIR = "b" * 63 + "2"  # a file action: the folder also holds a fresh file
PLAIN_DIR = "c" * 63 + "3"


def _tree(temp: Path) -> tuple[Path, Path]:
    held = write(temp / HELD_DIR / "0.webp", b"w" * 100, age=OLD)
    write(temp / HELD_DIR / "1.webp", b"x" * 50, age=OLD)
    locked = write(temp / LOCKED_DIR / "locked.bin", b"l" * 30, age=OLD)
    write(temp / LOCKED_DIR / "fresh.bin", b"f")
    write(temp / PLAIN_DIR / "idle.bin", b"i" * 20, age=OLD)
    write(temp / "keep-me" / "old.bin", b"k" * 40, age=OLD)  # excluded
    write(temp / "tmpab12cd34", b"t" * 7, age=OLD)
    return held, locked


def _hold_both(holder: list[subprocess.Popen[bytes]], held: Path, locked: Path) -> tuple[int, int]:
    held_pid = hold(
        holder,
        f"""
        import time
        fh = open({str(held)!r}, "rb")
        print("ready", flush=True)
        time.sleep(120)
        """,
    )
    locked_pid = hold_flock(holder, locked)
    return held_pid, locked_pid


def _prune(temp: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    proc = run_cli(
        "prune",
        str(temp),
        "--older-than",
        "1d",
        "--age-by",
        "mtime",
        "--exclude",
        "keep-me/",
        *extra,
        temp_dir=temp,  # vouched for: its keep-me/ folder alone would make it an app dir
    )
    return proc.returncode, json.loads(proc.stdout) if "--json" in extra else {}


def test_the_dry_run_forecasts_what_apply_does(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    temp = tmp_path / "gradio"
    held, locked = _tree(temp)
    held_pid, locked_pid = _hold_both(holder, held, locked)

    code, dry = _prune(temp, "--json")
    assert code == 0
    code, done = _prune(temp, "--apply", "--yes", "--json")
    assert code == 3  # some entries were left alone

    def statuses(doc: dict[str, Any], went: str) -> dict[str, tuple[str, str | None]]:
        return {
            a["path"]: ("goes" if a["status"] == went else a["status"], a["detail"])
            for a in doc["actions"]
        }

    forecast, outcome = statuses(dry, "planned"), statuses(done, "deleted")
    assert forecast == outcome
    assert forecast[str(temp / HELD_DIR)][0] == "skipped"
    assert f"0.webp is open by process {held_pid} (" in str(forecast[str(temp / HELD_DIR)][1])
    assert f"open by process {locked_pid} (" in str(
        forecast[str(temp / LOCKED_DIR / "locked.bin")][1]
    )
    assert not [p for p in forecast if "keep-me" in p]
    assert (temp / "keep-me" / "old.bin").exists()

    would, totals = dry["totals"], done["totals"]
    assert would["skipped"] == totals["skipped"] == 2
    assert would["would_free"]["bytes"] == totals["freed_bytes"] == 20 + 7
    assert would["would_free"]["files"] == totals["freed_files"] == 2


def test_the_dry_run_table_says_which_entry_is_skipped_and_why(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    temp = tmp_path / "gradio"
    held, locked = _tree(temp)
    held_pid, _ = _hold_both(holder, held, locked)
    proc = run_cli(
        "prune",
        str(temp),
        "--older-than",
        "1d",
        "--age-by",
        "mtime",
        "--exclude",
        "keep-me/",
        temp_dir=temp,
    )
    text = " ".join(proc.stdout.decode().split())
    assert proc.returncode == 0, proc.stderr
    assert f"skip: 0.webp is open by process {held_pid}" in text
    assert "Would free 27 Bytes in 2 files (1 folder); 2 entries would be skipped (see" in text


def test_preflight_walks_folders_only_when_something_is_in_use(tmp_path: Path) -> None:
    """Nothing held: the forecast is empty and every action is expected to go."""
    temp = tmp_path / "gradio"
    _tree(temp)
    root = Root(str(temp), Role.TEMP, "test")
    plan = preflight(
        build_plan([root], RuleSet(age_by=AgeBy.MTIME, older_than=DAY), now=time.time()), snapshot()
    )
    assert plan.actions and not plan.skips
    assert plan.to_free[0] == plan.bytes


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1) to mount a folder inside the root",
)
def test_the_dry_run_forecasts_a_folder_that_holds_a_mount_point(tmp_path: Path) -> None:
    temp = tmp_path / "gradio"
    write(temp / "tmpq1w2e3r4" / "clip.mp4", b"c" * 10, age=OLD)
    (temp / "tmpq1w2e3r4" / "sub").mkdir()  # a tmpfs goes here, in the child's namespace only
    write(temp / "tmpzz99yy88" / "clip.mp4", b"z" * 5, age=OLD)
    for folder in ("tmpq1w2e3r4", "tmpzz99yy88"):
        set_age(temp / folder, OLD)
    set_age(temp / "tmpq1w2e3r4" / "sub", OLD)
    dry, done = tmp_path / "dry.json", tmp_path / "done.json"
    script = (
        'mount -t tmpfs none "$1" && touch -d "-10 days" "$1" && shift'
        ' && "$@" > "$DRY" && { "$@" --apply --yes > "$DONE"; true; }'
    )
    mount = ["unshare", "--mount", "sh", "-c", script, "sh", str(temp / "tmpq1w2e3r4" / "sub")]
    prune = [
        sys.executable,
        "-m",
        "gradio_clean",
        "prune",
        str(temp),
        "--orphaned-sessions",
        "--age-by",
        "mtime",
    ]
    proc = subprocess.run(
        [*mount, *prune, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(DRY=str(dry), DONE=str(done)),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    forecast = {
        a["path"]: (a["status"], a["detail"]) for a in json.loads(dry.read_text())["actions"]
    }
    outcome = {
        a["path"]: (a["status"], a["detail"]) for a in json.loads(done.read_text())["actions"]
    }
    assert forecast[str(temp / "tmpq1w2e3r4")] == (
        "skipped",
        "holds a mount point (sub): left alone, on another filesystem",
    )
    assert outcome[str(temp / "tmpq1w2e3r4")] == forecast[str(temp / "tmpq1w2e3r4")]
    assert forecast[str(temp / "tmpzz99yy88")] == ("planned", None)
    assert outcome[str(temp / "tmpzz99yy88")] == ("deleted", None)


def test_placing_files_by_path_agrees_with_walking_the_folders(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """The fast way (paths from /proc, checked with lstat) and the sure way (walk every
    planned folder) forecast the same skips, with apply's words."""
    temp = tmp_path / "gradio"
    held, locked = _tree(temp)
    mapped = write(temp / PLAIN_DIR / "mapped.bin", b"m" * 8192, age=OLD)
    _hold_both(holder, held, locked)
    hold(
        holder,
        f"""
        import mmap, os, time
        fd = os.open({str(mapped)!r}, os.O_RDONLY)
        m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        os.close(fd)
        print("ready", flush=True)
        time.sleep(120)
        """,
    )
    root = Root(str(temp), Role.TEMP, "test")
    plan = build_plan([root], RuleSet(age_by=AgeBy.MTIME, older_than=DAY), now=time.time())
    places = Places()
    snap = snapshot(places=places)
    by_path = preflight(plan, snap, places)
    by_walk = preflight(plan, snap)  # no places: every folder is walked
    assert by_path.skips == by_walk.skips
    skipped = {plan.actions[i].rel: why for i, why in by_path.skips.items()}
    assert set(skipped) == {HELD_DIR, f"{LOCKED_DIR}/locked.bin", PLAIN_DIR}
    assert skipped[PLAIN_DIR].startswith("mapped.bin is open by process ")


def test_a_lock_taken_after_the_pass_over_open_files_is_placed_or_let_go(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """/proc/locks is read after the pass over /proc/*/fd, so it shows locks taken since
    (a busy server's sqlite and lock files, every few ms). Such a lock still held spares
    its folder, placed by its holder's files; one let go since spares nothing, as apply
    finds. Before, either made the forecast walk every folder, and the walk took the lock
    let go for a claim: the dry run skipped a folder that apply removed."""
    temp = tmp_path / "gradio"
    write(temp / HELD_DIR / "0.webp", b"w" * 100, age=OLD)
    write(temp / HELD_DIR / "1.webp", b"x" * 50, age=OLD)
    idle = write(temp / PLAIN_DIR / "idle.bin", b"i" * 20, age=OLD)
    root = Root(str(temp), Role.TEMP, "test")
    plan = build_plan([root], RuleSet(age_by=AgeBy.MTIME, older_than=DAY), now=time.time())
    places = Places()
    passed = snapshot(places=places)  # its pass over open files: nothing held yet
    hold_flock(holder, temp / HELD_DIR / "0.webp")
    hold_flock(holder, idle)
    snap = InUse(passed.open_by, snapshot().locked)  # then /proc/locks: both held
    holder[-1].kill()  # idle.bin's lock is let go
    holder[-1].wait()

    forecast = preflight(plan, snap, places)
    skipped = {plan.actions[i].rel: why for i, why in forecast.skips.items()}
    assert skipped == {HELD_DIR: "0.webp is locked by another process (flock/fcntl)"}
    result = apply_plan(plan, jobs=1)
    outcome = {o.action.rel: o.status.value for o in result.outcomes}
    assert outcome == {HELD_DIR: "skipped", PLAIN_DIR: "deleted"}  # held: now seen open
    assert not idle.exists() and (temp / HELD_DIR / "0.webp").exists()


def test_a_folder_this_process_marks_stays_locked_when_a_lock_is_asked_again(
    tmp_path: Path,
) -> None:
    """attach()'s marks whose flock is pending count as locked (`own`). Asking
    /proc/locks again for a lock no process shows open (here its descriptor is in
    flight over a socket) must not drop them, which /proc/locks cannot show."""
    root = tmp_path / "gradio"
    marked = root / HELD_DIR
    write(marked / "x.webp", b"x", age=OLD)
    mark = os.open(marked, os.O_RDONLY | os.O_DIRECTORY)
    other = os.open(tmp_path / "other.lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)
    a, b = socket.socketpair()
    try:
        socket.send_fds(a, [b"x"], [other])
        os.close(other)
        st = os.fstat(mark)
        with Forecast([], 0, own=frozenset({(st.st_dev, st.st_ino)})) as forecast:
            why_dir = forecast.why_entry(str(root), HELD_DIR, True, st.st_dev, st.st_ino)
            why_file = forecast.why_entry(str(root), f"{HELD_DIR}/x.webp", False, 0, 0)
            free = forecast.folders_free(str(root))
    finally:
        os.close(mark)
        a.close()
        b.close()
    assert why_dir == "it is locked by another process (flock/fcntl)"
    assert why_file == "its folder is locked by another process (flock/fcntl)"
    assert not free


HOLDER = r"""
import fcntl, json, os, subprocess, sys
from gradio_clean.inuse import InUse, Places, snapshot
from gradio_clean.preflight import Forecast
code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], int(sys.argv[2])); "
        "fcntl.flock(fd, int(sys.argv[3])); print(1, flush=True); time.sleep(60)")
def hold(path, flags, op):
    p = subprocess.Popen([sys.executable, "-c", code, path, str(flags), str(op)],
                         stdout=subprocess.PIPE)
    p.stdout.readline()
    return p
def held(path, flags, op, locked, later):
    # A process flocking `path` (the inode `locked`), and the snapshot: the pass over
    # open files and /proc/locks, taken after the lock, or before it (later): then
    # /proc/locks alone has it.
    holder = None if later else hold(path, flags, op)
    places = Places()
    snap = snapshot(places=places)
    if later:
        holder = hold(path, flags, op)
        st = os.stat(locked)
        lock = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
        snap = InUse(snap.open_by, snap.locked | {lock})
    return holder, snap, places
"""

BIND_HOLDER = r"""
folder = os.path.join(root, "a" * 40)
source = os.path.join(folder, "x.lock") if whole_file else folder
subprocess.run(["mount", "--bind", source, bind], check=True)
path = bind if whole_file else os.path.join(bind, "x.lock")
holder, snap, places = held(path, os.O_RDWR, fcntl.LOCK_EX, os.path.join(folder, "x.lock"), later)
with Forecast([], 0, snap, places) as forecast:
    d = os.stat(folder)
    print(forecast.why_entry(root, "a" * 40, True, d.st_dev, d.st_ino))
holder.kill()
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare(1)"
)
@pytest.mark.parametrize("when", ["before", "later"])
@pytest.mark.parametrize("bound", ["folder", "file"])
def test_a_file_held_through_a_bind_mount_of_a_planned_folder_is_forecast(
    tmp_path: Path, when: str, bound: str
) -> None:
    """A path through a bind mount of a folder below the root (or of the file itself)
    climbs out of it without meeting the root: it is no proof that the file is
    elsewhere. Before, such a held file (seen open, or locked after the pass over open
    files) was taken to be outside the root, and the dry run promised a folder that
    apply then skipped."""
    root = tmp_path / "gradio"
    write(root / ("a" * 40) / "x.lock", b"l", age=OLD)
    bind = tmp_path / "bind"
    if bound == "file":
        bind.touch()
    else:
        bind.mkdir()
    given = (str(root), str(bind), when == "later", bound == "file")
    script = f"root, bind, later, whole_file = {given!r}\n{HOLDER}{BIND_HOLDER}"
    out = run_in_private_mounts(script)
    assert out.startswith("x.lock is ") and "by" in out, out


LOCKED_BIND_HOLDER = r"""
item = os.path.join(root, "a" * 40)
locked = os.path.join(item, "sub") if deeper else item
subprocess.run(["mount", "--bind", locked, bind], check=True)
holder, snap, places = held(bind, os.O_RDONLY | os.O_DIRECTORY, fcntl.LOCK_SH, locked, later)
inside = os.path.join(locked, "x.bin")
with Forecast([], 0, snap, places) as forecast:
    d, f = os.stat(item), os.stat(inside)
    said = [
        forecast.why_entry(root, "a" * 40, True, d.st_dev, d.st_ino),
        forecast.why_entry(root, os.path.relpath(inside, root), False, f.st_dev, f.st_ino),
        forecast.folders_free(root),
    ]
# the whole command: what the dry run says of each action, then what apply did
args = [sys.executable, "-m", "gradio_clean", "prune", root, "--older-than", "1d",
        "--age-by", "mtime", "--json"]
env = dict(os.environ, GRADIO_TEMP_DIR=root)
dry = json.loads(subprocess.run(args, env=env, capture_output=True).stdout)
done = json.loads(subprocess.run([*args, "--apply", "--yes"], env=env, capture_output=True).stdout)
rows = [{a["path"]: [a["status"], a["detail"]] for a in doc["actions"]} for doc in (dry, done)]
print(json.dumps([said, *rows]))
holder.kill()
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare(1)"
)
@pytest.mark.parametrize("when", ["before", "later"])
@pytest.mark.parametrize("where", ["item", "deeper"])
def test_a_folder_locked_through_a_bind_mount_is_forecast_as_apply_skips_it(
    tmp_path: Path, when: str, where: str
) -> None:
    """A live app's mark reached through a bind mount of the folder (or from another
    mount namespace) climbs out of it without meeting the root. Before, such a lock
    was dropped: the dry run promised the folder, and apply, which asks each folder's
    lock by its key, spared it. Now a planned folder's own lock is known by its key,
    and a lock that cannot be placed makes every folder walked and each file's folders
    asked, as apply asks them."""
    root = tmp_path / "gradio"
    item = root / ("a" * 40)
    locked = item / "sub" if where == "deeper" else item
    write(locked / "x.bin", b"x" * 10, age=OLD)
    write(item / "y.bin", b"y" * 20, age=OLD)
    set_age(locked, OLD)
    set_age(item, OLD)
    (tmp_path / "bind").mkdir()
    given = (str(root), str(tmp_path / "bind"), when == "later", where == "deeper")
    script = f"root, bind, later, deeper = {given!r}\n{HOLDER}{LOCKED_BIND_HOLDER}"
    out = run_in_private_mounts(script)
    said, dry, done = json.loads(out)
    is_locked = "locked by another process (flock/fcntl)"
    inner = "its folder is " + is_locked
    assert said == [
        f"sub is {is_locked}" if where == "deeper" else f"it is {is_locked}",
        inner,
        False,
    ]
    assert dry == {str(item): ["skipped", said[0]]}
    assert done == dry
    assert (locked / "x.bin").exists() and (item / "y.bin").exists()


@pytest.mark.parametrize("walked", [False, True], ids=["placed", "walked"])
def test_a_file_held_deeper_in_a_folder_is_named_as_apply_names_it(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]], walked: bool
) -> None:
    """Apply names an in-use file by its path inside the folder it skips (sub/deep/0.webp);
    the forecast said only 0.webp, placed or walked (found by tests/test_truth.py)."""
    temp = tmp_path / "gradio"
    held = write(temp / HELD_DIR / "sub" / "deep" / "0.webp", b"w" * 100, age=OLD)
    for folder in (held.parent, held.parent.parent, temp / HELD_DIR):
        set_age(folder, OLD)
    pid = hold(
        holder,
        f"import time; fh = open({str(held)!r}, 'rb'); print('ready', flush=True); time.sleep(120)",
    )
    root = Root(str(temp), Role.TEMP, "test")
    plan = build_plan([root], RuleSet(age_by=AgeBy.MTIME, older_than=DAY), now=time.time())
    places = None if walked else Places()
    plan = preflight(plan, snapshot(places=places), places)
    result = apply_plan(plan)
    assert [a.rel for a in plan.actions] == [HELD_DIR]
    why = f"sub/deep/0.webp is open by process {pid} (python"
    assert plan.skips[0].startswith(why)
    assert result.outcomes[0].detail == plan.skips[0]


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1) for a bind mount",
)
def test_a_file_held_through_another_name_for_the_root_is_forecast(tmp_path: Path) -> None:
    """A process that opened the file through a bind mount of the root: the path it shows
    is not below the root's name, but its folders are the root's, by identity."""
    temp = tmp_path / "gradio"
    held, _ = _tree(temp)
    alias = tmp_path / "alias"
    alias.mkdir()
    via_alias = alias / held.relative_to(temp)
    dry = tmp_path / "dry.json"
    hold_code = f"import time; f = open({str(via_alias)!r}, 'rb'); time.sleep(60)"
    script = (
        'mount --bind "$ROOT" "$ALIAS" || exit 7\n'
        '"$PY" -c "$HOLD" >/dev/null 2>&1 </dev/null & pid=$!\n'
        "sleep 1\n"
        '"$PY" -m gradio_clean prune "$ROOT" --older-than 1d --age-by mtime --json'
        ' > "$DRY"; code=$?\n'
        'kill "$pid"; wait "$pid"; exit "$code"'
    )
    proc = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(
            ROOT=str(temp),
            ALIAS=str(alias),
            PY=sys.executable,
            HOLD=hold_code,
            DRY=str(dry),
            GRADIO_TEMP_DIR=str(temp),
        ),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    actions = {a["path"]: a for a in json.loads(dry.read_text())["actions"]}
    assert actions[str(temp / HELD_DIR)]["status"] == "skipped"
    assert actions[str(temp / HELD_DIR)]["detail"].startswith("0.webp is open by process ")


def test_a_locked_folder_is_forecast_as_apply_skips_it(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """A live app's mark is a shared flock on a folder (attach): the dry run must say
    that apply will spare the folder, a file inside it, and a folder holding it."""
    temp = tmp_path / "gradio"
    write(temp / PLAIN_DIR / "idle.bin", b"i" * 20, age=OLD)  # a folder action, locked
    write(temp / LOCKED_DIR / "old.bin", b"o" * 30, age=OLD)  # a file action inside a lock
    write(temp / LOCKED_DIR / "fresh.bin", b"f")
    write(temp / HELD_DIR / "tmpvideo1" / "out.mp4", b"v" * 5, age=OLD)  # locked subfolder
    write(temp / HELD_DIR / "clip.mp4", b"c" * 9, age=OLD)
    for folder in (temp / PLAIN_DIR, temp / HELD_DIR / "tmpvideo1", temp / HELD_DIR):
        set_age(folder, OLD)
    for folder in (temp / PLAIN_DIR, temp / LOCKED_DIR, temp / HELD_DIR / "tmpvideo1"):
        hold(
            holder,
            f"""
            import fcntl, os, time
            fd = os.open({str(folder)!r}, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(fd, fcntl.LOCK_SH)
            print("ready", flush=True)
            time.sleep(120)
            """,
        )
    args = ("prune", str(temp), "--older-than", "1d", "--age-by", "mtime", "--json")
    dry = json.loads(run_cli(*args, temp_dir=temp).stdout)
    done = json.loads(run_cli(*args, "--apply", "--yes", temp_dir=temp).stdout)

    def statuses(doc: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
        return {
            os.path.relpath(a["path"], temp): (a["status"], a["detail"]) for a in doc["actions"]
        }

    locked = "locked by another process (flock/fcntl)"
    assert statuses(dry) == {
        PLAIN_DIR: ("skipped", f"it is {locked}"),
        f"{LOCKED_DIR}/old.bin": ("skipped", f"its folder is {locked}"),
        HELD_DIR: ("skipped", f"tmpvideo1 is {locked}"),
    }
    assert statuses(done) == statuses(dry)
    assert dry["totals"]["would_free"]["bytes"] == 0


def test_a_folder_planned_inside_a_locked_folder_is_worded_alike(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """A folder planned below a folder some process locks: apply said "it is its folder
    is locked ...", the dry run "its folder is locked ..."; now both say the latter."""
    temp = tmp_path / "gradio"
    write(temp / "outer" / "inner" / "x.bin", b"x" * 10, age=OLD)
    set_age(temp / "outer" / "inner", OLD)
    hold(
        holder,
        f"""
        import fcntl, os, time
        fd = os.open({str(temp / "outer")!r}, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_SH)
        print("ready", flush=True)
        time.sleep(120)
        """,
    )
    root = Root(str(temp), Role.TEMP, "test")
    rules = RuleSet(older_than=DAY, age_by=AgeBy.MTIME)
    plan = build_plan([root], rules, now=time.time())
    inner = os.lstat(temp / "outer" / "inner")
    actions = Actions()
    actions.append(
        whole_action(
            str(temp), "outer/inner", Category.CACHE, True, dev=inner.st_dev, ino=inner.st_ino,
            size=10, files=1, mtime_ns=inner.st_mtime_ns, newest_ns=inner.st_mtime_ns,
            rule=Rule.OLDER_THAN, reason="older", age_ns=inner.st_mtime_ns,
        )
    )  # fmt: skip
    plan = dataclasses.replace(plan, actions=actions)
    said = preflight(plan).skips
    done = apply_plan(plan, jobs=1).outcomes.state(0)
    why = "its folder is locked by another process (flock/fcntl)"
    assert said == {0: why}
    assert done == (Status.SKIPPED, why)
    assert (temp / "outer" / "inner" / "x.bin").exists()


def _locked_tree(temp: Path) -> Plan:
    """LOCKED_DIR/old.bin planned alone (the folder holds a fresh file too), and the
    folder outer/inner planned whole (outer holds a fresh file): one file action and one
    folder action, each below a folder the caller locks."""
    write(temp / LOCKED_DIR / "old.bin", b"o" * 30, age=OLD)
    write(temp / LOCKED_DIR / "fresh.bin", b"f")
    write(temp / "outer" / "inner" / "x.bin", b"x" * 10, age=OLD)
    write(temp / "outer" / "fresh.bin", b"g")
    set_age(temp / "outer" / "inner", OLD)
    root = Root(str(temp), Role.TEMP, "test")
    plan = build_plan([root], RuleSet(older_than=DAY, age_by=AgeBy.MTIME), now=time.time())
    inner = os.lstat(temp / "outer" / "inner")
    actions = Actions()
    for action in plan.actions:
        if action.rel != "outer/inner/x.bin":
            actions.append(action)
    actions.append(
        whole_action(
            str(temp), "outer/inner", Category.CACHE, True, dev=inner.st_dev, ino=inner.st_ino,
            size=10, files=1, mtime_ns=inner.st_mtime_ns, newest_ns=inner.st_mtime_ns,
            rule=Rule.OLDER_THAN, reason="older", age_ns=inner.st_mtime_ns,
        )
    )  # fmt: skip
    plan = dataclasses.replace(plan, actions=actions)
    assert [a.rel for a in plan.actions] == [f"{LOCKED_DIR}/old.bin", "outer/inner"]
    return plan


def test_a_folder_locked_after_the_pass_is_forecast_when_no_folder_was_open_at_it(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """A live app's marks taken after the pass over open files (only /proc/locks has
    them) on a host where no process held a folder open at that pass (a container with
    the app alone): the forecast placed such a lock only for a folder action, so a file
    planned alone below it was promised, while apply spared it."""
    temp = tmp_path / "gradio"
    plan = _locked_tree(temp)
    locks = set()
    for folder in (temp / LOCKED_DIR, temp / "outer"):
        mark_folder(holder, folder)
        st = os.stat(folder)
        locks.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    snap = InUse({}, frozenset(locks))  # what the pass saw: nothing open; then the locks
    said = preflight(plan, snap, Places()).skips
    result = apply_plan(plan, jobs=1).outcomes
    why = "its folder is locked by another process (flock/fcntl)"
    assert said == {0: why, 1: why}
    assert [result.state(i) for i in range(2)] == [(Status.SKIPPED, why)] * 2


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: another user's app holds the locks")
def test_a_lock_whose_holder_the_run_may_not_read_is_forecast(
    world_dir: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """Run without root, the dry run sees another user's app lock its folders in
    /proc/locks, but not the paths it holds them by (its /proc/PID/fd is not ours to
    read). Apply asks each folder's lock by its key and spares what is below one; the
    forecast promised both a file and a folder planned below such a lock."""
    temp = world_dir / "gradio"
    plan = _locked_tree(temp)
    give_to_nobody(temp)
    for folder in (temp / LOCKED_DIR, temp / "outer"):
        mark_folder(holder, folder)  # as root: an app run by another user
    said = run_unprivileged(lambda: preflight(plan).skips)
    done = run_unprivileged(
        lambda: [apply_plan(plan, jobs=1).outcomes.state(i) for i in range(2)],
        warm_up=lambda: preflight(plan),
    )
    why = "its folder is locked by another process (flock/fcntl)"
    assert done == [(Status.SKIPPED, why)] * 2
    assert said == {0: why, 1: why}
    assert (temp / LOCKED_DIR / "old.bin").exists() and (temp / "outer" / "inner").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="folders_free says True only as root")
def test_a_locked_folder_removed_since_the_snapshot_leaves_the_forecast_sure(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """Another run removing a folder holds its flock until the folder is gone (delete's
    lock_free): the snapshot sees the folder open and locked, and by the time the forecast
    places it, the folder and its lock are gone. That is no claim (apply finds none):
    the root is not unsure, and its folders are not all walked (the budget asks about
    units, not folders: folders_free)."""
    temp = tmp_path / "gradio"
    write(temp / PLAIN_DIR / "idle.bin", b"i" * 20, age=OLD)
    other = tmp_path / "other"
    other.mkdir()
    hold(
        holder,
        f"""
        import fcntl, os, time
        fd = os.open({str(other)!r}, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("ready", flush=True)
        time.sleep(120)
        """,
    )
    st = os.stat(other)
    places = Places()
    places.add_dir((st.st_dev, st.st_ino), str(other))  # the pass over open folders saw it
    snap = InUse({}, frozenset({(os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)}))
    other.rmdir()
    holder[-1].kill()
    holder[-1].wait()  # its lock is let go with it
    with Forecast([], 0, snap, places) as forecast:
        assert forecast.folders_free(str(temp))
        d = os.stat(temp / PLAIN_DIR)
        assert forecast.why_entry(str(temp), PLAIN_DIR, True, d.st_dev, d.st_ino) is None


def _map(holder: list[subprocess.Popen[bytes]], path: Path) -> int:
    """A process that opens and maps `path`, as a Python maps its libpython; its pid."""
    return hold(
        holder,
        f"""
        import mmap, os, time
        fd = os.open({str(path)!r}, os.O_RDONLY)
        m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        print("ready", flush=True)
        time.sleep(120)
        """,
    )


def _of(pid: int) -> tuple[InUse, Places]:
    """The snapshot as `pid` alone makes it: the host's other processes hold files that
    cannot be placed (in other mount namespaces), and those make every folder walked."""
    places = Places()
    snap = snapshot(places=places)
    mine = {key: p for key, p in snap.open_by.items() if p == pid}
    inos = {ino for _, ino in mine}
    return InUse(mine, frozenset()), Places(
        paths={k: v for k, v in places.paths.items() if k in mine},
        nlink={k: v for k, v in places.nlink.items() if k in mine},
        mapped={ino: v for ino, v in places.mapped.items() if ino in inos},
    )


def _linked_library(tmp_path: Path, *more: Path) -> Path:
    """A library with a second name outside the root (perf's build-id cache, a conda
    package cache), and the names in `more`, linked long enough before the walk that
    its ctime predates it."""
    lib = write(tmp_path / "env" / "lib" / "libthing.so", b"\x7fELF" + b"l" * 8188)
    (tmp_path / "cache").mkdir()
    for name in (tmp_path / "cache" / "elf", *more):
        os.link(lib, name)
    time.sleep(CTIME_MARGIN_NS / 1e9 + 0.2)
    return lib


def test_a_held_file_named_again_outside_the_root_leaves_its_folders_free(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """The walk saw no name of the held library below the root: its folders are free
    (no folder walked), and the forecast agrees with walking every folder."""
    temp = tmp_path / "gradio"
    _tree(temp)
    lib = _linked_library(tmp_path)
    snap, places = _of(_map(holder, lib))
    st = os.lstat(lib)
    assert st.st_nlink == 2 and (st.st_dev, st.st_ino) in snap.open_by
    assert places.paths[(st.st_dev, st.st_ino)] == {str(lib)}
    root = Root(str(temp), Role.TEMP, "test")
    plan = build_plan([root], RuleSet(age_by=AgeBy.MTIME, older_than=DAY), now=time.time())

    with Forecast.of(plan, snap, places) as forecast:
        assert forecast.folders_free(str(temp))
    placed = preflight(plan, snap, places)
    assert {a.rel for a in plan.actions} >= {HELD_DIR, PLAIN_DIR}
    assert placed.skips == preflight(plan, snap).skips == {}


def _linked_since(tmp_path: Path, plan: Plan, lib: Path) -> Plan:
    os.link(lib, tmp_path / "cache" / "since")  # a new name: its ctime is the walk's or later
    return plan


def _unread(tmp_path: Path, plan: Plan, lib: Path) -> Plan:
    unread = ScanWarning(str(tmp_path / "gradio" / "private"), "permission denied")
    return dataclasses.replace(plan, warnings=(*plan.warnings, unread))


def _no_names(tmp_path: Path, plan: Plan, lib: Path) -> Plan:
    return dataclasses.replace(plan, linked=None)


@pytest.mark.parametrize("doubt", [_linked_since, _unread, _no_names])
def test_a_held_file_named_again_is_placed_outside_only_where_the_walk_is_witness(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]], doubt: Any
) -> None:
    """No witness, every folder walked: a name linked since the walk began (the walk may
    have seen the file with one link), a folder below the root the walk could not read,
    a plan without the walk's names."""
    temp = tmp_path / "gradio"
    _tree(temp)
    lib = _linked_library(tmp_path)
    snap, places = _of(_map(holder, lib))
    root = Root(str(temp), Role.TEMP, "test")
    plan = build_plan([root], RuleSet(age_by=AgeBy.MTIME, older_than=DAY), now=time.time())
    plan = doubt(tmp_path, plan, lib)

    with Forecast.of(plan, snap, places) as forecast:
        assert not forecast.folders_free(str(temp))
    assert preflight(plan, snap, places).skips == {}


def test_a_held_file_named_again_inside_the_root_is_forecast_as_apply_skips_it(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """A process holds a file by a path outside the root; its second name lies in a
    planned folder. The dry run says apply will skip that folder, and apply does."""
    temp = tmp_path / "gradio"
    _tree(temp)
    inside = temp / PLAIN_DIR / "linked.bin"
    lib = _linked_library(tmp_path, inside)  # the witness saw this name
    set_age(inside, OLD)
    pid = _map(holder, lib)

    code, dry = _prune(temp, "--json")
    assert code == 0
    code, done = _prune(temp, "--apply", "--yes", "--json")
    assert code == 3

    def statuses(doc: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
        return {
            os.path.relpath(a["path"], temp): (a["status"], a["detail"]) for a in doc["actions"]
        }

    why = statuses(dry)[PLAIN_DIR][1]
    assert statuses(dry)[PLAIN_DIR][0] == "skipped"
    assert why is not None and why.startswith(f"linked.bin is open by process {pid} (")
    assert statuses(done)[PLAIN_DIR] == ("skipped", why)
    assert inside.exists() and lib.exists()
