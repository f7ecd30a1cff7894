"""Applications of a stack: the validated spec of each, and what the registry keeps of it.

An application is what one stack's per-application parameters described until now
(cluster, namespace, repository, the names of its objects, the router, promotion
and analysis defaults, hooks, auto-deploy tags, bake, fail-fast thresholds, health
URL, alarms, lock lease). What stays the stack's (region, registry, tables, state
machine, event bus, how the cluster is reached) is not part of it.

``AppSpec``
    the spec, as the API and ``docs/openapi.json`` show it: camelCase JSON, strict
    (a number is a JSON number, a list a JSON list), unknown fields refused, every
    value checked against the rule its stack parameter had. Everything but
    ``cluster``, ``namespace`` and ``repository`` has the stack's default.
``AppRecord``
    a spec as the registry holds it: its version (1 at creation, one more with
    every change, never reused for the name, even across a delete), and who
    changed it, when and from where.
``default_app_spec`` / ``app_settings``
    the stack's own settings as the spec of its default application, and a spec
    back into the ``Settings`` today's use cases take, so each can run for any
    application unchanged.

Plain types and their checks, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.models import Colour, Hook
from bluegreen.domain.promotion import PAUSE_MAX, STEPS_MAX, AnalysisPolicy, Strategy
from bluegreen.domain.traffic import RouterKind

if TYPE_CHECKING:
    from bluegreen.config import Settings

APP_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"
"""An application's name: a DNS label of at most 40 characters (the stack's ``AppName``
parameter has the same rule; execution names, which start with it, are bounded)."""
APP_NAME_RULE = (
    "must be 1 to 40 lowercase letters, digits or '-', starting and ending with a letter or digit"
)

VERSION_PATTERN = r'^(W/)?"?[1-9][0-9]{0,9}"?$'
"""A version as an ``If-Match`` header names it: the ETag answered (``"3"``), or bare."""

# The rules of the stack parameters these fields replace (template.yaml's AllowedPattern).
CLUSTER_NAME = r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
SERVICE_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
REPOSITORY_NAME = r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$"
CONFIGMAP_KEY = r"^[-._a-zA-Z0-9]{1,253}$"
COLOUR_PATTERN = r"^[-a-z0-9.]*\{colour\}[-a-z0-9.]*$"
PORT = r"^[0-9]{1,5}$"
TAG = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
TARGET_GROUP = r"^targetgroup/\S+$"
LOAD_BALANCER = r"^(app/\S+)?$"
HEALTH_URL = r"^(https?://\S+)?$"
TRIMMED = r"^\S(.*\S)?$"

_MAX_SECONDS = 999_999

PATTERN_RULES = {
    APP_NAME_PATTERN: APP_NAME_RULE,
    VERSION_PATTERN: 'must be a version the API answered as ETag ("3"): a whole number from 1',
    CLUSTER_NAME: "is not an EKS cluster name: letters, digits, '-' and '_', at most 100",
    DNS_LABEL: "is not a DNS label: lowercase letters, digits and '-', at most 63",
    DNS_SUBDOMAIN: "is not a Kubernetes object name: lowercase letters, digits, '-' and '.'",
    SERVICE_NAME: "is not a Service name: a lowercase letter, then letters, digits and '-'",
    REPOSITORY_NAME: "is not an ECR repository name: lowercase, digits, '.', '_', '-', '/'",
    CONFIGMAP_KEY: "is not a ConfigMap key: letters, digits, '-', '_' and '.'",
    COLOUR_PATTERN: "must hold {colour} once, among lowercase letters, digits, '-' and '.'",
    PORT: "is not a port: decimal digits",
    TAG: "is not an image tag: letters, digits, '_', '.' and '-', at most 128",
    TARGET_GROUP: "is not a TargetGroup dimension: targetgroup/<name>/<id>",
    LOAD_BALANCER: "is not a LoadBalancer dimension: app/<name>/<id>, or empty",
    HEALTH_URL: "is not an http(s) URL (or empty)",
    TRIMMED: "must not be empty or begin or end with whitespace",
}
"""What a refusal says for each pattern of the spec, instead of the pattern itself."""


class _Spec(BaseModel):
    """camelCase on the wire only: ``deploymentPattern`` is the field, ``deployment_pattern``
    is refused like any other unknown name, so a spec has one spelling."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        defer_build=True,
    )


