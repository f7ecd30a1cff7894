"""What the services API does: read the roles, switch the canary, start deployments.

Plain domain logic over the ports (``requests.ReleasePorts``): the cluster
(roles, rollouts, the switch), the ledger (tags, images, the lock, the record of
switches), the deploy flow (every image change goes through it, never straight to
the cluster) and the image registry (does a digest exist in the application's ECR
repository). Nothing here reads the environment or knows about HTTP; the handler
maps results and errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bluegreen.config import Settings
from bluegreen.domain.errors import (
    BlueGreenError,
    DigestFailed,
    InvalidInput,
    LockHeld,
    NotPromotable,
    UnknownImage,
)
from bluegreen.domain.executions import execution_name
from bluegreen.domain.flow_input import TEXT_LIMIT
from bluegreen.domain.models import (
    TAG_GRAMMAR,
    CanaryEnv,
    Colour,
    Deployment,
    Digest,
    ImageRecord,
    Outcome,
    Role,
    RolloutState,
    Verdict,
    is_tag,
)
from bluegreen.domain.ports import Cluster, ImageRegistry, Ledger
from bluegreen.domain.traffic import Confirmation, Traffic
from bluegreen.logic import roles
from bluegreen.logic.promotion.plan import refuse_during_promotion
from bluegreen.logic.requests import (
    SWITCH_ACTION,
    Caller,
    DeploymentStarted,
    ReleasePorts,
    request_record,
    start_flow,
)

REASON_LIMIT = TEXT_LIMIT
"""Longest ``reason`` a request may carry: the deploy flow's own limit on its text
inputs, so the API never accepts a reason the flow would then refuse."""


class AlreadyDeploying(BlueGreenError):
    """The running deployment is already deploying this digest to the same service."""


@dataclass(frozen=True)
class ColourStatus:
    """One colour's Deployment: its role, what it runs and how its rollout stands."""

    colour: Colour
    role: Role
    rollout: RolloutState

    @property
    def rollout_state(self) -> str:
        """``complete``, ``stalled`` or ``progressing``, as a person reads it."""
        if self.rollout.stalled:
            return "stalled"
        return "complete" if self.rollout.complete else "progressing"


@dataclass(frozen=True)
class ServiceStatus:
    """Canary and production at a glance, with any disagreement spelled out."""

    canary: Colour
    canary_env: CanaryEnv
    selectors: dict[Role, Colour | None]
    colours: dict[Colour, ColourStatus]
    disagreements: tuple[str, ...] = ()
    traffic: Traffic | None = None
    """What the router object says (None for a cluster adapter without routers)."""
    confirmation: Confirmation | None = None
    """Whether the data plane applies it (None when it could not be read)."""
    confirmation_problem: str = ""
    """Why the data plane could not be read (empty when it was)."""

    @property
    def production(self) -> Colour:
        return self.canary.other

    @property
    def in_agreement(self) -> bool:
        return not self.disagreements


@dataclass(frozen=True)
class SwitchResult:
    """The outcome of ``switch_canary``: the roles as they are now and whether they changed."""

    changed: bool
    canary: Colour
    record_id: str | None = None
    record_error: str = ""

    @property
    def production(self) -> Colour:
        return self.canary.other

    @property
    def recorded(self) -> bool:
        """Whether the ledger holds a record of this switch (none when nothing changed)."""
        return self.record_id is not None


