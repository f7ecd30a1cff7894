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
from dataclasses import dataclass, field, replace
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
    _rest: Callable[[str, str, Any], Any]
    url: str = ""
    """The API server's URL, as the product's client sees it."""
    kubeconfig: str = ""
    """For kubectl: an administrator's kubeconfig (kube), empty for the emulator."""
    server: str = ""
    """For kubectl against the emulator: its URL."""
    speed: float = 1.0
    """How many times faster than Kubernetes its pods' timing runs (``paced_backend``)."""
    admin_client: Any = None
    """An ``ApiClient`` with an administrator's rights (what a controller runs with)."""
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

    def delete(self, resource: str, name: str) -> None:
        """Delete an object of the namespace, as an administrator would."""
        self._rest("DELETE", f"{_PATHS[resource].format(ns=self.namespace)}/{name}", None)

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


def _rest(client: Any) -> Callable[[str, str, Any], Any]:
    """One JSON request through an ``ApiClient`` (its credentials), the body as parsed JSON."""

    def call(method: str, path: str, body: Any) -> Any:
        response = client.call_api(
            path,
            method,
            body=body,
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            auth_settings=["BearerToken"],
            _preload_content=False,
        )
        raw = response[0] if isinstance(response, tuple) else response
        return json.loads(raw.data or b"null")

    return call


def emulator_backend(emulator: Any, namespace: str = "wp-platform") -> Backend:
    """The backend over a running ``ClusterEmulator``."""
    from bluegreen.adapters.kube.client import api_client_for

    settings = Settings(kube_api_url=emulator.url, namespace=namespace)
    return Backend(
        name="emulator",
        settings=settings,
        namespace=namespace,
        _get=lambda resource, name: emulator.get(resource, namespace, name),
        _list=lambda resource: emulator.list(resource, namespace),
        _mutate=lambda resource, name, change: emulator.mutate(resource, namespace, name, change),
        mark_image=emulator.faults.break_image,
        _rest=_rest(api_client_for(settings)),
        admin_client=api_client_for(settings),
        url=emulator.url,
        server=emulator.url,
        extras={"emulator": emulator},
    )


def kube_backend(plane: Any, namespace: str, client: Any) -> Backend:
    """The backend over the real control plane, in ``namespace``, with an admin ``client``."""
    from kubernetes.client.exceptions import ApiException

    call = _rest(client)

    def get(resource: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = call(
                "GET", f"{_PATHS[resource].format(ns=namespace)}/{name}", None
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def list_(resource: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = call("GET", _PATHS[resource].format(ns=namespace), None)[
            "items"
        ]
        return items

    def mutate(resource: str, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        path = f"{_PATHS[resource].format(ns=namespace)}/{name}"
        for _ in range(20):
            changed = copy.deepcopy(call("GET", path, None))
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
        _rest=call,
        admin_client=client,
        url=str(plane.url),
        kubeconfig=str(plane.admin_kubeconfig),
        extras={"plane": plane},
    )


BACKENDS = ["emulator", pytest.param("kube", marks=pytest.mark.kube)]
"""The parameters of ``backend``: the emulator, then the real control plane."""

EMULATOR_ONLY = ("emulator", "cluster_emulator", "request_log", "scripted_api")
"""Fixtures only the emulator has: a test that takes one runs on the emulator alone."""


def parametrize_backends(metafunc: pytest.Metafunc) -> None:
    """``pytest_generate_tests``: a test taking ``backend`` runs on each backend it can.

    On the emulator alone when it also takes an emulator-only fixture or is marked
    ``emulator_only``; else on both.
    """
    if "backend" not in metafunc.fixturenames:
        return
    if any(
        "backend" in str(marker.args[0])
        for marker in metafunc.definition.iter_markers("parametrize")
    ):
        return
    only = metafunc.definition.get_closest_marker("emulator_only") is not None or any(
        name in metafunc.fixturenames for name in EMULATOR_ONLY
    )
    metafunc.parametrize("backend", ["emulator"] if only else BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """The default seed on the backend of this run (see ``parametrize_backends``).

    On the emulator it is the test's ``cluster_emulator`` (instant clock), so a test
    that also takes the emulator sees the same one.
    """
    if getattr(request, "param", "emulator") == "emulator":
        yield emulator_backend(request.getfixturevalue("cluster_emulator"))
        return
    plane = request.getfixturevalue("control_plane")
    namespace = request.getfixturevalue("kube_namespace")
    with plane.admin_client() as client:
        yield kube_backend(plane, namespace, client)


@pytest.fixture(params=BACKENDS)
def paced_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each backend with its cluster running ``KUBE_KUBELET_SPEED`` times faster than Kubernetes.

    The emulator on a clock of that speed, the real control plane's kubelet at it: a
    10 s back-off lasts 10 / speed real seconds on both, so timings compare. A test
    that only counts cluster seconds may run the emulator faster with
    ``@pytest.mark.emulator_speed(N)``; ``backend.speed`` says which.
    """
    from local.kube.testing import KUBE_KUBELET_SPEED

    if request.param == "emulator":
        from local.cluster import Clock, ClusterEmulator

        marker = request.node.get_closest_marker("emulator_speed")
        speed = float(marker.args[0]) if marker else KUBE_KUBELET_SPEED
        clock = Clock.scaled(speed)
        rollout = 2.5 * KUBE_KUBELET_SPEED / speed
        with ClusterEmulator(seed="default", clock=clock, rollout_seconds=rollout) as emulator:
            yield replace(emulator_backend(emulator), speed=speed)
        return
    plane = request.getfixturevalue("control_plane")
    namespace = request.getfixturevalue("kube_namespace")
    with plane.admin_client() as client:
        yield replace(kube_backend(plane, namespace, client), speed=KUBE_KUBELET_SPEED)
