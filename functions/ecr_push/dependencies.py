"""What ecr_push reads from its environment, and the adapters it builds, on first use.

Each factory is ``lru_cache``d: a warm Lambda reuses its clients, and a cold one
creates boto3 clients only when a push is to be recorded (an ignored event
creates none). Tests replace a factory (``monkeypatch.setattr``) or call
``reset()`` after changing the environment.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from bluegreen.adapters.wiring import Wiring, forget
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


class EcrPushEnvironment(
    Region, Application, LedgerTable, IdempotencyTable, DeployFlow, AutoDeploy
):
    """The variables ecr_push reads: the application's repository and tables, the flow it
    starts and the tags that start it."""


# The factories every function builds alike (no cluster here); the push's own follow.
_wiring = Wiring(EcrPushEnvironment, globals())
environment, stack_settings = _wiring.environment, _wiring.stack_settings
settings, aws_client = _wiring.settings, _wiring.aws_client
app_registry, acting_for = _wiring.app_registry, _wiring.acting_for
ledger, registry, flow = _wiring.ledger, _wiring.registry, _wiring.flow


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


@_wiring.per_app
def auto_deploy(config: Settings) -> OnRecorded | None:
    """The auto-deploy seam: starts the deploy flow for a push of one of the application's
    auto-deploy tags.

    None would record only. Its ports are built when a push is to deploy.
    """
    return on_recorded(config, auto_deploy_ports if config.state_machine_arn else None)


def push_ports() -> PushPorts:
    """What recording a push reaches: the ledger, the registry, the auto-deploy seam."""
    return PushPorts(ledger=ledger(), registry=registry(), on_recorded=auto_deploy())


def reset() -> None:
    """Forget the environment and every adapter (tests change the environment between cases)."""
    forget(
        environment,
        stack_settings,
        app_registry,
        aws_client,
        ledger,
        registry,
        flow,
        idempotency,
        recorder,
        auto_deploy,
    )
