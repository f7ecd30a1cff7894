"""What every router is built with (as Argo Rollouts hands its providers a config).

A router reaches the cluster only through these: the request layer (timeouts, error
mapping, budgets), the canaryEnv store, the colours' Deployments (a switch writes the
new canary's image into canaryEnv), the application's names, how long a move waits for
the data plane to apply it, and, for the ``alb`` router, the load balancers' view.
"""

from __future__ import annotations

from dataclasses import dataclass

from bluegreen.adapters.kube.canary_env import CanaryEnvStore
from bluegreen.adapters.kube.requests import KubeRequests
from bluegreen.adapters.kube.workloads import Workloads
from bluegreen.config import Settings
from bluegreen.domain.ports import LoadBalancers


@dataclass(frozen=True)
class RouterParts:
    """The collaborators a router is built with."""

    settings: Settings
    requests: KubeRequests
    canary_env: CanaryEnvStore
    workloads: Workloads
    confirm_seconds: float
    """How long a move waits for the data plane to apply it (0: it is not waited for)."""
    load_balancers: LoadBalancers | None = None
    """ELBv2 as the ``alb`` router reads it (None: no load balancer can be read)."""
