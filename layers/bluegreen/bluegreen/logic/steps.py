"""Every Task of ``statemachine/deploy.asl.json``: the deploy steps and the promotion's.

The deploy steps (``logic.deploy``) take the deploy ports; a progressive
promotion's (``logic.promotion``) also read CloudWatch and the promotions' store,
whose ports are built only when such a step runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bluegreen.domain.errors import InvalidInput
from bluegreen.logic.deploy.begin import begin
from bluegreen.logic.deploy.fenced import fenced
from bluegreen.logic.deploy.finish import finish
from bluegreen.logic.deploy.hooks import check_hook, start_hook
from bluegreen.logic.deploy.ports import DeployPorts, Json
from bluegreen.logic.deploy.rollback import abort, conclude_rollback, roll_back
from bluegreen.logic.deploy.rollout import check_rollout
from bluegreen.logic.promotion.back_out import back_out, stuck
from bluegreen.logic.promotion.begin import begin_promotion
from bluegreen.logic.promotion.ports import PromotionPorts
from bluegreen.logic.promotion.steps import analyse, open_gate, pass_gate, shift

DEPLOY_STEPS: Mapping[str, Callable[[Json, DeployPorts], Json]] = {
    "begin": begin,
    "check_rollout": check_rollout,
    "start_hook": start_hook,
    "check_hook": check_hook,
    "finish": finish,
    "roll_back": roll_back,
    "conclude_rollback": conclude_rollback,
    "abort": abort,
    "fenced": fenced,
}
"""The deploy steps by the name the ASL's payloads give them (``{"step": <name>}``)."""

PROMOTION_STEPS: Mapping[str, Callable[[Json, PromotionPorts], Json]] = {
    "begin_promotion": begin_promotion,
    "shift": shift,
    "analyse": analyse,
    "open_gate": open_gate,
    "pass_gate": pass_gate,
    "back_out": back_out,
    "promotion_stuck": stuck,
}
"""The progressive promotion's steps, by name."""


def run_step(
    event: Mapping[str, Any],
    ports: DeployPorts,
    promotion_ports: Callable[[], PromotionPorts] | None = None,
) -> Json:
    """Dispatch a Task's payload ``{"step": <name>, ...}`` to its step.

    ``promotion_ports`` builds the promotion steps' ports on first need; without
    it a promotion step is refused (a caller that only runs deploys).
    """
    name = event.get("step")
    if isinstance(name, str) and name in PROMOTION_STEPS:
        if promotion_ports is None:
            raise InvalidInput("step", f"{name!r} is a promotion step; no promotion ports given")
        return PROMOTION_STEPS[name](dict(event), promotion_ports())
    if isinstance(name, str) and name in DEPLOY_STEPS:
        return DEPLOY_STEPS[name](dict(event), ports)
    known = sorted([*DEPLOY_STEPS, *PROMOTION_STEPS])
    raise InvalidInput("step", f"{name!r} is not a step of the deploy flow: {known}")
