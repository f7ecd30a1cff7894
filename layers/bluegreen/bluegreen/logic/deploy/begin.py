"""The first step: validate the input, claim the record, take the lock, re-check, apply."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bluegreen.config import Settings
from bluegreen.domain.errors import LockTimeout, RequestAbandoned
from bluegreen.domain.flow_input import parse_request
from bluegreen.domain.images import digest_of_image, short_image
from bluegreen.domain.models import Deployment, Digest, Outcome
from bluegreen.logic import roles
from bluegreen.logic.deploy.hooks import hooks_json
from bluegreen.logic.deploy.ports import DeployPorts, Json
from bluegreen.logic.deploy.record import (
    colour_of,
    deployment_json,
    own_record,
    refuse_failed_digest,
)
from bluegreen.logic.deploy.rollout import first_reading


def _execution_started(execution: Mapping[str, Any], recorded: Deployment) -> datetime:
    """When the execution started (``$$.Execution.StartTime``), else when it was recorded."""
    text = execution.get("startTime")
    if isinstance(text, str) and text:
        try:
            started = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return started if started.tzinfo else started.replace(tzinfo=UTC)
    return recorded.started_at


def begin(event: Json, ports: DeployPorts) -> Json:
    """Validate the input, claim the record, take the lock, re-check, record, apply.

    Returns ``status``: ``promote`` (a progressive promotion: its own states take
    over), ``locked`` (wait ``waitSeconds`` and call again),
    ``superseded`` (a newer push of the tag: recorded, lock released, the flow
    succeeds), ``no_op`` (a rollback whose colour no longer runs what its caller
    saw: recorded, nothing changed), ``rollback`` (a requested rollback: go to
    the rollback path) or ``applied`` (with the first rollout reading, so an
    instant rollout needs no extra poll). What is checked again once the lock is
    held (the state may have moved while the request waited): a deploy's digest
    must not be judged failed unless forced (``DigestFailed``), a rollback's
    colour must still run the image its caller saw.
    """
    settings, ledger, cluster, timing = ports.settings, ports.ledger, ports.cluster, ports.timing
    raw = event.get("input")
    if isinstance(raw, Mapping) and raw.get("action") == "promote":
        # A progressive promotion has states of its own (``logic.promotion``).
        return {"status": "promote"}
    request = parse_request(raw)
    execution = event.get("execution") or {}
    deployment_id = str(execution.get("name", ""))
    execution_arn = str(execution.get("arn", ""))
    recorded = own_record(ports, request, deployment_id, execution_arn)
    digest = recorded.to_digest
    if recorded.outcome is not Outcome.RUNNING:
        # A retried Begin whose first attempt already ended the run here.
        return _ended_at_begin(recorded, settings)

    state = event.get("state")
    previous: Json = state if isinstance(state, dict) else {}
    attempt = int(previous.get("lockAttempt", 0)) if previous.get("status") == "locked" else 0
    asked = int(previous.get("lockWaited", 0)) if previous.get("status") == "locked" else 0
    if not ledger.acquire_lock(deployment_id, settings.lock_lease_seconds):
        holder = ledger.lock_holder() or "another deployment"
        waited = max(
            0, int((ports.now() - _execution_started(execution, recorded)).total_seconds())
        )
        # A holder that died keeps the lock until its lease expires: wait at least that long.
        if max(asked, waited) >= settings.lock_lease_seconds + timing.lock_wait_max:
            raise LockTimeout(
                f"the {settings.application} deployment lock is still held by {holder} "
                f"{waited}s after this execution started ({attempt} attempts to take it); "
                "nothing was changed"
            )
        wait = timing.backoff(timing.lock_wait_first, timing.lock_wait_max, attempt)
        return {
            "status": "locked",
            "holder": holder,
            "lockAttempt": attempt + 1,
            "lockWaited": asked + wait,
            "waitSeconds": wait,
        }

    if recorded.colour is not None:
        # A retried Begin: the first attempt may already have applied the image, so
        # what ran before is what the record says, not what the cluster says now.
        colour, from_image = recorded.colour, ""
    else:
        colour = colour_of(cluster, request.service)
        from_image = cluster.deployment_image(colour)
        if digest is not None and not recorded.force:
            refuse_failed_digest(ledger, digest)
        # The intent, before the effect: a Begin that dies after the apply leaves a
        # record whose colour the last-resort step reads to learn whether it applied.
        recorded = ledger.update_deployment(
            deployment_id, colour=colour, from_digest=digest_of_image(from_image)
        )
    image = settings.image_ref(digest) if digest else ""
    deployment = deployment_json(recorded, settings, from_image)
    hooks = hooks_json(settings.hooks)

    if request.action == "rollback":
        if recorded.seen_image and from_image != recorded.seen_image:
            cause = (
                f"nothing to roll back: {colour} ({request.service}) runs "
                f"{short_image(from_image)} now, not {short_image(recorded.seen_image)} that the "
                "rollback was asked for"
                f"{f' (it waited behind {recorded.waits_behind})' if recorded.waits_behind else ''}"
                "; nothing was changed and no verdict was touched"
            )
            ledger.finish_deployment(deployment_id, Outcome.NO_OP, cause)
            ledger.release_lock(deployment_id)
            return {"status": "no_op", "deployment": deployment, "cause": cause}
        running = short_image(from_image)
        cause = (
            f"rollback of {request.service} ({colour}, running {running}) requested by "
            f"{recorded.actor}{f': {recorded.reason}' if recorded.reason else ''}"
        )
        return {
            "status": "rollback",
            "deployment": deployment,
            "hooks": hooks,
            "error": {"Error": "RollbackRequested", "Cause": cause},
        }

    assert digest is not None
    newer = _newer_push(ports, digest, recorded.trigger)
    if newer is not None:
        cause = f"superseded: {newer} was pushed for the same tag while this deploy waited"
        ledger.finish_deployment(deployment_id, Outcome.SUPERSEDED, cause)
        ledger.release_lock(deployment_id)
        return {"status": "superseded", "deployment": deployment, "newer": str(newer)}

    roles.check_may_touch(cluster, "deploy", request.service, colour)
    cluster.set_deployment_image(colour, image)
    rollout = first_reading(cluster, colour, image, timing)
    return {
        "status": "applied",
        "deployment": deployment,
        "hooks": hooks,
        "rollout": rollout,
        "bakeSeconds": max(settings.bake_seconds, 0),
    }


def _ended_at_begin(recorded: Deployment, settings: Settings) -> Json:
    statuses = {Outcome.SUPERSEDED: "superseded", Outcome.NO_OP: "no_op"}
    status = statuses.get(recorded.outcome)
    if status is None:
        raise RequestAbandoned(
            f"deployment {recorded.id} has ended already ({recorded.outcome.value}); "
            "this execution changes nothing"
        )
    deployment = deployment_json(recorded, settings)
    return {"status": status, "deployment": deployment, "cause": recorded.cause}


def _newer_push(ports: DeployPorts, digest: Digest, trigger: str) -> Digest | None:
    """For an auto-deploy: a later push took every auto-deploy tag this digest had.

    The ledger moves a tag to the digest pushed last, so a digest that no longer
    carries any auto-deploy tag, while one of those tags points at a digest
    pushed after it, has been superseded while this deployment waited.
    """
    if trigger != "ecr-push":
        return None
    ledger, auto_tags = ports.ledger, set(ports.settings.auto_deploy_tags)
    record = ledger.image(digest)
    if record is None or record.tags & auto_tags:
        return None
    for tag in sorted(auto_tags):
        newest = ledger.digest_for_tag(tag)
        if newest is None or newest == digest:
            continue
        other = ledger.image(newest)
        if other is not None and other.pushed_at >= record.pushed_at:
            return newest
    return None