def service_status(cluster: Cluster) -> ServiceStatus:
    """Read the roles, both Services' selectors and both colours' rollouts.

    The ConfigMap is the source of truth for the roles (that is what the old
    system and the deploy flow read); any Service that says otherwise is
    reported as a disagreement rather than silently trusted.
    """
    release = cluster.snapshot()
    env, selectors = release.canary_env, release.selectors
    canary = env.selector
    colours = {
        colour: ColourStatus(
            colour=colour,
            role=Role.CANARY if colour is canary else Role.PRODUCTION,
            rollout=release.rollouts[colour],
        )
        for colour in Colour
    }
    traffic = release.traffic
    confirmation, problem = None, ""
    try:
        confirmation = cluster.confirm_traffic()
    except BlueGreenError as exc:  # the release is still worth showing without it
        problem = str(exc)
    return ServiceStatus(
        canary=canary,
        canary_env=env,
        selectors=dict(selectors),
        colours=colours,
        disagreements=(
            roles.traffic_disagreements(env, traffic)
            if traffic is not None
            else roles.disagreements(canary, selectors)
        ),
        traffic=traffic,
        confirmation=confirmation,
        confirmation_problem=problem,
    )


def switch_canary(
    ports: ReleasePorts,
    caller: Caller,
    canary: Colour,
    *,
    now: datetime | None = None,
    reason: str = "",
) -> SwitchResult:
    """Make ``canary`` the canary colour and the other one production.

    Refused with ``LockHeld`` while a deployment holds the application's lock:
    the flow decided which colour it deploys to when it started, and swapping
    roles under it would send production traffic to an unproven image. The lock
    is checked again once the canary Service has moved and before canaryEnv is
    written: a deployment that took the lock in between either sees the Services
    disagree with canaryEnv (and refuses, ``logic.roles``) or is seen here, and the
    switch is put back. The cluster adapter orders and guards the writes; when
    everything already says so nothing is written, here or in the ledger. A switch
    that could not complete raises ``SwitchRestored`` (the previous roles are back)
    or ``SwitchIncomplete`` (naming what it left).
    """
    settings, ledger, cluster = ports.settings, ports.ledger, ports.cluster
    _refuse_while_locked(ledger, settings)
    if not cluster.switch_roles(canary, confirm=lambda: _refuse_while_locked(ledger, settings)):
        return SwitchResult(changed=False, canary=canary)
    when = now or datetime.now(UTC)
    record_id = execution_name(settings.application, SWITCH_ACTION, caller.request_key)
    record = Deployment(
        id=record_id,
        application=settings.application,
        action=SWITCH_ACTION,
        role=Role.CANARY,
        colour=canary,
        to_digest=None,
        from_digest=None,
        trigger="api",
        actor=caller.actor,
        started_at=when,
        outcome=Outcome.SUCCEEDED,
        source_ip=caller.source_ip,
        finished_at=when,
        reason=reason or f"{canary.value} made the canary, {canary.other.value} production",
    )
    try:
        ledger.put_deployment(record)
    except Exception as exc:
        # The roles have changed already; failing the request now would tell the caller
        # the opposite. The answer says the record is missing and the handler logs it.
        return SwitchResult(
            changed=True, canary=canary, record_id=None, record_error=f"{type(exc).__name__}: {exc}"
        )
    return SwitchResult(changed=True, canary=canary, record_id=record_id)


def _refuse_while_locked(ledger: Ledger, settings: Settings) -> None:
    holder = ledger.lock_holder()
    if holder:
        raise LockHeld(
            f"deployment {holder} of {settings.application} holds the lock; "
            "the canary colour can be switched once it has finished"
        )


