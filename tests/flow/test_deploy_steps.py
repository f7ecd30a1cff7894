"""Fast tests of the deploy steps and their small adapters, with in-memory ports."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bluegreen.adapters.eventbridge import Notifier
from bluegreen.adapters.stepfunctions import StepFunctionsFlow
from bluegreen.config import Settings
from bluegreen.domain.errors import HookFailed, InvalidInput, LockTimeout, RolloutFailed
from bluegreen.domain.executions import execution_arn, execution_name
from bluegreen.domain.flow_input import parse_request
from bluegreen.domain.models import AlarmStates, Colour, Hook, ImageRecord, Role, RolloutState
from bluegreen.logic import autodeploy
from bluegreen.logic.deploy.hooks import check_hook
from bluegreen.logic.deploy.ports import DeployPorts
from bluegreen.logic.deploy.rollout import check_rollout
from bluegreen.logic.health import HealthPolicy, HealthProbes, health_problems
from bluegreen.logic.steps import run_step
from local.lambdas import dispatch_lambdas_in_process
from tests.flow.fakes import (
    REPO,
    FakeAlarms,
    FakeCluster,
    FakeHttp,
    FakeLedger,
    FakeNotifier,
    digest,
)
from tests.flow.harness import FlowRig, Router

pytestmark = pytest.mark.flow

OLD, NEW = digest(1), digest(2)


def ports(**settings: Any) -> DeployPorts:
    return DeployPorts(
        settings=Settings(**settings),
        ledger=FakeLedger(),
        cluster=FakeCluster(blue=OLD, green=OLD),
        notifier=FakeNotifier(),
        probes=HealthProbes(http=FakeHttp(), alarms=FakeAlarms()),
    )


# --- the input contract ---------------------------------------------------------------


def test_request_defaults_and_normalises() -> None:
    request = parse_request({"action": "deploy", "image": f"  {NEW.hex} "})

    assert request.service is Role.CANARY
    assert request.force is False
    assert request.image == NEW.hex


def test_request_names_the_unknown_field() -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_request({"action": "rollback", "service": "canary", "imageTag": "x"})

    assert raised.value.field == "imageTag"
    assert "allowed fields" in raised.value.problem


def test_request_rejects_overlong_text() -> None:
    with pytest.raises(InvalidInput, match="reason: must be at most"):
        parse_request({"action": "rollback", "reason": "x" * 5000})


# --- execution names ------------------------------------------------------------------


def test_execution_name_is_short_safe_and_deterministic() -> None:
    name = execution_name("wp-platform", "deploy", NEW.hex)
    other = execution_name("wp-platform", "deploy", OLD.hex)

    assert len(name) <= 80
    assert re.fullmatch(r"[A-Za-z0-9_-]+", name)
    assert name == execution_name("wp-platform", "deploy", NEW.hex)
    assert name != other
    assert name.startswith("wp-platform-deploy-0000")
    assert execution_name("my app/1", "rollback", "r:1") == "my-app-1-rollback-r-1"


def test_execution_arn_from_state_machine_arn() -> None:
    machine = "arn:aws:states:us-west-2:123456789012:stateMachine:deploy"

    assert execution_arn(machine, "x") == "arn:aws:states:us-west-2:123456789012:execution:deploy:x"
    with pytest.raises(ValueError, match="not a state machine ARN"):
        execution_arn("arn:aws:lambda:us-west-2:1:function:f", "x")


def test_duplicate_start_returns_the_existing_execution(
    shared_rig: tuple[FlowRig, Router],
) -> None:
    # GIVEN a state machine (only execution names matter here)
    sfn = shared_rig[0].sfn
    arn = sfn.create_state_machine(
        name=f"names-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/flow",
    )["stateMachineArn"]
    flow = StepFunctionsFlow(arn, sfn)

    # WHEN the same name is started twice with different inputs
    first = flow.start("same-name", {"a": 1})
    second = flow.start("same-name", {"a": 2})

    # THEN both answers name one execution
    assert first == second == execution_arn(arn, "same-name")
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1
    assert flow.describe(first)["status"] in ("RUNNING", "SUCCEEDED")


# --- rollout and hook loops -----------------------------------------------------------


def _deployment(colour: str = "blue") -> dict[str, Any]:
    return {"id": "d-1", "colour": colour, "service": "canary", "image": f"{REPO}@{NEW}"}


def _holding(p: DeployPorts) -> DeployPorts:
    """``p`` with the lock held by ``_deployment()``'s execution, as after its Begin."""
    assert p.ledger.acquire_lock("d-1", 900)
    return p


