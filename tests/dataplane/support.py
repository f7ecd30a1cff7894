"""Helpers of the data-plane tests: a seeded namespace, polling with a deadline."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from local.kube.controlplane import ControlPlane
from local.kube.testing import KUBE_PROGRESS_DEADLINE

T = TypeVar("T")
_names = itertools.count(1)


@contextmanager
def seeded_namespace(plane: ControlPlane, prefix: str) -> Iterator[str]:
    """A namespace with the seed (both colours rolled out) and the shipped RBAC, deleted after."""
    from kubernetes.client import CoreV1Api

    name = f"{prefix}{os.getpid()}-{next(_names)}"
    plane.seed_namespace(name, progress_deadline_seconds=KUBE_PROGRESS_DEADLINE)
    try:
        yield name
    finally:
        with plane.admin_client() as client:
            CoreV1Api(client).delete_namespace(name, _preload_content=False)
