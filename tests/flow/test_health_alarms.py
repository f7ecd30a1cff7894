"""The alarm veto in the real flow: deploy_steps reads moto's CloudWatch (answering as
CloudWatch documents, see ``tests.foundation.cloudwatch``) after the bake."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bluegreen.domain.models import Outcome, Verdict
from tests.flow.conftest import SEED_BLUE, Stack
from tests.flow.fakes import digest
from tests.flow.harness import FlowRig, Router
from tests.foundation.cloudwatch import cloudwatch_as_documented, put_metric_alarm

pytestmark = pytest.mark.flow

NEW = digest(0xD1)


@pytest.fixture
def cloudwatch(shared_rig: tuple[FlowRig, Router]) -> Iterator[Any]:
    import boto3

    with cloudwatch_as_documented():
        yield boto3.client("cloudwatch", region_name="us-west-2")


def test_a_composite_alarm_in_alarm_rolls_the_deploy_back(
    stack_factory: Any, cloudwatch: Any
) -> None:
    # GIVEN AlarmNames holds a metric alarm in OK and a composite alarm in ALARM
    suffix = uuid.uuid4().hex[:8]
    latency, checkout = f"latency-{suffix}", f"checkout-{suffix}"
    put_metric_alarm(cloudwatch, latency)
    cloudwatch.put_composite_alarm(AlarmName=checkout, AlarmRule=f'ALARM("{latency}")')
    cloudwatch.set_alarm_state(AlarmName=checkout, StateValue="ALARM", StateReason="5xx budget")
    stack: Stack = stack_factory(BG_ALARM_NAMES=f"{latency},{checkout}")
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)

    # WHEN a digest is deployed to the canary
    run = stack.run({"action": "deploy", "image": str(NEW)})

    # THEN the health check failed on the composite alarm and the canary went back
    assert run.error == "HealthCheckFailed"
    assert f"CloudWatch alarm(s) in ALARM: {checkout}" in (run.cause or "")
    assert stack.running("blue") == stack.image(SEED_BLUE)
    assert stack.ledger.verdict(NEW) is Verdict.FAILED


def test_an_alarm_name_that_does_not_exist_rolls_the_deploy_back(
    stack_factory: Any, cloudwatch: Any
) -> None:
    # GIVEN AlarmNames holds an alarm in OK and a misspelled name
    suffix = uuid.uuid4().hex[:8]
    latency, typo = f"latency-{suffix}", f"latncy-{suffix}"
    put_metric_alarm(cloudwatch, latency)
    stack: Stack = stack_factory(BG_ALARM_NAMES=f"{latency},{typo}")
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY)

    # WHEN a digest is deployed to the canary
    run = stack.run({"action": "deploy", "image": str(NEW), "reason": "checkout fix"})

    # THEN the health check failed closed, naming the alarm it could not find
    assert run.error == "HealthCheckFailed"
    assert f"CloudWatch alarm(s) not found: {typo}" in (run.cause or "")
    assert stack.running("blue") == stack.image(SEED_BLUE)
    record = stack.ledger.deployment(run.name)
    assert record is not None
    assert (record.outcome, record.reason) == (Outcome.ROLLED_BACK, "checkout fix")
