"""``POST /rollback`` and ``POST /promote``: both go through the deploy flow."""

from __future__ import annotations

from typing import Any

import pytest

from bluegreen.models import Colour, Verdict
from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import KNOWN, OLDER, REGISTRY, Stack, call, event, pinned, set_image

ALICE = "arn:aws:sts::123456789012:assumed-role/release-engineer/alice"


@pytest.mark.parametrize("service", ["canary", "production"])
def test_rollback_starts_the_flows_rollback(
    stack: Stack, ledger: Any, emu: ClusterEmulator, service: str
) -> None:
    # WHEN a rollback of the service is asked for
    answer = call(event(f"rollback_{service}"))
    # THEN the flow starts its rollback action for that service, with who asked
    assert answer.status == 202
    assert answer.body["action"] == "rollback"
    assert answer.body["service"] == service
    assert stack.execution_input(answer.body["executionArn"]) == {
        "action": "rollback",
        "service": service,
        "trigger": "api",
        "actor": ALICE,
    }


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
    assert flow_input["actor"] == ALICE


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
