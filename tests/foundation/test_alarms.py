"""The alarm veto against moto's CloudWatch (answering as CloudWatch documents, see
``tests.foundation.cloudwatch``): metric and composite alarms both count, and a name
that names no alarm fails the health check instead of passing it silently."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from bluegreen.adapters.probes import CloudWatchAlarms
from bluegreen.domain.models import Colour
from bluegreen.logic.health import HealthPolicy, HealthProbes, health_problems
from tests.flow.fakes import FakeCluster, FakeHttp, digest
from tests.foundation.cloudwatch import cloudwatch_as_documented, put_metric_alarm
from tests.foundation.conftest import REGION


@pytest.fixture
def cloudwatch(aws: None) -> Iterator[Any]:
    with cloudwatch_as_documented():
        yield boto3.client("cloudwatch", region_name=REGION)


@pytest.fixture
def names() -> dict[str, str]:
    """This test's alarm names (alarms are per account: the module shares one)."""
    suffix = uuid.uuid4().hex[:8]
    return {kind: f"{kind}-{suffix}" for kind in ("latency", "errors", "checkout")}


def problems(cloudwatch: Any, *alarm_names: str) -> list[str]:
    """What the health check says of a fully available colour, given those alarm names."""
    probes = HealthProbes(http=FakeHttp(), alarms=CloudWatchAlarms(cloudwatch))
    policy = HealthPolicy(alarm_names=alarm_names)
    return health_problems(FakeCluster(digest(1), digest(2)), Colour.BLUE, policy, probes)


def test_a_composite_alarm_in_alarm_vetoes_the_deploy(
    cloudwatch: Any, names: dict[str, str]
) -> None:
    # GIVEN two metric alarms in OK and a composite alarm over them, set to ALARM
    put_metric_alarm(cloudwatch, names["latency"])
    put_metric_alarm(cloudwatch, names["errors"])
    cloudwatch.put_composite_alarm(
        AlarmName=names["checkout"],
        AlarmRule=f'ALARM("{names["latency"]}") OR ALARM("{names["errors"]}")',
    )
    cloudwatch.set_alarm_state(
        AlarmName=names["checkout"], StateValue="ALARM", StateReason="error budget burning"
    )

    # WHEN the health check reads them all
    found = problems(cloudwatch, names["latency"], names["errors"], names["checkout"])

    # THEN the composite alarm is the one problem
    assert found == [f"CloudWatch alarm(s) in ALARM: {names['checkout']}"]


def test_a_misspelled_alarm_name_fails_the_health_check(
    cloudwatch: Any, names: dict[str, str]
) -> None:
    # GIVEN one metric alarm in OK, and AlarmNames that also holds a typo
    put_metric_alarm(cloudwatch, names["latency"])
    typo = names["latency"].replace("latency", "latncy")

    # WHEN the health check reads them
    found = problems(cloudwatch, names["latency"], typo)

    # THEN the unknown name is a problem, named, and not mistaken for an alarm in OK
    (problem,) = found
    assert problem.startswith(f"CloudWatch alarm(s) not found: {typo} ")
    assert names["latency"] not in problem


def test_alarms_that_exist_and_are_not_in_alarm_pass(
    cloudwatch: Any, names: dict[str, str]
) -> None:
    # GIVEN a metric and a composite alarm, both in OK
    put_metric_alarm(cloudwatch, names["latency"])
    cloudwatch.put_composite_alarm(
        AlarmName=names["checkout"], AlarmRule=f'ALARM("{names["latency"]}")'
    )
    cloudwatch.set_alarm_state(AlarmName=names["checkout"], StateValue="OK", StateReason="ok")

    # THEN the health check finds nothing wrong
    assert problems(cloudwatch, names["latency"], names["checkout"]) == []


def test_a_metric_alarm_in_alarm_vetoes_the_deploy(cloudwatch: Any, names: dict[str, str]) -> None:
    put_metric_alarm(cloudwatch, names["latency"])
    cloudwatch.set_alarm_state(AlarmName=names["latency"], StateValue="ALARM", StateReason="slow")

    assert problems(cloudwatch, names["latency"]) == [
        f"CloudWatch alarm(s) in ALARM: {names['latency']}"
    ]


def test_more_names_than_one_request_takes_are_all_read(
    cloudwatch: Any, names: dict[str, str]
) -> None:
    # GIVEN 130 alarms (CloudWatch takes 100 names per request), the 120th in ALARM
    many = [f"{names['latency']}-{n:03d}" for n in range(130)]
    for name in many:
        put_metric_alarm(cloudwatch, name)
    cloudwatch.set_alarm_state(AlarmName=many[119], StateValue="ALARM", StateReason="slow")

    # THEN every one was read: only that one is a problem, none is missing
    assert problems(cloudwatch, *many) == [f"CloudWatch alarm(s) in ALARM: {many[119]}"]
