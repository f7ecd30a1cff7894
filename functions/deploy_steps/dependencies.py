"""What deploy_steps reads from its environment, and the ports it builds, on first use.

Each factory is ``lru_cache``d: every Task of a deploy reaches the same warm
execution environment, so the Kubernetes client and the EKS token are paid for
once per container. The promotion's ports (CloudWatch, the promotions' store) are
built only when a promotion step runs. Tests replace a factory
(``monkeypatch.setattr``) or call ``reset()`` after changing the environment.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

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
from bluegreen.domain.ports import Cluster, Ledger
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


@lru_cache(maxsize=1)
def environment() -> DeployStepsEnvironment:
    """The function's environment model, read from ``os.environ`` once."""
    return DeployStepsEnvironment.read(os.environ)


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings the logic reads, from the environment model."""
    return environment().settings()


@lru_cache(maxsize=8)
def aws_client(service: str) -> Any:
    """A boto3 client for ``service`` in the application's region."""
    import boto3

    return boto3.client(service, region_name=settings().region)


@lru_cache(maxsize=1)
def ledger() -> Ledger:
    """The DynamoDB ledger."""
    from bluegreen.adapters.ledger import DynamoLedger

    config = settings()
    return DynamoLedger(
        config.ledger_table,
        aws_client("dynamodb"),
        config.application,
        repository=config.repository,
    )


@lru_cache(maxsize=1)
def cluster() -> Cluster:
    """The application's namespace, through the Kubernetes API (EKS or a kubeconfig)."""
    from bluegreen.adapters.kube.cluster import KubernetesCluster

    return KubernetesCluster.from_settings(settings())


@lru_cache(maxsize=1)
def deploy_ports() -> DeployPorts:
    """The deploy steps' ports: DynamoDB ledger, Kubernetes API, EventBridge, health probes."""
    from bluegreen.adapters.eventbridge import Notifier
    from bluegreen.adapters.probes import CloudWatchAlarms, UrllibProbe
    from bluegreen.logic.health import HealthProbes

    config = settings()
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


@lru_cache(maxsize=1)
def promotion_ports() -> PromotionPorts:
    """The deploy ports plus CloudWatch's metrics and the promotions' store."""
    from bluegreen.adapters.cloudwatch import CloudWatchTrafficMetrics
    from bluegreen.adapters.promotions import DynamoPromotions

    config = settings()
    return PromotionPorts(
        deploy=deploy_ports(),
        metrics=CloudWatchTrafficMetrics(
            aws_client("cloudwatch"), config.analysis_target_groups, config.analysis_load_balancer
        ),
        promotions=DynamoPromotions(
            config.ledger_table, aws_client("dynamodb"), config.application
        ),
    )


def reset() -> None:
    """Forget the environment and every port (tests change the environment between cases)."""
    for factory in (
        environment,
        settings,
        aws_client,
        ledger,
        cluster,
        deploy_ports,
        promotion_ports,
    ):
        # A test may have swapped a factory for a plain function: nothing to forget there.
        clear = getattr(factory, "cache_clear", None)
        if clear is not None:
            clear()
