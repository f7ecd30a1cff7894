"""What the API does with traffic: start a progressive promotion, flip back, resume, abort.

``request_promotion``
    under the ``alb`` and ``gateway`` routers, records the request and starts the
    flow's promotion states with the strategy (the stack's when none is given);
    under ``selector`` a promotion stays what it was (the canary's digest deployed
    to production), and a strategy is refused.
``rollback_or_flip_back``
    ``POST /rollback`` of production within the flip-back window of the latest
    promotion is an instant flip-back: production's weights back to the old
    colour, which still runs what it ran, in one flip, recorded; otherwise the
    flow's rollback.
``resume`` / ``abort``
    a person's decision about a running promotion, recorded with the caller: at a
    manual gate it sends the task token back to Step Functions; an abort while no
    gate is open is picked up at the promotion's next step.
Deploys and rollbacks that arrive while a promotion shifts traffic are refused,
naming it, rather than queued behind it for hours
(``logic.promotion.plan.refuse_during_promotion``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bluegreen.domain.errors import ClusterConflict, LockHeld, NotFound, TrafficNotWeighted
from bluegreen.domain.executions import execution_name
from bluegreen.domain.images import digest_of_image
from bluegreen.domain.models import Colour, Deployment, Digest, Outcome, Role, Verdict
from bluegreen.domain.ports import Ledger, Promotions, TaskTokens
from bluegreen.domain.promotion import NotWaiting, PromotionRecord, Strategy
from bluegreen.domain.traffic import Weights
from bluegreen.logic import services
from bluegreen.logic.promotion.plan import (
    PROMOTE,
    check_promotable,
    refuse_during_promotion,
    resolve_strategy,
)
from bluegreen.logic.requests import (
    Caller,
    DeploymentStarted,
    ReleasePorts,
    request_record,
    start_flow,
)

FLIP_BACK = "instant flip-back"


@dataclass(frozen=True)
class GatePorts:
    """What a person's decision about a running promotion reaches."""

    ledger: Ledger
    promotions: Promotions
    tokens: TaskTokens


def request_promotion(
    ports: ReleasePorts,
    caller: Caller,
    *,
    strategy: Strategy | None = None,
    reason: str = "",
) -> DeploymentStarted:
    """Start a progressive promotion of the canary colour (or, under selector, the old one).

    Refused with ``LockHeld`` while a deployment holds the lock, with
    ``RolesDisagree`` unless canaryEnv and the router object agree with all of
    production on one colour, with ``NotPromotable`` / ``DigestFailed`` when the
    canary runs nothing that may go to production, and with ``InvalidInput`` for a
    strategy that cannot run (it is checked here, before anything is recorded).
    """
    settings, ledger = ports.settings, ports.ledger
    if not settings.traffic_router.weighted:
        if strategy is not None:
            raise TrafficNotWeighted(
                "a strategy shifts a share of production to the canary step by step; this "
                f"stack's TrafficRouter is {settings.traffic_router.value}, which moves all of "
                "it at once: POST /promote without a strategy deploys the canary's digest to "
                "production; nothing was changed"
            )
        return services.promote(ports, caller, reason=reason)
    resolved = resolve_strategy(settings, strategy)
    holder = ledger.lock_holder()
    if holder:
        raise LockHeld(
            f"deployment {holder} of {settings.application} holds the lock; promote once it "
            f"has finished (bluegreen watch {holder}); nothing was changed"
        )
    canary, digest, _, production_image = check_promotable(settings, ledger, ports.cluster)
    name = execution_name(settings.application, PROMOTE, f"{digest.hex}-{caller.request_key}")
    reason = reason or (
        f"promote the canary's {digest.short} ({canary.value}) progressively: {resolved.describe()}"
    )
    record = request_record(
        settings,
        caller,
        name=name,
        action=PROMOTE,
        role=Role.PRODUCTION,
        waits_behind=None,
        digest=digest,
        reason=reason,
        seen_image=production_image,
    )
    flow_input: dict[str, object] = {
        "action": PROMOTE,
        "strategy": resolved.to_json(),
        "reason": reason,
    }
    return start_flow(ports, record=record, flow_input=flow_input)


