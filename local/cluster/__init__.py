"""A Kubernetes cluster emulator: real HTTP, the REST API, controllers, faults, a clock."""

from local.cluster.clock import Clock
from local.cluster.emulator import ClusterEmulator
from local.cluster.server import RecordedRequest

__all__ = ["Clock", "ClusterEmulator", "RecordedRequest"]
