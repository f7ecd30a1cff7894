"""One contract for every entry point: the API, ECR pushes and console executions.

The real deploy.asl.json on moto, the real deploy_steps handler, the real DynamoDB
ledger and the cluster emulator. The API side is ``bluegreen.logic.services`` with
the real adapters (``Stack.request_deploy``); a console run is a bare
``StartExecution``. Assertions read the ledger's records and the cluster.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from bluegreen.adapters.stepfunctions import StepFunctionsFlow
from bluegreen.domain.executions import execution_arn, execution_name
from bluegreen.domain.models import Outcome, Role, Verdict
from bluegreen.logic.autodeploy import AutoDeployPorts, on_recorded
from bluegreen.logic.requests import Caller
from local.stepfunctions import shortened_waits
from tests.flow.conftest import SEED_BLUE, SEED_GREEN, Stack
from tests.flow.fakes import digest

pytestmark = pytest.mark.flow

NEW, NEWER = digest(0xB1), digest(0xB2)
ALICE = "arn:aws:iam::123456789012:user/alice"


def caller(request_id: str = "req-1") -> Caller:
    return Caller(ALICE, "203.0.113.9", request_id)


def _wait_until(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.01)


# --- a failed digest needs a real boolean force, from the console too -------------------------


def test_a_console_deploy_of_a_failed_digest_is_refused_and_changes_nothing(stack: Stack) -> None:
    # GIVEN NEW was pushed, deployed and judged failed
    stack.push(NEW, "release-2")
    stack.ledger.set_verdict(NEW, Verdict.FAILED, "HookFailed: cache flush")

    # WHEN the console deploys it without force
    run = stack.run({"action": "deploy", "image": str(NEW)})

    # THEN DigestFailed, and nothing changed: cluster, verdict, ledger, lock
    assert run.status == "FAILED"
    assert run.error == "DigestFailed"
    assert '"force": true' in (run.cause or "")
    assert "HookFailed: cache flush" in (run.cause or "")
    assert run.states == ["Begin", "ReleaseAndFail", "AppliedBeforeFailing?", "DeploymentFailed"]
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert stack.jobs() == []
    assert stack.ledger.verdict(NEW) is Verdict.FAILED
    assert stack.ledger.deployment(run.name) is None
    assert stack.ledger.lock_holder() is None


def test_force_true_deploys_a_failed_digest_on_purpose(stack: Stack) -> None:
    # GIVEN NEW was judged failed
    stack.ledger.set_verdict(NEW, Verdict.FAILED, "flaky health URL")

    # WHEN the console deploys it with "force": true
    run = stack.run({"action": "deploy", "image": str(NEW), "force": True, "reason": "URL fixed"})

    # THEN it is deployed, and the record says it was forced
    assert run.status == "SUCCEEDED", run.cause
    assert stack.running("blue") == stack.image(NEW)
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert (record.force, record.reason, record.trigger) == (True, "URL fixed", "console")


@pytest.mark.parametrize("force", ["true", 1, None, "yes"])
def test_force_must_be_a_json_boolean(stack: Stack, force: object) -> None:
    # GIVEN a failed digest
    stack.ledger.set_verdict(NEW, Verdict.FAILED, "broken")

    # WHEN the console sends a force that is not a JSON boolean
    run = stack.run({"action": "deploy", "image": str(NEW), "force": force})

    # THEN InvalidInput names the field and says what it must be; nothing happened
    assert run.error == "InvalidInput"
    assert (run.cause or "").startswith("force: must be a JSON boolean")
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert stack.ledger.deployment(run.name) is None


def test_a_digest_judged_failed_while_its_deploy_waited_is_refused_when_it_gets_the_lock(
    stack: Stack,
) -> None:
    # GIVEN another deployment holds the lock when the API accepts a deploy of NEW
    assert stack.ledger.acquire_lock("earlier-deploy", 600)
    stack.push(NEW, "release-2")
    with shortened_waits(0.01):
        started = stack.request_deploy(caller(), str(NEW), reason="ship the cart fix")
        _wait_until(
            lambda: "WaitForLock" in stack.rig.entered(started.execution_arn),
            "the deploy waits for the lock",
        )
        # WHEN NEW is judged failed meanwhile (the holder found it broken), then the lock frees
        stack.ledger.set_verdict(NEW, Verdict.FAILED, "RolloutFailed on the canary")
        stack.ledger.release_lock("earlier-deploy")
        run = stack.rig.wait(started.execution_arn)

    # THEN the verdict was checked again once the lock was held: refused, nothing touched
    assert run.error == "DigestFailed"
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert stack.jobs() == []
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert record.outcome is Outcome.FAILED
    assert record.reason == "ship the cart fix"
    assert "DigestFailed" in record.cause
    assert stack.ledger.lock_holder() is None


# --- who started it is what really started it ----------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("trigger", "ecr-push"),
        ("actor", "arn:aws:iam::123456789012:root"),
        ("sourceIp", "10.0.0.1"),
    ],
)
def test_a_console_input_cannot_claim_who_started_it(stack: Stack, claim: str, value: str) -> None:
    # WHEN a console execution claims to come from somewhere else
    run = stack.run({"action": "deploy", "image": str(NEW), claim: value})

    # THEN it is refused, naming the field and why; nothing is recorded nor changed
    assert run.error == "InvalidInput"
    cause = run.cause or ""
    assert cause.startswith(f"{claim}: is not accepted in the input")
    assert "never what an input claims" in cause
    assert stack.ledger.deployment(run.name) is None
    assert stack.running("blue") == stack.image(SEED_BLUE)


def test_a_console_run_is_recorded_as_a_console_run(stack: Stack) -> None:
    # WHEN a console execution deploys NEW with a reason
    run = stack.run({"action": "deploy", "image": str(NEW), "reason": "try the fix"})

    # THEN the ledger says console, by an unknown actor (Step Functions does not say who)
    assert run.status == "SUCCEEDED", run.cause
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert (record.trigger, record.actor, record.source_ip) == ("console", "unknown", "")
    assert record.reason == "try the fix"


class _Watching:
    """The deploy state machine, noting what the ledger held for a request at its start."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._flow = StepFunctionsFlow(stack.rig.machine.arn, stack.rig.sfn)
        self.at_start: dict[str, Any] = {}
        self.inputs: dict[str, dict[str, object]] = {}

    def start(self, name: str, flow_input: dict[str, object]) -> str:
        self.at_start[name] = self._stack.ledger.deployment(name)
        self.inputs[name] = flow_input
        return self._flow.start(name, flow_input)

    def describe(self, execution_arn: str) -> dict[str, object]:
        return self._flow.describe(execution_arn)


