"""The dashboard's HTTP server: loopback only, the page's files, the API's calls.

It binds 127.0.0.1 and nothing else: the page acts with the operator's own AWS
credentials, so no other machine may reach it. A page of another site open in
the same browser must not drive it either, so

- a request whose ``Host`` is not this server's loopback address is refused
  (a DNS name rebound to 127.0.0.1 cannot read or call it);
- every ``/api/`` call carries a token that only the page served here knows
  (another origin cannot read it, and a custom header is never sent across
  origins without a CORS preflight, which this server never grants);
- the ``Content-Security-Policy`` lets the page load and call nothing but this
  server: no CDN, no font, no script from anywhere else.
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bluegreen_cli.api import ApiClient
from bluegreen_cli.dashboard import page
from bluegreen_cli.dashboard.forwarding import Answer, forward
from bluegreen_cli.errors import CliError

HOST = "127.0.0.1"
CALL_HEADER = "X-Bluegreen-Dashboard"
"""Carries the token the page was served with; only that page can send it."""
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class DashboardServer:
    """Serves the page on ``127.0.0.1:port`` and forwards its calls through ``client``."""

    def __init__(self, client: ApiClient, port: int) -> None:
        self.client = client
        self.token = secrets.token_urlsafe(24)
        try:
            self._httpd = _Server((HOST, port), _Handler)
        except OSError as exc:
            raise CliError(
                f"cannot serve the dashboard on {HOST}:{port} ({exc.strerror or exc}): "
                "pick another port with --port"
            ) from None
        self._httpd.dashboard = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def address(self) -> tuple[str, int]:
        """Where the listening socket is bound."""
        host, port = self._httpd.socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def start(self) -> DashboardServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.1,), name="dashboard", daemon=True
        )
        self._thread.start()
        return self

    def wait(self) -> None:
        """Block until ``stop`` (or Ctrl-C in the calling thread)."""
        while self._thread is not None and self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def allowed_hosts(self) -> set[str]:
        return {f"{HOST}:{self.port}", f"localhost:{self.port}"}

    def first_view(self, app: str | None = None) -> dict[str, Answer]:
        """The answers the page is first drawn from (of ``app``, else of the default
        application), asked for side by side."""
        calls = page.initial_calls(app)
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = {
                name: pool.submit(forward, self.client, "GET", target)
                for name, target in calls.items()
            }
            return {name: future.result() for name, future in futures.items()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    address_family = socket.AF_INET
    dashboard: DashboardServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A tab closed while its poll was answered: nothing went wrong on this side.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "bluegreen-dashboard"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the page polls every two seconds: an access log would drown the terminal

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        dashboard = self.server.dashboard
        raw = self._read_body()
        if raw is None:
            return
        if self.headers.get("Host", "") not in dashboard.allowed_hosts():
            self._json(
                HTTPStatus.MISDIRECTED_REQUEST,
                {"error": "WrongHost", "detail": f"open the dashboard as {dashboard.url}"},
            )
            return
        path = self.path
        where, _, query = path.partition("?")
        if path.startswith("/api/"):
            self._api(method, path.removeprefix("/api"), raw)
        elif method != "GET":
            self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "MethodNotAllowed", "detail": path})
        elif where in ("/", "/index.html"):
            # ``?app=checkout``: a shared link or a reload shows that application.
            app = page.app_in_query(query)
            initial = dashboard.first_view(app)
            body = page.render_index(
                dashboard.token,
                dashboard.client.endpoint,
                initial,
                app,
                dashboard.client.app,
            )
            self._send(HTTPStatus.OK, body, "text/html; charset=utf-8", cache=False)
        elif path.startswith("/assets/") and path.removeprefix("/assets/") in page.ASSET_TYPES:
            name = path.removeprefix("/assets/")
            self._send(HTTPStatus.OK, page.asset(name), page.ASSET_TYPES[name], cache=True)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": "NotFound", "detail": f"no page {path}"})

    def _api(self, method: str, target: str, raw: bytes) -> None:
        dashboard = self.server.dashboard
        if not secrets.compare_digest(self.headers.get(CALL_HEADER, ""), dashboard.token):
            self._json(
                HTTPStatus.FORBIDDEN,
                {
                    "error": "NotThePage",
                    "detail": "API calls are accepted from the dashboard's own page only",
                },
            )
            return
        if method == "POST" and raw and not _is_json(self.headers.get("Content-Type", "")):
            self._json(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                {"error": "UnsupportedContentType", "detail": "send the body as application/json"},
            )
            return
        answer = forward(dashboard.client, method, target, raw)
        if isinstance(answer.body, dict | list) or answer.body is None:
            self._json(answer.status, answer.body)
        else:
            self._send(answer.status, str(answer.body).encode(), "text/plain; charset=utf-8")

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > 1024 * 1024:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "BadRequest", "detail": "Content-Length"})
            return None
        return self.rfile.read(length) if length else b""

    def _json(self, status: int, body: object) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self._send(status, data, "application/json")

    def _send(self, status: int, data: bytes, content_type: str, *, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "max-age=300" if cache else "no-store")
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "application/json"
