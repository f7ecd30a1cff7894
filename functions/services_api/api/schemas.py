"""Request and response bodies of the services API, as pydantic models.

The models are the API's contract: Powertools validates requests against them
and the OpenAPI document (``docs/openapi.json``) is generated from them. Request
models forbid unknown fields so a misspelt field is an error, not a silent no-op.
Field names are camelCase on the wire, as in the original ``imageTag``.

Request models are strict: a boolean is a JSON boolean, a string a JSON string
(``"force": "yes"`` or ``1`` is a 422, never a ``true``). Every string field
follows one rule, ``TRIMMED``: it may not begin or end with whitespace. Such a
value is refused, not trimmed, so what the ledger records is what was sent.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from bluegreen.domain.flow_input import TEXT_LIMIT
from bluegreen.domain.paging import MAX_PAGE
from bluegreen.domain.promotion import PAUSE_MAX, STEPS_MAX

REASON_LIMIT = TEXT_LIMIT
"""Longest ``reason`` a request may carry: the deploy flow's own limit on its text inputs."""

ColourName = Literal["blue", "green"]
ServiceName = Literal["canary", "production"]

TRIMMED = r"^(\S([\s\S]*\S)?)?$"
"""Empty, or starting and ending with a character that is not whitespace (JSON Schema
and pydantic read it alike); ``TRIMMED_RULE`` is what a refusal says."""
TRIMMED_RULE = "must not begin or end with whitespace"
IMAGE_TAG_LIMIT = 200
CURSOR_LIMIT = 2048
CURSOR_PATTERN = r"^[A-Za-z0-9_\-=.~+/:]+$"
"""The alphabet of the cursors ``nextCursor`` hands out (``paging.check_page`` has the
final word on whether one is real)."""
DEPLOYMENT_ID_LIMIT = 80
DEPLOYMENT_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
"""Step Functions' alphabet for execution names, which deployment ids are."""
DEPLOYMENT_ID = Path(
    max_length=DEPLOYMENT_ID_LIMIT,
    pattern=DEPLOYMENT_ID_PATTERN,
    description="The deployment id (execution name)",
)
"""The ``{id}`` of every ``/deployments/{id}`` route."""


_DIGITS = re.compile(r"[0-9]+")


def _digits_only(value: object) -> object:
    """A query string's number as written: decimal digits, nothing around them.

    Query values arrive as text; pydantic alone would also read ``" 5"``, ``"5.0"``
    or ``"+5"`` as 5.
    """
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("must be a whole number written in decimal digits")
    return value


LIMIT_DESCRIPTION = f"How many to return, newest first: 1 to {MAX_PAGE}."
PageLimit = Annotated[int, Field(ge=1, le=MAX_PAGE), BeforeValidator(_digits_only)]
"""The ``limit`` query parameter of the history routes, read strictly (``_digits_only``)."""


# ``defer_build``: a model's validator is built when a request first needs it, not at
# import, so a cold start pays only for the models of the route it serves.


class _Request(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, frozen=True, strict=True, defer_build=True
    )


class WireBody(BaseModel):
    """A response body: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel, serialize_by_alias=True, validate_by_name=True, defer_build=True
    )


# requests -----------------------------------------------------------------


class ServicesChange(_Request):
    """``POST /services``: either ``selector`` alone, or ``imageTag`` with an optional service."""

    selector: ColourName | None = Field(
        default=None, description="Make this colour the canary and the other one production."
    )
    image_tag: str | None = Field(
        default=None,
        min_length=1,
        max_length=IMAGE_TAG_LIMIT,
        pattern=TRIMMED,
        description="A digest (`sha256:<64 hex>` or 64 hex) or a tag the ledger knows; "
        "deployed through the deploy flow.",
    )
    service: ServiceName = Field(
        default="canary",
        description="With `imageTag`: deploy to the canary (default) or to production.",
    )
    force: bool = Field(
        default=False,
        description="With `imageTag`: deploy even a digest the ledger judged failed.",
    )
    reason: str = Field(
        default="",
        max_length=REASON_LIMIT,
        pattern=TRIMMED,
        description="Free text kept in the record.",
    )


class RollbackRequest(_Request):
    """``POST /rollback``: roll a service back to the last digest judged healthy."""

    service: ServiceName = Field(default="canary")
    reason: str = Field(
        default="",
        max_length=REASON_LIMIT,
        pattern=TRIMMED,
        description="Free text kept in the record.",
    )


class StepBody(_Request):
    """One step of a progressive promotion: the canary's share of production, then a pause."""

    weight: int = Field(ge=1, le=100, description="Percent of production on the canary colour.")
    pause: Annotated[int, Field(ge=0, le=PAUSE_MAX)] | Literal["manual"] | None = Field(
        default=None,
        description="Seconds to judge the step before the next (the stack's default pause when "
        'absent; none on the last step), or "manual": wait for POST /deployments/{id}/resume.',
    )


