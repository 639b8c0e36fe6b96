"""The shell completion scripts: fresh, working in real shells, and shipped in the wheel."""

from __future__ import annotations

import fcntl
import os
import select
import shlex
import shutil
import struct
import subprocess
import sys
import termios
import time
import zipfile
from pathlib import Path

import pytest

from gradio_clean import __version__

ROOT = Path(__file__).resolve().parents[1]
COMPLETIONS = ROOT / "completions"
GENERATOR = COMPLETIONS / "generate.py"
SCRIPTS = {"bash": "gradio-clean.bash", "zsh": "_gradio-clean", "fish": "gradio-clean.fish"}
BIN = Path(sys.executable).parent
EXE = BIN / "gradio-clean"


def shell_env(home: Path) -> dict[str, str]:
    """A bare environment whose PATH finds this venv's gradio-clean first."""
    return {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
    }


@pytest.fixture(scope="module")
def installed() -> Path:
    """Completion runs the installed console script by name, as the shells do."""
    if not os.access(EXE, os.X_OK):
        pytest.fail(f"{EXE} is missing: install the package first (pip install -e '.[test]')")
    return EXE


# -- staleness ----------------------------------------------------------------------


def test_committed_scripts_are_what_the_generator_writes(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(GENERATOR), str(tmp_path)], check=True, capture_output=True)
    for name in SCRIPTS.values():
        assert (tmp_path / name).read_bytes(), f"the generator wrote an empty {name}"
    stale = [
        f"completions/{name}"
        for name in SCRIPTS.values()
        if (COMPLETIONS / name).read_bytes() != (tmp_path / name).read_bytes()
    ]
    assert not stale, (
        f"stale: {', '.join(stale)} (the CLI or typer changed). Regenerate them from the "
        f"repository root with: {sys.executable} completions/generate.py"
    )


def test_generator_output_does_not_depend_on_the_shell_or_machine(tmp_path: Path) -> None:
    env = {**os.environ, "SHELL": "/usr/bin/fish", "HOME": str(tmp_path)}
    subprocess.run(
        [sys.executable, str(GENERATOR), str(tmp_path / "out")],
        check=True,
        capture_output=True,
        env=env,
        cwd="/",
    )
    for shell, name in SCRIPTS.items():
        text = (tmp_path / "out" / name).read_text()
        assert (COMPLETIONS / name).read_text() == text
        for machine_specific in (str(ROOT), str(BIN), sys.prefix, str(Path.home())):
            assert machine_specific not in text, f"{name} embeds {machine_specific}"
        # each script is for its own shell, whatever $SHELL says
        marker = {"bash": "complete -o default -F", "zsh": "#compdef", "fish": "complete --command"}
        assert marker[shell] in text


# -- bash, for real -------------------------------------------------------------------

BASH_DRIVER = r"""
source "$1"; shift
spec=$(complete -p gradio-clean) || { echo "no completion registered" >&2; exit 3; }
[[ $spec =~ -F\ ([^ ]+) ]] || { echo "no -F function in: $spec" >&2; exit 4; }
func=${BASH_REMATCH[1]}
echo "$func"
COMP_WORDS=("$@")
COMP_CWORD=$(( $# - 1 ))
COMP_LINE="$*"
COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$func" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"""


