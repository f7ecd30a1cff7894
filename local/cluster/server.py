"""HTTP/1.1 glue: a threaded loopback server speaking JSON and chunked watch streams."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from local.cluster.api import KubeApi, Reply, Request
from local.cluster.errors import ApiError
from local.cluster.faults import Faults


class RecordedRequest(NamedTuple):
    """One API request as the emulator saw it (the control path is not recorded)."""

    method: str
    path: str
    query: dict[str, str]


class ClusterHttpServer(ThreadingHTTPServer):
    """Threaded server that can cut every open connection when it stops."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    # Many clients connect at once in concurrency tests; a short backlog drops their SYNs.
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        api: KubeApi,
        faults: Faults,
        control: Callable[[Request], Reply],
        record: Callable[[RecordedRequest], None],
        stopping: threading.Event,
    ) -> None:
        self.api = api
        self.faults = faults
        self.control = control
        self.record = record
        self.stopping = stopping
        self.verbose = False
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request is routine; anything else is still printed."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Shut down keep-alive and streaming connections so their threads end."""
        with self.connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self.connections.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body
    # waits for the client's delayed ACK (~40 ms a request on keep-alive).
    disable_nagle_algorithm = True
    server: ClusterHttpServer
    server_version = "eks-bluegreen-emulator"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet unless the server is verbose (``python -m local.cluster --verbose``)."""
        if self.server.verbose:
            accept = self.headers.get("Accept", "") if self.headers else ""
            content = self.headers.get("Content-Type", "") if self.headers else ""
            print(f"{format % args} accept={accept!r} content-type={content!r}", flush=True)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        if request.path.startswith("/_emulator"):
            self._send(self.server.control(request))
            return
        self.server.record(RecordedRequest(request.method, request.path, dict(request.query)))
        hang = self.server.faults.hang_for(request.method, request.path)
        if hang and self.server.stopping.wait(hang):
            self.close_connection = True
            return
        failure: ApiError | None = self.server.faults.failure_for(request.method, request.path)
        if failure is not None:
            self._send(Reply(failure.code, failure.status(), headers=dict(failure.headers)))
            return
        self._send(self.server.api.handle(request))

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Cache-Control", "no-cache, private")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.stream is None:
                payload = b"" if self.command == "HEAD" else reply.payload()
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            for chunk in reply.stream:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True
            if reply.stream is not None:
                close = getattr(reply.stream, "close", None)
                if close:
                    close()


def json_reply(status: int, body: Any) -> Reply:
    """A JSON reply for the control path."""
    return Reply(status, json.loads(json.dumps(body)))
