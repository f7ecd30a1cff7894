"""How a weighted flip orders its two writes, what it costs, and what it does when one fails.

These need what only the emulator gives (its request log, injected faults), so they
run once, on it.
"""

from __future__ import annotations

from typing import Any

import pytest

from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.domain.errors import LockHeld, SwitchIncomplete, SwitchRestored, TrafficNotWeighted
from bluegreen.domain.models import Colour
from bluegreen.domain.traffic import RouterKind, Weights
from local.cluster import ClusterEmulator
from tests.backends import emulator_backend
from tests.traffic.conftest import (
    OBJECT,
    WEIGHTED,
    routed,
    stored_canary_env,
    stored_weights,
)

CONFIGMAP = "/api/v1/namespaces/wp-platform/configmaps/canary-env"


def _routed(emulator: ClusterEmulator, kind: RouterKind) -> KubernetesCluster:
    # A budget of a few milliseconds: an injected failure is not waited out for long.
    return routed(
        emulator_backend(emulator), kind, backoff_seconds=0.001, switch_budget_seconds=0.05
    )


def _writes(emulator: ClusterEmulator) -> list[tuple[str, str]]:
    return [
        (str(r.method), str(r.path).split("?")[0])
        for r in emulator.requests
        if r.method not in ("GET", "HEAD")
    ]


def _product_requests(emulator: ClusterEmulator) -> list[Any]:
    """The requests of the product, not of the stand-in load balancer controller (which
    lists the namespace's Ingresses and EndpointSlices; the product reads its one Ingress
    by name)."""
    return [
        r
        for r in emulator.requests
        if not str(r.path).endswith("/ingresses") and "/endpointslices" not in str(r.path)
    ]


def _object_path(kind: RouterKind) -> str:
    group = "networking.k8s.io" if kind is RouterKind.ALB else "gateway.networking.k8s.io"
    return f"/apis/{group}/v1/namespaces/wp-platform/{OBJECT[kind]}/web"


@pytest.mark.parametrize("kind", WEIGHTED)
def test_a_step_that_gives_the_canary_a_share_writes_canary_env_first_then_the_object(
    cluster_emulator: ClusterEmulator, kind: RouterKind
) -> None:
    # GIVEN the seed: production all on green, blue the canary
    cluster = _routed(cluster_emulator, kind)
    cluster.traffic()  # the client is built and discovery done before counting
    cluster_emulator.reset_requests()

    # WHEN 10 % goes to blue
    cluster.shift_traffic(Weights(blue=10, green=90))

    # THEN two writes: canaryEnv (which then gives blue a share), then the object
    assert _writes(cluster_emulator) == [("PUT", CONFIGMAP), ("PATCH", _object_path(kind))]
    # AND two reads before them (the ConfigMap and the object) and, after them, only reads
    # of the object for the data plane's report (until the load balancer holds the weights)
    methods = [r.method for r in _product_requests(cluster_emulator)]
    assert methods[:4] == ["GET", "GET", "PUT", "PATCH"]
    assert methods[4:]
    assert set(methods[4:]) == {"GET"}


@pytest.mark.parametrize("kind", WEIGHTED)
def test_backing_out_writes_the_object_first_so_one_write_takes_production_back(
    cluster_emulator: ClusterEmulator, kind: RouterKind
) -> None:
    # GIVEN 10 % of production on the canary colour blue
    cluster = _routed(cluster_emulator, kind)
    cluster.shift_traffic(Weights(blue=10, green=90))
    cluster_emulator.reset_requests()

    # WHEN production goes back to 100 % on green
    cluster.shift_traffic(Weights.all_on(Colour.GREEN))

    # THEN the object is written first: after one write, production is all on green
    assert _writes(cluster_emulator) == [("PATCH", _object_path(kind)), ("PUT", CONFIGMAP)]


@pytest.mark.parametrize("kind", WEIGHTED)
def test_a_back_out_whose_canary_env_write_fails_keeps_production_on_the_old_colour(
    cluster_emulator: ClusterEmulator, kind: RouterKind
) -> None:
    # GIVEN 10 % on blue, and a ConfigMap that refuses every write
    backend = emulator_backend(cluster_emulator)
    cluster = _routed(cluster_emulator, kind)
    cluster.shift_traffic(Weights(blue=10, green=90))
    cluster_emulator.faults.fail_requests("PUT", "configmaps/canary-env$", 503, count=1000)

    # WHEN production is backed out to green
    with pytest.raises(SwitchIncomplete) as incomplete:
        cluster.shift_traffic(Weights.all_on(Colour.GREEN))

    # THEN the object was not put back: production stays all on green
    assert stored_weights(backend, kind)[0] == {"blue": 0, "green": 100}
    assert "production traffic is already where it must be" in str(incomplete.value)
    assert "repeating the move completes it" in str(incomplete.value)
    # AND once the ConfigMap answers again, repeating completes it with one write
    cluster_emulator.faults.clear()
    cluster_emulator.reset_requests()
    assert cluster.shift_traffic(Weights.all_on(Colour.GREEN)) is True
    assert _writes(cluster_emulator) == [("PUT", CONFIGMAP)]
    assert stored_canary_env(backend)["weights"] == {"blue": 0, "green": 100}


@pytest.mark.parametrize("kind", WEIGHTED)
def test_a_step_whose_object_write_fails_puts_canary_env_back(
    cluster_emulator: ClusterEmulator, kind: RouterKind
) -> None:
    # GIVEN an object that refuses every write
    backend = emulator_backend(cluster_emulator)
    cluster = _routed(cluster_emulator, kind)
    before = stored_canary_env(backend)
    cluster_emulator.faults.fail_requests("PATCH", f"{OBJECT[kind]}/web$", 500, count=1000)

    # WHEN 10 % is asked for blue
    with pytest.raises(SwitchRestored) as restored:
        cluster.shift_traffic(Weights(blue=10, green=90))

    # THEN canaryEnv is as it was and production all on green: nothing half-done
    assert stored_canary_env(backend) == before
    assert stored_weights(backend, kind)[0] == {"blue": 0, "green": 100}
    assert "the previous traffic was put back" in str(restored.value)


@pytest.mark.parametrize("kind", WEIGHTED)
def test_a_switch_stopped_by_its_confirmation_is_put_back_and_says_why(
    cluster_emulator: ClusterEmulator, kind: RouterKind
) -> None:
    # GIVEN a deployment that takes the lock while the switch is under way
    backend = emulator_backend(cluster_emulator)
    cluster = _routed(cluster_emulator, kind)
    before_env, before_weights = stored_canary_env(backend), stored_weights(backend, kind)

    def locked() -> None:
        raise LockHeld("deployment d-1 of wp-platform holds the lock")

    # WHEN the switch checks the lock between its two writes
    with pytest.raises(LockHeld) as refused:
        cluster.switch_roles(Colour.GREEN, confirm=locked)

    # THEN both objects are as they were, and the refusal says so
    assert stored_canary_env(backend) == before_env
    assert stored_weights(backend, kind) == before_weights
    assert "d-1" in str(refused.value)
    assert "put back" in str(refused.value)


def test_the_selector_router_refuses_a_share_of_production(
    cluster_emulator: ClusterEmulator,
) -> None:
    # GIVEN the default router
    cluster = _routed(cluster_emulator, RouterKind.SELECTOR)
    cluster_emulator.reset_requests()

    # WHEN a share of production is asked for
    with pytest.raises(TrafficNotWeighted, match="needs TrafficRouter alb or gateway"):
        cluster.shift_traffic(Weights(blue=10, green=90))

    # THEN nothing was sent at all
    assert _writes(cluster_emulator) == []