def bash_complete(words: list[str], home: Path) -> tuple[str, list[str]]:
    """Source the committed bash script in a clean bash, complete the last word the way
    bash would, and return the completion function's name and COMPREPLY."""
    proc = subprocess.run(
        [
            "bash",
            "--norc",
            "--noprofile",
            "-c",
            BASH_DRIVER,
            "bash",
            str(COMPLETIONS / SCRIPTS["bash"]),
            *words,
        ],
        capture_output=True,
        text=True,
        env=shell_env(home),
        cwd=home,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    func, *replies = proc.stdout.splitlines()
    return func, [r for r in replies if r]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["gradio-clean", "pr"], "prune"),
        (["gradio-clean", "sc"], "scan"),
        (["gradio-clean", "prune", "--older"], "--older-than"),
        (["gradio-clean", "prune", "--dedupe", "h"], "hardlink"),
        (["gradio-clean", "prune", "--age-by", "c"], "ctime"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_bash_completes(installed: Path, tmp_path: Path, words: list[str], expected: str) -> None:
    func, replies = bash_complete(words, tmp_path)
    assert func == "_gradio_clean_completion"
    assert expected in replies, f"{' '.join(words)!r} offered {replies}"
    assert all(r.startswith(words[-1]) for r in replies), replies


def test_bash_offers_every_command(installed: Path, tmp_path: Path) -> None:
    _, replies = bash_complete(["gradio-clean", ""], tmp_path)
    assert {"scan", "prune", "schedule", "config"} <= set(replies), replies


# -- zsh and fish, when installed -------------------------------------------------------

needs_zsh = pytest.mark.skipif(
    shutil.which("zsh") is None, reason="zsh is not installed (apt-get install zsh)"
)
needs_fish = pytest.mark.skipif(
    shutil.which("fish") is None, reason="fish is not installed (apt-get install fish)"
)


@needs_zsh
def test_zsh_script_parses() -> None:
    proc = subprocess.run(
        ["zsh", "-n", str(COMPLETIONS / SCRIPTS["zsh"])], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert (COMPLETIONS / SCRIPTS["zsh"]).read_text().startswith("#compdef gradio-clean\n")


@needs_fish
def test_fish_script_parses() -> None:
    proc = subprocess.run(
        ["fish", "--no-config", "-n", str(COMPLETIONS / SCRIPTS["fish"])],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


@needs_fish
@pytest.mark.parametrize(
    ("line", "expected"),
    [("gradio-clean pr", "prune"), ("gradio-clean prune --older", "--older-than")],
)
def test_fish_completes(installed: Path, tmp_path: Path, line: str, expected: str) -> None:
    script = COMPLETIONS / SCRIPTS["fish"]
    proc = subprocess.run(
        ["fish", "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", str(script), line],
        capture_output=True,
        text=True,
        env=shell_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    offered = [row.split("\t")[0] for row in proc.stdout.splitlines()]
    assert expected in offered, proc.stdout


def zsh_tab(
    zdotdir: Path, home: Path, tabs: list[tuple[str, str]], path: str | None = None
) -> None:
    """For each (line, completed): type the line and a Tab into an interactive zsh on a
    pseudo-terminal, wait until the completed line shows on the screen, clear the line."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
    proc = subprocess.Popen(
        ["zsh", "--no-globalrcs", "-i"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**shell_env(home), "ZDOTDIR": str(zdotdir), **({"PATH": path} if path else {})},
        cwd=home,
        start_new_session=True,
    )
    os.close(slave)
    screen = b""

    def wait_for(text: str, timeout: float = 20.0) -> bool:
        nonlocal screen
        end = time.monotonic() + timeout
        while text.encode() not in screen and time.monotonic() < end:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    screen += os.read(master, 65536)
                except OSError:
                    break
        return text.encode() in screen

    try:
        assert wait_for("READY> "), screen.decode(errors="replace")
        for line, want in tabs:
            screen = b""
            os.write(master, line.encode() + b"\t")
            assert wait_for(want), f"{line!r} + Tab: {screen.decode(errors='replace')!r}"
            os.write(master, b"\x15")  # ^U: kill the line for the next one
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


@needs_zsh
@pytest.mark.parametrize("how", ["fpath", "source"])
def test_zsh_completes_from_the_first_tab(installed: Path, tmp_path: Path, how: str) -> None:
    """As installed in site-functions (autoloaded by compinit) and as sourced after
    compinit: the first Tab completes, and so does every later one."""
    site = tmp_path / "site-functions"
    site.mkdir()
    shutil.copy(COMPLETIONS / SCRIPTS["zsh"], site / "_gradio-clean")
    zshrc = (
        f"fpath=({shlex.quote(str(site))} $fpath); autoload -Uz compinit; compinit -u -D\n"
        if how == "fpath"
        else "autoload -Uz compinit; compinit -u -D\n"
        f"source {shlex.quote(str(site / '_gradio-clean'))}\n"
    )
    (tmp_path / ".zshrc").write_text(zshrc + "PS1='READY> '\n")
    zsh_tab(
        tmp_path,
        tmp_path,
        [
            ("gradio-clean pr", "gradio-clean prune "),
            ("gradio-clean prune --older", "gradio-clean prune --older-than "),
            ("gradio-clean con", "gradio-clean config "),
        ],
    )


# -- the wheel ----------------------------------------------------------------------------


def test_wheel_installs_the_scripts_where_shells_look(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = out.glob("gradio_clean-*.whl")
    data = f"gradio_clean-{__version__}.data/data/share"
    expected = {
        f"{data}/bash-completion/completions/gradio-clean": "gradio-clean.bash",
        f"{data}/zsh/site-functions/_gradio-clean": "_gradio-clean",
        f"{data}/fish/vendor_completions.d/gradio-clean.fish": "gradio-clean.fish",
    }
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for member, source in expected.items():
            assert member in names, f"{member} not in the wheel: {sorted(names)}"
            assert zf.read(member) == (COMPLETIONS / source).read_bytes()
        shipped = {n for n in names if ".data/" in n}
        assert shipped == set(expected), "unexpected data files in the wheel"
        assert not [n for n in names if n.endswith("/generate.py")], "the generator shipped"


# -- Tab never starts Python ------------------------------------------------------------


def _no_program_env(home: Path) -> dict[str, str]:
    """A PATH with the shells and a few tools but neither gradio-clean nor python: a
    completion that ran either would find nothing."""
    env = shell_env(home)
    bare = home / "bin"
    bare.mkdir(exist_ok=True)
    for tool in ("bash", "zsh", "fish", "env", "ls", "sed", "cat", "tr", "uname"):
        found = shutil.which(tool, path="/usr/bin:/bin")
        if found:
            (bare / tool).symlink_to(found)
    env["PATH"] = str(bare)
    return env


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["gradio-clean", "pr"], {"prune"}),
        (["gradio-clean", "prune", "--category", "fl"], {"flagged"}),
        (["gradio-clean", "schedule", "--keep", ""], {"newest", "oldest"}),
        (["gradio-clean", "scan", "--j"], {"--json"}),
        (["gradio-clean", "prune", "sub"], {"subdir"}),
        (["gradio-clean", "prune", "--sessions-dir", "sub"], {"subdir"}),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bash_answers_without_the_program(
    tmp_path: Path, words: list[str], expected: set[str]
) -> None:
    (tmp_path / "subdir").mkdir()
    (tmp_path / "subfile").write_text("")
    script = str(COMPLETIONS / SCRIPTS["bash"])
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", BASH_DRIVER, "bash", script, *words],
        capture_output=True,
        text=True,
        env=_no_program_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "command not found" not in proc.stderr
    replies = {r for r in proc.stdout.splitlines()[1:] if r}
    assert replies == expected


@needs_fish
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("gradio-clean prune --age-by ", {"mtime", "atime", "ctime", "newest"}),
        ("gradio-clean prune --ded", {"--dedupe"}),
        ("gradio-clean con", {"config"}),
    ],
)
def test_fish_answers_without_the_program(tmp_path: Path, line: str, expected: set[str]) -> None:
    script = COMPLETIONS / SCRIPTS["fish"]
    proc = subprocess.run(
        ["fish", "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", str(script), line],
        capture_output=True,
        text=True,
        env=_no_program_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert {row.split("\t")[0] for row in proc.stdout.splitlines()} == expected


@needs_zsh
def test_zsh_answers_without_the_program(tmp_path: Path) -> None:
    site = tmp_path / "site-functions"
    site.mkdir()
    shutil.copy(COMPLETIONS / SCRIPTS["zsh"], site / "_gradio-clean")
    (tmp_path / ".zshrc").write_text(
        f"fpath=({shlex.quote(str(site))} $fpath); autoload -Uz compinit; compinit -u -D\n"
        "PS1='READY> '\n"
    )
    env = _no_program_env(tmp_path)
    zsh_tab(
        tmp_path,
        tmp_path,
        [
            ("gradio-clean prune --dedupe h", "gradio-clean prune --dedupe hardlink "),
            ("gradio-clean sch", "gradio-clean schedule "),
        ],
        path=env["PATH"],
    )
