"""Finding the roots: what each folder is to Gradio, defaults, and one-line errors."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gradio_clean.classify import Role
from gradio_clean.cli import app
from gradio_clean.errors import ExitCode, GradioCleanError, UsageError
from gradio_clean.roots import (
    Root,
    check_dir,
    default_roots,
    detect_role,
    gradio_temp_dir,
    refuse_dangerous,
    resolve_roots,
)
from tests.conftest import (
    DAY,
    JS_SESSION,
    SHA1_OLD,
    SHA256_A,
    UUID_SESSION,
    GradioTree,
    invoke_unprivileged,
    make_private,
    run_cli,
    write,
)


def scan_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["scan", "--json", *args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def roles(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r["path"], r["role"]) for r in doc["roots"]]


# -- role detection -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("children", "role", "why"),
    [
        ([f"{SHA256_A}/photo.png"], Role.TEMP, f"holds only Gradio cache entries ({SHA256_A};"),
        ([f"{SHA1_OLD}/report.txt"], Role.TEMP, "holds only Gradio cache entries"),
        (["vibe_edit_history/"], Role.TEMP, "holds only Gradio cache entries (vibe_edit_history;"),
        (["deep_links/abcdefghijk/state.json"], Role.TEMP, "(deep_links; 1 seen)"),
        (["tmpab12cd34", "tmpzz99yy88.mp4", "lost+found/"], Role.TEMP, "2 seen)"),
        ([f"{SHA256_A}/a.png", "notes.txt"], Role.APP, "holds notes.txt, which Gradio does not"),
        ([f"{SHA256_A}/a.png", "tmp_helpers.py"], Role.APP, "tmp_helpers.py, a source file"),
        ([f"{SHA256_A}/a.png", "venv/pyvenv.cfg"], Role.APP, "holds venv: a project folder"),
        ([f"{SHA256_A}/a.png", "env/bin/activate"], Role.APP, "holds env, which"),
        ([".gradio/flagged/dataset1.csv", "app.py"], Role.APP, "holds .gradio/"),
        (["flagged/log.csv"], Role.APP, "holds flagged/"),
        (["gradio_cached_examples/12/log.csv"], Role.APP, "holds gradio_cached_examples/"),
        ([f"{JS_SESSION}/upload.txt", "static/logo.png"], Role.APP, "holds session folders"),
        ([f"{UUID_SESSION}/result.txt"], Role.APP, "holds session folders"),
        (["outputs1/x", "checkpoints/m.bin"], Role.APP, "nothing Gradio-specific found"),
        ([], Role.APP, "nothing Gradio-specific found"),
    ],
)
def test_detect_role_from_children(
    tmp_path: Path, runner: CliRunner, children: list[str], role: Role, why: str
) -> None:
    folder = tmp_path / "somewhere"
    folder.mkdir()
    for child in children:
        if child.endswith("/"):
            (folder / child).mkdir(parents=True)
        else:
            write(folder / child, b"x")
    detected, reason = detect_role(str(folder))
    assert detected is role
    assert why in reason
    doc = scan_json(runner, str(folder))
    assert roles(doc) == [(str(folder), role.value)]
    assert why in doc["roots"][0]["role_reason"]


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("app/.gradio", Role.GRADIO),
        ("app/flagged", Role.FLAGGED),
        ("app/.gradio/flagged", Role.FLAGGED),
        ("app/.gradio/cached_examples", Role.EXAMPLES),
        ("app/gradio_cached_examples", Role.EXAMPLES),
    ],
)
def test_detect_role_from_the_name(
    tmp_path: Path, runner: CliRunner, path: str, role: Role
) -> None:
    folder = tmp_path / path
    write(folder / SHA256_A / "looks-like-cache.txt", b"x")  # the name wins over children
    assert detect_role(str(folder))[0] is role
    assert roles(scan_json(runner, str(folder))) == [(str(folder), role.value)]


def test_the_configured_temp_dir_is_temp_even_when_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runner: CliRunner
) -> None:
    cache = tmp_path / "my-cache"
    (cache / "outputs1").mkdir(parents=True)  # would otherwise look like an app dir
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    assert detect_role(str(cache)) == (Role.TEMP, "is Gradio's temp dir")
    assert detect_role(str(tmp_path / "my-cache" / ".." / "my-cache"))[0] is Role.TEMP
    assert roles(scan_json(runner, str(cache))) == [(str(cache), "temp")]


@pytest.mark.parametrize("command", [["scan"], ["prune", "--older-than", "1d"]])
def test_the_cli_says_which_role_it_gave_each_root(
    runner: CliRunner, gradio_tree: GradioTree, command: list[str]
) -> None:
    result = runner.invoke(app, [*command, str(gradio_tree.temp), str(gradio_tree.app)])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[:2] == [
        f"{gradio_tree.temp}: temp (is Gradio's temp dir)",
        f"{gradio_tree.app}: app (holds .gradio/)",
    ]


def test_a_relative_path_is_made_absolute(
    runner: CliRunner, gradio_tree: GradioTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(gradio_tree.app / ".gradio")
    result = runner.invoke(app, ["scan", "--json", "."])
    assert result.exit_code == 0, result.output
    assert roles(json.loads(result.stdout)) == [(str(gradio_tree.app / ".gradio"), "gradio-dir")]
    monkeypatch.chdir(gradio_tree.app / "static")
    doc = scan_json(runner, "..", "../../temp")
    assert roles(doc) == [(str(gradio_tree.app), "app"), (str(gradio_tree.temp), "temp")]


def test_sessions_dir_option_gives_the_sessions_role(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "per-user"
    write(folder / "run2024" / "a.txt", b"12345")  # two runs: a session only when relaxed
    write(folder / "checkpoints" / "m.bin", b"1")
    doc = scan_json(runner, "--sessions-dir", str(folder))
    assert roles(doc) == [(str(folder), "sessions")]
    cats = doc["roots"][0]["categories"]
    assert (cats["session"]["files"], cats["session"]["bytes"]) == (1, 5)
    assert (cats["other"]["files"], cats["other"]["bytes"]) == (1, 1)


# -- errors: one line, no traceback ---------------------------------------------------


def assert_one_line_error(result: Any, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gradio-clean: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_path_is_a_one_line_error(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = runner.invoke(app, ["scan", str(missing)])
    assert_one_line_error(result, 1, f"{missing}: no such directory")
    result = runner.invoke(app, ["scan", "--json", str(missing)])
    assert_one_line_error(result, 1, "no such directory")


def test_a_file_is_a_one_line_error(runner: CliRunner, tmp_path: Path) -> None:
    f = write(tmp_path / "file.txt", b"x")
    assert_one_line_error(runner.invoke(app, ["scan", str(f)]), 1, "not a directory")
    assert_one_line_error(runner.invoke(app, ["scan", str(f) + "/"]), 1, "not a directory")
    assert_one_line_error(
        runner.invoke(app, ["scan", "--sessions-dir", str(f)]), 1, "not a directory"
    )


@pytest.mark.parametrize("suffix", ["", "/", "//"])
def test_a_symlink_root_is_refused_not_followed(
    runner: CliRunner, gradio_tree: GradioTree, suffix: str
) -> None:
    link = gradio_tree.temp.parent / "cache-link"
    link.symlink_to(gradio_tree.temp, target_is_directory=True)
    given = str(link) + suffix
    result = runner.invoke(app, ["scan", "--json", given])
    assert_one_line_error(result, 1, f"{given}: is a symlink")
    result = runner.invoke(app, ["scan", "--sessions-dir", given])
    assert_one_line_error(result, 1, "is a symlink")
    with pytest.raises(GradioCleanError, match="is a symlink"):
        check_dir(given)


def test_a_symlink_to_a_file_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(write(tmp_path / "f", b"x"))
    assert_one_line_error(runner.invoke(app, ["scan", str(link)]), 1, "is a symlink")


def test_a_dangling_symlink_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "gone")
    assert_one_line_error(runner.invoke(app, ["scan", str(link)]), 1, "is a symlink")


def test_a_path_through_a_symlinked_parent_is_scanned(
    runner: CliRunner, gradio_tree: GradioTree
) -> None:
    """Only the last component is checked: /srv -> /data/srv is how servers are laid out."""
    parent_link = gradio_tree.temp.parent / "base-link"
    parent_link.symlink_to(gradio_tree.temp.parent, target_is_directory=True)
    doc = scan_json(runner, str(parent_link / "temp"))
    assert doc["roots"][0]["role"] == "temp"
    assert doc["roots"][0]["files"] == 14


def test_an_unreadable_path_is_a_one_line_error(world_dir: Path) -> None:
    locked = world_dir / "locked"
    write(locked / SHA256_A / "photo.png", b"x")
    make_private(locked)
    result = invoke_unprivileged(["scan", str(locked)])
    assert result.crash is None, result.crash
    assert_one_line_error(result, 1, f"{locked}: permission denied")


def test_overlapping_roots_are_a_usage_error(runner: CliRunner, gradio_tree: GradioTree) -> None:
    inner = gradio_tree.app / ".gradio"
    result = runner.invoke(app, ["scan", str(inner), str(gradio_tree.app)])
    assert_one_line_error(result, 2, "roots overlap", str(inner))
    result = runner.invoke(app, ["scan", str(gradio_tree.app), "--sessions-dir", str(inner)])
    assert_one_line_error(result, 2, "roots overlap")
    with pytest.raises(UsageError):  # one folder in two roles: which did they mean?
        resolve_roots([str(gradio_tree.app)], [str(gradio_tree.app) + "/"])


def test_one_folder_named_twice_is_one_root(gradio_tree: GradioTree) -> None:
    temp = str(gradio_tree.temp)
    roots = resolve_roots([temp, temp + "/", temp + "/../temp"])
    assert [r.path for r in roots] == [temp]


def test_a_long_missing_path_is_still_one_line(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    missing = tmp_path / ("long-folder-name-" * 8) / "nope"
    assert_one_line_error(runner.invoke(app, ["scan", str(missing)]), 1, "no such directory")


# -- default roots --------------------------------------------------------------------


def test_default_roots_honour_gradio_temp_dir(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "elsewhere" / "cache"
    write(cache / SHA256_A / "photo.png", b"12345")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    assert gradio_temp_dir() == str(cache)
    doc = scan_json(runner)
    assert roles(doc) == [(str(cache), "temp")]
    assert (doc["roots"][0]["files"], doc["roots"][0]["bytes"]) == (1, 5)


def test_relative_gradio_temp_dir_is_relative_to_the_working_directory(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_dir = tmp_path / "myapp"
    write(app_dir / "cache" / SHA256_A / "photo.png", b"123")
    write(tmp_path / "cache" / SHA256_A / "decoy.png", b"wrong one")
    monkeypatch.setenv("GRADIO_TEMP_DIR", "cache")
    monkeypatch.chdir(app_dir)
    assert gradio_temp_dir() == str(app_dir / "cache")
    doc = scan_json(runner)
    assert roles(doc) == [(str(app_dir / "cache"), "temp")]
    assert doc["roots"][0]["bytes"] == 3


def test_default_temp_dir_is_tempfile_gettempdir_gradio(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset or empty GRADIO_TEMP_DIR: <tempfile.gettempdir()>/gradio, as Gradio does."""
    system_tmp = tmp_path / "system-tmp"
    write(system_tmp / "gradio" / SHA256_A / "photo.png", b"1234")
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    for value in (None, ""):
        if value is None:
            monkeypatch.delenv("GRADIO_TEMP_DIR")
        else:
            monkeypatch.setenv("GRADIO_TEMP_DIR", value)
        assert gradio_temp_dir() == str(system_tmp / "gradio")
        doc = scan_json(runner)
        assert roles(doc) == [(str(system_tmp / "gradio"), "temp")]
        assert doc["roots"][0]["bytes"] == 4


