"""The real deploy.asl.json on moto's interpreter, the real deploy_steps handler, the
real DynamoDB ledger (moto tables from template.yaml), on both cluster backends: the
emulator and the real control plane (the product as the shipped Role's group).

Assertions read the execution history (which states ran, which Catch fired) and
the cluster through its Kubernetes API.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from bluegreen.adapters.stepfunctions import StepFunctionsFlow
from bluegreen.domain.executions import execution_arn, execution_name
from bluegreen.domain.models import Outcome, Verdict
from bluegreen.logic.autodeploy import AutoDeployPorts, on_recorded
from bluegreen.logic.requests import Caller
from local.stepfunctions import shortened_waits
from tests.events import load_event
from tests.flow.conftest import SEED_BLUE, SEED_GREEN, Stack
from tests.flow.fakes import digest

pytestmark = pytest.mark.flow

NEW, NEWER = digest(0xA1), digest(0xA2)


@pytest.fixture
def stack(stack_on: Stack) -> Stack:
    """This module's application runs on each backend in turn."""
    return stack_on


def deploy(image: str, **extra: Any) -> dict[str, Any]:
    return {"action": "deploy", "image": image, **extra}


def canary_env(stack: Stack) -> dict[str, Any]:
    configmap = stack.backend.get("configmaps", stack.settings.configmap_name)
    assert configmap is not None
    return dict(json.loads(configmap["data"][stack.settings.configmap_key]))


def test_happy_path_by_tag(stack: Stack) -> None:
    # GIVEN blue (the canary) runs a healthy digest and a new one is pushed as dev
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)
    stack.push(NEW, "dev")

    # WHEN the console deploys the tag
    run = stack.run(deploy("dev"))

    # THEN the canary runs the new digest, with its hook run and its verdict recorded
    assert run.status == "SUCCEEDED", run.cause
    # (the instant emulator is rolled out at Begin's first reading and its hook done at
    # once; on the real control plane the flow polls both, repeating the loops' states)
    polls = {"WaitForRollout", "CheckRollout", "RolloutComplete?", "WaitForHook", "CheckHook"}
    assert not polls & set(run.states) or stack.backend.real
    once = list(dict.fromkeys(s for s in run.states if s not in polls))
    assert once == [
        "Begin", "Route", "RunHooks", "StartHook", "HookFinished?", "HookDone",
        "Bake", "Finish", "Deployed",
    ]  # fmt: skip
    assert stack.running("blue") == stack.image(NEW)
    assert stack.running("green") == stack.image(SEED_GREEN)
    assert canary_env(stack) == {"selector": "blue", "image": stack.image(NEW)}
    (job,) = stack.jobs()
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command == ["wp", "cache", "flush", "--allow-root"]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == stack.image(NEW)
    assert stack.ledger.verdict(NEW) is Verdict.HEALTHY
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert record.outcome is Outcome.SUCCEEDED
    assert (record.from_digest, record.to_digest, record.tag) == (SEED_BLUE, NEW, "dev")
    assert record.execution_arn == run.arn
    assert "The cache was flushed" in record.hook_logs["cache-flush"]
    assert stack.ledger.lock_holder() is None
    assert run.output["outcome"] == "succeeded"
    ((detail_type, detail),) = stack.published()
    assert detail_type == "Deployment Succeeded"
    assert (detail["digest"], detail["colour"], detail["deploymentId"]) == (
        str(NEW),
        "blue",
        run.name,
    )


def test_production_emergency_deploys_the_other_colour(stack: Stack) -> None:
    run = stack.run(deploy(str(NEW), service="production"))

    assert run.status == "SUCCEEDED", run.cause
    assert stack.running("green") == stack.image(NEW)
    assert stack.running("blue") == stack.image(SEED_BLUE)
    # canaryEnv.image follows the canary only
    assert canary_env(stack)["image"] != stack.image(NEW)


