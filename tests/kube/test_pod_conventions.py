"""The emulator and the real control plane's simulated kubelet agree on what pods do.

Each test runs on both backends with the same code, through the official client:
how a marked image fails (crash loop with Kubernetes' back-off, OOMKilled,
image pull, invalid name, a missing Secret key), a slow but healthy start,
requests no node can hold, and hook-like Jobs with their logs. The emulator's
clock and the kubelet run at the same speed, so timings compare too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bluegreen.adapters.kube.client import api_client_for
from bluegreen.config import Settings
from local.cluster.commands import WP_ROOT_ERROR
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
from local.kube.testing import KUBE_KUBELET_SPEED
from tests.backends import Backend as Shared

REPO = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud"
FLUSHED = "Success: The cache was flushed.\n"


@dataclass
class Backend:
    """One backend, as a test drives it: the official client, a namespace, image marks."""

    name: str
    core: Any
    apps: Any
    batch: Any
    namespace: str
    mark: Callable[[str, str], None]


@pytest.fixture
def pods(paced_backend: Shared) -> Iterator[Backend]:
    """Each backend, its cluster paced alike, driven through the official client."""
    from kubernetes.client import AppsV1Api, BatchV1Api, CoreV1Api

    settings = Settings(kube_api_url=paced_backend.url) if not paced_backend.real else None
    with (
        api_client_for(settings)
        if settings is not None
        else paced_backend.extras["plane"].admin_client()
    ) as client:
        yield Backend(
            paced_backend.name,
            CoreV1Api(client),
            AppsV1Api(client),
            BatchV1Api(client),
            paced_backend.namespace,
            paced_backend.mark_image,
        )


def _digest() -> str:
    return "sha256:" + uuid.uuid4().hex * 2


def _deploy(
    pods: Backend, image: str, resources: dict[str, Any] | None = None, colour: str = "blue"
) -> None:
    container: dict[str, Any] = {"name": "web", "image": image}
    if resources is not None:
        container["resources"] = resources
    pods.apps.patch_namespaced_deployment(
        f"{colour}-deployment",
        pods.namespace,
        {"spec": {"template": {"spec": {"containers": [container]}}}},
    )


def _new_pod(backend: Backend, image: str, colour: str = "blue") -> Any:
    pods = backend.core.list_namespaced_pod(backend.namespace, label_selector=f"app={colour}").items
    found = [p for p in pods if p.spec.containers[0].image == image]
    return found[0] if found else None


def _until(what: str, check: Callable[[], Any], seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} within {seconds}s")


def _container(pods: Backend, image: str, colour: str = "blue") -> Any:
    pod = _new_pod(pods, image, colour)
    statuses = (pod.status.container_statuses or []) if pod is not None else []
    return statuses[0] if statuses else None


def _log(pods: Backend, pod: str, *, previous: bool = False) -> str:
    answer = pods.core.read_namespaced_pod_log(
        pod, pods.namespace, container="web", previous=previous, _preload_content=False
    )
    return str(answer.data.decode())


def _waiting(pods: Backend, image: str) -> Any:
    """The container once it waits for something other than being created."""
    container = _container(pods, image)
    waiting = container.state.waiting if container is not None else None
    return container if waiting is not None and waiting.reason != "ContainerCreating" else None


def _warnings(pods: Backend, pod: str) -> list[tuple[str, str]]:
    events = pods.core.list_namespaced_event(
        pods.namespace, field_selector=f"involvedObject.name={pod}"
    ).items
    return [(e.reason, e.message) for e in events if e.type == "Warning"]


def test_a_crash_looping_image_restarts_with_kubernetes_back_off(pods: Backend) -> None:
    # GIVEN an image marked to crash
    image = f"{REPO}@{_digest()}"
    pods.mark(image.split("@")[1], CRASH_LOOP)

    # WHEN the canary colour is set to it
    _deploy(pods, image)

    # THEN its pod restarts: once at once, again after the first back-off (10 s of Kubernetes)
    _until("restarted once", lambda: (c := _container(pods, image)) and c.restart_count >= 1)
    began = time.monotonic()
    second = _until(
        "restarted twice",
        lambda: (c := _container(pods, image)) and c.restart_count >= 2 and c,
    )
    waited = time.monotonic() - began
    assert waited <= 10 / KUBE_KUBELET_SPEED * 1.5 + 0.5
    # AND it waits in CrashLoopBackOff with the doubled back-off, after exiting 1
    assert second.state.waiting.reason == "CrashLoopBackOff"
    assert "back-off 20s restarting failed container=web" in second.state.waiting.message
    assert second.last_state.terminated.exit_code == 1
    assert second.last_state.terminated.reason == "Error"
    # AND its previous log and its Events say so, as kubectl would show them
    pod = _new_pod(pods, image)
    assert _log(pods, pod.metadata.name, previous=True) == CRASH_LOG
    assert any(reason == "BackOff" for reason, _ in _warnings(pods, pod.metadata.name))


def test_an_oom_killed_image_restarts_with_exit_137(pods: Backend) -> None:
    # GIVEN an image marked to run out of memory, deployed
    image = f"{REPO}@{_digest()}"
    pods.mark(image.split("@")[1], OOM_KILLED)
    _deploy(pods, image)

    # WHEN its container has been killed
    container = _until(
        "killed", lambda: (c := _container(pods, image)) and c.last_state.terminated and c
    )

    # THEN it was killed for memory, and its log says why
    assert container.last_state.terminated.reason == "OOMKilled"
    assert container.last_state.terminated.exit_code == 137
    assert container.restart_count >= 1
    pod = _new_pod(pods, image)
    assert _log(pods, pod.metadata.name, previous=True) == OOM_LOG


def test_an_image_that_cannot_be_pulled_goes_from_err_image_pull_to_back_off(
    pods: Backend,
) -> None:
    # GIVEN an image marked as not in the registry, deployed
    image = f"{REPO}@{_digest()}"
    pods.mark(image.split("@")[1], IMAGE_PULL)
    _deploy(pods, image)

    # WHEN the kubelet has tried to pull it, then backed off
    first = _until("a pull failed", lambda: _waiting(pods, image))
    later = _until(
        "the kubelet backed off",
        lambda: (
            (c := _container(pods, image)) and c.state.waiting.reason == "ImagePullBackOff" and c
        ),
    )

    # THEN the container never started, and the reasons are Kubernetes' own
    assert first.state.waiting.reason in {"ErrImagePull", "ImagePullBackOff"}
    assert "not found" in later.state.waiting.message
    pod = _new_pod(pods, image)
    assert pod.status.phase == "Pending"
    warnings = _warnings(pods, pod.metadata.name)
    assert ("Failed", "Error: ImagePullBackOff") in warnings


@pytest.mark.parametrize(
    ("mode", "reason", "words"),
    [
        (INVALID_IMAGE, "InvalidImageName", "invalid reference format"),
        (CONFIG_ERROR, "CreateContainerConfigError", "couldn't find key WORDPRESS_DB_PASSWORD"),
    ],
)
def test_a_container_that_cannot_be_created_waits_with_its_reason(
    pods: Backend, mode: str, reason: str, words: str
) -> None:
    # GIVEN an image marked with a creation failure, deployed
    image = f"{REPO}@{_digest()}"
    pods.mark(image.split("@")[1], mode)
    _deploy(pods, image)

    # WHEN the kubelet has tried to create its container
    container = _until("the container waits", lambda: _waiting(pods, image))

    # THEN it waits with Kubernetes' reason and message, never restarting
    assert container.state.waiting.reason == reason
    assert words in container.state.waiting.message
    assert container.restart_count == 0
    pod = _new_pod(pods, image)
    assert any(r == "Failed" for r, _ in _warnings(pods, pod.metadata.name))


def test_a_slow_start_runs_without_restarts_and_is_not_ready_yet(pods: Backend) -> None:
    # GIVEN an image that gets ready only 90 s (of Kubernetes) after it starts, deployed
    image = f"{REPO}@{_digest()}"
    pods.mark(image.split("@")[1], SLOW_START)
    _deploy(pods, image)

    # WHEN its container runs, and then a healthy image deployed to green is ready (so the
    # slow one has run for longer than a healthy start takes)
    _until("running", lambda: (c := _container(pods, image)) and c.state.running)
    healthy = f"{REPO}@{_digest()}"
    _deploy(pods, healthy, colour="green")
    _until("the healthy start ready", lambda: (c := _container(pods, healthy, "green")) and c.ready)

    # THEN it is not ready yet and has never restarted
    container = _container(pods, image)
    assert container.state.running is not None
    assert container.ready is False
    assert container.restart_count == 0


def test_requests_no_node_can_hold_leave_the_pod_unschedulable(pods: Backend) -> None:
    # GIVEN a pod template asking for more CPU than the node has
    image = f"{REPO}@{_digest()}"

    # WHEN it is deployed
    _deploy(pods, image, resources={"requests": {"cpu": "64"}})

    # THEN its pod stays Pending, not scheduled, and the scheduler says why
    def unschedulable() -> Any:
        pod = _new_pod(pods, image)
        conditions = (pod.status.conditions or []) if pod is not None else []
        return next((c for c in conditions if c.reason == "Unschedulable"), None) and pod

    pod = _until("the scheduler gave up", unschedulable)
    condition = next(c for c in pod.status.conditions if c.type == "PodScheduled")
    assert condition.status == "False"
    assert "Insufficient cpu" in condition.message
    assert not pod.spec.node_name
    failed = [m for r, m in _warnings(pods, pod.metadata.name) if r == "FailedScheduling"]
    assert failed
    assert "Insufficient cpu" in failed[0]
    # AND both say it in kube-scheduler's words, to the letter
    assert condition.message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
        "1 Preemption is not helpful for scheduling."
    )


@pytest.mark.parametrize(
    ("command", "phase", "log"),
    [
        (["wp", "cache", "flush"], "Failed", WP_ROOT_ERROR),
        (
            ["wp", "cache", "flush", "--allow-root"],
            "Succeeded",
            "Success: The cache was flushed.\n",
        ),
    ],
)
def test_a_job_pod_ends_as_its_command_would_and_serves_its_log(
    pods: Backend, command: list[str], phase: str, log: str
) -> None:
    # GIVEN a Job running wp-cli as root
    name = f"hook-{uuid.uuid4().hex[:8]}"
    pods.batch.create_namespaced_job(
        pods.namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [
                            {"name": "web", "image": f"{REPO}@{_digest()}", "command": command}
                        ],
                    }
                },
            },
        },
    )

    # WHEN its pod has ended
    def ended() -> Any:
        found = pods.core.list_namespaced_pod(
            pods.namespace, label_selector=f"job-name={name}"
        ).items
        return next((p for p in found if p.status.phase in {"Succeeded", "Failed"}), None)

    pod = _until("the Job's pod ended", ended)

    # THEN it ended as wp-cli would, and its log reads through the API server
    assert pod.status.phase == phase
    assert _log(pods, pod.metadata.name) == log


def test_the_push_options_are_the_modes_both_backends_know() -> None:
    # GIVEN the CLI's --fault choices and the local cluster's image modes
    from bluegreen_cli.push import FAULT_MODES

    from local.cluster.containers import IMAGE_MODES

    # THEN they are the same list, in the same order
    assert FAULT_MODES == IMAGE_MODES


def test_both_backends_report_the_same_kubernetes_release(pods: Backend) -> None:
    # GIVEN either backend
    from kubernetes.client import VersionApi

    # WHEN its version is read, as kubectl version reads it
    info = VersionApi(pods.core.api_client).get_code()

    # THEN it is the release the real control plane is built from
    from local.kube.controlplane import kubernetes_version

    assert (info.major, info.minor) == ("1", "37")
    assert info.git_version.startswith(kubernetes_version())
