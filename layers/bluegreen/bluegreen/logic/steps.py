"""Every Task of ``statemachine/deploy.asl.json``: the deploy steps and the promotion's.

The deploy steps (``logic.deploy``) take the deploy ports; a progressive
promotion's (``logic.promotion``) also read CloudWatch and the promotions' store,
whose ports are built only when such a step runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bluegreen.domain.errors import InvalidInput
from bluegreen.logic import deploy, promotion
from bluegreen.logic.deploy import DeployPorts, Json


def run_step(
    event: Mapping[str, Any],
    ports: DeployPorts,
    promotion_ports: Callable[[], promotion.PromotionPorts],
) -> Json:
    """Dispatch a Task's payload ``{"step": <name>, ...}`` to its step."""
    name = event.get("step")
    if isinstance(name, str) and name in promotion.STEPS:
        return promotion.STEPS[name](dict(event), promotion_ports())
    if isinstance(name, str) and name in deploy.STEPS:
        return deploy.run_step(event, ports)
    known = sorted([*deploy.STEPS, *promotion.STEPS])
    raise InvalidInput("step", f"{name!r} is not a step of the deploy flow: {known}")
