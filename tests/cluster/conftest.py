"""Fixtures of the cluster adapter's tests: both backends, and a scripted API server.

A test that takes ``cluster`` or ``backend`` runs on the emulator and on the real
control plane (``tests.backends``); one that takes ``emulator`` (faults, request
counts, changes between two requests) runs on the emulator alone. The scripted
server answers whatever a test tells it to (a 401, a 403, a Status body) and
records the headers it received, for what neither backend does on demand.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from bluegreen.adapters.kube.client import api_client_for
from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.config import Settings
from tests.backends import Backend

if TYPE_CHECKING:
    from local.cluster import ClusterEmulator

NAMESPACE = "wp-platform"
TIMEOUT = (1.0, 1.0)
"""Short enough that a hung request fails the test fast, long enough for two busy cores."""


@pytest.fixture
def emulator(cluster_emulator: ClusterEmulator) -> ClusterEmulator:
    """The default seed (namespace wp-platform, blue canary, green production), instant time.

    A test that takes it runs on the emulator alone (``tests.backends``).
    """
    return cluster_emulator


@pytest.fixture
def settings(backend: Backend) -> Settings:
    """Settings of the default stack, pointed at this run's backend as the product."""
    return backend.settings


@pytest.fixture
def make_cluster(settings: Settings) -> Callable[..., KubernetesCluster]:
    """A fresh adapter (its own ApiClient) on the emulator, with quick backoff for tests."""

    def make(target: Settings | None = None, **options: Any) -> KubernetesCluster:
        chosen = target or settings
        options.setdefault("timeout", TIMEOUT)
        options.setdefault("backoff_seconds", 0.002)
        return KubernetesCluster(chosen, api_client_for(chosen), **options)

    return make


@pytest.fixture
def cluster(make_cluster: Callable[..., KubernetesCluster]) -> KubernetesCluster:
    """The adapter under test, on the emulator."""
    return make_cluster()


class RequestLog:
    """The emulator's requests from a point on: what the adapter sent, for counting."""

    def __init__(self, emu: ClusterEmulator) -> None:
        self._emu = emu
        self._start = len(emu.requests)

    def all(self) -> list[tuple[str, str]]:
        return [
            (str(r.method), str(r.path).split("?")[0]) for r in self._emu.requests[self._start :]
        ]

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.all() if m not in {"GET", "HEAD"}]


@pytest.fixture
def request_log(emulator: ClusterEmulator) -> Callable[[], RequestLog]:
    """``request_log()`` starts counting the emulator's requests from now."""
    return lambda: RequestLog(emulator)


def intercept(
    cluster: KubernetesCluster,
    after: Callable[[str, str], bool],
    action: Callable[[], object],
    times: int = 1,
) -> list[tuple[str, str]]:
    """Run ``action`` right after the adapter's requests that ``after(method, url)`` selects.

    This is how a test changes an object between the adapter's read and its write,
    as another writer would. Returns the list of requests seen, for assertions.
    """
    rest = cluster.api_client.rest_client
    original = rest.request
    seen: list[tuple[str, str]] = []
    remaining = [times]

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        response = original(method, url, *args, **kwargs)
        seen.append((method, url))
        if remaining[0] > 0 and after(method, url):
            remaining[0] -= 1
            action()
        return response

    rest.request = request
    return seen


# a scripted API server ------------------------------------------------------------------


@dataclass
class ScriptedApi:
    """An HTTP server on 127.0.0.1 answering every request with ``status`` and ``body``."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def scripted_api() -> Iterator[ScriptedApi]:
    """A server to script answers the emulator never gives (401, 403)."""
    script = ScriptedApi()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            script.headers.append({k.lower(): v for k, v in self.headers.items()})
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            payload = json.dumps(script.body).encode()
            self.send_response(script.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()


def stored(emulator: ClusterEmulator, resource: str, name: str) -> dict[str, Any]:
    """The emulator's copy of an object of the namespace, which must exist."""
    found = emulator.get(resource, NAMESPACE, name)
    assert found is not None, f"{resource}/{name} does not exist"
    return found


def configmap(canary_env: str | None, resource_version: str = "7") -> dict[str, Any]:
    """A ConfigMap body as the API server sends it, with ``canaryEnv`` if given."""
    data = {} if canary_env is None else {"canaryEnv": canary_env}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "canary-env",
            "namespace": NAMESPACE,
            "resourceVersion": resource_version,
        },
        "data": data,
    }


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A Kubernetes ``Status`` failure body."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


# what the switch did, instant by instant ----------------------------------------------

Roles = tuple[str | None, str | None, str | None]
"""(canaryEnv.selector, the canary Service's app, the production Service's app)."""


def _roles_of(
    configmap: dict[str, Any], canary: dict[str, Any], production: dict[str, Any]
) -> Roles:
    try:
        selector = json.loads(configmap["data"]["canaryEnv"]).get("selector")
    except (KeyError, TypeError, ValueError, AttributeError):
        selector = None

    def app(service: dict[str, Any]) -> str | None:
        value = (service.get("spec", {}).get("selector") or {}).get("app")
        return str(value) if value is not None else None

    return selector, app(canary), app(production)


def roles_now(emulator: ClusterEmulator) -> Roles:
    """The roles as stored now."""
    return _roles_of(
        stored(emulator, "configmaps", "canary-env"),
        stored(emulator, "services", "canary-service"),
        stored(emulator, "services", "production-service"),
    )


def role_history(emulator: ClusterEmulator, since: int) -> list[Roles]:
    """The roles after every change of the ConfigMap or a Service since revision ``since``.

    Read from the emulator's change log (one global revision counter, like etcd), so
    the states come in the order the server applied the writes, whoever wrote them.
    The first entry is the state at ``since``.
    """
    keys = [
        ("configmaps", "canary-env"),
        ("services", "canary-service"),
        ("services", "production-service"),
    ]
    current = {key: stored(emulator, *key) for key in keys}
    with emulator.store.lock:
        changes = [
            change
            for change in emulator.store.changes_since(since)
            if (change.resource_key, change.object["metadata"]["name"]) in current
        ]
    for key in keys:
        first = next(
            (c for c in changes if (c.resource_key, c.object["metadata"]["name"]) == key), None
        )
        if first is not None and first.previous is not None:
            current[key] = first.previous
    states = [_state(current)]
    for change in changes:
        current[(change.resource_key, change.object["metadata"]["name"])] = change.object
        states.append(_state(current))
    return states


def _state(objects: dict[tuple[str, str], dict[str, Any]]) -> Roles:
    return _roles_of(
        objects[("configmaps", "canary-env")],
        objects[("services", "canary-service")],
        objects[("services", "production-service")],
    )


def production_moves_only_where_canary_env_says(history: list[Roles]) -> list[str]:
    """Every instant at which the production Service moved to a colour canaryEnv did not
    call production then (empty: invariant held). Staying put while canaryEnv moves is allowed."""
    other = {"blue": "green", "green": "blue"}
    problems = []
    for before, after in itertools.pairwise(history):
        if after[2] != before[2]:
            allowed = other.get(after[0] or "")
            if after[2] != allowed:
                problems.append(f"{before} -> {after}")
    return problems
