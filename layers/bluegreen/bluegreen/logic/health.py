"""Health of a freshly deployed colour, judged after the bake time.

Three checks, each optional but the first: the colour's rollout is still fully
available (pods that crash after becoming ready show up here); an HTTP URL
answers 2xx; none of the named CloudWatch alarms (metric or composite) is in
ALARM. The alarm check fails closed: a name CloudWatch does not know is a
problem too, since an alarm that cannot be read cannot veto anything. The bake
itself is a Wait state of the flow, so no Lambda sits idle while it elapses.
The probes are ports (``HttpProbe``, ``AlarmProbe``); their adapters (HTTP,
CloudWatch) are in ``bluegreen.adapters.probes``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bluegreen.domain.models import Colour
from bluegreen.domain.ports import AlarmProbe, Cluster, HttpProbe


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
        states = probes.alarms.states(policy.alarm_names)
        if states.alarming:
            problems.append(f"CloudWatch alarm(s) in ALARM: {', '.join(states.alarming)}")
        if states.missing:
            problems.append(
                f"CloudWatch alarm(s) not found: {', '.join(states.missing)} (AlarmNames names "
                "alarms that do not exist in this account and region; an alarm that cannot be "
                "read vetoes the deploy)"
            )
    return problems