def resolve_image(
    ledger: Ledger, registry: ImageRegistry, value: str
) -> tuple[Digest, str, ImageRecord | None]:
    """Turn what a caller sent as ``imageTag`` into a digest that is known to exist.

    Accepts ``sha256:<64 hex>``, bare ``<64 hex>`` (the original field's content)
    or a tag the ledger knows. Returns the digest, the tag it came from ("" for
    a digest) and the ledger's record of the digest (None when only ECR has it).
    The digest must be in the ledger or in the ECR repository, so a
    typo is a 404 here rather than a rollout stuck on ``ImagePullBackOff``.
    """
    text = value.strip()
    if not text:
        raise InvalidInput("imageTag", "must not be empty: send a digest or a tag")
    tag = ""
    if ":" in text or Digest.looks_like(text):  # a tag never holds a colon
        digest = Digest.parse(text, field_name="imageTag")
    elif is_tag(text):
        tag = text
        found = ledger.digest_for_tag(tag)
        if found is None:
            raise UnknownImage(f"imageTag: no image tagged {tag!r} has been pushed")
        digest = found
    else:
        raise InvalidInput(
            "imageTag",
            f"{value!r} is neither a digest (sha256:<64 hex> or 64 lowercase hex) nor an "
            f"image tag ({TAG_GRAMMAR})",
        )
    record = ledger.image(digest)
    if record is None and not registry.has_digest(digest):
        raise UnknownImage(
            f"imageTag: {digest} is neither in the ledger nor in the image repository"
        )
    return digest, tag, record


def _deploy_input(digest: Digest, role: Role, reason: str, force: bool) -> dict[str, object]:
    flow_input: dict[str, object] = {
        "action": "deploy",
        "image": str(digest),
        "service": role.value,
    }
    if reason:
        flow_input["reason"] = reason
    if force:
        flow_input["force"] = True
    return flow_input


def request_deploy(
    ports: ReleasePorts,
    caller: Caller,
    image: str,
    role: Role = Role.CANARY,
    *,
    reason: str = "",
    force: bool = False,
) -> DeploymentStarted:
    """Start the deploy flow for an image on the canary (or production) colour.

    The tag is resolved here so the flow deploys what the caller saw, even if the
    tag moves before the flow runs. Each call is its own deployment: the
    execution name carries the request id as well as the digest. While another
    deployment holds the lock the request is queued behind it (``waits_behind``);
    the flow checks the digest's verdict again when it gets the lock.

    Refused with ``DigestFailed`` when the ledger judged the digest failed (a
    known-broken image), unless ``force``; and with ``AlreadyDeploying`` when
    the deployment holding the lock is deploying that digest to that service
    already, which would only queue a duplicate behind it. Refused with
    ``RolesDisagree`` while canaryEnv and the Services disagree (``logic.roles``).
    """
    settings, ledger = ports.settings, ports.ledger
    refuse_during_promotion(ledger)
    roles.check_may_touch(ports.cluster, "deploy", role)
    digest, tag, record = resolve_image(ledger, ports.registry, image)
    # A digest the ledger never saw pushed (one a cluster ran before the stack existed)
    # still has a verdict once a rollback judged it: the flow would refuse it, so do we.
    verdict = record.verdict if record is not None else ledger.verdict(digest)
    if verdict is Verdict.FAILED and not force:
        why = f": {record.verdict_reason}" if record is not None and record.verdict_reason else ""
        raise DigestFailed(
            f'{digest} was judged failed{why}; send "force": true (bluegreen deploy '
            "--force) to deploy it anyway"
        )
    holder = ledger.lock_holder()
    _refuse_duplicate(ledger, holder, digest, role)
    if tag and not reason:
        reason = f"tag {tag}"
    name = execution_name(settings.application, "deploy", f"{digest.hex}-{caller.request_key}")
    return start_flow(
        ports,
        record=request_record(
            settings,
            caller,
            name=name,
            action="deploy",
            role=role,
            waits_behind=holder,
            digest=digest,
            tag=tag,
            reason=reason,
            force=force,
        ),
        flow_input=_deploy_input(digest, role, reason, force),
    )


def _refuse_duplicate(ledger: Ledger, holder: str | None, digest: Digest, role: Role) -> None:
    """``AlreadyDeploying`` when the lock holder's record deploys ``digest`` to ``role``.

    The roles cannot change while the lock is held (``switch_canary`` refuses),
    so the holder's service is the colour this request would deploy to.
    """
    if not holder:
        return
    running = ledger.deployment(holder)
    if (
        running is not None
        and running.outcome is Outcome.RUNNING
        and running.action == "deploy"
        and running.role is role
        and running.to_digest == digest
    ):
        colour = f" ({running.colour.value})" if running.colour else ""
        raise AlreadyDeploying(
            f"deployment {running.id} is already deploying {digest} to the {role.value}"
            f"{colour}; follow it with GET /deployments/{running.id} (bluegreen show "
            f"{running.id})"
        )


