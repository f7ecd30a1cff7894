"""Auto-deploy: a push of an auto-deploy tag starts the deploy flow on the canary.

Plugged into ``ecr_push`` at its ``on_recorded`` seam, which runs once per
recorded push. The execution name is derived from the application and the
digest, so a duplicate event (or a second tag of the same digest) starts
nothing new: Step Functions refuses a second execution of the same name and
``StepFunctionsFlow.start`` answers with the existing one.

Imports nothing heavy: ``ecr_push``'s cold start must stay near the floor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bluegreen.config import Settings
from bluegreen.domain.executions import execution_name
from bluegreen.domain.models import ImageRecord
from bluegreen.observability import logger

if TYPE_CHECKING:
    from bluegreen.domain.ports import FlowStarter

TRIGGER = "ecr-push"


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
        "trigger": TRIGGER,
        "actor": TRIGGER,
        "reason": f"push of {settings.repository}:{tag}",
    }


def start_for_push(
    record: ImageRecord, tag: str | None, settings: Settings, flow: FlowStarter
) -> str | None:
    """Start the deploy flow when the pushed tag auto-deploys; returns the execution ARN."""
    flow_input = deploy_input(record, tag, settings)
    if flow_input is None:
        return None
    name = execution_name(settings.application, "deploy", record.digest.hex)
    arn = flow.start(name, flow_input)
    logger.info("auto-deploy started", extra={"execution_arn": arn, "tag": tag})
    return arn


def on_recorded(
    settings: Settings, flow: Callable[[], FlowStarter] | None = None
) -> Callable[[ImageRecord, str | None], None]:
    """The ``ecr_push`` seam: a callback that auto-deploys each recorded push it should.

    ``flow`` builds the flow starter on first use (the handler passes Step
    Functions at ``settings.state_machine_arn``), so a push that does not deploy
    creates no client. Without one, pushes are recorded only.
    """

    def deploy_if_wanted(record: ImageRecord, tag: str | None) -> None:
        if deploy_input(record, tag, settings) is None:
            logger.info(
                "no auto-deploy for this tag",
                extra={"tag": tag, "auto_deploy_tags": list(settings.auto_deploy_tags)},
            )
            return
        if flow is None:
            logger.warning("auto-deploy skipped: BG_STATE_MACHINE_ARN is not set")
            return
        start_for_push(record, tag, settings, flow())

    return deploy_if_wanted
