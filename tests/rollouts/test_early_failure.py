"""The rollout judgement's fast path: which pods of a new revision count as failed, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bluegreen.domain.pods import ContainerState, PodState
from bluegreen.logic.rollouts import (
    FailFast,
    cause,
    early_failure,
    next_threshold_in,
    starting,
    waiting_since,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def pod(age: float, *containers: ContainerState, **fields: object) -> PodState:
    return PodState(
        name="blue-deployment-7c9d-x2k4p",
        created_at=NOW - timedelta(seconds=age),
        containers=containers,
        **fields,  # type: ignore[arg-type]
    )


def crashing(restarts: int, *, code: int = 1, reason: str = "Error") -> ContainerState:
    return ContainerState(
        name="web",
        restart_count=restarts,
        waiting_reason="CrashLoopBackOff",
        last_exit_code=code,
        last_reason=reason,
    )


def test_a_crash_loop_fails_at_the_second_restart_not_the_first() -> None:
    # GIVEN a container that crashed and was restarted once, then twice
    once, twice = pod(5, crashing(1)), pod(15, crashing(2))

    # WHEN each is judged at the defaults
    # THEN one restart is not yet a failure, two are, with what a person needs to know
    assert early_failure([once]) is None
    failure = early_failure([twice])
    assert failure is not None
    assert (failure.pod, failure.container, failure.reason) == (
        "blue-deployment-7c9d-x2k4p",
        "web",
        "CrashLoopBackOff",
    )
    assert (failure.restarts, failure.exit_code, failure.crashed) == (2, 1, True)
    assert failure.detail == "CrashLoopBackOff after 2 restarts, last exit code 1 (Error)"


def test_an_oom_kill_is_named_as_such() -> None:
    # GIVEN a container killed for memory twice
    killed = pod(20, crashing(2, code=137, reason="OOMKilled"))

    # WHEN it is judged
    failure = early_failure([killed])

    # THEN the reason is OOMKilled, exit code 137
    assert failure is not None
    assert (failure.reason, failure.exit_code) == ("OOMKilled", 137)


def test_a_running_container_that_exited_non_zero_before_counts_too() -> None:
    # GIVEN a container running again after two failed runs (not waiting in back-off now)
    again = pod(
        40,
        ContainerState(
            name="web", running=True, restart_count=2, last_exit_code=2, last_reason="Error"
        ),
    )

    # THEN it is a crash loop all the same
    failure = early_failure([again])
    assert failure is not None
    assert failure.crashed
    assert failure.exit_code == 2


@pytest.mark.parametrize(
    "reason",
    [
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    ],
)
def test_a_container_that_cannot_start_fails_after_the_wait(reason: str) -> None:
    # GIVEN a container waiting with a reason it will not recover from by itself
    container = ContainerState(name="web", waiting_reason=reason, waiting_message="not found")

    # first seen so by the flow after it had waited 4 s
    since = waiting_since([pod(5, container)], {}, waited=4)
    assert since == {"blue-deployment-7c9d-x2k4p": 4}

    # THEN it is given after_seconds of the flow's waiting, then failed with the message
    assert early_failure([pod(60, container)], since=since, waited=64) is None
    failure = early_failure([pod(70, container)], since=since, waited=65)
    assert failure is not None
    assert failure.reason == reason
    assert failure.detail == f"{reason} for 61s: not found"
    # AND a later poll keeps the first moment it was seen waiting
    assert waiting_since([pod(70, container)], since, waited=65) == since
    assert not failure.crashed


def test_an_unschedulable_pod_fails_after_its_own_longer_wait() -> None:
    # GIVEN a pod the scheduler cannot place since 170 s, then 190 s
    def stuck(seconds: float) -> PodState:
        return pod(
            seconds,
            unschedulable_since=NOW - timedelta(seconds=seconds),
            unschedulable_message="0/1 nodes are available: 1 Insufficient cpu.",
        )

    # THEN it fails only past unschedulable_seconds of the flow's waiting, saying why
    since = {"blue-deployment-7c9d-x2k4p": 0}
    assert early_failure([stuck(170)], since=since, waited=170) is None
    failure = early_failure([stuck(190)], since=since, waited=190)
    assert failure is not None
    assert failure.reason == "Unschedulable"
    assert failure.container is None
    assert "Insufficient cpu" in failure.detail


def test_a_slow_but_healthy_start_is_never_failed() -> None:
    # GIVEN a container running for 90 s, not ready yet, never restarted
    slow = pod(90, ContainerState(name="web", running=True))

    # THEN nothing is wrong with it, and it needs no quick polling
    assert early_failure([slow], waited=90) is None
    assert waiting_since([slow], {}, waited=90) == {}
    assert not starting([pod(90, ContainerState(name="web", running=True), phase="Running")])


def test_thresholds_are_the_stacks() -> None:
    # GIVEN stricter thresholds than the defaults
    strict = FailFast(after_restarts=1, after_seconds=10, unschedulable_seconds=20)

    # THEN they are the ones applied
    assert early_failure([pod(5, crashing(1))], strict) is not None
    waiting = ContainerState(name="web", waiting_reason="ErrImagePull")
    since = {"blue-deployment-7c9d-x2k4p": 0}
    assert early_failure([pod(11, waiting)], strict, since=since, waited=11) is not None


def test_the_next_look_is_when_a_threshold_can_pass() -> None:
    # GIVEN a container seen unable to pull its image for 50 s of the flow's waiting
    waiting = pod(50, ContainerState(name="web", waiting_reason="ImagePullBackOff"))
    since = {"blue-deployment-7c9d-x2k4p": 10}

    # THEN the next poll is due just after the 60 s threshold, and nothing else is due
    assert next_threshold_in([waiting], since=since, waited=60) == 11
    running = pod(50, ContainerState(name="web", running=True))
    assert next_threshold_in([running], since=since, waited=60) is None
    assert starting([waiting])


def test_the_cause_names_pod_container_reason_and_the_previous_log() -> None:
    # GIVEN a crash-loop failure and the container's previous log
    failure = early_failure([pod(15, crashing(2))])
    assert failure is not None
    log = "booting\n" + "".join(f"line {i}\n" for i in range(20)) + "Error: exited with 1\n"

    # WHEN the Cause is written
    text = cause("blue rolling out rezfusion-cloud@sha256:5e5e", failure, log)

    # THEN it says where, what, and the last lines of the log, bounded
    assert text.startswith(
        "blue rolling out rezfusion-cloud@sha256:5e5e: pod blue-deployment-7c9d-x2k4p, "
        "container web: CrashLoopBackOff after 2 restarts, last exit code 1 (Error); "
        "previous log: "
    )
    assert text.endswith("line 19 | Error: exited with 1")
    assert "booting" not in text
