"""Deployment events on EventBridge, for Slack, SNS or anything else to subscribe to.

The detail types are in ``bluegreen.domain.events``.
"""

from __future__ import annotations

import json
from typing import Any


class Notifier:
    """``ports.Notifier`` over a boto3 ``events`` client.

    Every event has ``source`` = the stack's event source (``settings.event_source``)
    so a rule can match exactly this application's deployments.
    """

    def __init__(self, client: Any, *, source: str, event_bus_name: str = "default") -> None:
        self._client = client
        self._source = source
        self._bus = event_bus_name

    def publish(self, detail_type: str, detail: dict[str, object]) -> None:
        """Put one event; a rejected entry is an error, never silently dropped."""
        response = self._client.put_events(
            Entries=[
                {
                    "Source": self._source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": self._bus,
                }
            ]
        )
        if response.get("FailedEntryCount"):
            entry = response["Entries"][0]
            raise RuntimeError(
                f"EventBridge rejected {detail_type!r}: "
                f"{entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )
