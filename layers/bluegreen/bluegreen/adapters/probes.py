"""The health checks' probes: HTTP with the standard library, alarms from CloudWatch.

They implement ``bluegreen.logic.health.HttpProbe`` and ``AlarmProbe``.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any


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
    """``AlarmProbe`` over a boto3 ``cloudwatch`` client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def alarming(self, names: Sequence[str]) -> list[str]:
        """Names of the alarms among ``names`` whose state is ALARM."""
        if not names:
            return []
        found: list[str] = []
        paginator = self._client.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmNames=list(names), StateValue="ALARM"):
            found.extend(alarm["AlarmName"] for alarm in page.get("MetricAlarms", []))
            found.extend(alarm["AlarmName"] for alarm in page.get("CompositeAlarms", []))
        return sorted(found)
