"""What a rollout judgement needs to know of the pods of a colour's new revision.

Plain data, read by the cluster adapter from the pods' status: which containers
wait and why, how often they restarted and how their last run ended, and
whether the scheduler could place the pod at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ContainerState:
    """One container of a pod, as its ``containerStatuses`` entry tells it."""

    name: str
    ready: bool = False
    restart_count: int = 0
    running: bool = False
    waiting_reason: str = ""
    waiting_message: str = ""
    last_exit_code: int | None = None
    """Exit code of the previous run (``lastState.terminated``), or of this one if it ended."""
    last_reason: str = ""
    """``Error``, ``OOMKilled``, ``Completed``... of that run."""


@dataclass(frozen=True)
class PodState:
    """A pod of the new revision: when it was made, whether it serves, its containers."""

    name: str
    created_at: datetime
    ready: bool = False
    phase: str = "Pending"
    containers: tuple[ContainerState, ...] = ()
    unschedulable_since: datetime | None = None
    """When the scheduler first said no node can take it (``PodScheduled`` False)."""
    unschedulable_message: str = ""


@dataclass(frozen=True)
class PodWarning:
    """A Warning Event about a pod (``FailedMount``, ``BackOff``...), newest last."""

    pod: str
    reason: str
    message: str
