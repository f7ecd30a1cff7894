"""The Prometheus metric provider, through the port, against Prometheus' API on loopback.

The fake answers the instant queries as Prometheus does (a vector, no series, NaN,
400 ``bad_data``); what a reading means is judged by the one analysis
(``logic.analysis``), as for CloudWatch.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bluegreen.adapters.metrics import build_metrics
from bluegreen.adapters.metrics.prometheus import PrometheusTrafficMetrics, aps_region
from bluegreen.config import Settings
from bluegreen.domain.errors import InvalidInput, MetricQueryInvalid
from bluegreen.domain.metric_queries import DEFAULT_P99_QUERY, MetricProvider
from bluegreen.domain.models import Colour
from bluegreen.domain.promotion import AnalysisPolicy, Finding, Judgement
from bluegreen.logic.analysis import measure
from tests.fake_prometheus import FakePrometheus, bad_data, series

END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
START = END - timedelta(seconds=60)
POLICY = AnalysisPolicy(max_error_percent=1.0, max_p99_seconds=0.5, min_requests=50)
APS = "https://aps-workspaces.us-west-2.amazonaws.com/workspaces/ws-0123abcd-4567"


def settings(url: str, p99_query: str = DEFAULT_P99_QUERY) -> Settings:
    return dataclasses.replace(
        Settings(),
        metric_provider=MetricProvider.PROMETHEUS,
        prometheus_url=url,
        prometheus_p99_query=p99_query,
    )


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    with FakePrometheus() as fake:
        yield fake


def judged(provider: object) -> Judgement:
    """What the analysis makes of blue's window, read through the port."""
    return measure(
        provider,  # type: ignore[arg-type]
        None,
        (),
        POLICY,
        Colour.BLUE,
        start=START,
        end=END,
        weight=10,
    )


def test_a_healthy_canary_passes_from_its_three_queries_at_the_windows_end(
    prometheus: FakePrometheus,
) -> None:
    # GIVEN Prometheus counts 400 requests of blue's backend, none 5xx, a p99 of 80 ms
    prometheus.answers.update(requests=series(400), error_ratio=series(0), p99=series(0.08))
    provider = build_metrics(settings(prometheus.url), lambda service: None)

    # WHEN blue's last minute is judged
    judgement = judged(provider)

    # THEN it passed, on those figures
    assert judgement.finding is Finding.PASSED, judgement.reasons
    assert (judgement.requests, judgement.error_percent, judgement.p99_seconds) == (400, 0, 0.08)
    assert "Service wp-platform/blue-service (blue) in Prometheus" in judgement.reasons[0]
    # AND each query named blue's Traefik service, covered the window, and ran at its end
    asked = prometheus.queries()
    assert set(asked) == {"requests", "error_ratio", "p99"}
    for seen in asked.values():
        assert seen.method == "POST"
        assert seen.path == "/api/v1/query"
        assert seen.form["time"] == f"{END.timestamp():.3f}"
        query = seen.form["query"]
        assert 'service="wp-platform-blue-service-http-80@kubernetesgateway"' in query
        assert "[60s]" in query
        assert "{{" not in query
        # a plain Prometheus is not sent AWS credentials
        assert "Authorization" not in seen.headers


def test_a_canary_answering_5_percent_5xx_fails(prometheus: FakePrometheus) -> None:
    # GIVEN 5 % of blue's 400 requests answered 5xx
    prometheus.answers.update(requests=series(400), error_ratio=series(0.05), p99=series(0.08))
    provider = build_metrics(settings(prometheus.url), lambda service: None)

    # WHEN / THEN the analysis fails it on the error rate
    judgement = judged(provider)
    assert judgement.finding is Finding.FAILED
    assert judgement.error_percent == pytest.approx(5.0)
    assert any("error rate 5.00 % (5xx 20 over 400 requests)" in r for r in judgement.reasons)


