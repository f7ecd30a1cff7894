"""The dashboard under test: a fake services API, the server around the CLI's client,
and Debian's chromium driven by Playwright (headless, never a downloaded browser)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from bluegreen_cli.api import ApiClient, Signer
from bluegreen_cli.dashboard.server import DashboardServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--no-first-run",
]

Answer = tuple[int, Any]
Route = Answer | Callable[["Seen"], Answer]


@dataclass
class Seen:
    """One request the fake API received."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw) if self.raw else None


@dataclass
class FakeApi:
    """Answers ``(method, path without query)`` from ``routes``, as API Gateway would."""

    url: str = ""
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def answer(self, request: Seen) -> Answer:
        route = self.routes.get((request.method, request.path.split("?")[0]))
        if route is None:
            return 403, {"message": "Missing Authentication Token"}
        return route(request) if callable(route) else route


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Seen(self.command, self.path, dict(self.headers.items()), raw)
            fake.seen.append(request)
            status, body = fake.answer(request)
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield fake
    server.shutdown()
    server.server_close()


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
