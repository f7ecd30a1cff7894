"""A local API Gateway (REST API, Lambda proxy integration) in front of ``services_api``.

Each HTTP request becomes the proxy event API Gateway would send: ``resource``
and ``pathParameters`` from the API's routes (read from ``template.yaml``), the
query string and headers both single- and multi-valued, the body as text (or
base64), and a ``requestContext`` with the stage, a request id and the caller's
``identity`` (``userArn`` from the access key in the SigV4 ``Authorization``
header, ``sourceIp`` from the client). The handler's answer is written back as
API Gateway writes it; an answer that is not a proxy response, or an exception,
becomes API Gateway's own ``502 {"message": "Internal server error"}``, and a
path or method the API does not define gets its ``403 Missing Authentication
Token``, so the local endpoint fails where the deployed one would.

Not emulated: signature verification (any access key is believed, unsigned
requests are let through with an empty identity), throttling, payload limits,
the 29 s integration timeout.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

ProxyHandler = Callable[[dict[str, Any], Any], Any]
"""A Lambda handler taking a REST proxy event and a context."""

ControlPath = Callable[[bytes], tuple[int, Any]]
"""A local-only path: request body in, (status, JSON-able answer) out."""

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


@dataclass(frozen=True)
class Route:
    """One resource + method of the REST API, e.g. ``GET /deployments/{id}``."""

    method: str
    resource: str

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when ``method path`` is this route, else None."""
        if self.method not in ("ANY", method):
            return None
        return match_resource(self.resource, path)


def match_resource(resource: str, path: str) -> dict[str, str] | None:
    """Match ``path`` against a resource template (``{name}`` and greedy ``{name+}``)."""
    want = [part for part in resource.strip("/").split("/") if part]
    have = [part for part in path.strip("/").split("/") if part]
    params: dict[str, str] = {}
    for index, part in enumerate(want):
        if part.startswith("{") and part.endswith("+}"):
            if index >= len(have):
                return None
            params[part[1:-2]] = "/".join(unquote(p) for p in have[index:])
            return params
        if index >= len(have):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = unquote(have[index])
        elif part != have[index]:
            return None
    return params if len(want) == len(have) else None


DEFAULT_ROUTES = (
    Route("GET", "/services"),
    Route("POST", "/services"),
    Route("POST", "/rollback"),
    Route("POST", "/promote"),
    Route("GET", "/images"),
    Route("GET", "/deployments"),
    Route("GET", "/deployments/{id}"),
)


def routes_from_template(
    template: Path = _TEMPLATE, function: str = "services_api"
) -> tuple[Route, ...]:
    """The ``Api`` events of the function whose ``CodeUri`` ends in ``function``.

    Falls back to the documented routes when the template is missing or defines
    none, so the endpoint also works on a tree that is being built.
    """
    from local.aws import load_template

    try:
        document = load_template(template)
    except (OSError, ValueError):
        return DEFAULT_ROUTES
    except Exception:  # yaml.YAMLError: a template being edited is not fatal here
        return DEFAULT_ROUTES
    routes: list[Route] = []
    resources = document.get("Resources", {}) if isinstance(document, dict) else {}
    for resource in resources.values():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties") or {}
        code_uri = str(properties.get("CodeUri", "")).rstrip("/")
        if not code_uri.endswith(function):
            continue
        for event in (properties.get("Events") or {}).values():
            if not isinstance(event, dict) or event.get("Type") != "Api":
                continue
            spec = event.get("Properties") or {}
            path, method = spec.get("Path"), spec.get("Method")
            if isinstance(path, str) and isinstance(method, str):
                routes.append(Route(method.upper(), path))
    return tuple(routes) or DEFAULT_ROUTES


@dataclass(frozen=True)
class Stage:
    """The deployed API this endpoint stands in for."""

    account: str = "123456789012"
    region: str = "us-west-2"
    api_id: str = "local0api1"
    stage: str = "Prod"

    @property
    def domain_name(self) -> str:
        return f"{self.api_id}.execute-api.{self.region}.amazonaws.com"


def access_key_of(authorization: str | None) -> str | None:
    """The access key id of a SigV4 ``Authorization`` header, if it is one."""
    if not authorization or not authorization.startswith("AWS4-HMAC-SHA256"):
        return None
    match = _CREDENTIAL.search(authorization)
    return match.group(1) if match else None


