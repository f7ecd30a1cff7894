"""Typed configuration, read from the environment in exactly one place.

One stack serves one application; every name of the cluster side (namespace,
Deployments, Services, ConfigMap) is configuration, with the original system's
names as defaults. Handlers call ``load_settings()`` at cold start; nothing
below a handler reads ``os.environ``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.models import Colour, Digest, Hook, Role
from bluegreen.domain.promotion import AnalysisPolicy, Strategy
from bluegreen.domain.traffic import RouterKind

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
        """The AWS account of an ECR registry (``<account>.dkr.ecr.<region>.amazonaws.com``).

        Empty when ``registry`` is not an ECR host: then no account is known.
        """
        account, _, rest = self.registry.partition(".")
        is_ecr = rest.startswith("dkr.ecr.") and account.isdigit() and len(account) == 12
        return account if is_ecr else ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from environment variables (names as in template.yaml).

        Every variable of ours is prefixed ``BG_`` so that generic names of the
        host (a container's ``NAMESPACE``, say) never leak into the settings.
        """
        defaults = cls()

        def text(name: str, default: str) -> str:
            value = environ.get(name, "").strip()
            return value or default

        def number(name: str, default: int) -> int:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            try:
                return int(raw)
            except ValueError:
                raise InvalidInput(name, f"must be a whole number, got {raw!r}") from None

        def decimal(name: str, default: float) -> float:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise InvalidInput(name, f"must be a number, got {raw!r}") from None
            if not value >= 0:
                raise InvalidInput(name, f"must be 0 or more, got {raw!r}")
            return value

        def words(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
            raw = environ.get(name)
            if raw is None:
                return default
            return tuple(w.strip() for w in raw.split(",") if w.strip())

        region = text("AWS_REGION", text("AWS_DEFAULT_REGION", defaults.region))
        settings = cls(
            application=text("BG_APP_NAME", defaults.application),
            region=region,
            cluster_name=text("BG_CLUSTER_NAME", defaults.cluster_name),
            namespace=text("BG_NAMESPACE", defaults.namespace),
            registry=text("BG_REGISTRY", defaults.registry),
            repository=text("BG_REPOSITORY_NAME", defaults.repository),
            configmap_name=text("BG_CONFIGMAP_NAME", defaults.configmap_name),
            configmap_key=text("BG_CONFIGMAP_KEY", defaults.configmap_key),
            container_name=text("BG_CONTAINER_NAME", defaults.container_name),
            deployment_name_pattern=text(
                "BG_DEPLOYMENT_NAME_PATTERN", defaults.deployment_name_pattern
            ),
            canary_service_name=text("BG_CANARY_SERVICE_NAME", defaults.canary_service_name),
            production_service_name=text(
                "BG_PRODUCTION_SERVICE_NAME", defaults.production_service_name
            ),
            auto_deploy_tags=words("BG_AUTO_DEPLOY_TAGS", defaults.auto_deploy_tags),
            hooks=parse_hooks(environ["BG_HOOKS"]) if environ.get("BG_HOOKS") else defaults.hooks,
            ledger_table=text("BG_LEDGER_TABLE_NAME", defaults.ledger_table),
            idempotency_table=text("BG_IDEMPOTENCY_TABLE_NAME", defaults.idempotency_table),
            state_machine_arn=text("BG_STATE_MACHINE_ARN", defaults.state_machine_arn),
            event_bus_name=text("BG_EVENT_BUS_NAME", defaults.event_bus_name),
            event_source=text("BG_EVENT_SOURCE", defaults.event_source),
            lock_lease_seconds=number("BG_LOCK_LEASE_SECONDS", defaults.lock_lease_seconds),
            bake_seconds=number("BG_BAKE_SECONDS", defaults.bake_seconds),
            fail_after_restarts=number("BG_FAIL_AFTER_RESTARTS", defaults.fail_after_restarts),
            fail_after_seconds=number("BG_FAIL_AFTER_SECONDS", defaults.fail_after_seconds),
            unschedulable_seconds=number(
                "BG_UNSCHEDULABLE_SECONDS", defaults.unschedulable_seconds
            ),
            health_url=text("BG_HEALTH_URL", defaults.health_url),
            alarm_names=words("BG_ALARM_NAMES", defaults.alarm_names),
            kube_api_url=text("BG_KUBE_API_URL", defaults.kube_api_url),
            kubeconfig=text("KUBECONFIG", defaults.kubeconfig),
            kube_context=text("BG_KUBE_CONTEXT", defaults.kube_context),
            traffic_router=RouterKind.parse(
                text("BG_TRAFFIC_ROUTER", defaults.traffic_router.value),
                field_name="BG_TRAFFIC_ROUTER",
            ),
            colour_service_pattern=text(
                "BG_COLOUR_SERVICE_PATTERN", defaults.colour_service_pattern
            ),
            colour_service_port=text("BG_COLOUR_SERVICE_PORT", defaults.colour_service_port),
            ingress_name=text("BG_INGRESS_NAME", defaults.ingress_name),
            ingress_production_action=text(
                "BG_INGRESS_PRODUCTION_ACTION", defaults.ingress_production_action
            ),
            ingress_canary_action=text("BG_INGRESS_CANARY_ACTION", defaults.ingress_canary_action),
            http_route_name=text("BG_HTTP_ROUTE_NAME", defaults.http_route_name),
            http_route_production_rule=text(
                "BG_HTTP_ROUTE_PRODUCTION_RULE", defaults.http_route_production_rule
            ),
            http_route_canary_rule=text(
                "BG_HTTP_ROUTE_CANARY_RULE", defaults.http_route_canary_rule
            ),
            promotion_strategy=(
                parse_strategy(environ["BG_PROMOTION_STEPS"])
                if environ.get("BG_PROMOTION_STEPS", "").strip()
                else defaults.promotion_strategy
            ),
            promotion_pause_seconds=number(
                "BG_PROMOTION_PAUSE_SECONDS", defaults.promotion_pause_seconds
            ),
            analysis=AnalysisPolicy(
                interval_seconds=max(
                    1, number("BG_ANALYSIS_INTERVAL_SECONDS", defaults.analysis.interval_seconds)
                ),
                max_error_percent=decimal(
                    "BG_ANALYSIS_MAX_ERROR_PERCENT", defaults.analysis.max_error_percent
                ),
                max_p99_seconds=decimal(
                    "BG_ANALYSIS_MAX_P99_SECONDS", defaults.analysis.max_p99_seconds
                ),
                min_requests=number("BG_ANALYSIS_MIN_REQUESTS", defaults.analysis.min_requests),
                failure_limit=number("BG_ANALYSIS_FAILURE_LIMIT", defaults.analysis.failure_limit),
                inconclusive_limit=number(
                    "BG_ANALYSIS_INCONCLUSIVE_LIMIT", defaults.analysis.inconclusive_limit
                ),
            ),
            analysis_target_groups=parse_target_groups(
                environ.get("BG_ANALYSIS_TARGET_GROUPS", "")
            ),
            analysis_load_balancer=text(
                "BG_ANALYSIS_LOAD_BALANCER", defaults.analysis_load_balancer
            ),
            flip_back_window_seconds=number(
                "BG_FLIP_BACK_WINDOW_SECONDS", defaults.flip_back_window_seconds
            ),
            gate_timeout_seconds=max(
                1, number("BG_GATE_TIMEOUT_SECONDS", defaults.gate_timeout_seconds)
            ),
            gate_heartbeat_seconds=number(
                "BG_GATE_HEARTBEAT_SECONDS", defaults.gate_heartbeat_seconds
            ),
        )
        if settings.gate_heartbeat_seconds >= settings.gate_timeout_seconds:
            raise InvalidInput(
                "BG_GATE_HEARTBEAT_SECONDS",
                f"must be less than BG_GATE_TIMEOUT_SECONDS ({settings.gate_timeout_seconds}), "
                f"got {settings.gate_heartbeat_seconds} (0: a gate needs no heartbeat)",
            )
        return settings


def parse_hooks(raw: str) -> tuple[Hook, ...]:
    """Parse the ``BG_HOOKS`` variable: a JSON list of hook objects.

    Each item: ``{"name": "cache-flush", "command": "wp cache flush --allow-root"
    | ["wp", ...], "onFailure": "rollback" | "continue", "timeoutSeconds": 300}``.
    """
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput("BG_HOOKS", f"is not valid JSON: {exc.msg}") from None
    if not isinstance(items, list):
        raise InvalidInput("BG_HOOKS", "must be a JSON list of hook objects")
    hooks = []
    for index, item in enumerate(items):
        where = f"BG_HOOKS[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(where, "must be an object with 'name' and 'command'")
        name, command = item.get("name"), item.get("command")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"{where}.name", "must be a non-empty string")
        if isinstance(command, str):
            command = command.split()
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(part, str) for part in command)
        ):
            raise InvalidInput(f"{where}.command", "must be a string or a list of strings")
        on_failure = item.get("onFailure", "rollback")
        if on_failure not in ("rollback", "continue"):
            raise InvalidInput(f"{where}.onFailure", "must be 'rollback' or 'continue'")
        timeout = item.get("timeoutSeconds", 300)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
            raise InvalidInput(f"{where}.timeoutSeconds", "must be a positive whole number")
        hooks.append(
            Hook(name=name, command=tuple(command), on_failure=on_failure, timeout_seconds=timeout)
        )
    return tuple(hooks)


