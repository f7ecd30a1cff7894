"""What a kubelet does with a pod, for both backends of the local cluster.

When a pod's container starts, gets ready, crashes and restarts, or ends; the
status the kubelet reports for it at any moment; the Events it records; and
what ``kubectl logs`` shows. The emulator's controllers call these for every
pod they run (``local.cluster.controllers``), and the simulated kubelet in
front of the real control plane calls the same functions (``local.kube.kubelet``),
so that the two backends cannot disagree about a pod. How an image behaves is
decided in ``local.cluster.containers``, how a Job's command ends in
``local.cluster.commands``.

Everything here is a pure function of the pod, its ``PodRun`` (the plan made
when the kubelet first saw it) and the time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local.cluster.commands import Outcome, run_container
from local.cluster.containers import (
    CRASHES,
    INJECTED_FAILURE_LOG,
    NEVER_STARTS,
    PULL_SECONDS,
    SLOW_START,
    SLOW_START_SECONDS,
    pull_failure,
    restart_backoff,
    serving_log,
    waiting,
)
from local.cluster.timefmt import timestamp

NODE_CAPACITY = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}
"""What the one node of either backend offers; requests beyond it cannot be scheduled."""

_SUFFIXES = {
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}


def quantity(value: object) -> float:
    """A Kubernetes quantity (``500m``, ``2``, ``512Mi``, ``1G``) as a number."""
    text = str(value).strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _SUFFIXES[suffix]
    return float(text)


def insufficient(pod_spec: dict[str, Any]) -> list[str]:
    """The resources a pod requests more of than the node has (the scheduler's verdict)."""
    wanted: dict[str, float] = {}
    for container in pod_spec.get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        for name, amount in requests.items():
            try:
                wanted[name] = wanted.get(name, 0.0) + quantity(amount)
            except ValueError:
                continue
    return sorted(
        name
        for name, amount in wanted.items()
        if name in NODE_CAPACITY and amount > quantity(NODE_CAPACITY[name])
    )


def unschedulable_message(missing: list[str]) -> str:
    """What the scheduler says of a pod no node can take (one node, not enough of it)."""
    reasons = ", ".join(f"1 Insufficient {name}" for name in missing)
    return (
        f"0/1 nodes are available: {reasons}. preemption: 0/1 nodes are available: "
        "1 Preemption is not helpful for scheduling."
    )


@dataclass
class PodRun:
    """What the kubelet knows about one pod: when things happen to it and how it ends."""

    created: float
    start_at: float
    ready_at: float | None  # None: never ready (broken image, hanging)
    finish_at: float | None  # None: runs until deleted (a server) or hangs (a Job)
    fault: str | None
    outcomes: dict[str, Outcome]
    restart_policy: str


@dataclass(frozen=True)
class KubeletClock:
    """How the kubelet's durations map to the clock it runs on.

    ``duration`` turns Kubernetes seconds (a back-off, a Job's run) into seconds
    of that clock (the emulator's scaled clock shortens them); ``instant``: the
    clock does not move on its own, so back-offs never elapse.
    """

    duration: Callable[[float], float]
    instant: bool = False


@dataclass(frozen=True)
class KubeletEvent:
    """An Event the kubelet records about a pod (source component ``kubelet``)."""

    reason: str
    message: str
    warning: bool = False


def command_of(pod_spec: dict[str, Any]) -> str:
    """The pod's containers' command lines, joined: what a Job fault matches against."""
    return " ".join(
        " ".join(map(str, (c.get("command") or []) + (c.get("args") or [])))
        for c in pod_spec.get("containers") or []
    )


def plan_pod(
    pod: dict[str, Any],
    now: float,
    *,
    clock: KubeletClock,
    image_mode: Callable[[str], str | None],
    job: bool,
    job_fault: str | None = None,
    job_seconds: float = 2.0,
    ready_seconds: float = 1.0,
) -> PodRun:
    """The plan for a pod the kubelet has just been given.

    ``job``: the pod runs to completion (a Job's pod); its containers' commands
    are interpreted (``run_container``) and it ends after ``job_seconds`` plus
    whatever the commands sleep. ``job_fault`` (``fail`` or ``hang``) overrides
    how it ends. Otherwise the pod serves, and gets ready ``ready_seconds``
    after it was created, unless its image is marked (``image_mode``).
    """
    spec = pod["spec"]
    containers = spec.get("containers") or []
    fault = next((f for f in (image_mode(c.get("image", "")) for c in containers) if f), None)
    slow = fault == SLOW_START
    if slow:
        fault = None  # a slow start is healthy: it only takes longer to get ready
    start = now + clock.duration(0.0)
    if job:
        outcomes = {c["name"]: run_container(spec, c) for c in containers}
        run_for = clock.duration(
            job_seconds + max((o.sleep for o in outcomes.values()), default=0.0)
        )
        finish: float | None = start + run_for
        if job_fault == "fail":
            for outcome in outcomes.values():
                outcome.exit_code = outcome.exit_code or 1
                # The command never ran for real: its success message would contradict
                # the exit code the hook's caller reports.
                outcome.log = INJECTED_FAILURE_LOG
        if job_fault == "hang" or fault:
            finish = None
        return PodRun(now, start, None, finish, fault, outcomes, spec.get("restartPolicy", "Never"))
    delay = clock.duration(ready_seconds)
    ready = None if fault else now + delay + (clock.duration(SLOW_START_SECONDS) if slow else 0.0)
    return PodRun(now, now + delay / 2, ready, None, fault, {}, "Always")


def pod_status(
    pod: dict[str, Any], run: PodRun, now: float, *, clock: KubeletClock, host_ip: str
) -> dict[str, Any]:
    """The status a kubelet reports for ``pod`` at ``now``: phase, conditions, containers."""
    spec = pod["spec"]
    uid = pod["metadata"]["uid"]
    created = timestamp(run.created)
    started = timestamp(run.start_at)
    status: dict[str, Any] = {"phase": "Pending"}
    containers = spec.get("containers") or []

    def cid(name: str, attempt: int = 0) -> str:
        digest = hashlib.sha256(f"{uid}/{name}/{attempt}".encode()).hexdigest()
        return f"containerd://{digest}"

    def image_id(image: str) -> str:
        if "@" in image:
            return image
        digest = hashlib.sha256(image.encode()).hexdigest()
        return f"{image.rsplit(':', 1)[0]}@sha256:{digest}"

    statuses = []
    ready_all = True
    phase = "Running"
    finished = run.finish_at is not None and now >= run.finish_at
    for container in containers:
        name = container["name"]
        image = container.get("image", "")
        entry: dict[str, Any] = {
            "name": name,
            "image": image,
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "started": False,
        }
        if now < run.start_at:
            entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
            phase = "Pending"
            ready_all = False
        elif run.fault in NEVER_STARTS:
            first_try = not clock.instant and now - run.start_at < clock.duration(PULL_SECONDS)
            reason, message = waiting(
                run.fault, image, pod["metadata"].get("namespace", ""), first_try=first_try
            )
            entry["state"] = {"waiting": {"reason": reason, "message": message}}
            phase = "Pending"
            ready_all = False
        elif run.fault in CRASHES:
            crash = CRASHES[run.fault]
            elapsed = now - run.start_at
            restarts, spent = 1, 0.0
            backoff = restart_backoff(restarts)
            while not clock.instant and spent + clock.duration(backoff) <= elapsed:
                spent += clock.duration(backoff)
                restarts += 1
                backoff = restart_backoff(restarts)
            entry.update(
                imageID=image_id(image),
                containerID=cid(name, restarts - 1),
                restartCount=restarts,
            )
            entry["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {int(backoff)}s restarting failed container={name} "
                    f"pod={pod['metadata']['name']}_{pod['metadata']['namespace']}"
                    f"({uid})",
                }
            }
            entry["lastState"] = {
                "terminated": {
                    "exitCode": crash.exit_code,
                    "reason": crash.reason,
                    "startedAt": started,
                    "finishedAt": timestamp(run.start_at + spent),
                    "containerID": cid(name, restarts - 1),
                }
            }
            ready_all = False
        elif finished:
            outcome = run.outcomes.get(name, Outcome())
            code = outcome.exit_code
            entry.update(imageID=image_id(image), containerID=cid(name))
            entry["state"] = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": timestamp(run.finish_at or now),
                    "containerID": cid(name),
                }
            }
            ready_all = False
            phase = (
                "Succeeded" if all(o.exit_code == 0 for o in run.outcomes.values()) else "Failed"
            )
        else:
            is_ready = run.ready_at is not None and now >= run.ready_at
            entry.update(
                imageID=image_id(image),
                containerID=cid(name),
                started=True,
                ready=is_ready if run.outcomes == {} else True,
            )
            entry["state"] = {"running": {"startedAt": started}}
            if run.outcomes:
                entry["ready"] = True
            ready_all = ready_all and entry["ready"]
        entry.setdefault("lastState", {})
        statuses.append(entry)
    if run.fault in NEVER_STARTS:
        phase = "Pending"
    status["phase"] = phase
    ready_reason = (
        None
        if ready_all
        else ("PodCompleted" if phase in {"Succeeded", "Failed"} else "ContainersNotReady")
    )
    ready_since = timestamp(run.ready_at) if run.ready_at and ready_all else started

    def cond(kind: str, ok: bool, since: str, reason: str | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": kind,
            "status": "True" if ok else "False",
            "lastProbeTime": None,
            "lastTransitionTime": since,
        }
        if reason and not ok:
            entry["reason"] = reason
            if reason == "ContainersNotReady":
                names = ", ".join(c["name"] for c in containers)
                entry["message"] = f"containers with unready status: [{names}]"
        return entry

    running_started = now >= run.start_at and phase != "Pending"
    status["conditions"] = [
        cond("PodReadyToStartContainers", now >= run.start_at and not finished, started),
        cond("Initialized", True, created),
        cond("Ready", ready_all, ready_since, ready_reason),
        cond("ContainersReady", ready_all, ready_since, ready_reason),
        cond("PodScheduled", True, created),
    ]
    status["hostIP"] = host_ip
    status["hostIPs"] = [{"ip": host_ip}]
    if running_started or run.fault in CRASHES or finished:
        address = f"10.0.{int(uid[:2], 16) % 250}.{int(uid[2:4], 16) % 250 + 2}"
        status["podIP"] = address
        status["podIPs"] = [{"ip": address}]
    status["startTime"] = created
    status["containerStatuses"] = statuses
    status["qosClass"] = "BestEffort"
    return status


