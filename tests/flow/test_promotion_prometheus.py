"""Progressive promotion judged from Prometheus: the real deploy.asl.json on moto, the
gateway router on the cluster emulator, Prometheus' API answered by a fake on loopback.

The numbers are the fake's; what is tested is the wiring (``MetricProvider``
``prometheus`` builds the Prometheus provider, the flow judges by it) and the check
at the start: a query Prometheus cannot parse stops the promotion before any weight
moves. ``tests/dataplane/test_prometheus_analysis.py`` judges real traffic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bluegreen.domain.models import Outcome
from local.stepfunctions import shortened_waits
from tests.fake_prometheus import FakePrometheus, bad_data, kind_of, series
from tests.flow.conftest import SEED_BLUE, Stack
from tests.flow.test_promotion_flow import RouterSampler

pytestmark = pytest.mark.flow

STRATEGY = {"steps": [{"weight": 10, "pause": 60}, {"weight": 100}]}


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    with FakePrometheus() as fake:
        yield fake


@pytest.fixture
def stack(stack_factory: Any, prometheus: FakePrometheus) -> Iterator[Stack]:
    with shortened_waits(0.02):
        yield stack_factory(
            BG_TRAFFIC_ROUTER="gateway",
            BG_METRIC_PROVIDER="prometheus",
            BG_PROMETHEUS_URL=prometheus.url,
            BG_ANALYSIS_INTERVAL_SECONDS="60",
            BG_ANALYSIS_MIN_REQUESTS="50",
        )


def promote(stack: Stack) -> tuple[Any, list[Any]]:
    name = f"{stack.settings.application}-promote"
    with RouterSampler(stack.emulator, "gateway") as sampler:
        arn = stack.rig.start({"action": "promote", "strategy": STRATEGY}, name)
        run = stack.rig.wait(arn, 40.0)
    return run, sampler.seen


def test_a_query_prometheus_cannot_parse_stops_the_promotion_before_anything_moves(
    stack: Stack, prometheus: FakePrometheus
) -> None:
    # GIVEN Prometheus cannot parse the stack's error-ratio query
    prometheus.answers.update(
        requests=series(400),
        error_ratio=bad_data('1:57: parse error: unexpected character inside braces: "!"'),
        p99=series(0.05),
    )

    # WHEN blue is promoted
    run, seen = promote(stack)

    # THEN the execution failed at its beginning with the named error
    assert run.status == "FAILED"
    assert run.error == "MetricQueryInvalid"
    assert "PrometheusErrorRatioQuery" in (run.cause or "")
    assert "unexpected character inside braces" in (run.cause or "")
    assert run.states == [
        "Begin",
        "Route",
        "BeginPromotion",
        "PromotionNotStarted",
        "PromotionFailed",
    ]
    # AND no weight moved: production all on green, the canary rule on blue, throughout
    assert seen == [((0, 100), "blue")]
    # AND the record says why, the digest is not judged, the lock is free
    record = stack.ledger.deployment(f"{stack.settings.application}-promote")
    assert record is not None
    assert record.outcome is Outcome.FAILED
    assert record.cause.startswith("MetricQueryInvalid: PrometheusErrorRatioQuery")
    assert stack.ledger.lock_holder() is None
    # AND Prometheus was asked only by the check, up to the query it refused
    assert [kind_of(seen.form["query"]) for seen in prometheus.seen] == [
        "requests",
        "error_ratio",
    ]


def test_a_canary_prometheus_counts_5_percent_5xx_is_backed_out(
    stack: Stack, prometheus: FakePrometheus
) -> None:
    # GIVEN Prometheus counts 5 % of blue's requests as 5xx
    prometheus.answers.update(requests=series(400), error_ratio=series(0.05), p99=series(0.05))

    # WHEN blue is promoted
    run, seen = promote(stack)

    # THEN the first reading failed it and production went back to green
    assert run.status == "FAILED"
    assert run.error == "AnalysisFailed"
    assert "error rate 5.00 %" in (run.cause or "")
    assert "in Prometheus" in (run.cause or "")
    assert seen == [((0, 100), "blue"), ((10, 90), "blue"), ((0, 100), "blue")]


def test_a_canary_prometheus_finds_healthy_is_promoted(
    stack: Stack, prometheus: FakePrometheus
) -> None:
    # GIVEN Prometheus finds blue's backend healthy
    prometheus.answers.update(requests=series(400), error_ratio=series(0), p99=series(0.05))

    # WHEN blue is promoted
    run, seen = promote(stack)

    # THEN it went through both steps and the roles swapped
    assert run.status == "SUCCEEDED", run.cause
    assert seen == [((0, 100), "blue"), ((10, 90), "blue"), ((100, 0), "green")]
    assert stack.ledger.verdict(SEED_BLUE).value == "healthy"