def parse_strategy(raw: str) -> Strategy:
    """The ``BG_PROMOTION_STEPS`` variable: a JSON list of steps, or ``{"steps": [...]}``."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput("BG_PROMOTION_STEPS", f"is not valid JSON: {exc.msg}") from None
    if isinstance(value, dict):
        return Strategy.parse(value, field_name="BG_PROMOTION_STEPS")
    return Strategy.parse_steps(value, field_name="BG_PROMOTION_STEPS")


def parse_target_groups(raw: str) -> dict[Colour, str]:
    """``BG_ANALYSIS_TARGET_GROUPS``: ``blue=targetgroup/<name>/<id>,green=...``.

    The value of each is the ALB metrics' ``TargetGroup`` dimension (the end of the
    target group's ARN) of the target group the Load Balancer Controller made for
    that colour's Service.
    """
    found: dict[Colour, str] = {}
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        colour, sep, dimension = part.partition("=")
        if not sep or not dimension.strip().startswith("targetgroup/"):
            raise InvalidInput(
                "BG_ANALYSIS_TARGET_GROUPS",
                f"{part!r} is not <colour>=targetgroup/<name>/<id> (the TargetGroup dimension "
                "of the colour's target group)",
            )
        found[Colour.parse(colour.strip(), field_name="BG_ANALYSIS_TARGET_GROUPS")] = (
            dimension.strip()
        )
    return found


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process's settings, read once from ``os.environ``."""
    return Settings.from_env(os.environ)
