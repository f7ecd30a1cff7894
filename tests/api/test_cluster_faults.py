"""An unreachable or failing cluster is a 502/503 with a message, and nothing half-done."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bluegreen.adapters.cluster import KubernetesCluster
from bluegreen.config import load_settings
from functions.services_api.api import dependencies
from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import KNOWN, NAMESPACE, Stack, call, event, pinned, roles, versions


def test_api_server_errors_are_503(stack: Stack, ledger: Any, emu: ClusterEmulator) -> None:
    # GIVEN the Kubernetes API answers 503 to everything
    emu.faults.fail_requests(status=503, count=100)
    # WHEN the status is read
    answer = call(event("get_services"))
    # THEN 503 says the cluster is unavailable
    assert answer.status == 503
    assert answer.body["error"] == "ClusterUnavailable"
    assert answer.body["detail"]


def test_a_switch_the_cluster_refuses_changes_and_records_nothing(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN every write to the ConfigMap fails
    emu.faults.fail_requests(method="PUT", path="configmaps", status=500, count=100)
    emu.faults.fail_requests(method="PATCH", path="configmaps", status=500, count=100)
    before = versions(emu)
    # WHEN a switch is asked for
    answer = call(event("switch_to_green"))
    # THEN 503, the roles are as they were and no switch is recorded
    assert answer.status == 503, answer.body
    assert versions(emu) == before
    assert roles(emu) == ("blue", "blue", "green")
    assert ledger.deployments()[0] == []


def test_a_hung_api_server_is_503_within_the_timeout(
    stack: Stack, ledger: Any, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an API server that stalls, and the adapter's read timeout shortened for the test
    short = KubernetesCluster.from_settings(load_settings(), timeout=(0.5, 0.3))
    monkeypatch.setattr(dependencies, "cluster", lambda: short)
    emu.faults.hang_requests(seconds=1.0, count=100)
    # WHEN the status is read
    answer = call(event("get_services"))
    # THEN 503 says it did not answer in time
    assert answer.status == 503
    assert "did not answer" in answer.body["detail"]


def test_nothing_listening_is_503(
    stack: Stack, ledger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the configured API URL has nothing behind it
    monkeypatch.setenv("BG_KUBE_API_URL", "http://127.0.0.1:9")
    dependencies.reset(clients=False)
    # WHEN the status is read
    answer = call(event("get_services"))
    # THEN 503 names the unreachable API
    assert answer.status == 503
    assert "127.0.0.1:9" in answer.body["detail"]


def test_eks_access_failure_is_503(
    stack: Stack, ledger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the function goes through EKS (no URL, no kubeconfig) to a cluster that
    # eks:DescribeCluster does not know
    monkeypatch.delenv("BG_KUBE_API_URL")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("BG_CLUSTER_NAME", "no-such-cluster")
    dependencies.reset(clients=False)
    # WHEN the status is read
    answer = call(event("get_services"))
    # THEN 503 says why the cluster cannot be reached
    assert answer.status == 503
    assert "no-such-cluster" in answer.body["detail"]


def _garble(emu: ClusterEmulator) -> None:
    """Write something that is not JSON into canaryEnv, as a person editing by hand."""

    def garble(configmap: dict[str, Any]) -> None:
        configmap["data"]["canaryEnv"] = "selector=blue"

    emu.mutate("configmaps", NAMESPACE, "canary-env", garble)


def test_malformed_canary_env_is_502_that_says_a_switch_repairs_it(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN someone wrote something that is not JSON into canaryEnv
    _garble(emu)
    before = versions(emu)
    # WHEN the status is read
    answer = call(event("get_services"))
    # THEN 502 names the problem and the repair, and nothing was written over it
    assert answer.status == 502
    assert answer.body["error"] == "CanaryEnvMalformed"
    assert "not valid JSON" in answer.body["detail"]
    assert "bluegreen switch <colour>" in answer.body["detail"]
    assert versions(emu) == before


def test_a_switch_repairs_a_malformed_canary_env(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN a canaryEnv that is not JSON, and green running KNOWN
    _garble(emu)
    # WHEN green is made the canary
    answer = call(event("switch_to_green"))
    # THEN the switch happened, canaryEnv is whole again with green's image, and the
    # status reads again
    assert answer.status == 200, answer.body
    assert answer.body["changed"] is True
    assert answer.body["recorded"] is True
    assert roles(emu) == ("green", "green", "blue")
    configmap = emu.get("configmaps", NAMESPACE, "canary-env")
    assert configmap is not None
    assert json.loads(configmap["data"]["canaryEnv"]) == {
        "selector": "green",
        "image": pinned(KNOWN),
    }
    status = call(event("get_services"))
    assert status.status == 200
    assert status.body["canaryEnv"]["image"] == pinned(KNOWN)
