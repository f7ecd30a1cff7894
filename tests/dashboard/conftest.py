"""The dashboard under test: a fake services API, the server around the CLI's client,
and Debian's chromium driven by Playwright (headless, never a downloaded browser)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from bluegreen_cli.api import ApiClient, Signer
from bluegreen_cli.dashboard.server import DashboardServer

from scripts.dashboard_screenshot import CHROMIUM, CHROMIUM_ARGS, VIEWPORT
from tests.fake_api import FakeApi, serving

FAILED_LOAD = r"Failed to load resource: the server responded with a status of (\d{3}) .*"


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    with serving(FakeApi(), "/v1") as fake:
        yield fake


@pytest.fixture
def dashboard_for() -> Iterator[Callable[[str], DashboardServer]]:
    """Start a dashboard (free port) forwarding to an endpoint, signed with the test keys."""
    started: list[DashboardServer] = []

    def start(endpoint: str) -> DashboardServer:
        server = DashboardServer(ApiClient(endpoint, Signer("us-west-2"), timeout=30), 0).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, launched once for the whole suite."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make chromium` installs Debian's package"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@dataclass
class Tab:
    """A browser page with every request it made and every error it raised: uncaught
    exceptions of its scripts and the messages logged to its console as errors."""

    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refusals: set[tuple[str, int]] = field(default_factory=set)

    def expect_refusal(self, path: str, status: int) -> None:
        """A call to ``path`` (``/api/...``) that the test makes the API refuse with
        ``status``: chromium logs every such answer as a console error, which the page
        itself handles (it shows the API's error), so that one line is no error."""
        self.refusals.add((path, status))

    def console(self, message: Any) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        loaded = re.fullmatch(FAILED_LOAD, message.text)
        if loaded and (urlsplit(url).path, int(loaded[1])) in self.refusals:
            return
        at = f" ({url}:{message.location.get('lineNumber')})" if url else ""
        self.errors.append(f"console error: {message.text}{at}")

    def exception(self, error: Any) -> None:
        self.errors.append(f"uncaught {error.stack or f'{error.name}: {error.message}'}")


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    """A fresh page at a laptop's size. Any error the page raised fails the test that
    used it, whatever the test asserted, with the errors in the failure message."""
    context = browser.new_context(viewport=VIEWPORT)
    opened = Tab(context.new_page())
    opened.page.on("request", lambda request: opened.requests.append(request.url))
    opened.page.on("pageerror", opened.exception)
    opened.page.on("console", opened.console)
    opened.page.set_default_timeout(15_000)
    yield opened
    context.close()
    if opened.errors:
        pytest.fail(
            f"the page raised {len(opened.errors)} error(s):\n" + "\n".join(opened.errors),
            pytrace=False,
        )
