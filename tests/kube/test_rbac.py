"""deploy/kubernetes/rbac.yaml is exactly what the product needs, proven by the real authorizer.

The product runs its operations against the real API server as a member of the
group the shipped RoleBinding names (as EKS access entries make the Lambda
roles). The API server's audit log tells which verbs on which resources it
really used; the Role must grant exactly those, and taking away any one of its
rules must make a named operation fail with the 403 it causes.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from bluegreen.adapters.kube.client import api_client_for
from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.config import Settings
from bluegreen.domain.errors import ClusterUnavailable
from bluegreen.domain.models import Colour, Hook
from bluegreen.domain.traffic import RouterKind, Weights
from local.kube.controlplane import RBAC_MANIFEST, ControlPlane

pytestmark = pytest.mark.kube

NEW_IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud@sha256:" + "5e" * 32
FLUSH = Hook(name="cache-flush", command=("wp", "cache", "flush", "--allow-root"))

NAMED = {"configmaps": "canary-env", "ingresses": "web", "httproutes": "web"}
"""The one object of each kind whose rule names it (``resourceNames``)."""

Access = tuple[str, str, str]
"""(apiGroup, resource[/subresource], verb), as the authorizer sees a request."""


def _role() -> dict[str, Any]:
    return next(
        d for d in yaml.safe_load_all(RBAC_MANIFEST.read_text()) if d and d["kind"] == "Role"
    )


def _granted(role: dict[str, Any]) -> set[Access]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@dataclass
class Product:
    """The product's cluster adapter in one namespace, with its own identity."""

    cluster: KubernetesCluster
    namespace: str
    routed: dict[RouterKind, KubernetesCluster]


def _product(plane: ControlPlane, namespace: str) -> Product:
    def adapter(router: RouterKind) -> KubernetesCluster:
        settings = Settings(
            kubeconfig=str(plane.product_kubeconfig), namespace=namespace, traffic_router=router
        )
        # The weighted routers' data planes (a load balancer, a Gateway) do not run here:
        # their moves are not waited for. The selector's is the control plane's own
        # EndpointSlices, which the Role must let the product read.
        confirm = None if router is RouterKind.SELECTOR else 0.0
        return KubernetesCluster(
            settings,
            api_client_for(settings),
            timeout=(3.0, 10.0),
            backoff_seconds=0.005,
            confirm_seconds=confirm,
        )

    routed = {router: adapter(router) for router in (RouterKind.ALB, RouterKind.GATEWAY)}
    return Product(adapter(RouterKind.SELECTOR), namespace, routed)


def _flip_weights(product: Product, router: RouterKind) -> None:
    """A promotion's step, then a switch there and back, under a weighted router."""
    cluster = product.routed[router]
    cluster.shift_traffic(Weights(blue=10, green=90))
    cluster.switch_roles(Colour.GREEN)
    cluster.switch_roles(Colour.BLUE)


