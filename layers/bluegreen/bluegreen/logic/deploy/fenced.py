"""Where an execution goes when a step finds the lock is not its own any more.

Another deployment took the lock while this execution was not running steps (its
lease ran out), or a later attempt of the same step runs (this one outlived its
Task's timeout). Either way someone else may be writing to the cluster now, so this
step only closes this execution's own record and says what happened: it does not
roll back, release the lock, or read the cluster.
"""

from __future__ import annotations

from bluegreen.domain import events
from bluegreen.domain.models import Outcome
from bluegreen.logic.deploy.ports import DeployPorts, Json
from bluegreen.logic.deploy.record import deployment_json
from bluegreen.logic.deploy.report import error_text, event_detail, publish


def fenced(event: Json, ports: DeployPorts) -> Json:
    """Close this execution's record as interrupted (once); the Error is ``LockLost``."""
    state = event.get("state") or {}
    deployment_id = str((event.get("execution") or {}).get("name", ""))
    _, text = error_text(state.get("error"))
    cause = (
        f"{text}. Nothing was rolled back and the lock was left to its holder: check what "
        "that deployment did (bluegreen history), then deploy again if this digest is wanted"
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
        publish(ports, events.FAILED, detail)
    return {"Error": "LockLost", "Cause": recorded.cause if recorded is not None else cause}
