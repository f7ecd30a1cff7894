"""What a promotion's steps touch: the deploy steps' ports, the metric provider and the store."""

from __future__ import annotations

from dataclasses import dataclass

from bluegreen.domain.ports import Promotions, TrafficMetrics
from bluegreen.logic.deploy.ports import DeployPorts


@dataclass(frozen=True)
class PromotionPorts:
    """The deploy steps' ports, the stack's metric provider, and the promotions' store."""

    deploy: DeployPorts
    metrics: TrafficMetrics
    promotions: Promotions
