"""The real data plane on the real control plane: fixtures shared by this package's tests.

The programs are built, when one is missing, once the tests are collected and
before any runs (``local/kube/build-dataplane.sh``, as ``make dataplane`` does;
about 20 minutes cold, then cached): nothing is skipped for want of a binary. The pod
network, the kubelet serving pods in it, Traefik and Prometheus live as long as
this package's tests run, then the session's kubelet goes back to serving nothing.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.kube.controlplane import ControlPlane, free_port
from local.kube.dataplane import (
    GatewayProxy,
    PodNetwork,
    Prometheus,
    ensure_dataplane,
    inside_pod_network,
)
from local.kube.kubelet import POD_NETWORK

_real_connect = socket.socket.connect


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build what is missing before any test runs: a cold build (about 20 minutes) would
    not fit a test's timeout, and nothing here may be skipped for want of a binary."""
    here = Path(__file__).parent
    if any(Path(str(item.path)).is_relative_to(here) for item in session.items):
        ensure_dataplane()


@pytest.fixture(autouse=True)
def _pod_addresses_inside_the_pod_network(
    _block_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suite allows loopback only; a pod address is as local, from inside the pod network.

    That namespace has no interface but its loopback, so nothing sent from it can
    leave the machine; from anywhere else a pod address stays blocked.
    """
    guarded = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if inside_pod_network() and isinstance(address, tuple):
            try:
                local = ipaddress.ip_address(address[0]) in POD_NETWORK
            except ValueError:
                local = False
            if local:
                return _real_connect(self, address)
        return guarded(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture(scope="package")
def pod_network(control_plane: ControlPlane) -> Iterator[PodNetwork]:
    """A network namespace of pod addresses; the session's kubelet serves pods in it meanwhile."""
    kubelet = control_plane.kubelet
    assert kubelet is not None
    with PodNetwork() as network:
        kubelet.serve_pods(network)
        try:
            yield network
        finally:
            kubelet.serve_pods(None)
            kubelet.behaviours.clear_all()


@pytest.fixture(scope="package")
def gateway_proxy(control_plane: ControlPlane, pod_network: PodNetwork) -> Iterator[GatewayProxy]:
    """Traefik in the pod network (built first when missing, as every launcher does)."""
    with GatewayProxy(control_plane, pod_network) as proxy:
        yield proxy


@pytest.fixture(scope="package")
def prometheus(gateway_proxy: GatewayProxy, pod_network: PodNetwork) -> Iterator[Prometheus]:
    """Prometheus in the pod network, scraping the proxy every second."""
    with Prometheus([gateway_proxy.metrics_target], pod_network) as server:
        yield server


@pytest.fixture(scope="package")
def moto_url() -> Iterator[str]:
    """moto's server on loopback, as the local stack runs it."""
    from moto.server import ThreadedMotoServer

    werkzeug = logging.getLogger("werkzeug")
    level = werkzeug.level
    werkzeug.setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug.setLevel(level)
