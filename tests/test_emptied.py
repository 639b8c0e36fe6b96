"""A dry run counts the folders apply empties: the same number, the same paths.

Apply removes each folder between a deleted file and its item once the run leaves it
empty (delete._tidy); the plan finds them (emptied.py) and the dry run counts them, in
its "Would free … (N folders)" line and its JSON's totals.folders_removed (apply's key).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple, cast

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gradio_clean.apply import apply_plan
from gradio_clean.classify import Role
from gradio_clean.documents import prune_to_dict
from gradio_clean.emptied import Parents
from gradio_clean.options import Dedupe
from gradio_clean.outcomes import Outcomes
from gradio_clean.plan import ApplyResult, Plan
from gradio_clean.preflight import preflight
from gradio_clean.roots import Root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from gradio_clean.summary import apply_summary, left_behind
from tests.conftest import (
    DAY,
    HOUR,
    NOBODY,
    give_to_nobody,
    hold,
    run_cli,
    run_unprivileged,
    write,
)

OLD, STALE, YOUNG = 40 * DAY, 2 * HOUR, 0  # older-than 30d; orphaned after 1h; neither


def _session_with_old_subfolders(app: Path) -> Path:
    """A session folder whose old files lie in sub-folders, beside a young file: the
    session stays, its sub-folders go (emptied), one with a folder inside too."""
    session = app / "k3x9q0ab1z"
    write(session / "sub1" / "a.png", b"a", age=OLD)
    write(session / "sub1" / "deep" / "d.png", b"d", age=OLD)
    write(session / "sub2" / "b.png", b"b", age=OLD)
    write(session / "new.png", b"new", age=YOUNG)
    (session / "sub3" / "empty").mkdir(parents=True)  # no file: stays, and sub3 with it
    write(session / "sub3" / "c.png", b"c", age=OLD)
    write(app / "app.py", b"app")
    return session


def _hash_folders_planned_file_by_file(temp: Path) -> list[Path]:
    """Hash folders whose files two rules plan one by one: an old cache file (older-than)
    and a staging copy only --orphaned-sessions picks. Both go, and so do the folders."""
    out = []
    for n in (1, 2):
        folder = temp / f"{n:064x}"
        write(folder / "img.png", b"x" * n, age=OLD)
        write(folder / f".img.png.ab12cd3{n}", b"y", age=STALE)
        out.append(folder)
    return out


RULES = ("--older-than", "30d", "--age-by", "mtime", "--orphaned-sessions", "--session-ttl", "1h")


def test_a_dry_run_counts_the_folders_apply_empties(tmp_path: Path) -> None:
    """The walkthrough's case: the dry run said 0 folders, apply removed 5."""
    temp, app = tmp_path / "gradio", tmp_path / "app"
    session = _session_with_old_subfolders(app)
    hashes = _hash_folders_planned_file_by_file(temp)
    args = ("prune", str(temp), str(app), *RULES)
    dry = run_cli(*args, temp_dir=temp)
    assert b"Would free 9 Bytes in 8 files (5 folders)." in dry.stdout
    doc = json.loads(run_cli(*args, "--json", temp_dir=temp).stdout)
    assert doc["totals"]["would_free"]["folders"] == 0  # no folder planned whole
    assert doc["totals"]["folders_removed"] == 5
    done = json.loads(run_cli(*args, "--json", "--apply", "--yes", temp_dir=temp).stdout)
    assert done["totals"]["folders_removed"] == 5
    assert not any(h.exists() for h in hashes)
    assert not (session / "sub1").exists() and not (session / "sub2").exists()
    assert sorted(os.listdir(session)) == ["new.png", "sub3"]
    assert os.listdir(session / "sub3") == ["empty"]


