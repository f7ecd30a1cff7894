"""``POST /rollback`` and ``POST /promote``: both go through the deploy flow."""

from __future__ import annotations

from typing import Any

import pytest

from bluegreen.domain.flow_input import parse_request
from bluegreen.domain.models import Colour, Outcome, Verdict
from bluegreen.logic.services import REASON_LIMIT
from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import KNOWN, OLDER, REGISTRY, Stack, call, event, pinned, set_image

ALICE = "arn:aws:sts::123456789012:assumed-role/release-engineer/alice"


@pytest.mark.parametrize("service", ["canary", "production"])
def test_rollback_starts_the_flows_rollback(
    stack: Stack, ledger: Any, emu: ClusterEmulator, service: str
) -> None:
    # WHEN a rollback of the service is asked for
    answer = call(event(f"rollback_{service}"))
    # THEN the flow starts its rollback action for that service
    assert answer.status == 202
    assert answer.body["action"] == "rollback"
    assert answer.body["service"] == service
    assert answer.body["queued"] is False
    assert answer.body["waitsBehind"] is None
    assert stack.execution_input(answer.body["executionArn"]) == {
        "action": "rollback",
        "service": service,
    }
    # AND who asked, from where, and what that service ran then are recorded before the start
    record = ledger.deployment(answer.body["deploymentId"])
    assert (record.trigger, record.actor, record.source_ip) == ("api", ALICE, "203.0.113.10")
    colour = Colour.BLUE if service == "canary" else Colour.GREEN
    assert record.seen_image == pinned(OLDER if colour is Colour.BLUE else KNOWN)


@pytest.mark.parametrize("body", [None, ""])
def test_rollback_without_a_body_rolls_the_canary_back(
    stack: Stack, ledger: Any, emu: ClusterEmulator, body: str | None
) -> None:
    # GIVEN a rollback request that carries no body at all (or an empty one)
    request = event("rollback_no_body")
    request["body"] = body
    # WHEN it is sent
    answer = call(request)
    # THEN the canary's rollback is started
    assert answer.status == 202, answer.body
    assert answer.body["service"] == "canary"
    assert stack.execution_input(answer.body["executionArn"])["service"] == "canary"


