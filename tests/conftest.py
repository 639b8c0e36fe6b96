"""Real directory trees that look like what Gradio 6 writes, built in tmp_path."""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import pytest
from hypothesis import HealthCheck, settings
from typer.testing import CliRunner

if TYPE_CHECKING:  # conftest imports no gradio_clean module at load
    from gradio_clean.plan import Plan

# No test is timed (speed is the benchmark's business): on a loaded 2-core machine a
# Hypothesis example may take seconds, which says nothing about the code under test.
settings.register_profile("untimed", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("untimed")

HOUR = 3600
DAY = 86400

SHA256_A = "a" * 63 + "1"
SHA256_B = "b" * 63 + "2"
SHA256_DUP = "c" * 63 + "3"
SHA256_EMPTY = "d" * 63 + "4"
SHA1_OLD = "e" * 39 + "5"
JS_SESSION = "k3x9q0ab1z"
JS_SESSION_FRESH = "p0q1r2s3t4"
UUID_SESSION = "0b6a9a2e-4c1f-4a8e-9d1e-2f3c4b5a6d7e"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test may see the machine's real /tmp/gradio or config."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "no-such-temp"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("GRADIO_CLEAN_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(path: Path, data: bytes = b"", *, age: float = 0.0) -> Path:
    """Create a file with `data` whose mtime and atime lie `age` seconds in the past."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    set_age(path, age)
    return path


def set_age(path: Path, age: float) -> None:
    t = time.time() - age
    os.utime(path, (t, t), follow_symlinks=False)


@dataclass
class GradioTree:
    """A Gradio 6 temp dir and an app dir, with what each file is expected to be."""

    temp: Path
    app: Path
    outside: Path
    expected: dict[str, set[str]] = field(default_factory=dict)  # category -> relpaths

    def add(self, category: str, path: Path, root: Path) -> None:
        self.expected.setdefault(category, set()).add(str(path.relative_to(root)))


def build_gradio_tree(base: Path) -> GradioTree:
    """Everything the scan and prune issues list, in one realistic tree.

    temp/ (a GRADIO_TEMP_DIR):
      <sha256 A>/photo.png, <sha256 A>/copy of photo.png   same content, two names
      <sha256 B>/audio.wav                                 old (3 days)
      <sha256 DUP>/photo.png                               same bytes as A's, another folder
      <sha256 EMPTY>/                                      empty hash folder, 2 days old
      <sha1 OLD>/report.txt                                Gradio 4.x folder, 40 days old
      <sha256 A>/.photo.png.ab12cd34                       staging copy (leftover)
      tmpab12cd34                                          empty gr.File placeholder, 2 h old
      tmpzz99yy88.mp4                                      video temp, 2 h old
      tmpq1w2e3r4/clip.mp4                                 ffmpeg output folder, 2 h old
      vibe_edit_history/, deep_links/abcdefghijk/state.json, workflow_0123456789abcdef.json
      notes.txt                                            unrecognised (other)
      link-out -> outside/secret.txt                       symlink out of the root
      fifo                                                 a FIFO
      b'caf\\xe9.bin' inside <sha256 B>                      a non-UTF-8 name
      <sha256 B>/hard.bin + <sha256 A>/hard-link.bin       one inode, two paths
    app/ (an app directory):
      app.py, checkpoints/model.bin, static/logo.png, __pycache__/x.pyc   the app's own
      .gradio/flagged/dataset1.csv, .gradio/flagged/image/<20hex>/in.png  flagged
      .gradio/cached_examples/12/log.csv                                  examples
      .gradio/certificate.pem                                             internal
      k3x9q0ab1z/upload.txt (2 h old)         browser session, stale
      p0q1r2s3t4/upload.txt (fresh)           browser session, fresh
      <uuid4>/result.txt (3 h old)            Python-client session, stale
      outputs1/keep.txt (2 h old)             word+number: not a session
    """
    temp, app, outside = base / "temp", base / "app", base / "outside"
    t = GradioTree(temp, app, outside)
    write(outside / "secret.txt", b"do not touch")

    photo = b"\x89PNG" + bytes(range(256)) * 40
    for p in (
        temp / SHA256_A / "photo.png",
        temp / SHA256_A / "copy of photo.png",
        temp / SHA256_DUP / "photo.png",
    ):
        t.add("cache", write(p, photo, age=2 * HOUR), temp)
    t.add("cache", write(temp / SHA256_B / "audio.wav", b"RIFF" + b"\0" * 5000, age=3 * DAY), temp)
    t.add("cache", write(temp / SHA1_OLD / "report.txt", b"old report\n" * 50, age=40 * DAY), temp)
    weird = os.fsdecode(b"caf\xe9.bin")
    t.add("cache", write(temp / SHA256_B / weird, b"latin-1 name", age=3 * DAY), temp)
    t.add("cache", write(temp / SHA256_B / "hard.bin", b"linked twice" * 10, age=3 * DAY), temp)
    os.link(temp / SHA256_B / "hard.bin", temp / SHA256_A / "hard-link.bin")
    t.add(
        "leftover", write(temp / SHA256_A / ".photo.png.ab12cd34", photo[:100], age=2 * HOUR), temp
    )
    (temp / SHA256_EMPTY).mkdir()
    set_age(temp / SHA256_EMPTY, 2 * DAY)
    t.add("leftover", write(temp / "tmpab12cd34", b"", age=2 * HOUR), temp)
    t.add("leftover", write(temp / "tmpzz99yy88.mp4", b"partial", age=2 * HOUR), temp)
    t.add("leftover", write(temp / "tmpq1w2e3r4" / "clip.mp4", b"ffmpeg out", age=2 * HOUR), temp)
    set_age(temp / "tmpq1w2e3r4", 2 * HOUR)
    (temp / "vibe_edit_history").mkdir()
    t.add("internal", write(temp / "deep_links" / "abcdefghijk" / "state.json", b"{}"), temp)
    t.add("internal", write(temp / "workflow_0123456789abcdef.json", b"{}"), temp)
    t.add("other", write(temp / "notes.txt", b"mine"), temp)
    os.symlink(outside / "secret.txt", temp / "link-out")
    os.mkfifo(temp / "fifo")

    t.add("other", write(app / "app.py", b"import gradio as gr\n"), app)
    t.add("other", write(app / "checkpoints" / "model.bin", b"\1" * 3000, age=10 * DAY), app)
    t.add("other", write(app / "static" / "logo.png", photo, age=10 * DAY), app)
    t.add("other", write(app / "__pycache__" / "x.pyc", b"pyc", age=10 * DAY), app)
    t.add(
        "flagged", write(app / ".gradio" / "flagged" / "dataset1.csv", b"a,b\n", age=5 * DAY), app
    )
    t.add(
        "flagged",
        write(app / ".gradio" / "flagged" / "image" / ("f" * 20) / "in.png", photo, age=5 * DAY),
        app,
    )
    t.add(
        "examples",
        write(app / ".gradio" / "cached_examples" / "12" / "log.csv", b"x\n", age=5 * DAY),
        app,
    )
    t.add("internal", write(app / ".gradio" / "certificate.pem", b"PEM", age=5 * DAY), app)
    t.add("session", write(app / JS_SESSION / "upload.txt", b"stale session", age=2 * HOUR), app)
    set_age(app / JS_SESSION, 2 * HOUR)
    t.add("session", write(app / JS_SESSION_FRESH / "upload.txt", b"fresh session"), app)
    t.add("session", write(app / UUID_SESSION / "result.txt", b"client session", age=3 * HOUR), app)
    set_age(app / UUID_SESSION, 3 * HOUR)
    t.add("other", write(app / "outputs1" / "keep.txt", b"app output", age=2 * HOUR), app)
    set_age(app / "outputs1", 2 * HOUR)
    return t


@pytest.fixture
def gradio_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GradioTree:
    """The tree, its temp/ being the GRADIO_TEMP_DIR: its notes.txt, symlink and FIFO
    would otherwise (rightly) make it an app directory."""
    tree = build_gradio_tree(tmp_path)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tree.temp))
    return tree


# -- helpers for the scan, roots, report and help tests ---------------------------

NOBODY = 65534  # the unprivileged uid/gid permission tests drop to


def give_to_nobody(top: Path) -> None:
    """Hand `top` and everything under it to nobody (NOBODY's uid and gid; needs root)."""
    for path in [top, *top.rglob("*")]:
        os.chown(path, NOBODY, NOBODY, follow_symlinks=False)


REPO = Path(__file__).resolve().parent.parent  # the checkout the tests import from


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for running `python -m gradio_clean` as a real process.

    PYTHONPATH points at this checkout, so the child runs the code under test even
    where another copy of the package is installed.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def run_in_private_mounts(code: str) -> str:
    """Run Python `code` (dedented) as root in a private mount namespace, so the mounts it
    makes vanish with it; its stdout. Skips where mounting is not permitted here."""
    unshare = ["unshare", "--mount", "--propagation", "private"]
    proc = subprocess.run(
        [*unshare, sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=cli_env(),
    )
    if "mount:" in proc.stderr or "unshare:" in proc.stderr:
        pytest.skip(f"cannot mount here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def run_cli(
    *args: str, timeout: float = 60.0, cwd: Path | None = None, temp_dir: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`python -m gradio_clean ARGS` in a subprocess; bytes, so encodings can be checked.

    `temp_dir`: vouched for as Gradio's temp dir (GRADIO_TEMP_DIR), whatever it holds."""
    extra = {"GRADIO_TEMP_DIR": str(temp_dir)} if temp_dir is not None else {}
    return subprocess.run(
        [sys.executable, "-m", "gradio_clean", *args],
        capture_output=True,
        timeout=timeout,
        env=cli_env(**extra),
        cwd=cwd,
        check=False,
    )


@dataclass(frozen=True)
class Invocation:
    exit_code: int
    stdout: str
    stderr: str
    crash: str | None  # the traceback, if the command raised instead of exiting

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


T = TypeVar("T")


def run_unprivileged(
    fn: Callable[[], T], *, uid: int = NOBODY, warm_up: Callable[[], object] | None = None
) -> T:
    """Call `fn()` as an unprivileged user and return its (pickled) result.

    As root, `fn` runs in a forked child that has dropped to `uid`. A fork, not
    `setpriv python ...`: the interpreter may sit where that user cannot read it
    (/root/.pyenv), while the forked child already has everything imported.
    `warm_up` (default: `fn` itself, so only for read-only work) runs as root
    first, so that every lazy import happens before the fork.
    Without root, permissions already apply and `fn` runs here.
    """
    if os.geteuid() != 0:
        return fn()
    (warm_up or fn)()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            try:
                payload: tuple[bool, object] = (True, fn())
            except BaseException:  # everything must reach the parent
                payload = (False, traceback.format_exc())
            with os.fdopen(write_end, "wb") as sink:
                sink.write(pickle.dumps(payload))
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as source:
        data = source.read()
    os.waitpid(pid, 0)
    ok, value = pickle.loads(data)  # noqa: S301 - our own child's answer
    if not ok:
        raise AssertionError(f"as uid {uid}:\n{value}")
    return cast(T, value)


def invoke_unprivileged(
    args: list[str], *, uid: int = NOBODY, warm_up: list[str] | None = None
) -> Invocation:
    """Run the CLI as an unprivileged user and return what it printed.

    `warm_up`: the command run as root first to load lazy imports; the default,
    `args` itself, suits read-only commands only (give a dry run for prune --apply).
    """
    from gradio_clean.cli import app  # here: conftest must import even if cli.py breaks

    def invoke(argv: list[str]) -> Invocation:
        result = CliRunner().invoke(app, argv)
        crash = None
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            crash = "".join(traceback.format_exception(result.exception))
        return Invocation(result.exit_code, result.stdout, result.stderr, crash)

    return run_unprivileged(lambda: invoke(args), uid=uid, warm_up=lambda: invoke(warm_up or args))


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A folder every user can reach (pytest's tmp_path sits under a 0700 folder)."""
    base = Path(tempfile.mkdtemp(prefix="gradio-clean-test-"))
    try:
        base.chmod(0o755)
        for parent in base.parents:
            if not parent.stat().st_mode & stat.S_IXOTH:
                pytest.skip(f"{parent} is not traversable by other users")
        yield base
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", "--", str(base)], check=False)
        subprocess.run(["rm", "-rf", "--", str(base)], check=False)


def make_private(folder: Path) -> None:
    """Make `folder` unreadable to the user run_unprivileged runs as.

    As root: 0700, another user's private folder (a shared /tmp/gradio made by
    someone else). Otherwise permissions apply to ourselves, so 0000.
    """
    folder.chmod(0o700 if os.geteuid() == 0 else 0)


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Paths given chattr +i or +a, cleared again afterwards."""
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("needs root and chattr(1)")
    paths: list[Path] = []
    yield paths
    for p in paths:
        subprocess.run(["chattr", "-i", "-a", str(p)], check=False)


@pytest.fixture
def holder() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Background processes that hold files open, mapped or locked; always reaped."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait()


def hold(procs: list[subprocess.Popen[bytes]], code: str) -> int:
    """Run `code` in a child that prints 'ready' once it holds what it holds; its pid."""
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE)
    procs.append(p)
    assert p.stdout is not None
    assert p.stdout.readline().strip() == b"ready"
    return p.pid


def hold_flock(procs: list[subprocess.Popen[bytes]], path: Path) -> int:
    """Another process opens `path` and holds an exclusive flock on it; its pid."""
    return hold(
        procs,
        f"""
        import fcntl, time
        fh = open({str(path)!r}, "rb")
        fcntl.flock(fh, fcntl.LOCK_EX)
        print("ready", flush=True)
        time.sleep(120)
        """,
    )


def hold_lock(procs: list[subprocess.Popen[bytes]], root: Path) -> None:
    """Another process holds the root's run lock, as a second gradio-clean run would."""
    hold(
        procs,
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from gradio_clean.classify import Role
        from gradio_clean.lock import lock_roots
        from gradio_clean.roots import Root
        with lock_roots([Root({str(root)!r}, Role.TEMP, "held")], 0):
            print("ready", flush=True)
            time.sleep(120)
        """,
    )


def mark_folder(procs: list[subprocess.Popen[bytes]], folder: Path) -> None:
    """Another process marks `folder` as attach() does when a page shows a file in it
    (live.Marks: opened and flocked shared, and held)."""
    hold(
        procs,
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from gradio_clean.live import Marks
        marks = Marks()
        assert marks.take("dir", {str(folder)!r}) is not None
        print("ready", flush=True)
        time.sleep(120)
        """,
    )


@dataclass(frozen=True)
class NamedInASession:
    """A duplicate pair in a temp dir, one of whose files has another name in an app's
    old session folder, planned with --duplicates and --orphaned-sessions."""

    keep: Path
    copy: Path
    session: Path
    plan: Plan


def duplicate_named_in_a_session(tmp_path: Path, named: str = "keep") -> NamedInASession:
    """The copy to keep (`named` "keep") or the copy has a name in an old session folder:
    the session goes first, then the copy is linked to the one kept."""
    from gradio_clean.classify import Role
    from gradio_clean.roots import Root
    from gradio_clean.rules import AgeBy, RuleSet, build_plan

    temp, app = tmp_path / "temp", tmp_path / "app"
    content = b"same bytes" * 100
    keep = write(temp / f"{1:064x}" / "keep.bin", content)
    copy = write(temp / f"{2:064x}" / "copy.bin", content, age=3 * HOUR)
    session = app / JS_SESSION
    os.makedirs(session)
    os.link(keep if named == "keep" else copy, session / "upload.bin")
    set_age(session / "upload.bin", 3 * HOUR)
    set_age(session, 3 * HOUR)
    plan = build_plan(
        [Root(str(app), Role.APP, "test"), Root(str(temp), Role.TEMP, "test")],
        RuleSet(duplicates=True, orphaned_sessions=True, age_by=AgeBy.MTIME),
        now=time.time(),
    )
    assert [(a.root, a.rel, a.keep) for a in plan.actions] == [
        (str(app), JS_SESSION, None),
        (str(temp), f"{2:064x}/copy.bin", str(keep)),
    ]
    return NamedInASession(keep, copy, session, plan)
