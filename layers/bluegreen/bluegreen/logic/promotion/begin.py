"""The first of a promotion's steps: claim the record, take the lock, check, start at step 0."""

from __future__ import annotations

from bluegreen.domain.errors import InvalidInput, LockHeld, RequestAbandoned
from bluegreen.domain.flow_input import CONSOLE, CONSOLE_ACTOR
from bluegreen.domain.images import digest_of_image
from bluegreen.domain.models import Colour, Deployment, Digest, Outcome, Role
from bluegreen.domain.promotion import Strategy
from bluegreen.domain.traffic import Weights
from bluegreen.logic.deploy.ports import DeployPorts, Json
from bluegreen.logic.promotion.plan import (
    PROMOTE,
    check_promotable,
    parse_promotion_input,
    resolve_strategy,
)
from bluegreen.logic.promotion.ports import PromotionPorts
from bluegreen.logic.promotion.progress import save


def _state(
    promotion_id: str,
    arn: str,
    recorded: Deployment,
    canary: Colour,
    digest: Digest,
    canary_image: str,
    production_image: str,
    strategy: Strategy,
    ports: DeployPorts,
) -> Json:
    """The promotion's state, as the flow carries it from state to state."""
    return {
        "id": promotion_id,
        "arn": arn,
        "trigger": recorded.trigger,
        "actor": recorded.actor,
        "reason": recorded.reason,
        "canary": canary.value,
        "production": canary.other.value,
        "digest": str(digest),
        "image": canary_image,
        "fromImage": production_image,
        "fromDigest": str(digest_of_image(production_image) or "") or None,
        "steps": strategy.to_json()["steps"],
        "step": 0,
        "weights": Weights.all_on(canary.other).to_json(),
        "interval": ports.settings.analysis.interval_seconds,
        "elapsed": 0,
        "failures": 0,
        "inconclusive": 0,
        "waitSeconds": 0,
        "measuredUntil": ports.now().isoformat(),
        "status": "shift",
        "gate": {
            "timeoutSeconds": ports.settings.gate_timeout_seconds,
            "heartbeatSeconds": ports.settings.gate_heartbeat_seconds,
            "reason": "",
        },
        "cause": "",
    }


def _own_record(ports: DeployPorts, promotion_id: str, arn: str, reason: str) -> Deployment:
    ledger = ports.ledger
    recorded = ledger.deployment(promotion_id)
    if recorded is None:
        ledger.put_deployment(
            Deployment(
                id=promotion_id,
                application=ports.settings.application,
                action=PROMOTE,
                role=Role.PRODUCTION,
                colour=None,
                to_digest=None,
                from_digest=None,
                trigger=CONSOLE,
                actor=CONSOLE_ACTOR,
                started_at=ports.now(),
                execution_arn=arn,
                reason=reason,
                waits_behind=ledger.lock_holder() or "",
            )
        )
        recorded = ledger.deployment(promotion_id)
        assert recorded is not None
    if recorded.execution_arn != arn:
        claimed = ledger.claim_deployment(promotion_id, arn)
        if claimed is None:
            raise RequestAbandoned(
                f"promotion {promotion_id} was given up before its execution began "
                f"({recorded.outcome.value}: {recorded.cause}); this execution changes nothing"
            )
        recorded = claimed
    if recorded.action != PROMOTE:
        raise InvalidInput(
            "input",
            f"does not match the request recorded for {promotion_id} ({recorded.action}); "
            "nothing was changed",
        )
    if recorded.outcome is not Outcome.RUNNING:
        raise RequestAbandoned(
            f"promotion {promotion_id} has ended already ({recorded.outcome.value}); "
            "this execution changes nothing"
        )
    return recorded


def begin_promotion(event: Json, ports: PromotionPorts) -> Json:
    """Claim the record, take the lock, check the canary may be promoted and the metric
    provider's queries parse, start at step 0."""
    deploy = ports.deploy
    execution = event.get("execution") or {}
    promotion_id = str(execution.get("name", ""))
    arn = str(execution.get("arn", ""))
    asked, reason = parse_promotion_input(event.get("input"))
    strategy = resolve_strategy(deploy.settings, asked)
    recorded = _own_record(deploy, promotion_id, arn, reason)
    if not deploy.ledger.acquire_lock(promotion_id, deploy.settings.lock_lease_seconds):
        holder = deploy.ledger.lock_holder() or "another deployment"
        raise LockHeld(
            f"deployment {holder} of {deploy.settings.application} holds the lock; a promotion "
            "does not wait for another deployment: promote once it has finished; nothing "
            "was changed"
        )
    canary, digest, canary_image, production_image = check_promotable(
        deploy.settings, deploy.ledger, deploy.cluster
    )
    # A query the metric provider cannot parse would leave every reading inconclusive:
    # refused now (MetricQueryInvalid), before the first weight moves.
    ports.metrics.check()
    deploy.ledger.update_deployment(
        promotion_id,
        colour=canary,
        to_digest=digest,
        from_digest=digest_of_image(production_image),
    )
    promotion = _state(
        promotion_id,
        arn,
        recorded,
        canary,
        digest,
        canary_image,
        production_image,
        strategy,
        deploy,
    )
    save(ports, promotion)
    return promotion
