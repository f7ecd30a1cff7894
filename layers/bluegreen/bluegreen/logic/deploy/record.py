"""The execution's record in the ledger: claimed from the entry point, or written for a
console run, and checked against the input."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bluegreen.domain.errors import DigestFailed, InvalidInput, RequestAbandoned, UnknownImage
from bluegreen.domain.flow_input import CONSOLE, CONSOLE_ACTOR, FlowRequest
from bluegreen.domain.models import Colour, Deployment, Digest, Role, Verdict

if TYPE_CHECKING:  # the API checks digests with ``refuse_failed_digest``: no ports at run time
    from bluegreen.config import Settings
    from bluegreen.domain.ports import Cluster, Ledger
from bluegreen.logic.deploy.ports import DeployPorts, Json


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


def colour_of(cluster: Cluster, role: Role) -> Colour:
    """The colour serving ``role`` now, as canaryEnv says."""
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
        seen_image=ports.cluster.deployment_image(colour_of(ports.cluster, request.service)),
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


def own_record(
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


def deployment_json(recorded: Deployment, settings: Settings, from_image: str = "") -> Json:
    """The ``deployment`` state the flow carries, from the record (see ``logic.deploy``).

    ``from_image`` is what the colour ran when Begin read it; without it, the image of
    the recorded from-digest.
    """
    to_digest, from_digest = recorded.to_digest, recorded.from_digest
    return {
        "id": recorded.id,
        "arn": recorded.execution_arn,
        "action": recorded.action,
        "service": recorded.role.value,
        "colour": recorded.colour.value if recorded.colour else None,
        "digest": str(to_digest) if to_digest else None,
        "image": settings.image_ref(to_digest) if to_digest else "",
        "tag": recorded.tag,
        "fromDigest": str(from_digest) if from_digest else None,
        "fromImage": from_image or (settings.image_ref(from_digest) if from_digest else ""),
        "trigger": recorded.trigger,
        "actor": recorded.actor,
        "reason": recorded.reason,
    }
