"""The two backends a cluster-facing test runs on: the emulator and the real control plane.

A test that takes ``backend`` runs twice (``[emulator]``, ``[kube]``). It reaches
the cluster the way the product does, through ``backend.settings`` (the
emulator's URL, or the product's kubeconfig: a member of the shipped
RoleBinding's group in a namespace of the test's own), and looks behind the
product's back, as an administrator, through ``get``/``list``/``mutate``.
``mark_image`` marks an image to misbehave by the conventions both share
(``local.cluster.containers``). The emulator runs on an instant clock, the
real control plane in real time, so anything that waits for the cluster goes
through ``eventually``.

A test that needs what only the emulator can do (injected faults, request
counts, a scripted clock) takes ``emulator`` instead and runs once.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from bluegreen.config import Settings

T = TypeVar("T")

_PATHS = {
    "configmaps": "/api/v1/namespaces/{ns}/configmaps",
    "services": "/api/v1/namespaces/{ns}/services",
    "pods": "/api/v1/namespaces/{ns}/pods",
    "events": "/api/v1/namespaces/{ns}/events",
    "deployments": "/apis/apps/v1/namespaces/{ns}/deployments",
    "replicasets": "/apis/apps/v1/namespaces/{ns}/replicasets",
    "jobs": "/apis/batch/v1/namespaces/{ns}/jobs",
    "ingresses": "/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses",
    "httproutes": "/apis/gateway.networking.k8s.io/v1/namespaces/{ns}/httproutes",
}


@dataclass
class Backend:
    """One backend as a test sees it; see the module."""

    name: str
    settings: Settings
    namespace: str
    _get: Callable[[str, str], dict[str, Any] | None]
    _list: Callable[[str], list[dict[str, Any]]]
    _mutate: Callable[[str, str, Callable[[dict[str, Any]], None]], None]
    mark_image: Callable[[str, str], None]
    kubeconfig: str = ""
    """For kubectl: an administrator's kubeconfig (kube), empty for the emulator."""
    server: str = ""
    """For kubectl against the emulator: its URL."""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def real(self) -> bool:
        """Whether this is the real control plane (time passes by itself there)."""
        return self.name == "kube"

    def get(self, resource: str, name: str) -> dict[str, Any] | None:
        """An object of the namespace as stored, or None."""
        return self._get(resource, name)

    def stored(self, resource: str, name: str) -> dict[str, Any]:
        """An object of the namespace as stored, which must exist."""
        found = self._get(resource, name)
        assert found is not None, f"{resource}/{name} does not exist"
        return found

    def list(self, resource: str) -> list[dict[str, Any]]:
        """The namespace's objects of a kind."""
        return self._list(resource)

    def mutate(self, resource: str, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Change an object behind the product's back, as another writer would."""
        self._mutate(resource, name, change)

    def eventually(self, what: str, check: Callable[[], T | None], seconds: float = 30.0) -> T:
        """``check()`` once it is truthy: at once on the emulator, within ``seconds`` on kube."""
        deadline = time.monotonic() + (seconds if self.real else 0.0)
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what}: not so after {seconds if self.real else 0}s")
            time.sleep(0.1)


def emulator_backend(emulator: Any, namespace: str = "wp-platform") -> Backend:
    """The backend over a running ``ClusterEmulator``."""
    return Backend(
        name="emulator",
        settings=Settings(kube_api_url=emulator.url, namespace=namespace),
        namespace=namespace,
        _get=lambda resource, name: emulator.get(resource, namespace, name),
        _list=lambda resource: emulator.list(resource, namespace),
        _mutate=lambda resource, name, change: emulator.mutate(resource, namespace, name, change),
        mark_image=emulator.faults.break_image,
        server=emulator.url,
        extras={"emulator": emulator},
    )


def kube_backend(plane: Any, namespace: str, client: Any) -> Backend:
    """The backend over the real control plane, in ``namespace``, with an admin ``client``."""
    from kubernetes.client.exceptions import ApiException

    def call(method: str, path: str, body: Any = None) -> Any:
        response = client.call_api(
            path,
            method,
            body=body,
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
        # The client returns the raw response itself when asked not to preload it.
        raw = response[0] if isinstance(response, tuple) else response
        return json.loads(raw.data or b"null")

    def get(resource: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = call("GET", f"{_PATHS[resource].format(ns=namespace)}/{name}")
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def list_(resource: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = call("GET", _PATHS[resource].format(ns=namespace))["items"]
        return items

    def mutate(resource: str, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        path = f"{_PATHS[resource].format(ns=namespace)}/{name}"
        for _ in range(20):
            changed = copy.deepcopy(call("GET", path))
            change(changed)
            try:
                call("PUT", path, changed)
            except ApiException as exc:
                if exc.status == 409:
                    continue
                raise
            return
        raise AssertionError(f"{resource}/{name} kept changing")

    assert plane.kubelet is not None
    return Backend(
        name="kube",
        settings=Settings(kubeconfig=str(plane.product_kubeconfig), namespace=namespace),
        namespace=namespace,
        _get=get,
        _list=list_,
        _mutate=mutate,
        mark_image=plane.kubelet.images.mark,
        kubeconfig=str(plane.admin_kubeconfig),
        extras={"plane": plane},
    )


BACKENDS = ["emulator", pytest.param("kube", marks=pytest.mark.kube)]
"""``@pytest.fixture(params=BACKENDS)``: the emulator, then the real control plane."""


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The default seed on each backend in turn (instant emulator; real control plane)."""
    if request.param == "emulator":
        from local.cluster import Clock, ClusterEmulator

        with ClusterEmulator(seed="default", clock=Clock.instant()) as emulator:
            yield emulator_backend(emulator)
        return
    plane = request.getfixturevalue("control_plane")
    namespace = request.getfixturevalue("kube_namespace")
    with plane.admin_client() as client:
        yield kube_backend(plane, namespace, client)