@dataclass(frozen=True)
class FlipBackDone:
    """An instant flip-back: production back on the old colour, recorded."""

    record_id: str
    production: Colour
    canary: Colour
    promotion_id: str
    weights: Weights


def rollback_or_flip_back(
    ports: ReleasePorts,
    caller: Caller,
    role: Role,
    *,
    reason: str = "",
    now: datetime | None = None,
) -> DeploymentStarted | FlipBackDone:
    """``POST /rollback``: a flip-back of production when the window allows, else the flow's."""
    refuse_during_promotion(ports.ledger)
    if role is Role.PRODUCTION and ports.settings.traffic_router.weighted:
        done = flip_back(ports, caller, reason=reason, now=now)
        if done is not None:
            return done
    return services.request_rollback(ports, caller, role, reason=reason)


def flip_back(
    ports: ReleasePorts,
    caller: Caller,
    *,
    reason: str = "",
    now: datetime | None = None,
) -> FlipBackDone | None:
    """Production back to the colour the latest promotion took it from, weights only.

    None (the caller then rolls back through the flow) when no window is kept, it
    has passed, the roles moved since, or the old colour no longer runs what
    production ran (a canary deploy since ends the window). The window is used up
    with a conditional write, so two requests cannot both flip; the flip checks the
    lock between its writes as a switch does. The promoted digest is marked failed,
    as any rollback a person asks for marks the digest it replaces.
    """
    settings, ledger, cluster, promotions = (
        ports.settings,
        ports.ledger,
        ports.cluster,
        ports.promotions,
    )
    moment = now or datetime.now(UTC)
    window = promotions.flip_back()
    if window is None or moment >= window.until:
        return None
    previous, promoted = Colour(window.previous), Colour(window.production)
    if cluster.canary_env().selector is not previous:
        return None
    if cluster.deployment_image(previous) != window.previous_image:
        return None
    holder = ledger.lock_holder()
    if holder:
        raise LockHeld(
            f"deployment {holder} of {settings.application} holds the lock; the flip-back "
            "waits for it to finish; nothing was changed"
        )
    if not promotions.take_flip_back(window.promotion_id):
        raise ClusterConflict(
            f"the flip-back of promotion {window.promotion_id} was just taken by another "
            "request; GET /services shows where production is now"
        )

    def still_unlocked() -> None:
        taken = ledger.lock_holder()
        if taken:
            raise LockHeld(f"deployment {taken} of {settings.application} took the lock")

    try:
        cluster.switch_roles(promoted, confirm=still_unlocked)
    except Exception:
        promotions.keep_flip_back(window)  # nothing moved for good: the window stays usable
        raise
    record_id = execution_name(settings.application, "rollback", f"production-{caller.request_key}")
    promoted_digest = Digest.parse(window.promoted_digest) if window.promoted_digest else None
    cause = (
        f"{FLIP_BACK} of promotion {window.promotion_id}: production back to 100 % on "
        f"{previous.value} (still running what it ran), {promoted.value} the canary again; "
        "no rollout"
    )
    ledger.put_deployment(
        Deployment(
            id=record_id,
            application=settings.application,
            action="rollback",
            role=Role.PRODUCTION,
            colour=previous,
            to_digest=digest_of_image(window.previous_image),
            from_digest=promoted_digest,
            trigger="api",
            actor=caller.actor,
            started_at=moment,
            outcome=Outcome.SUCCEEDED,
            source_ip=caller.source_ip,
            finished_at=moment,
            reason=reason or FLIP_BACK,
            rolled_back_to=digest_of_image(window.previous_image),
            cause=cause,
        )
    )
    if promoted_digest is not None:
        ledger.set_verdict(
            promoted_digest, Verdict.FAILED, f"{FLIP_BACK} by {caller.actor}: {reason}".rstrip(": ")
        )
    return FlipBackDone(
        record_id=record_id,
        production=previous,
        canary=promoted,
        promotion_id=window.promotion_id,
        weights=Weights.all_on(previous),
    )


