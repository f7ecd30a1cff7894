"""The canary's analysis: its conditions, and the ALB metrics and alarms it reads on moto.

moto's CloudWatch lacks two things the analysis uses (``local.cloudwatch`` says what
and how they are stood in for): percentile stats in GetMetricData, and the
PutCompositeAlarm call (its backend models composite alarms; they are put there).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bluegreen.adapters.metrics.cloudwatch import CloudWatchTrafficMetrics, period_for
from bluegreen.adapters.probes import CloudWatchAlarms
from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.models import Colour
from bluegreen.domain.promotion import AnalysisPolicy, Finding, TargetGroupMetrics
from bluegreen.logic.analysis import judge, measure
from local.cloudwatch import (
    percentile,
    percentiles_in_moto,
    publish_target_group,
    put_composite_alarm,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = AnalysisPolicy(max_error_percent=1.0, max_p99_seconds=0.5, min_requests=50)
BLUE_TG = "targetgroup/k8s-wp-blue/0123456789abcdef"
GREEN_TG = "targetgroup/k8s-wp-green/fedcba9876543210"


def _judge(
    requests: float,
    errors: float,
    p99: float | None,
    alarming: tuple[str, ...] = (),
    missing: tuple[str, ...] = (),
) -> Any:
    return judge(
        TargetGroupMetrics(BLUE_TG, requests, errors, p99),
        alarming,
        missing,
        POLICY,
        start=NOW - timedelta(minutes=1),
        end=NOW,
        weight=10,
    )


def test_a_quiet_healthy_canary_passes() -> None:
    judged = _judge(1000, 5, 0.2)
    assert judged.finding is Finding.PASSED
    assert "error rate 0.50 % over 1000 requests" in judged.describe()


@pytest.mark.parametrize(
    ("requests", "errors", "p99", "alarming", "missing", "said"),
    [
        (1000, 51, 0.2, (), (), "error rate 5.10 % (5xx 51 over 1000 requests) is above 1 %"),
        (1000, 0, 2.0, (), (), "p99 latency 2.000 s is above 0.5 s"),
        (1000, 0, 0.2, ("checkout-errors",), (), "alarm 'checkout-errors' is in ALARM"),
        (1000, 0, 0.2, (), ("chekout-errors",), "alarm 'chekout-errors' does not exist"),
        (10, 3, 0.2, (), (), "error rate 30.00 %"),
    ],
    ids=["error-rate", "p99", "alarm", "missing-alarm", "errors-on-little-traffic"],
)
def test_any_failure_condition_fails_the_reading_and_says_which(
    requests: float,
    errors: float,
    p99: float,
    alarming: tuple[str, ...],
    missing: tuple[str, ...],
    said: str,
) -> None:
    judged = _judge(requests, errors, p99, alarming, missing)
    assert judged.finding is Finding.FAILED
    assert said in judged.describe()


@pytest.mark.parametrize(
    ("requests", "p99", "said"),
    [
        (12, 0.2, "only 12 requests"),
        (0, None, "only 0 requests"),
        (500, None, "no TargetResponseTime"),
    ],
)
def test_too_little_to_judge_is_inconclusive_never_passed(
    requests: float, p99: float | None, said: str
) -> None:
    judged = _judge(requests, 0, p99)
    assert judged.finding is Finding.INCONCLUSIVE
    assert said in judged.describe()


def test_the_nearest_rank_percentile() -> None:
    assert percentile([0.1] * 98 + [1.0, 2.0], 99) == 1.0
    assert percentile([], 99) is None


@pytest.mark.parametrize(("seconds", "period"), [(0.2, 1), (3, 5), (45, 60), (61, 120), (300, 300)])
def test_a_window_is_read_as_one_period_cloudwatch_accepts(seconds: float, period: int) -> None:
    assert period_for(seconds) == period


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws(), percentiles_in_moto():
        yield boto3.client("cloudwatch", region_name="us-west-2")


def test_the_canarys_target_group_is_read_alone_sums_and_p99(cloudwatch: Any) -> None:
    # GIVEN a minute of blue's traffic (1.5 % slow) and, beside it, green's, far worse
    when = datetime.now(UTC) - timedelta(seconds=30)
    publish_target_group(
        cloudwatch, BLUE_TG, requests=200, errors=4, latencies=[0.1] * 197 + [3.0] * 3, when=when
    )
    publish_target_group(
        cloudwatch, GREEN_TG, requests=900, errors=300, latencies=[9.0] * 10, when=when
    )
    metrics = CloudWatchTrafficMetrics(cloudwatch, {Colour.BLUE: BLUE_TG, Colour.GREEN: GREEN_TG})

    # WHEN blue's window is read
    found = metrics.measure(Colour.BLUE, when - timedelta(seconds=30), when + timedelta(seconds=30))

    # THEN its own sums and p99, none of green's
    assert (found.requests, found.errors) == (200, 4)
    assert found.p99_seconds == pytest.approx(3.0)
    assert found.target_group == BLUE_TG


def test_a_window_without_traffic_reads_zero_and_no_p99(cloudwatch: Any) -> None:
    metrics = CloudWatchTrafficMetrics(cloudwatch, {Colour.BLUE: BLUE_TG})
    found = metrics.measure(Colour.BLUE, NOW - timedelta(minutes=1), NOW)
    assert (found.requests, found.errors, found.p99_seconds) == (0, 0, None)


def test_a_colour_without_a_target_group_is_refused_naming_the_setting(cloudwatch: Any) -> None:
    metrics = CloudWatchTrafficMetrics(cloudwatch, {Colour.GREEN: GREEN_TG})
    with pytest.raises(InvalidInput) as refused:
        metrics.measure(Colour.BLUE, NOW - timedelta(minutes=1), NOW)
    assert refused.value.field == "BG_ANALYSIS_TARGET_GROUPS"
    assert "no target group for blue" in str(refused.value)


def test_a_composite_alarm_in_alarm_fails_a_reading_of_a_healthy_canary(cloudwatch: Any) -> None:
    # GIVEN healthy canary traffic, a metric alarm that is OK and a composite one in ALARM
    when = datetime.now(UTC) - timedelta(seconds=10)
    publish_target_group(cloudwatch, BLUE_TG, requests=500, errors=0, latencies=[0.1], when=when)
    cloudwatch.put_metric_alarm(
        AlarmName="latency",
        MetricName="TargetResponseTime",
        Namespace="AWS/ApplicationELB",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="latency", StateValue="OK", StateReason="fine")
    put_composite_alarm("checkout-health", "ALARM(latency) OR ALARM(payments)")
    cloudwatch.set_alarm_state(AlarmName="checkout-health", StateValue="ALARM", StateReason="x")

    # WHEN the canary is measured with both alarms configured
    judged = measure(
        CloudWatchTrafficMetrics(cloudwatch, {Colour.BLUE: BLUE_TG}),
        CloudWatchAlarms(cloudwatch),
        ("latency", "checkout-health"),
        POLICY,
        Colour.BLUE,
        start=when - timedelta(seconds=20),
        end=when + timedelta(seconds=20),
        weight=10,
    )

    # THEN the composite alarm fails it; the OK one is not named
    assert judged.finding is Finding.FAILED
    assert "alarm 'checkout-health' is in ALARM" in judged.describe()
    assert "'latency'" not in judged.describe()