def kubelet_events(
    pod: dict[str, Any], old: dict[str, Any], new: dict[str, Any]
) -> list[KubeletEvent]:
    """The Events a kubelet records when a pod's status moves from ``old`` to ``new``."""
    said: list[KubeletEvent] = []

    def state(status: dict[str, Any]) -> tuple[str, str]:
        containers = status.get("containerStatuses") or [{}]
        current = containers[0].get("state") or {}
        waiting = current.get("waiting", {}).get("reason", "")
        return (next(iter(current), ""), waiting)

    before, after = state(old), state(new)
    if before == after:
        return said
    container = pod["spec"]["containers"][0]
    name, image = container["name"], container.get("image", "")
    meta = pod["metadata"]
    reason = after[1]
    message = str(
        ((new.get("containerStatuses") or [{}])[0].get("state") or {})
        .get("waiting", {})
        .get("message", "")
    )
    if reason == "ErrImagePull":
        said.append(KubeletEvent("Pulling", f'Pulling image "{image}"'))
        said.append(
            KubeletEvent("Failed", f'Failed to pull image "{image}": {message}', warning=True)
        )
        said.append(KubeletEvent("Failed", "Error: ErrImagePull", warning=True))
        return said
    if reason == "ImagePullBackOff":
        if before[1] != "ErrImagePull":
            said.append(KubeletEvent("Pulling", f'Pulling image "{image}"'))
            said.append(
                KubeletEvent(
                    "Failed", f'Failed to pull image "{image}": {pull_failure(image)}', warning=True
                )
            )
        said.append(KubeletEvent("BackOff", f'Back-off pulling image "{image}"'))
        said.append(KubeletEvent("Failed", "Error: ImagePullBackOff", warning=True))
        return said
    if reason == "InvalidImageName":
        said.append(KubeletEvent("InspectFailed", message, warning=True))
        said.append(KubeletEvent("Failed", "Error: InvalidImageName", warning=True))
        return said
    if reason == "CreateContainerConfigError":
        said.append(KubeletEvent("Pulled", f'Container image "{image}" already present on machine'))
        said.append(KubeletEvent("Failed", f"Error: {message}", warning=True))
        return said
    if (before[1] in {"", "ContainerCreating"} and after[0] in {"running", "terminated"}) or (
        after[1] == "CrashLoopBackOff" and before[1] != "CrashLoopBackOff"
    ):
        said.append(KubeletEvent("Pulled", f'Container image "{image}" already present on machine'))
        said.append(KubeletEvent("Created", f"Created container: {name}"))
        said.append(KubeletEvent("Started", f"Started container {name}"))
    if after[1] == "CrashLoopBackOff" and before[1] != "CrashLoopBackOff":
        said.append(
            KubeletEvent(
                "BackOff",
                f"Back-off restarting failed container {name} in pod "
                f"{meta['name']}_{meta['namespace']}({meta['uid']})",
                warning=True,
            )
        )
    return said