def test_broken_image_rolls_back_to_previous_healthy(stack: Stack) -> None:
    # GIVEN an earlier healthy digest (older than what blue runs now) and a broken new one
    stack.ledger.set_verdict(SEED_GREEN, Verdict.HEALTHY)
    stack.backend.mark_image(str(NEW), "CrashLoopBackOff")

    # WHEN the broken digest is deployed to the canary
    run = stack.run(deploy(str(NEW)))

    # THEN the rollout failure was caught and blue went back to the healthy digest
    assert run.status == "FAILED"
    assert run.error == "RolloutFailed"
    assert "RolloutFailed" in run.task_errors
    assert run.states.index("CheckRollout") < run.states.index("RollBack")
    assert "RerunStartHook" in run.states
    assert stack.running("blue") == stack.image(SEED_GREEN)
    # the instant emulator's deadline passes at once; the real control plane's pods tell
    # the crash loop first, at their second restart
    if stack.backend.real:
        assert "container web: CrashLoopBackOff after 2 restarts" in (run.cause or "")
    else:
        assert "stalled (ProgressDeadlineExceeded)" in (run.cause or "")
    assert f"rolled back to {SEED_GREEN.short}" in (run.cause or "")
    # the hooks re-ran on the rolled-back image
    rerun = [j for j in stack.jobs() if "rollback" in json.dumps(j["metadata"])]
    assert rerun
    assert rerun[0]["spec"]["template"]["spec"]["containers"][0]["image"] == stack.image(SEED_GREEN)
    assert stack.ledger.verdict(NEW) is Verdict.FAILED
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert record.outcome is Outcome.ROLLED_BACK
    assert record.rolled_back_to == SEED_GREEN
    assert stack.ledger.lock_holder() is None
    assert [t for t, _ in stack.published()] == ["Deployment Rolled Back"]


def test_cache_flush_without_allow_root_rolls_back(stack_factory: Any) -> None:
    # GIVEN the original system's hook, missing --allow-root
    stack = stack_factory(BG_HOOKS='[{"name": "cache-flush", "command": "wp cache flush"}]')
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)

    # WHEN a good image is deployed
    run = stack.run(deploy(str(NEW)))

    # THEN wp-cli's refusal failed the hook, and the Map's Catch rolled back
    assert run.error == "HookFailed"
    assert "HookFailed" in run.task_errors
    assert run.states.index("RunHooks") < run.states.index("RollBack")
    assert "YIKES" in (run.cause or "")
    assert stack.running("blue") == stack.image(SEED_BLUE)
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert "YIKES" in record.hook_logs["cache-flush"]


def test_first_deploy_ever_fails_back_to_what_ran_before(stack: Stack) -> None:
    # GIVEN an empty ledger: no verdict at all
    stack.backend.mark_image(str(NEW), "CrashLoopBackOff")

    # WHEN the first deploy is broken
    run = stack.run(deploy(str(NEW)))

    # THEN blue is back on the digest it ran before the deploy
    assert run.error == "RolloutFailed"
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert stack.ledger.verdict(NEW) is Verdict.FAILED


def test_every_candidate_failed_is_no_healthy_digest(stack: Stack) -> None:
    # GIVEN what blue ran before is itself marked failed
    stack.ledger.set_verdict(SEED_BLUE, Verdict.FAILED, "earlier incident")
    stack.backend.mark_image(str(NEW), "CrashLoopBackOff")

    # WHEN a broken digest is deployed
    run = stack.run(deploy(str(NEW)))

    # THEN the flow fails NoHealthyDigest, leaves the cluster and says what runs
    assert run.status == "FAILED"
    assert run.error == "NoHealthyDigest"
    assert run.states[-1] == "NoHealthyDigest"
    assert f"blue runs rezfusion-cloud@sha256:{NEW.hex[:12]}" in (run.cause or "")
    assert stack.running("blue") == stack.image(NEW)
    assert stack.ledger.lock_holder() is None
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert record.outcome is Outcome.FAILED
    assert [t for t, _ in stack.published()] == ["Deployment Failed"]


def test_manual_rollback(stack: Stack) -> None:
    # GIVEN a successful deploy of NEW after a healthy SEED_BLUE
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)
    assert stack.run(deploy(str(NEW))).status == "SUCCEEDED"

    # WHEN someone asks the console for a rollback
    run = stack.run(load_event("deploy_flow/rollback_canary.json"))

    # THEN blue is back on SEED_BLUE, the flow succeeded and NEW is marked failed
    assert run.status == "SUCCEEDED", run.cause
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert canary_env(stack)["image"] == stack.image(SEED_BLUE)
    assert stack.ledger.verdict(NEW) is Verdict.FAILED


