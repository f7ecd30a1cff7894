"""The HTTP client of the services API, SigV4-signed for API Gateway's IAM auth.

Requests are signed with botocore's ``SigV4Auth`` for service ``execute-api``
using the standard credential chain (environment, profile, SSO, instance role),
or, for the local stack, with the access key it publishes in its state file:
it verifies signatures as API Gateway does and refuses unsigned requests.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bluegreen_cli import __version__
from bluegreen_cli.errors import EXIT_UNAVAILABLE, ApiError, CliError

_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")

APP_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
"""An application's name as the API takes it in ``/apps/{app}``: a DNS label of at most 40."""

RELEASE_ROOTS = ("services", "images", "deployments", "promote", "rollback")
"""The first path segments of the release operations, which ``/apps/{app}`` also serves."""


def check_app_name(name: str) -> str:
    """``name`` if the API takes it as an application's name; else a one-line usage error."""
    if not APP_NAME.match(name):
        raise CliError(
            f"{name!r} is not an application name: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 40 characters"
        )
    return name


def release_path(path: str) -> bool:
    """Whether ``path`` (``/services``, ``/deployments/{id}``) is a release operation's."""
    return path.lstrip("/").split("/", 1)[0].split("?", 1)[0] in RELEASE_ROOTS


def region_of_endpoint(url: str) -> str | None:
    """The region an ``execute-api`` URL names in its host, if it is one."""
    host = urllib.parse.urlsplit(url).hostname or ""
    match = _EXECUTE_API_HOST.match(host)
    return match.group(1) if match else None


@dataclass
class Response:
    """A decoded API answer."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    """The answer's headers, names in lower case (``etag``)."""


class Signer:
    """Adds SigV4 headers for ``execute-api`` from the standard credential chain."""

    def __init__(
        self,
        region: str | None,
        profile: str | None = None,
        *,
        access_key: tuple[str, str] | None = None,
    ) -> None:
        """Sign for ``region``; ``access_key`` (id, secret) instead of the credential chain."""
        import botocore.session  # imported here: plain --help stays fast
        from botocore.credentials import Credentials

        session = botocore.session.Session(profile=profile)
        self._credentials: Credentials | None = (
            Credentials(*access_key) if access_key else session.get_credentials()
        )
        # botocore reads AWS_DEFAULT_REGION and the profile; the other SDKs and the
        # Lambda runtime set AWS_REGION, which takes precedence there.
        self.region = (
            region
            or os.environ.get("AWS_REGION", "").strip()
            or session.get_config_variable("region")
        )
        if self._credentials is None:
            raise CliError(
                "no AWS credentials found to sign the request: configure the standard "
                "credential chain (AWS_PROFILE, aws configure, SSO)",
                error="NoCredentials",
            )
        if not self.region:
            raise CliError(
                "no AWS region: pass --region, or set AWS_REGION or AWS_DEFAULT_REGION",
                error="NoRegion",
            )

    def headers(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        """The request's headers with ``Authorization``, ``X-Amz-Date`` (and token) added."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        assert self._credentials is not None  # checked when the signer was made
        request = AWSRequest(method=method, url=url, data=body or b"", headers=dict(headers))
        SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(
            request
        )
        return {key: str(value) for key, value in request.headers.items()}


class ApiClient:
    """Calls one services API stage; every failure becomes a one-line ``CliError``."""

    def __init__(
        self,
        endpoint: str,
        signer: Signer | None,
        timeout: float = 30.0,
        *,
        unreachable_hint: str = "",
        app: str | None = None,
    ) -> None:
        """``unreachable_hint`` is added to the error when nothing answers at ``endpoint``.

        With ``app``, every release operation's path (``/services``, ``/images``,
        ``/deployments...``, ``/promote``, ``/rollback``) is sent as
        ``/apps/{app}/<path>``, acting for that application; without it they act for
        the stack's default application. Other paths (the registry's ``/apps...``)
        are sent as given.
        """
        scheme = urllib.parse.urlsplit(endpoint).scheme
        if scheme not in ("http", "https"):
            raise CliError(f"endpoint {endpoint!r} is not an http(s) URL")
        self.endpoint = endpoint.rstrip("/")
        self.signer = signer
        self.timeout = timeout
        self.unreachable_hint = unreachable_hint
        self.app = check_app_name(app) if app else None

    def path(self, path: str) -> str:
        """``path`` as sent: under ``/apps/{app}`` for a release operation with ``app`` set."""
        path = "/" + path.lstrip("/")
        if self.app and release_path(path):
            return f"/apps/{self.app}{path}"
        return path

    def url(self, path: str, query: dict[str, object] | None = None) -> str:
        """The absolute URL of ``path`` with the non-empty ``query`` parameters."""
        url = self.endpoint + self.path(path)
        params = {k: str(v) for k, v in (query or {}).items() if v is not None and v != ""}
        if params:
            # %20 for a space, as SigV4 encodes it in the canonical query ("+" would not be).
            url += "?" + urllib.parse.urlencode(
                sorted(params.items()), quote_via=urllib.parse.quote
            )
        return url

    def get(self, path: str, query: dict[str, object] | None = None) -> Any:
        """GET and return the decoded body (raises on an error status)."""
        return self.call("GET", path, query=query).body

    def post(self, path: str, payload: object | None = None) -> Any:
        """POST a JSON body and return the decoded answer (raises on an error status)."""
        return self.call("POST", path, payload=payload if payload is not None else {}).body

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, object] | None = None,
        payload: object | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request; 4xx/5xx raise ``ApiError``, no answer raises ``CliError`` (3).

        ``headers`` (``If-Match``) are sent, and signed, with the request's own.
        """
        url = self.url(path, query)
        body = None if payload is None else json.dumps(payload).encode()
        sent = {"Accept": "application/json", "User-Agent": f"bluegreen-cli/{__version__}"}
        if body is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        if self.signer is not None:
            sent = self.signer.headers(method, url, body, sent)
        request = urllib.request.Request(url, data=body, headers=sent, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                received = {name.lower(): value for name, value in answer.headers.items()}
                return Response(answer.status, _decode(answer.read()), received)
        except urllib.error.HTTPError as exc:
            raise _api_error(exc.code, _decode(exc.read())) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            hint = f"; {self.unreachable_hint}" if self.unreachable_hint else ""
            raise CliError(
                f"cannot reach the API at {self.endpoint}: {reason}{hint}",
                EXIT_UNAVAILABLE,
                "Unreachable",
            ) from None


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _api_error(status: int, body: Any) -> ApiError:
    """Read the API's ``{"error", "detail"}`` (or API Gateway's ``{"message"}``) body."""
    if isinstance(body, dict):
        error = body.get("error") or body.get("message") or body.get("Message")
        detail = body.get("detail") or ""
        return ApiError(status, str(error or f"status {status}"), str(detail), body)
    text = str(body or "").strip().splitlines()
    return ApiError(status, text[0] if text else f"status {status}", "", body)
