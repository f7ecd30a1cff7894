"""The fleet on the real API server: each application's namespace grants the product only
what the shipped RoleBinding there grants.

The services API runs as the product's identity (the group the shipped RoleBinding
names, as EKS access entries map the Lambda role), on a real kube-apiserver with
RBAC on. Two applications live in two seeded namespaces: each is read and switched in
its own, and neither request touches the other's. A third application names a
namespace where the RBAC manifest was never applied: the API server refuses the
product there, and the answer names the refusal.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bluegreen.domain.apps import default_app_spec
from functions.services_api.api import dependencies
from local.kube.controlplane import ControlPlane
from local.kube.testing import KUBE_PROGRESS_DEADLINE
from tests.api.conftest import Stack, call, event
from tests.api.test_fleet import scoped

pytestmark = pytest.mark.kube


@pytest.fixture
def fleet(
    aws: Stack, control_plane: ControlPlane, kube_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The stack's own application in ``kube_namespace``, ``second`` in a namespace of its
    own (seeded, with the shipped RBAC), ``elsewhere`` in ``default`` (no RoleBinding)."""
    application = f"app-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("BG_APP_NAME", application)
    monkeypatch.setenv("BG_NAMESPACE", kube_namespace)
    monkeypatch.setenv("BG_STATE_MACHINE_ARN", aws.state_machine_arn)
    monkeypatch.setenv("KUBECONFIG", str(control_plane.product_kubeconfig))
    monkeypatch.delenv("BG_KUBE_API_URL", raising=False)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "services-api")
    dependencies.reset(clients=False)
    second = f"{kube_namespace}-b"
    control_plane.seed_namespace(second, progress_deadline_seconds=KUBE_PROGRESS_DEADLINE)
    names = {"own": kube_namespace, "second": second, "elsewhere": "default"}
    apps = {"own": application}
    for key in ("second", "elsewhere"):
        name = f"{key}-{uuid.uuid4().hex[:6]}"
        spec = default_app_spec(dependencies.stack_settings()).to_json()
        spec["namespace"] = names[key]
        answer = call(
            dict(event("put_app", body=spec), path=f"/apps/{name}", pathParameters={"app": name})
        )
        assert answer.status == 201, answer.body
        apps[key] = name
    yield apps
    dependencies.reset(clients=False)
    from kubernetes.client import CoreV1Api

    with control_plane.admin_client() as client:
        CoreV1Api(client).delete_namespace(second, _preload_content=False)


def canary_of(control_plane: ControlPlane, namespace: str) -> Any:
    from kubernetes.client import CoreV1Api

    with control_plane.admin_client() as client:
        service = CoreV1Api(client).read_namespaced_service("canary-service", namespace)
    return service.spec.selector["app"]


def test_each_application_is_switched_in_its_own_namespace_with_its_own_rights(
    control_plane: ControlPlane, kube_namespace: str, fleet: dict[str, str]
) -> None:
    second = call(scoped(fleet["second"], "switch_to_green"))
    assert second.status == 200, second.body
    assert canary_of(control_plane, f"{kube_namespace}-b") == "green"
    assert canary_of(control_plane, kube_namespace) == "blue"
    assert call(event("get_services")).body["canary"] == "blue"
    assert call(scoped(fleet["second"], "get_services")).body["canary"] == "green"


def test_a_namespace_without_the_rolebinding_refuses_the_product_and_says_so(
    control_plane: ControlPlane, kube_namespace: str, fleet: dict[str, str]
) -> None:
    answer = call(scoped(fleet["elsewhere"], "get_services"))
    assert answer.status == 503, answer.body
    assert answer.body["error"] == "ClusterForbidden"
    detail = answer.body["detail"]
    assert 'cannot get resource "configmaps"' in detail
    assert 'in the namespace "default"' in detail
    assert "rbac.yaml, applied in the application's namespace" in detail
