"""A promotion's progress: the state its steps carry, what they save, and their lease."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bluegreen.domain.models import Outcome, Role
from bluegreen.domain.promotion import Strategy
from bluegreen.logic.deploy.ports import Json
from bluegreen.logic.lease import renew_lease
from bluegreen.logic.promotion.plan import PROMOTE
from bluegreen.logic.promotion.ports import PromotionPorts

_KEPT_ANALYSES = 100


def current_time(ports: PromotionPorts) -> datetime:
    """The steps' clock (the deploy ports')."""
    return ports.deploy.now()


def strategy_of(promotion: Mapping[str, Any]) -> Strategy:
    """The strategy the promotion runs, from its state."""
    return Strategy.parse_steps(promotion["steps"])


def save(ports: PromotionPorts, promotion: Json, **extra: object) -> None:
    """The progress ``GET /deployments/{id}`` shows: the state plus the analyses so far."""
    record = ports.promotions.record(str(promotion["id"]))
    before = dict(record.progress) if record else {}
    analyses = list(before.get("analyses", []))
    analysis = extra.pop("analysis", None)
    if analysis is not None:
        analyses = [*analyses, analysis][-_KEPT_ANALYSES:]
    shown = {
        key: promotion.get(key)
        for key in (
            "status",
            "step",
            "steps",
            "weights",
            "canary",
            "production",
            "digest",
            "failures",
            "inconclusive",
            "stepStartedAt",
            "cause",
        )
    }
    # What an earlier step noted (when the reading failed, when it waited) stays.
    ports.promotions.save(str(promotion["id"]), {**before, **shown, "analyses": analyses, **extra})


def renew(
    ports: PromotionPorts, promotion: Mapping[str, Any], attempt: str, seconds: int = 0
) -> None:
    """Renew the lock's lease by the stack's lease plus ``seconds`` (a gate's timeout, so
    nobody takes the lock while a person thinks); ``LockLost`` when it is not ours."""
    deploy = ports.deploy
    lease = deploy.settings.lock_lease_seconds + seconds
    renew_lease(deploy.ledger, str(promotion["id"]), lease, attempt)


def event_detail(
    ports: PromotionPorts, promotion: Mapping[str, Any], outcome: Outcome, cause: str
) -> Json:
    """The detail of a promotion's deployment event."""
    return {
        "application": ports.deploy.settings.application,
        "deploymentId": promotion.get("id"),
        "executionArn": promotion.get("arn"),
        "action": PROMOTE,
        "service": Role.PRODUCTION.value,
        "colour": promotion.get("canary"),
        "digest": promotion.get("digest"),
        "fromDigest": promotion.get("fromDigest"),
        "trigger": promotion.get("trigger"),
        "actor": promotion.get("actor"),
        "outcome": outcome.value,
        "reason": cause,
        "weights": promotion.get("weights"),
    }


def aborted(ports: PromotionPorts, promotion: Json) -> bool:
    """Whether a person asked to abort; if so the state says who and why."""
    record = ports.promotions.record(str(promotion["id"]))
    if record is None or not record.abort_requested_by:
        return False
    why = f": {record.abort_reason}" if record.abort_reason else ""
    promotion["status"] = "aborted"
    promotion["cause"] = f"aborted by {record.abort_requested_by}{why}"
    return True
