"""The steps of the deploy flow, one function per Task of ``statemachine/deploy.asl.json``.

The state machine owns the control flow: waits, loops, retries, catches and
the Map over hooks. Each step here does one short piece of work against its
ports and returns plain JSON for the next state. Steps are idempotent so that a
Retry after a throttled or dropped call repeats nothing harmful: the lock is
re-entrant for its holder, records are keyed by the deployment id (= the
execution name), and cluster writes are no-ops when the cluster already says so.

State carried between steps (all JSON):

``deployment``
    ``{"id", "arn", "action", "service", "colour", "digest", "image",
    "fromDigest", "fromImage", "trigger", "actor", "reason"}``.
``rollout``
    ``{"image", "complete", "message", "waitSeconds", "waited", "polls"}``:
    the loop state of a Wait + Choice rollout loop.
``error``
    what a Catch put there: ``{"Error", "Cause"}``.

A step raises a named ``BlueGreenError`` to send the flow down a Catch; the
error's class name is the Task's Error and its message the Cause.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bluegreen.config import Settings
from bluegreen.domain import events
from bluegreen.domain.errors import (
    DigestFailed,
    HealthCheckFailed,
    HookFailed,
    InvalidInput,
    LockTimeout,
    RequestAbandoned,
    RolloutFailed,
    UnknownImage,
)
from bluegreen.domain.models import (
    Colour,
    Deployment,
    Digest,
    Hook,
    Outcome,
    Role,
    RolloutState,
    Verdict,
)
from bluegreen.domain.pods import PodState
from bluegreen.domain.ports import Cluster, Ledger, Notifier
from bluegreen.logic import roles, rollouts
from bluegreen.logic.health import HealthPolicy, HealthProbes, health_problems
from bluegreen.observability import logger

Json = dict[str, Any]

ACTIONS = ("deploy", "rollback")
TRIGGERS = ("ecr-push", "api", "console")
"""What the ledger records as a deployment's trigger: who really started its execution."""
CONSOLE = "console"
CONSOLE_ACTOR = "unknown"
"""The actor of a console run: Step Functions does not tell an execution who started it."""
_DEPLOY_FIELDS = frozenset({"action", "image", "service", "reason", "force"})
_ROLLBACK_FIELDS = frozenset({"action", "service", "reason"})
_STARTER_FIELDS = ("trigger", "actor", "sourceIp")
TEXT_LIMIT = 1024


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FlowTiming:
    """Poll intervals and bounds of the flow's Wait loops, in seconds.

    Bounds count the seconds the flow asked to wait, so they hold whatever the
    Wait states really took (tests shorten them); the lock wait also counts the
    seconds since the execution started, which is what ``LockTimeout`` reports.
    """

    lock_wait_first: int = 5
    lock_wait_max: int = 60
    rollout_poll_first: int = 2
    rollout_poll_max: int = 15
    rollout_margin: int = 60
    hook_poll_first: int = 2
    hook_poll_max: int = 15

    @staticmethod
    def backoff(first: int, cap: int, attempt: int) -> int:
        """Wait before poll number ``attempt`` (0-based): doubling from ``first``, capped."""
        return int(min(first * 2 ** min(attempt, 16), cap))


@dataclass(frozen=True)
class DeployPorts:
    """Everything the steps touch, handed in by the handler (or a test)."""

    settings: Settings
    ledger: Ledger
    cluster: Cluster
    notifier: Notifier
    probes: HealthProbes
    now: Callable[[], datetime] = _utc_now
    timing: FlowTiming = field(default_factory=FlowTiming)


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class FlowRequest:
    """A validated flow input (the contract shared by ECR auto-deploy, API and console).

    Who started the execution is not part of it: that is the ledger's record,
    written by the entry point before the start (or by ``begin`` for a console run).
    """

    action: str
    service: Role
    image: str = ""
    reason: str = ""
    force: bool = False


