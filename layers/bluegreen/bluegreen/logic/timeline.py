"""A deployment's run as a timeline of the deploy flow's phases.

``GET /deployments/{id}`` says where a deployment stands; the timeline says how
it got there, read from the execution's history: the lock, the apply, the
rollout (how often it was read and what the last reading said), each hook with
the log tail the ledger keeps, the bake, the health judgement, and the rollback
with its own rollout and hooks when there was one. Choice states only route,
so they are left out; a state this module does not name (a flow newer than
this code) still shows, under its own name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bluegreen.domain.errors import NotFound
from bluegreen.domain.flow_events import FlowEvent, StepStatus
from bluegreen.logic.history import HistoryPorts, deployment_status

PHASES: Mapping[str, str] = {
    "Begin": "lock",
    "WaitForLock": "lock",
    "WaitForRollout": "rollout",
    "CheckRollout": "rollout",
    "RunHooks": "hooks",
    "Bake": "bake",
    "Finish": "health",
    "RollBack": "rollback",
    "WaitForRollbackRollout": "rollback",
    "CheckRollbackRollout": "rollback",
    "RerunHooks": "rollback-hooks",
    "ConcludeRollback": "verdict",
    "ReleaseAndFail": "verdict",
    "RollbackFailed": "verdict",
    "BeginPromotion": "lock",
    "PromotionNotStarted": "verdict",
    "ShiftTraffic": "traffic",
    "WaitForAnalysis": "analysis",
    "Analyse": "analysis",
    "WaitForPerson": "gate",
    "WaitForPersonWithHeartbeat": "gate",
    "PassGate": "gate",
    "BackOut": "back-out",
    "PromotionStuck": "verdict",
}
"""The phase each state of ``statemachine/deploy.asl.json`` belongs to."""

TITLES: Mapping[str, str] = {
    "lock": "Lock",
    "apply": "Apply",
    "rollout": "Rollout",
    "hooks": "Hooks",
    "bake": "Bake",
    "health": "Health and analysis",
    "rollback": "Rollback",
    "rollback-hooks": "Hooks after the rollback",
    "verdict": "Verdict",
    "traffic": "Traffic",
    "analysis": "Analysis",
    "gate": "Waiting for a person",
    "back-out": "Back out",
}
END_TITLES: Mapping[str, str] = {
    "Deployed": "Deployed",
    "RolledBack": "Rolled back as requested",
    "Superseded": "Superseded",
    "DeploymentFailed": "Failed",
    "NoHealthyDigest": "Failed: no healthy digest",
    "Promoted": "Promoted",
    "PromotionFailed": "Failed",
}

RUNNING: StepStatus = "running"
WAITING: StepStatus = "waiting"
SUCCEEDED: StepStatus = "succeeded"
FAILED: StepStatus = "failed"
_FAILURES = frozenset(
    {
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionStartFailed",
        "LambdaFunctionScheduleFailed",
        "TaskFailed",
        "TaskTimedOut",
        "TaskStartFailed",
        "TaskSubmitFailed",
    }
)
_RESULTS = frozenset({"LambdaFunctionSucceeded", "TaskSucceeded"})
_NESTING = ("Map", "Parallel")
_READINGS = ("CheckRollout", "CheckRollbackRollout")
_ENDED = {"ExecutionAborted": "aborted", "ExecutionTimedOut": "timed out"}


@dataclass(frozen=True)
class HookStep:
    """One hook's run in a hooks phase: its Job, how it ended, the log tail kept."""

    name: str
    job: str
    status: StepStatus
    reason: str
    log_tail: str


@dataclass(frozen=True)
class Step:
    """One phase of the run: ``status`` is running, waiting, succeeded or failed."""

    phase: str
    title: str
    status: StepStatus
    started_at: datetime
    ended_at: datetime | None
    detail: str = ""
    error: str = ""
    cause: str = ""
    polls: int = 0
    retries: int = 0
    hooks: tuple[HookStep, ...] = ()


@dataclass(frozen=True)
class Timeline:
    """The phases of one deployment's execution, oldest first, and how it ended."""

    deployment_id: str
    execution_arn: str
    status: str
    steps: tuple[Step, ...]
    error: str
    cause: str
    truncated: bool


