"""A broken rollout is known from its pods in seconds, on both backends, with a readable Cause.

The deploy flow's rollout step (``check_rollout``) is polled here as the flow polls
it, sleeping its ``waitSeconds`` scaled to the cluster's speed (``backend.speed``:
the real control plane's kubelet runs ``KUBE_KUBELET_SPEED`` times faster than
Kubernetes, the emulator's clock faster still), so the step's count of waited
seconds is in cluster seconds.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import pytest

from bluegreen.adapters.kube.client import api_client_for
from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.domain.errors import RolloutFailed
from bluegreen.domain.models import Colour
from bluegreen.logic.deploy.ports import DeployPorts, FlowTiming
from bluegreen.logic.deploy.rollout import check_rollout
from bluegreen.logic.health import HealthProbes
from local.cluster.containers import (
    CONFIG_ERROR,
    CRASH_LOG,
    CRASH_LOOP,
    IMAGE_PULL,
    INVALID_IMAGE,
    OOM_KILLED,
    OOM_LOG,
    SLOW_START,
)
from tests.backends import Backend, emulator_backend
from tests.flow.fakes import FakeAlarms, FakeHttp, FakeLedger, FakeNotifier

REPO = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud"
# The figures are cluster seconds: the emulator may run much faster than the kubelet.
pytestmark = pytest.mark.emulator_speed(40)


@pytest.fixture
def timed(paced_backend: Backend) -> Backend:
    """A backend whose cluster runs KUBE_KUBELET_SPEED times faster than Kubernetes."""
    return paced_backend


@dataclass
class Verdict:
    """How a polled rollout ended: its error (if it failed), after how many cluster seconds."""

    error: RolloutFailed | None
    waited: int
    readings: list[dict[str, Any]]


def _ports(backend: Backend, **thresholds: int) -> DeployPorts:
    settings = replace(backend.settings, **thresholds)  # type: ignore[arg-type]
    cluster = KubernetesCluster(settings, api_client_for(settings), timeout=(3.0, 10.0))
    return DeployPorts(
        settings=settings,
        ledger=FakeLedger(),
        cluster=cluster,
        notifier=FakeNotifier(),
        probes=HealthProbes(http=FakeHttp(), alarms=FakeAlarms()),
        timing=FlowTiming(),
    )


def _deploy_and_poll(
    backend: Backend, mode: str | None, *, limit: int = 400, **thresholds: int
) -> Verdict:
    """Put a new image (marked ``mode``) on blue and poll its rollout as the flow does."""
    digest = "sha256:" + uuid.uuid4().hex * 2
    image = f"{REPO}@{digest}"
    if mode is not None:
        backend.mark_image(digest, mode)
    ports = _ports(backend, **thresholds)
    ports.cluster.set_deployment_image(Colour.BLUE, image)
    deployment = {"id": f"deploy-{uuid.uuid4().hex[:8]}", "colour": "blue"}
    # As Begin does: the deployment holds the lock while its steps poll.
    assert ports.ledger.acquire_lock(deployment["id"], ports.settings.lock_lease_seconds)
    reading: dict[str, Any] = {"image": image, "waited": 0, "waitSeconds": 0, "polls": 0}
    readings: list[dict[str, Any]] = []
    while reading["waited"] < limit:
        try:
            reading = check_rollout({"deployment": deployment, "rollout": reading}, ports)
        except RolloutFailed as error:
            return Verdict(error, int(reading["waited"]) + int(reading["waitSeconds"]), readings)
        readings.append(reading)
        if reading["complete"]:
            return Verdict(None, int(reading["waited"]), readings)
        time.sleep(int(reading["waitSeconds"]) / backend.speed)
    return Verdict(None, int(reading["waited"]), readings)


@pytest.mark.parametrize(
    ("mode", "reason", "exit_code", "log"),
    [
        (CRASH_LOOP, "CrashLoopBackOff", 1, CRASH_LOG.strip()),
        (OOM_KILLED, "OOMKilled", 137, OOM_LOG.strip()),
    ],
)
def test_a_crashing_image_fails_at_the_second_restart_with_its_previous_log(
    timed: Backend, mode: str, reason: str, exit_code: int, log: str
) -> None:
    # GIVEN an image whose container crashes
    # WHEN it is rolled out on blue and polled at the defaults
    verdict = _deploy_and_poll(timed, mode)

    # THEN the rollout failed long before the 600 s deadline, naming the pod, the
    # container, why, how often it restarted, its exit code and its last words
    assert verdict.error is not None
    text = str(verdict.error)
    assert verdict.waited <= 60, text
    assert "pod blue-deployment-" in text
    assert "container web" in text
    assert f"{reason} after 2 restarts, last exit code {exit_code}" in text
    assert f"previous log: {log}" in text


@pytest.mark.parametrize(
    ("mode", "reason", "words"),
    [
        (IMAGE_PULL, "ImagePullBackOff", "not found"),
        (INVALID_IMAGE, "InvalidImageName", "invalid reference format"),
        (CONFIG_ERROR, "CreateContainerConfigError", "couldn't find key WORDPRESS_DB_PASSWORD"),
    ],
)
def test_a_container_that_cannot_start_fails_once_it_waited_fail_after_seconds(
    timed: Backend, mode: str, reason: str, words: str
) -> None:
    # GIVEN an image whose container can never be created, and FailAfterSeconds of 20
    # WHEN it is rolled out on blue and polled
    verdict = _deploy_and_poll(timed, mode, fail_after_seconds=20)

    # THEN it failed just past the threshold, with the kubelet's reason and message
    assert verdict.error is not None
    text = str(verdict.error)
    assert 20 < verdict.waited <= 30, text
    assert f"container web: {reason} for " in text
    assert words in text
    assert "previous log" not in text


def test_a_pod_no_node_can_take_fails_once_it_waited_unschedulable_seconds(
    timed: Backend,
) -> None:
    # GIVEN blue's pods ask for more CPU than any node has, and UnschedulableSeconds of 20
    timed.mutate(
        "deployments",
        "blue-deployment",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
            resources={"requests": {"cpu": "64"}}
        ),
    )

    # WHEN a new image is rolled out and polled
    verdict = _deploy_and_poll(timed, None, unschedulable_seconds=20)

    # THEN it failed past the threshold with the scheduler's words
    assert verdict.error is not None
    text = str(verdict.error)
    assert 20 < verdict.waited <= 30, text
    assert "Unschedulable" in text
    assert "Insufficient cpu" in text


def test_a_slow_but_healthy_start_is_not_failed(timed: Backend) -> None:
    # GIVEN a progress deadline longer than a slow start (the kube namespaces' is short),
    # and one replica (two would start one after the other: twice as long)
    def patient(deployment: dict[str, Any]) -> None:
        deployment["spec"].update(progressDeadlineSeconds=600, replicas=1)

    timed.mutate("deployments", "blue-deployment", patient)

    # WHEN an image that gets ready only 90 s after it starts, never restarting, rolls out
    verdict = _deploy_and_poll(timed, SLOW_START)

    # THEN it completes, and was never failed on the way
    assert verdict.error is None
    assert verdict.readings[-1]["complete"]
    assert verdict.waited >= 60


def test_a_rollout_poll_costs_at_most_three_requests(cluster_emulator: Any) -> None:
    emulator = cluster_emulator
    # GIVEN a crashing image rolled out on an emulator counting its requests
    backend = emulator_backend(emulator)
    ports = _ports(backend)
    image = f"{REPO}@sha256:{'ab' * 32}"
    emulator.faults.break_image(image, CRASH_LOOP)
    ports.cluster.set_deployment_image(Colour.BLUE, image)
    deployment = {"id": "deploy-counted", "colour": "blue"}
    assert ports.ledger.acquire_lock(deployment["id"], ports.settings.lock_lease_seconds)
    reading: dict[str, Any] = {"image": image, "waited": 0, "waitSeconds": 0, "polls": 0}

    # WHEN it is polled until it fails (the instant clock never lets the pods restart twice:
    # the deadline passes instead), counting each poll's requests
    counts = []
    for _ in range(5):
        before = len(emulator.requests)
        try:
            reading = check_rollout({"deployment": deployment, "rollout": reading}, ports)
        except RolloutFailed:
            counts.append(len(emulator.requests) - before)
            break
        counts.append(len(emulator.requests) - before)

    # THEN no poll took more than three requests
    assert counts
    assert max(counts) <= 3, counts
