"""``POST /rollback`` and ``POST /promote``: both go through the deploy flow."""

from __future__ import annotations

from typing import Any

import pytest

from bluegreen.domain.models import Colour, Verdict
from bluegreen.logic.deploy import parse_request
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
