"""A real page in headless Chromium (Debian's package, driven by selenium): what a
connected page shows, and its session folder, outlive any prune until it closes."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.e2e.live_harness import LiveApp, gradio_python, live_app, wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
)
GRACE = 6.0
PAGE_TIMEOUT = 60.0
# Gradio notices a closed page only at its next heartbeat write (about every 15 s),
# then grace runs; a cold, loaded machine needs the rest of this bound.
LAPSE_TIMEOUT = 90.0
PRUNE = ("--older-than", "1s", "--orphaned-sessions", "--session-ttl", "1s")


@pytest.fixture(params=["6", "5"], ids=["gradio6", "gradio5"])
def python(request: pytest.FixtureRequest) -> str:
    return gradio_python(str(request.param))


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Headless Chromium with a fresh profile; never downloads a browser or a driver."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip("no chromium/chromium-driver (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium manager: use what is given
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    try:
        yield driver
    finally:
        with contextlib.suppress(Exception):  # the test may have closed it already
            driver.quit()


def draw(driver: Any, app: LiveApp) -> tuple[str, Path]:
    """Open the page, press Draw; the image's URL and its file in Gradio's cache."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(app.url)
    wait = WebDriverWait(driver, PAGE_TIMEOUT)
    wait.until(lambda d: d.find_element(By.ID, "draw").is_enabled())
    driver.find_element(By.ID, "draw").click()

    def shown(d: Any) -> str | None:
        for img in d.find_elements(By.CSS_SELECTOR, "#picture img"):
            src = img.get_attribute("src") or ""
            if "file=" in src:
                return str(src)
        return None

    src = str(wait.until(shown))
    return src, Path(unquote(src.split("file=", 1)[1]))


def loads(driver: Any, src: str) -> int:
    status: int = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {cache: 'no-store'}).then(r => done(r.status), () => done(0));",
        src,
    )
    return status


def test_a_connected_page_keeps_its_image_and_session(
    tmp_path: Path, python: str, browser: Any
) -> None:
    with live_app(tmp_path / "run", python, grace=f"{GRACE:g}s") as app:
        src, image = draw(browser, app)
        assert wait_for(lambda: len(os.listdir(app.sessions)) == 1, 20)
        (session,) = app.sessions.iterdir()
        assert image.is_file() and image.is_relative_to(app.temp_dir)

        time.sleep(GRACE + 1.5)  # past grace since the last event: the page still holds it
        _, doc = app.prune(*PRUNE)
        assert session.is_dir() and image.is_file(), doc
        assert loads(browser, src) == 200

        # The browser closes; its heartbeat drops. (Not about:blank: after an event,
        # Chromium keeps a Gradio 5.50 page's heartbeat open when it navigates away.)
        closing = time.monotonic()  # the page cannot be gone before this
        browser.quit()

        def pruned() -> bool:
            app.prune(*PRUNE)
            return not session.exists() and not image.exists()

        assert wait_for(pruned, LAPSE_TIMEOUT, step=1.0), app.log_text()
        assert time.monotonic() - closing >= GRACE
