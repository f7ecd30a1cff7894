"""Knowing a broken rollout in seconds: the pods of the new revision, judged before the deadline.

A Deployment reports ``ProgressDeadlineExceeded`` only when its progress
deadline (600 s by default) has passed. Its pods say much earlier that the new
digest will not run: a container that keeps crashing (``CrashLoopBackOff``, a
non-zero exit, ``OOMKilled``) after ``FailFast.after_restarts`` restarts; one
that cannot even be created (``ImagePullBackOff``, ``ErrImagePull``,
``InvalidImageName``, ``CreateContainerConfigError``, ``CreateContainerError``)
for longer than ``FailFast.after_seconds``; a pod no node can take for longer
than ``FailFast.unschedulable_seconds``. ``early_failure`` finds the first of
these; the deadline stays the last resort. A pod that is only slow to get ready
(running, no restarts) is never failed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bluegreen.domain.pods import ContainerState, PodState

CANNOT_START = (
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
)
"""Waiting reasons of a container that was never created: waited out for ``after_seconds``."""

LOG_LINES = 10
LOG_BYTES = 2048
"""How much of a failed container's previous log goes into the Cause."""


@dataclass(frozen=True)
class FailFast:
    """When the pods of a new revision count as failed before the progress deadline."""

    after_restarts: int = 2
    after_seconds: int = 60
    unschedulable_seconds: int = 180


@dataclass(frozen=True)
class PodFailure:
    """Why the new revision cannot run, from one pod: what a person needs to see first."""

    pod: str
    container: str | None
    reason: str
    detail: str
    restarts: int = 0
    exit_code: int | None = None
    crashed: bool = False
    """The container ran and ended: its previous log says why."""


def _crash_reason(container: ContainerState) -> str:
    if container.last_reason == "OOMKilled":
        return "OOMKilled"
    return container.waiting_reason or container.last_reason or "Error"


def _crashing(container: ContainerState, policy: FailFast) -> bool:
    if container.restart_count < policy.after_restarts:
        return False
    return (
        container.waiting_reason == "CrashLoopBackOff"
        or container.last_reason == "OOMKilled"
        or (container.last_exit_code is not None and container.last_exit_code != 0)
    )


def _cannot_start(pod: PodState) -> ContainerState | None:
    return next((c for c in pod.containers if c.waiting_reason in CANNOT_START), None)


def waiting_since(
    pods: Sequence[PodState], previous: Mapping[str, int], waited: int
) -> dict[str, int]:
    """When (in the flow's seconds) each pod was first seen unable to start or unschedulable.

    The flow's own count of the seconds it waited, not the cluster's timestamps: it is
    what its Wait states slept, on whatever clock the cluster runs (the local stack
    shortens both alike), and it needs no clock agreement with the API server.
    """
    since: dict[str, int] = {}
    for pod in pods:
        if _cannot_start(pod) is not None or pod.unschedulable_since is not None:
            since[pod.name] = int(previous.get(pod.name, waited))
    return since


def early_failure(
    pods: Sequence[PodState],
    policy: FailFast = FailFast(),
    *,
    since: Mapping[str, int] | None = None,
    waited: int = 0,
) -> PodFailure | None:
    """The first pod of the new revision that will not run, or None while none is known bad.

    ``since`` (from ``waiting_since``) and ``waited`` say how long a pod has been
    seen unable to start or to be scheduled.
    """
    seen = since or {}
    for pod in sorted(pods, key=lambda p: (p.created_at, p.name)):
        stuck = waited - seen.get(pod.name, waited)
        for container in pod.containers:
            if _crashing(container, policy):
                reason = _crash_reason(container)
                code = container.last_exit_code
                exited = f", last exit code {code}" if code is not None else ""
                return PodFailure(
                    pod=pod.name,
                    container=container.name,
                    reason=reason,
                    detail=(
                        f"{reason} after {container.restart_count} restarts{exited}"
                        + (f" ({container.last_reason})" if container.last_reason else "")
                    ),
                    restarts=container.restart_count,
                    exit_code=code,
                    crashed=True,
                )
            if container.waiting_reason in CANNOT_START and stuck > policy.after_seconds:
                message = f": {container.waiting_message}" if container.waiting_message else ""
                return PodFailure(
                    pod=pod.name,
                    container=container.name,
                    reason=container.waiting_reason,
                    detail=f"{container.waiting_reason} for {stuck}s{message}",
                    restarts=container.restart_count,
                )
        if pod.unschedulable_since is not None and stuck > policy.unschedulable_seconds:
            message = f": {pod.unschedulable_message}" if pod.unschedulable_message else ""
            return PodFailure(
                pod=pod.name,
                container=None,
                reason="Unschedulable",
                detail=f"Unschedulable for {stuck}s{message}",
            )
    return None


def next_threshold_in(
    pods: Sequence[PodState],
    policy: FailFast = FailFast(),
    *,
    since: Mapping[str, int] | None = None,
    waited: int = 0,
) -> int | None:
    """Seconds until a waiting pod crosses its threshold (when to look again), if any."""
    seen = since or {}
    due: list[int] = []
    for pod in pods:
        stuck = waited - seen.get(pod.name, waited)
        if _cannot_start(pod) is not None:
            due.append(policy.after_seconds - stuck + 1)
        elif pod.unschedulable_since is not None:
            due.append(policy.unschedulable_seconds - stuck + 1)
    positive = [d for d in due if d > 0]
    return min(positive) if positive else None


def starting(pods: Sequence[PodState]) -> bool:
    """Whether some pod is still being set up or failing to start (poll soon, not late)."""
    for pod in pods:
        if pod.unschedulable_since is not None or pod.phase == "Pending":
            return True
        for container in pod.containers:
            if container.waiting_reason or container.restart_count:
                return True
    return False


def cause(what: str, failure: PodFailure, log_tail: str = "") -> str:
    """The Cause of ``RolloutFailed`` for an early failure: the pod, its container, the log."""
    where = f"pod {failure.pod}" + (f", container {failure.container}" if failure.container else "")
    lines = [line for line in log_tail.splitlines() if line.strip()][-LOG_LINES:]
    said = f"; previous log: {' | '.join(lines)}" if lines else ""
    return f"{what}: {where}: {failure.detail}{said}"
