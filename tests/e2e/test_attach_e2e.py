"""attach(demo) in a real Gradio app (6.x here, 5.x with $GRADIO5_PYTHON): what live
sessions use survives prunes from outside and from inside, and lapses `grace` later."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import handle_file

from tests.e2e.live_harness import (
    CALL_TIMEOUT,
    cached,
    client,
    gradio_python,
    live_app,
    server_url,
    upload_bytes,
    wait_for,
)

pytestmark = pytest.mark.e2e

GRACE = 8.0  # seconds; room for a prune inside it, short enough to wait for
SLEEP = 6.0  # how long the slow event sleeps before it reads its upload
LAPSE_TIMEOUT = 30.0


@pytest.fixture(params=["6", "5"], ids=["gradio6", "gradio5"])
def python(request: pytest.FixtureRequest) -> str:
    return gradio_python(str(request.param))


@pytest.mark.parametrize("serve", ["launch", "mount"])
def test_outside_prune_spares_a_running_events_upload(
    tmp_path: Path, python: str, serve: str
) -> None:
    with live_app(tmp_path / "run", python, grace=f"{GRACE:g}s", serve=serve) as app:
        source, data = upload_bytes(tmp_path, "upload.bin")
        c = client(app, download_files=False)
        submitted = time.monotonic()
        job = c.submit(handle_file(str(source)), SLEEP, api_name="/echo")
        assert wait_for(lambda: bool(cached(app.temp_dir, "upload.bin")), 20)
        (upload,) = cached(app.temp_dir, "upload.bin")
        time.sleep(1.5)  # older than --older-than 1s, while the event sleeps

        _, doc = app.prune("--older-than", "1s")
        assert upload.exists(), doc
        assert job.status().code.name in ("PROCESSING", "STARTING", "QUEUE", "ITERATING")

        result = job.result(timeout=CALL_TIMEOUT)
        finished = time.monotonic()  # a client with no page: grace runs from its last event
        with httpx.Client(timeout=10.0, trust_env=False) as http:
            response = http.get(server_url(result, app))
        assert response.status_code == 200
        assert response.content == data
        (output,) = cached(app.temp_dir, "echo.bin")

        app.prune("--older-than", "1s")
        if time.monotonic() - finished < GRACE - 1.0:  # a slow machine may need longer
            assert upload.exists() and output.exists(), "protection lapsed before grace"

        def pruned() -> bool:
            app.prune("--older-than", "1s")
            return not upload.exists() and not output.exists()

        assert wait_for(pruned, LAPSE_TIMEOUT, step=1.0), app.log_text()
        # the event ended no sooner than it had slept; grace runs from that end
        assert time.monotonic() - (submitted + SLEEP) >= GRACE
        c.close()


def test_rules_inside_the_app_remove_finished_sessions_only(tmp_path: Path, python: str) -> None:
    with live_app(
        tmp_path / "run", python, every="2s", older_than="1s", grace=f"{GRACE:g}s"
    ) as app:
        done_source, _ = upload_bytes(tmp_path, "done.bin")
        live_source, live_data = upload_bytes(tmp_path, "live.bin")
        finished = client(app)
        finished.predict(handle_file(str(done_source)), 0, api_name="/echo")
        (done_upload,) = cached(app.temp_dir, "done.bin")
        finished.close()

        live = client(app, download_files=False)
        submitted = time.monotonic()
        job = live.submit(handle_file(str(live_source)), SLEEP, api_name="/echo")
        assert wait_for(lambda: bool(cached(app.temp_dir, "live.bin")), 20)
        (live_upload,) = cached(app.temp_dir, "live.bin")

        assert wait_for(lambda: not done_upload.exists(), LAPSE_TIMEOUT), app.log_text()
        assert live_upload.exists()
        result = job.result(timeout=CALL_TIMEOUT)
        with httpx.Client(timeout=10.0, trust_env=False) as http:
            assert http.get(server_url(result, app)).content == live_data
        assert wait_for(lambda: not live_upload.exists(), LAPSE_TIMEOUT), app.log_text()
        # The event cannot end before it has slept, and its upload stays `grace` after
        # that end; when the client sees the result is no bound (a loaded machine lags).
        assert time.monotonic() - (submitted + SLEEP) >= GRACE
        live.close()
    assert "gradio-clean: freed" in app.log_text()
    assert "Traceback" not in app.log_text()


@pytest.mark.skipif(not shutil.which("systemd-tmpfiles"), reason="no systemd-tmpfiles")
def test_systemd_tmpfiles_honours_the_marks(tmp_path: Path) -> None:
    """An age rule (`e <temp dir> - - - 1s`) skips what a connected client shows."""
    with live_app(tmp_path / "run", gradio_python("6"), grace="60s") as app:
        source, _ = upload_bytes(tmp_path, "shown.bin")
        c = client(app)
        c.predict(handle_file(str(source)), 0, api_name="/echo")
        (upload,) = cached(app.temp_dir, "shown.bin")
        stray = app.temp_dir / ("f" * 64)
        stray.mkdir()
        (stray / "old.bin").write_bytes(b"nobody shows this")
        conf = tmp_path / "gradio.conf"
        conf.write_text(f"e {app.temp_dir} - - - 1s\n")
        time.sleep(2.5)  # every time (atime, mtime, ctime) older than 1s
        run = subprocess.run(
            ["systemd-tmpfiles", "--clean", str(conf)], capture_output=True, text=True, check=False
        )
        assert run.returncode == 0, run.stderr
        assert not stray.exists()  # the rule did run
        assert upload.exists() and cached(app.temp_dir, "echo.bin")
        c.close()
    assert os.path.isdir(app.temp_dir)