def test_failed_production_deploy_goes_back_to_what_production_ran(stack: Stack) -> None:
    # GIVEN production (green) runs SEED_GREEN, judged healthy, and the canary (blue) then
    # passed NEW, which never ran on production
    stack.ledger.set_verdict(SEED_GREEN, Verdict.HEALTHY)
    assert stack.run(deploy(str(NEW))).status == "SUCCEEDED"
    stack.backend.mark_image(str(NEWER), "CrashLoopBackOff")

    # WHEN an emergency fix of production is broken
    run = stack.run(deploy(str(NEWER), service="production"))

    # THEN production is back on SEED_GREEN: the canary's NEW was not promoted silently
    assert run.error == "RolloutFailed"
    assert stack.running("green") == stack.image(SEED_GREEN)
    assert stack.running("blue") == stack.image(NEW)
    assert f"rolled back to {SEED_GREEN.short} (what ran before, judged healthy)" in (
        run.cause or ""
    )
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert record.rolled_back_to == SEED_GREEN


def test_manual_rollback_right_after_a_first_deploy(stack: Stack) -> None:
    # GIVEN the first deploy ever put SEED_GREEN on blue (which ran SEED_BLUE, never judged)
    assert stack.run(deploy(str(SEED_GREEN))).status == "SUCCEEDED"
    assert stack.ledger.verdict(SEED_GREEN) is Verdict.HEALTHY

    # WHEN a rollback of the canary is requested through the API, with the caller's IP
    started = stack.request_rollback(
        Caller("arn:aws:iam::123456789012:user/alice", "203.0.113.9", "req-rollback"),
        reason="checkout broken",
    )
    run = stack.rig.wait(started.execution_arn)

    # THEN blue is back on what it ran before that deploy, and the Cause says so
    assert run.status == "SUCCEEDED", run.cause
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert canary_env(stack)["image"] == stack.image(SEED_BLUE)
    cause = str(run.output["Cause"])
    assert f"rolled back to {SEED_BLUE.short}" in cause
    assert "checkout broken" in cause
    # AND SEED_GREEN, which production (green) runs, is not marked failed: the Cause says so
    assert stack.ledger.verdict(SEED_GREEN) is Verdict.HEALTHY
    assert f"{SEED_GREEN.short} was not marked failed: production (green) runs it" in cause
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert (record.action, record.source_ip) == ("rollback", "203.0.113.9")
    assert (record.trigger, record.actor) == ("api", "arn:aws:iam::123456789012:user/alice")
    assert (record.from_digest, record.rolled_back_to) == (SEED_GREEN, SEED_BLUE)


def test_manual_rollback_with_no_history_leaves_the_cluster_and_says_why(stack: Stack) -> None:
    # GIVEN blue runs SEED_BLUE, judged healthy, and no deployment is recorded
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)

    # WHEN a rollback is requested
    run = stack.run(load_event("deploy_flow/rollback_canary.json"))

    # THEN NoHealthyDigest, with a Cause that is true: nothing but SEED_BLUE is healthy and the
    # ledger does not know what ran before it
    assert run.error == "NoHealthyDigest"
    cause = run.cause or ""
    assert f"no successful one that put {SEED_BLUE.short} on blue" in cause
    assert f"no digest other than {SEED_BLUE.short} is judged healthy" in cause
    assert f"blue runs rezfusion-cloud@sha256:{SEED_BLUE.short}" in cause
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert stack.ledger.lock_holder() is None


def _wait_for_state(stack: Stack, arn: str, state: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = stack.rig.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        if any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in events):
            return
        time.sleep(0.01)
    raise AssertionError(f"{arn} never entered {state}")


def test_second_deploy_waits_for_the_lock_then_runs(stack: Stack) -> None:
    # GIVEN another deployment holds the application's lock
    assert stack.ledger.acquire_lock("earlier-deploy", 600)

    with shortened_waits(0.01):
        # WHEN a deploy starts, it waits in the ASL; then the holder finishes
        arn = stack.rig.start(deploy(str(NEW)), f"waiting-deploy-{stack.settings.application}")
        _wait_for_state(stack, arn, "WaitForLock")
        assert stack.running("blue") == stack.image(SEED_BLUE)
        stack.ledger.release_lock("earlier-deploy")
        run = stack.rig.wait(arn, timeout=stack.timeout)

    # THEN it took the lock and deployed
    assert run.status == "SUCCEEDED", run.cause
    assert "WaitForLock" in run.states
    assert stack.running("blue") == stack.image(NEW)


