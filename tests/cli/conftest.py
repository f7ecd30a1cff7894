"""A small fake services API on loopback, and a runner for the ``bluegreen`` command line."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from bluegreen_cli.main import main

Answer = tuple[int, Any]


@dataclass
class Seen:
    """One request the fake API received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""


@dataclass
class FakeApi:
    """Answers ``(method, path)`` from ``routes``; a list of answers is served in order."""

    url: str = ""
    routes: dict[tuple[str, str], Answer | list[Answer] | Callable[[Seen], Answer]] = field(
        default_factory=dict
    )
    seen: list[Seen] = field(default_factory=list)

    def answer(self, request: Seen) -> Answer:
        route = self.routes.get((request.method, request.path.split("?")[0]))
        if route is None:
            return 403, {"message": "Missing Authentication Token"}
        if callable(route):
            return route(request)
        if isinstance(route, list):
            return route.pop(0) if len(route) > 1 else route[0]
        return route


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Seen(
                self.command,
                self.path,
                dict(self.headers.items()),
                json.loads(raw) if raw else None,
                raw,
            )
            fake.seen.append(request)
            status, body = fake.answer(request)
            data = json.dumps(body).encode()
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
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No endpoint from the host: no env variable, no running local stack."""
    monkeypatch.delenv("BLUEGREEN_ENDPOINT", raising=False)
    monkeypatch.setenv("BLUEGREEN_LOCAL_STATE", str(tmp_path / "no-stack.json"))


@pytest.fixture
def bluegreen() -> Callable[..., Run]:
    """Run the command line in-process; returns exit code, stdout and stderr."""

    def run(*argv: str) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), out=out, err=err)
        return Run(code, out.getvalue(), err.getvalue())

    return run