class _SlowRollout(FakeCluster):
    def rollout(self, colour: Colour) -> RolloutState:
        return replace(super().rollout(colour), complete=False, ready=1, available=1)


def test_rollout_past_its_bound_fails() -> None:
    # GIVEN a rollout that never completes nor stalls, polled for longer than its deadline
    p = _holding(DeployPorts(**{**ports().__dict__, "cluster": _SlowRollout(blue=NEW, green=OLD)}))
    loop = {"image": f"{REPO}@{NEW}", "waited": 655, "waitSeconds": 15, "polls": 40}

    # WHEN it is polled once more THEN the loop's bound (deadline + margin) ends it
    with pytest.raises(RolloutFailed, match="not complete after 670s"):
        check_rollout({"deployment": _deployment(), "rollout": loop}, p)


def test_rollout_within_its_bound_asks_for_another_poll() -> None:
    p = _holding(DeployPorts(**{**ports().__dict__, "cluster": _SlowRollout(blue=NEW, green=OLD)}))
    loop = {"image": f"{REPO}@{NEW}", "waited": 10, "waitSeconds": 8, "polls": 2}

    reading = check_rollout({"deployment": _deployment(), "rollout": loop}, p)

    assert reading["complete"] is False
    assert (reading["waited"], reading["polls"], reading["waitSeconds"]) == (18, 3, 15)


def test_rollout_image_changed_behind_our_back_fails() -> None:
    p = _holding(ports())
    loop = {"image": f"{REPO}@{NEW}", "waited": 0, "waitSeconds": 2, "polls": 0}

    with pytest.raises(RolloutFailed, match="changed to"):
        check_rollout({"deployment": _deployment(), "rollout": loop}, p)


class _HungJobs(FakeCluster):
    def hook_run(self, job_name: str, log_lines: int = 50) -> Any:
        from bluegreen.domain.models import HookRun

        return HookRun(job_name, finished=False, succeeded=False)


def _hook_event(hook: Hook, waited: int) -> dict[str, Any]:
    return {
        "deployment": _deployment(),
        "phase": "deploy",
        "hook": {
            "name": hook.name,
            "command": list(hook.command),
            "onFailure": hook.on_failure,
            "timeoutSeconds": hook.timeout_seconds,
        },
        "run": {"job": "job-1", "waited": waited, "waitSeconds": 15, "polls": 9},
    }


def test_hung_hook_times_out_into_rollback() -> None:
    p = ports()
    cluster = _HungJobs(blue=OLD, green=OLD)
    p = _holding(DeployPorts(**{**p.__dict__, "cluster": cluster}))
    p.ledger.put_deployment(_record())

    with pytest.raises(HookFailed, match="timed out after 60s"):
        check_hook(_hook_event(Hook("warm", ("true",), timeout_seconds=60), waited=50), p)


def test_hung_hook_with_continue_policy_is_reported_not_raised() -> None:
    p = ports()
    p = _holding(DeployPorts(**{**p.__dict__, "cluster": _HungJobs(blue=OLD, green=OLD)}))
    p.ledger.put_deployment(_record())
    hook = Hook("warm", ("true",), on_failure="continue", timeout_seconds=60)

    run = check_hook(_hook_event(hook, waited=50), p)

    assert run["finished"] is True
    assert run["succeeded"] is False
    assert "timed out" in run["reason"]
    record = p.ledger.deployment("d-1")
    assert record is not None
    assert record.hook_logs["warm"].startswith("[failed: timed out")


def _record() -> Any:
    from bluegreen.domain.models import Deployment

    return Deployment(
        id="d-1",
        application="wp-platform",
        action="deploy",
        role=Role.CANARY,
        colour=Colour.BLUE,
        to_digest=NEW,
        from_digest=OLD,
        trigger="console",
        actor="t",
        started_at=datetime.now(UTC),
    )


def test_unknown_step_is_named() -> None:
    with pytest.raises(InvalidInput, match="'launch' is not a step"):
        run_step({"step": "launch"}, ports())