def deployment_timeline(ports: HistoryPorts, deployment_id: str) -> Timeline:
    """The timeline of a deployment's execution, with its hooks' log tails from the ledger.

    A bad id is ``InvalidInput``; an unknown deployment, or one without an
    execution (a canary switch), is ``NotFound``.
    """
    view = deployment_status(ports, deployment_id)
    if view.execution is None:
        raise NotFound(
            f"deployment {deployment_id!r} has no execution: a canary switch is recorded "
            "without one"
        )
    events, truncated = ports.executions.events(view.execution_arn)
    status = str(view.execution.get("status") or "UNKNOWN")
    hook_logs = dict(view.record.hook_logs) if view.record is not None else {}
    steps, error, cause = read_history(events, status, hook_logs)
    return Timeline(
        deployment_id=deployment_id,
        execution_arn=view.execution_arn,
        status=status,
        steps=tuple(steps),
        error=str(view.execution.get("error") or error),
        cause=str(view.execution.get("cause") or cause),
        truncated=truncated,
    )


def read_history(
    events: list[FlowEvent], status: str, hook_logs: Mapping[str, str] | None = None
) -> tuple[list[Step], str, str]:
    """The steps an execution's events describe, and the execution's error and cause.

    ``status`` is the execution's status now: the last step of a RUNNING
    execution is still running (or waiting), not finished.
    """
    reader = _Reader(dict(hook_logs or {}))
    for event in events:
        reader.read(event)
    return reader.finish(status)


# -- reading the events ---------------------------------------------------------------


@dataclass
class _HookDraft:
    name: str = ""
    phase: str = "deploy"
    job: str = ""
    finished: bool = False
    succeeded: bool = False
    reason: str = ""
    failed: bool = False


@dataclass
class _StepDraft:
    phase: str
    title: str
    started_at: datetime
    ended_at: datetime | None = None
    status: StepStatus | None = None
    detail: str = ""
    error: str = ""
    cause: str = ""
    failed: bool = False
    polls: int = 0
    retries: int = 0
    hooks: list[_HookDraft] = field(default_factory=list)