Group = TypeVar("Group", bound=_Spec)


def _defaults(group: type[Group]) -> Callable[[], Group]:
    """A group of fields at its defaults (a spec leaves out what it does not change)."""
    return lambda: group.model_validate({})


class NamespaceObjects(_Spec):
    """The objects of the application's namespace the product reads and writes."""

    config_map: str = Field(
        "canary-env", pattern=DNS_SUBDOMAIN, description="ConfigMap holding the canary state."
    )
    config_map_key: str = Field(
        "canaryEnv", pattern=CONFIGMAP_KEY, description="Its key holding canaryEnv."
    )
    container: str = Field(
        "web", pattern=DNS_LABEL, description="The container whose image is deployed."
    )
    deployment_pattern: str = Field(
        "{colour}-deployment", pattern=COLOUR_PATTERN, description="Each colour's Deployment."
    )
    canary_service: str = Field(
        "canary-service", pattern=SERVICE_NAME, description="The canary Service."
    )
    production_service: str = Field(
        "production-service", pattern=SERVICE_NAME, description="The production Service."
    )


class IngressObjects(_Spec):
    """``alb``: the Ingress and the actions of its production and canary rules."""

    name: str = Field("web", pattern=DNS_SUBDOMAIN)
    production_action: str = Field("production-weights", pattern=SERVICE_NAME)
    canary_action: str = Field("canary-forward", pattern=SERVICE_NAME)


class HttpRouteObjects(_Spec):
    """``gateway``: the HTTPRoute and the names of its production and canary rules."""

    name: str = Field("web", pattern=DNS_SUBDOMAIN)
    production_rule: str = Field("production", pattern=DNS_SUBDOMAIN)
    canary_rule: str = Field("canary", pattern=DNS_SUBDOMAIN)


class RouterSpec(_Spec):
    """How traffic moves between the colours, and the objects that carry it."""

    kind: Literal["selector", "alb", "gateway"] = Field(
        "selector",
        description="selector: the Services' selectors follow the roles; alb: an Ingress's "
        "weighted actions; gateway: an HTTPRoute's weighted backendRefs.",
    )
    colour_service_pattern: str = Field(
        "{colour}-service",
        pattern=COLOUR_PATTERN,
        description="alb and gateway: each colour's Service.",
    )
    colour_service_port: str = Field("80", pattern=PORT, description="Port of the colour Services.")
    ingress: IngressObjects = Field(default_factory=_defaults(IngressObjects))
    http_route: HttpRouteObjects = Field(default_factory=_defaults(HttpRouteObjects))


class StepSpec(_Spec):
    """One step of a progressive promotion: the canary's share of production, then a pause."""

    weight: int = Field(ge=1, le=100)
    pause: Annotated[int, Field(ge=0, le=PAUSE_MAX)] | Literal["manual"] | None = None

    @field_validator("pause", mode="wrap")
    @classmethod
    def _one_problem(cls, value: object, handler: ValidatorFunctionWrapHandler) -> object:
        # One message on the field itself, instead of one per member of the union.
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(
                f"must be a whole number of seconds from 0 to {PAUSE_MAX}, or 'manual'"
            ) from None


def _strategy_of(steps: list[StepSpec]) -> Strategy:
    return Strategy.parse_steps([step.model_dump(exclude_none=True) for step in steps])


_DEFAULT_STEPS = ({"weight": 10, "pause": 300}, {"weight": 50, "pause": 300}, {"weight": 100})