# --- lock and supersede ---------------------------------------------------------------


def test_lock_wait_backs_off_then_times_out() -> None:
    p = ports(lock_lease_seconds=40)
    p.ledger.holder = "other"  # type: ignore[attr-defined]
    event: dict[str, Any] = {
        "input": {"action": "deploy", "image": str(NEW)},
        "execution": {"name": "me", "arn": "arn"},
    }
    waits = []
    for _ in range(5):
        state = run_step({"step": "begin", **event}, p)
        waits.append(state["waitSeconds"])
        event["state"] = state
    # bound: the lease (a dead holder's lock expires) plus one longest wait
    assert waits == [5, 10, 20, 40, 60]
    with pytest.raises(LockTimeout) as raised:
        run_step({"step": "begin", **event}, p)
    assert "held by other" in str(raised.value)


def test_retried_begin_keeps_what_ran_before() -> None:
    # GIVEN a Begin that applied the image, then failed to answer (and is retried)
    p = ports()
    event = {
        "step": "begin",
        "input": {"action": "deploy", "image": str(NEW)},
        "execution": {"name": "d-retry", "arn": "arn"},
    }
    run_step(event, p)

    # WHEN the Retry runs it again
    again = run_step(event, p)

    # THEN the digest that ran before is still the one before the apply, not NEW
    assert again["deployment"]["fromDigest"] == str(OLD)
    assert p.cluster.writes == [(Colour.BLUE, f"{REPO}@{NEW}")]  # type: ignore[attr-defined]


def test_newer_push_of_the_tag_supersedes_a_waiting_auto_deploy() -> None:
    p = ports()
    now = datetime.now(UTC)
    p.ledger.record_push(OLD, "dev", now, "e1")
    p.ledger.record_push(NEW, "dev", now + timedelta(seconds=5), "e2")
    # the auto-deploy of OLD's push, recorded before its execution started
    pushed = p.ledger.image(OLD)
    assert pushed is not None
    p.ledger.open_deployment(
        autodeploy.push_deployment(pushed, "dev", p.settings, name="auto-old", waits_behind=None)
    )
    event = {
        "step": "begin",
        "input": {"action": "deploy", "image": str(OLD)},
        "execution": {"name": "auto-old", "arn": "arn"},
    }

    result = run_step(event, p)

    assert result["status"] == "superseded"
    assert result["newer"] == str(NEW)
    assert p.cluster.writes == []  # type: ignore[attr-defined]
    assert p.ledger.holder is None  # type: ignore[attr-defined]


def test_console_deploy_of_an_older_digest_is_not_superseded() -> None:
    p = ports()
    now = datetime.now(UTC)
    p.ledger.record_push(OLD, "dev", now, "e1")
    p.ledger.record_push(NEW, "dev", now + timedelta(seconds=5), "e2")
    event = {
        "step": "begin",
        "input": {"action": "deploy", "image": str(OLD)},
        "execution": {"name": "manual-old", "arn": "arn"},
    }

    assert run_step(event, p)["status"] == "applied"


# --- health, notify, auto-deploy --------------------------------------------------------


def test_health_reports_every_problem() -> None:
    cluster = FakeCluster(blue=OLD, green=OLD)
    cluster.broken.add(str(OLD))
    probes = HealthProbes(http=FakeHttp(503), alarms=FakeAlarms(["p99", "other"]))
    policy = HealthPolicy(url="http://127.0.0.1/health", alarm_names=("p99", "errors"))

    problems = health_problems(cluster, Colour.BLUE, policy, probes)

    assert len(problems) == 3
    assert "0/2 available" in problems[0]
    assert "HTTP 503" in problems[1]
    assert problems[2].endswith("p99")


def test_health_without_optional_checks_does_not_probe() -> None:
    class Refuse:
        def status(self, url: str) -> tuple[int, str]:
            raise AssertionError("no URL configured: must not be called")

        def states(self, names: Any) -> AlarmStates:
            raise AssertionError("no alarms configured: must not be called")

    cluster = FakeCluster(blue=OLD, green=OLD)
    probes = HealthProbes(http=Refuse(), alarms=Refuse())

    assert health_problems(cluster, Colour.BLUE, HealthPolicy(), probes) == []


