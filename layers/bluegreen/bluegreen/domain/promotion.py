"""A progressive promotion: its strategy, how the canary is judged, and what it found.

``Strategy``
    the steps of production's share given to the canary colour, each with a pause
    (seconds, or ``manual``: a person resumes it), ending at 100; at 100 the roles
    swap and the old production colour keeps running for an instant flip-back.
``AnalysisPolicy``
    what a measurement of the canary's target group must show: an error rate and a
    p99 latency at most so high over at least so many requests (the stack's alarms,
    ``Settings.alarm_names``, must not be in ALARM either); how many failed and how
    many inconclusive measurements are tolerated.
``Measurement`` / ``Judgement``
    what CloudWatch said about one window, and what the policy makes of it.

Plain types and their parsing, no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bluegreen.domain.errors import BlueGreenError, InvalidInput
from bluegreen.domain.traffic import PERCENT

MANUAL = "manual"
"""The pause of a step that waits for a person (``POST /deployments/{id}/resume``)."""

PAUSE_MAX = 86_400
"""The longest pause a step may ask for, in seconds (a day: longer is a manual gate)."""

STEPS_MAX = 20


class AnalysisFailed(BlueGreenError):
    """The canary colour failed its analysis: production was set back to the old colour."""


class PromotionAborted(BlueGreenError):
    """A person aborted the promotion: production was set back to the old colour."""


class NotWaiting(BlueGreenError):
    """A resume for a deployment that waits for no person (the message says what it does)."""


class PromotionInProgress(BlueGreenError):
    """A progressive promotion holds the lock and shifts traffic; the message names it."""


@dataclass(frozen=True)
class Step:
    """Give the canary ``weight`` percent of production, then pause.

    ``pause`` is seconds, ``MANUAL``, or None: the stack's default pause (no pause
    on the last step).
    """

    weight: int
    pause: int | str | None = None

    @property
    def manual(self) -> bool:
        return self.pause == MANUAL

    def seconds(self) -> int:
        """The pause in seconds (0 for a manual one, which waits for a person instead)."""
        return self.pause if isinstance(self.pause, int) else 0

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"weight": self.weight}
        if self.pause is not None:
            shown["pause"] = self.pause
        return shown


def _pause(value: object, where: str) -> int | str | None:
    if value is None:
        return None
    if value == MANUAL:
        return MANUAL
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(where, f"must be a whole number of seconds or {MANUAL!r}, got {value!r}")
    if not 0 <= value <= PAUSE_MAX:
        raise InvalidInput(
            where, f"must be from 0 to {PAUSE_MAX} seconds (or {MANUAL!r}), got {value}"
        )
    return value


@dataclass(frozen=True)
class Strategy:
    """The steps of a progressive promotion, ending at 100."""

    steps: tuple[Step, ...]

    @classmethod
    def parse(cls, value: object, *, field_name: str = "strategy") -> Strategy:
        """``{"steps": [{"weight": 10, "pause": 300}, {"weight": 50, "pause": "manual"},
        {"weight": 100}]}``; ``InvalidInput`` names the field and what is wrong."""
        if not isinstance(value, Mapping):
            raise InvalidInput(field_name, f'must be an object {{"steps": [...]}}, got {value!r}')
        unknown = sorted(str(key) for key in value if key != "steps")
        if unknown:
            raise InvalidInput(f"{field_name}.{unknown[0]}", "is not a field of a strategy")
        return cls.parse_steps(value.get("steps"), field_name=f"{field_name}.steps")

    @classmethod
    def parse_steps(cls, value: object, *, field_name: str = "steps") -> Strategy:
        """A list of steps, each ``{"weight": 1-100, "pause": seconds | "manual"}``."""
        if not isinstance(value, Sequence) or isinstance(value, str | bytes) or not value:
            raise InvalidInput(field_name, "must be a non-empty list of steps")
        if len(value) > STEPS_MAX:
            raise InvalidInput(field_name, f"may hold at most {STEPS_MAX} steps, got {len(value)}")
        steps: list[Step] = []
        for index, raw in enumerate(value):
            where = f"{field_name}[{index}]"
            if not isinstance(raw, Mapping):
                raise InvalidInput(where, 'must be an object {"weight": ..., "pause": ...}')
            unknown = sorted(str(key) for key in raw if key not in ("weight", "pause"))
            if unknown:
                raise InvalidInput(f"{where}.{unknown[0]}", "is not a field of a step")
            weight = raw.get("weight")
            if isinstance(weight, bool) or not isinstance(weight, int):
                raise InvalidInput(f"{where}.weight", f"must be a whole percentage, got {weight!r}")
            if not 1 <= weight <= PERCENT:
                raise InvalidInput(f"{where}.weight", f"must be from 1 to {PERCENT}, got {weight}")
            if steps and weight <= steps[-1].weight:
                raise InvalidInput(
                    f"{where}.weight",
                    f"must be more than the step before ({steps[-1].weight}), got {weight}",
                )
            steps.append(Step(weight=weight, pause=_pause(raw.get("pause"), f"{where}.pause")))
        if steps[-1].weight != PERCENT:
            raise InvalidInput(
                field_name,
                f"must end at {PERCENT} (the roles swap there), ends at {steps[-1].weight}",
            )
        return cls(tuple(steps))

    def with_default_pause(self, seconds: int) -> Strategy:
        """Every step without a pause but the last one pauses ``seconds``."""
        last = len(self.steps) - 1
        return Strategy(
            tuple(
                replace(step, pause=seconds if index < last else 0) if step.pause is None else step
                for index, step in enumerate(self.steps)
            )
        )

    @property
    def manual_gates(self) -> int:
        return sum(1 for step in self.steps if step.manual)

    def to_json(self) -> dict[str, Any]:
        return {"steps": [step.to_json() for step in self.steps]}

    def describe(self) -> str:
        """``10 % (300 s) -> 50 % (manual) -> 100 %``."""

        def shown(step: Step) -> str:
            if step.manual:
                return f"{step.weight} % (manual)"
            return f"{step.weight} % ({step.pause} s)" if step.seconds() else f"{step.weight} %"

        return " -> ".join(shown(step) for step in self.steps)


def parse_steps_text(text: str) -> Strategy:
    """The CLI's ``10,50:manual,100`` (``weight[:seconds|manual]``, comma-separated)."""
    steps: list[dict[str, object]] = []
    for index, part in enumerate(p.strip() for p in text.split(",")):
        weight, sep, pause = part.partition(":")
        try:
            step: dict[str, object] = {"weight": int(weight)}
        except ValueError:
            raise InvalidInput(
                f"steps[{index}]", f"{part!r} is not weight[:seconds|manual] (e.g. 50:300)"
            ) from None
        if sep:
            step["pause"] = pause if pause == MANUAL else _seconds_text(pause, index)
        steps.append(step)
    return Strategy.parse_steps(steps)


