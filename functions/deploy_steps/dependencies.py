"""What deploy_steps reads from its environment, and the ports it builds, on first use.

Each factory is ``lru_cache``d: every Task of a deploy reaches the same warm
execution environment, so the Kubernetes client and the EKS token are paid for
once per container. The promotion's ports (its metric provider, the promotions' store) are
built only when a promotion step runs. Tests replace a factory
(``monkeypatch.setattr``) or call ``reset()`` after changing the environment.
"""

from __future__ import annotations

from bluegreen.adapters.wiring import Wiring, forget
from bluegreen.config import (
    Application,
    AutoDeploy,
    CanaryAnalysis,
    ClusterAccess,
    DeployEvents,
    DeployPolicy,
    LedgerTable,
    PromotionPlan,
    Region,
    Settings,
)
from bluegreen.logic.deploy.ports import DeployPorts
from bluegreen.logic.promotion.ports import PromotionPorts


class DeployStepsEnvironment(
    Region,
    Application,
    LedgerTable,
    ClusterAccess,
    DeployEvents,
    AutoDeploy,
    DeployPolicy,
    PromotionPlan,
    CanaryAnalysis,
):
    """The variables deploy_steps reads: the cluster and its router, the ledger, the deploy
    policy, the promotion's plan and analysis, where events go. Not the state machine: its
    definition names this function."""


# The factories every function builds alike; the deploy's own ports follow.
_wiring = Wiring(DeployStepsEnvironment, globals())
environment, stack_settings, settings = (
    _wiring.environment,
    _wiring.stack_settings,
    _wiring.settings,
)
aws_client, app_registry, acting_for = _wiring.aws_client, _wiring.app_registry, _wiring.acting_for
ledger, cluster = _wiring.ledger, _wiring.cluster


@_wiring.per_app
def deploy_ports(config: Settings) -> DeployPorts:
    """The deploy steps' ports: DynamoDB ledger, Kubernetes API, EventBridge, health probes."""
    from bluegreen.adapters.eventbridge import Notifier
    from bluegreen.adapters.probes import CloudWatchAlarms, UrllibProbe
    from bluegreen.logic.health import HealthProbes

    return DeployPorts(
        settings=config,
        ledger=ledger(),
        cluster=cluster(),
        notifier=Notifier(
            aws_client("events"),
            source=config.event_source,
            event_bus_name=config.event_bus_name,
        ),
        probes=HealthProbes(http=UrllibProbe(), alarms=CloudWatchAlarms(aws_client("cloudwatch"))),
    )


@_wiring.per_app
def promotion_ports(config: Settings) -> PromotionPorts:
    """The deploy ports plus the stack's metric provider and the promotions' store."""
    from bluegreen.adapters.metrics import build_metrics
    from bluegreen.adapters.promotions import DynamoPromotions

    return PromotionPorts(
        deploy=deploy_ports(),
        metrics=build_metrics(config, aws_client),
        promotions=DynamoPromotions(
            config.ledger_table, aws_client("dynamodb"), config.application
        ),
    )


def reset() -> None:
    """Forget the environment and every port (tests change the environment between cases)."""
    forget(
        environment,
        stack_settings,
        aws_client,
        ledger,
        cluster,
        deploy_ports,
        promotion_ports,
        app_registry,
    )
