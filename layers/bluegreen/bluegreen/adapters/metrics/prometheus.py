"""The canary's figures from Prometheus: three PromQL queries per reading, per colour.

The queries (stack parameters; ``bluegreen.domain.metric_queries`` has their
placeholders and the defaults for Traefik's proxy metrics) ask for the requests
the colour's backend answered, the share of them answered 5xx, and their p99 in
seconds. Each is evaluated with the instant query API (``/api/v1/query``) at the
window's end, its ``{{window}}`` the window's length, so a reading covers exactly
the window the promotion judges.

What cannot be read becomes a reason in ``TargetGroupMetrics.unreadable`` and the
reading is inconclusive, never passed: Prometheus not answering or answering an
error, no series (the backend never served, or the labels are wrong), NaN. A query
Prometheus cannot parse (400 ``bad_data``) is a mistake of the stack's, not of the
canary's: ``check`` raises ``MetricQueryInvalid`` when a promotion begins.

Amazon Managed Service for Prometheus (host ``aps-workspaces.<region>.amazonaws.com``)
takes only requests signed with SigV4 for service ``aps``: they are signed with the
function's credentials. Any other address is queried plainly.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bluegreen.domain.errors import MetricQueryInvalid
from bluegreen.domain.metric_queries import QueryTemplate, window_range
from bluegreen.domain.models import Colour
from bluegreen.domain.promotion import TargetGroupMetrics

QUERY_PATH = "api/v1/query"
_APS_HOST = re.compile(r"^aps-workspaces\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
_ANSWER_LIMIT = 1 << 20
"""The most of an answer read: one series per query, so a larger one is a wrong query."""
_CHECK_WINDOW = timedelta(minutes=1)


def aps_region(url: str) -> str | None:
    """The region of an Amazon Managed Service for Prometheus endpoint, None for another."""
    host = urllib.parse.urlsplit(url).hostname or ""
    found = _APS_HOST.match(host.lower())
    return found.group(1) if found else None


class SigV4Signer:
    """Signs a request for Amazon Managed Service for Prometheus (SigV4, service ``aps``).

    ``credentials`` is asked on every request (botocore's refreshable credentials
    renew themselves); by default, the function's own, as boto3 finds them.
    """

    service = "aps"

    def __init__(self, region: str, credentials: Callable[[], Any] | None = None) -> None:
        self.region = region
        self._credentials = credentials or _session_credentials

    def headers(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str]
    ) -> dict[str, str]:
        """``headers`` plus the signature's (Authorization, X-Amz-Date, the session token)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(self._credentials(), self.service, self.region).add_auth(request)
        return {str(name): str(value) for name, value in request.headers.items()}


def _session_credentials() -> Any:
    import boto3

    return boto3.Session().get_credentials()


class QueryRefused(Exception):
    """Prometheus refused to evaluate a query; ``bad_data`` when it could not parse it."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


class _Unanswered(Exception):
    """No answer, or not one of Prometheus' API."""


@dataclass(frozen=True)
class _Reading:
    """One query's value, or why there is none."""

    value: float | None
    problem: str = ""