def test_waiting_push_is_superseded_by_a_newer_push(stack: Stack) -> None:
    # GIVEN a deployment holds the lock while two pushes of dev arrive
    assert stack.ledger.acquire_lock("earlier-deploy", 600)
    flow = StepFunctionsFlow(stack.rig.machine.arn, stack.rig.sfn)
    auto = on_recorded(stack.settings, lambda: AutoDeployPorts(stack.settings, flow, stack.ledger))
    with shortened_waits(0.01):
        stack.push(NEW, "dev")
        record = stack.ledger.image(NEW)
        assert record is not None
        auto(record, "dev")
        stack.push(NEWER, "dev")
        newer = stack.ledger.image(NEWER)
        assert newer is not None
        auto(newer, "dev")
        first, second = (
            execution_arn(
                stack.rig.machine.arn,
                execution_name(stack.settings.application, "deploy", pushed.hex),
            )
            for pushed in (NEW, NEWER)
        )

        # WHEN the lock is released
        _wait_for_state(stack, first, "WaitForLock")
        stack.ledger.release_lock("earlier-deploy")
        older, newest = stack.rig.wait(first), stack.rig.wait(second)

    # THEN the older push is superseded (a success, recorded) and the newer one deployed
    assert older.status == "SUCCEEDED"
    assert older.states[-1] == "Superseded"
    assert newest.states[-1] == "Deployed"
    assert stack.running("blue") == stack.image(NEWER)
    record_old = stack.ledger.deployment(older.name)
    assert record_old is not None
    assert record_old.outcome is Outcome.SUPERSEDED


def test_duplicate_push_event_starts_one_execution(stack: Stack) -> None:
    # GIVEN the auto-deploy seam of ecr_push, on the local state machine
    flow = StepFunctionsFlow(stack.rig.machine.arn, stack.rig.sfn)
    auto = on_recorded(stack.settings, lambda: AutoDeployPorts(stack.settings, flow, stack.ledger))
    stack.push(NEW, "dev")
    record = stack.ledger.image(NEW)
    assert record is not None

    # WHEN the same push is delivered three times, concurrently
    threads = [threading.Thread(target=auto, args=(record, "dev")) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN exactly one execution exists for it, and it deployed
    mine = [
        e
        for e in stack.rig.sfn.list_executions(stateMachineArn=stack.rig.machine.arn)["executions"]
        if e["name"].startswith(f"{stack.settings.application}-deploy-")
    ]
    assert len(mine) == 1
    run = stack.rig.wait(mine[0]["executionArn"])
    assert run.status == "SUCCEEDED", run.cause
    assert stack.running("blue") == stack.image(NEW)


@pytest.mark.parametrize(
    "event",
    [
        "invalid_action.json",
        "invalid_digest.json",
        "invalid_missing_image.json",
        "invalid_not_an_object.json",
        "invalid_rollback_with_image.json",
        "invalid_service.json",
        "invalid_claims_actor.json",
        "invalid_claims_trigger.json",
        "invalid_force_not_boolean.json",
        "invalid_unknown_field.json",
        "invalid_wrong_type.json",
    ],
)
def test_invalid_console_input_is_rejected_at_once(stack: Stack, event: str) -> None:
    # WHEN the console starts the flow with a bad input
    run = stack.run(load_event(f"deploy_flow/{event}"))

    # THEN InvalidInput, naming the field, with nothing recorded nor changed
    assert run.status == "FAILED"
    assert run.error == "InvalidInput"
    assert run.states == ["Begin", "ReleaseAndFail", "AppliedBeforeFailing?", "DeploymentFailed"]
    assert ":" in (run.cause or "")
    assert stack.ledger.deployment(run.name) is None
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert stack.jobs() == []


def test_transient_cluster_errors_are_retried_by_the_state_machine(stack_factory: Any) -> None:
    # GIVEN the API server answers 503 to the next reads of the ConfigMap, more times than
    # the adapter retries on its own (a fault only the emulator injects)
    stack: Stack = stack_factory()
    stack.emulator.faults.fail_requests("GET", "/configmaps/", status=503, count=5)

    # WHEN a deploy runs
    run = stack.run(deploy(str(NEW)))

    # THEN the Task's Retry (not a Python loop) carried it through
    assert run.status == "SUCCEEDED", run.cause
    assert run.task_errors.count("ClusterUnavailable") >= 1
    assert run.states.count("Begin") == 1
    assert stack.running("blue") == stack.image(NEW)