def test_a_p99_above_the_highest_bucket_fails(prometheus: FakePrometheus) -> None:
    # GIVEN histogram_quantile puts the p99 in the +Inf bucket (slower than any bucket)
    prometheus.answers.update(requests=series(400), error_ratio=series(0), p99=series("+Inf"))

    # WHEN / THEN that is a p99 above any threshold, not a missing one
    judgement = judged(build_metrics(settings(prometheus.url), lambda service: None))
    assert judgement.finding is Finding.FAILED
    assert any("p99 latency inf s" in r for r in judgement.reasons)


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        ({}, "Prometheus has no series for PrometheusRequestsQuery"),
        (
            {"requests": series(400), "error_ratio": series(0)},
            "Prometheus has no series for PrometheusP99Query",
        ),
        (
            {"requests": series(400), "error_ratio": series("NaN"), "p99": series(0.1)},
            "Prometheus answered NaN for PrometheusErrorRatioQuery",
        ),
        (
            {"requests": series(200, 200), "error_ratio": series(0), "p99": series(0.1)},
            "Prometheus answered 2 series for PrometheusRequestsQuery",
        ),
        (
            {"requests": (503, b"upstream unavailable"), "error_ratio": series(0)},
            "Prometheus did not answer PrometheusRequestsQuery",
        ),
        (
            {
                "requests": series(400),
                "error_ratio": (422, {"status": "error", "errorType": "execution", "error": "x"}),
                "p99": series(0.1),
            },
            "Prometheus refused PrometheusErrorRatioQuery",
        ),
    ],
    ids=["no-series", "no-p99-series", "nan", "two-series", "not-prometheus", "execution-error"],
)
def test_what_cannot_be_read_is_inconclusive_with_the_reason_never_a_pass(
    prometheus: FakePrometheus, answers: dict[str, object], reason: str
) -> None:
    # GIVEN Prometheus answers one of the queries with nothing usable
    prometheus.answers.update(answers)  # type: ignore[arg-type]

    # WHEN blue's window is judged
    judgement = judged(build_metrics(settings(prometheus.url), lambda service: None))

    # THEN it is inconclusive, and says which query and why
    assert judgement.finding is Finding.INCONCLUSIVE
    assert any(r.startswith(reason) for r in judgement.reasons), judgement.reasons


def test_a_prometheus_that_does_not_answer_is_inconclusive() -> None:
    # GIVEN an address on loopback where nothing listens
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = build_metrics(settings(f"http://127.0.0.1:{port}"), lambda service: None)

    # WHEN / THEN every query went unanswered: inconclusive, saying so
    judgement = judged(provider)
    assert judgement.finding is Finding.INCONCLUSIVE
    assert len(judgement.reasons) == 4
    assert all("did not answer" in r for r in judgement.reasons[1:]), judgement.reasons
    # AND the check at a promotion's start does not refuse it (the readings will say)
    provider.check()


def test_no_traffic_is_too_few_requests_not_a_nan(prometheus: FakePrometheus) -> None:
    # GIVEN blue's backend served nothing in the window: the ratio and quantile are NaN
    prometheus.answers.update(requests=series(0), error_ratio=series("NaN"), p99=series("NaN"))

    # WHEN / THEN inconclusive for too little traffic
    judgement = judged(build_metrics(settings(prometheus.url), lambda service: None))
    assert judgement.finding is Finding.INCONCLUSIVE
    assert "only 0 requests reached" in judgement.reasons[0]


def test_a_query_prometheus_cannot_parse_is_a_named_error_at_the_check(
    prometheus: FakePrometheus,
) -> None:
    # GIVEN a p99 query with a typo, which Prometheus refuses to parse
    prometheus.answers.update(
        requests=series(0),
        error_ratio=series(0),
        p99=bad_data('1:20: parse error: unexpected "]" in subquery selector'),
    )
    broken = "histogram_quantile(0.99, sum by (le) (rate(x[{{window}}]]))"
    provider = build_metrics(settings(prometheus.url, p99_query=broken), lambda service: None)

    # WHEN the provider is checked, as a promotion does before it moves anything
    with pytest.raises(MetricQueryInvalid) as refused:
        provider.check()

    # THEN the error names the parameter and Prometheus' words
    assert refused.value.parameter == "PrometheusP99Query"
    assert 'unexpected "]" in subquery selector' in str(refused.value)
    assert "rate(x[60s]])" in str(refused.value)
    # AND well-formed queries pass the check
    prometheus.answers["p99"] = series(0.1)
    provider.check()


