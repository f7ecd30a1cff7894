"""An unreachable or failing cluster is a 502/503 with a message, and nothing half-done.

A switch completes (canaryEnv naming what the new canary runs) or is put back, and
says which; while canaryEnv and the Services disagree, nothing is deployed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bluegreen.adapters.kube.cluster import KubernetesCluster
from functions.services_api.api import dependencies
from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import (
    KNOWN,
    NAMESPACE,
    OLDER,
    Stack,
    call,
    event,
    pinned,
    roles,
    versions,
)


def test_api_server_errors_are_503(stack: Stack, ledger: Any, emu: ClusterEmulator) -> None:
    # GIVEN the Kubernetes API answers 503 to everything
    emu.faults.fail_requests(status=503, count=100)
    # WHEN the status is read
    answer = call(event("get_services"))
    # THEN 503 says the cluster is unavailable
    assert answer.status == 503
    assert answer.body["error"] == "ClusterUnavailable"
    assert answer.body["detail"]


class FakeTime:
    """A clock and a sleep for the cluster adapter: sleeping moves the clock, at no cost.

    ``on_sleep`` runs at the first sleep (what happens in the world while the switch waits).
    """

    def __init__(self, on_sleep: Callable[[], object] | None = None) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self._on_sleep is not None:
            action, self._on_sleep = self._on_sleep, None
            action()


def fake_time_cluster(monkeypatch: pytest.MonkeyPatch, time: FakeTime) -> None:
    """The function's cluster adapter, waiting on ``time`` instead of the wall clock."""
    adapter = KubernetesCluster.from_settings(
        dependencies.settings(), clock=time.clock, sleep=time.sleep
    )
    monkeypatch.setattr(dependencies, "cluster", lambda: adapter)


def role_objects(emu: ClusterEmulator) -> dict[str, Any]:
    """canaryEnv's data and each Service's selector and annotations, as stored.

    No annotations and an empty map are the same (a real API server omits the empty map).
    """
    configmap = emu.get("configmaps", NAMESPACE, "canary-env")
    assert configmap is not None
    found: dict[str, Any] = {
        "configmap": (configmap["data"], configmap["metadata"].get("annotations") or None)
    }
    for name in ("canary-service", "production-service"):
        service = emu.get("services", NAMESPACE, name)
        assert service is not None
        annotations = service["metadata"].get("annotations") or None
        found[name] = (service["spec"]["selector"], annotations)
    return found


def deployment_versions(emu: ClusterEmulator) -> dict[str, str]:
    """resourceVersion of each colour's Deployment: a deploy or rollback would change it."""
    return {k: v for k, v in versions(emu).items() if k.startswith("deployments/")}


def test_a_switch_the_cluster_refuses_changes_and_records_nothing(
    stack: Stack, ledger: Any, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN every write to the ConfigMap fails
    fake_time_cluster(monkeypatch, FakeTime())
    emu.faults.fail_requests(method="PUT", path="configmaps", status=500, count=1000)
    emu.faults.fail_requests(method="PATCH", path="configmaps", status=500, count=1000)
    before = role_objects(emu)
    # WHEN a switch is asked for
    answer = call(event("switch_to_green"))
    # THEN 503 says the switch was put back: the canary Service it had moved is back, the
    # roles are as they were and no switch is recorded
    assert answer.status == 503, answer.body
    assert answer.body["error"] == "SwitchRestored"
    assert "the previous roles were put back" in answer.body["detail"]
    assert role_objects(emu) == before
    assert roles(emu) == ("blue", "blue", "green")
    assert ledger.deployments()[0] == []


def test_a_switch_whose_production_service_patch_keeps_failing_answers_that_it_was_put_back(
    stack: Stack, ledger: Any, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the production Service's patch fails with a 500 every time
    time = FakeTime()
    fake_time_cluster(monkeypatch, time)
    emu.faults.fail_requests("PATCH", "/services/production-service$", 500, count=1000)
    before = role_objects(emu)
    # WHEN green is asked for
    answer = call(event("switch_to_green"))
    # THEN after backing off for its budget the switch put canaryEnv and the canary Service
    # back, and the answer says so with the cause; the status reads as before
    assert answer.status == 503, answer.body
    assert answer.body["error"] == "SwitchRestored"
    assert "500" in answer.body["detail"]
    assert (
        "the canary Service selects blue, the production Service selects green"
        in (answer.body["detail"])
    )
    assert time.now > 1.0
    assert role_objects(emu) == before
    assert ledger.deployments()[0] == []
    status = call(event("get_services"))
    assert (status.body["canary"], status.body["inAgreement"]) == ("blue", True)


def test_a_switch_that_could_neither_complete_nor_be_put_back_answers_the_state_it_left(
    stack: Stack, ledger: Any, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the production Service cannot be patched, nor the ConfigMap once it was written
    fake_time_cluster(monkeypatch, FakeTime())
    emu.faults.fail_requests("PATCH", "/services/production-service$", 500, count=1000)
    adapter = dependencies.cluster()
    assert isinstance(adapter, KubernetesCluster)
    rest = adapter.api_client.rest_client
    original = rest.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        response = original(method, url, *args, **kwargs)
        if method == "PUT" and url.endswith("/configmaps/canary-env"):
            emu.faults.fail_requests("PUT", "/configmaps/canary-env$", 503, count=1000)
        return response

    monkeypatch.setattr(rest, "request", request)
    # WHEN green is asked for
    answer = call(event("switch_to_green"))
    # THEN the error names what each Service selects and what canaryEnv says, as stored
    assert answer.status == 503, answer.body
    assert answer.body["error"] == "SwitchIncomplete"
    assert (
        "the canary Service selects green, the production Service selects green, and "
        "canaryEnv makes green the canary"
    ) in answer.body["detail"]
    assert roles(emu) == ("green", "green", "green")


def test_a_switch_throttled_three_times_with_retry_after_one_completes(
    stack: Stack, ledger: Any, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the production Service's patch is throttled three times, asking for a second each
    time = FakeTime()
    fake_time_cluster(monkeypatch, time)
    emu.faults.fail_requests("PATCH", "/services/production-service$", 429, count=3)
    # WHEN green is asked for
    answer = call(event("switch_to_green"))
    # THEN the switch waited as asked and completed; it is recorded, and canaryEnv.image
    # names what green runs
    assert answer.status == 200, answer.body
    assert answer.body["changed"] is True
    assert len([s for s in time.sleeps if s >= 1.0]) == 3
    assert roles(emu) == ("green", "green", "blue")
    assert ledger.deployment(answer.body["recordId"]) is not None
    status = call(event("get_services"))
    assert status.body["canaryEnv"]["image"] == pinned(KNOWN)
    assert status.body["colours"]["green"]["image"] == pinned(KNOWN)


def test_after_a_switch_get_services_shows_canary_env_naming_what_the_new_canary_runs(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN blue, the canary, runs OLDER and canaryEnv.image says so; green runs KNOWN
    assert call(event("get_services")).body["canaryEnv"]["image"] == pinned(OLDER)
    # WHEN green is made the canary, then blue again
    call(event("switch_to_green"))
    after_green = call(event("get_services")).body
    call(event("switch_to_blue"))
    after_blue = call(event("get_services")).body
    # THEN each time canaryEnv.image is what the new canary colour runs, as stored
    assert after_green["canaryEnv"] == {
        "selector": "green",
        "image": pinned(KNOWN),
        "present": True,
    }
    assert after_green["colours"]["green"]["image"] == pinned(KNOWN)
    assert after_blue["canaryEnv"]["image"] == pinned(OLDER)
    configmap = emu.get("configmaps", NAMESPACE, "canary-env")
    assert configmap is not None
    assert json.loads(configmap["data"]["canaryEnv"]) == {
        "selector": "blue",
        "image": pinned(OLDER),
    }


def test_a_deployment_that_takes_the_lock_while_a_switch_waits_stops_the_switch(
    stack: Stack, ledger: Any, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the canary Service's patch is throttled once, and while the switch waits out the
    # Retry-After a deployment takes the application's lock (it checked the roles already)
    fake_time_cluster(
        monkeypatch, FakeTime(on_sleep=lambda: ledger.acquire_lock("app-deploy-1", 600))
    )
    emu.faults.fail_requests("PATCH", "/services/canary-service$", 429, count=1)
    before = role_objects(emu)
    # WHEN green is asked for
    answer = call(event("switch_to_green"))
    # THEN the switch, seeing the lock once it moved the canary Service, put it back: the
    # deployment's colour is still the canary, and nobody's production moved
    assert answer.status == 409, answer.body
    assert answer.body["error"] == "LockHeld"
    assert "app-deploy-1" in answer.body["detail"]
    assert "put back" in answer.body["detail"]
    assert role_objects(emu) == before


def _edit_roles(emu: ClusterEmulator, selector: str, canary: str, production: str) -> None:
    """Leave the roles as an interrupted switch or a hand edit would."""
    emu.mutate(
        "configmaps",
        NAMESPACE,
        "canary-env",
        lambda cm: cm["data"].update(
            canaryEnv=json.dumps({"selector": selector, "image": pinned(OLDER)})
        ),
    )
    for name, app in (("canary-service", canary), ("production-service", production)):
        emu.mutate(
            "services",
            NAMESPACE,
            name,
            lambda svc, app=app: svc["spec"]["selector"].update(app=app),  # type: ignore[misc]
        )


HALF_SWITCHED = [
    pytest.param(("blue", "green", "green"), id="canary-service-moved"),
    pytest.param(("green", "green", "green"), id="canary-env-written"),
    pytest.param(("green", "blue", "green"), id="production-on-the-canary-colour"),
]


@pytest.mark.parametrize("left", HALF_SWITCHED)
@pytest.mark.parametrize(
    "request_event",
    ["deploy_sha256_digest", "deploy_to_production", "rollback_canary", "promote"],
)
def test_no_deploy_rollback_or_promotion_starts_while_the_roles_disagree(
    stack: Stack,
    ledger: Any,
    emu: ClusterEmulator,
    left: tuple[str, str, str],
    request_event: str,
) -> None:
    # GIVEN canaryEnv and the Services disagree (a switch cut short, or a hand edit), so a
    # production Service may select the colour canaryEnv calls the canary
    _edit_roles(emu, *left)
    before = deployment_versions(emu)
    # WHEN a deploy, a rollback or a promotion is asked for
    answer = call(event(request_event))
    # THEN 409 names the disagreement and how to settle it; no execution was started and
    # neither Deployment changed
    assert answer.status == 409, answer.body
    assert answer.body["error"] == "RolesDisagree"
    assert "canaryEnv and the Services disagree" in answer.body["detail"]
    assert "Service selects" in answer.body["detail"]
    assert "bluegreen switch" in answer.body["detail"]
    assert stack.executions() == []
    assert deployment_versions(emu) == before


def test_once_the_switch_is_repeated_a_canary_deploy_is_accepted_again(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN a switch to green cut short after canaryEnv was written (both Services on green)
    _edit_roles(emu, "green", "green", "green")
    assert call(event("deploy_sha256_digest")).status == 409
    # WHEN the switch is repeated
    switched = call(event("switch_to_green"))
    # THEN the roles agree and the canary deploy starts the flow
    assert switched.status == 200, switched.body
    assert roles(emu) == ("green", "green", "blue")
    assert call(event("deploy_sha256_digest")).status == 202


def test_a_hung_api_server_is_503_within_the_timeout(
    stack: Stack, ledger: Any, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an API server that stalls, and the adapter's read timeout shortened for the test
    short = KubernetesCluster.from_settings(dependencies.settings(), timeout=(0.5, 0.3))
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
