"""The last step of a deploy that went well: judge health after the bake, then record it."""

from __future__ import annotations

from bluegreen.domain import events
from bluegreen.domain.errors import HealthCheckFailed
from bluegreen.domain.images import short_image
from bluegreen.domain.models import Colour, Digest, Outcome, Verdict
from bluegreen.logic.deploy.ports import DeployPorts, Json
from bluegreen.logic.deploy.report import event_detail, publish
from bluegreen.logic.health import HealthPolicy, health_problems
from bluegreen.logic.lease import renew_lease


def finish(event: Json, ports: DeployPorts) -> Json:
    """Judge health after the bake; on success mark healthy, record, notify and release."""
    settings, ledger, cluster = ports.settings, ports.ledger, ports.cluster
    deployment = event["deployment"]
    renew_lease(ledger, deployment, settings.lock_lease_seconds)
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
    publish(ports, events.SUCCEEDED, event_detail(ports, deployment, Outcome.SUCCEEDED, reason))
    ledger.release_lock(str(deployment["id"]))
    return {
        "outcome": Outcome.SUCCEEDED.value,
        "digest": str(digest),
        "colour": colour.value,
        "deploymentId": deployment["id"],
    }