def test_an_api_deploy_is_recorded_with_its_caller_before_its_execution_starts(
    stack: Stack,
) -> None:
    # GIVEN the API's deploy logic, on a flow that notes the ledger at each start
    from bluegreen.logic import services

    stack.push(NEW, "release-2")
    flow = _Watching(stack)

    # WHEN alice deploys NEW by tag
    started = services.request_deploy(
        stack.release_ports(flow=flow, registry=_Registry()),
        caller(),
        "release-2",
        Role.CANARY,
        reason="checkout fix",
    )
    run = stack.rig.wait(started.execution_arn)

    # THEN the record existed before the start, naming alice, her IP, the reason and the tag
    before = flow.at_start[started.deployment_id]
    assert before is not None
    assert (before.trigger, before.actor, before.source_ip) == ("api", ALICE, "203.0.113.9")
    assert (before.reason, before.tag, before.to_digest) == ("checkout fix", "release-2", NEW)
    # AND the input claims nothing about who started it
    assert not {"trigger", "actor", "sourceIp"} & set(flow.inputs[started.deployment_id])
    # AND the flow kept it: the final record still says so
    assert run.status == "SUCCEEDED", run.cause
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert (record.trigger, record.actor, record.source_ip) == ("api", ALICE, "203.0.113.9")
    assert (record.reason, record.tag, record.outcome) == (
        "checkout fix",
        "release-2",
        Outcome.SUCCEEDED,
    )


class _Registry:
    def has_digest(self, digest_: object) -> bool:
        return True

    def tag_points_at(self, tag: str) -> None:
        return None


