"""Clients of the official ``kubernetes`` package pointed at the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubernetes import client

from local.cluster import Clock, ClusterEmulator

NAMESPACE = "wp-platform"
REPO = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud"
BLUE_IMAGE = f"{REPO}@sha256:1274e8bc4d963536e88265781170e72a2939caae25127cd9d400ab124393f946"
GREEN_IMAGE = f"{REPO}@sha256:216c0204fa1e71f93603c0d5087ef16d6b2ba5bce9084874bf9b2aebcddebc77"


def image(char: str) -> str:
    """A repo@sha256 image with a recognisable digest."""
    return f"{REPO}@sha256:{char * 64}"


@dataclass
class Kube:
    """The typed APIs the product uses, bound to one emulator."""

    emulator: ClusterEmulator
    api: client.ApiClient
    core: client.CoreV1Api
    apps: client.AppsV1Api
    batch: client.BatchV1Api


def connect(emulator: ClusterEmulator) -> Kube:
    """Typed API clients for ``emulator``."""
    api = client.ApiClient(client.Configuration(host=emulator.url))
    return Kube(emulator, api, client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api))


@pytest.fixture
def kube(cluster_emulator: ClusterEmulator) -> Iterator[Kube]:
    """Clients against the default seed with an instant clock."""
    kube = connect(cluster_emulator)
    yield kube
    kube.api.close()


@pytest.fixture
def stepped() -> Iterator[Kube]:
    """Clients against an emulator whose clock only moves when the test says so."""
    with ClusterEmulator(clock=Clock.stepped(), rollout_seconds=20, job_seconds=5) as emulator:
        kube = connect(emulator)
        yield kube
        kube.api.close()


def job_manifest(name: str, command: list[str], **spec: object) -> dict[str, object]:
    """A hook-style Job running ``command`` once."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            **spec,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "hook", "image": "wordpress:cli", "command": command}],
                }
            },
        },
    }


def http(
    emulator: ClusterEmulator,
    method: str,
    path: str,
    body: object = None,
    content_type: str = "application/json",
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request (status, headers, body), errors included."""
    import json
    import urllib.error
    import urllib.request

    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    request = urllib.request.Request(
        emulator.url + path, data=data, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
