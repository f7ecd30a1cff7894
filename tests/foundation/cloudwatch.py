"""moto's CloudWatch, answering DescribeAlarms the way CloudWatch documents it.

moto 5.2 returns composite alarms whatever ``AlarmTypes`` says, ignores
``StateValue`` when names are given, takes any number of names, and routes no
``PutCompositeAlarm`` (although its ``PutMetricAlarm`` code stores an
``AlarmRule``). CloudWatch returns metric alarms only unless ``AlarmTypes``
asks for composite ones (which is how an alarm veto can miss a composite
alarm), filters by ``StateValue`` and takes at most 100 names.
``cloudwatch_as_documented()`` makes moto do the same while it is active, so
the tests judge the code against CloudWatch, not against moto's shortcuts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

_MAX_NAMES = 100


@contextmanager
def cloudwatch_as_documented() -> Iterator[None]:
    """Patch moto's CloudWatch responses for the duration of the block."""
    from moto.cloudwatch.exceptions import ValidationError
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    original = CloudWatchResponse.describe_alarms

    def describe_alarms(self: Any) -> Any:
        names = self._get_param("AlarmNames", [])
        if len(names) > _MAX_NAMES:
            raise ValidationError(f"AlarmNames: at most {_MAX_NAMES} names, got {len(names)}")
        answered: dict[str, Any] = original(self).result  # type: ignore[assignment]
        types = self._get_param("AlarmTypes", []) or ["MetricAlarm"]
        state = self._get_param("StateValue")
        kept = {}
        for key, kind in (("MetricAlarms", "MetricAlarm"), ("CompositeAlarms", "CompositeAlarm")):
            alarms = list(answered.get(key, [])) if kind in types else []
            kept[key] = [a for a in alarms if not state or a.state_value == state]
        return ActionResult(kept)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CloudWatchResponse, "describe_alarms", describe_alarms)
        patch.setattr(
            CloudWatchResponse,
            "put_composite_alarm",
            CloudWatchResponse.put_metric_alarm,
            raising=False,
        )
        yield


def put_metric_alarm(client: Any, name: str) -> None:
    """A metric alarm on a latency metric, in state OK until set otherwise."""
    client.put_metric_alarm(
        AlarmName=name,
        Namespace="WpPlatform",
        MetricName="CheckoutLatency",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.5,
        ComparisonOperator="GreaterThanThreshold",
    )
