"""Fixtures of the traffic router tests: the product's adapter under a chosen router.

Each test runs on both backends (``tests.backends``) and reads what the router
object holds as stored, parsing it here, independently of the product's parser.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from bluegreen.adapters.kube.client import api_client_for
from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.domain.traffic import RouterKind
from tests.backends import Backend

WEIGHTED = [RouterKind.ALB, RouterKind.GATEWAY]
PRODUCTION_ACTION = "alb.ingress.kubernetes.io/actions.production-weights"
CANARY_ACTION = "alb.ingress.kubernetes.io/actions.canary-forward"
OBJECT = {RouterKind.ALB: "ingresses", RouterKind.GATEWAY: "httproutes"}


def routed(on: Backend, kind: RouterKind, **options: Any) -> KubernetesCluster:
    """The product's cluster adapter on backend ``on`` with the ``kind`` router."""
    settings = dataclasses.replace(on.settings, traffic_router=kind)
    options.setdefault("timeout", (3.0, 10.0))
    options.setdefault("backoff_seconds", 0.002)
    return KubernetesCluster(settings, api_client_for(settings), **options)


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
