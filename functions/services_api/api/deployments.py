"""Deployments: history, the status of one, and the actions that start one
(rollback, promotion).

A route imports the logic it calls when it runs (see ``api.services``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from bluegreen.domain.models import Deployment, Role
from bluegreen.domain.promotion import PromotionRecord, Strategy
from bluegreen.observability import logger

from . import dependencies
from .caller import caller_of
from .responses import (
    BAD_REQUEST,
    CLUSTER,
    CONFLICT,
    GATEWAY,
    INVALID,
    NOT_FOUND,
    UNSUPPORTED,
    answer,
)
from .schemas import (
    CURSOR_LIMIT,
    CURSOR_PATTERN,
    DEPLOYMENT_ID,
    LIMIT_DESCRIPTION,
    AbortRequest,
    DeploymentBody,
    DeploymentPageBody,
    DeploymentStartedBody,
    DeploymentStatusBody,
    ExecutionBody,
    FlipBackBody,
    GateBody,
    GateDecisionBody,
    PageLimit,
    PromoteRequest,
    PromotionBody,
    ResumeRequest,
    RollbackRequest,
)
from .services import record_start, started_body

router = Router()  # type: ignore[no-untyped-call]


def deployment_body(deployment: Deployment) -> DeploymentBody:
    """The wire form of a ledger deployment record."""
    return DeploymentBody(
        id=deployment.id,
        application=deployment.application,
        action=deployment.action,
        service=deployment.role.value,
        colour=deployment.colour.value if deployment.colour else None,
        to_digest=str(deployment.to_digest) if deployment.to_digest else None,
        from_digest=str(deployment.from_digest) if deployment.from_digest else None,
        trigger=deployment.trigger,
        actor=deployment.actor,
        source_ip=deployment.source_ip,
        tag=deployment.tag,
        started_at=deployment.started_at,
        finished_at=deployment.finished_at,
        outcome=deployment.outcome.value,
        reason=deployment.reason,
        rolled_back_to=str(deployment.rolled_back_to) if deployment.rolled_back_to else None,
        execution_arn=deployment.execution_arn,
        hook_logs=dict(deployment.hook_logs),
        cause=deployment.cause,
        waits_behind=deployment.waits_behind,
    )


def _when(value: object) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if value else None


def _text(value: object) -> str | None:
    return str(value) if value else None


def execution_body(execution: dict[str, object]) -> ExecutionBody:
    """The wire form of ``FlowStarter.describe``'s answer (output left out: it can be large)."""
    return ExecutionBody(
        status=str(execution.get("status") or "UNKNOWN"),
        start_date=_when(execution.get("startDate")),
        stop_date=_when(execution.get("stopDate")),
        error=_text(execution.get("error")),
        cause=_text(execution.get("cause")),
    )


@router.get(
    "/deployments",
    summary="Deployments, rollbacks and canary switches, newest first",
    tags=["deployments"],
    responses={
        200: answer(DeploymentPageBody, "A page of deployments"),
        **BAD_REQUEST,
        **INVALID,
        **GATEWAY,
    },
)
def get_deployments(
    limit: Annotated[PageLimit, Query(description=LIMIT_DESCRIPTION)] = 50,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=CURSOR_LIMIT, pattern=CURSOR_PATTERN)
    ] = None,
) -> DeploymentPageBody:
    """A page of the ledger's deployments; pass ``nextCursor`` back as ``cursor``."""
    from bluegreen.logic import history

    page = history.deployment_history(dependencies.ledger(), limit, cursor)
    return DeploymentPageBody(
        deployments=[deployment_body(d) for d in page.deployments],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/deployments/<id>",
    summary="One deployment: the ledger's record and its execution's live status",
    tags=["deployments"],
    responses={
        200: answer(DeploymentStatusBody, "The deployment"),
        **BAD_REQUEST,
        **NOT_FOUND,
        **INVALID,
        **GATEWAY,
        502: CLUSTER[502],
    },
)
def get_deployment(
    id: Annotated[str, DEPLOYMENT_ID],
) -> DeploymentStatusBody:
    """The record (if the flow wrote it yet) and the execution (if there is one)."""
    from bluegreen.logic import history
    from bluegreen.logic.promotion.plan import PROMOTE
    from bluegreen.logic.requests import console_url

    deployment_id = id  # ``id`` is the path parameter's public name
    settings = dependencies.settings()
    view = history.deployment_status(dependencies.history_ports(), deployment_id)
    progress = (
        dependencies.promotions().record(deployment_id)
        if view.record is not None and view.record.action == PROMOTE
        else None
    )
    return DeploymentStatusBody(
        id=view.deployment_id,
        record=deployment_body(view.record) if view.record else None,
        execution_arn=view.execution_arn,
        execution=execution_body(view.execution) if view.execution else None,
        console_url=(console_url(settings.region, view.execution_arn) if view.execution else None),
        promotion=promotion_body(progress) if progress is not None else None,
    )