# --------------------------------------------------------------------------- gates


def _running(ports: GatePorts, deployment_id: str) -> PromotionRecord:
    record = ports.promotions.record(deployment_id)
    recorded = ports.ledger.deployment(deployment_id)
    if record is None:
        if recorded is None:
            raise NotFound(f"deployment {deployment_id!r} is not in the ledger")
        raise NotWaiting(
            f"deployment {deployment_id} is a {recorded.action}, not a progressive promotion: "
            "there is nothing to resume or abort"
        )
    if record.finished or (recorded is not None and recorded.outcome is not Outcome.RUNNING):
        ended = recorded.outcome.value if recorded is not None else record.status
        raise NotWaiting(f"promotion {deployment_id} has ended ({ended}); nothing was changed")
    return record


def _where(record: PromotionRecord) -> str:
    progress = record.progress
    steps = progress.get("steps") or []
    step = int(progress.get("step", 0))
    weights = progress.get("weights") or {}
    shown = ", ".join(f"{c} {w} %" for c, w in weights.items())
    return f"step {min(step + 1, len(steps))} of {len(steps)}, production {shown}"


def resume(
    ports: GatePorts,
    caller: Caller,
    deployment_id: str,
    *,
    hold: bool = False,
    reason: str = "",
) -> dict[str, Any]:
    """Resume a promotion that waits at a gate; ``NotWaiting`` when it waits for nothing.

    ``hold`` keeps the gate waiting instead (a heartbeat, for gates that want one).
    """
    promotions, tokens = ports.promotions, ports.tokens
    record = _running(ports, deployment_id)
    if not record.waiting:
        raise NotWaiting(
            f"promotion {deployment_id} waits for no person ({_where(record)}, "
            f"{record.status or 'running'}); there is nothing to resume"
        )
    step = int(record.progress.get("step", 0))
    if hold:
        if not tokens.heartbeat(record.token):
            raise NotWaiting(f"the gate of promotion {deployment_id} no longer waits")
        return {"deploymentId": deployment_id, "decision": "hold", "step": step + 1}
    token = promotions.close_gate(deployment_id, step, "resume", caller.actor, reason)
    if token is None:
        raise NotWaiting(f"the gate of promotion {deployment_id} was decided meanwhile")
    if not tokens.succeed(token, {"decision": "resume", "actor": caller.actor}):
        raise NotWaiting(
            f"the gate of promotion {deployment_id} no longer waits (it timed out): the "
            "promotion backs out"
        )
    return {"deploymentId": deployment_id, "decision": "resume", "step": step + 1}


def abort(
    ports: GatePorts,
    caller: Caller,
    deployment_id: str,
    *,
    reason: str = "",
) -> dict[str, Any]:
    """Abort a running promotion: at a gate at once, else at its next step (backed out)."""
    promotions, tokens = ports.promotions, ports.tokens
    record = _running(ports, deployment_id)
    step = int(record.progress.get("step", 0))
    if record.waiting:
        token = promotions.close_gate(deployment_id, step, "abort", caller.actor, reason)
        if token is not None:
            why = f": {reason}" if reason else ""
            tokens.fail(token, "PromotionAborted", f"aborted by {caller.actor}{why}")
            return {"deploymentId": deployment_id, "decision": "abort", "step": step + 1}
    if not promotions.request_abort(deployment_id, caller.actor, reason):
        raise NotWaiting(
            f"promotion {deployment_id} cannot be aborted now ({_where(record)}): an abort "
            "was asked already, or it is deciding its gate"
        )
    return {"deploymentId": deployment_id, "decision": "abort", "step": step + 1}
