"""Apps with gradio-clean attached, on Gradio 6 (this venv) or 5 ($GRADIO5_PYTHON).

Same layout and start-up as harness.GradioApp; the app is live_app.py, run by the
interpreter of the Gradio version under test, with this checkout on its path.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

from tests.e2e.harness import GradioApp, run_cli

LIVE_SOURCE = Path(__file__).with_name("live_app.py")
CALL_TIMEOUT = 60.0  # seconds a client waits for one call
REPO = Path(__file__).resolve().parents[2]
GRADIO5_ENV = "GRADIO5_PYTHON"  # python with gradio>=5.50,<6 and this package installed


def gradio_python(version: str) -> str:
    """The interpreter for one Gradio major version; skips when 5.x is not set up."""
    if version == "6":
        return sys.executable
    python = os.environ.get(GRADIO5_ENV, "")
    if not python:
        pytest.skip(f"{GRADIO5_ENV} is not set: no Gradio 5.x interpreter")
    return python


class LiveApp(GradioApp):
    """live_app.py with attach(**options), under `python`."""

    def __init__(self, base: Path, python: str, options: dict[str, object]) -> None:
        super().__init__(base)
        self.python = python
        self.options = options
        self.sessions = self.app_dir / "sessions"

    def start(self) -> None:
        self.app_dir.mkdir(parents=True)
        self.sys_tmp.mkdir()
        shutil.copyfile(LIVE_SOURCE, self.app_dir / "app.py")
        for _ in range(3):
            self.port = _free_port()
            self._spawn()
            if self._wait_ready():
                return
        raise RuntimeError(f"no free port:\n{self.log_text()}")

    def _spawn(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_")}
        no_proxy = ",".join(filter(None, ("127.0.0.1,localhost", env.get("NO_PROXY"))))
        env.update(
            GRADIO_TEMP_DIR=str(self.temp_dir),
            GRADIO_ANALYTICS_ENABLED="False",
            GRADIO_CLEAN_ATTACH=json.dumps(self.options),
            TMPDIR=str(self.sys_tmp),
            HF_HUB_OFFLINE="1",
            NO_PROXY=no_proxy,
            no_proxy=no_proxy,
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONPATH=os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH")))),
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

    def prune(self, *flags: str) -> tuple[int, dict[str, object]]:
        """`gradio-clean prune --apply` from outside, on the temp dir and the sessions."""
        result, _ = run_cli(
            "prune",
            str(self.temp_dir),
            "--sessions-dir",
            str(self.sessions),
            *flags,
            "--apply",
            "--yes",
            "--json",
            temp_dir=self.temp_dir,
            cwd=self.base,
            check_json=False,
        )
        assert result.returncode in (0, 3), result.stderr  # 3: some entries were spared
        doc: dict[str, object] = json.loads(result.stdout)
        return result.returncode, doc


def _free_port() -> int:
    from tests.e2e.harness import free_port

    return free_port()


@contextlib.contextmanager
def live_app(base: Path, python: str, **options: object) -> Iterator[LiveApp]:
    app = LiveApp(base, python, options)
    try:
        app.start()
        yield app
    except Exception:
        sys.stderr.write(f"--- app log ({app.log_path}) ---\n{app.log_text()}\n")
        raise
    finally:
        app.kill()


def wait_for(check: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    """Poll `check` until it holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


def cached(temp_dir: Path, name: str) -> list[Path]:
    """Files called `name` in Gradio's hash folders."""
    return sorted(p for p in temp_dir.glob(f"*/{name}") if p.is_file())


def client(app: LiveApp, **kwargs: Any) -> Client:
    return Client(
        app.url,
        verbose=False,
        analytics_enabled=False,
        httpx_kwargs={"timeout": CALL_TIMEOUT},
        **kwargs,
    )


def upload_bytes(tmp_path: Path, name: str, size: int = 4096) -> tuple[Path, bytes]:
    data = secrets.token_bytes(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def server_url(result: Any, app: LiveApp) -> str:
    """The URL Gradio gave for a file output (the client did not download it)."""
    if isinstance(result, dict):
        url = result.get("url") or app.file_url(Path(result["path"]))
        return str(url)
    return app.file_url(Path(str(result)))