def default_identity(stage: Stage, access_key: str) -> dict[str, Any]:
    """The IAM identity API Gateway reports for an access key: an IAM user of the account."""
    return {
        "accountId": stage.account,
        "caller": access_key,
        "user": access_key,
        "userArn": f"arn:aws:iam::{stage.account}:user/{access_key}",
    }


@dataclass
class HttpRequest:
    """An HTTP request as received, before translation."""

    method: str
    target: str  # path and query string, as on the request line
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"


def proxy_event(
    request: HttpRequest,
    route: Route,
    path_parameters: Mapping[str, str],
    stage: Stage,
    *,
    identity_for: Callable[[Stage, str], dict[str, Any]] = default_identity,
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The REST API proxy event API Gateway sends the Lambda for ``request``."""
    now = now or datetime.now(UTC)
    request_id = request_id or str(uuid.uuid4())
    split = urlsplit(request.target)
    path = unquote(split.path) or "/"

    headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in [*request.headers, *_added_headers(request, stage, now)]:
        existing = next((k for k in multi_headers if k.lower() == name.lower()), name)
        multi_headers.setdefault(existing, []).append(value)
        headers[existing] = value

    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(split.query, keep_blank_values=True):
        multi_query.setdefault(key, []).append(value)
        query[key] = value

    header_lookup = {k.lower(): v for k, v in headers.items()}
    access_key = access_key_of(header_lookup.get("authorization"))
    identity: dict[str, Any] = {
        "accessKey": access_key,
        "accountId": None,
        "caller": None,
        "cognitoAuthenticationProvider": None,
        "cognitoAuthenticationType": None,
        "cognitoIdentityId": None,
        "cognitoIdentityPoolId": None,
        "principalOrgId": None,
        "sourceIp": request.source_ip,
        "user": None,
        "userAgent": header_lookup.get("user-agent"),
        "userArn": None,
    }
    if access_key:
        identity.update(identity_for(stage, access_key))

    body, is_base64 = _body(request.body)
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": stage.account,
            "apiId": stage.api_id,
            "domainName": stage.domain_name,
            "domainPrefix": stage.api_id,
            "extendedRequestId": base64.b32encode(uuid.uuid4().bytes)[:16].decode(),
            "httpMethod": request.method,
            "identity": identity,
            "path": f"/{stage.stage}{path}",
            "protocol": request.protocol,
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourceId": _resource_id(route.resource),
            "resourcePath": route.resource,
            "stage": stage.stage,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def _added_headers(request: HttpRequest, stage: Stage, now: datetime) -> list[tuple[str, str]]:
    """Headers API Gateway's front end adds before the integration sees the request."""
    present = {name.lower() for name, _ in request.headers}
    trace = f"Root=1-{int(now.timestamp()):08x}-{uuid.uuid4().hex[:24]}"
    added = [
        ("X-Forwarded-For", request.source_ip),
        ("X-Forwarded-Port", "443"),
        ("X-Forwarded-Proto", "https"),
        ("X-Amzn-Trace-Id", trace),
    ]
    added = [(name, value) for name, value in added if name.lower() not in present]
    if "host" not in present:
        added.append(("Host", stage.domain_name))
    return added


def _resource_id(resource: str) -> str:
    # Stable per resource, as a deployed API's resource ids are.
    return hashlib.sha256(resource.encode()).hexdigest()[:6]


def _body(raw: bytes) -> tuple[str | None, bool]:
    if not raw:
        return None, False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), True


@dataclass(frozen=True)
class HttpResponse:
    """What goes back on the wire."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def gateway_error(status: int, message: str, request_id: str) -> HttpResponse:
    """An answer API Gateway itself produces (``{"message": ...}``)."""
    return HttpResponse(
        status,
        [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            (
                "x-amzn-ErrorType",
                "ForbiddenException" if status == 403 else "InternalServerErrorException",
            ),
        ],
        json.dumps({"message": message}).encode(),
    )


def http_response(result: Any, request_id: str) -> HttpResponse:
    """Translate a Lambda proxy response; anything malformed is API Gateway's 502."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        return gateway_error(502, "Internal server error", request_id)
    status = result["statusCode"]
    if not 100 <= status <= 599:
        return gateway_error(502, "Internal server error", request_id)
    headers: list[tuple[str, str]] = []
    single = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return gateway_error(502, "Internal server error", request_id)
    for name, values in multi.items():
        for value in values if isinstance(values, list) else [values]:
            headers.append((str(name), str(value)))
    listed = {name.lower() for name, _ in headers}
    headers += [(str(k), str(v)) for k, v in single.items() if str(k).lower() not in listed]
    body = result.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        return gateway_error(502, "Internal server error", request_id)
    elif result.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except ValueError:
            return gateway_error(502, "Internal server error", request_id)
    else:
        data = body.encode()
    headers.append(("x-amzn-RequestId", request_id))
    return HttpResponse(status, headers, data)


