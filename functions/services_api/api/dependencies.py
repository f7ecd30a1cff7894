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

from functools import lru_cache
from typing import TYPE_CHECKING

from bluegreen.adapters.wiring import Wiring, forget
from bluegreen.config import (
    Application,
    ClusterAccess,
    DeployFlow,
    LedgerTable,
    PromotionPlan,
    Region,
)

if TYPE_CHECKING:
    from bluegreen.config import Settings
    from bluegreen.domain.apps import AppRecord
    from bluegreen.domain.ports import (
        ExecutionHistory,
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


# API Gateway gives a request 29 s: a flip or a switch asked here waits at most this long
# for the data plane, and is put back (TrafficNotConfirmed) if it has not applied it.
API_CONFIRM_SECONDS = 20.0

# The factories every function builds alike; the routes' own adapters follow.
_wiring = Wiring(ServicesApiEnvironment, globals(), confirm_cap_seconds=API_CONFIRM_SECONDS)
environment, stack_settings, settings = (
    _wiring.environment,
    _wiring.stack_settings,
    _wiring.settings,
)
aws_client, app_registry, acting_for = _wiring.aws_client, _wiring.app_registry, _wiring.acting_for
ledger, cluster, flow, registry = _wiring.ledger, _wiring.cluster, _wiring.flow, _wiring.registry


@_wiring.per_app
def promotions(config: Settings) -> Promotions:
    """Progressive promotions' progress, gates and flip-back window (the ledger's table)."""
    from bluegreen.adapters.promotions import DynamoPromotions

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


def ledger_of(record: AppRecord) -> Ledger:
    """The ledger of a registered application (the fleet view reads many at once)."""
    from bluegreen.adapters.ledger import DynamoLedger

    config = stack_settings()
    return DynamoLedger(
        config.ledger_table,
        aws_client("dynamodb"),
        record.name,
        repository=record.spec.repository,
    )


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
    forget(
        environment,
        stack_settings,
        ledger,
        cluster,
        flow,
        registry,
        promotions,
        task_tokens,
        executions,
        app_registry,
        *((aws_client,) if clients else ()),
    )
