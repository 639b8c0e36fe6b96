"""Ages and roles against real Gradio apps: 6.x from this venv, 5.x from GRADIO5_PYTHON.

`.ci/run` makes a second venv with Gradio 5.50 and exports GRADIO5_PYTHON; where it is
unset (the README's test command on a fresh machine) the 5.x cases skip.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from gradio_clean.classify import Role
from gradio_clean.roots import detect_role
from tests.e2e.harness import CALL_TIMEOUT, GradioApp, run_cli, running_app, stopped_flow

pytestmark = pytest.mark.e2e

ASSET_APP = Path(__file__).with_name("asset_app.py")
GRADIO5 = os.environ.get("GRADIO5_PYTHON")
VERSIONS = [
    pytest.param(None, id="gradio6"),
    pytest.param(
        GRADIO5,
        id="gradio5",
        marks=pytest.mark.skipif(not GRADIO5, reason="GRADIO5_PYTHON is not set (see .ci/run)"),
    ),
]
DAY = 86400
FILE_URL = re.compile(r'"url": ?"(http://127\.0\.0\.1:\d+/gradio_api/file=[^"]+)"')


def file_path(url: str) -> Path:
    return Path(unquote(url.split("/gradio_api/file=", 1)[1]))


def call(http: httpx.Client, app: GradioApp, api_name: str) -> str:
    """The REST call API (the same on 5.x and 6.x): what the endpoint returned, as text."""
    started = http.post(f"{app.url}gradio_api/call/{api_name}", json={"data": []})
    started.raise_for_status()
    event = started.json()["event_id"]
    result = http.get(f"{app.url}gradio_api/call/{api_name}/{event}")
    result.raise_for_status()
    assert "event: complete" in result.text, result.text
    return result.text


@pytest.fixture(params=VERSIONS)
def asset_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GradioApp]:
    with running_app(tmp_path, ASSET_APP, request.param) as app:
        yield app


def test_every_url_handed_out_still_answers_after_an_outside_prune(
    asset_app: GradioApp, tmp_path: Path
) -> None:
    """An old asset served as an output and as an example, then `prune --older-than 7d`."""
    app = asset_app
    with httpx.Client(trust_env=False, timeout=CALL_TIMEOUT) as http:
        page = http.get(app.url + "config").text
        urls = [*FILE_URL.findall(page), *FILE_URL.findall(call(http, app, "asset"))]
        copies = {file_path(u).name for u in urls}
        assert copies == {"old-example.png", "old-asset.png"}, urls
        assert all(file_path(u).parent.parent == app.temp_dir for u in urls)
        assert [http.get(u).status_code for u in urls] == [200, 200]

        # What mtime alone says of these copies (Gradio 5 keeps the source's, 30 days).
        args = ["prune", str(app.temp_dir), "--older-than", "7d", "--json"]
        _, by_mtime = run_cli(*args, "--age-by", "mtime", temp_dir=app.temp_dir, cwd=tmp_path)
        mtime_planned = {os.path.basename(a["path"]) for a in by_mtime["actions"]}
        old = {p.name for p in map(file_path, urls) if p.stat().st_mtime < time.time() - 7 * DAY}
        assert mtime_planned == {file_path(u).parent.name for u in urls if file_path(u).name in old}
        if GRADIO5 and app.python == GRADIO5:
            assert old == copies  # the case the issue saw: mtime would delete both

        _, doc = run_cli(*args, "--apply", temp_dir=app.temp_dir, cwd=tmp_path)
        assert [http.get(u).status_code for u in urls] == [200, 200]
        assert doc["actions"] == [], doc["actions"]
        assert doc["rules"]["age_by"] == "newest"


def abort_upload(app: GradioApp, sent: int) -> None:
    """A client that goes away mid-upload: `sent` bytes of a larger file, then close."""
    boundary = "gradio-clean-e2e"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="files"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    request = (
        f"POST /gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + 4 * sent}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", app.port), timeout=CALL_TIMEOUT) as s:
        s.sendall(request + head + b"x" * sent)
        time.sleep(0.5)


def leftovers(folder: Path, size: int, timeout: float = 10.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    while True:
        found = [p for p in folder.glob("tmp*") if p.stat().st_size >= size]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_an_aborted_upload_is_a_leftover_where_gradio_left_it(
    asset_app: GradioApp, tmp_path: Path
) -> None:
    """≤ 5.50: in the app's TMPDIR (given as a root of its own); 6.31: inside the cache."""
    app = asset_app
    sent = 1 << 20
    abort_upload(app, sent)
    where = app.sys_tmp if app.python == GRADIO5 else app.temp_dir
    found = leftovers(where, sent)
    assert len(found) == 1, sorted(os.listdir(where))
    _, doc = run_cli("scan", "--json", str(where), temp_dir=app.temp_dir, cwd=tmp_path)
    root = doc["roots"][0]
    assert root["role"] == "temp", root["role_reason"]
    assert root["categories"]["leftover"]["files"] == 1
    assert root["categories"]["leftover"]["bytes"] >= sent


# -- roles on real caches and app folders ----------------------------------------------


@pytest.mark.parametrize("python", VERSIONS)
def test_real_caches_and_app_dirs_get_their_roles(
    python: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By evidence alone (GRADIO_TEMP_DIR points elsewhere): 100% right, or it fails."""
    expected: dict[Path, Role] = {}
    with stopped_flow(tmp_path / "flow", python) as flow:
        app = flow.app
        expected.update(
            {
                app.temp_dir: Role.TEMP,  # hash folders, tmp* placeholders, vibe_edit_history
                app.base / "client-tmp": Role.TEMP,  # gradio_client's empty 40-hex folders
                app.app_dir: Role.APP,  # app.py, .gradio/, session folders
                app.base / "inputs": Role.APP,  # a user's own files
            }
        )
        checked = check_roles(expected)
    with running_app(tmp_path / "assets", ASSET_APP, python) as app:
        checked += check_roles({app.temp_dir: Role.TEMP, app.app_dir: Role.APP})
    assert checked == 6


def check_roles(expected: dict[Path, Role]) -> int:
    wrong: list[Any] = []
    for folder, role in expected.items():
        got, why = detect_role(str(folder))
        if got is not role:
            wrong.append((str(folder), got, why, sorted(os.listdir(folder))[:10]))
    assert not wrong, wrong
    return len(expected)
