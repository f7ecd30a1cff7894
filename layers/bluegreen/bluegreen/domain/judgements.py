"""Rules over the JSON Kubernetes reports: how a rollout stands, what a pod is doing,
why a Job failed.

Pure functions of the objects as the API server sends them (``kubectl get -o json``),
no I/O: the cluster adapter reads, these judge. ``judge_rollout`` follows
``kubectl rollout status`` so that what the product calls complete or stalled is what
a person at a terminal would see.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bluegreen.domain.models import Colour, RolloutState
from bluegreen.domain.pods import ContainerState, PodState


def judge_rollout(colour: Colour, deployment: Mapping[str, Any], image: str) -> RolloutState:
    """A Deployment's rollout as ``kubectl rollout status`` judges it, in the same order.

    Not yet observed (``observedGeneration < generation``) -> progressing; the
    Progressing condition's reason ``ProgressDeadlineExceeded`` -> stalled, with
    the condition's message; fewer updated replicas than desired, old replicas
    still running, or updated replicas not all available -> progressing;
    otherwise complete.
    """
    metadata = deployment.get("metadata", {})
    spec = deployment.get("spec", {})
    status = deployment.get("status") or {}
    name = metadata.get("name", "")
    desired = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    generation = int(metadata.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    progressing: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {}
    )
    complete = stalled = False
    if observed < generation:
        message = f'Waiting for deployment "{name}" spec update to be observed'
    elif progressing.get("reason") == "ProgressDeadlineExceeded":
        stalled = True
        message = f'deployment "{name}" exceeded its progress deadline'
        if progressing.get("message"):
            message += f": {progressing['message']}"
    elif updated < desired:
        message = (
            f'Waiting for deployment "{name}" rollout to finish: {updated} out of '
            f"{desired} new replicas have been updated"
        )
    elif total > updated:
        message = (
            f'Waiting for deployment "{name}" rollout to finish: {total - updated} old '
            "replicas are pending termination"
        )
    elif available < updated:
        message = (
            f'Waiting for deployment "{name}" rollout to finish: {available} of '
            f"{updated} updated replicas are available"
        )
    else:
        complete = True
        message = f'deployment "{name}" successfully rolled out'
    return RolloutState(
        colour=colour,
        image=image,
        desired=desired,
        updated=updated,
        ready=int(status.get("readyReplicas") or 0),
        available=available,
        generation=generation,
        observed_generation=observed,
        complete=complete,
        stalled=stalled,
        message=message,
        progress_deadline_seconds=int(spec.get("progressDeadlineSeconds") or 600),
    )


def pod_state(pod: Mapping[str, Any]) -> PodState:
    """What the rollout judgement needs of a pod, from its JSON."""
    metadata, status = pod.get("metadata", {}), pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled") or {}
    unschedulable = scheduled.get("status") == "False" and scheduled.get("reason") == (
        "Unschedulable"
    )
    containers = []
    for entry in status.get("containerStatuses") or []:
        state, last = entry.get("state") or {}, entry.get("lastState") or {}
        ended = last.get("terminated") or state.get("terminated") or {}
        waiting = state.get("waiting") or {}
        containers.append(
            ContainerState(
                name=str(entry.get("name", "")),
                ready=bool(entry.get("ready")),
                restart_count=int(entry.get("restartCount") or 0),
                running="running" in state,
                waiting_reason=str(waiting.get("reason") or ""),
                waiting_message=one_line(str(waiting.get("message") or "")),
                last_exit_code=int(ended["exitCode"]) if "exitCode" in ended else None,
                last_reason=str(ended.get("reason") or ""),
            )
        )
    return PodState(
        name=str(metadata.get("name", "")),
        created_at=_when(metadata.get("creationTimestamp")),
        ready=(conditions.get("Ready") or {}).get("status") == "True",
        phase=str(status.get("phase") or "Pending"),
        containers=tuple(containers),
        unschedulable_since=_when(scheduled.get("lastTransitionTime")) if unschedulable else None,
        unschedulable_message=one_line(str(scheduled.get("message") or ""))
        if unschedulable
        else "",
    )


def _when(stamp: object) -> datetime:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


def job_failure_reason(condition: Mapping[str, Any], pod: Mapping[str, Any] | None) -> str:
    """Why a Job failed, in words: the Job's condition, and how its container ended."""
    parts = [
        ": ".join(p for p in (condition.get("reason"), condition.get("message")) if p)
        or "the Job failed"
    ]
    for status in (pod or {}).get("status", {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            ended = f"container {status.get('name')} exited with code {terminated.get('exitCode')}"
            if terminated.get("reason"):
                ended += f" ({terminated['reason']})"
            if terminated.get("message"):
                ended += f": {terminated['message']}"
            parts.append(ended)
    return "; ".join(parts)


def one_line(text: str) -> str:
    """One line, without the client's object reprs, short enough for a log or a Cause."""
    return " ".join(text.split())[:500]
