"""Twenty selector switches at once end with the ConfigMap and both Services agreeing."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bluegreen.adapters.cluster import KubernetesCluster
from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.config import load_settings
from bluegreen.domain.models import Colour
from bluegreen.logic import services
from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import Stack, roles


def test_twenty_concurrent_switches_leave_configmap_and_services_in_agreement(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN twenty callers, each its own Lambda container (own cluster and ledger adapters:
    # one process never runs two invocations at once, so the race is between containers)
    settings = load_settings()
    rng = random.Random(20)
    wanted = [rng.choice(list(Colour)) for _ in range(20)]

    def switch(index: int) -> services.SwitchResult:
        cluster = KubernetesCluster.from_settings(settings)
        container_ledger = DynamoLedger(settings.ledger_table, stack.dynamodb, settings.application)
        caller = services.Caller(f"arn:aws:iam::123456789012:user/u{index}", "", f"req-{index}")
        return services.switch_canary(cluster, container_ledger, settings, caller, wanted[index])

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
