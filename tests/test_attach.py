"""attach() without a Gradio app: its options, the live-session marks, and that every
cleaner path (folder and file actions) honours a lock held on a folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Category, Role
from gradio_clean.errors import UsageError
from gradio_clean.inapp import Options, app_roots, attach, parse_options, run_rules
from gradio_clean.inuse import snapshot
from gradio_clean.live import MAX_SHOWN, PAGE_IDLE, LiveSessions
from gradio_clean.plan import Status
from gradio_clean.roots import Root, detect_role
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from gradio_clean.sizes import MinFree
from tests.conftest import HOUR, SHA256_A, SHA256_B, cli_env, hold, write

SESSION = "k3x9q0ab1z"


def options(**rules: object) -> Options:
    return parse_options("30m", "60s", (), None, rules)


# -- options --------------------------------------------------------------------------


def test_options_go_through_the_config_checks() -> None:
    got = options(older_than="1d", orphaned_sessions=True, session_ttl="2h", exclude=["keep/"])
    assert got.rules == RuleSet(
        older_than=86400.0, orphaned_sessions=True, session_ttl=7200.0, exclude=("keep/",)
    )
    assert (got.every, got.grace, got.roots, got.sessions_dirs) == (1800.0, 60.0, None, ())
    assert not options().rules.any


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"older_than": "3 days"}, 'attach(): older_than = "3 days": '),
        ({"older_than": 3600}, "attach(): older_than = 3600: expected a duration string"),
        ({"duplicates": "yes"}, 'attach(): duplicates = "yes": expected true or false'),
        ({"dedupe": "copy"}, 'attach(): dedupe = "copy": expected "delete" or "hardlink"'),
        ({"categories": ["junk"]}, 'attach(): categories[0] = "junk": expected "cache"'),
        ({"older_then": "1d"}, "attach(): unknown keyword older_then (did you mean older_than?)"),
        (
            {"max_size": "20 gigs"},
            "attach(): max_size = \"20 gigs\": unknown unit 'gigs'; expected",
        ),
        ({"min_free": "110%"}, 'attach(): min_free = "110%": a percentage must be above 0'),
        ({"min_age": "soon"}, 'attach(): min_age = "soon": expected a duration like 90m'),
    ],
)
def test_bad_keywords_are_one_line_errors_naming_them(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        options(**kwargs)
    assert caught.value.message.startswith(message), caught.value.message
    assert "\n" not in caught.value.message


def test_the_budget_keywords_are_the_config_files() -> None:
    """max_size, min_free and min_age, spelled as in a config file or on the command line."""
    got = options(max_size="20G", min_free="10%", min_age="5m").rules
    assert (got.max_size, got.min_free, got.min_age) == (
        20 << 30,
        MinFree(None, 10.0, "10%"),
        300.0,
    )
    assert got.budget and got.any
    assert options(max_size="1.5T", min_free="500M").rules.min_free == MinFree(
        500 << 20, None, "500M"
    )
    assert options().rules.min_age == 600.0  # the default, as in the config file


def test_a_budget_keyword_may_be_a_number_of_bytes() -> None:
    """attach(demo, max_size=20 * 2**30) reads as the config's `max_size = 21474836480`."""
    got = options(max_size=20 << 30, min_free=5 << 30).rules
    assert got.max_size == 20 << 30
    assert got.min_free == MinFree(5 << 30, None, str(5 << 30))
    with pytest.raises(UsageError, match=r"^attach\(\): max_size = -1: negative; expected a size"):
        options(max_size=-1)
    with pytest.raises(UsageError, match=r"^attach\(\): max_size = true: expected a size"):
        options(max_size=True)


def test_attach_refuses_a_bad_size_before_touching_the_app() -> None:
    """The keywords are checked first: no Gradio app is needed to get the error."""
    with pytest.raises(UsageError) as caught:
        attach(object(), every="10m", max_size="20 gigs")
    assert caught.value.message.startswith('attach(): max_size = "20 gigs": ')
    assert "expected a size like 500M, 20G" in caught.value.message
    assert "\n" not in caught.value.message


def test_every_and_grace_are_checked_like_durations() -> None:
    with pytest.raises(UsageError, match=r'^attach\(\): every = "0s": expected at least 1s'):
        parse_options("0s", "60s", (), None, {})
    with pytest.raises(UsageError, match=r'^attach\(\): grace = "soon": '):
        parse_options("30m", "soon", (), None, {})