class PromotionSpec(_Spec):
    """A progressive promotion's defaults (``alb`` and ``gateway``) and the flip-back window."""

    steps: list[StepSpec] = Field(
        default_factory=lambda: [StepSpec.model_validate(step) for step in _DEFAULT_STEPS],
        min_length=1,
        max_length=STEPS_MAX,
        description="Increasing weights ending at 100.",
    )
    pause_seconds: int = Field(300, ge=0, le=PAUSE_MAX, description="Pause of a step naming none.")
    gate_timeout_seconds: int = Field(86_400, ge=1, le=_MAX_SECONDS)
    gate_heartbeat_seconds: int = Field(0, ge=0, le=_MAX_SECONDS, description="0: none expected.")
    flip_back_window_seconds: int = Field(3600, ge=0, le=_MAX_SECONDS, description="0: none.")

    @field_validator("steps")
    @classmethod
    def _steps_make_a_strategy(cls, steps: list[StepSpec]) -> list[StepSpec]:
        try:
            _strategy_of(steps)
        except InvalidInput as exc:
            raise ValueError(exc.problem if exc.field == "steps" else str(exc)) from None
        return steps

    @model_validator(mode="after")
    def _heartbeat_within_timeout(self) -> Self:
        if self.gate_heartbeat_seconds >= self.gate_timeout_seconds:
            raise ValueError(
                f"gateHeartbeatSeconds must be less than gateTimeoutSeconds "
                f"({self.gate_timeout_seconds}), got {self.gate_heartbeat_seconds}"
            )
        return self


class TargetGroups(_Spec):
    """The ALB metrics' ``TargetGroup`` dimension of each colour's Service."""

    blue: str | None = Field(None, pattern=TARGET_GROUP)
    green: str | None = Field(None, pattern=TARGET_GROUP)


class AnalysisSpec(_Spec):
    """How the canary colour is judged between steps."""

    interval_seconds: int = Field(60, ge=1, le=9_999)
    max_error_percent: float = Field(1.0, ge=0, le=100)
    max_p99_seconds: float = Field(1.0, ge=0)
    min_requests: int = Field(50, ge=0)
    failure_limit: int = Field(0, ge=0, le=999)
    inconclusive_limit: int = Field(2, ge=0, le=999)
    target_groups: TargetGroups = Field(default_factory=_defaults(TargetGroups))
    load_balancer: str = Field("", pattern=LOAD_BALANCER, max_length=1024)


class HookSpec(_Spec):
    """A post-deploy hook: a Job from the target colour's pod template running ``command``."""

    name: str = Field(pattern=TRIMMED, max_length=63)
    command: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    on_failure: Literal["rollback", "continue"] = "rollback"
    timeout_seconds: int = Field(300, ge=1, le=_MAX_SECONDS)


_DEFAULT_HOOK = {"name": "cache-flush", "command": ["wp", "cache", "flush", "--allow-root"]}


class DeploySpec(_Spec):
    """How a deploy runs: what deploys itself, the hooks, the bake, fail-fast and the verdict."""

    auto_deploy_tags: list[Annotated[str, Field(pattern=TAG)]] = Field(
        default_factory=lambda: ["dev"], description="Tags whose push deploys to the canary."
    )
    hooks: list[HookSpec] = Field(default_factory=lambda: [HookSpec.model_validate(_DEFAULT_HOOK)])
    bake_seconds: int = Field(0, ge=0, le=99_999)
    fail_after_restarts: int = Field(2, ge=1, le=999)
    fail_after_seconds: int = Field(60, ge=0, le=99_999)
    unschedulable_seconds: int = Field(180, ge=0, le=99_999)
    health_url: str = Field("", pattern=HEALTH_URL, max_length=2048)
    alarm_names: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        default_factory=list
    )
    lock_lease_seconds: int = Field(900, ge=10, le=99_999)

    @field_validator("hooks")
    @classmethod
    def _hook_names_are_unique(cls, hooks: list[HookSpec]) -> list[HookSpec]:
        names = [hook.name for hook in hooks]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"hook names must be unique; {twice[0]!r} appears more than once")
        return hooks


