"""The hooks: a Job per hook, built from the colour's pod template, polled until it ends.

The Map over the hooks is the state machine's (``MaxConcurrency`` 1): each
iteration starts one Job and polls it. A hook that fails with ``onFailure``
``rollback`` during a deploy raises ``HookFailed``; during a rollback (``phase``
``rollback``) every hook runs and only its log is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bluegreen.domain.errors import HookFailed
from bluegreen.domain.models import Colour, Hook, Role
from bluegreen.logic import roles
from bluegreen.logic.deploy.ports import DeployPorts, FlowTiming, Json
from bluegreen.logic.lease import attempt_of, renew_lease


def hooks_json(hooks: tuple[Hook, ...]) -> list[Json]:
    """The hooks as the flow carries them into its Map."""
    return [
        {
            "name": h.name,
            "command": list(h.command),
            "onFailure": h.on_failure,
            "timeoutSeconds": h.timeout_seconds,
        }
        for h in hooks
    ]


def _hook_from_json(raw: Mapping[str, Any]) -> Hook:
    return Hook(
        name=str(raw["name"]),
        command=tuple(str(part) for part in raw["command"]),
        on_failure=str(raw.get("onFailure", "rollback")),
        timeout_seconds=int(raw.get("timeoutSeconds", 300)),
    )


def _hook_key(phase: str, hook: Hook) -> str:
    return hook.name if phase == "deploy" else f"{phase}:{hook.name}"


def _run_json(
    hook: Hook,
    job: str,
    *,
    finished: bool,
    succeeded: bool,
    reason: str,
    waited: int,
    polls: int,
    timing: FlowTiming,
) -> Json:
    return {
        "hook": hook.name,
        "job": job,
        "finished": finished,
        "succeeded": succeeded,
        "reason": reason,
        "waitSeconds": timing.backoff(timing.hook_poll_first, timing.hook_poll_max, polls),
        "waited": waited,
        "polls": polls,
    }


def _judge_hook(event: Json, ports: DeployPorts, job: str, waited: int, polls: int) -> Json:
    deployment, phase = event["deployment"], str(event.get("phase", "deploy"))
    renew_lease(
        ports.ledger, str(deployment["id"]), ports.settings.lock_lease_seconds, attempt_of(event)
    )
    hook = _hook_from_json(event["hook"])
    colour = Colour.parse(deployment["colour"])
    run = ports.cluster.hook_run(job)
    timed_out = not run.finished and waited >= hook.timeout_seconds
    if not run.finished and not timed_out:
        return _run_json(
            hook,
            job,
            finished=False,
            succeeded=False,
            reason="",
            waited=waited,
            polls=polls,
            timing=ports.timing,
        )
    reason = run.reason if run.finished else f"timed out after {hook.timeout_seconds}s"
    _keep_log(
        ports, str(deployment["id"]), _hook_key(phase, hook), run.log_tail, reason, run.succeeded
    )
    if not run.succeeded and hook.on_failure == "rollback" and phase == "deploy":
        lines = [line.strip() for line in run.log_tail.strip().splitlines() if line.strip()]
        # wp-cli and most tools print "Error: ..." first: that line says why, not the last.
        telling = [line for line in lines if line.lower().startswith(("error", "fatal"))]
        tail = telling[:2] or lines[-3:]
        raise HookFailed(
            f"hook {hook.name!r} (Job {job}, command {' '.join(hook.command)!r}) on {colour} "
            f"failed: {reason or 'Job failed'}"
            + (f"; log tail: {' | '.join(tail)}" if tail else "")
        )
    return _run_json(
        hook,
        job,
        finished=True,
        succeeded=run.succeeded,
        reason=reason,
        waited=waited,
        polls=polls,
        timing=ports.timing,
    )


def _keep_log(
    ports: DeployPorts, deployment_id: str, key: str, tail: str, reason: str, succeeded: bool
) -> None:
    # Hooks run one at a time (MaxConcurrency 1), so read-merge-write cannot lose a log.
    current = ports.ledger.deployment(deployment_id)
    logs = dict(current.hook_logs) if current else {}
    status = "succeeded" if succeeded else f"failed: {reason}"
    logs[key] = f"[{status}]\n{tail}".strip()
    ports.ledger.update_deployment(deployment_id, hook_logs=logs)


def start_hook(event: Json, ports: DeployPorts) -> Json:
    """Create the hook's Job from the colour's pod template and take a first reading."""
    deployment, phase = event["deployment"], str(event.get("phase", "deploy"))
    hook = _hook_from_json(event["hook"])
    colour = Colour.parse(deployment["colour"])
    roles.check_may_touch(ports.cluster, f"hook {hook.name!r}", Role(deployment["service"]), colour)
    job = ports.cluster.start_hook(colour, hook, _run_id(str(deployment["id"]), phase))
    return _judge_hook(event, ports, job, waited=0, polls=0)


def _run_id(deployment_id: str, phase: str) -> str:
    return deployment_id if phase == "deploy" else f"{deployment_id}-{phase}"


def check_hook(event: Json, ports: DeployPorts) -> Json:
    """Poll a hook's Job; ``HookFailed`` when it failed or timed out and must roll back."""
    previous = event["run"]
    waited = int(previous.get("waited", 0)) + int(previous.get("waitSeconds", 0))
    return _judge_hook(event, ports, str(previous["job"]), waited, int(previous["polls"]) + 1)
