"""Health of a freshly deployed colour, judged after the bake time.

Three checks, each optional but the first: the colour's rollout is still fully
available (pods that crash after becoming ready show up here); an HTTP URL
answers 2xx; none of the named CloudWatch alarms is in ALARM. The bake itself is
a Wait state of the flow, so no Lambda sits idle while it elapses. The probes'
adapters (HTTP, CloudWatch) are in ``bluegreen.adapters.probes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bluegreen.domain.models import Colour
from bluegreen.domain.ports import Cluster


class HttpProbe(Protocol):
    """Answers the HTTP status of a GET on a URL (0 when nothing answered)."""

    def status(self, url: str) -> tuple[int, str]: ...


class AlarmProbe(Protocol):
    """Names which of the given CloudWatch alarms are in state ALARM."""

    def alarming(self, names: Sequence[str]) -> list[str]: ...


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
