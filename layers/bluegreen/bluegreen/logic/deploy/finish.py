"""The last step of a deploy that went well: judge health after the bake, then record it."""

from __future__ import annotations

from bluegreen.domain import events
from bluegreen.domain.errors import EventNotPublished, HealthCheckFailed
from bluegreen.domain.images import short_image
from bluegreen.domain.models import Colour, Digest, Outcome, Verdict
from bluegreen.logic.deploy.ports import DeployPorts, Json
from bluegreen.logic.deploy.report import event_detail, publish
from bluegreen.logic.health import HealthPolicy, health_problems
from bluegreen.logic.lease import attempt_of, renew_lease
from bluegreen.observability import logger


def finish(event: Json, ports: DeployPorts) -> Json:
    """Judge health after the bake; on success mark healthy, record, notify and release.

    Success is final: a retried Finish whose first attempt recorded the success judges
    nothing again and only completes what that attempt may not have (the event, the
    lock), so a lost answer can never turn a healthy deploy into a rollback.
    """
    settings, ledger, cluster = ports.settings, ports.ledger, ports.cluster
    deployment = event["deployment"]
    recorded = ledger.deployment(str(deployment["id"]))
    if recorded is not None and recorded.outcome is Outcome.SUCCEEDED:
        return close_succeeded(ports, deployment, recorded.cause)
    renew_lease(ledger, str(deployment["id"]), settings.lock_lease_seconds, attempt_of(event))
    colour = Colour.parse(deployment["colour"])
    digest = Digest.parse(deployment["digest"])
    policy = HealthPolicy(url=settings.health_url, alarm_names=settings.alarm_names)
    problems = health_problems(cluster, colour, policy, ports.probes)
    if problems:
        raise HealthCheckFailed(
            f"{short_image(deployment['image'])} on {colour} failed its health checks after "
            f"{event.get('bakeSeconds', 0)}s bake: {'; '.join(problems)}"
        )
    ledger.set_verdict(digest, Verdict.HEALTHY, f"deployment {deployment['id']}")
    if cluster.canary_env().selector is colour:
        cluster.set_canary_image(str(deployment["image"]))
    reason = f"{digest.short} healthy on {colour} ({deployment['service']})"
    ledger.finish_deployment(str(deployment["id"]), Outcome.SUCCEEDED, reason)
    return close_succeeded(ports, deployment, reason)


def close_succeeded(
    ports: DeployPorts, deployment: Json, reason: str, *, last_chance: bool = False
) -> Json:
    """What follows a recorded success, safe to repeat: the event (once), the lock.

    Every path that finds the record succeeded ends here (a retried Finish, a Catch
    that reached the rollback after a Finish that died), so none of them undoes it.
    ``last_chance``: the path a Catch reached, after Finish's own retries; an event
    EventBridge still refuses is logged there, for the execution must succeed.
    """
    detail = event_detail(ports, deployment, Outcome.SUCCEEDED, reason)
    try:
        publish(ports, events.SUCCEEDED, detail)
    except EventNotPublished:
        if not last_chance:
            raise
        logger.error("the success event could not be published", extra={"detail": detail})
    ports.ledger.release_lock(str(deployment["id"]))
    return {
        "status": "succeeded",
        "outcome": Outcome.SUCCEEDED.value,
        "digest": str(deployment["digest"]),
        "colour": str(deployment["colour"]),
        "deploymentId": deployment["id"],
    }
