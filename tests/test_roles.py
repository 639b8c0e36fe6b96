"""A folder is a temp dir only on strong evidence: a project is never taken for one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gradio_clean.classify import Category, Role, is_gradio_top_name
from gradio_clean.cli import app
from gradio_clean.errors import ExitCode
from gradio_clean.roots import PROJECT_MARKERS, ROLE_SAMPLE, detect_role, temp_dir_root
from gradio_clean.rules import AgeBy, RuleSet, build_plan
from tests.conftest import DAY, REPO, SHA1_OLD, SHA256_A, SHA256_B, run_cli, set_age, write

HEX = "0123456789abcdef"
TMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def test_the_issue_app_folder_is_an_app_dir_and_nothing_of_it_is_planned(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's steps: `prune . --older-than 1d` in one's own app folder."""
    folder = tmp_path / "app"
    files = ["app.py", "requirements.txt", "assets/logo.png", "ab12cd34ef/0.webp"]
    for rel in [*files, "tmp_results.csv"]:
        write(folder / rel, b"x", age=3 * DAY)
    monkeypatch.chdir(folder)

    result = runner.invoke(app, ["prune", ".", "--older-than", "1d", "--apply", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["roots"][0]["role"] == "app"
    assert "requirements.txt" in doc["roots"][0]["role_reason"]
    assert doc["actions"] == []  # and by the default age, every file came in just now
    assert all((folder / rel).exists() for rel in [*files, "tmp_results.csv"])

    # Ages by mtime: the files look 3 days old. Only the session-shaped folder is a
    # candidate in an app dir (ab12cd34ef is a browser session hash's shape).
    args = ["prune", ".", "--older-than", "1d", "--age-by", "mtime", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    actions = json.loads(result.stdout)["actions"]
    assert [(a["path"], a["category"]) for a in actions] == [
        (str(folder / "ab12cd34ef"), "session")
    ]


def test_prune_says_the_role_and_how_to_vouch_for_a_temp_dir(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "mixed"
    write(folder / SHA256_A / "photo.png", b"x", age=3 * DAY)
    write(folder / "notes.txt", b"mine", age=3 * DAY)
    result = runner.invoke(app, ["prune", str(folder), "--older-than", "1d", "--age-by", "mtime"])
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{folder}: app (holds notes.txt, which Gradio does not write")
    assert "run with GRADIO_TEMP_DIR set to it" in first
    assert "Would free 0 Bytes" in result.stdout

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))  # as the hint says
    result = runner.invoke(app, ["prune", str(folder), "--older-than", "1d", "--age-by", "mtime"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == f"{folder}: temp (is Gradio's temp dir)"
    assert "Would free 5 Bytes in 2 files" in result.stdout


# -- hypothesis: Gradio-shaped names never outvote a project file ---------------------

gradio_names = st.one_of(
    st.text(HEX, min_size=64, max_size=64).map(lambda s: s + "/"),
    st.text(HEX, min_size=40, max_size=40).map(lambda s: s + "/"),
    st.text(TMP_CHARS, min_size=8, max_size=8).map(lambda s: "tmp" + s),
    st.text(TMP_CHARS, min_size=8, max_size=8).map(lambda s: f"tmp{s}.mp4"),
    st.text(TMP_CHARS, min_size=8, max_size=8).map(lambda s: f"tmp{s}/"),
    st.sampled_from(["vibe_edit_history/", "deep_links/", "workflow_0123456789abcdef.json"]),
)
project_names = st.one_of(
    st.sampled_from(
        [m + "/" if m in (".git", ".venv", "venv", "node_modules") else m for m in PROJECT_MARKERS]
    ),
    st.sampled_from(
        [
            "app.py",
            "main.py",
            "tmp_helpers.py",  # tmp-shaped, but a source file
            "tmpab12cd34.py",
            "demo.ipynb",
            "index.js",
            "ui.ts",
            "run.sh",
            "config.yaml",
            "README.md",
            "setup.cfg",
            "env/bin/activate",
            "data.csv",
            "assets/",
            "outputs1/",
            "model.bin",
            "logo.png",
        ]
    ),
)


def build(folder: Path, names: list[str]) -> None:
    folder.mkdir()
    for name in names:
        path = folder / name.rstrip("/")
        if path.exists():
            continue  # the same name twice, as a file and a folder
        if name.endswith("/"):
            path.mkdir(parents=True)
        else:
            write(path, b"x")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gradio=st.lists(gradio_names, max_size=40),
    project=st.lists(project_names, min_size=1, max_size=4),
)
def test_project_files_among_gradio_names_never_make_a_temp_dir(
    gradio: list[str], project: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as base:
        folder = Path(base) / "candidate"
        build(folder, [*gradio, *project])
        role, why = detect_role(str(folder))
        assert role is not Role.TEMP, (sorted(os.listdir(folder)), why)


@settings(max_examples=100, deadline=None)
@given(gradio=st.lists(gradio_names, min_size=1, max_size=40))
def test_only_gradio_names_make_a_temp_dir(gradio: list[str]) -> None:
    with tempfile.TemporaryDirectory() as base:
        folder = Path(base) / "candidate"
        build(folder, [*gradio, "lost+found/"])
        role, why = detect_role(str(folder))
        assert role is Role.TEMP, (sorted(os.listdir(folder)), why)


def test_a_marker_beyond_the_sample_still_counts(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    for i in range(ROLE_SAMPLE + 500):
        (folder / f"{i:064x}").mkdir(parents=True)
    assert detect_role(str(folder))[0] is Role.TEMP
    write(folder / "pyproject.toml", b"[project]\n")
    assert detect_role(str(folder)) == (
        Role.APP,
        "holds pyproject.toml: a project folder, never a temp dir",
    )


# -- aborted uploads in the app's own TMPDIR (Gradio <= 5.50) -------------------------


def test_an_apps_own_tmpdir_of_aborted_uploads_is_a_temp_dir_of_leftovers(
    runner: CliRunner, tmp_path: Path
) -> None:
    tmpdir = tmp_path / "app-tmp"
    partial = write(tmpdir / "tmpk2j4x9qa", b"\0" * 4096, age=2 * DAY)
    write(tmpdir / "tmp_8dj3kq0", b"", age=2 * DAY)
    write(tmpdir / SHA1_OLD / "a.png", b"png", age=2 * DAY)  # gradio_client's folders too
    result = runner.invoke(app, ["scan", "--json", str(tmpdir)])
    assert result.exit_code == 0, result.output
    root = json.loads(result.stdout)["roots"][0]
    assert root["role"] == "temp"
    assert root["categories"]["leftover"]["files"] == 2
    result = runner.invoke(
        app, ["prune", str(tmpdir), "--orphaned-sessions", "--age-by", "mtime", "--json"]
    )
    assert result.exit_code == 0, result.output
    planned = {a["path"] for a in json.loads(result.stdout)["actions"]}
    assert str(partial) in planned and len(planned) == 2


# -- the measure: real-looking caches and app dirs from the bench generator -----------


def test_the_bench_trees_get_their_roles(tmp_path: Path) -> None:
    temp, app_dir = tmp_path / "tree", tmp_path / "app"
    subprocess.run(
        [
            *(sys.executable, str(REPO / "bench" / "make_tree.py"), str(temp)),
            *("--files", "3000", "--app-dir", str(app_dir), "--sessions", "20", "--quiet"),
        ],
        check=True,
        timeout=120,
    )
    assert detect_role(str(temp))[0] is Role.TEMP
    assert detect_role(str(app_dir))[0] is Role.APP
    os.unlink(app_dir / "requirements.txt")
    os.unlink(app_dir / "app.py")
    set_age(app_dir, 0)
    assert detect_role(str(app_dir))[0] is Role.APP  # .gradio/ says it too
    write(temp / SHA256_B / "x.bin", b"x")
    assert detect_role(str(temp))[0] is Role.TEMP


# -- a folder vouched for as the temp dir that is also a project --------------------

APP_FILES = [
    "app.py",
    "requirements.txt",
    ".git/HEAD",
    ".git/objects/ab/cdef0123",
    "checkpoints/model.bin",
    "notes.txt",
    ".gradio/flagged/dataset1.csv",
]
GRADIO_FILES = [f"{SHA256_A}/photo.png", "tmpab12cd34", f"tmpzz99yy88/{SHA1_OLD}.mp4"]


def an_app_vouched_for_as_its_temp_dir(folder: Path) -> None:
    for rel in [*APP_FILES, *GRADIO_FILES]:
        write(folder / rel, b"x", age=30 * DAY)
    for rel in GRADIO_FILES:  # the folders too, as a budget ages a unit by its newest
        set_age(folder / rel.split("/")[0], 30 * DAY)


@pytest.mark.parametrize(
    "rule", [["--older-than", "7d"], ["--max-size", "0", "--min-age", "1d"]], ids=str
)
def test_an_app_folder_vouched_for_as_its_temp_dir_keeps_the_apps_files(
    tmp_path: Path, rule: list[str]
) -> None:
    """GRADIO_TEMP_DIR=. in an app's own folder: the vouched temp dir is also a project
    (it holds requirements.txt, .git, app.py), so what Gradio does not write there
    (`other`: app.py, checkpoints/, even notes.txt) is no candidate; Gradio's hash
    folders and leftovers still go. On 8340029 the dry run planned every file here."""
    folder = tmp_path / "app"
    an_app_vouched_for_as_its_temp_dir(folder)
    args = ["prune", *rule, "--age-by", "mtime"]
    met = (0, ExitCode.OVER_BUDGET)  # --max-size 0: the app's files are never evicted
    dry = run_cli(*args, "--json", cwd=folder, temp_dir=Path("."))
    assert dry.returncode in met, dry.stderr
    doc = json.loads(dry.stdout)
    (root,) = doc["roots"]
    assert (root["path"], root["role"]) == (str(folder), "temp")
    assert "also a project" in root["role_reason"]
    assert "--category other" in root["role_reason"]
    assert sorted(os.path.relpath(a["path"], folder) for a in doc["actions"]) == [
        SHA256_A,
        "tmpab12cd34",
        "tmpzz99yy88",
    ]
    said = run_cli(*args, cwd=folder, temp_dir=Path(".")).stderr.decode().splitlines()
    assert said[0].startswith(
        f"{folder}: temp (Gradio's temp dir (GRADIO_TEMP_DIR or <tmp>/gradio);"
    )
    assert "also a project folder (holds .git, requirements.txt, app.py)" in said[0]
    assert "kept unless --category other is given" in said[0]

    done = run_cli(*args, "--apply", "--yes", cwd=folder, temp_dir=Path("."))
    assert done.returncode in met, done.stderr
    assert all((folder / rel).exists() for rel in APP_FILES)
    assert not any((folder / rel.split("/")[0]).exists() for rel in GRADIO_FILES)


def test_category_other_reaches_a_projects_files_when_asked(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    an_app_vouched_for_as_its_temp_dir(folder)
    args = ["prune", str(folder), "--older-than", "7d", "--age-by", "mtime", "--json"]
    dry = run_cli(*args, "--category", "other", temp_dir=folder)
    assert dry.returncode == 0, dry.stderr
    planned = {os.path.relpath(a["path"], folder) for a in json.loads(dry.stdout)["actions"]}
    assert planned == {"app.py", "requirements.txt", ".git", "checkpoints", "notes.txt"}


@pytest.mark.parametrize(
    ("project", "evidence"),
    [
        (["pyvenv.cfg", "bin/python", "lib/python3.12/site-packages/x.py"], "pyvenv.cfg"),
        ([".git/HEAD", "src/module.c", "docs/guide.txt"], ".git"),
        (["train.py", "checkpoints/model.bin", "data/labels.csv"], "train.py"),
        (["Makefile", "out/report.pdf"], "Makefile"),
    ],
    ids=["venv", "git checkout", "source file", "marker"],
)
def test_a_vouched_temp_dir_with_project_evidence_plans_nothing_gradio_did_not_write(
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    project: list[str],
    evidence: str,
) -> None:
    folder = tmp_path / "vouched"
    for rel in [*project, f"{SHA256_A}/photo.png"]:
        write(folder / rel, b"x", age=30 * DAY)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    args = ["prune", str(folder), "--older-than", "1d", "--age-by", "mtime", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert f"holds {evidence}" in doc["roots"][0]["role_reason"]
    assert [a["path"] for a in doc["actions"]] == [str(folder / SHA256_A)]


@pytest.mark.parametrize(
    "names",
    [
        ["notes.txt", "outputs1/result.png", "tmpab12cd34.mp4", "workflow_0123456789abcdef.json"],
        ["vibe_edit_history/", "deep_links/abcdefghijk/state.json", ".gradio/flagged/log.csv"],
    ],
)
def test_a_vouched_temp_dir_without_project_evidence_still_loses_what_gradio_did_not_write(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, names: list[str]
) -> None:
    """Nothing Gradio writes is project evidence: vouching still means what it says."""
    folder = tmp_path / "vouched"
    for rel in [*names, f"{SHA256_A}/photo.png"]:
        if rel.endswith("/"):
            (folder / rel).mkdir(parents=True)
        else:
            write(folder / rel, b"x", age=30 * DAY)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    result = runner.invoke(app, ["scan", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["roots"][0]["role_reason"] == "is Gradio's temp dir"
    args = ["prune", str(folder), "--older-than", "1d", "--age-by", "mtime", "--json"]
    result = runner.invoke(app, args)
    planned = {os.path.relpath(a["path"], folder) for a in json.loads(result.stdout)["actions"]}
    assert ("notes.txt" in planned) is ("notes.txt" in names)
    assert ("outputs1" in planned) is ("notes.txt" in names)


evidence_names = st.one_of(
    st.sampled_from(
        [m + "/" if m in (".git", ".venv", "venv", "node_modules") else m for m in PROJECT_MARKERS]
    ),
    st.sampled_from(["app.py", "demo.ipynb", "ui.ts", "run.sh", "README.md", "env/bin/activate"]),
    st.sampled_from(["repo/.git/", "libs/pyproject.toml", "old-venv/pyvenv.cfg"]),
)
foreign_names = st.sampled_from(["data.csv", "assets/logo.png", "outputs1/", "model.bin", "notes"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gradio=st.lists(gradio_names, max_size=20),
    evidence=st.lists(evidence_names, min_size=1, max_size=3),
    foreign=st.lists(foreign_names, max_size=4),
)
def test_nothing_gradio_did_not_write_is_planned_in_a_vouched_project(
    gradio: list[str], evidence: list[str], foreign: list[str]
) -> None:
    """Whatever else a vouched temp dir holds, one piece of project evidence keeps every
    `other` entry; what the age rule plans is only what Gradio writes."""
    with tempfile.TemporaryDirectory() as base:
        folder = Path(base) / "vouched"
        build(folder, [*gradio, *evidence, *foreign])
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in [*dirnames, *filenames]:
                set_age(Path(dirpath) / name, 30 * DAY)
        root = temp_dir_root(str(folder), "vouched")
        assert root.project, sorted(os.listdir(folder))
        rules = RuleSet(older_than=DAY, age_by=AgeBy.MTIME)
        plan = build_plan([root], rules, now=time.time(), jobs=1)
        planned = {(a.rel.split("/")[0], a.category) for a in plan.actions}
        assert all(is_gradio_top_name(top, (folder / top).is_dir()) for top, _ in planned)
        assert Category.OTHER not in {category for _, category in planned}
        other = frozenset({Category.OTHER})
        asked = RuleSet(DAY, AgeBy.MTIME, categories=other, explicit_categories=True)
        everything = build_plan([root], asked, now=time.time(), jobs=1)
        assert {a.rel.split("/")[0] for a in everything.actions} >= {
            name.split("/")[0] for name in foreign if not name.endswith("/")
        }
