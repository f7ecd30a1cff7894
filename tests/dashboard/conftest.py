"""The dashboard under test: a fake services API, the server around the CLI's client,
and Debian's chromium driven by Playwright (headless, never a downloaded browser)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from bluegreen_cli.api import ApiClient, Signer
from bluegreen_cli.dashboard.server import DashboardServer

from tests.fake_api import FakeApi, serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--no-first-run",
]


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
    """A browser page with every request it made and every script error it raised."""

    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    """A fresh page at a laptop's size."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    opened = Tab(context.new_page())
    opened.page.on("request", lambda request: opened.requests.append(request.url))
    opened.page.on("pageerror", lambda error: opened.errors.append(str(error)))
    opened.page.set_default_timeout(15_000)
    yield opened
    context.close()
