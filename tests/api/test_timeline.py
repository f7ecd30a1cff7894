"""``GET /deployments/{id}/timeline`` through the handler: the route, its answers and
its refusals. (What the phases say is tested on real executions in tests/flow.)"""

from __future__ import annotations

from typing import Any

from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import Stack, call, event


def timeline(deployment_id: str) -> Any:
    return call(
        event(
            "get_deployment_timeline",
            path=f"/deployments/{deployment_id}/timeline",
            pathParameters={"id": deployment_id},
        )
    )


def test_a_started_deployment_has_a_timeline_of_its_execution(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN a deploy the API started (the flow does not run in these tests)
    started = call(event("deploy_hex_digest")).body
    # WHEN its timeline is asked for
    answer = timeline(started["deploymentId"])
    # THEN it names the execution, still running, in the documented shape
    assert answer.status == 200, answer.body
    assert answer.body["id"] == started["deploymentId"]
    assert answer.body["executionArn"] == started["executionArn"]
    assert answer.body["status"] == "RUNNING"
    assert isinstance(answer.body["steps"], list)
    assert answer.body["truncated"] is False
    for step in answer.body["steps"]:
        assert {"phase", "title", "status", "startedAt", "hooks"} <= set(step)


def test_a_switch_has_no_timeline(stack: Stack, ledger: Any, emu: ClusterEmulator) -> None:
    # GIVEN a canary switch, recorded without an execution
    switched = call(event("switch_to_green")).body["recordId"]
    # WHEN its timeline is asked for
    answer = timeline(switched)
    # THEN 404 says why
    assert answer.status == 404
    assert answer.body["error"] == "NotFound"
    assert "canary switch" in answer.body["detail"]


def test_unknown_and_malformed_ids_are_refused(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # WHEN the timeline of an unknown id, then of a malformed one, is asked for
    unknown = timeline("never-started")
    malformed = timeline("not%20an%20id")
    # THEN 404 and 422 (as GET /deployments/{id} answers), each with the API's error body
    assert (unknown.status, unknown.body["error"]) == (404, "NotFound")
    assert malformed.status == 422
    assert malformed.body["error"] == "ValidationError"
    assert "is not a deployment id" in malformed.body["detail"]