def pod_log(run: PodRun | None, container: str, now: float) -> str:
    """What the container printed so far (the kubelet's log for ``kubectl logs``)."""
    if run is None:
        return ""
    if run.fault in CRASHES:
        return CRASHES[run.fault].log
    if run.outcomes:
        outcome = run.outcomes.get(container, Outcome())
        if run.finish_at is not None and now >= run.finish_at:
            return outcome.log
        # While running, the output before the last command is visible already.
        return outcome.log if run.finish_at is None else ""
    if run.ready_at is not None and now >= run.ready_at:
        return serving_log(timestamp(run.start_at))
    return ""


def pod_finished(pod: dict[str, Any]) -> bool:
    """Whether the pod's containers have all ended (a followed log stream then ends)."""
    return pod.get("status", {}).get("phase") in {"Succeeded", "Failed"}


def log_refusal(pod: dict[str, Any], container: str, *, previous: bool) -> str | None:
    """Why a kubelet refuses to serve ``container``'s log (a 400), or None when it serves it."""
    name = pod["metadata"]["name"]
    state: dict[str, Any] = next(
        (
            s.get("state", {})
            for s in pod.get("status", {}).get("containerStatuses") or []
            if s.get("name") == container
        ),
        {},
    )
    waiting_reason = state.get("waiting", {}).get("reason")
    never_started = {
        "ContainerCreating",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
    }
    if waiting_reason in never_started or not state:
        why = (
            "trying and failing to pull image"
            if waiting_reason == "ImagePullBackOff"
            else waiting_reason or "PodInitializing"
        )
        return f'container "{container}" in pod "{name}" is waiting to start: {why}'
    if previous and waiting_reason != "CrashLoopBackOff":
        return f'previous terminated container "{container}" in pod "{name}" not found'
    return None


def render_log(
    text: str,
    *,
    tail_lines: int | None = None,
    timestamps: bool = False,
    limit_bytes: int | None = None,
    now: float = 0.0,
) -> bytes:
    """A log as the kubelet sends it: the last ``tail_lines``, stamped, cut at ``limit_bytes``."""
    lines = text.splitlines(keepends=True)
    if tail_lines is not None:
        lines = lines[-tail_lines:] if tail_lines else []
    if timestamps:
        moment = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(now))
        lines = [f"{moment} {line}" for line in lines]
    data = "".join(lines).encode()
    if limit_bytes is not None:
        data = data[:limit_bytes]
    return data