class _Events:
    def __init__(self, failed: bool = False) -> None:
        self.entries: list[dict[str, Any]] = []
        self.failed = failed

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries.extend(Entries)
        if self.failed:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "Throttled"}]}
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}


def test_notifier_sends_source_type_and_detail() -> None:
    events = _Events()
    Notifier(events, source="eks-bluegreen", event_bus_name="ops").publish(
        "Deployment Succeeded", {"digest": str(NEW)}
    )

    (entry,) = events.entries
    assert entry["Source"] == "eks-bluegreen"
    assert entry["DetailType"] == "Deployment Succeeded"
    assert entry["EventBusName"] == "ops"
    assert json.loads(entry["Detail"]) == {"digest": str(NEW)}


def test_notifier_raises_on_a_rejected_entry() -> None:
    with pytest.raises(RuntimeError, match="Throttled"):
        Notifier(_Events(failed=True), source="s").publish("Deployment Failed", {})


def test_auto_deploy_only_for_configured_tags() -> None:
    started: list[tuple[str, dict[str, object]]] = []

    class Flow:
        def start(self, name: str, flow_input: dict[str, object]) -> str:
            started.append((name, flow_input))
            return f"arn:{name}"

        def describe(self, execution_arn: str) -> dict[str, object]:
            return {}

    built: list[int] = []

    settings = Settings(auto_deploy_tags=("dev", "qa"))
    ledger = FakeLedger()

    def make() -> autodeploy.AutoDeployPorts:
        built.append(1)
        return autodeploy.AutoDeployPorts(settings, Flow(), ledger)

    hook = autodeploy.on_recorded(settings, make)
    record = ImageRecord("rezfusion-cloud", NEW, frozenset({"dev"}), datetime.now(UTC))

    hook(record, "latest")
    hook(record, None)
    assert built == []

    hook(record, "qa")
    ((name, flow_input),) = started
    assert name == execution_name("wp-platform", "deploy", NEW.hex)
    assert flow_input["image"] == str(NEW)
    assert parse_request(flow_input).service is Role.CANARY
    # who started it is the ledger's record, written before the start, never the input's
    assert "trigger" not in flow_input
    recorded = ledger.deployment(name)
    assert recorded is not None
    assert (recorded.trigger, recorded.actor, recorded.tag) == ("ecr-push", "ecr-push", "qa")


# --- in-process Lambda dispatch -----------------------------------------------------------


def test_in_process_dispatch_maps_exceptions_to_error_types(
    shared_rig: tuple[FlowRig, Router],
) -> None:
    # GIVEN the flow's moto function routed (innermost block wins) to a handler that raises
    rig = shared_rig[0]
    (name,) = rig.machine.function_names
    client = rig.clients["lambda"]

    def handler(event: Any, context: Any) -> Any:
        if event.get("fail"):
            raise RolloutFailed("blue stalled")
        return {"echo": event, "function": context.function_name}

    with dispatch_lambdas_in_process({name: handler}):
        ok = client.invoke(FunctionName=name, Payload=b'{"a": 1}')
        bad = client.invoke(FunctionName=name, Payload=b'{"fail": true}')

    # THEN results and errors come back as the Lambda runtime returns them
    assert json.loads(ok["Payload"].read()) == {"echo": {"a": 1}, "function": name}
    assert bad["FunctionError"] == "Handled"
    assert json.loads(bad["Payload"].read()) == {
        "errorType": "RolloutFailed",
        "errorMessage": "blue stalled",
    }


def test_local_substitutions_are_the_templates() -> None:
    # GIVEN the template's DefinitionSubstitutions for the deploy state machine
    from local.aws import load_template
    from local.stepfunctions import DEFINITION, FUNCTIONS, render_definition

    machine = load_template()["Resources"]["DeployStateMachine"]["Properties"]

    # THEN the local wiring substitutes exactly those names, and nothing is left over
    assert set(machine["DefinitionSubstitutions"]) == set(FUNCTIONS)
    assert machine["DefinitionUri"] == str(DEFINITION.relative_to(DEFINITION.parents[1]))
    rendered = json.loads(render_definition(dict.fromkeys(FUNCTIONS, "arn:aws:lambda:x")))
    assert rendered["StartAt"] == "Begin"
