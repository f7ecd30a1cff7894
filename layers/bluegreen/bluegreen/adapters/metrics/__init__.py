"""The metric providers of the canary's analysis, one module each behind ``ports.TrafficMetrics``.

``cloudwatch``
    the ALB's per-target-group metrics (``GetMetricData``).
``prometheus``
    PromQL over the proxy's metrics, from a Prometheus server or Amazon Managed
    Service for Prometheus (SigV4).

``build_metrics`` builds the one the stack's ``MetricProvider`` names. What a
reading means (pass, fail, inconclusive, the limits) is judged once, outside the
providers (``bluegreen.logic.analysis``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bluegreen.domain.metric_queries import MetricProvider, QueryTemplate
from bluegreen.domain.models import Colour

if TYPE_CHECKING:
    import urllib.request

    from bluegreen.config import Settings
    from bluegreen.domain.ports import TrafficMetrics

QUERY_PARAMETERS = {
    "requests": "PrometheusRequestsQuery",
    "error_ratio": "PrometheusErrorRatioQuery",
    "p99": "PrometheusP99Query",
}
"""The stack parameter holding each query: what ``MetricQueryInvalid`` names."""


def build_metrics(
    settings: Settings,
    aws_client: Callable[[str], Any],
    *,
    credentials: Callable[[], Any] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> TrafficMetrics:
    """The stack's metric provider.

    ``aws_client`` makes boto3 clients (CloudWatch's); ``credentials`` signs the
    queries to Amazon Managed Service for Prometheus (the function's own by
    default); ``opener`` is how Prometheus is reached over HTTP (urllib's default).
    """
    if settings.metric_provider is MetricProvider.PROMETHEUS:
        from bluegreen.adapters.metrics.prometheus import (
            PrometheusTrafficMetrics,
            SigV4Signer,
            aps_region,
        )

        region = aps_region(settings.prometheus_url)

        def placeholders(colour: Colour) -> Mapping[str, str]:
            return {
                "namespace": settings.namespace,
                "service": settings.colour_service_name(colour),
                "port": settings.colour_service_port,
                "colour": colour.value,
            }

        return PrometheusTrafficMetrics(
            settings.prometheus_url,
            requests=QueryTemplate.parse(
                settings.prometheus_requests_query, QUERY_PARAMETERS["requests"]
            ),
            error_ratio=QueryTemplate.parse(
                settings.prometheus_error_ratio_query, QUERY_PARAMETERS["error_ratio"]
            ),
            p99=QueryTemplate.parse(settings.prometheus_p99_query, QUERY_PARAMETERS["p99"]),
            placeholders=placeholders,
            signer=SigV4Signer(region, credentials) if region else None,
            opener=opener,
        )
    from bluegreen.adapters.metrics.cloudwatch import CloudWatchTrafficMetrics

    return CloudWatchTrafficMetrics(
        aws_client("cloudwatch"), settings.analysis_target_groups, settings.analysis_load_balancer
    )
