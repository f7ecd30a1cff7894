"""What every router is built with (as Argo Rollouts hands its providers a config).

A router reaches the cluster only through these: the request layer (timeouts, error
mapping, budgets), the canaryEnv store, the colours' Deployments (a switch writes the
new canary's image into canaryEnv) and the application's names.
"""

from __future__ import annotations

from dataclasses import dataclass

from bluegreen.adapters.kube.canary_env import CanaryEnvStore
from bluegreen.adapters.kube.requests import KubeRequests
from bluegreen.adapters.kube.workloads import Workloads
from bluegreen.config import Settings


@dataclass(frozen=True)
class RouterParts:
    """The collaborators a router is built with."""

    settings: Settings
    requests: KubeRequests
    canary_env: CanaryEnvStore
    workloads: Workloads
