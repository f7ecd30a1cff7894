"""The adapters the routes hand to the domain logic, built on first use.

Each factory is ``lru_cache``d: a warm Lambda reuses its clients, and a cold one
imports boto3 or the Kubernetes client only when a request needs them (the
handler module itself imports neither). Tests call ``reset()`` between cases.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from bluegreen.config import Settings, load_settings
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


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The function's settings (read from the environment once, by ``load_settings``)."""
    return load_settings()


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
    """The application's ECR repository."""
    from .registry import EcrRepository

    account = settings().registry.partition(".")[0]
    return EcrRepository(
        settings().repository,
        aws_client("ecr"),
        registry_id=account if account.isdigit() and len(account) == 12 else "",
    )


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
    return GatePorts(ledger=ledger(), promotions=promotions(), tokens=task_tokens())


def history_ports() -> HistoryPorts:
    """The ports of reading a deployment's record and execution."""
    return HistoryPorts(settings=settings(), ledger=ledger(), flow=flow(), executions=executions())


def reset(*, clients: bool = True) -> None:
    """Forget the adapters and the settings (tests change the environment between cases).

    ``clients=False`` keeps the boto3 clients, which do not depend on the settings
    beyond the region and are slow to create.
    """
    load_settings.cache_clear()
    factories = (settings, ledger, cluster, flow, registry, promotions, task_tokens, executions) + (
        (aws_client,) if clients else ()
    )
    for factory in factories:
        # A test may have swapped a factory for a plain function: nothing to forget there.
        clear = getattr(factory, "cache_clear", None)
        if clear is not None:
            clear()