class AppSpec(_Spec):
    """An application: its cluster, namespace and repository, and how it is released."""

    cluster: str = Field(pattern=CLUSTER_NAME, description="EKS cluster, in the stack's region.")
    namespace: str = Field(pattern=DNS_LABEL, description="Namespace of the application.")
    repository: str = Field(
        pattern=REPOSITORY_NAME,
        max_length=256,
        description="ECR repository in the stack's registry.",
    )
    objects: NamespaceObjects = Field(default_factory=_defaults(NamespaceObjects))
    router: RouterSpec = Field(default_factory=_defaults(RouterSpec))
    promotion: PromotionSpec = Field(default_factory=_defaults(PromotionSpec))
    analysis: AnalysisSpec = Field(default_factory=_defaults(AnalysisSpec))
    deploy: DeploySpec = Field(default_factory=_defaults(DeploySpec))

    @classmethod
    def parse(cls, value: object) -> AppSpec:
        """The spec of a JSON value; ``InvalidInput`` names the first wrong field
        (``deploy.hooks[0].timeoutSeconds``) and says what is wrong with it."""
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise InvalidInput(field_path(error["loc"]), _problem(error)) from None

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON data, every field present (defaults included)."""
        return self.model_dump(mode="json")


def field_path(loc: tuple[int | str, ...]) -> str:
    """A validation error's location as a reader writes it: ``deploy.hooks[0].name``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "spec"


def _problem(error: Mapping[str, Any]) -> str:
    if error.get("type") == "extra_forbidden":
        return "is not a field of an application spec"
    if error.get("type") == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern")
        if pattern in PATTERN_RULES:
            return PATTERN_RULES[pattern]
    return str(error.get("msg", "is not valid")).removeprefix("Value error, ")


def check_app_name(name: str) -> str:
    """``name`` when it is an application's name; else ``InvalidInput`` on ``app``."""
    if not isinstance(name, str) or not re.fullmatch(APP_NAME_PATTERN, name):
        raise InvalidInput("app", f"{name!r} {APP_NAME_RULE}")
    return name


NEVER_USED = 0
"""The version a write may expect of a name that never held an application (not even one
deleted since): how the stack registers its default application once, and never again
after someone deleted it."""


@dataclass(frozen=True)
class Editor:
    """Who changes the registry: the caller's identity, address and request id."""

    actor: str
    source_ip: str = ""
    request_id: str = ""


@dataclass(frozen=True)
class AppRecord:
    """An application as the registry holds it."""

    name: str
    spec: AppSpec
    version: int
    changed_by: str
    changed_at: datetime
    created_by: str
    created_at: datetime
    source_ip: str = ""


@dataclass(frozen=True)
class AppChange:
    """One change of an application, kept after the application is deleted."""

    name: str
    version: int
    action: Literal["create", "replace", "delete"]
    actor: str
    at: datetime
    source_ip: str = ""
    request_id: str = ""
    spec: AppSpec | None = None
    """The spec written (for a delete: the spec deleted)."""


# ------------------------------------------------------------------ the stack's settings


def default_app_spec(settings: Settings) -> AppSpec:
    """The spec of the stack's default application: what its parameters say today."""
    analysis = settings.analysis
    groups = settings.analysis_target_groups
    spec = {
        "cluster": settings.cluster_name,
        "namespace": settings.namespace,
        "repository": settings.repository,
        "objects": {
            "configMap": settings.configmap_name,
            "configMapKey": settings.configmap_key,
            "container": settings.container_name,
            "deploymentPattern": settings.deployment_name_pattern,
            "canaryService": settings.canary_service_name,
            "productionService": settings.production_service_name,
        },
        "router": {
            "kind": settings.traffic_router.value,
            "colourServicePattern": settings.colour_service_pattern,
            "colourServicePort": settings.colour_service_port,
            "ingress": {
                "name": settings.ingress_name,
                "productionAction": settings.ingress_production_action,
                "canaryAction": settings.ingress_canary_action,
            },
            "httpRoute": {
                "name": settings.http_route_name,
                "productionRule": settings.http_route_production_rule,
                "canaryRule": settings.http_route_canary_rule,
            },
        },
        "promotion": {
            "steps": [step.to_json() for step in settings.promotion_strategy.steps],
            "pauseSeconds": settings.promotion_pause_seconds,
            "gateTimeoutSeconds": settings.gate_timeout_seconds,
            "gateHeartbeatSeconds": settings.gate_heartbeat_seconds,
            "flipBackWindowSeconds": settings.flip_back_window_seconds,
        },
        "analysis": {
            "intervalSeconds": analysis.interval_seconds,
            "maxErrorPercent": float(analysis.max_error_percent),
            "maxP99Seconds": float(analysis.max_p99_seconds),
            "minRequests": analysis.min_requests,
            "failureLimit": analysis.failure_limit,
            "inconclusiveLimit": analysis.inconclusive_limit,
            "targetGroups": {colour.value: group for colour, group in groups.items()},
            "loadBalancer": settings.analysis_load_balancer,
        },
        "deploy": {
            "autoDeployTags": list(settings.auto_deploy_tags),
            "hooks": [
                {
                    "name": hook.name,
                    "command": list(hook.command),
                    "onFailure": hook.on_failure,
                    "timeoutSeconds": hook.timeout_seconds,
                }
                for hook in settings.hooks
            ],
            "bakeSeconds": settings.bake_seconds,
            "failAfterRestarts": settings.fail_after_restarts,
            "failAfterSeconds": settings.fail_after_seconds,
            "unschedulableSeconds": settings.unschedulable_seconds,
            "healthUrl": settings.health_url,
            "alarmNames": list(settings.alarm_names),
            "lockLeaseSeconds": settings.lock_lease_seconds,
        },
    }
    return AppSpec.parse(spec)