def test_a_forecast_skip_keeps_its_folder_out_of_the_count(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """A file held open is skipped: its hash folder is not emptied, and not counted."""
    temp = tmp_path / "gradio"
    held, free = _hash_folders_planned_file_by_file(temp)
    roots = [Root(str(temp), Role.TEMP, "test")]
    rules = RuleSet(older_than=30 * DAY, age_by=AgeBy.MTIME, orphaned_sessions=True,
                    session_ttl=HOUR)  # fmt: skip
    opened = f"f = open({str(held / 'img.png')!r}, 'rb')"
    hold(holder, f"import time; {opened}; print('ready', flush=True); time.sleep(600)")
    plan = preflight(build_plan(roots, rules, now=time.time()))
    assert plan.emptying == (str(free),)
    assert plan.folders_removed == 1
    result = apply_plan(plan)
    assert result.folders_removed == (str(free),)
    assert held.exists() and not free.exists()


def test_a_skip_deep_in_a_folder_keeps_every_folder_above_it(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """The second file of a sub-folder is held open: neither the sub-folder nor the
    folders above it are emptied, however many files before it go."""
    temp = tmp_path / "gradio"
    item = temp / f"{1:064x}"
    for name in ("s/a.png", "s/t/e.png", "s/t/f.png"):
        write(item / name, b"x", age=OLD)
    write(item / "young.png", b"y", age=YOUNG)  # the item goes file by file
    opened = f"f = open({str(item / 's' / 't' / 'f.png')!r}, 'rb')"
    hold(holder, f"import time; {opened}; print('ready', flush=True); time.sleep(600)")
    rules = RuleSet(older_than=30 * DAY, age_by=AgeBy.MTIME)
    plan = preflight(build_plan([Root(str(temp), Role.TEMP, "test")], rules, now=time.time()))
    result = apply_plan(plan)
    assert plan.emptying == result.folders_removed == ()
    assert os.listdir(item / "s") == ["t"] and os.listdir(item / "s" / "t") == ["f.png"]


@pytest.mark.parametrize("parent", ["its own", "root's, 0755", "root's, sticky"])
def test_without_root_only_folders_rmdir_can_take_are_promised(
    world_dir: Path, parent: str
) -> None:
    """Run as another user: a hash folder its files leave empty goes only where rmdir
    may take it from the root: not from root's 0755 root, nor from a sticky root where
    neither the root nor the folder is its own. The dry run promises what apply removes."""
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the tree to another user")
    temp = world_dir / "gradio"
    folders = _hash_folders_planned_file_by_file(temp)
    for folder in folders:  # all temp holds; temp stays root's unless it is 'its own'
        give_to_nobody(folder)
    if parent == "its own":
        os.chown(temp, NOBODY, NOBODY)
    elif parent == "root's, sticky":
        temp.chmod(0o1777)
        for folder in folders:  # root's, but open to all: nobody may delete the files
            os.chown(folder, 0, 0)
            folder.chmod(0o777)
    roots = [Root(str(temp), Role.TEMP, "test")]
    rules = RuleSet(older_than=30 * DAY, age_by=AgeBy.MTIME, orphaned_sessions=True,
                    session_ttl=HOUR)  # fmt: skip

    def prune() -> tuple[int, tuple[str, ...], tuple[str, ...], int]:
        plan = preflight(build_plan(roots, rules, now=time.time()))
        result = apply_plan(plan)
        return plan.folders_removed, plan.emptying, result.folders_removed, result.freed_files

    promised, emptying, removed, freed = run_unprivileged(
        prune, warm_up=lambda: preflight(build_plan(roots, rules, now=time.time()))
    )
    assert freed == 4  # every file went either way
    if parent == "its own":
        assert (promised, emptying, removed) == (2, tuple(map(str, folders)), emptying)
        assert not any(folder.exists() for folder in folders)
    else:
        assert (promised, emptying, removed) == (0, (), ())
        assert all(os.listdir(folder) == [] for folder in folders)


def test_asking_about_the_files_of_a_sticky_folder_leaves_no_descriptor_open(
    world_dir: Path,
) -> None:
    """Without root, each file of a sticky folder whose rule binds the run is asked for
    its owner through a descriptor on its folder; that descriptor was never closed, one
    a file: a large plan would run out of descriptors. A file that is the run's own is
    given up."""
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the tree to another user")
    temp = world_dir / "gradio"
    sticky = temp / ("d" * 64)
    for i in range(50):
        write(sticky / f"{i}.bin", b"x", age=OLD)
    give_to_nobody(temp)
    os.chown(sticky, 0, 0)
    sticky.chmod(0o1777)

    def ask() -> tuple[int, list[str | None], int]:
        parents = Parents.of(str(temp))
        assert parents is not None
        before = len(os.listdir("/proc/self/fd"))
        said = [parents.file_denied(sticky.name, f"{i}.bin") for i in range(50)]
        after = len(os.listdir("/proc/self/fd"))
        parents.close()
        return before, said, after

    before, said, after = run_unprivileged(ask)
    assert said == [None] * 50
    assert after == before


def _kept_report(plan: Plan, result: ApplyResult) -> tuple[object, list[str], list[str]]:
    """What apply says of the folders it kept: the JSON's, the summary's, quiet mode's."""
    kept = prune_to_dict(plan, result, {})["totals"]["folders_kept"]
    return kept, apply_summary(plan, result), left_behind(result)


def test_apply_names_a_promised_folder_it_kept_and_why(tmp_path: Path) -> None:
    """A file appears in an emptied hash folder after planning: apply deletes what it
    planned and keeps the folder, and says so (JSON, summary line), where it said nothing
    of a folder the dry run had counted. A live app writing there again is no failure:
    the run is complete (exit 0, quiet mode silent)."""
    temp = tmp_path / "gradio"
    appeared, emptied = _hash_folders_planned_file_by_file(temp)
    rules = RuleSet(older_than=30 * DAY, age_by=AgeBy.MTIME, orphaned_sessions=True,
                    session_ttl=HOUR)  # fmt: skip
    plan = preflight(build_plan([Root(str(temp), Role.TEMP, "test")], rules, now=time.time()))
    assert plan.emptying == (str(appeared), str(emptied))
    write(appeared / "new.png", b"new")
    result = apply_plan(plan)
    why = "not empty: something appeared in it since planning"
    assert result.folders_removed == (str(emptied),)
    assert result.folders_kept == ((str(appeared), why),)
    assert result.complete
    kept, lines, quiet = _kept_report(plan, result)
    assert kept == [{"path": str(appeared), "reason": why}]
    assert lines[:2] == [
        "Freed 5 Bytes in 4 files (1 folder).",
        f"Kept 1 folder the dry run counted as emptied: {appeared}: {why}.",
    ]
    assert quiet == [f"kept: {appeared}: {why}"]


def test_apply_without_a_dry_run_keeps_no_promise_the_dry_run_would_not_make(
    tmp_path: Path, holder: list[subprocess.Popen[bytes]]
) -> None:
    """`--apply --yes` shows no dry run: a folder holding a file held open is then not
    'counted as emptied' when it is kept; the held file is the run's one report."""
    temp = tmp_path / "gradio"
    folder = temp / f"{7:064x}"
    held = write(folder / "sub" / "a.txt", b"a", age=OLD)
    write(folder / "sub" / "b.txt", b"b", age=OLD)
    write(folder / "young.txt", b"c")  # the hash folder stays: only sub/'s files go
    hold(
        holder, f"import time\nf = open({str(held)!r})\nprint('ready', flush=True)\ntime.sleep(60)"
    )
    args = ("prune", str(temp), "--older-than", "30d", "--age-by", "mtime")
    dry = run_cli(*args, temp_dir=temp)
    assert b"Would free 1 Byte in 1 file (0 folders); 1 entry would be skipped" in dry.stdout
    applied = run_cli(*args, "--apply", "--yes", "--json", temp_dir=temp)
    assert applied.returncode == 3  # the held file was skipped
    totals = json.loads(applied.stdout)["totals"]
    assert totals["folders_kept"] == [] and totals["folders_removed"] == 0
    assert held.exists() and not (folder / "sub" / "b.txt").exists()
    kept = run_cli(*args, "--apply", "--yes", "--quiet", temp_dir=temp)
    assert b"kept:" not in kept.stderr


def test_apply_names_a_promised_folder_rmdir_refused(world_dir: Path) -> None:
    """Run as another user whose root turns read-only after planning: the emptied hash
    folders stay, each named with rmdir's reason."""
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the tree to another user")
    temp = world_dir / "gradio"
    folders = _hash_folders_planned_file_by_file(temp)
    give_to_nobody(temp)
    roots = [Root(str(temp), Role.TEMP, "test")]
    rules = RuleSet(older_than=30 * DAY, age_by=AgeBy.MTIME, orphaned_sessions=True,
                    session_ttl=HOUR)  # fmt: skip

    def prune() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...], object, list[str]]:
        plan = preflight(build_plan(roots, rules, now=time.time()))
        temp.chmod(0o555)  # its own: it may; rmdir may no longer take a folder from it
        result = apply_plan(plan)
        kept, lines, _ = _kept_report(plan, result)
        return plan.emptying, result.folders_kept, kept, lines

    def warm_up() -> object:  # as root, deleting nothing: every lazy import before the fork
        plan = preflight(build_plan(roots, rules, now=time.time()))
        return _kept_report(plan, ApplyResult(Outcomes(plan.actions), (), 0.0, 0, (("/", ""),)))

    emptying, folders_kept, kept, lines = run_unprivileged(prune, warm_up=warm_up)
    why = "no permission to remove it from its parent folder"
    assert emptying == tuple(map(str, folders))
    assert folders_kept == tuple((str(f), why) for f in folders)
    assert kept == [{"path": str(f), "reason": why} for f in folders]
    kept_line = f"Kept 2 folders the dry run counted as emptied: {folders[0]}: {why}"
    assert f"{kept_line} and 1 more; see --json." in lines
    assert all(os.listdir(folder) == [] for folder in folders)