def _wait_hook(product: Product, job: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run = product.cluster.hook_run(job)
        if run.finished:
            assert run.succeeded, run.reason
            assert "Success: The cache was flushed." in run.log_tail
            return
        time.sleep(0.2)
    raise AssertionError(f"hook Job {job} did not finish")


# Every operation of the product that touches the cluster, by the name a person
# would give it. Together they exercise every request the adapter makes.
OPERATIONS: dict[str, Callable[[Product], object]] = {
    "GET /services (read the release)": lambda p: p.cluster.snapshot(),
    "read which colour is the canary": lambda p: p.cluster.canary_env(),
    "read the Services' selectors": lambda p: p.cluster.service_selectors(),
    "switch the canary to green and back": lambda p: (
        p.cluster.switch_roles(Colour.GREEN),
        p.cluster.switch_roles(Colour.BLUE),
    ),
    "deploy a digest to the canary": lambda p: p.cluster.set_deployment_image(
        Colour.BLUE, NEW_IMAGE
    ),
    "watch the rollout": lambda p: p.cluster.rollout(Colour.BLUE),
    "judge the new revision's pods": lambda p: (
        pods := p.cluster.new_pods(Colour.BLUE, NEW_IMAGE),
        p.cluster.pod_warnings([pod.name for pod in pods] or ["none"]),
        p.cluster.previous_log(pods[0].name if pods else "none", "web", 10, 2048),
    ),
    "record the canary's image in canaryEnv": lambda p: p.cluster.set_canary_image(NEW_IMAGE),
    "run the cache-flush hook and keep its log": lambda p: _wait_hook(
        p, p.cluster.start_hook(Colour.BLUE, FLUSH, f"run-{uuid.uuid4().hex[:8]}")
    ),
    "move production's weights on the Ingress (alb)": lambda p: _flip_weights(p, RouterKind.ALB),
    "move production's weights on the HTTPRoute (gateway)": lambda p: _flip_weights(
        p, RouterKind.GATEWAY
    ),
}


def _run_all(product: Product) -> dict[str, Exception]:
    """Each operation in turn; the ones that failed, with their error."""
    failures: dict[str, Exception] = {}
    for name, operation in OPERATIONS.items():
        try:
            operation(product)
        except Exception as exc:
            failures[name] = exc
    return failures


def _audited(plane: ControlPlane, namespace: str) -> set[Access]:
    """What the product asked the API server for in ``namespace``, from the audit log."""
    seen: set[Access] = set()
    for line in plane.audit_log.read_text().splitlines():
        entry = json.loads(line)
        ref = entry.get("objectRef") or {}
        if entry.get("stage") != "ResponseComplete" or ref.get("namespace") != namespace:
            continue
        resource = ref.get("resource", "")
        if ref.get("subresource"):
            resource = f"{resource}/{ref['subresource']}"
        seen.add((ref.get("apiGroup", ""), resource, entry["verb"]))
    return seen


def _names_used(plane: ControlPlane, namespace: str, resource: str) -> set[str]:
    names = set()
    for line in plane.audit_log.read_text().splitlines():
        ref = json.loads(line).get("objectRef") or {}
        if ref.get("namespace") == namespace and ref.get("resource") == resource:
            names.add(ref.get("name", ""))
    return names


@pytest.fixture
def role_in(control_plane: ControlPlane) -> Iterator[Callable[[str, dict[str, Any]], None]]:
    """``role_in(namespace, role)`` replaces the namespace's Role and waits until it applies."""
    from kubernetes.client import AuthorizationV1Api, RbacAuthorizationV1Api

    with control_plane.admin_client() as client:

        def replace(namespace: str, role: dict[str, Any]) -> None:
            body = copy.deepcopy(role)
            body["metadata"]["namespace"] = namespace
            rbac = RbacAuthorizationV1Api(client)
            current = rbac.read_namespaced_role(body["metadata"]["name"], namespace)
            body["metadata"]["resourceVersion"] = current.metadata.resource_version
            rbac.replace_namespaced_role(body["metadata"]["name"], namespace, body)
            # The authorizer reads Roles from an informer: wait until it sees this one.
            granted = _granted(body)
            probe = next(iter(_granted(_role()) - granted), None)
            if probe is None:
                return
            group, resource, verb = probe
            plural, _, sub = resource.partition("/")
            review = {
                "spec": {
                    "user": control_plane.product_identity.user,
                    "groups": list(control_plane.product_identity.groups),
                    "resourceAttributes": {
                        "namespace": namespace,
                        "group": group,
                        "resource": plural,
                        "subresource": sub,
                        "verb": verb,
                        "name": NAMED.get(plural, ""),
                    },
                }
            }
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                answer = AuthorizationV1Api(client).create_subject_access_review(review)
                if not answer.status.allowed:
                    return
                time.sleep(0.05)
            raise AssertionError(f"the trimmed Role never took effect in {namespace}")

        yield replace


def test_every_operation_succeeds_with_the_shipped_role_and_uses_all_of_it(
    control_plane: ControlPlane, kube_namespace: str
) -> None:
    # GIVEN the product, as the shipped RoleBinding's group, in a namespace with the shipped Role
    product = _product(control_plane, kube_namespace)

    # WHEN it runs every operation it has
    failures = _run_all(product)

    # THEN each succeeds
    assert failures == {}
    # AND what it asked for, as the API server recorded it, is exactly what the Role grants:
    # nothing missing, nothing granted that no operation uses
    used, granted = _audited(control_plane, kube_namespace), _granted(_role())
    assert sorted(used - granted) == [], "used but not granted"
    assert sorted(granted - used) == [], "granted but never used"
    # AND the one ConfigMap, Ingress and HTTPRoute it reads and writes are the ones the
    # Role names
    for kind in NAMED:
        (rule,) = [r for r in _role()["rules"] if kind in r["resources"]]
        assert _names_used(control_plane, kube_namespace, kind) == set(rule["resourceNames"])


@pytest.mark.parametrize("index", range(len(_role()["rules"])))
def test_taking_away_any_rule_makes_a_named_operation_fail_with_403(
    control_plane: ControlPlane,
    kube_namespace: str,
    role_in: Callable[[str, dict[str, Any]], None],
    index: int,
) -> None:
    # GIVEN the shipped Role without one of its rules
    trimmed = _role()
    removed = trimmed["rules"].pop(index)
    role_in(kube_namespace, trimmed)
    product = _product(control_plane, kube_namespace)

    # WHEN the product runs every operation it has
    failures = _run_all(product)

    # THEN at least one operation fails, each with the authorizer's refusal in words:
    # the error names the forbidden request and what the function's role needs
    assert failures, f"nothing needs {removed}"
    for name, error in failures.items():
        assert isinstance(error, ClusterUnavailable), (name, error)
        text = str(error)
        assert "403 Forbidden" in text, (name, text)
        assert "needs the namespaced RBAC Role" in text, (name, text)
        assert any(resource.split("/")[0] in text for resource in removed["resources"]), (
            name,
            text,
        )
