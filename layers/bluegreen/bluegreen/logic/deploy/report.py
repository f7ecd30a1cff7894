"""What a deployment says when it ends: the words of its Cause and the events it publishes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bluegreen.domain.errors import EventNotPublished
from bluegreen.domain.images import short_image
from bluegreen.domain.models import Colour, Outcome
from bluegreen.domain.ports import Cluster
from bluegreen.logic.deploy.ports import DeployPorts, Json
from bluegreen.observability import logger


def describe_colour(cluster: Cluster, colour: Colour) -> str:
    """One line on what a colour runs now and how its rollout stands (best effort)."""
    try:
        state = cluster.rollout(colour)
    except Exception as exc:  # the description must never hide the failure it explains
        return f"{colour} could not be read ({type(exc).__name__}: {exc})"
    status = "rolled out" if state.complete else ("stalled" if state.stalled else "rolling out")
    return (
        f"{colour} runs {short_image(state.image)}, {status}, "
        f"{state.available}/{state.desired} available"
    )


def error_text(error: Mapping[str, Any] | None) -> tuple[str, str]:
    """Error name and a readable message from a Catch's ``{"Error", "Cause"}``."""
    if not error:
        return "Unknown", ""
    name = str(error.get("Error", "Unknown"))
    cause = str(error.get("Cause", ""))
    try:
        parsed = json.loads(cause)
    except ValueError:
        return name, cause
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return name, str(parsed["errorMessage"])
    return name, cause


def publish(ports: DeployPorts, detail_type: str, detail: Json) -> None:
    """Publish a deployment event once per deployment and outcome; a failure is logged,
    never raised.

    A step that published and then died is run again; the ledger's claim on the
    (deployment, outcome) pair makes the second run stay quiet, and ``eventId`` names the
    pair so that a subscriber can tell the event from any other. When EventBridge
    refuses it, the claim is given back and ``EventNotPublished`` raised: the flow
    retries the step, which finds its outcome recorded and publishes again.
    """
    deployment_id, outcome = str(detail.get("deploymentId") or ""), str(detail.get("outcome"))
    event_id = f"{deployment_id}:{outcome}"
    try:
        first = not deployment_id or ports.ledger.claim_event(deployment_id, outcome)
    except Exception:
        # Unsure whether it went out: say it (again) rather than stay silent.
        logger.exception("could not claim the event", extra={"event_id": event_id})
        first = True
    if not first:
        logger.info("event already published", extra={"event_id": event_id})
        return
    try:
        ports.notifier.publish(detail_type, {**detail, "eventId": event_id})
    except Exception as exc:
        logger.exception("notification failed", extra={"detail_type": detail_type})
        # Give the claim back so the retried step publishes it; the outcome itself is
        # recorded already, so the retry changes nothing else.
        if deployment_id:
            ports.ledger.unclaim_event(deployment_id, outcome)
        raise EventNotPublished(
            f"EventBridge did not take the {detail_type!r} event of {deployment_id} "
            f"({type(exc).__name__}: {exc}); the outcome is recorded, the event is retried"
        ) from None


def event_detail(ports: DeployPorts, deployment: Json, outcome: Outcome, reason: str) -> Json:
    """The detail of a deployment event: who, what, where, and how it ended."""
    return {
        "application": ports.settings.application,
        "deploymentId": deployment.get("id"),
        "executionArn": deployment.get("arn"),
        "action": deployment.get("action"),
        "service": deployment.get("service"),
        "colour": deployment.get("colour"),
        "digest": deployment.get("digest"),
        "fromDigest": deployment.get("fromDigest"),
        "trigger": deployment.get("trigger"),
        "actor": deployment.get("actor"),
        "outcome": outcome.value,
        "reason": reason,
    }
