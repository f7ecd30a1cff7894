"""The deploy flow never touches a colour a production Service selects for canary work.

The real deploy.asl.json on moto's interpreter, the real handler and ledger, and the
cluster emulator left the way an interrupted switch or a hand edit leaves it. The flow
checks the roles right before each write to a colour (the apply, a hook's Job, the
rollback's apply), because an execution can start, or go on, after the roles changed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bluegreen.domain.models import Outcome, Verdict
from functions.deploy_steps import app as deploy_steps
from local.cluster import ClusterEmulator
from tests.flow.conftest import NAMESPACE, SEED_BLUE, SEED_GREEN, Stack
from tests.flow.fakes import digest
from tests.flow.harness import FlowRig, Router

pytestmark = pytest.mark.flow

NEW = digest(0xB1)


def set_roles(emulator: ClusterEmulator, selector: str, canary: str, production: str) -> None:
    """canaryEnv.selector and each Service's selector, as a cut-short switch leaves them."""

    def canary_env(configmap: dict[str, Any]) -> None:
        value = json.loads(configmap["data"]["canaryEnv"])
        configmap["data"]["canaryEnv"] = json.dumps({**value, "selector": selector})

    emulator.mutate("configmaps", NAMESPACE, "canary-env", canary_env)
    for name, app in (("canary-service", canary), ("production-service", production)):
        emulator.mutate(
            "services",
            NAMESPACE,
            name,
            lambda service, app=app: service["spec"]["selector"].update(app=app),  # type: ignore[misc]
        )


def deployments(emulator: ClusterEmulator) -> dict[str, tuple[str, str]]:
    """Each Deployment's resourceVersion and web image, as stored."""
    found = {}
    for item in emulator.list("deployments", NAMESPACE):
        container = item["spec"]["template"]["spec"]["containers"][0]
        found[item["metadata"]["name"]] = (item["metadata"]["resourceVersion"], container["image"])
    return found


HALF_SWITCHED = [
    pytest.param(("blue", "green", "green"), id="canary-service-moved"),
    pytest.param(("green", "green", "green"), id="canary-env-written"),
    pytest.param(("green", "blue", "green"), id="production-on-the-canary-colour"),
]


@pytest.mark.parametrize("left", HALF_SWITCHED)
@pytest.mark.parametrize(
    "flow_input",
    [
        pytest.param({"action": "deploy", "image": str(NEW)}, id="canary-deploy"),
        pytest.param(
            {"action": "deploy", "image": str(NEW), "service": "production"},
            id="production-deploy",
        ),
        pytest.param({"action": "rollback", "service": "canary"}, id="canary-rollback"),
    ],
)
def test_an_execution_started_while_the_roles_disagree_fails_and_touches_no_deployment(
    stack: Stack, left: tuple[str, str, str], flow_input: dict[str, Any]
) -> None:
    # GIVEN canaryEnv and the Services disagree (a switch cut short, or a hand edit), and
    # healthy digests a rollback of either colour could go to
    set_roles(stack.emulator, *left)
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)
    stack.ledger.set_verdict(SEED_GREEN, Verdict.HEALTHY)
    before = deployments(stack.emulator)

    # WHEN an execution is started from the console
    run = stack.run(flow_input)

    # THEN it fails with RolesDisagree naming the disagreement; no Deployment was written,
    # no hook Job created, the lock is released and the record says why
    assert run.status == "FAILED", run.cause
    assert run.error == "RolesDisagree"
    assert "canaryEnv and the Services disagree" in (run.cause or "")
    assert "Service selects" in (run.cause or "")
    assert deployments(stack.emulator) == before
    assert stack.jobs() == []
    assert stack.ledger.lock_holder() is None
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert record.outcome is Outcome.FAILED
    assert "RolesDisagree" in record.cause


def test_a_canary_whose_colour_became_production_before_its_hooks_gets_neither_hooks_nor_rollback(
    stack: Stack, shared_rig: tuple[FlowRig, Router]
) -> None:
    # GIVEN a canary deploy to blue whose roles change right after the apply (by hand: the
    # product refuses to switch while the deployment holds the lock): green becomes the
    # canary and blue, running the untested digest, production
    _, router = shared_rig
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)
    switched: list[object] = []

    def switch_behind_the_flows_back(event: Any, context: Any) -> Any:
        if event.get("step") == "start_hook" and not switched:
            switched.append(True)
            set_roles(stack.emulator, "green", "green", "blue")
        return deploy_steps.lambda_handler(event, context)

    router.target = switch_behind_the_flows_back

    # WHEN the flow goes on to the hooks
    run = stack.run({"action": "deploy", "image": str(NEW)})

    # THEN no hook Job runs on what production now selects, and the rollback does not write
    # to it either: the execution fails with RolesDisagree, saying blue is production now
    assert run.status == "FAILED", run.cause
    assert run.error == "RolesDisagree"
    assert run.task_errors.count("RolesDisagree") >= 2
    assert "blue is the production now" in (run.cause or "")
    assert stack.jobs() == []
    assert stack.running("blue") == stack.image(NEW)
    assert stack.running("green") == stack.image(SEED_GREEN)
    assert stack.ledger.lock_holder() is None


def test_a_canary_deploy_after_the_switch_completes_goes_to_the_new_canary(stack: Stack) -> None:
    # GIVEN a switch to green that was cut short, then repeated until it completed
    set_roles(stack.emulator, "green", "green", "green")
    set_roles(stack.emulator, "green", "green", "blue")

    # WHEN a canary deploy runs
    run = stack.run({"action": "deploy", "image": str(NEW)})

    # THEN it deploys green, the canary, and leaves blue, production, alone
    assert run.status == "SUCCEEDED", run.cause
    assert stack.running("green") == stack.image(NEW)
    assert stack.running("blue") == stack.image(SEED_BLUE)
