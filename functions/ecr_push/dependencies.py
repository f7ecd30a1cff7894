"""What ecr_push reads from its environment, and the adapters it builds, on first use.

Each factory is ``lru_cache``d: a warm Lambda reuses its clients, and a cold one
creates boto3 clients only when a push is to be recorded (an ignored event
creates none). Tests replace a factory (``monkeypatch.setattr``) or call
``reset()`` after changing the environment.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bluegreen.config import (
    Application,
    AutoDeploy,
    DeployFlow,
    IdempotencyTable,
    LedgerTable,
    Region,
    Settings,
)
from bluegreen.logic.autodeploy import AutoDeployPorts, on_recorded
from bluegreen.logic.pushes import OnRecorded, PushPorts, RecordImagePush

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from bluegreen.domain.ports import FlowStarter, ImageRegistry, Ledger


class EcrPushEnvironment(
    Region, Application, LedgerTable, IdempotencyTable, DeployFlow, AutoDeploy
):
    """The variables ecr_push reads: the application's repository and tables, the flow it
    starts and the tags that start it."""


@lru_cache(maxsize=1)
def environment() -> EcrPushEnvironment:
    """The function's environment model, read from ``os.environ`` once."""
    return EcrPushEnvironment.read(os.environ)


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
def registry() -> ImageRegistry:
    """The application's ECR repository, asked where a pushed tag points."""
    from bluegreen.adapters.registry import EcrRegistry

    config = settings()
    return EcrRegistry(config.repository, aws_client("ecr"), config.registry)


@lru_cache(maxsize=1)
def flow() -> FlowStarter:
    """The deploy state machine."""
    from bluegreen.adapters.stepfunctions import StepFunctionsFlow

    return StepFunctionsFlow(settings().state_machine_arn, aws_client("stepfunctions"))


@lru_cache(maxsize=1)
def idempotency() -> IdempotencyConfig:
    """How duplicate deliveries are recognised (the handler registers its context on it)."""
    from bluegreen.logic.pushes import idempotency_config

    return idempotency_config()


@lru_cache(maxsize=1)
def recorder() -> RecordImagePush:
    """``record_image_push``, idempotent over the idempotency table."""
    from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import (
        DynamoDBPersistenceLayer,
    )

    from bluegreen.logic.pushes import idempotent_recorder

    store = DynamoDBPersistenceLayer(
        table_name=settings().idempotency_table, boto3_client=aws_client("dynamodb")
    )
    return idempotent_recorder(store, idempotency())


def auto_deploy_ports() -> AutoDeployPorts:
    """What starting a push's deployment reaches."""
    return AutoDeployPorts(settings(), flow(), ledger())


@lru_cache(maxsize=1)
def auto_deploy() -> OnRecorded | None:
    """The auto-deploy seam: starts the deploy flow for a push of an auto-deploy tag.

    None would record only. Its ports are built when a push is to deploy.
    """
    config = settings()
    return on_recorded(config, auto_deploy_ports if config.state_machine_arn else None)


def push_ports() -> PushPorts:
    """What recording a push reaches: the ledger, the registry, the auto-deploy seam."""
    return PushPorts(ledger=ledger(), registry=registry(), on_recorded=auto_deploy())


def reset() -> None:
    """Forget the environment and every adapter (tests change the environment between cases)."""
    for factory in (
        environment,
        settings,
        aws_client,
        ledger,
        registry,
        flow,
        idempotency,
        recorder,
        auto_deploy,
    ):
        # A test may have swapped a factory for a plain function: nothing to forget there.
        clear = getattr(factory, "cache_clear", None)
        if clear is not None:
            clear()