def promotion_body(record: PromotionRecord) -> PromotionBody:
    """The wire form of a promotion's progress (the task token is never shown)."""
    progress = record.progress
    return PromotionBody(
        status=record.status or "starting",
        step=int(progress.get("step", 0)) + 1,
        steps=list(progress.get("steps") or []),
        weights=dict(progress.get("weights") or {}),
        canary=progress.get("canary", "blue"),
        production=progress.get("production", "green"),
        waiting_for_person=bool(record.waiting),
        waiting_for=record.waiting,
        analyses=list(progress.get("analyses") or []),
        gates=[
            GateBody(
                step=gate.step + 1,
                decision=gate.decision,  # type: ignore[arg-type]
                actor=gate.actor,
                at=gate.at,
                reason=gate.reason,
            )
            for gate in record.gates
        ],
        abort_requested_by=record.abort_requested_by,
        cause=str(progress.get("cause") or ""),
        step_started_at=progress.get("stepStartedAt"),
        failed_at=progress.get("failedAt"),
        backed_out_at=progress.get("backedOutAt"),
    )


_GATE_RESPONSES = {
    **BAD_REQUEST,
    **NOT_FOUND,
    409: CONFLICT[409],
    **UNSUPPORTED,
    **INVALID,
    **GATEWAY,
}
"""What a gate decision (resume, abort) can answer besides its 200."""


@router.post(
    "/deployments/<id>/resume",
    summary="Resume a progressive promotion that waits at a manual gate",
    tags=["deployments"],
    responses={
        200: answer(GateDecisionBody, "The gate let the promotion go on (or, `hold`, kept it)"),
        **_GATE_RESPONSES,
    },
)
def post_resume(
    id: Annotated[str, DEPLOYMENT_ID],
    request: Annotated[ResumeRequest | None, Body(embed=False)] = None,
) -> GateDecisionBody:
    """Resume the promotion at its gate; 409 ``NotWaiting`` when it waits for nothing."""
    from bluegreen.logic import routing

    request = request or ResumeRequest()
    caller = caller_of(router.current_event.raw_event)
    decided = routing.resume(
        dependencies.gate_ports(),
        caller,
        id,
        hold=request.hold,
        reason=request.reason,
    )
    logger.info("promotion gate", extra={**decided, "actor": caller.actor})
    return GateDecisionBody(**decided)


@router.post(
    "/deployments/<id>/abort",
    summary="Abort a progressive promotion: production back to the old colour",
    tags=["deployments"],
    responses={
        200: answer(
            GateDecisionBody, "The promotion backs out (at once at a gate, else at its next step)"
        ),
        **_GATE_RESPONSES,
    },
)
def post_abort(
    id: Annotated[str, DEPLOYMENT_ID],
    request: Annotated[AbortRequest | None, Body(embed=False)] = None,
) -> GateDecisionBody:
    """Abort the promotion; 409 ``NotWaiting`` when it has ended."""
    from bluegreen.logic import routing

    request = request or AbortRequest()
    caller = caller_of(router.current_event.raw_event)
    decided = routing.abort(
        dependencies.gate_ports(),
        caller,
        id,
        reason=request.reason,
    )
    logger.info("promotion abort", extra={**decided, "actor": caller.actor})
    return GateDecisionBody(**decided)


