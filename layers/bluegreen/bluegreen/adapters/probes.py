"""The health checks' probes: HTTP with the standard library, alarms from CloudWatch.

They implement ``bluegreen.domain.ports.HttpProbe`` and ``AlarmProbe``.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from bluegreen.domain.models import AlarmStates


class UrllibProbe:
    """``HttpProbe`` with the standard library; redirects are followed."""

    def __init__(self, timeout_seconds: float = 5.0) -> None:
        self._timeout = timeout_seconds

    def status(self, url: str) -> tuple[int, str]:
        """The status code and a short reason; 0 with the error when the request failed."""
        request = urllib.request.Request(url, method="GET")  # noqa: S310 (configured URL)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return int(response.status), str(response.reason)
        except urllib.error.HTTPError as exc:
            return exc.code, str(exc.reason)
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(getattr(exc, "reason", exc))


class CloudWatchAlarms:
    """``AlarmProbe`` over a boto3 ``cloudwatch`` client.

    ``DescribeAlarms`` returns metric alarms only unless ``AlarmTypes`` asks for
    composite alarms as well, so both are asked for; a name neither kind
    answers to does not exist. The caller needs ``cloudwatch:DescribeAlarms`` on
    ``*``: the action has no resource-level permissions, and composite alarms are
    only returned to a caller allowed it on every alarm.
    """

    # DescribeAlarms takes at most 100 names per request.
    _NAMES_PER_REQUEST = 100

    def __init__(self, client: Any) -> None:
        self._client = client

    def states(self, names: Sequence[str]) -> AlarmStates:
        """Which of ``names`` are in ALARM, and which name no alarm at all."""
        wanted = list(dict.fromkeys(names))
        found: dict[str, str] = {}
        paginator = self._client.get_paginator("describe_alarms")
        for start in range(0, len(wanted), self._NAMES_PER_REQUEST):
            batch = wanted[start : start + self._NAMES_PER_REQUEST]
            for page in paginator.paginate(
                AlarmNames=batch, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
            ):
                for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                    found[str(alarm["AlarmName"])] = str(alarm.get("StateValue", ""))
        return AlarmStates(
            alarming=tuple(sorted(n for n in wanted if found.get(n) == "ALARM")),
            missing=tuple(sorted(n for n in wanted if n not in found)),
        )