class _Reader:
    """Folds the events, in order, into step drafts."""

    def __init__(self, hook_logs: dict[str, str]) -> None:
        self.hook_logs = hook_logs
        self.steps: list[_StepDraft] = []
        self.state = ""
        self.depth = 0
        self.error = ""
        self.cause = ""
        self.ended = ""
        self.newer = ""

    @property
    def step(self) -> _StepDraft | None:
        return self.steps[-1] if self.steps else None

    def read(self, event: FlowEvent) -> None:
        kind = event.type
        if kind.endswith("StateEntered"):
            self._entered(kind.removesuffix("StateEntered"), event)
        elif kind.endswith("StateExited"):
            self._exited(kind.removesuffix("StateExited"), event)
        elif kind in _RESULTS:
            self._result(event)
        elif kind in _FAILURES:
            self._failure(event)
        elif kind == "MapIterationStarted" and self.depth == 1 and self.step is not None:
            self.step.hooks.append(_HookDraft())
        elif kind in ("MapIterationFailed", "MapIterationAborted") and self.depth == 1:
            hook = self._hook()
            if hook is not None:
                hook.failed = True
        elif kind in ("MapStateFailed", "ParallelStateFailed") and self.step is not None:
            self.step.failed = True
        elif kind == "ExecutionFailed":
            self.error, self.cause = event.error, event.cause
        elif kind in _ENDED:
            self.ended = _ENDED[kind]
            self.error, self.cause = event.error or kind, event.cause

    # states ------------------------------------------------------------------

    def _entered(self, kind: str, event: FlowEvent) -> None:
        if self.depth > 0:
            if kind in _NESTING:
                self.depth += 1
            self._inner_entered(event)
            return
        if kind in _NESTING:
            self.depth = 1
        self.state = event.state
        if kind == "Choice":
            return
        if kind in ("Succeed", "Fail"):
            self._close(event.timestamp)
            self.steps.append(
                _StepDraft(
                    phase="end",
                    title=END_TITLES.get(event.state, event.state),
                    started_at=event.timestamp,
                    ended_at=event.timestamp,
                    status=SUCCEEDED if kind == "Succeed" else FAILED,
                    detail=(
                        f"a newer push ({_short(self.newer)}) took its tag while it waited"
                        if event.state == "Superseded" and self.newer
                        else ""
                    ),
                )
            )
            return
        phase = PHASES.get(event.state, event.state)
        current = self.step
        if current is not None and current.phase == phase and not current.failed:
            current.ended_at = None  # the phase goes on: a poll loop, a lock wait
        else:
            self._close(event.timestamp)
            self.steps.append(
                _StepDraft(phase=phase, title=TITLES.get(phase, phase), started_at=event.timestamp)
            )
        step = self.step
        assert step is not None
        if kind == "Wait" and phase == "bake" and isinstance(event.input, dict):
            seconds = event.input.get("bakeSeconds")
            if isinstance(seconds, int):
                step.detail = f"{seconds}s before the health checks"
        if event.state == "WaitForLock":
            step.status = WAITING
        elif event.state in _READINGS:
            step.polls += 1

    def _exited(self, kind: str, event: FlowEvent) -> None:
        if self.depth > 0:
            if kind in _NESTING:
                self.depth -= 1
            if self.depth > 0:
                return
        step = self.step
        if step is not None and kind != "Choice":
            step.ended_at = event.timestamp

    def _close(self, when: datetime) -> None:
        step = self.step
        if step is not None and step.ended_at is None:
            step.ended_at = when

    # task results --------------------------------------------------------------

    def _result(self, event: FlowEvent) -> None:
        step = self.step
        if step is None:
            return
        output = event.output if isinstance(event.output, dict) else {}
        if self.depth > 0:
            self._hook_result(step, output)
            return
        if step.failed:
            # A Retry that succeeded: the phase goes on, the failure was passing.
            step.failed, step.error, step.cause = False, "", ""
            step.retries += 1
        if self.state == "Begin":
            self._begun(step, output, event.timestamp)
        elif self.state in _READINGS:
            self._rollout_reading(step, output)
        elif self.state == "Finish":
            step.detail = (
                f"{_short(output.get('digest'))} judged healthy on {output.get('colour')}"
                if output.get("outcome") == "succeeded"
                else step.detail
            )
        elif self.state == "RollBack":
            self._rolled_back(step, output)
        elif self.state == "ConcludeRollback":
            target = _short(output.get("rolledBackTo"))
            step.detail = (
                f"rolled back to {target} as requested"
                if output.get("manual")
                else f"rolled back to {target}; the bad digest is marked failed"
            )
        elif self.state in ("ReleaseAndFail", "RollbackFailed"):
            step.detail = f"{output.get('Error') or 'failed'}: lock released"

    def _begun(self, step: _StepDraft, output: dict[str, object], when: datetime) -> None:
        status = output.get("status")
        if status == "locked":
            step.status = WAITING
            step.polls += 1
            step.detail = (
                f"held by {output.get('holder') or 'another deployment'}: waiting "
                f"{output.get('waitSeconds')}s (attempt {output.get('lockAttempt')})"
            )
            return
        step.status, step.detail = SUCCEEDED, "taken"
        if status == "superseded":
            self.newer = str(output.get("newer") or "")
        deployment = output.get("deployment")
        if status != "applied" or not isinstance(deployment, dict):
            return
        step.ended_at = when
        apply = _StepDraft(
            phase="apply",
            title=TITLES["apply"],
            started_at=when,
            ended_at=when,
            status=SUCCEEDED,
            detail=(
                f"{_short(deployment.get('image'))} on {deployment.get('colour')} "
                f"({deployment.get('service')}), was {_short(deployment.get('fromImage'))}"
            ),
        )
        self.steps.append(apply)
        rollout = output.get("rollout")
        if isinstance(rollout, dict) and rollout.get("complete"):
            self.steps.append(
                _StepDraft(
                    phase="rollout",
                    title=TITLES["rollout"],
                    started_at=when,
                    ended_at=when,
                    status=SUCCEEDED,
                    detail=str(rollout.get("message") or "rolled out at once"),
                )
            )

    def _rollout_reading(self, step: _StepDraft, output: dict[str, object]) -> None:
        message = str(output.get("message") or "")
        if output.get("complete"):
            step.status = SUCCEEDED
            step.detail = message or "rolled out"
        else:
            step.detail = message or "rolling out"

    def _rolled_back(self, step: _StepDraft, output: dict[str, object]) -> None:
        if output.get("status") == "stuck":
            step.failed = True
            step.error = str(output.get("Error") or "NoHealthyDigest")
            step.cause = str(output.get("Cause") or "")
            step.detail = "nothing safe to roll back to: the cluster was left as it is"
            return
        why = output.get("why")
        step.detail = f"back to {_short(output.get('target'))}" + (f" ({why})" if why else "")
        rollout = output.get("rollout")
        if isinstance(rollout, dict):
            step.detail += "; rolled out" if rollout.get("complete") else "; rolling out"

    # failures ------------------------------------------------------------------

    def _failure(self, event: FlowEvent) -> None:
        step = self.step
        if step is None:
            return
        message = _message(event.cause)
        if self.depth > 0:
            hook = self._hook()
            if hook is not None:
                hook.failed, hook.reason = True, message or event.error
        step.failed = True
        step.error, step.cause = event.error or event.type, message

    # hooks -------------------------------------------------------------------

    def _hook(self) -> _HookDraft | None:
        step = self.step
        return step.hooks[-1] if step is not None and step.hooks else None

    def _inner_entered(self, event: FlowEvent) -> None:
        step = self.step
        if step is None or self.depth != 1 or not isinstance(event.input, dict):
            return
        hook_input = event.input.get("hook")
        if not isinstance(hook_input, dict):
            return
        if not step.hooks:
            step.hooks.append(_HookDraft())
        hook = step.hooks[-1]
        hook.name = str(hook_input.get("name") or hook.name)
        hook.phase = str(event.input.get("phase") or hook.phase)

    def _hook_result(self, step: _StepDraft, output: dict[str, object]) -> None:
        if not step.hooks:
            step.hooks.append(_HookDraft())
        hook = step.hooks[-1]
        if hook.failed:
            hook.failed = False
            step.failed, step.error, step.cause = False, "", ""
            step.retries += 1
        hook.name = str(output.get("hook") or hook.name)
        hook.job = str(output.get("job") or hook.job)
        hook.finished = bool(output.get("finished"))
        hook.succeeded = bool(output.get("succeeded"))
        hook.reason = str(output.get("reason") or "")

    # the end -----------------------------------------------------------------

    def finish(self, status: str) -> tuple[list[Step], str, str]:
        running = status == "RUNNING"
        steps = []
        for position, draft in enumerate(self.steps):
            last = position == len(self.steps) - 1
            steps.append(self._step(draft, last=last, running=running))
        return steps, self.error, self.cause

    def _step(self, draft: _StepDraft, *, last: bool, running: bool) -> Step:
        status: StepStatus
        if draft.failed:
            status = FAILED
        elif last and running and draft.status != SUCCEEDED:
            status = draft.status or RUNNING
        elif last and self.ended and draft.status != SUCCEEDED:
            status = FAILED
        else:
            status = FAILED if draft.status == FAILED else SUCCEEDED
        error, cause = draft.error, draft.cause
        if status == FAILED and not error and last and self.ended:
            error, cause = self.error, self.cause or f"the execution was {self.ended}"
        elif status == FAILED and not error and draft.phase == "end":
            error, cause = self.error, self.cause
        hooks = tuple(self._hook_step(hook, running=running and last) for hook in draft.hooks)
        if draft.phase in ("hooks", "rollback-hooks") and not draft.detail and hooks:
            done = sum(1 for hook in hooks if hook.status == SUCCEEDED)
            draft.detail = f"{done} of {len(hooks)} succeeded"
        return Step(
            phase=draft.phase,
            title=draft.title,
            status=status,
            started_at=draft.started_at,
            ended_at=None if status in (RUNNING, WAITING) else draft.ended_at,
            detail=draft.detail,
            error=error,
            cause=cause,
            polls=draft.polls,
            retries=draft.retries,
            hooks=hooks,
        )

    def _hook_step(self, hook: _HookDraft, *, running: bool) -> HookStep:
        status: StepStatus
        if hook.failed or (hook.finished and not hook.succeeded):
            status = FAILED
        elif hook.finished:
            status = SUCCEEDED
        else:
            status = RUNNING if running else FAILED
        key = hook.name if hook.phase == "deploy" else f"{hook.phase}:{hook.name}"
        return HookStep(
            name=hook.name,
            job=hook.job,
            status=status,
            reason=hook.reason,
            log_tail=_log_tail(self.hook_logs.get(key, "")),
        )


def _short(value: object) -> str:
    """``repo@sha256:abcdef012345``: the digest's first 12 hex digits are what people read."""
    text = str(value or "")
    repository, _, digest = text.rpartition("sha256:")
    if not digest:
        return text or "?"
    name = repository.rstrip("@").rsplit("/", 1)[-1]
    return f"{name}@{digest[:12]}" if name else digest[:12]


def _message(cause: str) -> str:
    """A Lambda failure's cause is ``{"errorType", "errorMessage", ...}``: the message."""
    try:
        decoded = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(decoded, dict) and isinstance(decoded.get("errorMessage"), str):
        return str(decoded["errorMessage"])
    return cause


def _log_tail(kept: str) -> str:
    # The ledger keeps "[succeeded]" or "[failed: reason]" above the tail: the step says it.
    first, _, rest = kept.partition("\n")
    return rest if first.startswith("[") and first.endswith("]") else kept
