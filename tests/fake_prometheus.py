"""Prometheus' instant query API on loopback, answering what a test tells it to.

A test sets one answer per kind of query the analysis asks (``requests``,
``error_ratio``, ``p99``, told apart by what the default queries read) and reads
back every request the provider sent: path, headers and form fields.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any]
"""An HTTP status and the body: a JSON document, or bytes sent as they are."""


def series(*values: float | str) -> Answer:
    """A vector answer with one series per value (``"NaN"`` is Prometheus' NaN)."""
    result = [{"metric": {}, "value": [1_800_000_000.0, str(value)]} for value in values]
    return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}


def no_series() -> Answer:
    return series()


def bad_data(message: str) -> Answer:
    """What Prometheus answers to a query it cannot parse."""
    return 400, {"status": "error", "errorType": "bad_data", "error": message}


def kind_of(query: str) -> str:
    """Which of the analysis' queries this is, by what it reads."""
    if "histogram_quantile" in query:
        return "p99"
    if 'code=~"5.."' in query:
        return "error_ratio"
    return "requests"


@dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class FakePrometheus:
    """The fake server; ``answers`` maps a kind of query to its answer (or a function of
    the query text)."""

    answers: dict[str, Answer | Callable[[str], Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                text = self.rfile.read(length).decode()
                self._answer(text)

            def do_GET(self) -> None:
                self._answer(urllib.parse.urlsplit(self.path).query)

            def _answer(self, text: str) -> None:
                form = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
                fake.seen.append(Seen(self.command, self.path, dict(self.headers.items()), form))
                answer = fake.answers.get(kind_of(form.get("query", "")), no_series())
                status, body = answer(form.get("query", "")) if callable(answer) else answer
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def queries(self) -> dict[str, Seen]:
        """The last request of each kind of query."""
        return {kind_of(seen.form.get("query", "")): seen for seen in self.seen}

    def __enter__(self) -> FakePrometheus:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