class _RefusingFlow:
    """A state machine whose StartExecution fails (throttled, denied, unreachable)."""

    def start(self, name: str, flow_input: dict[str, object]) -> str:
        raise RuntimeError("ThrottlingException: Rate exceeded")

    def describe(self, execution_arn: str) -> dict[str, object]:
        return {}


def test_a_request_whose_start_fails_leaves_no_running_record(stack: Stack) -> None:
    from bluegreen.logic import services

    # GIVEN a state machine that refuses to start
    stack.push(NEW, "release-2")

    # WHEN alice's deploy is asked for
    with pytest.raises(RuntimeError, match="ThrottlingException"):
        services.request_deploy(
            stack.release_ports(flow=_RefusingFlow(), registry=_Registry()),
            caller("req-refused"),
            str(NEW),
            reason="checkout fix",
        )

    # THEN the error reached the caller and the record says the flow was never started
    name = execution_name(stack.settings.application, "deploy", f"{NEW.hex}-req-refused")
    record = stack.ledger.deployment(name)
    assert record is not None
    assert record.outcome is Outcome.FAILED
    assert "could not be started" in record.cause
    assert "ThrottlingException" in record.cause
    assert record.reason == "checkout fix"
    assert record.finished_at is not None
    assert [d for d in stack.ledger.deployments()[0] if d.outcome is Outcome.RUNNING] == []


def test_an_execution_its_entry_point_gave_up_on_changes_nothing(stack: Stack) -> None:
    from bluegreen.logic import services

    # GIVEN the API told alice her deploy could not be started
    stack.push(NEW, "release-2")
    with pytest.raises(RuntimeError):
        services.request_deploy(
            stack.release_ports(flow=_RefusingFlow(), registry=_Registry()),
            caller("req-lost"),
            str(NEW),
        )
    name = execution_name(stack.settings.application, "deploy", f"{NEW.hex}-req-lost")

    # WHEN the execution starts after all (a start whose answer was lost on its way back)
    run = stack.run({"action": "deploy", "image": str(NEW)}, name)

    # THEN it changes nothing: the caller was told it failed, and that stays true
    assert run.error == "RequestAbandoned"
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert stack.jobs() == []
    record = stack.ledger.deployment(name)
    assert record is not None
    assert record.outcome is Outcome.FAILED
    assert "could not be started" in record.cause
    assert stack.ledger.lock_holder() is None


