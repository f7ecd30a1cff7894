"""The simulated kubelet serves pods on their addresses inside the pod network.

Pods started while the kubelet has a pod network get an address in 10.244.0.0/16
(so the EndpointSlices list them: the API server refuses loopback addresses), and
each running, ready container answers HTTP on it, by the image conventions of the
emulator and the local traffic simulator: a body naming its colour and image; an
``errors`` image answers 500 to 5 % of requests, a ``slow`` one takes 2 s, a
crash-looping one answers nothing.
"""

from __future__ import annotations

import http.client
import ipaddress
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from local.cluster.containers import CRASH_LOOP
from local.kube.controlplane import ControlPlane
from local.kube.dataplane import PodNetwork
from local.kube.kubelet import POD_NETWORK
from tests.dataplane.support import seeded_namespace
from tests.waiting import eventually

pytestmark = pytest.mark.kube

REPO = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud"


@dataclass
class Pods:
    plane: ControlPlane
    network: PodNetwork
    namespace: str

    def of(self, colour: str) -> list[Any]:
        from kubernetes.client import CoreV1Api

        with self.plane.admin_client() as client:
            return list(
                CoreV1Api(client)
                .list_namespaced_pod(self.namespace, label_selector=f"app={colour}")
                .items
            )

    def ready(self, colour: str) -> list[Any]:
        return [
            p
            for p in self.of(colour)
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
            and not p.metadata.deletion_timestamp
        ]

    def get(self, pod: Any) -> Any:
        return self.network.request(f"http://{pod.status.pod_ip}:8080/", timeout=10)


@pytest.fixture(scope="module")
def pods(control_plane: ControlPlane, pod_network: PodNetwork) -> Iterator[Pods]:
    with seeded_namespace(control_plane, "pods") as namespace:
        yield Pods(control_plane, pod_network, namespace)


def test_each_pod_answers_on_its_address_with_its_colour(pods: Pods) -> None:
    from kubernetes.client import DiscoveryV1Api

    for colour in ("blue", "green"):
        running = pods.ready(colour)
        assert len(running) == 2
        for pod in running:
            assert ipaddress.ip_address(pod.status.pod_ip) in POD_NETWORK
            answer = pods.get(pod)
            assert answer.status == 200
            body = answer.json()
            assert body["colour"] == colour
            assert body["pod"] == pod.metadata.name
            assert body["image"] == pod.spec.containers[0].image

    with pods.plane.admin_client() as client:
        slices = DiscoveryV1Api(client).list_namespaced_endpoint_slice(
            pods.namespace, label_selector="kubernetes.io/service-name=blue-service"
        )
    listed = sorted(a for s in slices.items for e in s.endpoints or [] for a in e.addresses)
    assert listed == sorted(p.status.pod_ip for p in pods.ready("blue"))


def test_an_errors_image_fails_one_request_in_twenty_and_a_slow_one_takes_two_seconds(
    pods: Pods,
) -> None:
    kubelet = pods.plane.kubelet
    assert kubelet is not None
    pod = pods.ready("green")[0]
    image = pod.spec.containers[0].image
    try:
        kubelet.behaviours.mark(image.split("@", 1)[1], "errors")
        statuses = [pods.get(pod).status for _ in range(40)]
        assert statuses.count(500) == 2
        assert statuses.count(200) == 38

        kubelet.behaviours.mark(image.split("@", 1)[1], "slow")
        began = time.monotonic()
        assert pods.get(pod).status == 200
        assert 1.9 <= time.monotonic() - began < 5
    finally:
        kubelet.behaviours.clear_all()


def test_a_crash_looping_container_answers_nothing_and_a_deleted_pod_stops(pods: Pods) -> None:
    from kubernetes.client import AppsV1Api, CoreV1Api

    kubelet = pods.plane.kubelet
    assert kubelet is not None
    digest = "sha256:" + uuid.uuid4().hex * 2
    kubelet.images.mark(digest, CRASH_LOOP)
    container = {"name": "web", "image": f"{REPO}@{digest}"}
    with pods.plane.admin_client() as client:
        AppsV1Api(client).patch_namespaced_deployment(
            "blue-deployment",
            pods.namespace,
            {"spec": {"template": {"spec": {"containers": [container]}}}},
        )
    crashing = eventually(
        "a crash-looping pod with an address",
        lambda: [
            p
            for p in pods.of("blue")
            if p.spec.containers[0].image.endswith(digest) and p.status.pod_ip
        ],
        30,
    )[0]
    assert ipaddress.ip_address(crashing.status.pod_ip) in POD_NETWORK
    with pytest.raises(ConnectionRefusedError):
        pods.get(crashing)

    serving = pods.ready("green")[0]
    assert pods.get(serving).status == 200
    with pods.plane.admin_client() as client:
        CoreV1Api(client).delete_namespaced_pod(serving.metadata.name, pods.namespace)

    def refused() -> bool:
        try:
            pods.get(serving)
        except ConnectionRefusedError:
            return True
        except (ConnectionResetError, http.client.RemoteDisconnected):
            return False  # closing while it answered: the next try finds it closed
        return False

    eventually("the deleted pod's address refusing connections", refused, 30)