def test_default_roots_add_the_apps_folders_of_the_working_directory(
    runner: CliRunner, gradio_tree: GradioTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(gradio_tree.temp))
    write(gradio_tree.app / "flagged" / "log.csv", b"a,b\n")  # Gradio 4.x
    write(gradio_tree.app / "gradio_cached_examples" / "3" / "log.csv", b"x\n")
    monkeypatch.chdir(gradio_tree.app)
    doc = scan_json(runner)
    assert roles(doc) == [
        (str(gradio_tree.temp), "temp"),
        (str(gradio_tree.app / ".gradio"), "gradio-dir"),
        (str(gradio_tree.app / "flagged"), "flagged"),
        (str(gradio_tree.app / "gradio_cached_examples"), "examples"),
    ]
    gradio_dir, flagged, examples = doc["roots"][1:]
    assert gradio_dir["categories"]["flagged"]["files"] == 2
    assert gradio_dir["categories"]["examples"]["files"] == 1
    assert gradio_dir["categories"]["internal"]["files"] == 1
    assert (flagged["files"], flagged["categories"]["flagged"]["files"]) == (1, 1)
    assert (examples["files"], examples["categories"]["examples"]["files"]) == (1, 1)


def test_default_roots_skip_symlinks_and_walk_a_temp_dir_in_gradio_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GRADIO_TEMP_DIR=.gradio/tmp: the temp dir is a root of its own, with its temp role,
    and .gradio's walk passes it by (before: dropped, its cache walked as .gradio's other)."""
    app_dir = tmp_path / "app"
    (app_dir / ".gradio" / "tmp").mkdir(parents=True)
    (app_dir / "flagged").symlink_to(tmp_path, target_is_directory=True)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(app_dir / ".gradio" / "tmp"))
    found, looked_at = default_roots(str(app_dir))
    assert [(r.path, r.role, r.apart) for r in found] == [
        (str(app_dir / ".gradio" / "tmp"), Role.TEMP, ()),
        (str(app_dir / ".gradio"), Role.GRADIO, ("tmp",)),
    ]
    assert looked_at == [
        str(app_dir / ".gradio" / "tmp"),
        str(app_dir / ".gradio"),
        str(app_dir / "flagged"),
        str(app_dir / "gradio_cached_examples"),
    ]


def test_a_temp_dir_deeper_in_gradio_is_still_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the top of .gradio the walk could not pass it by: one root, as before."""
    app_dir = tmp_path / "app"
    (app_dir / ".gradio" / "cache" / "tmp").mkdir(parents=True)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(app_dir / ".gradio" / "cache" / "tmp"))
    found, _ = default_roots(str(app_dir))
    assert [(r.path, r.role, r.apart) for r in found] == [
        (str(app_dir / ".gradio"), Role.GRADIO, ())
    ]


