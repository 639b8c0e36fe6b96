"""A folder is a temp dir only on strong evidence: a project is never taken for one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gradio_clean.classify import Role
from gradio_clean.cli import app
from gradio_clean.roots import PROJECT_MARKERS, ROLE_SAMPLE, detect_role
from tests.conftest import DAY, REPO, SHA1_OLD, SHA256_A, SHA256_B, set_age, write

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