def app_settings(stack: Settings, name: str, spec: AppSpec) -> Settings:
    """The ``Settings`` of application ``name``: the stack's own (region, registry, tables,
    flow, bus, how the cluster is reached), everything else from ``spec``."""
    objects, router, promotion = spec.objects, spec.router, spec.promotion
    analysis, deploy = spec.analysis, spec.deploy
    groups = {
        colour: group
        for colour, group in (
            (Colour.BLUE, analysis.target_groups.blue),
            (Colour.GREEN, analysis.target_groups.green),
        )
        if group
    }
    return replace(
        stack,
        application=check_app_name(name),
        cluster_name=spec.cluster,
        namespace=spec.namespace,
        repository=spec.repository,
        configmap_name=objects.config_map,
        configmap_key=objects.config_map_key,
        container_name=objects.container,
        deployment_name_pattern=objects.deployment_pattern,
        canary_service_name=objects.canary_service,
        production_service_name=objects.production_service,
        traffic_router=RouterKind(router.kind),
        colour_service_pattern=router.colour_service_pattern,
        colour_service_port=router.colour_service_port,
        ingress_name=router.ingress.name,
        ingress_production_action=router.ingress.production_action,
        ingress_canary_action=router.ingress.canary_action,
        http_route_name=router.http_route.name,
        http_route_production_rule=router.http_route.production_rule,
        http_route_canary_rule=router.http_route.canary_rule,
        promotion_strategy=_strategy_of(promotion.steps),
        promotion_pause_seconds=promotion.pause_seconds,
        gate_timeout_seconds=promotion.gate_timeout_seconds,
        gate_heartbeat_seconds=promotion.gate_heartbeat_seconds,
        flip_back_window_seconds=promotion.flip_back_window_seconds,
        analysis=AnalysisPolicy(
            interval_seconds=analysis.interval_seconds,
            max_error_percent=analysis.max_error_percent,
            max_p99_seconds=analysis.max_p99_seconds,
            min_requests=analysis.min_requests,
            failure_limit=analysis.failure_limit,
            inconclusive_limit=analysis.inconclusive_limit,
        ),
        analysis_target_groups=groups,
        analysis_load_balancer=analysis.load_balancer,
        auto_deploy_tags=tuple(deploy.auto_deploy_tags),
        hooks=tuple(
            Hook(
                name=hook.name,
                command=tuple(hook.command),
                on_failure=hook.on_failure,
                timeout_seconds=hook.timeout_seconds,
            )
            for hook in deploy.hooks
        ),
        bake_seconds=deploy.bake_seconds,
        fail_after_restarts=deploy.fail_after_restarts,
        fail_after_seconds=deploy.fail_after_seconds,
        unschedulable_seconds=deploy.unschedulable_seconds,
        health_url=deploy.health_url,
        alarm_names=tuple(deploy.alarm_names),
        lock_lease_seconds=deploy.lock_lease_seconds,
    )
