"""Health of a freshly deployed colour, judged after the bake time.

Three checks, each optional but the first: the colour's rollout is still fully
available (pods that crash after becoming ready show up here); an HTTP URL
answers 2xx; none of the named CloudWatch alarms is in ALARM. The bake itself is
a Wait state of the flow, so no Lambda sits idle while it elapses.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bluegreen.models import Colour
from bluegreen.ports import Cluster


class HttpProbe(Protocol):
    """Answers the HTTP status of a GET on a URL (0 when nothing answered)."""

    def status(self, url: str) -> tuple[int, str]: ...


class AlarmProbe(Protocol):
    """Names which of the given CloudWatch alarms are in state ALARM."""

    def alarming(self, names: Sequence[str]) -> list[str]: ...


class UrllibProbe:
    """``HttpProbe`` with the standard library; redirects are followed."""

    def __init__(self, timeout_seconds: float = 5.0) -> None:
        self._timeout = timeout_seconds

    def status(self, url: str) -> tuple[int, str]:
        """The status code and a short reason; 0 with the error when the request failed."""
        request = urllib.request.Request(url, method="GET")  # noqa: S310 (configured URL)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return int(response.status), str(response.reason)
        except urllib.error.HTTPError as exc:
            return exc.code, str(exc.reason)
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(getattr(exc, "reason", exc))


class CloudWatchAlarms:
    """``AlarmProbe`` over a boto3 ``cloudwatch`` client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def alarming(self, names: Sequence[str]) -> list[str]:
        """Names of the alarms among ``names`` whose state is ALARM."""
        if not names:
            return []
        found: list[str] = []
        paginator = self._client.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmNames=list(names), StateValue="ALARM"):
            found.extend(alarm["AlarmName"] for alarm in page.get("MetricAlarms", []))
            found.extend(alarm["AlarmName"] for alarm in page.get("CompositeAlarms", []))
        return sorted(found)


@dataclass(frozen=True)
class HealthPolicy:
    """What "healthy" means for this application (from settings)."""

    url: str = ""
    alarm_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class HealthProbes:
    """The probes the checks use; a probe is only called when its check is configured."""

    http: HttpProbe
    alarms: AlarmProbe


def health_problems(
    cluster: Cluster, colour: Colour, policy: HealthPolicy, probes: HealthProbes
) -> list[str]:
    """Every reason the colour is not healthy now; an empty list means healthy."""
    problems: list[str] = []
    rollout = cluster.rollout(colour)
    if not rollout.complete or rollout.available < rollout.desired:
        problems.append(
            f"{colour} rollout is not fully available: {rollout.available}/{rollout.desired} "
            f"available{f' ({rollout.message})' if rollout.message else ''}"
        )
    if policy.url:
        code, reason = probes.http.status(policy.url)
        if not 200 <= code < 300:
            answer = f"HTTP {code} {reason}".strip() if code else f"no answer ({reason})"
            problems.append(f"{policy.url} answered {answer}")
    if policy.alarm_names:
        alarming = probes.alarms.alarming(policy.alarm_names)
        if alarming:
            problems.append(f"CloudWatch alarm(s) in ALARM: {', '.join(alarming)}")
    return problems
