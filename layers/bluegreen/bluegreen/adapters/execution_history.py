"""The deploy flow's execution histories, read from Step Functions.

``GetExecutionHistory`` pages by 1000 events; a deploy with long rollout or
lock waits has a few hundred, so the pages are read to the end up to a bound
that keeps one API request within API Gateway's 29 seconds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bluegreen.domain.errors import NotFound
from bluegreen.domain.flow_events import FlowEvent

PAGE_SIZE = 1000
MAX_PAGES = 10
"""At most this many pages are read; a longer history is reported as cut short."""


class StepFunctionsHistory:
    """``ports.ExecutionHistory`` over a boto3 ``stepfunctions`` client."""

    def __init__(self, client: Any, max_pages: int = MAX_PAGES) -> None:
        self._client = client
        self._max_pages = max_pages

    def events(self, execution_arn: str) -> tuple[list[FlowEvent], bool]:
        """Every event of the execution, oldest first, and whether it was cut short."""
        request: dict[str, Any] = {
            "executionArn": execution_arn,
            "maxResults": PAGE_SIZE,
            "includeExecutionData": True,
        }
        events: list[FlowEvent] = []
        for _ in range(self._max_pages):
            try:
                page = self._client.get_execution_history(**request)
            except self._client.exceptions.ExecutionDoesNotExist:
                raise NotFound(f"no execution {execution_arn}") from None
            events.extend(flow_event(raw) for raw in page.get("events") or [])
            token = page.get("nextToken")
            if not token:
                return events, False
            request["nextToken"] = token
        return events, True


def flow_event(raw: dict[str, Any]) -> FlowEvent:
    """One history event as the timeline reads it; details of unknown shape are left out."""
    details: dict[str, Any] = next(
        (value for key, value in raw.items() if key.endswith("EventDetails")), {}
    )
    index = details.get("index")
    return FlowEvent(
        id=int(raw.get("id") or 0),
        type=str(raw.get("type") or ""),
        timestamp=_timestamp(raw.get("timestamp")),
        state=str(details.get("name") or ""),
        input=_decoded(details.get("input")),
        output=_decoded(details.get("output")),
        error=str(details.get("error") or ""),
        cause=str(details.get("cause") or ""),
        index=index if isinstance(index, int) else None,
    )


def _decoded(text: object) -> object:
    # Inputs and outputs are JSON text; one cut short by Step Functions' size limit is
    # not JSON any more and is left out rather than failing the whole history.
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _timestamp(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return datetime.fromtimestamp(0, UTC)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.fromtimestamp(0, UTC)
