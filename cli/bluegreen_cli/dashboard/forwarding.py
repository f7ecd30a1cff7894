"""What the page may ask of the API, and how its calls reach it.

The dashboard is no general proxy: a call is forwarded only when its method and
path are one of the services API's routes, its query only carries the paging
parameters, and its body is a JSON object. The registry is read (``GET /apps``,
``GET /apps/{app}``), never changed; every release route is also forwarded under
``/apps/{app}``, for one application of the fleet. The URL is always the configured
endpoint plus that path, built by the CLI's own ``ApiClient``, which signs it
exactly as every other command does. The API's answer comes back as it came
(status and body), so the page shows the API's ``{error, detail}`` unchanged.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from bluegreen_cli.api import APP_NAME, ApiClient
from bluegreen_cli.errors import ApiError, CliError

_ID = r"[A-Za-z0-9_-]{1,80}"
_APP = APP_NAME.pattern.removeprefix("^").removesuffix("$")
"""An application's name as the API routes it in ``/apps/{app}`` (the CLI's own rule)."""
RELEASE_ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", r"/services"),
    ("POST", r"/services"),
    ("GET", r"/images"),
    ("GET", r"/deployments"),
    ("GET", rf"/deployments/{_ID}"),
    ("GET", rf"/deployments/{_ID}/timeline"),
    ("POST", r"/rollback"),
    ("POST", r"/promote"),
    # A promotion waiting at a manual gate: the page offers these only when the
    # API reports a deployment waiting for a person.
    ("POST", rf"/deployments/{_ID}/resume"),
    ("POST", rf"/deployments/{_ID}/abort"),
)
"""The release operations: un-prefixed they act for the default application."""
ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (method, re.compile(pattern))
    for method, pattern in (
        *RELEASE_ROUTES,
        # The registry, read only: the dashboard lists applications, it never
        # registers, changes or deletes one (no PUT, no DELETE).
        ("GET", r"/apps"),
        ("GET", rf"/apps/{_APP}"),
        # Every release operation again, acting for one application of the fleet.
        *((method, rf"/apps/{_APP}{path}") for method, path in RELEASE_ROUTES),
    )
)
"""(method, path) pairs the page may call; every other call is refused here."""

PAGING = {"limit": re.compile(r"[0-9]{1,4}"), "cursor": re.compile(r"[A-Za-z0-9_\-=.~+/:]{1,2048}")}
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """What the dashboard answers the page: a status and a JSON (or text) body."""

    status: int
    body: Any


class Refused(Exception):
    """A call the dashboard does not forward; ``answer`` says why, in the API's shape."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.answer = Answer(status, {"error": error, "detail": detail})


def is_app_name(name: str) -> bool:
    """Whether ``name`` is an application's name the API routes in ``/apps/{app}``."""
    return re.fullmatch(_APP, name) is not None


def check_route(method: str, path: str) -> None:
    """Refuse a method and path that are not one of the API's routes."""
    if any(method == allowed and pattern.fullmatch(path) for allowed, pattern in ROUTES):
        return
    if any(pattern.fullmatch(path) for _, pattern in ROUTES):
        registry = re.fullmatch(rf"/apps(/{_APP})?", path) is not None
        raise Refused(
            405,
            "MethodNotAllowed",
            f"{method} {path} is not a call the dashboard forwards"
            + ("; it reads the registry and never changes it" if registry else ""),
        )
    app = re.match(r"/apps/([^/]*)", path)
    if app and not is_app_name(app[1]):
        raise Refused(
            404,
            "NotForwarded",
            f"{app[1][:100]!r} is not an application name: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 40 characters",
        )
    raise Refused(
        404,
        "NotForwarded",
        f"{method} {path[:200]} is not a route of the services API; the dashboard forwards "
        "nothing else",
    )


def read_query(query: str) -> dict[str, object]:
    """The paging parameters of a query string; anything else is refused."""
    params: dict[str, object] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        pattern = PAGING.get(name)
        if pattern is None:
            raise Refused(400, "NotForwarded", f"query parameter {name!r} is not one the API takes")
        if not pattern.fullmatch(value):
            raise Refused(400, "InvalidInput", f"{name}: {value[:100]!r} is not a valid value")
        params[name] = value
    return params


def read_body(raw: bytes) -> object | None:
    """A request body: nothing, or one JSON object."""
    if not raw:
        return None
    if len(raw) > MAX_BODY:
        raise Refused(413, "BodyTooLarge", f"a body of {len(raw)} bytes; at most {MAX_BODY}")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise Refused(400, "MalformedJson", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "MalformedJson", "the body must be a JSON object")
    return body


def forward(client: ApiClient, method: str, target: str, raw_body: bytes = b"") -> Answer:
    """Send one page call (``target`` is the path and query after ``/api``) to the API."""
    path, _, query = target.partition("?")
    path = unquote(path)
    try:
        check_route(method, path)
        params = read_query(query)
        body = read_body(raw_body) if method == "POST" else None
    except Refused as refused:
        return refused.answer
    try:
        response = client.call(
            method, path, query=params, payload=body if method == "POST" else None
        )
    except ApiError as exc:
        return Answer(exc.status, exc.body)
    except CliError as exc:
        return Answer(502, {"error": "ApiUnreachable", "detail": exc.message})
    except Exception as exc:  # botocore while signing: expired SSO session, broken profile
        return Answer(502, {"error": "SigningFailed", "detail": f"{type(exc).__name__}: {exc}"})
    return Answer(response.status, response.body)