@dataclass
class LocalApiGateway:
    """An HTTP server on loopback that stands in for the REST API stage.

    ``handler`` is called for every request matching ``routes``, one at a time,
    as a single warm Lambda instance would serve them. ``control_paths`` are
    local-only ``POST`` paths (``/_local/...``) that a deployed API never serves.
    """

    handler: ProxyHandler
    routes: tuple[Route, ...] = DEFAULT_ROUTES
    stage: Stage = field(default_factory=Stage)
    host: str = "127.0.0.1"
    port: int = 3000
    control_paths: dict[str, ControlPath] = field(default_factory=dict)
    identity_for: Callable[[Stage, str], dict[str, Any]] = default_identity
    access_log: Callable[[str], None] | None = None
    context_factory: Callable[[str], Any] | None = None
    _server: ThreadingHTTPServer | None = field(default=None, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _invoke_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def url(self) -> str:
        """``http://host:port`` of the running endpoint."""
        if self._server is None:
            raise RuntimeError("the API endpoint is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalApiGateway:
        """Bind (port 0 picks a free one) and serve in a daemon thread."""
        gateway = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "local-apigateway"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = HttpRequest(
                    method=self.command,
                    target=self.path,
                    headers=list(self.headers.items()),
                    body=self.rfile.read(length) if length > 0 else b"",
                    source_ip=self.client_address[0],
                    protocol=self.request_version,
                )
                started = time.monotonic()
                response = gateway.respond(request)
                self.send_response(response.status)
                for name, value in response.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)
                if gateway.access_log is not None:
                    took = (time.monotonic() - started) * 1000
                    gateway.access_log(
                        f"{request.source_ip} {request.method} {request.target} "
                        f"{response.status} {took:.0f}ms"
                    )

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Silenced: the access log above says what matters."""

        self._server = ThreadingHTTPServer((self.host, self.port), RequestHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="local-apigateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LocalApiGateway:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def respond(self, request: HttpRequest) -> HttpResponse:
        """The answer to one request: a control path, the handler, or a gateway error."""
        request_id = str(uuid.uuid4())
        path = urlsplit(request.target).path
        control = self.control_paths.get(path)
        if control is not None:
            return self._control(control, request, request_id)
        for route in self.routes:
            params = route.match(request.method, path)
            if params is not None:
                break
        else:
            return gateway_error(403, "Missing Authentication Token", request_id)
        event = proxy_event(
            request,
            route,
            params,
            self.stage,
            identity_for=self.identity_for,
            request_id=request_id,
        )
        context = self.context_factory(request_id) if self.context_factory else None
        try:
            # One warm instance: Powertools' resolver keeps the current event on
            # a module-level object, so concurrent calls must not interleave.
            with self._invoke_lock:
                result = self.handler(event, context)
        except Exception:
            # What CloudWatch Logs would hold for a deployed function: the traceback.
            sys.stderr.write(f"handler raised (request {request_id}):\n{traceback.format_exc()}")
            return gateway_error(502, "Internal server error", request_id)
        return http_response(result, request_id)

    def _control(self, control: ControlPath, request: HttpRequest, request_id: str) -> HttpResponse:
        if request.method != "POST":
            return _json_response(
                405, {"error": "MethodNotAllowed", "detail": "use POST"}, request_id
            )
        try:
            status, payload = control(request.body)
        except Exception as exc:
            payload = {"error": type(exc).__name__, "detail": str(exc)}
            return _json_response(500, payload, request_id)
        return _json_response(status, payload, request_id)


def _json_response(status: int, payload: Any, request_id: str) -> HttpResponse:
    body = json.dumps(payload, default=str).encode()
    return HttpResponse(
        status, [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)], body
    )


def routes_table(routes: Iterable[Route]) -> str:
    """``METHOD resource`` lines, for the stack's banner."""
    return "\n".join(f"{route.method:6} {route.resource}" for route in routes)


__all__ = [
    "DEFAULT_ROUTES",
    "HttpRequest",
    "HttpResponse",
    "LocalApiGateway",
    "Route",
    "Stage",
    "access_key_of",
    "http_response",
    "match_resource",
    "proxy_event",
    "routes_from_template",
]