def test_rollback_sends_the_reason_to_the_flow(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # WHEN a rollback of production is asked for with a reason
    answer = call(
        event("rollback_production", body={"service": "production", "reason": "500s on /cart"})
    )
    # THEN the flow input and the record carry the reason; the record where the caller was
    assert answer.status == 202, answer.body
    flow_input = stack.execution_input(answer.body["executionArn"])
    assert flow_input["reason"] == "500s on /cart"
    record = ledger.deployment(answer.body["deploymentId"])
    assert (record.reason, record.source_ip) == ("500s on /cart", "203.0.113.10")


@pytest.mark.parametrize("route", ["rollback_canary", "promote"])
def test_a_reason_longer_than_the_flow_accepts_is_refused_before_starting(
    stack: Stack, ledger: Any, emu: ClusterEmulator, route: str
) -> None:
    # GIVEN a reason one character over the deploy flow's own limit
    reason = "x" * (REASON_LIMIT + 1)
    # WHEN it is sent
    answer = call(event(route, body={"reason": reason}))
    # THEN it is refused, naming the field, and nothing starts
    assert answer.status == 422
    assert "reason" in answer.body["detail"]
    assert stack.executions() == []


def test_a_reason_at_the_limit_reaches_the_flow_whole(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN a reason exactly as long as the flow accepts
    reason = "y" * REASON_LIMIT
    # WHEN a rollback is sent with it
    answer = call(event("rollback_canary", body={"reason": reason}))
    # THEN the flow input holds all of it, and the flow's own parser accepts it
    assert answer.status == 202, answer.body
    flow_input = stack.execution_input(answer.body["executionArn"])
    assert parse_request(flow_input).reason == reason


@pytest.mark.parametrize("body", [None, ""])
def test_promote_without_a_body_is_accepted(
    stack: Stack, ledger: Any, emu: ClusterEmulator, body: str | None
) -> None:
    # WHEN promotion is asked for with no body
    request = event("promote")
    request["body"] = body
    answer = call(request)
    # THEN the canary's digest goes to production
    assert answer.status == 202, answer.body
    assert stack.execution_input(answer.body["executionArn"])["image"] == str(OLDER)


def test_promote_deploys_the_canary_digest_to_production(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN the blue canary runs OLDER and green production runs KNOWN
    # WHEN promotion is asked for
    answer = call(event("promote"))
    # THEN the flow deploys KNOWN to production
    assert answer.status == 202, answer.body
    flow_input = stack.execution_input(answer.body["executionArn"])
    assert flow_input["action"] == "deploy"
    assert flow_input["image"] == str(OLDER)
    assert flow_input["service"] == "production"
    assert ledger.deployment(answer.body["deploymentId"]).actor == ALICE


def test_promote_refuses_a_failed_digest(stack: Stack, ledger: Any, emu: ClusterEmulator) -> None:
    ledger.set_verdict(OLDER, Verdict.FAILED, "hook failed")
    answer = call(event("promote"))
    assert answer.status == 409
    assert answer.body["error"] == "NotPromotable"
    assert "judged failed" in answer.body["detail"]
    assert stack.executions() == []


def test_promote_refuses_an_unpinned_canary(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    set_image(emu, Colour.BLUE, f"{REGISTRY}:dev")
    answer = call(event("promote"))
    assert answer.status == 409
    assert "not an image pinned by digest" in answer.body["detail"]


def test_promote_refuses_what_production_already_runs(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN both colours run KNOWN
    set_image(emu, Colour.BLUE, pinned(KNOWN))
    answer = call(event("promote"))
    assert answer.status == 409
    assert f"already runs {KNOWN}" in answer.body["detail"]


def _hold_the_lock(ledger: Any, stack: Stack) -> str:
    """A deployment of KNOWN to the canary that holds the lock, as the flow leaves it."""
    holder = f"{stack.application}-deploy-running"
    assert ledger.acquire_lock(holder, 600)
    return holder


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("rollback_canary", {"reason": "5xx"}),
        ("rollback_production", {"service": "production"}),
        ("deploy_to_production", None),
    ],
)
def test_an_action_asked_while_a_deployment_holds_the_lock_is_queued_behind_it(
    stack: Stack, ledger: Any, emu: ClusterEmulator, name: str, body: Any
) -> None:
    # GIVEN a deployment holds the application's lock
    holder = _hold_the_lock(ledger, stack)
    # WHEN a rollback or a deploy is asked for
    answer = call(event(name, body=body) if body else event(name))
    # THEN it is started, and the answer says it is queued and behind which deployment
    assert answer.status == 202, answer.body
    assert answer.body["queued"] is True
    assert answer.body["waitsBehind"] == holder
    # AND the record keeps what it waits behind, for when it gets the lock
    record = ledger.deployment(answer.body["deploymentId"])
    assert record.waits_behind == holder
    assert record.outcome is Outcome.RUNNING
    assert record.colour is None  # not begun: the flow decides once it holds the lock


def test_a_rollback_records_the_image_its_caller_saw_on_that_colour(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN the canary (blue) runs an image by tag, behind the API's back
    set_image(emu, Colour.BLUE, f"{REGISTRY}:dev")
    # WHEN a rollback of the canary is asked for
    answer = call(event("rollback_canary"))
    # THEN what blue ran at that moment is recorded: the flow acts only on that
    assert answer.status == 202, answer.body
    assert ledger.deployment(answer.body["deploymentId"]).seen_image == f"{REGISTRY}:dev"


def test_promote_while_a_deployment_holds_the_lock_is_refused_naming_it(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN a deployment holds the lock (what the canary runs is not settled)
    holder = _hold_the_lock(ledger, stack)
    # WHEN promotion is asked for
    answer = call(event("promote"))
    # THEN 409 names the running deployment, and nothing starts nor is recorded
    assert answer.status == 409, answer.body
    assert answer.body["error"] == "LockHeld"
    assert holder in answer.body["detail"]
    assert stack.executions() == []
    assert ledger.deployments()[0] == []