class _LostAnswer:
    """Starts the execution, waits until it claims its record, then loses the answer."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._flow = StepFunctionsFlow(stack.rig.machine.arn, stack.rig.sfn)

    def start(self, name: str, flow_input: dict[str, object]) -> str:
        self._flow.start(name, flow_input)
        _wait_until(
            lambda: (
                (found := self._stack.ledger.deployment(name)) is not None
                and bool(found.execution_arn)
            ),
            "the execution claims its record",
        )
        raise TimeoutError("Read timeout on endpoint URL")

    def describe(self, execution_arn: str) -> dict[str, object]:
        return {}


def test_a_start_whose_answer_was_lost_but_that_ran_is_reported_started(stack: Stack) -> None:
    from bluegreen.logic import services

    # GIVEN a StartExecution that starts the execution but whose answer never comes back
    stack.push(NEW, "release-2")

    # WHEN alice's deploy is asked for
    started = services.request_deploy(
        stack.release_ports(flow=_LostAnswer(stack), registry=_Registry()),
        caller("req-timeout"),
        str(NEW),
    )

    # THEN the execution had claimed the record first, so she is told it started: and it ran
    run = stack.rig.wait(started.execution_arn)
    assert run.status == "SUCCEEDED", run.cause
    assert stack.running("blue") == stack.image(NEW)
    record = stack.ledger.deployment(started.deployment_id)
    assert record is not None
    assert (record.outcome, record.actor) == (Outcome.SUCCEEDED, ALICE)


def test_a_console_deploy_by_tag_deploys_what_the_tag_named_when_it_started(
    stack: Stack,
) -> None:
    # GIVEN dev points at NEW, and another deployment holds the lock
    stack.push(NEW, "dev")
    assert stack.ledger.acquire_lock("earlier-deploy", 600)
    with shortened_waits(0.01):
        # WHEN the console deploys dev, and dev moves to NEWER while it waits
        arn = stack.rig.start({"action": "deploy", "image": "dev"}, "console-dev")
        _wait_until(
            lambda: "WaitForLock" in stack.rig.entered(arn), "the deploy waits for the lock"
        )
        stack.push(NEWER, "dev")
        stack.ledger.release_lock("earlier-deploy")
        run = stack.rig.wait(arn)

    # THEN the retried Begins deployed what dev named when the run started
    assert run.status == "SUCCEEDED", run.cause
    assert run.states.count("Begin") >= 2
    assert stack.running("blue") == stack.image(NEW)
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert (record.to_digest, record.tag, record.from_digest) == (NEW, "dev", SEED_BLUE)


# --- the caller's reason is kept on every outcome ------------------------------------------------


@pytest.mark.parametrize("outcome", ["succeeded", "rolled_back", "failed"])
def test_the_callers_reason_is_kept_whatever_the_outcome(stack: Stack, outcome: str) -> None:
    # GIVEN a digest that will succeed, roll back (SEED_GREEN healthy) or find nothing safe
    if outcome == "rolled_back":
        stack.ledger.set_verdict(SEED_GREEN, Verdict.HEALTHY)
        stack.emulator.faults.break_image(str(NEW))
    if outcome == "failed":
        stack.ledger.set_verdict(SEED_BLUE, Verdict.FAILED, "earlier incident")
        stack.emulator.faults.break_image(str(NEW))
    stack.push(NEW, "release-2")

    # WHEN alice deploys it through the API with her reason
    started = stack.request_deploy(caller(), str(NEW), reason="pin the checkout fix")
    stack.rig.wait(started.execution_arn)

    # THEN the record ends as expected, with her reason and, apart, how it ended
    record = stack.ledger.deployment(started.deployment_id)
    assert record is not None
    assert record.outcome.value == outcome
    assert record.reason == "pin the checkout fix"
    expected_cause = {
        "succeeded": "healthy on blue",
        "rolled_back": "RolloutFailed",
        "failed": "No digest to roll back to",
    }[outcome]
    assert expected_cause in record.cause


def test_a_push_deploy_is_recorded_as_the_push_with_its_tag_to_the_end(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.ecr_push import app as ecr_push
    from functions.ecr_push import dependencies as ecr_push_dependencies
    from local.lambdas import LambdaContext
    from tests.events import load_event

    # GIVEN ecr_push wired to this stack's ledger and state machine, as deployed, its
    # application the only one naming its repository (the folder's stacks share a table,
    # and a push is recorded for every application naming the repository)
    repository = f"repo-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("BG_STATE_MACHINE_ARN", stack.rig.machine.arn)
    monkeypatch.setenv("BG_REPOSITORY_NAME", repository)
    ecr_push_dependencies.reset()
    settings = ecr_push_dependencies.settings()
    seam = on_recorded(settings, lambda: AutoDeployPorts(settings, stack.flow, stack.ledger))
    monkeypatch.setattr(ecr_push_dependencies, "auto_deploy", lambda: seam)
    event = load_event("ecr_push/tagged_push.json")
    event["detail"]["repository-name"] = repository
    pushed = event["detail"]["image-digest"]

    # WHEN the README's tagged push sample arrives
    answer = ecr_push.lambda_handler(
        event,
        LambdaContext(
            function_name="ecr-push",
            invoked_function_arn="arn:aws:lambda:us-west-2:123456789012:function:ecr-push",
        ),
    )
    ecr_push_dependencies.reset()

    # THEN it deployed itself, and the record says a push of dev did it, to the end
    assert answer == {"recorded": True, "digest": pushed, "tags": ["dev"]}
    name = execution_name(stack.settings.application, "deploy", pushed.removeprefix("sha256:"))
    run = stack.rig.wait(execution_arn(stack.rig.machine.arn, name))
    assert run.status == "SUCCEEDED", run.cause
    record = stack.ledger.deployment(name)
    assert record is not None
    assert (record.trigger, record.actor, record.tag) == ("ecr-push", "ecr-push", "dev")
    assert (record.outcome, record.reason) == (Outcome.SUCCEEDED, f"push of {repository}:dev")