def test_paths_are_taken_from_the_app_folder(tmp_path: Path) -> None:
    got = parse_options("30m", "60s", "sessions", [tmp_path / "cache"], {})
    assert got.sessions_dirs == (str(tmp_path / "sessions"),)
    assert got.roots == (str(tmp_path / "cache"),)


def test_importing_gradio_clean_imports_neither_gradio_nor_the_cli() -> None:
    code = (
        "import sys; from gradio_clean import attach; import gradio_clean.inapp; "
        "print(sorted(m for m in ('gradio', 'typer', 'rich') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    )
    assert out.stdout.strip() == "[]"


# -- marks ----------------------------------------------------------------------------


def locks_of(pid: int) -> set[tuple[int, int, int]]:
    with open("/proc/locks", encoding="ascii") as fh:
        lines = [line.split() for line in fh if f" {pid} " in line]
    out = set()
    for fields in lines:
        spec = next(f for f in fields if f.count(":") == 2)
        major, minor, ino = spec.split(":")
        out.add((int(major, 16), int(minor, 16), int(ino)))
    return out


def key_of(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return os.major(st.st_dev), os.minor(st.st_dev), st.st_ino


def test_a_shown_file_locks_its_item_folder_until_grace(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    image = write(temp / SHA256_A / "image.webp", b"img")
    top = write(temp / "tmpabcdefgh", b"")
    sessions = tmp_path / "sessions"
    (sessions / SESSION).mkdir(parents=True)
    now = [0.0]
    live = LiveSessions([str(temp)], [str(sessions)], grace=60, clock=lambda: now[0])
    live.connect(SESSION)
    live.show(SESSION, "7", [str(image), str(top), "/etc/passwd"])
    held = locks_of(os.getpid())
    assert {key_of(temp / SHA256_A), key_of(sessions / SESSION)} <= held
    assert key_of(temp) not in held  # a root is never locked
    assert live.why(*_dev_ino(top))  # at a root's top: held open instead
    assert live.stats().descriptors == 3
    live.disconnect(SESSION)
    now[0] = 59
    live.sweep()
    assert live.stats().descriptors == 3
    now[0] = 61
    live.sweep()
    assert live.stats().descriptors == 0
    assert not locks_of(os.getpid()) & {key_of(temp / SHA256_A), key_of(sessions / SESSION)}


def open_files() -> set[tuple[int, int]]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            st = os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, closed by now
        out.add((st.st_dev, st.st_ino))
    return out


def _dev_ino(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_marks_stay_bounded_per_session(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    files = [write(temp / f"{i:064x}" / "out.png", b"x") for i in range(3 * MAX_SHOWN)]
    live = LiveSessions([str(temp)], [], grace=1)
    for n in range(0, len(files), 4):  # one component, shown over and over
        live.show(SESSION, "1", [str(f) for f in files[n : n + 4]])
    assert live.stats().descriptors == 4
    for i, f in enumerate(files):  # many components
        live.show(SESSION, str(i), [str(f)])
    assert live.stats().descriptors == MAX_SHOWN
    live.close()
    assert live.stats().descriptors == 0


def test_an_event_holds_its_inputs_open_until_unpinned(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    upload = write(temp / SHA256_B / "in.txt", b"input")
    live = LiveSessions([str(temp)], [], grace=0)
    live.pin(1, SESSION, [str(upload)], body=None)
    assert _dev_ino(upload) in open_files()
    live.unpin(1)
    assert _dev_ino(upload) not in open_files()
    live.pin(1, SESSION, [str(upload)], body=None)
    live.sweep()  # queued, still in the queue: kept
    assert live.stats().events == 1
    live.sweep(still_queued=lambda body: False)  # left the queue without running: released
    assert live.stats() == live.stats().__class__(0, 0, 0, 0)


# -- cleaners honour a locked folder ------------------------------------------------------


LOCK_FOLDER = """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    os.close(0)
    print("ready", flush=True)
    sys.stdin = None
    import time; time.sleep(600)
"""


def test_prune_spares_a_locked_folder_and_its_files(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    temp = tmp_path / "gradio"
    locked, free = temp / SHA256_A, temp / SHA256_B
    write(locked / "a.txt", b"a", age=2 * HOUR)
    write(locked / "b.txt", b"b")  # young: the old file alone is planned, not the folder
    write(free / "c.txt", b"c", age=2 * HOUR)
    p = subprocess.Popen(
        [sys.executable, "-c", _dedent(LOCK_FOLDER), str(locked)], stdout=subprocess.PIPE
    )
    holder.append(p)
    assert p.stdout is not None and p.stdout.readline().strip() == b"ready"
    write(locked / "old" / "d.txt", b"d", age=2 * HOUR)
    (locked / "old").chmod(0o755)
    os.utime(locked / "old", (time.time() - 2 * HOUR,) * 2)
    roots = [Root(str(temp), *detect_role(str(temp)))]
    plan = build_plan(roots, RuleSet(age_by=AgeBy.MTIME, older_than=HOUR), now=time.time())
    assert {a.rel for a in plan.actions} >= {f"{SHA256_A}/a.txt", SHA256_B}
    result = apply_plan(plan)
    status = {o.action.rel: (o.status, o.detail) for o in result.outcomes}
    assert status[SHA256_B][0] is Status.DELETED
    for rel, (st, detail) in status.items():
        if rel.startswith(SHA256_A):
            assert st is Status.SKIPPED, (rel, detail)
            assert "open by process" in (detail or "") or "locked" in (detail or "")
    assert (locked / "a.txt").exists()
    assert not free.exists()


def test_a_folder_plan_spares_a_locked_subfolder(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    temp = tmp_path / "gradio"
    item = temp / SHA256_A
    write(item / "tmpvideo1" / "out.mp4", b"v", age=2 * HOUR)
    write(item / "clip.mp4", b"c", age=2 * HOUR)
    hold(holder, LOCK_FOLDER.replace("sys.argv[1]", repr(str(item / "tmpvideo1"))))
    for p in (item / "tmpvideo1", item):
        os.utime(p, (time.time() - 2 * HOUR,) * 2)
    roots = [Root(str(temp), *detect_role(str(temp)))]
    plan = build_plan(roots, RuleSet(age_by=AgeBy.MTIME, older_than=HOUR), now=time.time())
    assert [(a.rel, a.is_dir) for a in plan.actions] == [(SHA256_A, True)]
    (outcome,) = apply_plan(plan).outcomes
    assert outcome.status is Status.SKIPPED, outcome.detail
    assert (item / "clip.mp4").exists()
    assert snapshot().locked


def _dedent(code: str) -> str:
    import textwrap

    return textwrap.dedent(code)


# -- a run from inside the app -------------------------------------------------------


def test_an_inside_run_spares_what_live_sessions_show(tmp_path: Path) -> None:
    temp = tmp_path / "gradio"
    shown = write(temp / SHA256_A / "image.webp", b"shown", age=2 * HOUR)
    write(temp / SHA256_B / "old.txt", b"old", age=2 * HOUR)
    os.environ["GRADIO_TEMP_DIR"] = str(temp)
    opts = parse_options("30m", "60s", (), [str(temp)], {"older_than": "1h", "age_by": "mtime"})
    live = LiveSessions([str(temp)], [], grace=60)
    live.show(SESSION, "1", [str(shown)])
    summary = run_rules(opts, live)
    assert summary is not None
    assert (summary.deleted, summary.skipped, summary.freed_files) == (1, 1, 1)
    assert shown.exists()
    assert not (temp / SHA256_B).exists()
    assert "freed 3 Bytes in 1 file " in summary.line()


def test_a_page_idle_past_the_limit_counts_as_gone(tmp_path: Path) -> None:
    """A heartbeat the browser never drops: the page's marks still lapse, later."""
    temp = tmp_path / "temp"
    image = write(temp / SHA256_A / "image.webp", b"img")
    now = [0.0]
    live = LiveSessions([str(temp)], [], grace=60, clock=lambda: now[0])
    live.connect(SESSION)
    live.show(SESSION, "1", [str(image)])
    now[0] = PAGE_IDLE
    live.sweep()
    assert live.stats().descriptors == 1
    now[0] = PAGE_IDLE + 61
    live.sweep()
    assert live.stats().descriptors == 0


def test_a_queued_event_gradio_forgot_lapses_after_the_idle_limit(tmp_path: Path) -> None:
    """Gradio 5.x keeps every event id it ever queued: a pin must not live forever."""
    upload = write(tmp_path / "temp" / SHA256_B / "in.txt", b"input")
    now = [0.0]
    live = LiveSessions([str(tmp_path / "temp")], [], grace=60, clock=lambda: now[0])
    live.pin(1, SESSION, [str(upload)], body=None)
    now[0] = PAGE_IDLE - 1
    live.sweep()
    assert live.stats().events == 1
    now[0] = PAGE_IDLE + 1
    live.sweep()
    assert live.stats().events == 0
    now[0] = PAGE_IDLE + 62
    live.sweep()
    assert live.stats() == live.stats().__class__(0, 0, 0, 0)


def test_an_inside_budget_passes_over_a_running_events_upload(tmp_path: Path) -> None:
    """The app's own marks count as in use when the budget picks: the least recently
    used unit is a running event's upload, so the next one goes, and the line says why
    the budget is still not met."""
    temp = tmp_path / "gradio"
    upload = write(temp / SHA256_A / "upload.bin", b"u" * 200_000, age=2 * HOUR)
    newer = write(temp / SHA256_B / "output.bin", b"o" * 100_000, age=HOUR)
    rules = {"max_size": "150K", "min_age": "0s", "age_by": "mtime"}
    opts = parse_options("30m", "60s", (), [str(temp)], rules)
    live = LiveSessions([str(temp)], [], grace=60)
    live.pin(1, SESSION, [str(upload)], None)
    summary = run_rules(opts, live)
    assert summary is not None
    assert upload.exists() and not newer.exists()
    assert (summary.deleted, summary.skipped) == (1, 0)
    assert summary.over_budget is not None
    assert summary.over_budget.startswith("budget not met: --max-size 150K still "), summary
    assert summary.over_budget.endswith(" is in use"), summary
    assert summary.line().endswith(f"; {summary.over_budget}")


def test_an_inside_run_keeps_the_apps_files_when_its_folder_is_its_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """attach(demo) in an app run with GRADIO_TEMP_DIR=.: its temp dir root is the app's
    folder, a project (requirements.txt, app.py), whose own files are no candidates."""
    folder = tmp_path / "app"
    mine = ["app.py", "requirements.txt", "checkpoints/model.bin", "notes.txt"]
    for rel in [*mine, f"{SHA256_B}/old.txt"]:
        write(folder / rel, b"x", age=2 * HOUR)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("GRADIO_TEMP_DIR", ".")
    opts = parse_options("30m", "60s", (), None, {"older_than": "1h", "age_by": "mtime"})
    summary = run_rules(opts, LiveSessions([str(folder)], [], grace=60))
    assert summary is not None
    assert (summary.deleted, summary.skipped, summary.freed_files) == (1, 0, 1)
    assert all((folder / rel).exists() for rel in mine)
    assert not (folder / SHA256_B).exists()


def test_the_apps_roots_do_not_overlap_when_its_folder_is_its_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GRADIO_TEMP_DIR=. makes the app's .gradio a folder inside its temp dir root: one
    root, as the command line's default roots keep it, not both (each planned
    .gradio/cached_examples once more)."""
    folder = tmp_path / "app"
    write(folder / ".gradio" / "cached_examples" / "12" / "log.csv", b"x", age=2 * HOUR)
    for rel in (".gradio/cached_examples/12", ".gradio/cached_examples"):
        os.utime(folder / rel, (time.time() - 2 * HOUR,) * 2)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("GRADIO_TEMP_DIR", ".")
    rules = {"older_than": "1h", "age_by": "mtime", "categories": ["examples"]}
    opts = parse_options("30m", "60s", (), None, rules)
    assert [(r.path, r.role) for r in app_roots(opts)] == [(str(folder), Role.TEMP)]
    plan = build_plan(app_roots(opts), opts.rules, now=time.time(), jobs=1)
    assert [a.path for a in plan.actions] == [str(folder / ".gradio" / "cached_examples")]


def test_a_temp_dir_inside_the_apps_gradio_folder_stays_a_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the command line's default roots: the temp dir is its own root and .gradio's
    walk passes it by, so its cache is planned once, as cache (before: twice walked)."""
    folder = tmp_path / "app"
    write(folder / ".gradio" / "tmp" / SHA256_A / "image.webp", b"img", age=2 * HOUR)
    os.utime(folder / ".gradio" / "tmp" / SHA256_A, (time.time() - 2 * HOUR,) * 2)
    monkeypatch.chdir(folder)
    monkeypatch.setenv("GRADIO_TEMP_DIR", ".gradio/tmp")
    rules = {"older_than": "1h", "age_by": "mtime", "categories": ["cache", "other"]}
    opts = parse_options("30m", "60s", (), None, rules)
    assert [(r.path, r.role, r.apart) for r in app_roots(opts)] == [
        (str(folder / ".gradio" / "tmp"), Role.TEMP, ()),
        (str(folder / ".gradio"), Role.GRADIO, ("tmp",)),
    ]
    plan = build_plan(app_roots(opts), opts.rules, now=time.time(), jobs=1)
    assert [(a.path, a.category) for a in plan.actions] == [
        (str(folder / ".gradio" / "tmp" / SHA256_A), Category.CACHE)
    ]
