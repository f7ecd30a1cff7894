"""``GET /services`` and ``POST /services``: status, the canary switch, deploying an image."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bluegreen.domain.models import Colour, Deployment, Outcome, Role, Verdict
from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import (
    IN_ECR_ONLY,
    KNOWN,
    NAMESPACE,
    OLDER,
    Stack,
    call,
    event,
    roles,
    versions,
)


def test_status_shows_roles_digests_and_agreement(stack: Stack, emu: ClusterEmulator) -> None:
    # GIVEN blue is the canary on OLDER, green production on KNOWN
    # WHEN the status is read
    answer = call(event("get_services"))
    # THEN both roles, each colour's digest and readiness, and agreement are reported
    assert answer.status == 200
    assert answer.body["canary"] == "blue"
    assert answer.body["production"] == "green"
    assert answer.body["colours"]["blue"]["digest"] == str(OLDER)
    assert answer.body["colours"]["green"]["digest"] == str(KNOWN)
    assert answer.body["colours"]["blue"]["replicas"]["ready"] == 2
    assert answer.body["colours"]["blue"]["rollout"] == "complete"
    assert answer.body["canaryEnv"]["selector"] == "blue"
    assert answer.body["inAgreement"] is True


def test_status_flags_services_that_disagree_with_the_configmap(
    stack: Stack, emu: ClusterEmulator
) -> None:
    # GIVEN someone pointed the production Service at blue by hand
    def to_blue(service: dict[str, Any]) -> None:
        service["spec"]["selector"]["app"] = "blue"

    emu.mutate("services", NAMESPACE, "production-service", to_blue)
    # WHEN the status is read
    answer = call(event("get_services"))
    # THEN the disagreement is reported, not hidden
    assert answer.status == 200
    assert answer.body["inAgreement"] is False
    assert "production Service selects blue" in answer.body["disagreements"][0]


def test_switch_makes_green_the_canary_and_records_who(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN blue is the canary
    # WHEN alice asks for green
    answer = call(event("switch_to_green"))
    # THEN green is the canary, blue production, and the ledger says who and from where
    assert answer.status == 200
    assert answer.body == {
        "changed": True,
        "canary": "green",
        "production": "blue",
        "recordId": answer.body["recordId"],
        "recorded": True,
    }
    assert roles(emu) == ("green", "green", "blue")
    record = ledger.deployment(answer.body["recordId"])
    assert record.action == "switch"
    assert record.actor == "arn:aws:sts::123456789012:assumed-role/release-engineer/alice"
    assert record.source_ip == "203.0.113.10"
    assert record.colour is Colour.GREEN


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded"])
def test_switch_sent_as_curl_sends_it_by_default_is_read_as_json(
    stack: Stack, emu: ClusterEmulator, content_type: str | None
) -> None:
    # GIVEN the body of `curl -d '{"selector": "green"}'` (labelled a form, or not at all)
    sent = event("switch_to_green")
    headers = {k: v for k, v in sent["headers"].items() if k.lower() != "content-type"}
    multi = {k: v for k, v in sent["multiValueHeaders"].items() if k.lower() != "content-type"}
    if content_type:
        headers["content-type"] = content_type
        multi["content-type"] = [content_type]
    # WHEN it arrives
    answer = call(dict(sent, headers=headers, multiValueHeaders=multi))
    # THEN it is read as the JSON it is and green becomes the canary
    assert answer.status == 200, answer.body
    assert roles(emu) == ("green", "green", "blue")


def test_switch_the_ledger_cannot_record_still_answers_what_happened(
    stack: Stack, ledger: Any, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the ledger refuses writes
    def refuse(*_: object) -> None:
        raise RuntimeError("table unavailable")

    monkeypatch.setattr(ledger, "put_deployment", refuse)
    # WHEN a switch is asked for
    answer = call(event("switch_to_green"))
    # THEN the switch happened and the answer says it is not recorded
    assert answer.status == 200
    assert answer.body["changed"] is True
    assert answer.body["recorded"] is False
    assert roles(emu) == ("green", "green", "blue")


def test_switch_to_the_current_canary_changes_and_records_nothing(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN blue is already the canary
    before = versions(emu)
    # WHEN blue is asked for
    answer = call(event("switch_to_blue"))
    # THEN 200 with changed false, no write to the cluster, no record
    assert answer.status == 200
    assert answer.body["changed"] is False
    assert answer.body["recordId"] is None
    assert answer.body["recorded"] is False
    assert versions(emu) == before
    assert ledger.deployments()[0] == []


def test_switch_is_refused_while_a_deployment_holds_the_lock(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN a deployment holds the application's lock
    assert ledger.acquire_lock("wp-platform-deploy-running", 600)
    before = versions(emu)
    # WHEN a switch is asked for
    answer = call(event("switch_to_green"))
    # THEN 409 naming the holder, and nothing changed
    assert answer.status == 409
    assert answer.body["error"] == "LockHeld"
    assert "wp-platform-deploy-running" in answer.body["detail"]
    assert versions(emu) == before
    assert roles(emu) == ("blue", "blue", "green")


def test_caller_without_user_arn_is_recorded_by_caller_id(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN an IAM user whose request context carries no userArn
    # WHEN it switches the canary
    answer = call(event("caller_without_user_arn"))
    # THEN the record names the caller id API Gateway saw
    assert answer.status == 200
    assert ledger.deployment(answer.body["recordId"]).actor == "AIDAQEXAMPLEUSERID01"


def _started(stack: Stack, answer: Any) -> dict[str, Any]:
    assert answer.status == 202, answer.body
    return stack.execution_input(answer.body["executionArn"])


def test_deploy_bare_hex_digest_starts_the_flow_for_the_canary(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN KNOWN is in the ledger
    # WHEN its bare hex is posted as imageTag (the original system's form)
    answer = call(event("deploy_hex_digest"))
    # THEN the flow starts with the contract's input, named by the deployment id
    flow_input = _started(stack, answer)
    assert flow_input == {"action": "deploy", "image": str(KNOWN), "service": "canary"}
    # and who asked, from where, is the ledger's record, written before the start
    record = ledger.deployment(answer.body["deploymentId"])
    assert (record.trigger, record.actor, record.source_ip) == (
        "api",
        "arn:aws:sts::123456789012:assumed-role/release-engineer/alice",
        "203.0.113.10",
    )
    assert answer.body["digest"] == str(KNOWN)
    assert answer.body["service"] == "canary"
    assert answer.body["executionArn"].endswith(f":{answer.body['deploymentId']}")
    assert answer.body["consoleUrl"].startswith("https://us-west-2.console.aws.amazon.com/states/")
    # and the cluster is left to the flow: no write at all
    assert all(r.method == "GET" for r in emu.requests)


def test_deploy_sha256_digest_keeps_the_reason(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    answer = call(event("deploy_sha256_digest"))
    flow_input = _started(stack, answer)
    assert flow_input["image"] == str(KNOWN)
    assert flow_input["reason"] == "hotfix 1.4.2"


def test_deploy_tag_resolves_to_its_digest_now(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN release-1.4 points at KNOWN
    # WHEN the tag is posted
    answer = call(event("deploy_tag"))
    # THEN the flow gets the digest, so a later move of the tag cannot change what deploys
    flow_input = _started(stack, answer)
    assert flow_input["image"] == str(KNOWN)
    assert flow_input["reason"] == "tag release-1.4"


def test_deploy_to_production(stack: Stack, ledger: Any, emu: ClusterEmulator) -> None:
    answer = call(event("deploy_to_production"))
    assert _started(stack, answer)["service"] == "production"
    assert answer.body["service"] == "production"


def test_deploy_digest_known_only_to_ecr(stack: Stack, ledger: Any, emu: ClusterEmulator) -> None:
    # GIVEN a digest pushed before the ledger existed (in ECR, not in the ledger)
    # WHEN it is posted
    answer = call(event("deploy_hex_digest", body={"imageTag": str(IN_ECR_ONLY)}))
    # THEN ecr:DescribeImages vouches for it and the flow starts
    assert _started(stack, answer)["image"] == str(IN_ECR_ONLY)


def test_each_request_is_its_own_deployment(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN two requests for the same digest with different request ids
    first = event("deploy_hex_digest")
    second = event("deploy_hex_digest")
    second["requestContext"] = {**second["requestContext"], "requestId": "another-request"}
    # WHEN both are posted, and the first is retried
    a, b, again = call(first), call(second), call(first)
    # THEN two executions exist; the retry answers with the first one
    assert a.body["deploymentId"] != b.body["deploymentId"]
    assert again.body["executionArn"] == a.body["executionArn"]
    assert len(stack.executions()) == 2


def test_deploying_a_digest_judged_failed_is_refused_with_its_reason(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN the ledger judged KNOWN failed
    ledger.set_verdict(KNOWN, Verdict.FAILED, "hook cache-flush failed: exit 1")
    # WHEN KNOWN is posted again, by digest or by its tag
    by_digest = call(event("deploy_hex_digest"))
    by_tag = call(event("deploy_tag"))
    # THEN both are refused, naming the digest, the recorded reason and the way past it
    for answer in (by_digest, by_tag):
        assert answer.status == 409, answer.body
        assert answer.body["error"] == "DigestFailed"
        assert str(KNOWN) in answer.body["detail"]
        assert "hook cache-flush failed: exit 1" in answer.body["detail"]
        assert '"force": true' in answer.body["detail"]
    assert stack.executions() == []


def test_a_digest_only_ecr_knows_that_was_judged_failed_is_refused_too(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN a digest never pushed through the ledger (in ECR only, like a seeded one) that a
    # rollback judged failed
    ledger.set_verdict(IN_ECR_ONLY, Verdict.FAILED, "rolled back by request")
    # WHEN it is posted
    answer = call(event("deploy_hex_digest", body={"imageTag": str(IN_ECR_ONLY)}))
    # THEN it is refused as the flow would refuse it, before anything starts
    assert answer.status == 409, answer.body
    assert answer.body["error"] == "DigestFailed"
    assert str(IN_ECR_ONLY) in answer.body["detail"]
    assert stack.executions() == []


def test_force_deploys_a_digest_judged_failed(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN the ledger judged KNOWN failed
    ledger.set_verdict(KNOWN, Verdict.FAILED, "health check failed")
    # WHEN it is posted with force
    answer = call(event("deploy_force"))
    # THEN the flow starts for it, with the reason
    flow_input = _started(stack, answer)
    assert flow_input["image"] == str(KNOWN)
    assert flow_input["reason"] == "re-deploy after fixing the cache config"


def test_force_goes_with_image_tag_only(stack: Stack, ledger: Any, emu: ClusterEmulator) -> None:
    answer = call(event("switch_to_green", body={"selector": "green", "force": True}))
    assert answer.status == 400
    assert "force: goes with imageTag only" in answer.body["detail"]
    assert roles(emu) == ("blue", "blue", "green")


def _running_deploy(ledger: Any, stack: Stack, role: Role, colour: Colour) -> str:
    """A deployment of KNOWN to ``role`` that holds the lock, as the flow leaves it."""
    deployment_id = f"{stack.application}-deploy-running"
    assert ledger.acquire_lock(deployment_id, 600)
    ledger.put_deployment(
        Deployment(
            id=deployment_id,
            application=stack.application,
            action="deploy",
            role=role,
            colour=colour,
            to_digest=KNOWN,
            from_digest=OLDER,
            trigger="api",
            actor="bob",
            started_at=datetime(2026, 11, 27, 6, 0, tzinfo=UTC),
            outcome=Outcome.RUNNING,
        )
    )
    return deployment_id


def test_deploying_what_the_running_deployment_deploys_is_refused(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN a running deployment holds the lock, deploying KNOWN to the canary (blue)
    running = _running_deploy(ledger, stack, Role.CANARY, Colour.BLUE)
    # WHEN KNOWN is posted for the canary again, by tag
    answer = call(event("deploy_tag"))
    # THEN 409 names the running deployment, and no duplicate is queued
    assert answer.status == 409, answer.body
    assert answer.body["error"] == "AlreadyDeploying"
    assert running in answer.body["detail"]
    assert "to the canary (blue)" in answer.body["detail"]
    assert stack.executions() == []


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("deploy_to_production", None),  # the same digest, the other service
        ("deploy_hex_digest", {"imageTag": OLDER.hex}),  # the same service, another digest
    ],
)
def test_a_deploy_unlike_the_running_one_still_queues(
    stack: Stack, ledger: Any, emu: ClusterEmulator, name: str, body: Any
) -> None:
    # GIVEN a running deployment of KNOWN to the canary holds the lock
    _running_deploy(ledger, stack, Role.CANARY, Colour.BLUE)
    # WHEN a different deployment is posted
    answer = call(event(name, body=body) if body else event(name))
    # THEN it is started (the flow waits for the lock)
    assert answer.status == 202, answer.body
