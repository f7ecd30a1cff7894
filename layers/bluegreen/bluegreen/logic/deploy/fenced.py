"""Where an execution goes when a step finds the lock is not its own any more.

Another deployment took the lock while this execution was not running steps (its
lease ran out), or a later attempt of the same step runs (this one outlived its
Task's timeout). Either way someone else may be writing to the cluster now, so this
step closes this execution's own record and says what happened: it does not roll
back an image or release the lock.

One thing it does put back: a progressive promotion's split of production traffic,
when the router still holds exactly the weights this promotion wrote. Nobody else
owns that split (a deploy refuses to touch the canary while production reaches it),
so leaving it would leave production partly on an unjudged canary with no one to end
it; anything else written since means another writer is at work, and it is left.
"""

from __future__ import annotations

from bluegreen.domain import events
from bluegreen.domain.models import Colour, Outcome
from bluegreen.domain.traffic import Weights
from bluegreen.logic.deploy.ports import DeployPorts, Json
from bluegreen.logic.deploy.record import deployment_json
from bluegreen.logic.deploy.report import error_text, event_detail, publish
from bluegreen.logic.promotion.plan import PROMOTE


def fenced(event: Json, ports: DeployPorts) -> Json:
    """Close this execution's record as interrupted (once); the Error is ``LockLost``."""
    state = event.get("state") or {}
    deployment_id = str((event.get("execution") or {}).get("name", ""))
    _, text = error_text(state.get("error"))
    promotion = state.get("promotion")
    split = _take_back_split(ports, promotion) if isinstance(promotion, dict) else ""
    cause = (
        f"{text}. {split}Nothing was rolled back and the lock was left to its holder: check "
        "what that deployment did (bluegreen history), then deploy again if this digest is "
        "wanted"
    )
    ledger = ports.ledger
    recorded = ledger.deployment(deployment_id) if deployment_id else None
    if recorded is not None and recorded.outcome is Outcome.RUNNING:
        recorded = ledger.finish_deployment(
            deployment_id, Outcome.INTERRUPTED, f"LockLost: {cause}"
        )
    if recorded is not None and recorded.outcome is Outcome.INTERRUPTED:
        detail = event_detail(
            ports, deployment_json(recorded, ports.settings), Outcome.INTERRUPTED, cause
        )
        publish(ports, events.INTERRUPTED, detail)
    return {"Error": "LockLost", "Cause": recorded.cause if recorded is not None else cause}


def _take_back_split(ports: DeployPorts, promotion: Json) -> str:
    """Production back on the old colour when this promotion's split is left with no
    owner; what was done, in words ("" when production was not split).

    A split of production exists only while a promotion runs. If the lock's holder now
    is not a promotion, the split is this one's leftover (a deploy refuses to touch
    the canary while production reaches it), so it is taken back; if it is, that
    promotion owns the router now, and it is left.
    """
    production, canary = Colour(promotion["production"]), Colour(promotion["canary"])
    ledger, cluster = ports.ledger, ports.cluster
    try:
        traffic = cluster.traffic()
        if traffic.production is None or not traffic.production.serves(canary):
            return ""
        split = traffic.production.describe()
        holder = ledger.lock_holder()
        holding = ledger.deployment(holder) if holder else None
        if holding is not None and holding.action == PROMOTE:
            return (
                f"Production's split ({split}) was left to {holder}, the promotion that holds "
                "the lock now. "
            )
        cluster.shift_traffic(Weights.all_on(production), canary)
    except Exception as exc:
        return (
            f"Production's split could not be taken back ({type(exc).__name__}: {exc}): "
            f"bluegreen switch {canary.value} sets all of production on {production.value}. "
        )
    return f"Its split of production ({split}) was taken back to {production.value}. "
