"""The release as the cluster holds it, read at once: what ``GET /services`` shows."""

from __future__ import annotations

from dataclasses import dataclass

from bluegreen.domain.models import CanaryEnv, Colour, Role, RolloutState
from bluegreen.domain.traffic import Traffic


@dataclass(frozen=True)
class ClusterSnapshot:
    """canaryEnv, both colours' rollouts, and where the router sends each role."""

    canary_env: CanaryEnv
    rollouts: dict[Colour, RolloutState]
    selectors: dict[Role, Colour | None]
    traffic: Traffic | None = None


def selectors_of(traffic: Traffic) -> dict[Role, Colour | None]:
    """The colour each role's traffic goes to, when it all goes to one (else None)."""
    production = traffic.production.sole if traffic.production is not None else None
    return {Role.CANARY: traffic.canary, Role.PRODUCTION: production}
