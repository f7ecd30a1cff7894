"""A queued action acts only on the state its caller saw.

Requests go through the services API's handler (API Gateway events from
``events/services_api/``) and start the real deploy.asl.json on moto, whose tasks
run the real deploy_steps handler against the cluster emulator and the DynamoDB
ledger. A gate in front of the deploy_steps handler holds a broken deploy in its
rollout for as long as the test needs, so that the requests arrive while it
holds the lock, as they did on the local stack.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bluegreen.domain.errors import LockTimeout
from bluegreen.domain.models import Outcome, Verdict
from bluegreen.logic.steps import run_step
from functions.services_api import app as api_app
from functions.services_api.api import dependencies
from local.lambdas import LambdaContext
from local.stepfunctions import shortened_waits
from tests.events import load_event
from tests.flow.conftest import SEED_BLUE, SEED_GREEN, Stack
from tests.flow.fakes import FakeCluster, FakeLedger, digest
from tests.flow.harness import FlowRig, Router
from tests.flow.test_rollback_and_lease import _ports

pytestmark = pytest.mark.flow

HEALTHY, BROKEN, HOTFIX = digest(0xC1), digest(0xC2), digest(0xC3)
ALICE = "arn:aws:sts::123456789012:assumed-role/release-engineer/alice"


class Gate:
    """Holds the deploy_steps task of one execution's rollout check until opened."""

    def __init__(self, router: Router, execution_name: str) -> None:
        self._inner = router.target
        self._name = execution_name
        self.reached = threading.Event()
        self._open = threading.Event()
        router.target = self

    def __call__(self, event: Any, context: Any) -> Any:
        deployment = event.get("deployment") or {}
        if event.get("step") == "check_rollout" and deployment.get("id") == self._name:
            self.reached.set()
            assert self._open.wait(30), "the gate was never opened"
        assert self._inner is not None
        return self._inner(event, context)

    def open(self) -> None:
        self._open.set()