def _app_with_its_temp_dir_in_gradio(app_dir: Path) -> None:
    """Three-day-old cache in .gradio/tmp, beside three-day-old flagged data."""
    write(app_dir / ".gradio" / "tmp" / SHA256_A / "photo.png", b"12345", age=3 * DAY)
    os.utime(app_dir / ".gradio" / "tmp" / SHA256_A, (time.time() - 3 * DAY,) * 2)
    write(app_dir / ".gradio" / "tmp" / "tmpabcd1234.mp4", b"123", age=3 * DAY)
    write(app_dir / ".gradio" / "flagged" / "image" / "u1" / "a.png", b"flag", age=3 * DAY)
    write(app_dir / ".gradio" / "flagged" / "dataset1.csv", b"image\n", age=3 * DAY)
    write(app_dir / "app.py", b"demo.launch()")


def test_scan_with_no_root_shows_a_temp_dir_in_gradio_as_its_own_root(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_dir = tmp_path / "app"
    _app_with_its_temp_dir_in_gradio(app_dir)
    monkeypatch.chdir(app_dir)
    monkeypatch.setenv("GRADIO_TEMP_DIR", ".gradio/tmp")
    doc = scan_json(runner)
    assert roles(doc) == [
        (str(app_dir / ".gradio" / "tmp"), "temp"),
        (str(app_dir / ".gradio"), "gradio-dir"),
    ]
    temp, gradio_dir = doc["roots"]
    assert (temp["files"], temp["bytes"]) == (2, 8)  # counted once, by its own root
    assert temp["categories"]["cache"]["files"] == temp["categories"]["leftover"]["files"] == 1
    assert (gradio_dir["files"], gradio_dir["bytes"]) == (2, 10)
    assert gradio_dir["categories"]["flagged"]["files"] == 2
    assert "other" not in gradio_dir["categories"] or not gradio_dir["categories"]["other"]["files"]


def test_prune_with_no_root_ages_a_temp_dir_in_gradio_as_cache(
    tmp_path: Path,
) -> None:
    """Its hash folders and leftovers go by --older-than; .gradio/flagged stays user data."""
    app_dir = tmp_path / "app"
    _app_with_its_temp_dir_in_gradio(app_dir)
    args = ("prune", "--older-than", "1d", "--age-by", "mtime", "--json")
    temp = Path(".gradio/tmp")  # relative, as GRADIO_TEMP_DIR: to the working directory
    dry = json.loads(run_cli(*args, cwd=app_dir, temp_dir=temp).stdout)
    done = json.loads(run_cli(*args, "--apply", "--yes", cwd=app_dir, temp_dir=temp).stdout)
    planned = [(a["path"], a["category"]) for a in dry["actions"]]
    assert planned == [
        (str(app_dir / ".gradio" / "tmp" / SHA256_A), "cache"),
        (str(app_dir / ".gradio" / "tmp" / "tmpabcd1234.mp4"), "leftover"),
    ]
    assert [(a["path"], a["status"]) for a in done["actions"]] == [
        (path, "deleted") for path, _ in planned
    ]
    assert os.listdir(app_dir / ".gradio" / "tmp") == []
    assert (app_dir / ".gradio" / "flagged" / "image" / "u1" / "a.png").exists()
    assert (app_dir / ".gradio" / "flagged" / "dataset1.csv").exists()


def test_nothing_present_is_said_on_stderr_and_exits_0(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["scan"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "gradio-clean: no Gradio cache found; looked at " in result.stderr
    assert str(tmp_path / "no-such-temp") in result.stderr
    assert str(tmp_path / ".gradio") in result.stderr

    result = runner.invoke(app, ["scan", "--json"])
    assert result.exit_code == 0
    assert "no Gradio cache found" in result.stderr
    assert json.loads(result.stdout)["roots"] == []


# -- refusing dangerous roots -----------------------------------------------------------


def refused(path: str | Path) -> bool:
    try:
        refuse_dangerous(Root(str(path), Role.TEMP, "test"))
    except UsageError as exc:
        assert exc.exit_code is ExitCode.USAGE
        assert "refusing to prune" in exc.message
        return True
    return False


def test_refuse_dangerous_system_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in ("/", "/tmp", "/tmp/", "/var/tmp", "/usr", "/etc/..", tempfile.gettempdir()):
        assert refused(path), path
    link = tmp_path / "root-link"
    link.symlink_to("/", target_is_directory=True)
    assert refused(link)
    other_tmp = tmp_path / "other-tmp"
    other_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(other_tmp))  # TMPDIR moved
    assert refused(other_tmp)
    assert not refused(other_tmp / "gradio")


def test_refuse_dangerous_home_and_its_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home" / "me"
    (home / "app" / ".gradio").mkdir(parents=True)
    assert refused(os.path.expanduser("~"))  # the real one
    monkeypatch.setenv("HOME", str(home))
    for path in (home, tmp_path / "home", tmp_path, str(home) + "/"):
        assert refused(path), path
    assert not refused(home / "app")
    assert not refused(home / "app" / ".gradio")
    assert not refused(tmp_path / "home-other")  # a sibling that shares a prefix


def test_a_dry_run_is_refused_where_apply_would_be(runner: CliRunner, tmp_path: Path) -> None:
    """A dry run must not list what a real run will refuse to touch."""
    write(tmp_path / "home" / JS_SESSION / "x.txt", b"x")
    for path in ("/tmp", "/"):
        for extra in ([], ["--apply"]):
            result = runner.invoke(app, ["prune", path, "--orphaned-sessions", *extra])
            assert result.exit_code == ExitCode.USAGE, (path, extra, result.output)
            assert result.stderr.startswith(f"gradio-clean: error: refusing to prune {path}:")
            assert result.stdout == ""
