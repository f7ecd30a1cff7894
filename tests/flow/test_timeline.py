"""The timeline of a deployment, read from the history of the real deploy.asl.json run
on moto: the phases the dashboard shows, each with what it did and how it ended."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bluegreen.adapters.execution_history import StepFunctionsHistory, flow_event
from bluegreen.adapters.stepfunctions import StepFunctionsFlow
from bluegreen.domain.errors import InvalidInput, NotFound
from bluegreen.domain.flow_events import FlowEvent
from bluegreen.domain.models import Verdict
from bluegreen.logic.history import HistoryPorts
from bluegreen.logic.timeline import Step, Timeline, deployment_timeline, read_history
from tests.flow.conftest import SEED_BLUE, SEED_GREEN, Stack
from tests.flow.fakes import digest
from tests.waiting import eventually

pytestmark = pytest.mark.flow

NEW = digest(0xB1)


def deploy(image: str, **extra: Any) -> dict[str, Any]:
    return {"action": "deploy", "image": image, **extra}


def timeline_of(stack: Stack, deployment_id: str) -> Timeline:
    ports = HistoryPorts(
        settings=stack.api_settings,
        ledger=stack.ledger,
        flow=StepFunctionsFlow(stack.rig.machine.arn, stack.rig.sfn),
        executions=StepFunctionsHistory(stack.rig.sfn),
    )
    return deployment_timeline(ports, deployment_id)


def phases(steps: tuple[Step, ...] | list[Step]) -> list[tuple[str, str]]:
    return [(step.phase, step.status) for step in steps]


def test_a_good_deploy_reads_as_lock_apply_rollout_hooks_bake_health(stack: Stack) -> None:
    # GIVEN a healthy canary and a good digest deployed through the flow
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)
    run = stack.run(deploy(str(NEW)))
    assert run.status == "SUCCEEDED", run.cause

    # WHEN its timeline is read
    timeline = timeline_of(stack, run.name)

    # THEN every phase succeeded in the flow's order, the hook with its log tail
    assert timeline.status == "SUCCEEDED"
    assert phases(timeline.steps) == [
        ("lock", "succeeded"),
        ("apply", "succeeded"),
        ("rollout", "succeeded"),
        ("hooks", "succeeded"),
        ("bake", "succeeded"),
        ("health", "succeeded"),
        ("end", "succeeded"),
    ]
    by_phase = {step.phase: step for step in timeline.steps}
    assert NEW.hex[:12] in by_phase["apply"].detail
    assert "blue (canary)" in by_phase["apply"].detail
    assert SEED_BLUE.hex[:12] in by_phase["apply"].detail
    (hook,) = by_phase["hooks"].hooks
    assert (hook.name, hook.status) == ("cache-flush", "succeeded")
    assert hook.job.startswith("hook-cache-flush-")
    assert hook.log_tail == "Success: The cache was flushed."
    assert f"{NEW.hex[:12]} judged healthy on blue" in by_phase["health"].detail
    assert by_phase["end"].title == "Deployed"
    assert all(step.ended_at is not None for step in timeline.steps)
    assert [s.started_at for s in timeline.steps] == sorted(s.started_at for s in timeline.steps)
    assert (timeline.error, timeline.cause, timeline.truncated) == ("", "", False)


def test_a_broken_image_shows_the_failed_rollout_then_the_rollback(stack: Stack) -> None:
    # GIVEN a broken digest deployed to the canary (green's digest is healthy)
    stack.ledger.set_verdict(SEED_GREEN, Verdict.HEALTHY)
    stack.emulator.faults.break_image(str(NEW), mode="CrashLoopBackOff")
    run = stack.run(deploy(str(NEW)))
    assert run.status == "FAILED"

    # WHEN its timeline is read
    timeline = timeline_of(stack, run.name)

    # THEN the rollout failed with its reason, the rollback and its hooks followed
    assert phases(timeline.steps) == [
        ("lock", "succeeded"),
        ("apply", "succeeded"),
        ("rollout", "failed"),
        ("rollback", "succeeded"),
        ("rollback-hooks", "succeeded"),
        ("verdict", "succeeded"),
        ("end", "failed"),
    ]
    rollout = timeline.steps[2]
    assert rollout.error == "RolloutFailed"
    assert "ProgressDeadlineExceeded" in rollout.cause
    assert rollout.polls >= 1
    assert f"back to {SEED_GREEN.hex[:12]} (" in timeline.steps[3].detail
    (rerun,) = timeline.steps[4].hooks
    assert rerun.status == "succeeded"
    assert rerun.log_tail == "Success: The cache was flushed."
    end = timeline.steps[-1]
    assert end.error == "RolloutFailed"
    assert f"rolled back to {SEED_GREEN.short}" in end.cause
    # AND the execution's own Error and Cause, as GET /deployments/{id} has them
    assert (timeline.error, timeline.cause) == (run.error, run.cause)


def test_a_failing_hook_shows_its_log_tail_and_why(stack_factory: Any) -> None:
    # GIVEN the original system's hook, without --allow-root
    stack = stack_factory(BG_HOOKS='[{"name": "cache-flush", "command": "wp cache flush"}]')
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)
    run = stack.run(deploy(str(NEW)))

    # WHEN its timeline is read
    timeline = timeline_of(stack, run.name)

    # THEN the hooks phase failed on that hook, with wp-cli's refusal in its log tail
    hooks = next(step for step in timeline.steps if step.phase == "hooks")
    assert hooks.status == "failed"
    assert hooks.error == "HookFailed"
    (hook,) = hooks.hooks
    assert hook.status == "failed"
    assert "YIKES" in hook.log_tail
    assert "YIKES" in hook.reason
    assert [s.phase for s in timeline.steps][-4:] == [
        "rollback",
        "rollback-hooks",
        "verdict",
        "end",
    ]


def test_a_retried_task_counts_its_retries_and_still_succeeds(stack: Stack) -> None:
    # GIVEN the API server answers 503 more often than the adapter retries on its own
    stack.emulator.faults.fail_requests("GET", "/configmaps/", status=503, count=5)
    run = stack.run(deploy(str(NEW)))
    assert run.status == "SUCCEEDED", run.cause

    # WHEN its timeline is read
    timeline = timeline_of(stack, run.name)

    # THEN the lock phase shows the retries and no failure
    lock = timeline.steps[0]
    assert (lock.phase, lock.status, lock.error) == ("lock", "succeeded", "")
    assert lock.retries >= 1


def test_a_running_deployment_ends_on_a_running_step(stack: Stack) -> None:
    # GIVEN the history of a finished deploy, cut where the bake had begun
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)
    run = stack.run(deploy(str(NEW)))
    events = [flow_event(raw) for raw in run.history]
    bake = next(i for i, e in enumerate(events) if e.type == "WaitStateEntered")
    baking = events[: bake + 1]

    # WHEN it is read as the history of a RUNNING execution
    steps, error, cause = read_history(baking, "RUNNING")

    # THEN the bake is the running step, not yet ended; what came before succeeded
    assert phases(steps) == [
        ("lock", "succeeded"),
        ("apply", "succeeded"),
        ("rollout", "succeeded"),
        ("hooks", "succeeded"),
        ("bake", "running"),
    ]
    assert steps[-1].ended_at is None
    assert steps[-1].detail.endswith("s before the health checks")
    assert (error, cause) == ("", "")


def test_a_deploy_waiting_for_the_lock_shows_the_holder(stack: Stack) -> None:
    # GIVEN the first events of a deploy that found the lock held
    assert stack.ledger.acquire_lock("earlier-deploy", 600)
    arn = stack.rig.start(deploy(str(NEW)), "lock-waiter")
    history = StepFunctionsHistory(stack.rig.sfn)

    def waited() -> list[FlowEvent] | None:
        events, _ = history.events(arn)
        return events if any(e.type == "WaitStateEntered" for e in events) else None

    events = eventually("the deploy waiting for the lock", waited, 30, every=0.01)
    stack.ledger.release_lock("earlier-deploy")
    stack.rig.wait(arn)
    waiting = events[: next(i for i, e in enumerate(events) if e.type == "WaitStateEntered") + 1]

    # WHEN that history is read as RUNNING
    steps, _, _ = read_history(waiting, "RUNNING")

    # THEN the one step is the lock, waiting, and it names who holds it
    (lock,) = steps
    assert (lock.phase, lock.status) == ("lock", "waiting")
    assert "held by earlier-deploy" in lock.detail


def test_a_state_the_timeline_does_not_know_shows_under_its_own_name(stack: Stack) -> None:
    # GIVEN a history in which the bake state was renamed (a newer flow than this code)
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)
    run = stack.run(deploy(str(NEW)))
    events = [
        replace(e, state="Soak") if e.state == "Bake" else e
        for e in (flow_event(raw) for raw in run.history)
    ]

    # WHEN it is read
    steps, _, _ = read_history(events, "SUCCEEDED")

    # THEN the renamed state is a step of its own name, between the hooks and the health
    names = [step.phase for step in steps]
    assert names[names.index("hooks") + 1 : names.index("health")] == ["Soak"]
    assert steps[names.index("Soak")].title == "Soak"


def test_a_switch_has_no_timeline_and_a_bad_id_is_refused(stack: Stack) -> None:
    # GIVEN the ledger's record of a canary switch (no execution)
    from bluegreen.domain.models import Colour, Deployment, Outcome, Role

    stack.ledger.put_deployment(
        Deployment(
            id="switch-1",
            application=stack.settings.application,
            action="switch",
            role=Role.CANARY,
            colour=Colour.GREEN,
            to_digest=None,
            from_digest=None,
            trigger="api",
            actor="tester",
            started_at=datetime.now(UTC),
            outcome=Outcome.SUCCEEDED,
        )
    )
    # WHEN / THEN its timeline is NotFound with the reason; a malformed id is InvalidInput
    with pytest.raises(NotFound, match="no execution: a canary switch"):
        timeline_of(stack, "switch-1")
    with pytest.raises(NotFound, match="no deployment or execution"):
        timeline_of(stack, "never-started")
    with pytest.raises(InvalidInput, match="is not a deployment id"):
        timeline_of(stack, "../etc")


class _PagedClient:
    """A ``stepfunctions`` client whose history has ``pages`` pages of one event each."""

    class exceptions:  # named as on a boto3 client
        class ExecutionDoesNotExist(Exception):
            pass

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.asked: list[dict[str, Any]] = []

    def get_execution_history(self, **request: Any) -> dict[str, Any]:
        self.asked.append(request)
        if request["executionArn"].endswith(":missing"):
            raise self.exceptions.ExecutionDoesNotExist()
        page = int(request.get("nextToken", "0"))
        answer: dict[str, Any] = {
            "events": [
                {
                    "id": page + 1,
                    "type": "PassStateEntered",
                    "timestamp": datetime(2026, 12, 1, tzinfo=UTC),
                    "stateEnteredEventDetails": {"name": f"S{page}", "input": "{not json"},
                }
            ]
        }
        if page + 1 < self.pages:
            answer["nextToken"] = str(page + 1)
        return answer


def test_history_pages_are_read_to_the_end_within_a_bound() -> None:
    # GIVEN histories of 3 pages and of more pages than the adapter reads
    short, long = _PagedClient(3), _PagedClient(50)

    # WHEN they are read with a bound of 5 pages
    events, cut = StepFunctionsHistory(short, max_pages=5).events("arn:x")
    many, cut_long = StepFunctionsHistory(long, max_pages=5).events("arn:y")

    # THEN the short one whole, the long one cut at the bound and said so
    assert ([e.state for e in events], cut) == (["S0", "S1", "S2"], False)
    assert (len(many), cut_long) == (5, True)
    assert all(request["includeExecutionData"] for request in short.asked)
    # AND an input that is not JSON is left out rather than failing the history
    assert events[0].input is None
    with pytest.raises(NotFound):
        StepFunctionsHistory(short).events("arn:aws:states:x:missing")
