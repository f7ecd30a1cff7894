"""``/services``: the roles of the two colours, switching them, deploying an image.

A route imports the logic it calls when it runs: a cold start pays only for what
its first request needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.models import Colour, Role
from bluegreen.observability import logger, metrics

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
    CanaryEnvView,
    ColourView,
    DeploymentStartedBody,
    ErrorBody,
    Replicas,
    ServicesChange,
    ServiceStatusBody,
    SwitchBody,
    TrafficView,
)

if TYPE_CHECKING:
    from bluegreen.logic import services
    from bluegreen.logic.requests import Caller, DeploymentStarted

router = Router()  # type: ignore[no-untyped-call]

COMBINATIONS = (
    'send either {"selector": "blue"|"green"} to make that colour the canary, or '
    '{"imageTag": <digest or tag>} with an optional "service": "canary"|"production" '
    "to deploy an image; not both, not neither"
)


def status_body(status: services.ServiceStatus) -> ServiceStatusBody:
    """The wire form of ``services.ServiceStatus``."""
    colours = {}
    for colour, view in status.colours.items():
        rollout = view.rollout
        colours[colour.value] = ColourView(
            colour=colour.value,
            role=view.role.value,
            image=rollout.image,
            digest=str(rollout.digest) if rollout.digest else None,
            replicas=Replicas(
                desired=rollout.desired,
                updated=rollout.updated,
                ready=rollout.ready,
                available=rollout.available,
            ),
            rollout=view.rollout_state,  # type: ignore[arg-type]
            message=rollout.message,
        )
    env = status.canary_env
    traffic, confirmation = status.traffic, status.confirmation
    return ServiceStatusBody(
        canary=status.canary.value,
        production=status.production.value,
        colours=colours,
        canary_env=CanaryEnvView(
            selector=env.selector.value,
            image=env.image,
            present=env.present,
            weights=env.weights.to_json() if env.weights is not None else None,
        ),
        services={
            role.value: (colour.value if colour else None)
            for role, colour in status.selectors.items()
        },
        in_agreement=status.in_agreement,
        disagreements=list(status.disagreements),
        traffic=(
            TrafficView(
                router=traffic.router.value,
                object=traffic.where,
                weights=traffic.production.to_json() if traffic.production else None,
                canary=traffic.canary.value if traffic.canary else None,
                problem=traffic.problem,
                confirmed=confirmation.confirmed if confirmation else None,
                data_plane=confirmation.applied if confirmation else status.confirmation_problem,
                held_weights=(
                    confirmation.observed.to_json()
                    if confirmation and confirmation.observed
                    else None
                ),
            )
            if traffic is not None
            else None
        ),
    )


def started_body(started: DeploymentStarted) -> DeploymentStartedBody:
    """The wire form of ``requests.DeploymentStarted``."""
    return DeploymentStartedBody(
        deployment_id=started.deployment_id,
        execution_arn=started.execution_arn,
        console_url=started.console_url,
        action=started.action,  # type: ignore[arg-type]
        service=started.role.value,
        digest=str(started.digest) if started.digest else None,
        queued=started.queued,
        waits_behind=started.waits_behind,
    )


def record_start(started: DeploymentStarted, caller: Caller) -> None:
    """Log (with the correlation id) and count a flow execution the API started."""
    metrics.add_metric(name="DeploymentsRequested", unit=MetricUnit.Count, value=1)
    logger.info(
        f"{started.action} started",
        extra={
            "deployment_id": started.deployment_id,
            "execution_arn": started.execution_arn,
            "service": started.role.value,
            "digest": str(started.digest) if started.digest else None,
            "actor": caller.actor,
            "source_ip": caller.source_ip,
            "waits_behind": started.waits_behind,
        },
    )


@router.get(
    "/services",
    summary="Canary and production: colours, digests, rollouts, the canaryEnv ConfigMap",
    tags=["services"],
    responses={
        200: answer(ServiceStatusBody, "The release state"),
        **INVALID,
        **GATEWAY,
        **CLUSTER,
    },
)
def get_services() -> ServiceStatusBody:
    """Read the release state; a ConfigMap/Service disagreement is flagged, not hidden."""
    from bluegreen.logic import services

    status = services.service_status(dependencies.cluster())
    if not status.in_agreement:
        logger.warning("roles disagree", extra={"disagreements": list(status.disagreements)})
    return status_body(status)


@router.post(
    "/services",
    summary="Switch the canary colour, or deploy an image to the canary or production",
    tags=["services"],
    responses={
        200: answer(
            SwitchBody,
            "The switch completed: the canary colour is as asked (`changed`: whether it moved)",
        ),
        202: answer(
            DeploymentStartedBody,
            "The deploy flow was started for the image (`queued`: it waits behind `waitsBehind`)",
        ),
        **BAD_REQUEST,
        **NOT_FOUND,
        **CONFLICT,
        **UNSUPPORTED,
        **INVALID,
        **GATEWAY,
        **CLUSTER,
        503: answer(
            ErrorBody,
            "The cluster could not be reached, or a switch could not complete: "
            "`SwitchRestored` (the previous roles were put back) or `SwitchIncomplete` "
            "(the detail names what each Service selects and what canaryEnv says)",
        ),
    },
)
def post_services(
    change: Annotated[ServicesChange, Body(embed=False)],
) -> Response[SwitchBody | DeploymentStartedBody]:
    """``{"selector": ...}`` switches the roles; ``{"imageTag": ...}`` starts the deploy flow."""
    from bluegreen.logic import services

    has_selector, has_image = change.selector is not None, change.image_tag is not None
    if has_selector == has_image:
        raise InvalidInput("body", COMBINATIONS)
    for name in ("service", "force"):
        if has_selector and name in change.model_fields_set:
            raise InvalidInput(name, f"goes with imageTag only; {COMBINATIONS}")
    caller = caller_of(router.current_event.raw_event)
    if change.selector is not None:
        colour = Colour(change.selector)
        switched = services.switch_canary(
            dependencies.release_ports(), caller, colour, reason=change.reason
        )
        if switched.changed:
            metrics.add_metric(name="CanarySwitches", unit=MetricUnit.Count, value=1)
        if switched.record_error:
            logger.error(
                "canary switched but not recorded",
                extra={"error": switched.record_error, "actor": caller.actor},
            )
        logger.info(
            "canary switch" if switched.changed else "canary already so",
            extra={
                "canary": colour.value,
                "changed": switched.changed,
                "actor": caller.actor,
                "source_ip": caller.source_ip,
                "record_id": switched.record_id,
            },
        )
        return Response(
            status_code=200,
            content_type="application/json",
            body=SwitchBody(
                changed=switched.changed,
                canary=switched.canary.value,
                production=switched.production.value,
                record_id=switched.record_id,
                recorded=switched.recorded,
            ),
        )
    assert change.image_tag is not None  # narrowed by the combination check above
    started = services.request_deploy(
        dependencies.release_ports(),
        caller,
        change.image_tag,
        Role(change.service),
        reason=change.reason,
        force=change.force,
    )
    record_start(started, caller)
    return Response(status_code=202, content_type="application/json", body=started_body(started))
