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

Every request is checked as API Gateway checks an ``AWS_IAM`` method: no
``Authorization`` header is ``403 Missing Authentication Token``; an unknown
access key, a signature that does not match the request (``verify_sigv4``
recomputes it over the method, path, query, signed headers and body hash), a
credential scoped to another region or service, or a time more than five
minutes off is a ``403`` with API Gateway's own message. The identity the
handler sees is the verified key's IAM user, never a header the caller sent.

Then, as for an ``AWS_IAM`` method, the identity's IAM policies
(``LocalCredential.policies``) must allow ``execute-api:Invoke`` on the
request's method ARN (``arn:aws:execute-api:<region>:<account>:<api-id>/``
``<stage>/<METHOD>/<path>``): an explicit ``Deny`` in any policy wins, else
some policy must ``Allow`` it. Each document is evaluated by moto's IAM policy engine
(``local.iam``, which also resolves the managed policies ``template.yaml``
ships). A caller it does not allow gets API Gateway's ``403
AccessDeniedException`` (``{"Message": "User: <arn> is not authorized to
perform: execute-api:Invoke on resource: <method-arn>"}``, `` with an explicit
deny`` appended when a policy denies it) and the handler is not called. A key
whose ``policies`` is None is not restricted (the tests' keys and the local
stack's own default key).

Not emulated: presigned URLs (``X-Amz-Signature`` in the query), session
tokens, resource policies, IAM condition keys and policy variables (refused by
``local.iam`` rather than misjudged), throttling, payload limits, the 29 s
integration timeout.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

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
    Route("POST", "/deployments/{id}/resume"),
    Route("POST", "/deployments/{id}/abort"),
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
    if not authorization or not authorization.startswith(SIGV4_ALGORITHM):
        return None
    match = _CREDENTIAL.search(authorization)
    return match.group(1) if match else None


# -- SigV4, as API Gateway checks it for AWS_IAM methods ------------------------------

SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
SIGV4_SERVICE = "execute-api"
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far a signature's time may be from the gateway's, either way (API Gateway's limit)."""

MISSING_TOKEN = "Missing Authentication Token"  # noqa: S105 - API Gateway's message
INVALID_TOKEN = "The security token included in the request is invalid."  # noqa: S105
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service "
    "documentation for details."
)


@dataclass(frozen=True)
class LocalCredential:
    """An access key the endpoint knows, and the IAM identity it belongs to."""

    access_key_id: str
    secret_access_key: str
    user_arn: str
    policies: tuple[Mapping[str, Any], ...] | None = field(default=None, hash=False)
    """The identity's IAM policy documents; ``None`` is not restricted (every route).

    ``None`` is what the existing tests and the local stack's own default key use.
    With documents, a route is called only if they allow ``execute-api:Invoke``
    on its method ARN (see ``local.iam``: ``shipped_policies``,
    ``app_operator_policy``). A document moto's engine would not judge as IAM
    does is refused here, when the key is made.
    """

    def __post_init__(self) -> None:
        if self.policies is not None:
            from local.iam import check_identity_policy

            object.__setattr__(self, "policies", tuple(self.policies))
            for document in self.policies:
                check_identity_policy(document)

    def identity(self) -> dict[str, Any]:
        """The ``requestContext.identity`` fields API Gateway fills in for this key's user."""
        fields = self.user_arn.split(":")
        return {
            "accessKey": self.access_key_id,
            "accountId": fields[4] if len(fields) > 5 else None,
            "caller": self.access_key_id,
            "user": self.access_key_id,
            "userArn": self.user_arn,
        }


@dataclass(frozen=True)
class Refused:
    """API Gateway's 403 for a request whose signature it does not accept."""

    error_type: str
    message: str


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, day: str, region: str, service: str = SIGV4_SERVICE) -> bytes:
    """The SigV4 key of one day, region and service, derived from the secret."""
    key = _hmac(f"AWS4{secret}".encode(), day)
    return _hmac(_hmac(_hmac(key, region), service), "aws4_request")


def canonical_uri(raw_path: str) -> str:
    """The path as SigV4 signs it for every service but S3.

    Dot segments and empty segments are removed, then the path, which arrives
    URI-encoded already, is URI-encoded once more.
    """
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    path = "/" + "/".join(segments)
    if raw_path.endswith("/") and segments:
        path += "/"
    return quote(path, safe="/~")


def canonical_query(raw_query: str) -> str:
    """Each name and value percent-decoded, encoded again as SigV4 requires, then sorted."""
    if not raw_query:
        return ""
    pairs = []
    for pair in raw_query.split("&"):
        name, _, value = pair.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _authorization_parts(authorization: str) -> dict[str, str]:
    """``Credential``, ``SignedHeaders`` and ``Signature`` of a SigV4 header."""
    parts: dict[str, str] = {}
    for item in authorization[len(SIGV4_ALGORITHM) :].split(","):
        name, sep, value = item.strip().partition("=")
        if sep:
            parts[name.strip()] = value.strip()
    return parts


def verify_sigv4(
    request: HttpRequest,
    credentials: Mapping[str, LocalCredential],
    region: str,
    now: datetime,
) -> LocalCredential | Refused:
    """The credential that signed ``request``, or API Gateway's reason to refuse it.

    The checks, in API Gateway's order: a SigV4 ``Authorization`` header with its
    three parts and a date; a credential scoped to this region and
    ``execute-api``; a date within five minutes; a known access key (and no
    session token, which the keys here never have); the signature over the
    canonical request (method, path, query, signed headers, body hash).
    """
    headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers.setdefault(name.lower(), []).append(value)
    authorization = ",".join(headers.get("authorization", [])).strip()
    if not authorization:
        return Refused("MissingAuthenticationTokenException", MISSING_TOKEN)
    signed = authorization.startswith(SIGV4_ALGORITHM + " ")
    parts = _authorization_parts(authorization) if signed else {}
    amz_date = (headers.get("x-amz-date") or [""])[-1].strip()
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not parts.get(name)
    ]
    if not amz_date:
        missing.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    if missing:
        return Refused(
            "IncompleteSignatureException", " ".join(missing) + f" Authorization={authorization}"
        )
    scope = parts["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return Refused(
            "IncompleteSignatureException",
            f"Credential should be scoped with a valid terminator: 'aws4_request', not "
            f"'{parts['Credential']}'.",
        )
    access_key, day, scope_region, service, _ = scope
    if scope_region != region:
        return Refused(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{scope_region}'. ",
        )
    if service != SIGV4_SERVICE:
        return Refused(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{SIGV4_SERVICE}'. ",
        )
    try:
        signed_at = datetime.strptime(amz_date, SIGV4_TIMESTAMP).replace(tzinfo=UTC)
    except ValueError:
        return Refused(
            "IncompleteSignatureException",
            f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.",
        )
    if day != amz_date[:8]:
        return Refused(
            "InvalidSignatureException",
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{day}' != '{amz_date[:8]}', from '{amz_date}'.",
        )
    stamp = now.strftime(SIGV4_TIMESTAMP)
    if signed_at < now - MAX_CLOCK_SKEW:
        earliest = (now - MAX_CLOCK_SKEW).strftime(SIGV4_TIMESTAMP)
        return Refused(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than {earliest} ({stamp} - 5 min.)",
        )
    if signed_at > now + MAX_CLOCK_SKEW:
        latest = (now + MAX_CLOCK_SKEW).strftime(SIGV4_TIMESTAMP)
        return Refused(
            "InvalidSignatureException",
            f"Signature not yet current: {amz_date} is still later than {latest} "
            f"({stamp} + 5 min.)",
        )
    credential = credentials.get(access_key)
    if credential is None or headers.get("x-amz-security-token"):
        return Refused("UnrecognizedClientException", INVALID_TOKEN)

    signed_names = [name.strip().lower() for name in parts["SignedHeaders"].split(";")]
    body_hash = hashlib.sha256(request.body).hexdigest()
    # A client may send the body's hash as a header; it is signed, so it must be the body's.
    declared_hash = (headers.get("x-amz-content-sha256") or [body_hash])[-1].strip()
    split = urlsplit(request.target)
    canonical_headers = "".join(
        f"{name}:{','.join(' '.join(value.split()) for value in headers.get(name, []))}\n"
        for name in signed_names
    )
    canonical_request = "\n".join(
        [
            request.method.upper(),
            canonical_uri(split.path or "/"),
            canonical_query(split.query),
            canonical_headers,
            ";".join(signed_names),
            declared_hash,
        ]
    )
    string_to_sign = "\n".join(
        [
            SIGV4_ALGORITHM,
            amz_date,
            f"{day}/{region}/{SIGV4_SERVICE}/aws4_request",
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    expected = hmac.new(
        signing_key(credential.secret_access_key, day, region),
        string_to_sign.encode(),
        hashlib.sha256,
    ).hexdigest()
    intact = (
        "host" in signed_names
        and all(name in headers for name in signed_names)
        and declared_hash == body_hash
    )
    if not intact or not hmac.compare_digest(expected, parts["Signature"]):
        return Refused(
            "InvalidSignatureException",
            f"{SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have been\n"
            f"'{canonical_request}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n",
        )
    return credential


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
    caller: LocalCredential | None = None,
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The REST API proxy event API Gateway sends the Lambda for ``request``.

    ``caller`` is the credential whose signature was verified: its IAM identity
    is what the handler sees, never anything the request says about itself.
    """
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
    identity: dict[str, Any] = {
        "accessKey": None,
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
    if caller is not None:
        identity.update(caller.identity())

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


def gateway_error(
    status: int,
    message: str,
    request_id: str,
    error_type: str | None = None,
    *,
    message_key: str = "message",
) -> HttpResponse:
    """An answer API Gateway itself produces (``{"message": ...}``).

    An IAM refusal spells its key ``Message`` (``message_key``), as API Gateway does.
    """
    kind = error_type or {
        400: "BadRequestException",
        403: "MissingAuthenticationTokenException",
    }.get(status, "InternalServerErrorException")
    return HttpResponse(
        status,
        [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", kind),
        ],
        json.dumps({message_key: message}).encode(),
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
    as a single warm Lambda instance would serve them, once its SigV4 signature
    is verified against ``credentials`` and the key's policies allow invoking it
    (every method is ``AWS_IAM``).
    ``control_paths`` are local-only ``POST`` paths (``/_local/...``) that a
    deployed API never serves; they need a valid signature too, since a push
    delivered there deploys itself, and a restricted key's policies must allow
    ``POST`` on them like on any route.
    """

    handler: ProxyHandler
    routes: tuple[Route, ...] = DEFAULT_ROUTES
    stage: Stage = field(default_factory=Stage)
    host: str = "127.0.0.1"
    port: int = 3000
    control_paths: dict[str, ControlPath] = field(default_factory=dict)
    credentials: Mapping[str, LocalCredential] = field(default_factory=dict)
    """The access keys whose signatures are accepted, by access key id."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
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

            def _body(self) -> bytes | None:
                """The request body, de-chunked; None when its framing cannot be read."""
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks: list[bytes] = []
                    while True:
                        size_line = self.rfile.readline(65537).split(b";")[0].strip()
                        try:
                            size = int(size_line, 16)
                        except ValueError:
                            return None
                        if size == 0:
                            while self.rfile.readline(65537).strip():
                                pass  # trailers
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline(65537)
                length_text = (self.headers.get("Content-Length") or "0").strip()
                if not length_text.isdigit():
                    return None
                length = int(length_text)
                return self.rfile.read(length) if length > 0 else b""

            def _serve(self) -> None:
                started = time.monotonic()
                body = self._body()
                request = HttpRequest(
                    method=self.command,
                    target=self.path,
                    headers=list(self.headers.items()),
                    body=body or b"",
                    source_ip=self.client_address[0],
                    protocol=self.request_version,
                )
                if body is None:
                    self.close_connection = True
                    response = gateway_error(
                        400, "The request body's length cannot be read", str(uuid.uuid4())
                    )
                else:
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

            def __getattr__(self, name: str) -> Any:
                # Any other method (TRACE, CONNECT, made-up ones) is API Gateway's 403 for
                # a method the API does not define, not http.server's 501.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

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
            caller = self._verified(request, request_id)
            if isinstance(caller, HttpResponse):
                return caller
            refused = self._not_authorized(caller, request.method, path, request_id)
            if refused is not None:
                return refused
            return self._control(control, request, request_id)
        for route in self.routes:
            params = route.match(request.method, path)
            if params is not None:
                break
        else:
            return gateway_error(403, MISSING_TOKEN, request_id)
        caller = self._verified(request, request_id)
        if isinstance(caller, HttpResponse):
            return caller
        refused = self._not_authorized(caller, request.method, path, request_id)
        if refused is not None:
            return refused
        event = proxy_event(
            request, route, params, self.stage, caller=caller, request_id=request_id
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

    def _verified(self, request: HttpRequest, request_id: str) -> LocalCredential | HttpResponse:
        """The credential that signed the request, or API Gateway's 403 refusing it."""
        caller = verify_sigv4(request, self.credentials, self.stage.region, self.clock())
        if isinstance(caller, Refused):
            return gateway_error(403, caller.message, request_id, caller.error_type)
        return caller

    def _not_authorized(
        self, caller: LocalCredential, method: str, path: str, request_id: str
    ) -> HttpResponse | None:
        """API Gateway's 403 when the caller's policies do not allow invoking ``method path``."""
        if caller.policies is None:
            return None
        from local.iam import INVOKE, PermissionResult, decision, method_arn

        resource = method_arn(self.stage, method, unquote(path))
        verdict = decision(caller.policies, INVOKE, resource)
        if verdict == PermissionResult.PERMITTED:
            return None
        message = (
            f"User: {caller.user_arn} is not authorized to perform: {INVOKE} "
            f"on resource: {resource}"
        )
        if verdict == PermissionResult.DENIED:
            message += " with an explicit deny"
        return gateway_error(
            403, message, request_id, "AccessDeniedException", message_key="Message"
        )

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
    "LocalCredential",
    "Refused",
    "Route",
    "Stage",
    "access_key_of",
    "http_response",
    "match_resource",
    "proxy_event",
    "routes_from_template",
    "verify_sigv4",
]
