"""A fake services API on loopback: answers by (method, path) and remembers what it was sent.

The CLI's and the dashboard's tests drive it; API Gateway's own answer for a path
it does not have is the default.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any]


@dataclass
class Seen:
    """One request the fake API received."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes = b""

    @property
    def body(self) -> Any:
        return json.loads(self.raw) if self.raw else None


Route = Answer | list[Answer] | Callable[[Seen], Answer]


@dataclass
class FakeApi:
    """Answers ``(method, path)`` from ``routes``; a list of answers is served in order."""

    url: str = ""
    routes: dict[tuple[str, str], Route] = field(default_factory=dict)
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


@contextmanager
def serving(fake: FakeApi, prefix: str = "") -> Iterator[FakeApi]:
    """Serve ``fake`` on a free loopback port (its ``url`` ends with ``prefix``)."""

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
            # The registry answers an application with its version as the ETag.
            path = self.path.split("?")[0].removeprefix(prefix)
            if path.startswith("/apps/") and isinstance(body, dict) and "version" in body:
                self.send_header("ETag", f'"{body["version"]}"')
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}{prefix}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