@pytest.fixture
def api(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The services API's handler, configured for the stack's application and state machine."""
    monkeypatch.setenv("BG_STATE_MACHINE_ARN", stack.rig.machine.arn)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "services-api")
    dependencies.reset()

    def call(name: str, request_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        event = load_event(f"services_api/{name}.json")
        event["body"] = json.dumps(body)
        event["requestContext"] = {**event["requestContext"], "requestId": request_id}
        context = LambdaContext(
            function_name="services-api",
            invoked_function_arn="arn:aws:lambda:us-west-2:123456789012:function:services-api",
        )
        answer = api_app.lambda_handler(event, context)
        return int(answer["statusCode"]), json.loads(answer["body"])

    yield call
    dependencies.reset()


@pytest.fixture
def long_lease(stack_factory: Any) -> Stack:
    """A stack whose lock wait bound is far beyond what these tests wait."""
    return stack_factory(BG_LOCK_LEASE_SECONDS="3600")  # type: ignore[no-any-return]


@pytest.fixture
def stack(long_lease: Stack) -> Stack:
    return long_lease


def test_rollbacks_and_a_production_deploy_queued_behind_a_broken_deploy_act_on_what_was_seen(
    stack: Stack, api: Any, shared_rig: tuple[FlowRig, Router]
) -> None:
    # GIVEN the canary (blue) went from SEED_BLUE to HEALTHY, judged healthy; production
    # (green) runs SEED_GREEN, never judged; BROKEN and HOTFIX never become ready
    stack.push(HEALTHY, "release-1")
    assert stack.run({"action": "deploy", "image": str(HEALTHY)}).status == "SUCCEEDED"
    for broken in (BROKEN, HOTFIX):
        stack.push(broken, f"tag-{broken.short}")
        stack.emulator.faults.break_image(str(broken))
    _, router = shared_rig

    with shortened_waits(0.01):
        # AND a deploy of BROKEN to the canary is rolling out (held there by the gate)
        gate = Gate(router, "broken-deploy")
        broken_arn = stack.rig.start({"action": "deploy", "image": str(BROKEN)}, "broken-deploy")
        assert gate.reached.wait(10)

        # WHEN two rollbacks of the canary and a production deploy are sent meanwhile
        answers = [
            api("rollback_canary", "req-rb-1", {"reason": "5xx on the canary"}),
            api("rollback_canary", "req-rb-2", {"reason": "still 5xx"}),
            api(
                "deploy_to_production",
                "req-prod",
                {"imageTag": str(HOTFIX), "service": "production", "reason": "login fix"},
            ),
        ]
        # THEN each is accepted as queued, saying what it waits behind
        for status, body in answers:
            assert status == 202, body
            assert body["queued"] is True
            assert body["waitsBehind"] == "broken-deploy"

        # WHEN the broken deploy is let go: it fails and rolls itself back
        gate.open()
        broken_run = stack.rig.wait(broken_arn, timeout=60)
        runs = [stack.rig.wait(body["executionArn"], timeout=60) for _, body in answers]

    assert broken_run.error == "RolloutFailed"
    # THEN the canary is back on HEALTHY, and stays there: both rollbacks saw BROKEN on it,
    # which it no longer runs, so they end as no-ops and touch no verdict
    assert stack.running("blue") == stack.image(HEALTHY)
    assert stack.ledger.verdict(HEALTHY) is Verdict.HEALTHY
    for run, reason in zip(runs[:2], ["5xx on the canary", "still 5xx"], strict=True):
        assert run.status == "SUCCEEDED", run.cause
        assert run.states[-1] == "NothingToDo"
        record = stack.ledger.deployment(run.name)
        assert record is not None
        assert record.outcome is Outcome.NO_OP
        assert record.reason == reason
        assert record.waits_behind == "broken-deploy"
        assert "nothing to roll back" in record.cause
        assert f"not rezfusion-cloud@sha256:{BROKEN.short}" in record.cause
    # AND the failed production deploy went back to what production ran, not to HEALTHY,
    # which never ran on production
    production = runs[2]
    assert production.error == "RolloutFailed"
    assert stack.running("green") == stack.image(SEED_GREEN)
    record = stack.ledger.deployment(production.name)
    assert record is not None
    assert (record.outcome, record.rolled_back_to) == (Outcome.ROLLED_BACK, SEED_GREEN)
    assert (record.reason, record.actor, record.trigger) == ("login fix", ALICE, "api")
    assert "what production ran before, never judged failed" in record.cause
    assert stack.ledger.verdict(HOTFIX) is Verdict.FAILED
    assert stack.ledger.verdict(SEED_GREEN) is Verdict.UNKNOWN
    assert stack.ledger.lock_holder() is None


@pytest.mark.parametrize("how", ["rollback requested", "canary deploy failed"])
def test_a_canary_rollback_never_marks_failed_the_digest_production_runs(
    stack: Stack, how: str
) -> None:
    # GIVEN production (green) runs HEALTHY, judged healthy; the canary (blue) runs it too
    # (deployed there first), or runs SEED_BLUE, judged healthy
    stack.push(HEALTHY, "release-1")
    if how == "rollback requested":
        assert stack.run({"action": "deploy", "image": str(HEALTHY)}).status == "SUCCEEDED"
    else:
        stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)
    deployed = stack.run({"action": "deploy", "image": str(HEALTHY), "service": "production"})
    assert deployed.status == "SUCCEEDED", deployed.cause

    # WHEN the canary is rolled back by request, or a canary deploy of HEALTHY fails its hook
    if how == "rollback requested":
        run = stack.run({"action": "rollback", "reason": "5xx on the canary"})
    else:
        stack.emulator.faults.fail_jobs("wp cache flush", count=1)
        run = stack.run({"action": "deploy", "image": str(HEALTHY)})

    # THEN the canary went back to SEED_BLUE, but HEALTHY, which production runs, is not
    # marked failed, and the outcome says so
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert stack.running("green") == stack.image(HEALTHY)
    assert stack.ledger.verdict(HEALTHY) is Verdict.HEALTHY
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert record.outcome is Outcome.ROLLED_BACK, record.cause
    assert f"{HEALTHY.short} was not marked failed: production (green) runs it" in record.cause


def test_a_failed_production_deploy_goes_back_to_what_production_ran(stack: Stack) -> None:
    # GIVEN the canary passed HEALTHY (judged healthy); production runs SEED_GREEN, never
    # judged, and a broken hotfix is sent to production
    stack.push(HEALTHY, "release-1")
    assert stack.run({"action": "deploy", "image": str(HEALTHY)}).status == "SUCCEEDED"
    stack.emulator.faults.break_image(str(HOTFIX))

    # WHEN the production deploy fails
    run = stack.run({"action": "deploy", "image": str(HOTFIX), "service": "production"})

    # THEN production is back on SEED_GREEN: HEALTHY never ran there
    assert run.error == "RolloutFailed"
    assert stack.running("green") == stack.image(SEED_GREEN)
    assert "what production ran before, never judged failed" in (run.cause or "")


def test_lock_timeout_reports_the_seconds_since_the_execution_started(stack_factory: Any) -> None:
    # GIVEN another deployment holds the lock for good, and a short lease (the wait's bound)
    stack: Stack = stack_factory(BG_LOCK_LEASE_SECONDS="1")
    assert stack.ledger.acquire_lock("stuck-deploy", 3600)

    # WHEN a deploy waits for it, in Wait states a hundred times shorter than asked
    started = time.monotonic()
    with shortened_waits(0.001):
        run = stack.run({"action": "deploy", "image": str(HEALTHY)})
    elapsed = time.monotonic() - started

    # THEN LockTimeout, and the Cause counts real seconds, not the 75 the Waits asked for
    assert run.error == "LockTimeout"
    cause = run.cause or ""
    assert "held by stuck-deploy" in cause
    seconds = int(cause.split("stuck-deploy ")[1].split("s after")[0])
    assert seconds <= elapsed + 1
    assert "75s" not in cause
    assert stack.running("blue") == stack.image(SEED_BLUE)


def test_lock_timeout_counts_from_the_executions_start_time() -> None:
    # GIVEN an execution that started 1234 s ago and has asked for 965 s of Waits so far
    ledger = FakeLedger()
    ledger.holder = "stuck-deploy"
    start = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
    ports = _ports(ledger, FakeCluster(blue=SEED_BLUE, green=SEED_GREEN))
    ports = type(ports)(**{**ports.__dict__, "now": lambda: start + timedelta(seconds=1234)})
    event = {
        "step": "begin",
        "input": {"action": "deploy", "image": str(HEALTHY)},
        "execution": {"name": "waiting", "arn": "arn", "startTime": start.isoformat()},
        "state": {"status": "locked", "lockAttempt": 17, "lockWaited": 965},
    }

    # WHEN Begin finds the lock still held THEN LockTimeout says 1234 s, the real wait
    with pytest.raises(LockTimeout) as raised:
        run_step(event, ports)
    assert "held by stuck-deploy 1234s after this execution started" in str(raised.value)
    assert "17 attempts" in str(raised.value)
