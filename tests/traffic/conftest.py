"""Fixtures of the traffic router tests: the product's adapter under a chosen router.

Each test runs on both backends (``tests.backends``) and reads what the router
object holds as stored, parsing it here, independently of the product's parser.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bluegreen.adapters.elbv2 import Elbv2LoadBalancers
from bluegreen.adapters.kube.client import api_client_for
from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.domain.traffic import RouterKind
from local.alb_controller import SimulatedLoadBalancerController
from tests.backends import Backend

WEIGHTED = [RouterKind.ALB, RouterKind.GATEWAY]
PRODUCTION_ACTION = "alb.ingress.kubernetes.io/actions.production-weights"
CANARY_ACTION = "alb.ingress.kubernetes.io/actions.canary-forward"
OBJECT = {RouterKind.ALB: "ingresses", RouterKind.GATEWAY: "httproutes"}


def routed(on: Backend, kind: RouterKind, **options: Any) -> KubernetesCluster:
    """The product's cluster adapter on backend ``on`` with the ``kind`` router.

    Under ``alb`` the stand-in load balancer controller (``local.alb_controller``) makes
    the Ingress into moto's ELBv2 whenever the product waits for the data plane, and the
    product reads it back through its own ELBv2 reader. Under ``gateway`` on the real
    control plane no Gateway implementation runs here (``tests/dataplane`` runs Traefik):
    nothing would report on the route, so moves are not waited for.
    """
    settings = dataclasses.replace(on.settings, traffic_router=kind)
    options.setdefault("timeout", (3.0, 10.0))
    options.setdefault("backoff_seconds", 0.002)
    if kind is RouterKind.ALB and "load_balancers" not in options:
        controller, elbv2 = load_balancer_controller(on)
        sleep = options.get("sleep", time.sleep)

        def sync_then_sleep(seconds: float) -> None:
            controller.sync()
            sleep(seconds)

        controller.sync()
        options["sleep"] = sync_then_sleep
        options["load_balancers"] = Elbv2LoadBalancers(elbv2, settings.cluster_name)
    if kind is RouterKind.GATEWAY and on.real:
        options.setdefault("confirm_seconds", 0)
    return KubernetesCluster(settings, api_client_for(settings), **options)


_CONTROLLERS: dict[int, tuple[SimulatedLoadBalancerController, Any]] = {}
"""This test's stand-in controller and ELBv2 client per backend (moto lives one test)."""


@pytest.fixture(autouse=True)
def _elbv2() -> Iterator[None]:
    """A moto ELBv2 and EC2 of the test's own, for the alb router's load balancer."""
    with mock_aws():
        yield
    _CONTROLLERS.clear()


def load_balancer_controller(on: Backend) -> tuple[SimulatedLoadBalancerController, Any]:
    """The backend's stand-in load balancer controller over moto, and its ELBv2 client."""
    if id(on) not in _CONTROLLERS:
        elbv2 = boto3.client("elbv2", region_name="us-west-2")
        _CONTROLLERS[id(on)] = (
            SimulatedLoadBalancerController(
                on.admin_client,
                elbv2,
                boto3.client("ec2", region_name="us-west-2"),
                on.settings.cluster_name,
                on.namespace,
            ),
            elbv2,
        )
    return _CONTROLLERS[id(on)]


@pytest.fixture
def make_routed(backend: Backend) -> Callable[..., KubernetesCluster]:
    """``make_routed(kind, **options)``: a fresh adapter with that router on the backend."""
    return lambda kind, **options: routed(backend, kind, **options)


def stored_object(on: Backend, kind: RouterKind) -> dict[str, Any]:
    return on.stored(OBJECT[kind], "web")


def _by_service(groups: list[dict[str, Any]], name_key: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for group in groups:
        colour = str(group[name_key]).removesuffix("-service")
        if colour in ("blue", "green"):
            found[colour] = found.get(colour, 0) + int(group.get("weight", 1))
    return found


def stored_weights(on: Backend, kind: RouterKind) -> tuple[dict[str, int], dict[str, int]]:
    """(production's, the canary rule's) weight per colour, as the object holds them."""
    obj = stored_object(on, kind)
    if kind is RouterKind.ALB:
        annotations = obj["metadata"]["annotations"]
        production = json.loads(annotations[PRODUCTION_ACTION])["forwardConfig"]["targetGroups"]
        canary = json.loads(annotations[CANARY_ACTION])["forwardConfig"]["targetGroups"]
        return _by_service(production, "serviceName"), _by_service(canary, "serviceName")
    rules = {rule["name"]: rule for rule in obj["spec"]["rules"]}
    return (
        _by_service(rules["production"]["backendRefs"], "name"),
        _by_service(rules["canary"]["backendRefs"], "name"),
    )


def stored_canary_env(on: Backend) -> dict[str, Any]:
    configmap = on.stored("configmaps", "canary-env")
    value: dict[str, Any] = json.loads(configmap["data"]["canaryEnv"])
    return value


def colour_selectors(on: Backend) -> dict[str, str]:
    """What each per-colour Service selects, as stored."""
    return {
        name: on.stored("services", name)["spec"]["selector"]["app"]
        for name in ("blue-service", "green-service")
    }
