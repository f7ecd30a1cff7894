"""Error mapping: the client's exceptions never leave the adapter; ours say what happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from bluegreen.adapters.kube.client import api_client_for
from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.config import Settings
from bluegreen.domain.errors import ClusterObjectMissing, ClusterUnavailable, InvalidInput
from bluegreen.domain.models import Colour
from local.cluster import ClusterEmulator
from tests.backends import Backend
from tests.cluster.conftest import ScriptedApi, status


@pytest.mark.parametrize(
    ("status_code", "words"),
    [(503, "503 ServiceUnavailable"), (500, "500 InternalError"), (429, "429 TooManyRequests")],
)
def test_server_errors_are_cluster_unavailable_with_the_status(
    cluster: KubernetesCluster, emulator: ClusterEmulator, status_code: int, words: str
) -> None:
    # GIVEN the API server fails the next read of the blue Deployment
    emulator.faults.fail_requests("GET", "/deployments/blue-deployment$", status_code)

    # WHEN the rollout is read
    with pytest.raises(ClusterUnavailable) as failure:
        cluster.rollout(Colour.BLUE)

    # THEN the error names the object, the server and its answer
    message = str(failure.value)
    assert words in message
    assert 'Deployment "blue-deployment"' in message
    assert emulator.url in message


def test_a_hung_api_server_is_a_timeout_not_a_hung_caller(
    make_cluster: Callable[..., KubernetesCluster], emulator: ClusterEmulator
) -> None:
    # GIVEN an adapter with a short read timeout, and an API server that stalls the next read
    cluster = make_cluster(timeout=(0.5, 0.3))
    emulator.faults.hang_requests("GET", "/configmaps/canary-env$", seconds=3)

    # WHEN canaryEnv is read
    started = time.monotonic()
    with pytest.raises(ClusterUnavailable) as failure:
        cluster.canary_env()
    elapsed = time.monotonic() - started

    # THEN it gave up after one read timeout (not retried into several), saying so
    assert "did not answer within" in str(failure.value)
    assert elapsed < 1.5


def test_nothing_listening_is_cluster_unavailable() -> None:
    # GIVEN an API URL where nothing listens
    settings = Settings(kube_api_url="http://127.0.0.1:9")
    cluster = KubernetesCluster(settings, api_client_for(settings), timeout=(0.5, 0.5))

    # WHEN anything is read
    # THEN it could not reach the server, and says where it tried
    with pytest.raises(ClusterUnavailable, match=r"could not reach .*127\.0\.0\.1:9"):
        cluster.service_selectors()


def test_missing_service_is_named(
    make_cluster: Callable[..., KubernetesCluster], settings: Settings
) -> None:
    # GIVEN settings naming a production Service that does not exist
    cluster = make_cluster(replace(settings, production_service_name="prod-svc"))

    # WHEN the selectors are read, or a switch attempted
    # THEN the missing Service is named
    with pytest.raises(ClusterObjectMissing, match='Service "prod-svc" \\(production\\)'):
        cluster.service_selectors()
    with pytest.raises(ClusterObjectMissing, match="prod-svc"):
        cluster.switch_roles(Colour.GREEN)


def test_missing_namespace_is_named(
    make_cluster: Callable[..., KubernetesCluster], settings: Settings, backend: Backend
) -> None:
    # GIVEN settings naming a namespace that does not exist
    cluster = make_cluster(replace(settings, namespace="wp-nowhere"))

    # WHEN canaryEnv is read
    # THEN the error names the object and its namespace. The emulator, which has no RBAC,
    # finds nothing there; a real API server refuses first (403): the shipped RoleBinding
    # is in the application's namespace, not in this one
    expected = ClusterUnavailable if backend.real else ClusterObjectMissing
    with pytest.raises(expected, match='namespace "wp-nowhere"'):
        cluster.canary_env()


def _scripted_cluster(scripted_api: ScriptedApi) -> KubernetesCluster:
    settings = Settings(kube_api_url=scripted_api.url)
    return KubernetesCluster(settings, api_client_for(settings, bearer_token="expired"))


def test_401_says_the_credentials_were_rejected(scripted_api: ScriptedApi) -> None:
    # GIVEN an API server that rejects our token
    scripted_api.status = 401
    scripted_api.body = status(401, "Unauthorized", "Unauthorized")

    # WHEN anything is read
    # THEN the error says the credentials were refused, and what to check
    with pytest.raises(ClusterUnavailable) as failure:
        _scripted_cluster(scripted_api).canary_env()
    message = str(failure.value)
    assert "rejected our credentials (401 Unauthorized)" in message
    assert "access entry" in message


def test_403_says_what_is_forbidden(scripted_api: ScriptedApi) -> None:
    # GIVEN an API server whose RBAC does not let us patch Services
    scripted_api.status = 403
    scripted_api.body = status(
        403,
        "Forbidden",
        'services "canary-service" is forbidden: User "bluegreen" cannot list resource '
        '"services" in API group "" in the namespace "wp-platform"',
    )

    # WHEN the selectors are read
    # THEN the error quotes the server and points at the RBAC Role
    with pytest.raises(ClusterUnavailable) as failure:
        _scripted_cluster(scripted_api).service_selectors()
    message = str(failure.value)
    assert "403 Forbidden" in message
    assert 'cannot list resource "services"' in message
    assert "RBAC Role" in message


def test_422_is_invalid_input_naming_the_object(scripted_api: ScriptedApi) -> None:
    # GIVEN an API server that refuses what we send as invalid
    scripted_api.status = 422
    scripted_api.body = status(
        422, "Invalid", 'Job.batch "x" is invalid: spec.template.spec.containers[0].image: Required'
    )

    # WHEN a Job is read (any request will do)
    # THEN the error is InvalidInput, naming the object and quoting the server
    with pytest.raises(InvalidInput, match=r"spec\.template\.spec\.containers\[0\]\.image"):
        _scripted_cluster(scripted_api).hook_run("x")


def test_non_json_error_bodies_are_still_explained(scripted_api: ScriptedApi) -> None:
    # GIVEN something in front of the API server answering 502 without a Status body
    scripted_api.status = 502
    scripted_api.body = {}

    # WHEN anything is read
    # THEN the error still says which server and which status
    with pytest.raises(ClusterUnavailable, match="502"):
        _scripted_cluster(scripted_api).canary_env()