# -- the property: over small random trees, the dry run's folders are apply's ------------


class Spec(NamedTuple):
    """One item: a hash folder or a session, with files at paths of up to two folders
    (age and content each), empty folders, and maybe a symlink."""

    session: bool
    files: list[tuple[str, int, int]]  # rel in the item, age, content (equal: duplicates)
    empties: list[str]
    link: bool


_PATHS = ("a.png", "b.wav", ".a.png.ab12cd34", "s/c.png", "s/d.txt", "s/t/e.png", "u/f.png")
_spec = st.builds(
    Spec,
    st.booleans(),
    st.lists(
        st.tuples(
            st.sampled_from(_PATHS), st.sampled_from((OLD, OLD, STALE, YOUNG)), st.integers(0, 2)
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda f: f[0],
    ),
    st.lists(st.sampled_from(("s", "s/t", "v", "u/w")), max_size=1),
    st.sampled_from((False, False, False, True)),
)


class Rules(NamedTuple):
    older_than: bool
    orphaned: bool
    duplicates: bool
    include: tuple[str, ...]
    exclude: tuple[str, ...]

    def rule_set(self) -> RuleSet:
        return RuleSet(
            older_than=30 * DAY if self.older_than or not (self.orphaned or self.duplicates)
            else None,
            age_by=AgeBy.MTIME,
            orphaned_sessions=self.orphaned,
            session_ttl=HOUR,
            duplicates=self.duplicates,
            dedupe=Dedupe.DELETE,
            include=self.include,
            exclude=self.exclude,
        )  # fmt: skip


_rules = st.builds(
    Rules,
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.lists(st.sampled_from(("*.png", "s/")), max_size=1).map(tuple),
    st.lists(st.sampled_from(("*.wav", "t/")), max_size=1).map(tuple),
)


def _build(base: Path, specs: list[Spec]) -> list[Root]:
    temp, app = base / "gradio", base / "app"
    temp.mkdir()
    write(app / "app.py", b"app")
    for n, spec in enumerate(specs):
        item = app / f"ses{n}x{n}q{n}" if spec.session else temp / f"{n + 1:064x}"
        item.mkdir()
        for rel, age, content in spec.files:
            write(item / rel, bytes([65 + content]) * (content + 1), age=age)
        for rel in spec.empties:
            (item / rel).mkdir(parents=True, exist_ok=True)
        if spec.link:
            os.symlink("a.png", item / "link")
    return [Root(str(temp), Role.TEMP, "test"), Root(str(app), Role.APP, "test")]


def _folders(base: Path) -> set[str]:
    return {os.path.join(top, d) for top, dirs, _ in os.walk(base) for d in dirs}


@settings(max_examples=100)
@given(specs=st.lists(_spec, min_size=1, max_size=4), rules=_rules)
def test_the_dry_run_empties_the_folders_apply_empties(specs: list[Spec], rules: Rules) -> None:
    with tempfile.TemporaryDirectory() as base:
        roots = _build(Path(base), specs)
        plan = preflight(build_plan(roots, rules.rule_set(), now=time.time()))
        before = _folders(Path(base))
        assert _folders(Path(base)) == before  # the dry run removed nothing
        result = apply_plan(plan)
        gone = before - _folders(Path(base))
    wholes = {a.path for a in plan.actions if a.is_dir}
    emptied = {p for p in gone if not any(p == w or p.startswith(w + "/") for w in wholes)}
    event(f"{min(len(emptied), 3)} emptied, {min(len(plan.actions), 3)} actions")
    assert set(result.folders_removed) == set(plan.emptying) == emptied
    assert result.folders == plan.folders_removed == len(gone & wholes) + len(emptied)


# -- an app's own folders: .gradio and the user-data folders stay -------------------------

DEDUPE_USER_DATA = (
    "--duplicates", "--dedupe", "delete", "--category", "flagged", "--category", "examples",
)  # fmt: skip


def _tree(base: Path) -> set[str]:
    return {str(p.relative_to(base)) for p in base.rglob("*")}


def _dedupe_both_ways(root: Path) -> tuple[dict[str, object], dict[str, object]]:
    """The dry run's JSON and apply's, of --dedupe delete on flagged data and examples."""
    dry = json.loads(run_cli("prune", str(root), *DEDUPE_USER_DATA, "--json").stdout)
    done = run_cli("prune", str(root), *DEDUPE_USER_DATA, "--json", "--apply", "--yes")
    return dry, json.loads(done.stdout)


def test_dedupe_never_removes_a_nested_gradio_or_its_user_data_folders(tmp_path: Path) -> None:
    """Every file of an app's .gradio is an extra copy of one at the app's top (Gradio <
    5.0's flagged/): the copies go, and the folders they lay in, but not .gradio/flagged
    (a running app writes there without making it again) nor .gradio, which is no item.
    Before classify.item_of, a copy's item was `.gradio`: apply removed 6 folders."""
    app = tmp_path / "app"
    write(app / ".gradio" / "flagged" / "image" / "u1" / "a.png", b"same", age=2 * DAY)
    write(app / ".gradio" / "cached_examples" / "17" / "b.png", b"also", age=2 * DAY)
    write(app / "flagged" / "image" / "u9" / "a.png", b"same")
    write(app / "gradio_cached_examples" / "17" / "b.png", b"also")
    write(app / "app.py", b"demo.launch()")
    dry, done = _dedupe_both_ways(app)
    assert [a["status"] for a in cast(list[dict[str, str]], done["actions"])] == ["deleted"] * 2
    totals = cast(dict[str, int], dry["totals"])
    assert totals["folders_removed"] == cast(dict[str, int], done["totals"])["folders_removed"]
    assert totals["folders_removed"] == 3  # image/u1, image, 17: below the items only
    assert _tree(app) == {
        ".gradio", ".gradio/flagged", ".gradio/cached_examples", "app.py",
        "flagged", "flagged/image", "flagged/image/u9", "flagged/image/u9/a.png",
        "gradio_cached_examples", "gradio_cached_examples/17", "gradio_cached_examples/17/b.png",
    }  # fmt: skip


def test_dedupe_never_removes_an_app_top_user_data_folder_it_emptied(tmp_path: Path) -> None:
    """The older layout emptied: every file of ./flagged is a copy of one in .gradio. The
    copies and their sub-folders go; flagged/ stays (Gradio's flagging makes it once)."""
    app = tmp_path / "app"
    write(app / "flagged" / "image" / "u1" / "a.png", b"same", age=2 * DAY)
    write(app / "flagged" / "dataset1.csv", b"image,timestamp\n", age=2 * DAY)
    write(app / ".gradio" / "flagged" / "image" / "u2" / "a.png", b"same")
    write(app / ".gradio" / "flagged" / "dataset1.csv", b"image,timestamp\n")
    dry, done = _dedupe_both_ways(app)
    assert cast(dict[str, int], done["totals"])["deleted"] == 2
    assert cast(dict[str, int], dry["totals"])["folders_removed"] == 2  # u1 and image
    assert cast(dict[str, int], done["totals"])["folders_removed"] == 2
    assert (app / "flagged").is_dir() and os.listdir(app / "flagged") == []
    assert (app / ".gradio" / "flagged" / "image" / "u2" / "a.png").exists()


def test_dedupe_leaves_a_parent_of_apps_alone(tmp_path: Path) -> None:
    """A folder holding apps, or a project with its app's .gradio two levels down: what
    lies in them is the user's `other`, never a duplicate candidate."""
    parent = tmp_path / "apps"
    for app in (parent / "app1", parent / "proj" / "apps" / "app2"):
        write(app / ".gradio" / "flagged" / "image" / "u1" / "a.png", b"same")
        write(app / ".gradio" / "cached_examples" / "17" / "b.png", b"same", age=DAY)
    write(parent / "proj" / "pyproject.toml", b"[project]")
    before = _tree(parent)
    for root in (parent, parent / "proj"):
        dry, done = _dedupe_both_ways(root)
        assert dry["actions"] == done["actions"] == []
    assert _tree(parent) == before
