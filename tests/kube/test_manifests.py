"""``bluegreen manifests APP --with-objects | kubectl apply -f -`` on the real API server: a
namespace that had nothing is one the product can start in, with no more rights than its Role.

The administrator pipes the CLI's rendering for a selector application into the real
kubectl; the product's identity (the group the RoleBinding names, as EKS access entries
make the Lambda roles) then reads canaryEnv and lists the Services there, through the
product's own cluster adapter too, and is refused any other ConfigMap by the authorizer.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bluegreen_cli.main import main

from bluegreen.adapters.kube.client import api_client_for
from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.config import Settings
from bluegreen.domain.apps import AppSpec, app_settings
from bluegreen.domain.models import Colour, Role
from local.kube.controlplane import ControlPlane, api_client_from
from tests.fake_api import FakeApi, serving
from tests.waiting import eventually

pytestmark = pytest.mark.kube

KUBECTL = Path(sys.executable).with_name("kubectl")


@pytest.fixture
def new_namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A namespace name nothing exists under yet; the namespace is deleted afterwards."""
    name = f"m{os.getpid()}-{uuid.uuid4().hex[:6]}"
    yield name
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    with control_plane.admin_client() as client:
        try:
            CoreV1Api(client).delete_namespace(name, _preload_content=False)
        except ApiException as exc:
            if exc.status != 404:
                raise


def rendered(spec: dict[str, Any], group: str) -> str:
    """``bluegreen manifests cart --group G --with-objects``, the registry answering ``spec``."""
    with serving(FakeApi()) as api:
        api.routes[("GET", "/apps/cart")] = (200, {"name": "cart", "version": 1, "spec": spec})
        out, err = io.StringIO(), io.StringIO()
        argv = ["--endpoint", api.url, "manifests", "cart", "--group", group, "--with-objects"]
        assert main(argv, out=out, err=err) == 0, err.getvalue()
    return out.getvalue()


def kubectl_apply(plane: ControlPlane, text: str) -> None:
    """``kubectl apply -f -`` as the administrator, with a bare environment."""
    with tempfile.TemporaryDirectory(prefix="kubectl-home-") as home:
        result = subprocess.run(
            [str(KUBECTL), f"--kubeconfig={plane.admin_kubeconfig}", "apply", "-f", "-"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": home, "KUBECONFIG": "/dev/null"},
        )
    assert result.returncode == 0, result.stderr


def test_applied_to_a_new_namespace_the_product_starts_there_with_its_role_only(
    control_plane: ControlPlane, new_namespace: str
) -> None:
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    # GIVEN a selector application whose namespace does not exist yet
    spec = AppSpec.parse(
        {
            "cluster": "fleet",
            "namespace": new_namespace,
            "repository": "shop/cart",
            "objects": {"configMap": "cart-state", "configMapKey": "state"},
        }
    )
    # WHEN the administrator applies `bluegreen manifests cart --with-objects` with kubectl
    kubectl_apply(control_plane, rendered(spec.to_json(), control_plane.product_group))
    # AND another ConfigMap of the team's lives in the namespace
    with control_plane.admin_client() as admin:
        CoreV1Api(admin).create_namespaced_config_map(
            new_namespace,
            {"metadata": {"name": "team-secrets"}, "data": {"password": "hunter2"}},
        )

    with api_client_from(control_plane.product_kubeconfig) as product:
        core = CoreV1Api(product)

        # THEN the product may read canaryEnv (once the authorizer has seen the new Role)
        def readable() -> Any:
            try:
                return core.read_namespaced_config_map("cart-state", new_namespace)
            except ApiException as exc:
                if exc.status != 403:
                    raise
                return None

        config_map = eventually("the product reading canaryEnv", readable, 10, 0.1)
        assert config_map.data == {"state": '{"selector":"blue","image":""}'}
        # AND list the Services there
        services = core.list_namespaced_service(new_namespace)
        selectors = {s.metadata.name: s.spec.selector for s in services.items}
        assert selectors == {
            "canary-service": {"app": "blue"},
            "production-service": {"app": "green"},
        }
        # AND no other ConfigMap of the namespace: the authorizer refuses it (403)
        with pytest.raises(ApiException) as refused:
            core.read_namespaced_config_map("team-secrets", new_namespace)
        assert refused.value.status == 403

    # AND the product's own adapter reads the release's first state there
    settings = app_settings(
        Settings(kubeconfig=str(control_plane.product_kubeconfig)), "cart", spec
    )
    cluster = KubernetesCluster(settings, api_client_for(settings), timeout=(3.0, 10.0))
    env = cluster.canary_env()
    assert (env.selector, env.image, env.present) == (Colour.BLUE, "", True)
    assert cluster.service_selectors() == {Role.CANARY: Colour.BLUE, Role.PRODUCTION: Colour.GREEN}
