"""What the services API reads from its environment, and the adapters the routes hand to
the domain logic, built on first use.

Each factory is ``lru_cache``d: a warm Lambda reuses its clients, and a cold one
imports boto3 or the Kubernetes client only when a request needs them (the
handler module itself imports neither). A route builds the bundle of ports its
use case takes (``release_ports``, ``gate_ports``, ``history_ports``) from them.
Tests replace a factory (``monkeypatch.setattr``) or call ``reset()`` after
changing the environment.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bluegreen.config import (
    Application,
    ClusterAccess,
    DeployFlow,
    LedgerTable,
    PromotionPlan,
    Region,
    Settings,
)

if TYPE_CHECKING:
    from bluegreen.domain.ports import (
        Cluster,
        ExecutionHistory,
        FlowStarter,
        ImageRegistry,
        Ledger,
        Promotions,
        TaskTokens,
    )
    from bluegreen.logic.history import HistoryPorts
    from bluegreen.logic.requests import ReleasePorts
    from bluegreen.logic.routing import GatePorts


class ServicesApiEnvironment(
    Region, Application, LedgerTable, DeployFlow, ClusterAccess, PromotionPlan
):
    """The variables the services API reads: the application's repository and ledger, the
    flow it starts, the cluster and its router, and the plan of a progressive promotion."""


@lru_cache(maxsize=1)
def environment() -> ServicesApiEnvironment:
    """The function's environment model, read from ``os.environ`` once."""
    return ServicesApiEnvironment.read(os.environ)


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
def flow() -> FlowStarter:
    """The deploy state machine."""
    from bluegreen.adapters.stepfunctions import StepFunctionsFlow

    return StepFunctionsFlow(settings().state_machine_arn, aws_client("stepfunctions"))


@lru_cache(maxsize=1)
def registry() -> ImageRegistry:
    """The application's ECR repository, asked whether a digest exists."""
    from bluegreen.adapters.registry import EcrRegistry

    config = settings()
    return EcrRegistry(config.repository, aws_client("ecr"), config.registry)


@lru_cache(maxsize=1)
def promotions() -> Promotions:
    """Progressive promotions' progress, gates and flip-back window (the ledger's table)."""
    from bluegreen.adapters.promotions import DynamoPromotions

    config = settings()
    return DynamoPromotions(config.ledger_table, aws_client("dynamodb"), config.application)


@lru_cache(maxsize=1)
def task_tokens() -> TaskTokens:
    """Step Functions' callbacks, which resume or abort a promotion waiting at a gate."""
    from bluegreen.adapters.stepfunctions import StepFunctionsTaskTokens

    return StepFunctionsTaskTokens(aws_client("stepfunctions"))


@lru_cache(maxsize=1)
def executions() -> ExecutionHistory:
    """The deploy flow's execution histories."""
    from bluegreen.adapters.execution_history import StepFunctionsHistory

    return StepFunctionsHistory(aws_client("stepfunctions"))


def release_ports() -> ReleasePorts:
    """The ports of the use cases that read or change the release."""
    from bluegreen.logic.requests import ReleasePorts

    return ReleasePorts(
        settings=settings(),
        ledger=ledger(),
        cluster=cluster(),
        flow=flow(),
        registry=registry(),
        promotions=promotions(),
    )


def gate_ports() -> GatePorts:
    """The ports of a person's decision about a running promotion."""
    from bluegreen.logic.routing import GatePorts

    return GatePorts(ledger=ledger(), promotions=promotions(), tokens=task_tokens())


def history_ports() -> HistoryPorts:
    """The ports of reading a deployment's record and execution."""
    from bluegreen.logic.history import HistoryPorts

    return HistoryPorts(settings=settings(), ledger=ledger(), flow=flow(), executions=executions())


def reset(*, clients: bool = True) -> None:
    """Forget the environment and the adapters (tests change the environment between cases).

    ``clients=False`` keeps the boto3 clients, which do not depend on the settings
    beyond the region and are slow to create.
    """
    factories = (
        environment,
        settings,
        ledger,
        cluster,
        flow,
        registry,
        promotions,
        task_tokens,
        executions,
    ) + ((aws_client,) if clients else ())
    for factory in factories:
        # A test may have swapped a factory for a plain function: nothing to forget there.
        clear = getattr(factory, "cache_clear", None)
        if clear is not None:
            clear()
