"""The load balancer's per-target-group metrics, from CloudWatch ``GetMetricData``.

The AWS Load Balancer Controller gives each colour's Service a target group of its
own; an Application Load Balancer publishes, in the ``AWS/ApplicationELB``
namespace and per ``TargetGroup`` (and ``LoadBalancer``) dimension, what the
canary's analysis judges: ``RequestCount`` and ``HTTPCode_Target_5XX_Count``
(summed over the window) and ``TargetResponseTime`` (its p99). One request reads
all three. ``GetMetricData`` has no resource-level permissions: the function's
policy grants it on ``*``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.models import Colour
from bluegreen.domain.promotion import TargetGroupMetrics

NAMESPACE = "AWS/ApplicationELB"
_SHORT_PERIODS = (1, 5, 10, 30, 60)
"""The periods GetMetricData accepts below a minute (high-resolution metrics)."""


def period_for(seconds: float) -> int:
    """The smallest period GetMetricData accepts that covers ``seconds`` in one datapoint."""
    whole = max(1, math.ceil(seconds))
    for period in _SHORT_PERIODS:
        if whole <= period:
            return period
    return 60 * math.ceil(whole / 60)


class CloudWatchTrafficMetrics:
    """``ports.TrafficMetrics`` over a boto3 ``cloudwatch`` client."""

    def __init__(
        self, client: Any, target_groups: Mapping[Colour, str], load_balancer: str = ""
    ) -> None:
        self._client = client
        self._target_groups = dict(target_groups)
        self._load_balancer = load_balancer

    def check(self) -> None:
        """Nothing to check before a promotion: the queries are fixed, not configured."""

    def measure(self, colour: Colour, start: datetime, end: datetime) -> TargetGroupMetrics:
        """The colour's target group over ``[start, end)``, as one period."""
        target_group = self._target_groups.get(colour)
        if not target_group:
            raise InvalidInput(
                "BG_ANALYSIS_TARGET_GROUPS",
                f"names no target group for {colour.value} (AnalysisTargetGroups): the "
                "canary's error rate and latency cannot be read",
            )
        dimensions = [{"Name": "TargetGroup", "Value": target_group}]
        if self._load_balancer:
            dimensions.append({"Name": "LoadBalancer", "Value": self._load_balancer})
        period = period_for((end - start).total_seconds())

        def query(query_id: str, metric: str, stat: str) -> dict[str, Any]:
            return {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": NAMESPACE,
                        "MetricName": metric,
                        "Dimensions": dimensions,
                    },
                    "Period": period,
                    "Stat": stat,
                },
                "ReturnData": True,
            }

        request: dict[str, Any] = {
            "MetricDataQueries": [
                query("requests", "RequestCount", "Sum"),
                query("errors", "HTTPCode_Target_5XX_Count", "Sum"),
                query("p99", "TargetResponseTime", "p99"),
            ],
            "StartTime": start,
            "EndTime": max(end, start + timedelta(seconds=1)),
            "ScanBy": "TimestampAscending",
        }
        values: dict[str, list[float]] = {"requests": [], "errors": [], "p99": []}
        while True:
            answer = self._client.get_metric_data(**request)
            for result in answer.get("MetricDataResults", []):
                values.setdefault(str(result["Id"]), []).extend(
                    float(v) for v in result.get("Values", []) if v is not None
                )
            token = answer.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
        return TargetGroupMetrics(
            target_group=target_group,
            requests=sum(values["requests"]),
            errors=sum(values["errors"]),
            p99_seconds=max(values["p99"]) if values["p99"] else None,
        )
