"""The official ``kubernetes`` client on the emulator and on the real control plane.

A test that takes ``kube`` runs twice (``tests.backends``): on the emulator
(instant clock) and on the real control plane, in a seeded namespace of its
own, as an administrator. What the emulator claims about Kubernetes is checked
against Kubernetes that way; where the two disagree, the emulator is wrong.
Everything that waits for a controller goes through ``kube.eventually``: at
once on the emulator, within a deadline on the real control plane.

A seeded namespace costs the real control plane a second (both Deployments
roll out), so the cheaper fixtures are used where they do: ``seeded`` is the
seed shared by the tests of a module that only read it (or whose writes are
refused); ``scratch`` an empty namespace of the test's own, for tests that make
the objects they need (``configmap``, ``service``).

``emulated`` and ``stepped`` run on the emulator alone: they reach what only it
has (injected faults, its request log, a clock a test moves).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client

from local.cluster import Clock, ClusterEmulator
from tests.backends import BACKENDS, Backend, emulator_backend

T = TypeVar("T")

NAMESPACE = "wp-platform"
"""The seed's namespace on the emulator (the real control plane gives each test its own)."""
REPO = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud"
BLUE_IMAGE = f"{REPO}@sha256:1274e8bc4d963536e88265781170e72a2939caae25127cd9d400ab124393f946"
GREEN_IMAGE = f"{REPO}@sha256:216c0204fa1e71f93603c0d5087ef16d6b2ba5bce9084874bf9b2aebcddebc77"
KUBECTL = Path(sys.executable).with_name("kubectl")
# kubectl caches discovery under $HOME; each test run gets its own throwaway home.
_HOME = tempfile.TemporaryDirectory(prefix="kubectl-home-")
CANARY_ENV = json.dumps({"selector": "blue", "image": BLUE_IMAGE}, separators=(",", ":"))
"""``canaryEnv`` as the seed stores it."""


def image(char: str) -> str:
    """A repo@sha256 image with a recognisable digest."""
    return f"{REPO}@sha256:{char * 64}"