def _json_type(value: object) -> str:
    """The JSON name of a value's type: what the caller wrote, not Python's name for it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _text(raw: Mapping[str, Any], name: str, default: str = "") -> str:
    value = raw.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidInput(name, f"must be a string, got {_json_type(value)}")
    value = value.strip()
    if len(value) > TEXT_LIMIT:
        raise InvalidInput(name, f"must be at most {TEXT_LIMIT} characters, got {len(value)}")
    return value


def parse_request(raw: object) -> FlowRequest:
    """Validate a flow input; ``InvalidInput`` names the field and what is wrong with it."""
    if not isinstance(raw, dict):
        raise InvalidInput(
            "input",
            f'must be a JSON object like {{"action": "deploy", "image": "..."}}, '
            f"got {_json_type(raw)}",
        )
    action = _text(raw, "action")
    if not action:
        raise InvalidInput("action", f"required, one of {', '.join(ACTIONS)}")
    if action not in ACTIONS:
        raise InvalidInput("action", f"{action!r} is not an action: one of {', '.join(ACTIONS)}")
    for name in _STARTER_FIELDS:
        if name in raw:
            raise InvalidInput(
                name,
                "is not accepted in the input: the ledger records who really started the "
                "execution (the API and the ECR auto-deploy record it before they start "
                "one; any other start is recorded as a console run), never what an input "
                "claims",
            )
    allowed = _DEPLOY_FIELDS if action == "deploy" else _ROLLBACK_FIELDS
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidInput(
            unknown[0],
            f"is not a field of a {action} input; allowed fields: {', '.join(sorted(allowed))}",
        )
    service = Role.parse(_text(raw, "service", Role.CANARY.value), field_name="service")
    image = ""
    force = raw.get("force", False)
    if not isinstance(force, bool):
        raise InvalidInput(
            "force", f"must be a JSON boolean, true or false, got {_json_type(force)}"
        )
    if action == "deploy":
        image = _text(raw, "image")
        if not image:
            raise InvalidInput("image", "is required: a sha256 digest or a tag known to the ledger")
        if Digest.looks_like(image):
            Digest.parse(image, field_name="image")
    return FlowRequest(
        action=action, service=service, image=image, reason=_text(raw, "reason"), force=force
    )


def resolve_image(ledger: Ledger, image: str) -> tuple[Digest, str]:
    """The digest an input's ``image`` names, and the tag it was named by (if any)."""
    if Digest.looks_like(image):
        return Digest.parse(image, field_name="image"), ""
    digest = ledger.digest_for_tag(image)
    if digest is None:
        raise UnknownImage(
            f"image: no push of tag {image!r} is recorded in the ledger; "
            "deploy by digest or push the tag first"
        )
    return digest, image


# --------------------------------------------------------------------------- helpers


def digest_of_image(image: str) -> Digest | None:
    """The digest an image reference is pinned to (``None`` for a tag reference)."""
    _, sep, hex_part = image.partition("@sha256:")
    if not sep:
        return None
    try:
        return Digest.parse(hex_part)
    except InvalidInput:
        return None


def _digest_or_none(value: object) -> Digest | None:
    return Digest.parse(value) if isinstance(value, str) and value else None


def _hooks_json(hooks: tuple[Hook, ...]) -> list[Json]:
    return [
        {
            "name": h.name,
            "command": list(h.command),
            "onFailure": h.on_failure,
            "timeoutSeconds": h.timeout_seconds,
        }
        for h in hooks
    ]


def _hook_from_json(raw: Mapping[str, Any]) -> Hook:
    return Hook(
        name=str(raw["name"]),
        command=tuple(str(part) for part in raw["command"]),
        on_failure=str(raw.get("onFailure", "rollback")),
        timeout_seconds=int(raw.get("timeoutSeconds", 300)),
    )


def _rollout_json(
    state: RolloutState, image: str, *, waited: int, polls: int, timing: FlowTiming
) -> Json:
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


def _first_reading(cluster: Cluster, colour: Colour, image: str, timing: FlowTiming) -> Json:
    """The rollout right after an apply; unreadable only means "poll again"."""
    try:
        return _rollout_json(cluster.rollout(colour), image, waited=0, polls=0, timing=timing)
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


def _short(image: str) -> str:
    """``…@sha256:abcdef012345`` for messages: the digest is what people recognise."""
    repo, sep, digest = image.partition("@sha256:")
    return f"{repo.rsplit('/', 1)[-1]}@sha256:{digest[:12]}" if sep else image


def describe_colour(cluster: Cluster, colour: Colour) -> str:
    """One line on what a colour runs now and how its rollout stands (best effort)."""
    try:
        state = cluster.rollout(colour)
    except Exception as exc:  # the description must never hide the failure it explains
        return f"{colour} could not be read ({type(exc).__name__}: {exc})"
    status = "rolled out" if state.complete else ("stalled" if state.stalled else "rolling out")
    return (
        f"{colour} runs {_short(state.image)}, {status}, "
        f"{state.available}/{state.desired} available"
    )


def _error_text(error: Mapping[str, Any] | None) -> tuple[str, str]:
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


def _publish(ports: DeployPorts, detail_type: str, detail: Json) -> None:
    # A subscriber outage must not undo a deployment: the ledger is the record.
    try:
        ports.notifier.publish(detail_type, detail)
    except Exception:
        logger.exception("notification failed", extra={"detail_type": detail_type})


def _event_detail(ports: DeployPorts, deployment: Json, outcome: Outcome, reason: str) -> Json:
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


