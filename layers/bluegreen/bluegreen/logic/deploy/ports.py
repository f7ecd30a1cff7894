"""What the deploy steps touch, and the pace of the flow's Wait loops."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bluegreen.config import Settings
from bluegreen.domain.ports import Cluster, Ledger, Notifier
from bluegreen.logic.health import HealthProbes

Json = dict[str, Any]
"""A step's payload and answer: the state the flow carries, as JSON."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class FlowTiming:
    """Poll intervals and bounds of the flow's Wait loops, in seconds.

    Bounds count the seconds the flow asked to wait, so they hold whatever the
    Wait states really took (tests shorten them); the lock wait also counts the
    seconds since the execution started, which is what ``LockTimeout`` reports.
    """

    lock_wait_first: int = 5
    lock_wait_max: int = 60
    rollout_poll_first: int = 2
    rollout_poll_max: int = 15
    rollout_margin: int = 60
    hook_poll_first: int = 2
    hook_poll_max: int = 15

    @staticmethod
    def backoff(first: int, cap: int, attempt: int) -> int:
        """Wait before poll number ``attempt`` (0-based): doubling from ``first``, capped."""
        return int(min(first * 2 ** min(attempt, 16), cap))


@dataclass(frozen=True)
class DeployPorts:
    """Everything the steps touch, handed in by the handler (or a test)."""

    settings: Settings
    ledger: Ledger
    cluster: Cluster
    notifier: Notifier
    probes: HealthProbes
    now: Callable[[], datetime] = _utc_now
    timing: FlowTiming = field(default_factory=FlowTiming)
