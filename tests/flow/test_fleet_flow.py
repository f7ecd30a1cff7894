"""The deploy flow for an application of the fleet: a console execution naming ``"app"``
runs every step for that application — its namespace, its hooks, its ledger, its lock —
while another application's lock is held and its cluster untouched."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from bluegreen.domain.models import Outcome, Verdict
from tests.flow.conftest import SEED_BLUE, Stack
from tests.flow.fakes import digest

pytestmark = pytest.mark.flow

NEW = digest(0xB1)


def test_a_console_deploy_naming_an_application_runs_for_it_alone(stack: Stack) -> None:
    # GIVEN a second application in its own namespace, with a pushed digest
    namespace = f"ns-{uuid.uuid4().hex[:6]}"
    app, theirs = stack.register_app(namespace)
    theirs.record_push(NEW, "dev", datetime.now(UTC), "evt-shop")
    # AND a deployment of the stack's own application holding its lock
    assert stack.ledger.acquire_lock("own-deploy-running", 600)

    # WHEN the console deploys the digest for the second application
    run = stack.run({"app": app, "action": "deploy", "image": str(NEW)})

    # THEN it ran to the end for that application, without waiting for the other's lock
    assert run.status == "SUCCEEDED", run.cause
    assert "WaitForLock" not in run.states
    image = stack.image(NEW)
    deployment = stack.emulator.get("deployments", namespace, "blue-deployment")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
    (job,) = stack.emulator.list("jobs", namespace)
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == image
    record = theirs.deployment(run.name)
    assert record is not None
    assert record.outcome is Outcome.SUCCEEDED
    assert theirs.verdict(NEW) is Verdict.HEALTHY
    assert theirs.lock_holder() is None
    # AND the stack's own application is as it was: its cluster, its ledger, its lock
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert stack.jobs() == []
    assert stack.ledger.deployment(run.name) is None
    assert stack.ledger.lock_holder() == "own-deploy-running"


@pytest.mark.parametrize("app", ["nobody-here", "Not A Name", 7])
def test_a_console_run_naming_no_registered_application_is_a_bad_input(
    stack: Stack, app: object
) -> None:
    run = stack.run({"app": app, "action": "deploy", "image": str(NEW)})
    assert run.status == "FAILED"
    assert run.error == "InvalidInput"
    assert run.states == ["Begin", "ReleaseAndFail", "AppliedBeforeFailing?", "DeploymentFailed"]
    assert "app:" in (run.cause or "")
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert stack.jobs() == []
