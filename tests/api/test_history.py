"""``GET /images``, ``GET /deployments`` and ``GET /deployments/{id}``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bluegreen.domain.models import Colour, Deployment, Outcome, Role, Verdict
from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import KNOWN, OLDER, Stack, call, event, pinned, set_image


def test_images_newest_first_with_where_they_run(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN KNOWN (newer) on green production, OLDER on the blue canary, KNOWN judged healthy
    ledger.set_verdict(KNOWN, Verdict.HEALTHY, "baked 10 min")
    # WHEN the images are listed
    answer = call(event("get_images"))
    # THEN newest first, with tags, verdict and placement
    assert answer.status == 200
    images = answer.body["images"]
    assert [i["digest"] for i in images] == [str(KNOWN), str(OLDER)]
    assert images[0]["tags"] == ["release-1.4"]
    assert images[0]["runningOn"] == [{"colour": "green", "role": "production"}]
    assert images[1]["runningOn"] == [{"colour": "blue", "role": "canary"}]
    assert images[0]["verdict"] == "healthy"
    assert images[1]["verdict"] == "unknown"


def test_an_image_both_colours_run_lists_both(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    set_image(emu, Colour.BLUE, pinned(KNOWN))
    answer = call(event("get_images"))
    assert answer.body["images"][0]["runningOn"] == [
        {"colour": "blue", "role": "canary"},
        {"colour": "green", "role": "production"},
    ]
    assert answer.body["images"][1]["runningOn"] == []
    assert answer.body["nextCursor"] is None


def test_images_page_through_with_the_cursor(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN two images; WHEN the first page of one is read
    first = call(event("get_images_page"))
    assert first.status == 200
    assert [i["digest"] for i in first.body["images"]] == [str(KNOWN)]
    # THEN its cursor leads to the second
    cursor = first.body["nextCursor"]
    second = call(
        event(
            "get_images_page",
            queryStringParameters={"limit": "1", "cursor": cursor},
            multiValueQueryStringParameters={"limit": ["1"], "cursor": [cursor]},
        )
    )
    assert [i["digest"] for i in second.body["images"]] == [str(OLDER)]


def test_images_still_answer_when_the_cluster_is_down(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN the Kubernetes API answers 503 to everything
    emu.faults.fail_requests(status=503, count=100)
    # WHEN the images are listed
    answer = call(event("get_images"))
    # THEN history comes back with placement unknown and the reason
    assert answer.status == 200
    assert len(answer.body["images"]) == 2
    assert answer.body["images"][0]["runningOn"] is None
    assert "503" in answer.body["clusterError"] or "unavailable" in answer.body["clusterError"]


def _record(ledger: Any, stack: Stack, deployment_id: str, execution_arn: str = "") -> Deployment:
    deployment = Deployment(
        id=deployment_id,
        application=stack.application,
        action="deploy",
        role=Role.CANARY,
        colour=Colour.BLUE,
        to_digest=KNOWN,
        from_digest=OLDER,
        trigger="ecr-push",
        actor="ecr-push",
        started_at=datetime(2026, 11, 26, 12, tzinfo=UTC),
        execution_arn=execution_arn,
    )
    ledger.put_deployment(deployment)
    return deployment


def test_deployments_newest_first(stack: Stack, ledger: Any, emu: ClusterEmulator) -> None:
    # GIVEN a deployment and then a canary switch
    _record(ledger, stack, "wp-platform-deploy-example")
    switched = call(event("switch_to_green")).body["recordId"]
    # WHEN the deployments are listed
    answer = call(event("get_deployments"))
    # THEN the switch comes first, then the deployment
    assert answer.status == 200
    listed = answer.body["deployments"]
    assert [d["id"] for d in listed] == [switched, "wp-platform-deploy-example"]
    assert listed[1]["toDigest"] == str(KNOWN)
    assert listed[1]["outcome"] == "running"


def test_deployment_with_record_and_live_execution(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN a deployment the API started, whose record the flow has written
    started = call(event("deploy_hex_digest")).body
    _record(ledger, stack, started["deploymentId"], started["executionArn"])
    ledger.update_deployment(
        started["deploymentId"], hook_logs={"cache-flush": "Error: YIKES! ... as root"}
    )
    ledger.finish_deployment(started["deploymentId"], Outcome.ROLLED_BACK, "hook failed")
    # WHEN it is read
    answer = call(
        event(
            "get_deployment",
            path=f"/deployments/{started['deploymentId']}",
            pathParameters={"id": started["deploymentId"]},
        )
    )
    # THEN the record and the execution's live status are both there
    assert answer.status == 200
    assert answer.body["record"]["outcome"] == "rolled_back"
    assert answer.body["record"]["cause"] == "hook failed"
    assert answer.body["record"]["hookLogs"] == {"cache-flush": "Error: YIKES! ... as root"}
    assert answer.body["execution"]["status"] == "RUNNING"
    assert answer.body["executionArn"] == started["executionArn"]


def test_deployment_known_only_to_step_functions(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN an execution started from the console, whose first task has not written the
    # record yet
    name = f"{stack.application}-console-run"
    started = {
        "deploymentId": name,
        "executionArn": stack.sfn.start_execution(
            stateMachineArn=stack.state_machine_arn,
            name=name,
            input=json.dumps({"action": "deploy", "image": str(KNOWN)}),
        )["executionArn"],
    }
    # WHEN it is read
    answer = call(
        event(
            "get_deployment",
            path=f"/deployments/{started['deploymentId']}",
            pathParameters={"id": started["deploymentId"]},
        )
    )
    # THEN the answer comes from the execution
    assert answer.status == 200
    assert answer.body["record"] is None
    assert answer.body["execution"]["status"] == "RUNNING"
    assert answer.body["consoleUrl"].endswith(started["executionArn"])


def test_switch_record_reads_back_without_an_execution(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    switched = call(event("switch_to_green")).body["recordId"]
    answer = call(
        event("get_deployment", path=f"/deployments/{switched}", pathParameters={"id": switched})
    )
    assert answer.status == 200
    assert answer.body["record"]["action"] == "switch"
    assert answer.body["execution"] is None
