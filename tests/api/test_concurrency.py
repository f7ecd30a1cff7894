"""Concurrent requests: twenty selector switches at once end with the ConfigMap and both
Services agreeing; requests sent at once behind a running deployment each record their own."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.adapters.promotions import DynamoPromotions
from bluegreen.adapters.stepfunctions import StepFunctionsFlow
from bluegreen.config import Settings
from bluegreen.domain.models import Colour, Role
from bluegreen.logic import services
from bluegreen.logic.requests import Caller, DeploymentStarted, ReleasePorts
from functions.services_api.api import dependencies
from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import KNOWN, OLDER, Stack, pinned, roles


def container_ports(settings: Settings, stack: Stack) -> ReleasePorts:
    """The ports one Lambda container builds: its own cluster, ledger and flow adapters."""
    return ReleasePorts(
        settings=settings,
        ledger=DynamoLedger(settings.ledger_table, stack.dynamodb, settings.application),
        cluster=KubernetesCluster.from_settings(settings),
        flow=StepFunctionsFlow(settings.state_machine_arn, stack.sfn),
        registry=dependencies.registry(),
        promotions=DynamoPromotions(settings.ledger_table, stack.dynamodb, settings.application),
    )


def test_twenty_concurrent_switches_leave_configmap_and_services_in_agreement(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN twenty callers, each its own Lambda container (own cluster and ledger adapters:
    # one process never runs two invocations at once, so the race is between containers)
    settings = dependencies.settings()
    rng = random.Random(20)
    wanted = [rng.choice(list(Colour)) for _ in range(20)]

    def switch(index: int) -> services.SwitchResult:
        caller = Caller(f"arn:aws:iam::123456789012:user/u{index}", "", f"req-{index}")
        return services.switch_canary(container_ports(settings, stack), caller, wanted[index])

    # WHEN all of them switch at the same time
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(switch, range(20)))

    # THEN every switch succeeded, and the ConfigMap and both Services agree on one colour
    assert [r.canary for r in results] == wanted
    selector, canary_service, production_service = roles(emu)
    assert canary_service == selector
    assert production_service == Colour(selector).other.value
    # AND every switch that changed something left a record naming its caller
    recorded = {d.actor for d in ledger.deployments(limit=100)[0]}
    assert recorded == {
        f"arn:aws:iam::123456789012:user/u{i}" for i, r in enumerate(results) if r.changed
    }


def test_requests_sent_at_once_behind_a_running_deployment_each_record_what_they_saw(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN a deployment holds the lock, and ten callers, each its own Lambda container:
    # five roll the canary back, five deploy KNOWN to production
    holder = f"{stack.application}-deploy-running"
    assert ledger.acquire_lock(holder, 600)
    settings = dependencies.settings()

    def ask(index: int) -> DeploymentStarted:
        ports = container_ports(settings, stack)
        caller = Caller(f"arn:aws:iam::123456789012:user/u{index}", "", f"req-{index}")
        if index % 2:
            return services.request_rollback(ports, caller, reason=f"reason {index}")
        return services.request_deploy(
            ports, caller, str(KNOWN), Role.PRODUCTION, reason=f"reason {index}"
        )

    # WHEN they all ask at the same time
    with ThreadPoolExecutor(max_workers=10) as pool:
        started = list(pool.map(ask, range(10)))

    # THEN each is its own queued deployment behind the holder, recorded before its start
    # with its own caller and reason, and, for the rollbacks, what the canary ran
    assert {s.waits_behind for s in started} == {holder}
    assert all(s.queued for s in started)
    records = {d.id: d for d in ledger.deployments(limit=100)[0]}
    assert len(records) == 10
    for index, one in enumerate(started):
        record = records[one.deployment_id]
        assert (record.reason, record.waits_behind) == (f"reason {index}", holder)
        assert record.actor == f"arn:aws:iam::123456789012:user/u{index}"
        if index % 2:
            assert record.seen_image == pinned(OLDER)
    assert len(stack.executions()) == 10