@dataclass
class Kube:
    """The typed APIs the product uses, bound to one backend and one namespace."""

    backend: Backend
    api: client.ApiClient
    core: client.CoreV1Api
    apps: client.AppsV1Api
    batch: client.BatchV1Api
    namespace: str
    emulator_: ClusterEmulator | None = field(default=None, repr=False)

    @property
    def real(self) -> bool:
        """Whether this is the real control plane."""
        return self.backend.real

    @property
    def emulator(self) -> ClusterEmulator:
        """The emulator behind this client (only for emulator-only tests)."""
        assert self.emulator_ is not None, "this test runs on the emulator alone"
        return self.emulator_

    def eventually(self, what: str, check: Callable[[], T | None], seconds: float = 30.0) -> T:
        """``check()`` once truthy: at once on the emulator, within ``seconds`` on kube."""
        return self.backend.eventually(what, check, seconds)

    def stored(self, resource: str, name: str) -> dict[str, Any]:
        """An object of the namespace as stored (plain JSON), which must exist."""
        return self.backend.stored(resource, name)

    def get(self, resource: str, name: str) -> dict[str, Any] | None:
        """An object of the namespace as stored (plain JSON), or None."""
        return self.backend.get(resource, name)

    def mutate(self, resource: str, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Change an object as another writer would (a read, then a write)."""
        self.backend.mutate(resource, name, change)

    def path(self, template: str) -> str:
        """``template`` with ``{ns}`` replaced by this namespace."""
        return template.format(ns=self.namespace)

    def raw(
        self,
        method: str,
        path: str,
        body: object = None,
        content_type: str = "application/json",
        timeout: float = 10.0,
        accept: str = "application/json",
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request with this client's credentials: (status, headers, body), errors too.

        ``body`` is sent as JSON unless it is ``bytes``.
        """
        data = None if body is None else body if isinstance(body, bytes) else json.dumps(body)
        response = self.api.rest_client.pool_manager.request(
            method,
            self.api.configuration.host + self.path(path),
            body=data,
            headers={"Content-Type": content_type, "Accept": accept},
            timeout=timeout,
            retries=False,
        )
        return response.status, dict(response.headers), response.data

    def json(self, method: str, path: str, body: object = None, **options: Any) -> Any:
        """``raw`` for a request that must succeed: the answer parsed."""
        status, _, data = self.raw(method, path, body, **options)
        assert 200 <= status < 300, f"{method} {path}: {status} {data[:500]!r}"
        return json.loads(data)

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl in this namespace, as an administrator."""
        result = subprocess.run(
            kubectl_argv(self.backend, self.namespace, *args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=kubectl_env(),
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result


def kubectl_argv(backend: Backend, namespace: str, *args: str) -> list[str]:
    """kubectl's command line for ``backend``: its admin kubeconfig, or the emulator's URL."""
    target = f"--kubeconfig={backend.kubeconfig}" if backend.real else f"--server={backend.url}"
    return [str(KUBECTL), target, "-n", namespace, *args]


def kubectl_env() -> dict[str, str]:
    """A bare environment: no user kubeconfig, a throwaway cache home."""
    return {"PATH": "/usr/bin:/bin", "HOME": _HOME.name, "KUBECONFIG": "/dev/null"}


def kubectl(
    url: str, *args: str, check: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run kubectl against the emulator at ``url``, in the seeded namespace."""
    result = subprocess.run(
        [str(KUBECTL), f"--server={url}", "-n", NAMESPACE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=kubectl_env(),
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
    return result


def _connect(backend: Backend, api: client.ApiClient, namespace: str) -> Kube:
    emulator = backend.extras.get("emulator")
    return Kube(
        backend,
        api,
        client.CoreV1Api(api),
        client.AppsV1Api(api),
        client.BatchV1Api(api),
        namespace,
        emulator,
    )


def _emulator_client(emulator: ClusterEmulator) -> client.ApiClient:
    return client.ApiClient(client.Configuration(host=emulator.url))


def connect(emulator: ClusterEmulator) -> Kube:
    """Typed API clients for ``emulator``, in its seeded namespace."""
    return _connect(emulator_backend(emulator), _emulator_client(emulator), NAMESPACE)


@pytest.fixture
def kube(backend: Backend) -> Iterator[Kube]:
    """The default seed on this run's backend, driven as an administrator."""
    if not backend.real:
        kube = connect(backend.extras["emulator"])
        yield kube
        kube.api.close()
        return
    with backend.extras["plane"].admin_client() as api:
        yield _connect(backend, api, backend.namespace)


@pytest.fixture
def emulated(cluster_emulator: ClusterEmulator) -> Iterator[Kube]:
    """The default seed on the emulator alone (for its faults, request log, control paths)."""
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


_scratch_names = itertools.count(1)


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request: pytest.FixtureRequest) -> Iterator[Kube]:
    """The default seed on each backend, shared by the tests of a module.

    For tests that only read it, or whose writes the server refuses: one seeded
    namespace per module instead of one per test on the real control plane.
    """
    if request.param == "emulator":
        with ClusterEmulator(seed="default", clock=Clock.instant()) as emulator:
            kube = connect(emulator)
            yield kube
            kube.api.close()
        return
    from local.kube.testing import KUBE_PROGRESS_DEADLINE
    from tests.backends import kube_backend

    plane = request.getfixturevalue("control_plane")
    name = f"m{os.getpid()}-{next(_scratch_names)}"
    plane.seed_namespace(name, progress_deadline_seconds=KUBE_PROGRESS_DEADLINE)
    with plane.admin_client() as api:
        yield _connect(kube_backend(plane, name, api), api, name)
        client.CoreV1Api(api).delete_namespace(name, _preload_content=False)


@pytest.fixture(params=BACKENDS)
def scratch(request: pytest.FixtureRequest) -> Iterator[Kube]:
    """An empty namespace of the test's own on each backend, for objects it makes itself.

    Cheaper than ``kube`` on the real control plane: nothing is seeded or waited for.
    """
    if request.param == "emulator":
        with ClusterEmulator(seed=None, clock=Clock.instant()) as emulator:
            emulator.apply(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
            )
            kube = connect(emulator)
            yield kube
            kube.api.close()
        return
    from tests.backends import kube_backend

    plane = request.getfixturevalue("control_plane")
    name = f"s{os.getpid()}-{next(_scratch_names)}"
    with plane.admin_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": name}})
        kube = _connect(kube_backend(plane, name, api), api, name)
        # What controllers put in every new namespace is there before the test starts,
        # as it is on the emulator: a watch from a test's list must not see it arrive.
        kube.eventually(
            "the namespace's own ConfigMap and ServiceAccount",
            lambda: (
                kube.get("configmaps", "kube-root-ca.crt")
                and kube.raw("GET", "/api/v1/namespaces/{ns}/serviceaccounts/default")[0] == 200
            ),
        )
        yield kube
        # The namespace controller removes its objects in the background.
        core.delete_namespace(name, _preload_content=False)


def configmap(kube: Kube, name: str = "canary-env", **data: str) -> dict[str, Any]:
    """Create a ConfigMap of ``data`` (by default the seed's ``canaryEnv``) in the namespace."""
    body = {"metadata": {"name": name}, "data": data or {"canaryEnv": CANARY_ENV}}
    created: dict[str, Any] = kube.json("POST", "/api/v1/namespaces/{ns}/configmaps", body)
    return created


def service(kube: Kube, name: str = "canary-service", app: str = "blue") -> dict[str, Any]:
    """Create a Service selecting ``app=<app>`` on port 80 → 8080 in the namespace."""
    body = {
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    created: dict[str, Any] = kube.json("POST", "/api/v1/namespaces/{ns}/services", body)
    return created


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
    """One raw HTTP request to the emulator (status, headers, body), errors included."""
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