def _renew_lease(ports: DeployPorts, deployment: Mapping[str, Any]) -> None:
    """Extend this deployment's lock lease by ``lock_lease_seconds`` from now.

    Begin takes one lease, but a deploy can outlive it (progress deadline,
    then a rollback's rollout, then hooks), and an expired lease lets a
    waiting execution in while this one still writes to the cluster. Every
    step the holder runs while it holds the lock renews it, so the lease only
    runs out when the holder stopped running steps (died) for a whole lease.
    """
    holder = str(deployment.get("id") or "")
    if not holder:
        return
    try:
        renewed = ports.ledger.acquire_lock(holder, ports.settings.lock_lease_seconds)
    except Exception:
        # One failed write costs nothing yet: the lease is far longer than the
        # longest poll interval, and the next step renews it again.
        logger.exception("could not renew the deployment lock", extra={"holder": holder})
        return
    if renewed:
        return
    taken_by = ports.ledger.lock_holder() or "nobody (released meanwhile)"
    # Carry on rather than fail. The lease ran out while this execution was not
    # running steps, and another deployment took the lock: it is already changing
    # the cluster. Failing here would send this execution down the rollback path,
    # i.e. one more write to the colour behind the new holder's back, which is the
    # very race the lock exists to prevent; finishing what is under way ends this
    # execution soonest. The error log (and the other holder's name) is what an
    # operator needs to check both deployments' results.
    logger.error(
        "DEPLOYMENT LOCK LOST: another deployment took the lock while this one runs; "
        "both may be writing to the cluster",
        extra={
            "holder": holder,
            "lock_taken_by": taken_by,
            "colour": deployment.get("colour"),
            "lease_seconds": ports.settings.lock_lease_seconds,
        },
    )


# --------------------------------------------------------------------------- steps


def refuse_failed_digest(ledger: Ledger, digest: Digest) -> None:
    """``DigestFailed`` when the ledger judged ``digest`` failed (deploying it needs force)."""
    record = ledger.image(digest)
    verdict = record.verdict if record is not None else ledger.verdict(digest)
    if verdict is not Verdict.FAILED:
        return
    why = f": {record.verdict_reason}" if record is not None and record.verdict_reason else ""
    raise DigestFailed(
        f'{digest} was judged failed{why}; send "force": true to deploy it anyway '
        "(bluegreen deploy --force); nothing was changed"
    )


def _colour_of(cluster: Cluster, role: Role) -> Colour:
    canary = cluster.canary_env().selector
    return canary if role is Role.CANARY else canary.other


def _console_record(
    ports: DeployPorts,
    request: FlowRequest,
    deployment_id: str,
    execution_arn: str,
    digest: Digest | None,
    tag: str,
) -> Deployment:
    """The record of a run nobody recorded before starting it: a console run.

    Written before the lock is waited for, so that what the colour runs now is
    the state a queued console run acts on, as the API's requests do.
    """
    return Deployment(
        id=deployment_id,
        application=ports.settings.application,
        action=request.action,
        role=request.service,
        colour=None,
        to_digest=digest,
        from_digest=None,
        trigger=CONSOLE,
        actor=CONSOLE_ACTOR,
        started_at=ports.now(),
        execution_arn=execution_arn,
        tag=tag,
        reason=request.reason,
        force=request.force,
        seen_image=ports.cluster.deployment_image(_colour_of(ports.cluster, request.service)),
        waits_behind=ports.ledger.lock_holder() or "",
    )


def _check_matches(recorded: Deployment, request: FlowRequest) -> None:
    """The input must ask for what the entry point recorded under this execution's name."""
    names = {str(recorded.to_digest), recorded.to_digest.hex} if recorded.to_digest else set()
    same = (
        recorded.action == request.action
        and recorded.role is request.service
        and (request.action != "deploy" or request.image in names | {recorded.tag} - {""})
    )
    if not same:
        raise InvalidInput(
            "input",
            f"does not match the request recorded for {recorded.id} ({recorded.action} "
            f"{recorded.to_digest or ''} to the {recorded.role.value}, by {recorded.trigger}); "
            "nothing was changed",
        )