def _seconds_text(text: str, index: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(
            f"steps[{index}].pause", f"{text!r} is neither seconds nor {MANUAL!r}"
        ) from None


class Finding(enum.StrEnum):
    """What one measurement of the canary says."""

    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class AnalysisPolicy:
    """The success and failure conditions of the canary's analysis (stack settings)."""

    interval_seconds: int = 60
    max_error_percent: float = 1.0
    max_p99_seconds: float = 1.0
    min_requests: int = 50
    failure_limit: int = 0
    inconclusive_limit: int = 2

    def to_json(self) -> dict[str, Any]:
        return {
            "intervalSeconds": self.interval_seconds,
            "maxErrorPercent": self.max_error_percent,
            "maxP99Seconds": self.max_p99_seconds,
            "minRequests": self.min_requests,
            "failureLimit": self.failure_limit,
            "inconclusiveLimit": self.inconclusive_limit,
        }


@dataclass(frozen=True)
class TargetGroupMetrics:
    """A target group's ALB metrics over a window: requests, 5xx answers, p99 latency.

    A metric provider other than CloudWatch fills in the same figures for the colour's
    backend, and names it in ``where`` (``target group <name>`` otherwise).
    ``unreadable`` says why a figure could not be read (the provider did not answer,
    it had no series for a query, it answered NaN): such a reading is inconclusive
    unless what was read fails it, never passed.
    """

    target_group: str
    requests: float
    errors: float
    p99_seconds: float | None
    unreadable: tuple[str, ...] = ()
    where: str = ""


@dataclass(frozen=True)
class Judgement:
    """One measurement of the canary colour and what the policy made of it."""

    finding: Finding
    reasons: tuple[str, ...]
    start: datetime
    end: datetime
    requests: float = 0.0
    error_percent: float | None = None
    p99_seconds: float | None = None
    alarms: tuple[str, ...] = ()
    weight: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """``failed: error rate 5.1 % over 1200 requests (more than 1 %)``."""
        return f"{self.finding.value}: {'; '.join(self.reasons)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "finding": self.finding.value,
            "reasons": list(self.reasons),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "requests": self.requests,
            "errorPercent": self.error_percent,
            "p99Seconds": self.p99_seconds,
            "alarms": list(self.alarms),
            "weight": self.weight,
        }


@dataclass(frozen=True)
class GateDecision:
    """What a person decided at a manual gate, and who."""

    step: int
    decision: str  # "resume" | "abort"
    actor: str
    at: datetime
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "decision": self.decision,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class PromotionRecord:
    """A promotion as its store holds it: the flow's progress, the gate, an abort asked for.

    ``progress`` is what the flow last wrote (step, weights, analyses, status);
    ``waiting`` says why it waits for a person (empty when it does not); the task
    token is what resumes it, never shown.
    """

    promotion_id: str
    progress: Mapping[str, Any]
    waiting: str = ""
    token: str = ""
    gates: tuple[GateDecision, ...] = ()
    abort_requested_by: str = ""
    abort_reason: str = ""

    @property
    def status(self) -> str:
        return str(self.progress.get("status", ""))

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


FINISHED = frozenset({"promoted", "backed_out", "failed"})
"""Statuses of a promotion that has ended."""


@dataclass(frozen=True)
class FlipBack:
    """After a promotion: production may flip back to ``previous`` until ``until``.

    ``previous`` is the old production colour, the canary now, still running
    ``previous_image``; a flip-back is a write of the weights, no rollout.
    """

    promotion_id: str
    production: str
    previous: str
    previous_image: str
    promoted_digest: str
    until: datetime