@router.post(
    "/rollback",
    summary="Roll a service back to the last digest judged healthy (through the deploy flow)",
    tags=["deployments"],
    status_code=202,
    responses={
        200: answer(
            FlipBackBody,
            "Production was flipped back at once: within the flip-back window of the latest "
            "progressive promotion (alb and gateway routers), weights only",
        ),
        202: answer(
            DeploymentStartedBody,
            "The deploy flow's rollback was started (`queued`: it waits behind `waitsBehind`)",
        ),
        **BAD_REQUEST,
        **CONFLICT,
        **UNSUPPORTED,
        **INVALID,
        **GATEWAY,
        **CLUSTER,
    },
)
def post_rollback(
    request: Annotated[RollbackRequest | None, Body(embed=False)] = None,
) -> Response[DeploymentStartedBody | FlipBackBody]:
    """Start the flow's rollback action for the canary (default) or production.

    The body is optional: no body rolls the canary back. While a deployment holds
    the lock the rollback is queued behind it (``queued``, ``waitsBehind``) and,
    once it runs, ends as a no-op if the colour no longer runs what it ran now.
    Under the alb and gateway routers, production within the flip-back window of
    the latest promotion is flipped back at once (200): weights only, no rollout.
    """
    from bluegreen.logic import routing

    request = request or RollbackRequest()
    caller = caller_of(router.current_event.raw_event)
    done = routing.rollback_or_flip_back(
        dependencies.release_ports(),
        caller,
        Role(request.service),
        reason=request.reason,
    )
    if isinstance(done, routing.FlipBackDone):
        logger.info(
            "production flipped back",
            extra={"record_id": done.record_id, "promotion_id": done.promotion_id},
        )
        return Response(
            status_code=200,
            content_type="application/json",
            body=FlipBackBody(
                record_id=done.record_id,
                promotion_id=done.promotion_id,
                production=done.production.value,
                canary=done.canary.value,
                weights=done.weights.to_json(),
            ),
        )
    record_start(done, caller)
    return Response(status_code=202, content_type="application/json", body=started_body(done))


@router.post(
    "/promote",
    summary="Promote the canary: progressively under alb/gateway, by digest under selector",
    tags=["deployments"],
    status_code=202,
    responses={
        202: answer(
            DeploymentStartedBody,
            "The flow was started: a progressive promotion (`action: promote`) under the alb "
            "and gateway routers, the canary's digest deployed to production under selector",
        ),
        **BAD_REQUEST,
        **CONFLICT,
        **UNSUPPORTED,
        **INVALID,
        **GATEWAY,
        **CLUSTER,
    },
)
def post_promote(
    request: Annotated[PromoteRequest | None, Body(embed=False)] = None,
) -> DeploymentStartedBody:
    """Promote what the canary runs now, unless it is unpinned, failed, or already there.

    Refused (409) while a deployment holds the lock: what the canary runs is not
    settled until it ends. The body is optional: a reason, and under the alb and
    gateway routers a strategy (the stack's when absent).
    """
    from bluegreen.logic import routing

    request = request or PromoteRequest()
    caller = caller_of(router.current_event.raw_event)
    strategy = (
        Strategy.parse(request.strategy.model_dump(exclude_none=True))
        if request.strategy is not None
        else None
    )
    started = routing.request_promotion(
        dependencies.release_ports(),
        caller,
        strategy=strategy,
        reason=request.reason,
    )
    record_start(started, caller)
    return started_body(started)
