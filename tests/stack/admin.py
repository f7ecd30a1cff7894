"""An administrator's view of a local stack's cluster, independent of the product's code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes import client as k8s

from local.stack import LocalStack


@contextmanager
def admin_client(stack: LocalStack) -> Iterator[k8s.ApiClient]:
    """An administrator's client of the stack's cluster: the emulator or kube."""
    assert stack.state is not None
    if stack.control_plane is not None:
        with stack.control_plane.admin_client() as api:
            yield api
        return
    configuration = k8s.Configuration()
    configuration.host = stack.state.cluster_url
    with k8s.ApiClient(configuration) as api:
        yield api
