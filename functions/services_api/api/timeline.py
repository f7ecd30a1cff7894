"""``GET /deployments/{id}/timeline``: the phases a deployment's execution went through.

What the Step Functions console's graph shows, as the API's JSON: read from the
execution history, with each hook's log tail from the ledger. The route imports
the logic it calls when it runs (see ``api.services``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import Field

from bluegreen.domain.flow_events import StepStatus

from . import dependencies
from .responses import BAD_REQUEST, CLUSTER, GATEWAY, INVALID, NOT_FOUND, answer
from .schemas import DEPLOYMENT_ID, WireBody

router = Router()  # type: ignore[no-untyped-call]


class HookStepBody(WireBody):
    name: str
    job: str
    status: StepStatus
    reason: str = ""
    log_tail: str = Field(
        default="", description="The end of the Job's log, as the ledger keeps it."
    )


class StepBody(WireBody):
    phase: str = Field(
        description="lock, apply, rollout, hooks, bake, health, rollback, rollback-hooks, "
        "verdict, end; a state the API does not know shows under its own name.",
        examples=["rollout"],
    )
    title: str
    status: StepStatus
    started_at: datetime
    ended_at: datetime | None = None
    detail: str = ""
    error: str = ""
    cause: str = ""
    polls: int = Field(default=0, description="How many times the phase read the cluster.")
    retries: int = Field(default=0, description="Failed attempts the flow retried.")
    hooks: list[HookStepBody] = []


class TimelineBody(WireBody):
    """``GET /deployments/{id}/timeline``."""

    id: str
    execution_arn: str
    status: str = Field(description="The execution's status: RUNNING, SUCCEEDED, FAILED...")
    steps: list[StepBody]
    error: str = ""
    cause: str = ""
    truncated: bool = Field(
        default=False, description="True when the history was too long to read whole."
    )


@router.get(
    "/deployments/<id>/timeline",
    summary="The phases of a deployment's execution, from its history",
    tags=["deployments"],
    responses={
        200: answer(TimelineBody, "The timeline"),
        **BAD_REQUEST,
        **NOT_FOUND,
        **INVALID,
        **GATEWAY,
        502: CLUSTER[502],
    },
)
def get_timeline(
    id: Annotated[str, DEPLOYMENT_ID],
) -> TimelineBody:
    """Lock, apply, rollout, hooks with their log tails, bake, health, rollback, the end."""
    from bluegreen.logic import timeline

    deployment_id = id  # ``id`` is the path parameter's public name
    view = timeline.deployment_timeline(dependencies.history_ports(), deployment_id)
    return TimelineBody(
        id=view.deployment_id,
        execution_arn=view.execution_arn,
        status=view.status,
        steps=[
            StepBody(
                phase=step.phase,
                title=step.title,
                status=step.status,
                started_at=step.started_at,
                ended_at=step.ended_at,
                detail=step.detail,
                error=step.error,
                cause=step.cause,
                polls=step.polls,
                retries=step.retries,
                hooks=[
                    HookStepBody(
                        name=hook.name,
                        job=hook.job,
                        status=hook.status,
                        reason=hook.reason,
                        log_tail=hook.log_tail,
                    )
                    for hook in step.hooks
                ],
            )
            for step in view.steps
        ],
        error=view.error,
        cause=view.cause,
        truncated=view.truncated,
    )