class PrometheusTrafficMetrics:
    """``ports.TrafficMetrics`` over Prometheus' HTTP API.

    ``url`` is where the API lives (``.../api/v1/query`` is appended): a Prometheus
    server's root, or an Amazon Managed Service for Prometheus workspace's
    (``https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>/``).
    ``placeholders`` gives a colour's values of the queries' placeholders
    (``namespace``, ``service``, ``port``, ``colour``); ``window`` is added per reading.
    """

    def __init__(
        self,
        url: str,
        *,
        requests: QueryTemplate,
        error_ratio: QueryTemplate,
        p99: QueryTemplate,
        placeholders: Callable[[Colour], Mapping[str, str]],
        signer: SigV4Signer | None = None,
        timeout: float = 10.0,
        opener: urllib.request.OpenerDirector | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/" + QUERY_PATH
        self.queries = (requests, error_ratio, p99)
        self._placeholders = placeholders
        self.signer = signer
        self._timeout = timeout
        self._opener = opener or urllib.request.build_opener()
        self._clock = clock or _utc_now

    def check(self) -> None:
        """``MetricQueryInvalid`` naming the parameter of the first query Prometheus cannot
        parse. Every other answer passes: the readings say what they could not read."""
        end = self._clock()
        for template in self.queries:
            promql = self._render(template, Colour.BLUE, _CHECK_WINDOW.total_seconds())
            try:
                self._query(promql, end)
            except QueryRefused as refused:
                if refused.error_type == "bad_data":
                    raise MetricQueryInvalid(
                        template.parameter,
                        f"Prometheus cannot parse {promql!r}: {refused.message}; the promotion "
                        "did not start and nothing was moved",
                    ) from None
            except _Unanswered:
                continue

    def measure(self, colour: Colour, start: datetime, end: datetime) -> TargetGroupMetrics:
        """The colour's backend over ``[start, end)``: three instant queries at ``end``."""
        seconds = max(1.0, (end - start).total_seconds())
        requests, ratio, p99 = (
            self._read(template, colour, seconds, end) for template in self.queries
        )
        unreadable = [r.problem for r in (requests, ratio, p99) if r.problem]
        if requests.value == 0:
            # No traffic: the ratio and the quantile are NaN by arithmetic, and too few
            # requests is the reason the judgement gives.
            unreadable = []
        values = self._placeholders(colour)
        backend = f"{values.get('namespace', '')}/{values.get('service', '')}"
        count = requests.value or 0.0
        return TargetGroupMetrics(
            target_group=backend,
            requests=count,
            errors=(ratio.value or 0.0) * count,
            p99_seconds=p99.value,
            unreadable=tuple(unreadable),
            where=f"Service {backend} ({colour.value}) in Prometheus",
        )

    # ---------------------------------------------------------------------------------

    def _render(self, template: QueryTemplate, colour: Colour, seconds: float) -> str:
        return template.render({**self._placeholders(colour), "window": window_range(seconds)})

    def _read(
        self, template: QueryTemplate, colour: Colour, seconds: float, at: datetime
    ) -> _Reading:
        promql = self._render(template, colour, seconds)
        named = f"{template.parameter} ({promql})"
        try:
            series = self._query(promql, at)
        except QueryRefused as refused:
            return _Reading(None, f"Prometheus refused {named}: {refused}")
        except _Unanswered as unanswered:
            return _Reading(None, f"Prometheus did not answer {named}: {unanswered}")
        if not series:
            return _Reading(None, f"Prometheus has no series for {named}")
        if len(series) > 1:
            return _Reading(
                None,
                f"Prometheus answered {len(series)} series for {named}, where one is read "
                "(aggregate it, e.g. with sum)",
            )
        value = series[0]
        if math.isnan(value):
            return _Reading(None, f"Prometheus answered NaN for {named}")
        return _Reading(value)

    def _query(self, promql: str, at: datetime) -> list[float]:
        """The values of an instant query's series at ``at``; ``QueryRefused`` on an error
        answer, ``_Unanswered`` when none came (or one that is not Prometheus')."""
        body = urllib.parse.urlencode(
            {"query": promql, "time": f"{at.timestamp():.3f}"},
            quote_via=urllib.parse.quote,
            safe="-_.~",
        ).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.signer is not None:
            headers = self.signer.headers("POST", self.url, body, headers)
        # The address is the stack's, checked to be http(s) at cold start.
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with self._opener.open(request, timeout=self._timeout) as answer:
                status, text = answer.status, answer.read(_ANSWER_LIMIT)
        except urllib.error.HTTPError as refused:
            status, text = refused.code, refused.read(_ANSWER_LIMIT)
            refused.close()
        except (OSError, http.client.HTTPException) as exc:
            raise _Unanswered(f"{type(exc).__name__}: {exc}") from None
        try:
            document = json.loads(text)
        except ValueError:
            raise _Unanswered(f"HTTP {status}, not a Prometheus answer: {text[:200]!r}") from None
        if not isinstance(document, dict):
            raise _Unanswered(f"HTTP {status}, not a Prometheus answer: {text[:200]!r}")
        if document.get("status") != "success":
            raise QueryRefused(
                str(document.get("errorType") or f"HTTP {status}"),
                str(document.get("error") or document.get("message") or text[:200]),
            )
        return _values(document.get("data") or {})


def _values(data: Mapping[str, Any]) -> list[float]:
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind == "scalar" and isinstance(result, list):
            return [float(result[1])]
        if kind == "vector" and isinstance(result, list):
            return [float(series["value"][1]) for series in result]
    except (KeyError, IndexError, TypeError, ValueError):
        raise _Unanswered(f"an instant query's {kind} is not as Prometheus writes one") from None
    raise _Unanswered(f"an instant query answered {kind!r}, neither a vector nor a scalar")


def _utc_now() -> datetime:
    return datetime.now(UTC)
