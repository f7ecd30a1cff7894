"""pytest plugin: the real control plane, one per test session, a fresh namespace per test.

``control_plane`` starts etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and the simulated kubelet once for the session (a few seconds
once ``make kube`` has built them) and stops them all at its end. Each test
that asks for ``kube_namespace`` gets a namespace of its own holding the
emulator's seed (both Deployments rolled out, the Services, ``canary-env``)
and the shipped Role and RoleBinding, so tests never see each other's objects
and the product's identity has exactly the Role's rights in it.

A real clock cannot be sped up, so the seed's Deployments get a short
progress deadline (``KUBE_PROGRESS_DEADLINE``) and the kubelet's own delays run
``KUBE_KUBELET_SPEED`` times faster than Kubernetes'.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from local.kube.controlplane import ControlPlane
from local.kube.kubelet import KubeletOptions

KUBE_PROGRESS_DEADLINE = 12
"""Seconds, for the seed's Deployments in test namespaces (600 in the shipped seed)."""
KUBE_KUBELET_SPEED = 5.0
"""The crash-loop back-off then runs 2 s, 4 s, 8 s... instead of 10 s, 20 s, 40 s..."""

_namespaces = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kube: needs the real control plane (built by `make kube`)")


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """The real control plane, started once for the session, stopped at its end."""
    plane = ControlPlane(
        seed=False,
        kubelet_options=KubeletOptions(speed=KUBE_KUBELET_SPEED),
        progress=lambda line: None,
    )
    with plane:
        yield plane


@pytest.fixture
def kube_namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A namespace of this test's own, seeded and with the shipped RBAC, deleted afterwards."""
    name = f"t{os.getpid()}-{next(_namespaces)}"
    control_plane.seed_namespace(name, progress_deadline_seconds=KUBE_PROGRESS_DEADLINE)
    yield name
    from kubernetes.client import CoreV1Api

    # Images a test marked to misbehave stay its own: the kubelet serves the session.
    if control_plane.kubelet is not None:
        control_plane.kubelet.images.clear_all()

    with control_plane.admin_client() as client:
        # The namespace controller removes its objects in the background.
        CoreV1Api(client).delete_namespace(name, _preload_content=False)
