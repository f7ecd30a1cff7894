"""Auto-deploy: a push of an auto-deploy tag starts the deploy flow on the canary.

Plugged into ``ecr_push`` at its ``on_recorded`` seam, which runs once per
recorded push. The execution name is derived from the application and the
digest, so a duplicate event (or a second tag of the same digest) starts
nothing new: Step Functions refuses a second execution of the same name and
``StepFunctionsFlow.start`` answers with the existing one.

Before starting, the deployment is recorded in the ledger (trigger
``ecr-push``, the pushed tag, the push's reason): the flow takes who started
it from that record, never from its input. A start that fails closes the
record as failed, with why, and raises, so that EventBridge delivers the push
again; the redelivery opens the record again (only a record no execution ever
claimed can be) and retries the start.

Imports nothing heavy: ``ecr_push``'s cold start must stay near the floor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bluegreen.config import Settings
from bluegreen.domain.executions import execution_name
from bluegreen.domain.models import Deployment, ImageRecord, Role
from bluegreen.observability import logger

if TYPE_CHECKING:
    from bluegreen.domain.ports import FlowStarter, Ledger

TRIGGER = "ecr-push"


@dataclass(frozen=True)
class AutoDeployPorts:
    """What starting a push's deployment reaches: the settings, the flow and the ledger."""

    settings: Settings
    flow: FlowStarter
    ledger: Ledger


def deploy_input(
    record: ImageRecord, tag: str | None, settings: Settings
) -> dict[str, object] | None:
    """The flow input for this push, or None when the tag does not auto-deploy."""
    if not tag or tag not in settings.auto_deploy_tags:
        return None
    return {
        "action": "deploy",
        "image": str(record.digest),
        "service": "canary",
        "reason": f"push of {settings.repository}:{tag}",
    }


def push_deployment(
    record: ImageRecord, tag: str, settings: Settings, *, name: str, waits_behind: str | None
) -> Deployment:
    """The ledger's record of the deployment a push starts, written before the start."""
    return Deployment(
        id=name,
        application=settings.application,
        action="deploy",
        role=Role.CANARY,
        colour=None,
        to_digest=record.digest,
        from_digest=None,
        trigger=TRIGGER,
        actor=TRIGGER,
        started_at=datetime.now(UTC),
        tag=tag,
        reason=f"push of {settings.repository}:{tag}",
        waits_behind=waits_behind or "",
    )


def start_for_push(record: ImageRecord, tag: str | None, ports: AutoDeployPorts) -> str | None:
    """Record and start the deploy flow when the pushed tag auto-deploys; returns its ARN."""
    settings, flow, ledger = ports.settings, ports.flow, ports.ledger
    flow_input = deploy_input(record, tag, settings)
    if flow_input is None or tag is None:
        return None
    name = execution_name(settings.application, "deploy", record.digest.hex)
    deployment = push_deployment(
        record, tag, settings, name=name, waits_behind=ledger.lock_holder()
    )
    if not ledger.open_deployment(deployment):
        logger.info(
            "the deployment of this digest is recorded already; its execution is the one",
            extra={"deployment_id": name, "tag": tag},
        )
    try:
        arn = flow.start(name, flow_input)
    except Exception as exc:
        cause = f"the deploy flow could not be started ({type(exc).__name__}: {exc})"
        ledger.abandon_deployment(name, cause)
        raise
    logger.info(
        "auto-deploy started",
        extra={"execution_arn": arn, "tag": tag, "waits_behind": deployment.waits_behind},
    )
    return arn


def on_recorded(
    settings: Settings, ports: Callable[[], AutoDeployPorts] | None = None
) -> Callable[[ImageRecord, str | None], None]:
    """The ``ecr_push`` seam: a callback that auto-deploys each recorded push it should.

    ``ports`` builds the flow starter and the ledger on first use (the handler
    passes Step Functions at ``settings.state_machine_arn`` and its DynamoDB
    ledger), so a push that does not deploy creates no client. Without it, pushes
    are recorded only: a deploy nobody recorded would be taken for a console run.
    """

    def deploy_if_wanted(record: ImageRecord, tag: str | None) -> None:
        if deploy_input(record, tag, settings) is None:
            logger.info(
                "no auto-deploy for this tag",
                extra={"tag": tag, "auto_deploy_tags": list(settings.auto_deploy_tags)},
            )
            return
        if ports is None:
            logger.warning("auto-deploy skipped: BG_STATE_MACHINE_ARN is not set")
            return
        start_for_push(record, tag, ports())

    return deploy_if_wanted