class StrategyBody(_Request):
    """Steps of percentages, each more than the one before, ending at 100."""

    steps: list[StepBody] = Field(min_length=1, max_length=STEPS_MAX)


class ResumeRequest(_Request):
    """``POST /deployments/{id}/resume``: go on past the gate (or, with ``hold``, keep it)."""

    hold: bool = Field(
        default=False,
        description="Keep the gate waiting instead of resuming: a heartbeat, for a stack "
        "whose GateHeartbeatSeconds asks for one.",
    )
    reason: str = Field(
        default="",
        max_length=REASON_LIMIT,
        pattern=TRIMMED,
        description="Free text kept with the decision.",
    )


class AbortRequest(_Request):
    """``POST /deployments/{id}/abort``: back the promotion out."""

    reason: str = Field(
        default="",
        max_length=REASON_LIMIT,
        pattern=TRIMMED,
        description="Free text kept with the decision and in the execution's Cause.",
    )


class PromoteRequest(_Request):
    """``POST /promote``: promote what the canary runs (progressively under alb and gateway)."""

    strategy: StrategyBody | None = Field(
        default=None,
        description="alb and gateway routers: the steps (the stack's PromotionSteps when "
        "absent). Refused under the selector router, which moves all traffic at once.",
    )
    reason: str = Field(
        default="",
        max_length=REASON_LIMIT,
        pattern=TRIMMED,
        description="Free text kept in the record.",
    )


# responses ----------------------------------------------------------------


class ErrorBody(WireBody):
    """Every error answer: the error's name and what is wrong."""

    error: str = Field(examples=["InvalidInput"])
    detail: str = Field(examples=["imageTag: 'abc' is not a sha256 digest"])


class GatewayMessage(WireBody):
    """An answer API Gateway gives itself, before the function runs: signature refused,
    throttled."""

    message: str = Field(examples=["Missing Authentication Token"])


class Replicas(WireBody):
    desired: int
    updated: int
    ready: int
    available: int


class ColourView(WireBody):
    colour: ColourName
    role: ServiceName
    image: str
    digest: str | None
    replicas: Replicas
    rollout: Literal["complete", "progressing", "stalled"]
    message: str = ""


class CanaryEnvView(WireBody):
    selector: ColourName
    image: str
    present: bool = Field(description="False when the ConfigMap has no canaryEnv key yet.")
    weights: dict[str, int] | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Production's share per colour, in percent (`alb` and `gateway` routers); "
        "absent when canaryEnv carries none (all of production on the production colour).",
    )


class TrafficView(WireBody):
    """Where the router object sends traffic now, as read from the cluster."""

    router: Literal["selector", "alb", "gateway"]
    object: str = Field(description="The object read: the Services, the Ingress or the HTTPRoute.")
    weights: dict[str, int] | None = Field(
        description="Production's weight per colour as the object holds it (null: unreadable)."
    )
    canary: ColourName | None = Field(description="The colour the canary endpoint reaches.")
    problem: str = Field(default="", description="Why weights or canary could not be read.")
    confirmed: bool | None = Field(
        default=None,
        description="Whether the data plane applies what the object says: the production "
        "Service's EndpointSlices (selector), the ALB's listener rule and target health "
        "(alb), the Gateway's status of the route (gateway). null: it could not be read.",
    )
    data_plane: str = Field(
        default="", description="What the data plane reports, in words (or why it was not read)."
    )
    held_weights: dict[str, int] | None = Field(
        default=None,
        description="Production's weight per colour as the data plane holds it, where it "
        "says (the ALB's listener rule); null otherwise.",
    )


class ServiceStatusBody(WireBody):
    """``GET /services``."""

    canary: ColourName
    production: ColourName
    colours: dict[str, ColourView]
    canary_env: CanaryEnvView
    services: dict[str, ColourName | None] = Field(
        description="The colour each Service selects now (`spec.selector.app`)."
    )
    in_agreement: bool
    disagreements: list[str]
    traffic: TrafficView | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="The router object's live weights (compared with canaryEnv).",
    )


