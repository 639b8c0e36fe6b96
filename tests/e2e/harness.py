"""A real Gradio app in a subprocess, driven by gradio_client: the e2e tests' harness.

One run lives in one base folder:

    base/app/           the app's working directory: app.py, example.txt, .gradio/, sessions
    base/gradio-temp/   GRADIO_TEMP_DIR of the app
    base/sys-tmp/       TMPDIR of the app: anything Gradio puts in the system temp dir
    base/inputs/        the files the clients upload
    base/downloads/     where the clients save the images and audio they get back
    base/client-tmp/    tempfile.gettempdir() of the clients (they leave 40-hex folders)
    base/app.log        the app's stdout and stderr, shown when a test fails

The app serves on 127.0.0.1 only, with analytics off and no share link.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from gradio_client import Client, handle_file

APP_SOURCE = Path(__file__).with_name("gradio_app.py")
READY_MARKER = "GRADIO-CLEAN-E2E READY"  # printed by gradio_app.py once launch() returned
EXAMPLE_NAME = "example.txt"  # the example input gradio_app.py caches at launch
READY_TIMEOUT = 60.0
CALL_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3

SAME = b"the same bytes, uploaded under two names\n"
INPUTS: dict[str, bytes] = {
    "a.txt": SAME,
    "résumé (copy).txt": SAME,
    "data.bin": bytes(range(256)) * 64,
    "client-1.txt": b"only the second client sends this\n",
    "client-2.txt": b"only the third client sends this\n",
}
# What each client uploads to /process, one client (one session) per row.
PLAN: tuple[tuple[str, ...], ...] = (
    ("a.txt", "résumé (copy).txt", "data.bin"),
    ("a.txt", "client-1.txt"),
    ("client-2.txt",),
)
FLAGGING_CLIENT = 0  # this client also flags its inputs and outputs through /flag

# (kind, inode, size, mtime_ns) by path relative to the snapshot's root
Snapshot = dict[str, tuple[str, int, int, int]]


@dataclass(frozen=True)
class ClientRun:
    """One gradio_client session and what it got back."""

    session_hash: str
    uploaded: tuple[str, ...]
    image: Path  # downloaded by the client
    audio: Path
    summary: str


class GradioApp:
    """`python app.py PORT` in `base/app`, and the folders it writes to.

    `source` is the app to run (gradio_app.py by default) and `python` the interpreter
    with the Gradio to run it under (this one by default; see GRADIO5_PYTHON).
    """

    def __init__(self, base: Path, source: Path = APP_SOURCE, python: str | None = None) -> None:
        self.base = base
        self.source = source
        self.python = python or sys.executable
        self.app_dir = base / "app"
        self.temp_dir = base / "gradio-temp"
        self.sys_tmp = base / "sys-tmp"
        self.log_path = base / "app.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def file_url(self, path: Path) -> str:
        """Gradio 5/6 serves a cached file by its absolute path."""
        return f"{self.url}gradio_api/file={quote(os.fspath(path), safe='/')}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"

    def start(self) -> None:
        self.app_dir.mkdir(parents=True)
        self.sys_tmp.mkdir()
        shutil.copyfile(self.source, self.app_dir / "app.py")
        (self.app_dir / EXAMPLE_NAME).write_bytes(b"the app's example input\n")
        for _ in range(PORT_ATTEMPTS):
            self.port = free_port()
            self._spawn()
            if self._wait_ready():
                return
        raise RuntimeError(f"no free port after {PORT_ATTEMPTS} attempts:\n{self.log_text()}")

    def _spawn(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_")}
        no_proxy = ",".join(filter(None, ("127.0.0.1,localhost", env.get("NO_PROXY"))))
        env.update(
            GRADIO_TEMP_DIR=str(self.temp_dir),
            GRADIO_ANALYTICS_ENABLED="False",
            TMPDIR=str(self.sys_tmp),
            HF_HUB_OFFLINE="1",
            NO_PROXY=no_proxy,
            no_proxy=no_proxy,
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
        )
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [self.python, "app.py", str(self.port)],
                cwd=self.app_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_ready(self) -> bool:
        """True once launch() returned and the server answers; False if the port was taken."""
        assert self.proc is not None
        deadline = time.monotonic() + READY_TIMEOUT
        with httpx.Client(timeout=2.0, trust_env=False) as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    log = self.log_text()
                    if "empty port" in log or "address already in use" in log.lower():
                        return False
                    raise RuntimeError(f"the app exited with {self.proc.returncode}:\n{log}")
                if READY_MARKER in self.log_text() and answers(http, self.url + "config"):
                    return True
                time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"the app was not ready after {READY_TIMEOUT:.0f} s:\n{self.log_text()}")

    def terminate(self) -> int:
        """SIGTERM, as systemd or docker stop would send; returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        return self.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def answers(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(url).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Flow:
    """A Gradio app that took uploads from several clients, and what they did."""

    app: GradioApp
    clients: tuple[ClientRun, ...]
    temp_before_stop: Snapshot | None = None

    @property
    def session_hashes(self) -> tuple[str, ...]:
        return tuple(c.session_hash for c in self.clients)


def drive(app: GradioApp) -> tuple[ClientRun, ...]:
    """Upload, get an image and audio back, flag once: one client per PLAN row."""
    inputs = app.base / "inputs"
    inputs.mkdir()
    for name, data in INPUTS.items():
        (inputs / name).write_bytes(data)
    runs: list[ClientRun] = []
    with pytest.MonkeyPatch.context() as mp:
        # The client downloads through empty <40 hex> folders in the system temp dir.
        client_tmp = app.base / "client-tmp"
        client_tmp.mkdir()
        mp.setattr(tempfile, "tempdir", str(client_tmp))
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        for i, names in enumerate(PLAN):
            client = Client(
                app.url,
                download_files=str(app.base / "downloads"),
                verbose=False,
                analytics_enabled=False,
                httpx_kwargs={"timeout": CALL_TIMEOUT},
            )
            try:
                files = [handle_file(str(inputs / n)) for n in names]
                job = client.submit(files, api_name="/process")
                image, audio, summary = job.result(timeout=CALL_TIMEOUT)
                if i == FLAGGING_CLIENT:
                    flag = client.submit(
                        [handle_file(str(inputs / names[0]))],
                        handle_file(image),
                        handle_file(audio),
                        api_name="/flag",
                    )
                    flag.result(timeout=CALL_TIMEOUT)
                runs.append(
                    ClientRun(str(client.session_hash), names, Path(image), Path(audio), summary)
                )
            finally:
                client.close()
    return tuple(runs)


@contextlib.contextmanager
def running_app(
    base: Path, source: Path = APP_SOURCE, python: str | None = None
) -> Iterator[GradioApp]:
    """Start the app; whatever happens, it is gone afterwards."""
    app = GradioApp(base, source, python)
    try:
        app.start()
        yield app
    except Exception:
        sys.stderr.write(f"--- app log ({app.log_path}) ---\n{app.log_text()}\n")
        raise
    finally:
        app.kill()


@contextlib.contextmanager
def stopped_flow(base: Path, python: str | None = None) -> Iterator[Flow]:
    """The whole flow, then SIGTERM: what an operator finds after the app went down."""
    with running_app(base, python=python) as app:
        flow = Flow(app, drive(app))
        flow.temp_before_stop = snapshot(app.temp_dir)
        app.terminate()
        yield flow


def snapshot(root: Path) -> Snapshot:
    """Every folder and file below `root`, without following links."""
    out: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            kind = "d" if name in dirnames else "f"
            out[os.path.relpath(path, root)] = (kind, st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def run_cli(
    *args: str, temp_dir: Path, cwd: Path, check_json: bool = True
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """The installed `gradio-clean` in a subprocess, with the app's GRADIO_TEMP_DIR."""
    exe = shutil.which("gradio-clean", path=os.path.dirname(sys.executable))
    argv = [exe] if exe else [sys.executable, "-m", "gradio_clean"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_")}
    env.update(
        GRADIO_TEMP_DIR=str(temp_dir),
        XDG_CONFIG_HOME=str(cwd / "xdg"),
        COLUMNS="200",
    )
    result = subprocess.run(
        [*argv, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        encoding="utf-8",
        errors="surrogateescape",
        timeout=60,
        check=False,
    )
    doc: dict[str, Any] = {}
    if check_json:
        assert result.returncode == 0, (
            f"gradio-clean {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        doc = json.loads(result.stdout)
    return result, doc
