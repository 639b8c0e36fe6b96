"""Fixtures for the e2e tests: one Gradio app per module where tests only read."""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from tests.e2e.harness import Flow, drive, running_app, stopped_flow


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    """An app that is still serving after the clients are done."""
    with running_app(tmp_path_factory.mktemp("serving")) as app:
        yield Flow(app, drive(app))


@pytest.fixture(scope="module")
def stopped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    """An app stopped with SIGTERM after the clients were done; tests must only read it."""
    with stopped_flow(tmp_path_factory.mktemp("stopped")) as flow:
        yield flow


@pytest.fixture
def stopped_for_prune(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    """Like `stopped`, but the test's own run, so it may delete things."""
    with stopped_flow(tmp_path_factory.mktemp("stopped-prune")) as flow:
        yield flow


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the app's log to every failed e2e test."""
    report = yield
    if report.failed:
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Flow):
                report.sections.append(
                    (f"Gradio app log ({value.app.log_path})", value.app.log_text())
                )
    return report