def test_a_placeholder_that_does_not_exist_is_refused_when_the_settings_are_read() -> None:
    with pytest.raises(InvalidInput) as refused:
        Settings.from_env(
            {
                "BG_METRIC_PROVIDER": "prometheus",
                "BG_PROMETHEUS_URL": "http://prometheus:9090",
                "BG_PROMETHEUS_REQUESTS_QUERY": "sum(x{svc='{{sevrice}}'})",
            }
        )
    assert refused.value.field == "BG_PROMETHEUS_REQUESTS_QUERY"
    assert "{{sevrice}}" in refused.value.problem


def test_queries_to_amazon_managed_prometheus_are_signed_with_sigv4_for_aps(
    prometheus: FakePrometheus,
) -> None:
    # GIVEN the stack names a workspace of Amazon Managed Service for Prometheus, reached
    # here through a proxy on loopback that is the fake (the test never leaves the machine)
    prometheus.answers.update(requests=series(400), error_ratio=series(0), p99=series(0.08))
    url = APS.replace("https://", "http://")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": prometheus.url}))
    provider = build_metrics(settings(url), lambda service: None, opener=opener)
    assert isinstance(provider, PrometheusTrafficMetrics)

    # WHEN blue is read
    judgement = judged(provider)

    # THEN every query carried a SigV4 signature of the function's credentials for aps
    assert judgement.finding is Finding.PASSED, judgement.reasons
    for seen in prometheus.queries().values():
        assert seen.path == url + "/api/v1/query"
        assert seen.headers["Host"] == "aps-workspaces.us-west-2.amazonaws.com"
        authorization = seen.headers["Authorization"]
        access_key = os.environ["AWS_ACCESS_KEY_ID"]  # the function's, whatever it is
        assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={access_key}/")
        assert "/us-west-2/aps/aws4_request" in authorization
        assert "SignedHeaders=" in authorization
        assert "Signature=" in authorization
        assert seen.headers["X-Amz-Security-Token"] == os.environ["AWS_SESSION_TOKEN"]
        assert "X-Amz-Date" in seen.headers


def test_which_addresses_are_amazon_managed_prometheus() -> None:
    assert aps_region(APS) == "us-west-2"
    assert aps_region("https://aps-workspaces.cn-north-1.amazonaws.com.cn/workspaces/ws-1") == (
        "cn-north-1"
    )
    assert aps_region("http://prometheus.monitoring:9090") is None
    assert aps_region("https://aps-workspaces.example.com/") is None


def test_cloudwatch_stays_the_default_provider() -> None:
    from bluegreen.adapters.metrics.cloudwatch import CloudWatchTrafficMetrics

    provider = build_metrics(Settings(), lambda service: object())
    assert isinstance(provider, CloudWatchTrafficMetrics)
    provider.check()


def test_the_templates_query_defaults_are_the_codes() -> None:
    from bluegreen.domain import metric_queries
    from tests.template.cfn import load_template

    parameters = load_template()["Parameters"]
    assert parameters["PrometheusRequestsQuery"]["Default"] == (
        metric_queries.DEFAULT_REQUESTS_QUERY
    )
    assert parameters["PrometheusErrorRatioQuery"]["Default"] == (
        metric_queries.DEFAULT_ERROR_RATIO_QUERY
    )
    assert parameters["PrometheusP99Query"]["Default"] == metric_queries.DEFAULT_P99_QUERY