def _own_record(
    ports: DeployPorts, request: FlowRequest, deployment_id: str, execution_arn: str
) -> Deployment:
    """This execution's record in the ledger, claimed by it.

    The entry point (API, ECR auto-deploy) wrote it before starting the execution:
    it says who started it, and the input must match it. Without one this is a
    console run, recorded now: a failed digest is refused first (no record then),
    and a tag is resolved once, so a retry deploys what the first attempt resolved.
    ``RequestAbandoned`` when the entry point gave up on the request because the
    start failed (it told its caller so).
    """
    ledger = ports.ledger
    recorded = ledger.deployment(deployment_id)
    if recorded is None:
        digest, tag = (
            resolve_image(ledger, request.image) if request.action == "deploy" else (None, "")
        )
        if digest is not None and not request.force:
            refuse_failed_digest(ledger, digest)
        ledger.put_deployment(
            _console_record(ports, request, deployment_id, execution_arn, digest, tag)
        )
        recorded = ledger.deployment(deployment_id)
        if recorded is None:  # pragma: no cover - written just above with a strong read
            raise InvalidInput("execution", f"the record of {deployment_id} could not be written")
    if recorded.execution_arn != execution_arn:
        claimed = ledger.claim_deployment(deployment_id, execution_arn)
        if claimed is None:
            ended = f"{recorded.outcome.value}: {recorded.cause}".rstrip(": ")
            raise RequestAbandoned(
                f"deployment {deployment_id} was given up before its execution began "
                f"({ended}); this execution changes nothing"
            )
        recorded = claimed
    if recorded.trigger != CONSOLE:
        _check_matches(recorded, request)
    return recorded


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
    recorded = _own_record(ports, request, deployment_id, execution_arn)
    digest, tag = recorded.to_digest, recorded.tag
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
        colour, from_digest = recorded.colour, recorded.from_digest
        from_image = settings.image_ref(from_digest) if from_digest else ""
    else:
        colour = _colour_of(cluster, request.service)
        from_image = cluster.deployment_image(colour)
        from_digest = digest_of_image(from_image)
        if digest is not None and not recorded.force:
            refuse_failed_digest(ledger, digest)
        ledger.update_deployment(deployment_id, colour=colour, from_digest=from_digest)
    image = settings.image_ref(digest) if digest else ""
    deployment: Json = {
        "id": deployment_id,
        "arn": execution_arn,
        "action": request.action,
        "service": request.service.value,
        "colour": colour.value,
        "digest": str(digest) if digest else None,
        "image": image,
        "tag": tag,
        "fromDigest": str(from_digest) if from_digest else None,
        "fromImage": from_image,
        "trigger": recorded.trigger,
        "actor": recorded.actor,
        "reason": recorded.reason,
    }
    hooks = _hooks_json(settings.hooks)

    if request.action == "rollback":
        if recorded.seen_image and from_image != recorded.seen_image:
            cause = (
                f"nothing to roll back: {colour} ({request.service}) runs {_short(from_image)} "
                f"now, not {_short(recorded.seen_image)} that the rollback was asked for"
                f"{f' (it waited behind {recorded.waits_behind})' if recorded.waits_behind else ''}"
                "; nothing was changed and no verdict was touched"
            )
            ledger.finish_deployment(deployment_id, Outcome.NO_OP, cause)
            ledger.release_lock(deployment_id)
            return {"status": "no_op", "deployment": deployment, "cause": cause}
        running = _short(from_image)
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
    rollout = _first_reading(cluster, colour, image, timing)
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
    deployment = {
        "id": recorded.id,
        "arn": recorded.execution_arn,
        "action": recorded.action,
        "service": recorded.role.value,
        "colour": recorded.colour.value if recorded.colour else None,
        "digest": str(recorded.to_digest) if recorded.to_digest else None,
        "image": settings.image_ref(recorded.to_digest) if recorded.to_digest else "",
        "trigger": recorded.trigger,
        "actor": recorded.actor,
        "reason": recorded.reason,
    }
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
    _renew_lease(ports, deployment)
    colour = Colour.parse(deployment["colour"])
    image = str(previous["image"])
    waited = int(previous.get("waited", 0)) + int(previous.get("waitSeconds", 0))
    polls = int(previous.get("polls", 0)) + 1
    state = ports.cluster.rollout(colour)
    reading = _rollout_json(state, image, waited=waited, polls=polls, timing=ports.timing)
    if reading["complete"]:
        return reading
    where = f"{colour} ({settings.deployment_name(colour)}) rolling out {_short(image)}"
    if state.image != image:
        raise RolloutFailed(
            f"{where}: the Deployment's image was changed to {_short(state.image)} meanwhile"
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


def _hook_key(phase: str, hook: Hook) -> str:
    return hook.name if phase == "deploy" else f"{phase}:{hook.name}"


def _run_json(
    hook: Hook,
    job: str,
    *,
    finished: bool,
    succeeded: bool,
    reason: str,
    waited: int,
    polls: int,
    timing: FlowTiming,
) -> Json:
    return {
        "hook": hook.name,
        "job": job,
        "finished": finished,
        "succeeded": succeeded,
        "reason": reason,
        "waitSeconds": timing.backoff(timing.hook_poll_first, timing.hook_poll_max, polls),
        "waited": waited,
        "polls": polls,
    }


def _judge_hook(event: Json, ports: DeployPorts, job: str, waited: int, polls: int) -> Json:
    deployment, phase = event["deployment"], str(event.get("phase", "deploy"))
    _renew_lease(ports, deployment)
    hook = _hook_from_json(event["hook"])
    colour = Colour.parse(deployment["colour"])
    run = ports.cluster.hook_run(job)
    timed_out = not run.finished and waited >= hook.timeout_seconds
    if not run.finished and not timed_out:
        return _run_json(
            hook,
            job,
            finished=False,
            succeeded=False,
            reason="",
            waited=waited,
            polls=polls,
            timing=ports.timing,
        )
    reason = run.reason if run.finished else f"timed out after {hook.timeout_seconds}s"
    _keep_log(
        ports, str(deployment["id"]), _hook_key(phase, hook), run.log_tail, reason, run.succeeded
    )
    if not run.succeeded and hook.on_failure == "rollback" and phase == "deploy":
        lines = [line.strip() for line in run.log_tail.strip().splitlines() if line.strip()]
        # wp-cli and most tools print "Error: ..." first: that line says why, not the last.
        telling = [line for line in lines if line.lower().startswith(("error", "fatal"))]
        tail = telling[:2] or lines[-3:]
        raise HookFailed(
            f"hook {hook.name!r} (Job {job}, command {' '.join(hook.command)!r}) on {colour} "
            f"failed: {reason or 'Job failed'}"
            + (f"; log tail: {' | '.join(tail)}" if tail else "")
        )
    return _run_json(
        hook,
        job,
        finished=True,
        succeeded=run.succeeded,
        reason=reason,
        waited=waited,
        polls=polls,
        timing=ports.timing,
    )


def _keep_log(
    ports: DeployPorts, deployment_id: str, key: str, tail: str, reason: str, succeeded: bool
) -> None:
    # Hooks run one at a time (MaxConcurrency 1), so read-merge-write cannot lose a log.
    current = ports.ledger.deployment(deployment_id)
    logs = dict(current.hook_logs) if current else {}
    status = "succeeded" if succeeded else f"failed: {reason}"
    logs[key] = f"[{status}]\n{tail}".strip()
    ports.ledger.update_deployment(deployment_id, hook_logs=logs)


def start_hook(event: Json, ports: DeployPorts) -> Json:
    """Create the hook's Job from the colour's pod template and take a first reading."""
    deployment, phase = event["deployment"], str(event.get("phase", "deploy"))
    hook = _hook_from_json(event["hook"])
    colour = Colour.parse(deployment["colour"])
    roles.check_may_touch(ports.cluster, f"hook {hook.name!r}", Role(deployment["service"]), colour)
    job = ports.cluster.start_hook(colour, hook, _run_id(str(deployment["id"]), phase))
    return _judge_hook(event, ports, job, waited=0, polls=0)


def _run_id(deployment_id: str, phase: str) -> str:
    return deployment_id if phase == "deploy" else f"{deployment_id}-{phase}"


def check_hook(event: Json, ports: DeployPorts) -> Json:
    """Poll a hook's Job; ``HookFailed`` when it failed or timed out and must roll back."""
    previous = event["run"]
    waited = int(previous.get("waited", 0)) + int(previous.get("waitSeconds", 0))
    return _judge_hook(event, ports, str(previous["job"]), waited, int(previous["polls"]) + 1)


def finish(event: Json, ports: DeployPorts) -> Json:
    """Judge health after the bake; on success mark healthy, record, notify and release."""
    settings, ledger, cluster = ports.settings, ports.ledger, ports.cluster
    deployment = event["deployment"]
    _renew_lease(ports, deployment)
    colour = Colour.parse(deployment["colour"])
    digest = Digest.parse(deployment["digest"])
    policy = HealthPolicy(url=settings.health_url, alarm_names=settings.alarm_names)
    problems = health_problems(cluster, colour, policy, ports.probes)
    if problems:
        raise HealthCheckFailed(
            f"{_short(deployment['image'])} on {colour} failed its health checks after "
            f"{event.get('bakeSeconds', 0)}s bake: {'; '.join(problems)}"
        )
    ledger.set_verdict(digest, Verdict.HEALTHY, f"deployment {deployment['id']}")
    if cluster.canary_env().selector is colour:
        cluster.set_canary_image(str(deployment["image"]))
    reason = f"{digest.short} healthy on {colour} ({deployment['service']})"
    ledger.finish_deployment(str(deployment["id"]), Outcome.SUCCEEDED, reason)
    _publish(ports, events.SUCCEEDED, _event_detail(ports, deployment, Outcome.SUCCEEDED, reason))
    ledger.release_lock(str(deployment["id"]))
    return {
        "outcome": Outcome.SUCCEEDED.value,
        "digest": str(digest),
        "colour": colour.value,
        "deploymentId": deployment["id"],
    }


@dataclass(frozen=True)
class RollbackChoice:
    """Where a colour goes back to, and in words why (or why nowhere)."""

    target: Digest | None
    why: str


def choose_rollback_target(
    ledger: Ledger,
    *,
    current: Digest | None,
    before: Digest | None,
    before_unknown: str,
    role: Role = Role.CANARY,
) -> RollbackChoice:
    """The digest a colour serving ``role`` rolls back to, away from ``current``.

    ``before`` is what the colour ran before ``current`` (``None`` when that is
    not known; ``before_unknown`` then says why, for the Cause). Never a digest
    judged failed, never ``current``. For the canary, in order:

    1. ``before``, when it is judged healthy;
    2. else the application's most recently judged healthy digest: it may have
       run on the other colour only, but it is known to be good, which
       ``before`` is not;
    3. else ``before``, when it was never judged failed;
    4. else nothing: the caller leaves the cluster as it is.

    For production, what production ran comes first, so that a failed deploy
    or rollback of production never quietly promotes what the canary passed:

    1. ``before``, when it is judged healthy;
    2. else ``before``, when it was never judged failed (it served production
       until now);
    3. else the most recent digest judged healthy among those the ledger's
       production deployments ran (``ran_on_production``);
    4. else the most recent digest judged healthy, though it never ran on
       production: nothing production ran is safe, and the Cause says so;
    5. else nothing.
    """
    usable = before if before is not None and before != current else None
    verdict = ledger.verdict(usable) if usable is not None else Verdict.UNKNOWN
    exclude = [current] if current is not None else []
    if usable is not None and verdict is Verdict.HEALTHY:
        return RollbackChoice(usable, "what ran before, judged healthy")
    if role is Role.PRODUCTION:
        if usable is not None and verdict is not Verdict.FAILED:
            return RollbackChoice(usable, "what production ran before, never judged failed")
        ran = ran_on_production(ledger, exclude=exclude)
        if ran is not None:
            return RollbackChoice(ran, "the most recent healthy digest production ran")
        healthy = ledger.last_healthy(exclude=exclude)
        if healthy is not None:
            return RollbackChoice(
                healthy,
                "the most recent digest judged healthy; it never ran on production, but "
                "nothing production ran is safe",
            )
    else:
        healthy = ledger.last_healthy(exclude=exclude)
        if healthy is not None:
            return RollbackChoice(healthy, "the most recent digest judged healthy")
        if usable is not None and verdict is not Verdict.FAILED:
            return RollbackChoice(
                usable, "what ran before, never judged failed; no other digest is judged healthy"
            )
    if before is None:
        about_before = before_unknown
    elif before == current:
        about_before = f"what ran before is {before.short}, the digest being rolled back"
    else:
        about_before = f"what ran before, {before.short}, is judged failed"
    others = f"other than {current.short} " if current is not None else ""
    return RollbackChoice(None, f"{about_before}, and no digest {others}is judged healthy")


def ran_on_production(ledger: Ledger, exclude: Sequence[Digest] = ()) -> Digest | None:
    """The newest digest judged healthy that production ran, from the ledger's deployments.

    A production deployment shows what production ran before it (its
    from-digest), what it put there when it succeeded and what it rolled back
    to; the newest of those judged healthy and not in ``exclude`` wins, among
    the newest ``_HISTORY_PAGES * _HISTORY_PAGE_SIZE`` deployments.
    """
    seen: set[Digest] = set(exclude)
    cursor: str | None = None
    for _ in range(_HISTORY_PAGES):
        page, cursor = ledger.deployments(limit=_HISTORY_PAGE_SIZE, cursor=cursor)
        for recorded in page:
            if recorded.role is not Role.PRODUCTION or recorded.action not in ACTIONS:
                continue
            landed = recorded.to_digest if recorded.outcome is Outcome.SUCCEEDED else None
            for candidate in (landed, recorded.rolled_back_to, recorded.from_digest):
                if candidate is None or candidate in seen:
                    continue
                seen.add(candidate)
                if ledger.verdict(candidate) is Verdict.HEALTHY:
                    return candidate
        if cursor is None:
            break
    return None


_HISTORY_PAGES = 4
_HISTORY_PAGE_SIZE = 50


def ran_before(ledger: Ledger, colour: Colour, current: Digest) -> Digest | None:
    """What ``colour`` ran before ``current``, from the ledger's deployments.

    The from-digest of the newest successful deployment that put ``current`` on
    ``colour`` (one that changed the digest), among the newest
    ``_HISTORY_PAGES * _HISTORY_PAGE_SIZE`` deployments: older history is not
    worth the reads, and a rollback target that old would surprise.
    """
    cursor: str | None = None
    for _ in range(_HISTORY_PAGES):
        page, cursor = ledger.deployments(limit=_HISTORY_PAGE_SIZE, cursor=cursor)
        for recorded in page:
            if (
                recorded.colour is colour
                and recorded.outcome is Outcome.SUCCEEDED
                and recorded.to_digest == current
                and recorded.from_digest is not None
                and recorded.from_digest != current
            ):
                return recorded.from_digest
        if cursor is None:
            break
    return None


def _choose_for(ports: DeployPorts, deployment: Json, colour: Colour) -> RollbackChoice:
    """The rollback choice for a failed deploy or a requested rollback."""
    from_image = str(deployment.get("fromImage") or "")
    from_digest = _digest_or_none(deployment.get("fromDigest"))
    role = Role.parse(deployment.get("service", Role.CANARY.value))
    if deployment.get("action") != "rollback":
        shown = _short(from_image) if from_image else "nothing"
        return choose_rollback_target(
            ports.ledger,
            current=_digest_or_none(deployment.get("digest")),
            before=from_digest,
            before_unknown=f"what {colour} ran before this deploy ({shown}) is not a digest",
            role=role,
        )
    # A requested rollback: the colour runs ``fromDigest`` now; what ran before it is
    # in the deployment history, not in this record.
    if from_digest is None:
        shown = from_image or "nothing"
        return choose_rollback_target(
            ports.ledger,
            current=None,
            before=None,
            before_unknown=(
                f"{colour} runs {shown}, which is not pinned to a digest, so what ran "
                "before it is unknown"
            ),
            role=role,
        )
    pages = _HISTORY_PAGES * _HISTORY_PAGE_SIZE
    return choose_rollback_target(
        ports.ledger,
        current=from_digest,
        before=ran_before(ports.ledger, colour, from_digest),
        before_unknown=(
            f"the ledger's latest {pages} deployments hold no successful one that put "
            f"{from_digest.short} on {colour}, so what ran before it is unknown"
        ),
        role=role,
    )


def _judge_failed(
    ports: DeployPorts, deployment: Mapping[str, Any], digest: Digest, why: str
) -> str:
    """Mark ``digest`` failed, unless the canary is concerned and production runs it.

    A canary's failure or rollback says nothing certain about the digest
    production serves, and marking it failed would forbid every later rollback
    of production to what it runs. Returns what the Cause adds ("" when marked).
    """
    if deployment.get("service") == Role.CANARY.value:
        production = Colour.parse(deployment["colour"]).other
        if digest_of_image(ports.cluster.deployment_image(production)) == digest:
            return (
                f" {digest.short} was not marked failed: production ({production}) runs it; "
                "roll production back too if it is bad there."
            )
    ports.ledger.set_verdict(digest, Verdict.FAILED, why)
    return ""


def roll_back(event: Json, ports: DeployPorts) -> Json:
    """Point the colour at the digest ``choose_rollback_target`` picks, away from the bad one.

    For a failed deploy the bad digest is the one deployed and what ran before
    is the record's from-digest. For a requested rollback the bad digest is
    what the colour runs now and what ran before is read from the ledger's
    deployments (``ran_before``). Never a digest judged failed. With nothing to
    go back to, the cluster is left as it is: the failure is recorded, notified
    and the lock released, and ``status`` is ``stuck`` with an Error/Cause (which
    says why nothing qualified and what the colour runs) for the flow's Fail state.
    """
    settings, ledger, cluster = ports.settings, ports.ledger, ports.cluster
    deployment = event["deployment"]
    _renew_lease(ports, deployment)
    colour = Colour.parse(deployment["colour"])
    manual = deployment.get("action") == "rollback"
    failed = _digest_or_none(deployment.get("fromDigest" if manual else "digest"))
    error_name, error_text = _error_text(event.get("error"))
    choice = _choose_for(ports, deployment, colour)
    target = choice.target
    if target is None:
        now = describe_colour(cluster, colour)
        what = (error_text or "rollback requested") if manual else f"{error_name}: {error_text}"
        cause = (
            f"{what.rstrip('.')}. No digest to roll back to: {choice.why}. "
            f"The cluster was left as it is: {now}."
        )
        if failed is not None and not manual:
            cause += _judge_failed(ports, deployment, failed, f"{error_name}: {error_text}")
        ledger.finish_deployment(str(deployment["id"]), Outcome.FAILED, cause)
        _publish(ports, events.FAILED, _event_detail(ports, deployment, Outcome.FAILED, cause))
        ledger.release_lock(str(deployment["id"]))
        return {"status": "stuck", "Error": "NoHealthyDigest", "Cause": cause}
    image = settings.image_ref(target)
    roles.check_may_touch(cluster, "rollback", Role(deployment["service"]), colour)
    cluster.set_deployment_image(colour, image)
    ledger.update_deployment(str(deployment["id"]), rolled_back_to=target)
    rollout = _first_reading(cluster, colour, image, ports.timing)
    return {
        "status": "rolling_back",
        "target": str(target),
        "why": choice.why,
        "image": image,
        "rollout": rollout,
    }


def conclude_rollback(event: Json, ports: DeployPorts) -> Json:
    """Mark the bad digest failed, record the rollback, notify and release the lock.

    Returns the Error/Cause the execution ends with (``manual`` when a person
    asked for the rollback: then the flow succeeds).
    """
    ledger, cluster = ports.ledger, ports.cluster
    deployment, rollback = event["deployment"], event["rollback"]
    _renew_lease(ports, deployment)
    colour = Colour.parse(deployment["colour"])
    manual = deployment.get("action") == "rollback"
    failed = _digest_or_none(deployment.get("fromDigest" if manual else "digest"))
    target = Digest.parse(rollback["target"])
    why = f" ({rollback['why']})" if rollback.get("why") else ""
    error_name, error_text = _error_text(event.get("error"))
    hook_runs = event.get("hookRuns") or []
    hooks_said = (
        ", ".join(
            f"{run['hook']} {'ok' if run.get('succeeded') else 'FAILED: ' + str(run.get('reason'))}"
            for run in hook_runs
        )
        or "none configured"
    )
    spared = ""
    if failed is not None and failed != target:
        spared = _judge_failed(ports, deployment, failed, f"{error_name}: {error_text}")
    now = describe_colour(cluster, colour)
    what = f"rolled back by request ({error_text})" if manual else f"{error_name}: {error_text}"
    # Kubernetes messages end with a full stop of their own.
    what = what.rstrip(".")
    cause = (
        f"{what}. {colour} ({deployment['service']}) was rolled back to {target.short}{why}; "
        f"hooks re-run: {hooks_said}. Cluster now: {now}.{spared}"
    )
    ledger.finish_deployment(
        str(deployment["id"]), Outcome.ROLLED_BACK, cause, rolled_back_to=target
    )
    if cluster.canary_env().selector is colour:
        cluster.set_canary_image(ports.settings.image_ref(target))
    _publish(
        ports,
        events.ROLLED_BACK,
        {
            **_event_detail(ports, deployment, Outcome.ROLLED_BACK, cause),
            "rolledBackTo": str(target),
        },
    )
    ledger.release_lock(str(deployment["id"]))
    return {"manual": manual, "Error": error_name, "Cause": cause, "rolledBackTo": str(target)}


def abort(event: Json, ports: DeployPorts) -> Json:
    """Last resort of every path: release the lock, record the failure, explain it.

    Reached before the apply (nothing on the cluster was touched), or when the
    rollback itself failed (then the Cause says what the colour runs now).
    """
    state = event.get("state") or {}
    execution = event.get("execution") or {}
    deployment_id = str(execution.get("name", ""))
    first_name, first_text = _error_text(state.get("error"))
    ports.ledger.release_lock(deployment_id)
    deployment = state.get("deployment")
    if "rollbackError" in state and isinstance(deployment, dict):
        second_name, second_text = _error_text(state["rollbackError"])
        colour = Colour.parse(deployment["colour"])
        cause = (
            f"{first_name}: {first_text}. The rollback then failed too ({second_name}: "
            f"{second_text}). Cluster now: {describe_colour(ports.cluster, colour)}."
        )
        name = second_name
        failed = _digest_or_none(deployment.get("digest"))
        if failed is not None and deployment.get("action") == "deploy":
            cause += _judge_failed(ports, deployment, failed, f"{first_name}: {first_text}")
    else:
        name, cause = first_name, first_text
        if isinstance(deployment, dict) or ports.ledger.deployment(deployment_id) is not None:
            cause = f"{cause} (before the image was applied: the cluster was not changed)"
    recorded = ports.ledger.deployment(deployment_id) if deployment_id else None
    if recorded is not None and recorded.outcome is Outcome.RUNNING:
        ports.ledger.finish_deployment(deployment_id, Outcome.FAILED, f"{name}: {cause}")
        detail = _event_detail(ports, deployment or {"id": deployment_id}, Outcome.FAILED, cause)
        _publish(ports, events.FAILED, detail)
    return {"Error": name, "Cause": cause}


STEPS: Mapping[str, Callable[[Json, DeployPorts], Json]] = {
    "begin": begin,
    "check_rollout": check_rollout,
    "start_hook": start_hook,
    "check_hook": check_hook,
    "finish": finish,
    "roll_back": roll_back,
    "conclude_rollback": conclude_rollback,
    "abort": abort,
}


def run_step(event: Mapping[str, Any], ports: DeployPorts) -> Json:
    """Dispatch a Task's payload ``{"step": <name>, ...}`` to its step."""
    name = event.get("step")
    step = STEPS.get(name) if isinstance(name, str) else None
    if step is None:
        raise InvalidInput("step", f"{name!r} is not a step of the deploy flow: {sorted(STEPS)}")
    return step(dict(event), ports)