class SwitchBody(WireBody):
    """``POST /services`` with ``selector``: the roles as they are now."""

    changed: bool
    canary: ColourName
    production: ColourName
    record_id: str | None = Field(
        default=None, description="Id of the ledger record of the switch (when changed)."
    )
    recorded: bool = Field(
        default=True,
        description="Whether the ledger holds a record of the switch: false when nothing "
        "changed, or when the roles changed but the ledger could not record it (the "
        "function logged the failure).",
    )


class DeploymentStartedBody(WireBody):
    """A deploy-flow execution was started: follow it with ``GET /deployments/{id}``."""

    deployment_id: str
    execution_arn: str
    console_url: str
    action: Literal["deploy", "rollback", "promote"]
    service: ServiceName
    digest: str | None = None
    queued: bool = Field(
        default=False,
        description="True when another deployment held the lock: the execution waits for it "
        "to end, then acts only on the state recorded with this request (a rollback whose "
        "colour runs something else by then ends as a no-op).",
    )
    waits_behind: str | None = Field(
        default=None, description="The id of the deployment it waits behind, when queued."
    )


class FlipBackBody(WireBody):
    """``POST /rollback`` of production within a promotion's flip-back window: done at once."""

    flipped_back: bool = Field(
        default=True, description="Production is back on the colour the promotion took it from."
    )
    record_id: str = Field(description="Id of the ledger record of the flip-back.")
    promotion_id: str = Field(description="The promotion that was flipped back.")
    production: ColourName
    canary: ColourName
    weights: dict[str, int]


class Placement(WireBody):
    colour: ColourName
    role: ServiceName


class ImageBody(WireBody):
    digest: str
    repository: str
    tags: list[str]
    pushed_at: datetime
    verdict: str
    verdict_reason: str = ""
    running_on: list[Placement] | None = Field(
        description="Colours running this digest now; null when the cluster could not be asked."
    )


class ImagePageBody(WireBody):
    """``GET /images``."""

    images: list[ImageBody]
    next_cursor: str | None
    cluster_error: str = ""


class DeploymentBody(WireBody):
    id: str
    application: str
    action: str
    service: ServiceName
    colour: ColourName | None
    to_digest: str | None
    from_digest: str | None
    trigger: str
    actor: str
    source_ip: str = ""
    tag: str = ""
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str
    reason: str = ""
    rolled_back_to: str | None = None
    execution_arn: str = ""
    hook_logs: dict[str, str] = {}
    cause: str = Field(default="", description="How it ended; `reason` is the caller's own.")
    waits_behind: str = Field(
        default="", description="The deployment that held the lock when it was requested."
    )


class DeploymentPageBody(WireBody):
    """``GET /deployments``."""

    deployments: list[DeploymentBody]
    next_cursor: str | None


class ExecutionBody(WireBody):
    status: str
    start_date: str | None = None
    stop_date: str | None = None
    error: str | None = None
    cause: str | None = None


class GateBody(WireBody):
    step: int = Field(description="The step (1-based) whose gate was decided.")
    decision: Literal["resume", "abort"]
    actor: str
    at: datetime
    reason: str = ""


class PromotionBody(WireBody):
    """A progressive promotion as it stands: step, weights, readings, whether it waits."""

    status: str = Field(
        description="shift, measure, gate, waiting, next, promoted, backed_out or failed."
    )
    step: int = Field(description="The current step, 1-based (one past the last when done).")
    steps: list[dict[str, object]]
    weights: dict[str, int] = Field(description="Production's weights as the flow last set them.")
    canary: ColourName
    production: ColourName
    waiting_for_person: bool
    waiting_for: str = Field(default="", description="Why it waits, when it does.")
    analyses: list[dict[str, object]] = Field(
        description="Every reading so far: finding, reasons, requests, error percent, p99."
    )
    gates: list[GateBody]
    abort_requested_by: str = ""
    cause: str = ""
    step_started_at: str | None = Field(
        default=None, description="When this step's weights were set."
    )
    failed_at: str | None = Field(
        default=None, description="When the reading that failed it ended."
    )
    backed_out_at: str | None = Field(
        default=None, description="When production was back at 100 % on the old colour."
    )


class GateDecisionBody(WireBody):
    """A person's decision about a promotion was taken."""

    deployment_id: str
    decision: Literal["resume", "abort", "hold"]
    step: int = Field(description="The step (1-based) it was taken at.")


class DeploymentStatusBody(WireBody):
    """``GET /deployments/{id}``: the ledger's record and the live execution."""

    id: str
    record: DeploymentBody | None
    execution_arn: str
    execution: ExecutionBody | None
    console_url: str | None
    promotion: PromotionBody | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="A progressive promotion's progress (absent for other deployments).",
    )
