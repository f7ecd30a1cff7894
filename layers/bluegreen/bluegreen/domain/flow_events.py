"""What an execution of the deploy flow went through: its history, event by event.

Step Functions records every state entered and left, every task result and
failure; ``bluegreen.logic.timeline`` reads these events as the phases of a
deployment, through the ``ports.ExecutionHistory`` port.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

StepStatus = Literal["running", "waiting", "succeeded", "failed"]
"""Where a phase of a deployment stands, as its timeline shows it."""


@dataclass(frozen=True)
class FlowEvent:
    """One history event, with the parts of its details the timeline reads.

    ``type`` is Step Functions' own event type (``TaskStateEntered``,
    ``LambdaFunctionFailed``, ``MapIterationStarted``...). ``state`` is the state's
    name on state events; ``input`` and ``output`` are the decoded JSON a state
    received or produced (or a task returned); ``error`` and ``cause`` come with
    failures; ``index`` numbers a Map's iterations.
    """

    id: int
    type: str
    timestamp: datetime
    state: str = ""
    input: object = None
    output: object = None
    error: str = ""
    cause: str = ""
    index: int | None = None
