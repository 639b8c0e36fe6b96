"""The size budget on a real Gradio app's cache (6.x here, 5.x with $GRADIO5_PYTHON):
`prune --max-size` from another process while the app serves, and attach(max_size=…)
inside it, where a running event's files count as the protected remainder."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import handle_file

from tests.e2e.harness import run_cli
from tests.e2e.live_harness import (
    CALL_TIMEOUT,
    LiveApp,
    cached,
    client,
    gradio_python,
    live_app,
    server_url,
    upload_bytes,
    wait_for,
)

pytestmark = pytest.mark.e2e

HOUR = 3600
KIB = 1024
REQUESTS = 6  # finished requests before the outside prune
SIZE = 64 * KIB  # bytes each request uploads (and gets back, in a hash folder of its own)
SLEEP = 12.0  # how long the live event sleeps before it reads its upload
GRACE = 1.0  # seconds a finished API client's files stay marked
BUDGET_TIMEOUT = 30.0  # in-app runs every 2 s: time for a few of them on a loaded machine


@pytest.fixture(params=["6", "5"], ids=["gradio6", "gradio5"])
def python(request: pytest.FixtureRequest) -> str:
    return gradio_python(str(request.param))


def du(path: Path) -> int:
    """Disk usage as the budget counts it: `du -sB1` (allocated blocks, links once)."""
    out = subprocess.run(["du", "-sB1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def status(http: httpx.Client, url: str) -> int:
    return http.get(url).status_code


class Request:
    """One finished /echo call: its upload and output hash folders, and the output URL."""

    def __init__(self, app: LiveApp, tmp_path: Path, name: str, result_of: Any) -> None:
        self.source, self.data = upload_bytes(tmp_path, name, SIZE)
        before = set(cached(app.temp_dir, "echo.bin"))
        result = result_of(handle_file(str(self.source)))
        (output,) = set(cached(app.temp_dir, "echo.bin")) - before
        (upload,) = cached(app.temp_dir, name)
        self.url = server_url(result, app)
        self.folders = {upload.parent, output.parent}

    def backdate(self, when: float) -> None:
        """Last used `when` by mtime: every file in its folders, and the folders."""
        for folder in self.folders:
            for path in (*folder.iterdir(), folder):
                os.utime(path, (when, when), follow_symlinks=False)


def drawn(app: LiveApp, result: Any) -> Path:
    """The hash folder of the image /draw returned."""
    path = Path(result["path"] if isinstance(result, dict) else str(result))
    assert path.parent.parent == app.temp_dir, path
    return path.parent


def test_an_outside_prune_brings_a_serving_apps_cache_under_max_size(
    tmp_path: Path, python: str
) -> None:
    """Issue 9: `prune --max-size` at half of du, while a plain app serves."""
    with live_app(tmp_path / "run", python, attach=False) as app:
        c = client(app, download_files=False)
        echo = lambda f: c.predict(f, 0, api_name="/echo")  # noqa: E731
        requests = [Request(app, tmp_path, f"request-{i}.bin", echo) for i in range(REQUESTS)]
        now = time.time()
        for i, r in enumerate(requests):  # request i was last used REQUESTS - i hours ago
            r.backdate(now - (REQUESTS - i) * HOUR)
        # Oldest first, ties by name: the budget's order for equal last uses.
        lru = [f for r in requests for f in sorted(r.folders, key=lambda p: p.name)]
        disk = {f: du(f) for f in lru}
        usage = du(app.temp_dir)
        budget = usage // 2

        _, doc = run_cli(
            "prune", str(app.temp_dir), "--max-size", str(budget), "--min-age", "0s",
            "--age-by", "mtime", "--apply", "--yes", "--json",
            temp_dir=app.temp_dir, cwd=tmp_path,
        )  # fmt: skip

        (target,) = doc["budget"]["targets"]
        assert (target["rule"], target["usage_bytes"], target["target_bytes"]) == (
            "max-size", usage, budget
        )  # fmt: skip
        assert doc["budget"]["met"] and target["over_bytes"] == 0
        assert {a["rule"] for a in doc["actions"]} == {"max-size"}
        evicted = [Path(a["path"]) for a in doc["actions"]]
        # Exactly the least recently used hash folders, and no more than needed.
        assert set(evicted) == set(lru[: len(evicted)]), (evicted, lru)
        assert usage - sum(disk[f] for f in evicted[:-1]) > budget
        assert not any(f.exists() for f in evicted)
        assert du(app.temp_dir) <= budget

        with httpx.Client(timeout=10.0, trust_env=False) as http:
            kept = [r for r in requests if not r.folders & set(evicted)]
            assert len(kept) >= 2 and kept == requests[-len(kept) :]
            for r in kept:  # the newest requests' files still answer, with their bytes
                response = http.get(r.url)
                assert (response.status_code, response.content) == (200, r.data)
            gone = [r for r in requests if r.folders <= set(evicted)]
            assert gone and all(status(http, r.url) != 200 for r in gone)
            fresh = Request(app, tmp_path, "after.bin", echo)  # and the app serves on
            response = http.get(fresh.url)
            assert (response.status_code, response.content) == (200, fresh.data)
        c.close()
    assert "Traceback" not in app.log_text()


def test_attach_keeps_the_cache_under_max_size_but_spares_a_running_event(
    tmp_path: Path, python: str
) -> None:
    """Issue 10: attach(max_size=…) evicts finished requests' files while the app serves.
    A running event's upload, over the budget on its own and least recently used, stays:
    the younger files of a finished session go instead, and the log says why it is over."""
    budget = 4 * SIZE
    with live_app(
        tmp_path / "run",
        python,
        every="2s",
        max_size=f"{budget // KIB}K",
        min_age="0s",
        grace=f"{GRACE:g}s",
    ) as app:
        c = client(app, download_files=False)
        echo = lambda f: c.predict(f, 0, api_name="/echo")  # noqa: E731
        requests = [Request(app, tmp_path, f"request-{i}.bin", echo) for i in range(4)]

        def under() -> bool:  # a run logs its line once it has deleted: wait for both
            return du(app.temp_dir) <= budget and "gradio-clean: freed" in app.log_text()

        assert wait_for(under, BUDGET_TIMEOUT), app.log_text()
        assert not requests[0].folders & set(app.temp_dir.iterdir())  # the oldest went
        with httpx.Client(timeout=10.0, trust_env=False) as http:
            assert status(http, requests[-1].url) == 200  # the newest fits, and stays

        big, data = upload_bytes(tmp_path, "live.bin", 2 * budget)
        logged = len(app.log_text())
        job = c.submit(handle_file(str(big)), SLEEP, api_name="/echo")
        assert wait_for(lambda: bool(cached(app.temp_dir, "live.bin")), 20)
        (live,) = cached(app.temp_dir, "live.bin")
        # Another session's event, which does not queue behind /echo: newer files.
        other = client(app, download_files=False)
        younger = [drawn(app, other.predict(api_name="/draw")) for _ in range(2)]
        other.close()

        def evicted_instead() -> bool:
            gone = not any(f.exists() for f in younger)
            return gone and "budget not met" in app.log_text()[logged:]

        assert wait_for(evicted_instead, BUDGET_TIMEOUT), app.log_text()[logged:]
        assert live.exists()
        assert not job.done(), "the event ended before the budget evicted the newer files"
        result = job.result(timeout=CALL_TIMEOUT)
        with httpx.Client(timeout=10.0, trust_env=False) as http:
            assert http.get(server_url(result, app)).content == data

        # Once the event is over and grace has passed, the budget takes its files too.
        assert wait_for(lambda: not live.exists(), BUDGET_TIMEOUT), app.log_text()[logged:]
        assert wait_for(lambda: du(app.temp_dir) <= budget, BUDGET_TIMEOUT)
        c.close()
    line = next(x for x in app.log_text()[logged:].splitlines() if "budget not met" in x)
    assert line.startswith("gradio_clean gradio-clean: freed "), line
    assert f"--max-size {budget // KIB}K still " in line and " is in use" in line, line
    assert "Traceback" not in app.log_text()