def request_rollback(
    ports: ReleasePorts,
    caller: Caller,
    role: Role = Role.CANARY,
    *,
    reason: str = "",
) -> DeploymentStarted:
    """Start the flow's rollback of ``role``, of the image the caller sees there now.

    That image is recorded with the request: a rollback queued behind another
    deployment (``waits_behind``) that finds its colour running something else
    when it gets the lock ends as a no-op, touching neither the cluster nor a
    verdict, instead of rolling back a digest its caller never saw there.
    Refused with ``RolesDisagree`` while canaryEnv and the Services disagree.
    """
    settings, ledger, cluster = ports.settings, ports.ledger, ports.cluster
    refuse_during_promotion(ledger)
    roles.check_may_touch(cluster, "rollback", role)
    canary = cluster.canary_env().selector
    seen = cluster.deployment_image(canary if role is Role.CANARY else canary.other)
    name = execution_name(settings.application, "rollback", f"{role.value}-{caller.request_key}")
    flow_input: dict[str, object] = {"action": "rollback", "service": role.value}
    if reason:
        flow_input["reason"] = reason
    return start_flow(
        ports,
        record=request_record(
            settings,
            caller,
            name=name,
            action="rollback",
            role=role,
            waits_behind=ledger.lock_holder(),
            reason=reason,
            seen_image=seen,
        ),
        flow_input=flow_input,
    )


def promote(
    ports: ReleasePorts,
    caller: Caller,
    *,
    reason: str = "",
) -> DeploymentStarted:
    """Deploy the digest the canary runs now to production, through the flow.

    Refused with ``LockHeld`` while a deployment holds the lock: what the canary
    runs is not settled until it ends (it may be rolled back), so there is no
    state the caller could have seen worth promoting. Refused (``NotPromotable``)
    when the canary runs no pinned digest, when the ledger judged that digest
    failed, or when production already runs it; with ``RolesDisagree`` while
    canaryEnv and the Services disagree.
    """
    settings, ledger, cluster = ports.settings, ports.ledger, ports.cluster
    roles.check_may_touch(cluster, "promotion", Role.PRODUCTION)
    holder = ledger.lock_holder()
    if holder:
        raise LockHeld(
            f"deployment {holder} of {settings.application} holds the lock; what the canary "
            f"runs is not settled until it ends: promote once it has finished (bluegreen "
            f"watch {holder})"
        )
    canary = cluster.canary_env().selector
    canary_state = cluster.rollout(canary)
    digest = canary_state.digest
    if digest is None:
        raise NotPromotable(
            f"the canary ({canary.value}) runs {canary_state.image!r}, not an image pinned "
            "by digest; deploy a digest to the canary first"
        )
    if ledger.verdict(digest) is Verdict.FAILED:
        raise NotPromotable(
            f"the canary's digest {digest} was judged failed; it will not be promoted"
        )
    production = cluster.rollout(canary.other)
    if production.digest == digest:
        raise NotPromotable(f"production ({canary.other.value}) already runs {digest}")
    name = execution_name(settings.application, "promote", f"{digest.hex}-{caller.request_key}")
    reason = reason or f"promote the canary's {digest.short} to production"
    return start_flow(
        ports,
        record=request_record(
            settings,
            caller,
            name=name,
            action="deploy",
            role=Role.PRODUCTION,
            waits_behind=None,
            digest=digest,
            reason=reason,
            seen_image=production.image,
        ),
        flow_input=_deploy_input(digest, Role.PRODUCTION, reason, False),
    )
