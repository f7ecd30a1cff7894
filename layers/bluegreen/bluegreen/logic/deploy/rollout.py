"""The rollout loop: read the colour's rollout until it is complete, or known not to work."""

from __future__ import annotations

from collections.abc import Mapping

from bluegreen.domain.errors import RolloutFailed
from bluegreen.domain.images import short_image
from bluegreen.domain.models import Colour, RolloutState
from bluegreen.domain.pods import PodState
from bluegreen.domain.ports import Cluster
from bluegreen.logic import rollouts
from bluegreen.logic.deploy.ports import DeployPorts, FlowTiming, Json
from bluegreen.logic.lease import attempt_of, renew_lease
from bluegreen.observability import logger


def rollout_json(
    state: RolloutState, image: str, *, waited: int, polls: int, timing: FlowTiming
) -> Json:
    """The loop state of the rollout's Wait + Choice loop, after one reading."""
    return {
        "image": image,
        "complete": bool(state.complete and state.image == image),
        "stalled": bool(state.stalled),
        "message": state.message,
        "deadlineSeconds": state.progress_deadline_seconds,
        "waitSeconds": timing.backoff(timing.rollout_poll_first, timing.rollout_poll_max, polls),
        "waited": waited,
        "polls": polls,
    }


def first_reading(cluster: Cluster, colour: Colour, image: str, timing: FlowTiming) -> Json:
    """The rollout right after an apply; unreadable only means "poll again"."""
    try:
        return rollout_json(cluster.rollout(colour), image, waited=0, polls=0, timing=timing)
    except Exception:
        # The image is applied: failing here would roll back a deploy that may be fine.
        logger.exception("first rollout reading failed", extra={"colour": colour.value})
        return {
            "image": image,
            "complete": False,
            "stalled": False,
            "message": "",
            "deadlineSeconds": 600,
            "waitSeconds": timing.rollout_poll_first,
            "waited": 0,
            "polls": 0,
        }


def check_rollout(event: Json, ports: DeployPorts) -> Json:
    """Read the colour's rollout; ``RolloutFailed`` as soon as it is known not to work.

    At most three Kubernetes requests a poll: the Deployment; when it is not complete,
    the new revision's pods (``logic.rollouts`` fails a crash loop, a container that
    cannot start or a pod no node takes long before the progress deadline, and names
    the pod, the container and the last lines of its previous log: the third request,
    only then); else, while some of those pods are not ready, their Warning Events,
    whose newest says in the reading what they wait for. The deadline, and the flow's
    own bound past it, stay the last resort. The next poll comes soon while pods are
    starting or failing to, and when a pod would cross its threshold.
    """
    settings = ports.settings
    deployment, previous = event["deployment"], event["rollout"]
    renew_lease(ports.ledger, str(deployment["id"]), settings.lock_lease_seconds, attempt_of(event))
    colour = Colour.parse(deployment["colour"])
    image = str(previous["image"])
    waited = int(previous.get("waited", 0)) + int(previous.get("waitSeconds", 0))
    polls = int(previous.get("polls", 0)) + 1
    state = ports.cluster.rollout(colour)
    reading = rollout_json(state, image, waited=waited, polls=polls, timing=ports.timing)
    if reading["complete"]:
        return reading
    where = f"{colour} ({settings.deployment_name(colour)}) rolling out {short_image(image)}"
    if state.image != image:
        raise RolloutFailed(
            f"{where}: the Deployment's image was changed to {short_image(state.image)} meanwhile"
        )
    policy = rollouts.FailFast(
        after_restarts=settings.fail_after_restarts,
        after_seconds=settings.fail_after_seconds,
        unschedulable_seconds=settings.unschedulable_seconds,
    )
    pods = ports.cluster.new_pods(colour, image)
    seen = previous.get("waitingSince")
    since = rollouts.waiting_since(pods, seen if isinstance(seen, dict) else {}, waited)
    failure = rollouts.early_failure(pods, policy, since=since, waited=waited)
    if failure is not None:
        log = ""
        if failure.crashed and failure.container:
            log = ports.cluster.previous_log(
                failure.pod, failure.container, rollouts.LOG_LINES, rollouts.LOG_BYTES
            )
        raise RolloutFailed(
            rollouts.cause(f"{where}: failed after {waited}s of waiting", failure, log)
        )
    if state.stalled:
        detail = f": {state.message}" if state.message else ""
        raise RolloutFailed(f"{where}: stalled (ProgressDeadlineExceeded){detail}")
    bound = state.progress_deadline_seconds + ports.timing.rollout_margin
    if waited >= bound:
        raise RolloutFailed(
            f"{where}: not complete after {waited}s (progress deadline "
            f"{state.progress_deadline_seconds}s): {state.ready}/{state.desired} ready"
        )
    unready = [pod.name for pod in pods if not pod.ready]
    warnings = ports.cluster.pod_warnings(unready) if unready else []
    if warnings:
        newest = warnings[-1]
        reading["message"] = f"{state.message}; {newest.pod}: {newest.reason}: {newest.message}"
    reading["waitingSince"] = since
    reading["waitSeconds"] = _next_poll(pods, policy, since, waited, polls, ports.timing)
    return reading


def _next_poll(
    pods: list[PodState],
    policy: rollouts.FailFast,
    since: Mapping[str, int],
    waited: int,
    polls: int,
    timing: FlowTiming,
) -> int:
    """Seconds to the next rollout poll: soon while pods start, later while they get ready."""
    if rollouts.starting(pods):
        wait = timing.rollout_poll_first
    else:
        wait = timing.backoff(timing.rollout_poll_first, timing.rollout_poll_max, polls)
    due = rollouts.next_threshold_in(pods, policy, since=since, waited=waited)
    return max(1, min(wait, due) if due is not None else wait)
