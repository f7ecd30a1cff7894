"""CloudWatch on moto, as the canary's analysis needs it: ALB metrics and percentiles.

What moto 5.2 does not do, said plainly, and what is done about it here:

- ``GetMetricData`` computes Sum, Average, Minimum, Maximum and SampleCount, but no
  percentile: a ``p99`` stat answers ``None``, which moto then fails to serialise.
  ``percentiles_in_moto()`` teaches moto's statistics the ``pNN`` stats, computed
  by nearest rank from the values published in the period (the simulator publishes
  every response time, with ``Values``/``Counts``, as an ALB's raw samples would
  let CloudWatch do). The product's query is unchanged: it asks for ``p99`` as it
  does of the real service.
- ``PutCompositeAlarm`` is not implemented (``NotImplementedError``), though moto's
  backend models composite alarms (``DescribeAlarms`` returns them under
  ``CompositeAlarms``). ``put_composite_alarm`` puts one into the backend directly;
  moto never evaluates its rule, so its state is whatever ``SetAlarmState`` says.

``publish_target_group`` writes one window of ALB-style per-target-group metrics.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

NAMESPACE = "AWS/ApplicationELB"

_lock = threading.Lock()
_users = 0
_original: Any = None


def percentile(values: Sequence[float], rank: float) -> float | None:
    """The ``rank`` percentile of ``values`` by nearest rank (None without values)."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, math.ceil(rank / 100.0 * len(ordered)) - 1)
    return ordered[min(index, len(ordered) - 1)]


@contextmanager
def percentiles_in_moto() -> Iterator[None]:
    """moto's GetMetricData answers ``pNN`` stats while the block runs (nests, threads)."""
    from moto.cloudwatch.models import Statistics

    global _users, _original

    def with_percentiles(self: Statistics, stat: str) -> Any:
        if stat.startswith("p"):
            try:
                rank = float(stat[1:])
            except ValueError:
                return None
            return percentile(self.metric_single_values_list, rank)
        return _original(self, stat)

    with _lock:
        if _users == 0:
            _original = Statistics.get_statistics_for_type
            Statistics.get_statistics_for_type = with_percentiles  # type: ignore[method-assign]
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                Statistics.get_statistics_for_type = _original  # type: ignore[method-assign]


def put_composite_alarm(
    name: str, rule: str, *, account: str = "123456789012", region: str = "us-west-2"
) -> None:
    """A composite alarm in moto's CloudWatch backend (moto does not serve the API call)."""
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends[account][region].put_metric_alarm(
        name=name,
        namespace="",
        metric_name="",
        comparison_operator="",
        evaluation_periods=0,
        period=0,
        threshold=0.0,
        statistic="",
        description="",
        dimensions=[],
        alarm_actions=[],
        rule=rule,
    )


def publish_target_group(
    client: Any,
    target_group: str,
    *,
    requests: int,
    errors: int,
    latencies: Sequence[float],
    when: datetime,
    load_balancer: str = "",
) -> None:
    """One window of an ALB's per-target-group metrics, as the load balancer publishes them.

    ``latencies`` are the window's response times in seconds (repeated values are
    sent once with their count).
    """
    dimensions = [{"Name": "TargetGroup", "Value": target_group}]
    if load_balancer:
        dimensions.append({"Name": "LoadBalancer", "Value": load_balancer})
    counts: dict[float, int] = {}
    for latency in latencies:
        rounded = round(float(latency), 4)
        counts[rounded] = counts.get(rounded, 0) + 1
    data: list[dict[str, Any]] = [
        {
            "MetricName": "RequestCount",
            "Dimensions": dimensions,
            "Timestamp": when,
            "Value": float(requests),
            "Unit": "Count",
        },
        {
            "MetricName": "HTTPCode_Target_5XX_Count",
            "Dimensions": dimensions,
            "Timestamp": when,
            "Value": float(errors),
            "Unit": "Count",
        },
    ]
    if counts:
        values = sorted(counts)
        # PutMetricData takes at most 150 distinct values per datum.
        for start in range(0, len(values), 150):
            chunk = values[start : start + 150]
            data.append(
                {
                    "MetricName": "TargetResponseTime",
                    "Dimensions": dimensions,
                    "Timestamp": when,
                    "Values": chunk,
                    "Counts": [float(counts[v]) for v in chunk],
                    "Unit": "Seconds",
                }
            )
    for start in range(0, len(data), 20):
        client.put_metric_data(Namespace=NAMESPACE, MetricData=data[start : start + 20])
