"""Typed configuration, read from the environment in exactly one place.

One stack serves one application; every name of the cluster side (namespace,
Deployments, Services, ConfigMap) is configuration, with the original system's
names as defaults. ``Settings`` is what the logic and the adapters read.

Each function reads only its own variables, through an environment model (a
pydantic model validated at its cold start) composed of the pieces below
(``Region``, ``Application``, ``ClusterAccess``, ...); the model turns into
``Settings`` (``settings()``), its variables set and the rest at their
defaults. ``StackEnvironment`` composes every piece: ``Settings.from_env`` and
``load_settings()`` read all of the stack's variables (tools, the local stack).
Nothing below a handler reads ``os.environ``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Any, Self, TypeVar, cast

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from bluegreen.adapters.registry import registry_account
from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.metric_queries import (
    DEFAULT_ERROR_RATIO_QUERY,
    DEFAULT_P99_QUERY,
    DEFAULT_REQUESTS_QUERY,
    MetricProvider,
)
from bluegreen.domain.models import Colour, Digest, Hook, Role
from bluegreen.domain.promotion import AnalysisPolicy, Strategy
from bluegreen.domain.traffic import RouterKind
from bluegreen.variables import (
    AtLeastOne,
    Hooks,
    HttpAddress,
    Metrics,
    NonNegative,
    PromotionSteps,
    PromQL,
    Router,
    TargetGroups,
    Text,
    WholeNumber,
    Words,
)

DEFAULT_STRATEGY = Strategy.parse_steps(
    [{"weight": 10, "pause": 300}, {"weight": 50, "pause": 300}, {"weight": 100}]
)

DEFAULT_HOOKS = (Hook(name="cache-flush", command=("wp", "cache", "flush", "--allow-root")),)


@dataclass(frozen=True)
class Settings:
    """Everything a function needs to know about its application and stack."""

    application: str = "wp-platform"
    region: str = "us-west-2"
    cluster_name: str = "wp-platform"
    namespace: str = "wp-platform"
    registry: str = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
    repository: str = "rezfusion-cloud"
    configmap_name: str = "canary-env"
    configmap_key: str = "canaryEnv"
    container_name: str = "web"
    deployment_name_pattern: str = "{colour}-deployment"
    canary_service_name: str = "canary-service"
    production_service_name: str = "production-service"
    auto_deploy_tags: tuple[str, ...] = ("dev",)
    hooks: tuple[Hook, ...] = DEFAULT_HOOKS
    ledger_table: str = "bluegreen-ledger"
    idempotency_table: str = "bluegreen-idempotency"
    state_machine_arn: str = ""
    event_bus_name: str = "default"
    event_source: str = "eks-bluegreen"
    lock_lease_seconds: int = 900
    bake_seconds: int = 0
    fail_after_restarts: int = 2
    """A new pod's container that restarted this often while crashing fails the rollout."""
    fail_after_seconds: int = 60
    """A new pod's container that cannot start (image pull, config error) this long fails it."""
    unschedulable_seconds: int = 180
    """A new pod no node can take for this long fails it."""
    health_url: str = ""
    alarm_names: tuple[str, ...] = ()
    kube_api_url: str = ""
    kubeconfig: str = ""
    kube_context: str = ""
    traffic_router: RouterKind = RouterKind.SELECTOR
    traffic_confirm_seconds: int = 120
    """How long a move of traffic waits for the data plane to apply it (0: not waited for)."""
    colour_service_pattern: str = "{colour}-service"
    colour_service_port: str = "80"
    ingress_name: str = "web"
    ingress_production_action: str = "production-weights"
    ingress_canary_action: str = "canary-forward"
    http_route_name: str = "web"
    http_route_production_rule: str = "production"
    http_route_canary_rule: str = "canary"
    promotion_strategy: Strategy = DEFAULT_STRATEGY
    promotion_pause_seconds: int = 300
    analysis: AnalysisPolicy = field(default_factory=AnalysisPolicy)
    analysis_target_groups: Mapping[Colour, str] = field(default_factory=dict)
    analysis_load_balancer: str = ""
    metric_provider: MetricProvider = MetricProvider.CLOUDWATCH
    """Where the analysis reads the canary's figures (``bluegreen.adapters.metrics``)."""
    prometheus_url: str = ""
    prometheus_requests_query: str = DEFAULT_REQUESTS_QUERY
    prometheus_error_ratio_query: str = DEFAULT_ERROR_RATIO_QUERY
    prometheus_p99_query: str = DEFAULT_P99_QUERY
    flip_back_window_seconds: int = 3600
    gate_timeout_seconds: int = 86_400
    gate_heartbeat_seconds: int = 0
    extra: Mapping[str, str] = field(default_factory=dict)

    def deployment_name(self, colour: Colour) -> str:
        """Name of the Deployment serving ``colour``."""
        return self.deployment_name_pattern.format(colour=colour.value)

    def service_name(self, role: Role) -> str:
        """Name of the Service that routes ``role`` traffic."""
        return self.canary_service_name if role is Role.CANARY else self.production_service_name

    def colour_service_name(self, colour: Colour) -> str:
        """Name of the Service that selects ``colour`` alone (``alb`` and ``gateway`` routers)."""
        return self.colour_service_pattern.format(colour=colour.value)

    @property
    def image_repository(self) -> str:
        """``<registry>/<repository>``: what an image reference starts with."""
        return f"{self.registry}/{self.repository}"

    def image_ref(self, digest: Digest) -> str:
        """The pinned image reference ``<registry>/<repo>@sha256:<hex>``."""
        return f"{self.image_repository}@{digest}"

    @property
    def registry_account(self) -> str:
        """The AWS account of the ECR registry (``adapters.registry.registry_account``)."""
        return registry_account(self.registry)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from environment variables (names as in template.yaml).

        Every variable of ours is prefixed ``BG_`` so that generic names of the
        host (a container's ``NAMESPACE``, say) never leak into the settings. Reads
        every variable of the stack (``StackEnvironment``); a function reads only
        its own through its environment model.
        """
        return StackEnvironment.read(environ).settings()


# --------------------------------------------------------------------------- environment

_DEFAULTS = Settings()


class EnvironmentPiece(BaseModel):
    """A group of variables some functions read; a function's model composes pieces.

    Each field's alias is its variable. ``read`` takes the variables from an
    environment (a blank one counts as unset, except for a list); a bad value is
    ``InvalidInput`` naming the variable, raised at the function's cold start.
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore", defer_build=True)

    @classmethod
    def read(cls, environ: Mapping[str, str]) -> Self:
        """The model of ``environ``'s variables."""
        values: dict[str, object] = {}
        for name, spec in cls.model_fields.items():
            for variable in _variables(spec):
                raw = environ.get(variable)
                if raw is None or (not raw.strip() and spec.annotation != tuple[str, ...]):
                    continue
                values[name] = raw
                break
        return cls.model_validate(values)

    @field_validator("*", mode="wrap")
    @classmethod
    def _name_the_variable(
        cls, value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> object:
        try:
            return handler(value)
        except ValidationError as exc:
            name = info.field_name or ""
            variable = _variables(cls.model_fields[name])[0] if name in cls.model_fields else name
            problem = str(exc.errors()[0].get("msg", "is not valid")).removeprefix("Value error, ")
            raise InvalidInput(variable, problem) from None

    def settings(self) -> Settings:
        """``Settings`` with this model's values, every other setting at its default."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        analysis = {
            spec.name: values.pop(f"analysis_{spec.name}")
            for spec in fields(AnalysisPolicy)
            if f"analysis_{spec.name}" in values
        }
        if analysis:
            values["analysis"] = AnalysisPolicy(**analysis)
        return Settings(**values)


def _variables(spec: Any) -> list[str]:
    choices = spec.validation_alias
    if isinstance(choices, AliasChoices):
        return [str(choice) for choice in choices.choices]
    return [str(spec.alias)]


class Region(EnvironmentPiece):
    """The AWS region of the stack (Lambda sets ``AWS_REGION``)."""

    region: Text = Field(
        _DEFAULTS.region, validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )


class Application(EnvironmentPiece):
    """Which application this stack releases, and where its images live."""

    application: Text = Field(_DEFAULTS.application, alias="BG_APP_NAME")
    registry: Text = Field(_DEFAULTS.registry, alias="BG_REGISTRY")
    repository: Text = Field(_DEFAULTS.repository, alias="BG_REPOSITORY_NAME")


class LedgerTable(EnvironmentPiece):
    """The ledger's DynamoDB table (images, verdicts, deployments, the lock, promotions)."""

    ledger_table: Text = Field(_DEFAULTS.ledger_table, alias="BG_LEDGER_TABLE_NAME")


class IdempotencyTable(EnvironmentPiece):
    """The table where duplicate ECR push deliveries are recognised."""

    idempotency_table: Text = Field(_DEFAULTS.idempotency_table, alias="BG_IDEMPOTENCY_TABLE_NAME")


class DeployFlow(EnvironmentPiece):
    """The deploy state machine, for the functions that start executions."""

    state_machine_arn: Text = Field(_DEFAULTS.state_machine_arn, alias="BG_STATE_MACHINE_ARN")


class AutoDeploy(EnvironmentPiece):
    """The tags whose push deploys to the canary."""

    auto_deploy_tags: Words = Field(_DEFAULTS.auto_deploy_tags, alias="BG_AUTO_DEPLOY_TAGS")


class ClusterAccess(EnvironmentPiece):
    """The cluster, the application's namespace and its objects, and the traffic router.

    ``BG_KUBE_API_URL``, ``KUBECONFIG`` and ``BG_KUBE_CONTEXT`` serve runs outside
    Lambda (the emulator, a kubeconfig); a deployed function finds its cluster
    through ``eks:DescribeCluster``.
    """

    cluster_name: Text = Field(_DEFAULTS.cluster_name, alias="BG_CLUSTER_NAME")
    namespace: Text = Field(_DEFAULTS.namespace, alias="BG_NAMESPACE")
    configmap_name: Text = Field(_DEFAULTS.configmap_name, alias="BG_CONFIGMAP_NAME")
    configmap_key: Text = Field(_DEFAULTS.configmap_key, alias="BG_CONFIGMAP_KEY")
    container_name: Text = Field(_DEFAULTS.container_name, alias="BG_CONTAINER_NAME")
    deployment_name_pattern: Text = Field(
        _DEFAULTS.deployment_name_pattern, alias="BG_DEPLOYMENT_NAME_PATTERN"
    )
    canary_service_name: Text = Field(_DEFAULTS.canary_service_name, alias="BG_CANARY_SERVICE_NAME")
    production_service_name: Text = Field(
        _DEFAULTS.production_service_name, alias="BG_PRODUCTION_SERVICE_NAME"
    )
    kube_api_url: Text = Field(_DEFAULTS.kube_api_url, alias="BG_KUBE_API_URL")
    kubeconfig: Text = Field(_DEFAULTS.kubeconfig, alias="KUBECONFIG")
    kube_context: Text = Field(_DEFAULTS.kube_context, alias="BG_KUBE_CONTEXT")
    traffic_router: Router = Field(_DEFAULTS.traffic_router, alias="BG_TRAFFIC_ROUTER")
    traffic_confirm_seconds: WholeNumber = Field(
        _DEFAULTS.traffic_confirm_seconds, alias="BG_TRAFFIC_CONFIRM_SECONDS"
    )
    colour_service_pattern: Text = Field(
        _DEFAULTS.colour_service_pattern, alias="BG_COLOUR_SERVICE_PATTERN"
    )
    colour_service_port: Text = Field(_DEFAULTS.colour_service_port, alias="BG_COLOUR_SERVICE_PORT")
    ingress_name: Text = Field(_DEFAULTS.ingress_name, alias="BG_INGRESS_NAME")
    ingress_production_action: Text = Field(
        _DEFAULTS.ingress_production_action, alias="BG_INGRESS_PRODUCTION_ACTION"
    )
    ingress_canary_action: Text = Field(
        _DEFAULTS.ingress_canary_action, alias="BG_INGRESS_CANARY_ACTION"
    )
    http_route_name: Text = Field(_DEFAULTS.http_route_name, alias="BG_HTTP_ROUTE_NAME")
    http_route_production_rule: Text = Field(
        _DEFAULTS.http_route_production_rule, alias="BG_HTTP_ROUTE_PRODUCTION_RULE"
    )
    http_route_canary_rule: Text = Field(
        _DEFAULTS.http_route_canary_rule, alias="BG_HTTP_ROUTE_CANARY_RULE"
    )


class DeployEvents(EnvironmentPiece):
    """Where deployment events are published (EventBridge)."""

    event_bus_name: Text = Field(_DEFAULTS.event_bus_name, alias="BG_EVENT_BUS_NAME")
    event_source: Text = Field(_DEFAULTS.event_source, alias="BG_EVENT_SOURCE")


class DeployPolicy(EnvironmentPiece):
    """How the deploy flow runs: hooks, the lock's lease, the bake, fail-fast, health."""

    hooks: Hooks = Field(_DEFAULTS.hooks, alias="BG_HOOKS")
    lock_lease_seconds: WholeNumber = Field(
        _DEFAULTS.lock_lease_seconds, alias="BG_LOCK_LEASE_SECONDS"
    )
    bake_seconds: WholeNumber = Field(_DEFAULTS.bake_seconds, alias="BG_BAKE_SECONDS")
    fail_after_restarts: WholeNumber = Field(
        _DEFAULTS.fail_after_restarts, alias="BG_FAIL_AFTER_RESTARTS"
    )
    fail_after_seconds: WholeNumber = Field(
        _DEFAULTS.fail_after_seconds, alias="BG_FAIL_AFTER_SECONDS"
    )
    unschedulable_seconds: WholeNumber = Field(
        _DEFAULTS.unschedulable_seconds, alias="BG_UNSCHEDULABLE_SECONDS"
    )
    health_url: Text = Field(_DEFAULTS.health_url, alias="BG_HEALTH_URL")
    alarm_names: Words = Field(_DEFAULTS.alarm_names, alias="BG_ALARM_NAMES")


class PromotionPlan(EnvironmentPiece):
    """What a progressive promotion runs: its steps, pauses, analysis interval and gates."""

    promotion_strategy: PromotionSteps = Field(
        _DEFAULTS.promotion_strategy, alias="BG_PROMOTION_STEPS"
    )
    promotion_pause_seconds: WholeNumber = Field(
        _DEFAULTS.promotion_pause_seconds, alias="BG_PROMOTION_PAUSE_SECONDS"
    )
    analysis_interval_seconds: AtLeastOne = Field(
        _DEFAULTS.analysis.interval_seconds, alias="BG_ANALYSIS_INTERVAL_SECONDS"
    )
    gate_timeout_seconds: AtLeastOne = Field(
        _DEFAULTS.gate_timeout_seconds, alias="BG_GATE_TIMEOUT_SECONDS"
    )
    gate_heartbeat_seconds: WholeNumber = Field(
        _DEFAULTS.gate_heartbeat_seconds, alias="BG_GATE_HEARTBEAT_SECONDS"
    )

    @model_validator(mode="after")
    def _heartbeat_within_timeout(self) -> Self:
        if self.gate_heartbeat_seconds >= self.gate_timeout_seconds:
            raise InvalidInput(
                "BG_GATE_HEARTBEAT_SECONDS",
                f"must be less than BG_GATE_TIMEOUT_SECONDS ({self.gate_timeout_seconds}), "
                f"got {self.gate_heartbeat_seconds} (0: a gate needs no heartbeat)",
            )
        return self


class CanaryAnalysis(EnvironmentPiece):
    """How the flow judges the canary between steps, and how long production may flip back."""

    analysis_max_error_percent: NonNegative = Field(
        _DEFAULTS.analysis.max_error_percent, alias="BG_ANALYSIS_MAX_ERROR_PERCENT"
    )
    analysis_max_p99_seconds: NonNegative = Field(
        _DEFAULTS.analysis.max_p99_seconds, alias="BG_ANALYSIS_MAX_P99_SECONDS"
    )
    analysis_min_requests: WholeNumber = Field(
        _DEFAULTS.analysis.min_requests, alias="BG_ANALYSIS_MIN_REQUESTS"
    )
    analysis_failure_limit: WholeNumber = Field(
        _DEFAULTS.analysis.failure_limit, alias="BG_ANALYSIS_FAILURE_LIMIT"
    )
    analysis_inconclusive_limit: WholeNumber = Field(
        _DEFAULTS.analysis.inconclusive_limit, alias="BG_ANALYSIS_INCONCLUSIVE_LIMIT"
    )
    analysis_target_groups: TargetGroups = Field(
        default_factory=dict, alias="BG_ANALYSIS_TARGET_GROUPS"
    )
    analysis_load_balancer: Text = Field(
        _DEFAULTS.analysis_load_balancer, alias="BG_ANALYSIS_LOAD_BALANCER"
    )
    metric_provider: Metrics = Field(_DEFAULTS.metric_provider, alias="BG_METRIC_PROVIDER")
    prometheus_url: HttpAddress = Field(_DEFAULTS.prometheus_url, alias="BG_PROMETHEUS_URL")
    prometheus_requests_query: PromQL = Field(
        _DEFAULTS.prometheus_requests_query, alias="BG_PROMETHEUS_REQUESTS_QUERY"
    )
    prometheus_error_ratio_query: PromQL = Field(
        _DEFAULTS.prometheus_error_ratio_query, alias="BG_PROMETHEUS_ERROR_RATIO_QUERY"
    )
    prometheus_p99_query: PromQL = Field(
        _DEFAULTS.prometheus_p99_query, alias="BG_PROMETHEUS_P99_QUERY"
    )
    flip_back_window_seconds: WholeNumber = Field(
        _DEFAULTS.flip_back_window_seconds, alias="BG_FLIP_BACK_WINDOW_SECONDS"
    )

    @model_validator(mode="after")
    def _prometheus_has_an_address(self) -> Self:
        if self.metric_provider is MetricProvider.PROMETHEUS and not self.prometheus_url:
            raise InvalidInput(
                "BG_PROMETHEUS_URL",
                "must be the address of Prometheus' HTTP API (a server's root, or an Amazon "
                "Managed Service for Prometheus workspace's) when BG_METRIC_PROVIDER is "
                "prometheus",
            )
        return self


Handler = TypeVar("Handler", bound=Callable[..., Any])


def checked_environment(
    environment: Callable[[], EnvironmentPiece],
) -> Callable[[Handler], Handler]:
    """A handler decorator: the function's environment model, read and validated before its
    first event is handled (``environment`` is the function's cached factory), so a bad
    variable fails the cold start with ``InvalidInput`` naming it."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def checked(*args: Any, **kwargs: Any) -> Any:
            environment()
            return handler(*args, **kwargs)

        return cast(Handler, checked)

    return decorate


class StackEnvironment(
    Region,
    Application,
    LedgerTable,
    IdempotencyTable,
    DeployFlow,
    AutoDeploy,
    ClusterAccess,
    DeployEvents,
    DeployPolicy,
    PromotionPlan,
    CanaryAnalysis,
):
    """Every variable of the stack: what tools and the local stack read."""


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process's settings, read once from ``os.environ``."""
    return Settings.from_env(os.environ)
