"""Judging the canary colour between the steps of a progressive promotion.

One measurement covers the window since the last one: the canary's target group's
``RequestCount``, ``HTTPCode_Target_5XX_Count`` (their ratio is the error rate) and
``TargetResponseTime`` p99, plus the configured CloudWatch alarms (metric and
composite). It fails on any failure condition; it passes only when every success
condition holds over enough traffic; too few requests (or no latency to read) is
inconclusive: the promotion pauses on it rather than passing it.
"""

from __future__ import annotations

from datetime import datetime

from bluegreen.domain.models import Colour
from bluegreen.domain.ports import AlarmProbe, TrafficMetrics
from bluegreen.domain.promotion import AnalysisPolicy, Finding, Judgement, TargetGroupMetrics


def judge(
    metrics: TargetGroupMetrics,
    alarming: tuple[str, ...],
    missing: tuple[str, ...],
    policy: AnalysisPolicy,
    *,
    start: datetime,
    end: datetime,
    weight: int,
) -> Judgement:
    """What ``metrics`` and the alarms say of the canary, by ``policy``.

    Failure conditions (any one fails it): an alarm in ALARM, an alarm that does not
    exist (a typo must not pass a canary), an error rate above
    ``max_error_percent``, a p99 above ``max_p99_seconds``; checked on whatever
    traffic there was, since a few 5xx out of a few requests are still 5xx.
    Inconclusive: a figure the provider could not read (``metrics.unreadable``), fewer
    than ``min_requests`` requests, or no p99 to read. Passed otherwise.
    """
    failures: list[str] = []
    for name in alarming:
        failures.append(f"alarm {name!r} is in ALARM")
    for name in missing:
        failures.append(f"alarm {name!r} does not exist")
    requests = metrics.requests
    error_percent = 100.0 * metrics.errors / requests if requests > 0 else None
    where = metrics.where or f"target group {metrics.target_group}"
    over = f"over {requests:.0f} requests"
    if error_percent is not None and error_percent > policy.max_error_percent:
        failures.append(
            f"error rate {error_percent:.2f} % (5xx {metrics.errors:.0f} {over}) is above "
            f"{policy.max_error_percent:g} %"
        )
    p99 = metrics.p99_seconds
    if p99 is not None and p99 > policy.max_p99_seconds:
        failures.append(f"p99 latency {p99:.3f} s is above {policy.max_p99_seconds:g} s")

    def judged(finding: Finding, *reasons: str) -> Judgement:
        return Judgement(
            finding,
            reasons,
            start=start,
            end=end,
            requests=requests,
            error_percent=error_percent,
            p99_seconds=p99,
            alarms=alarming,
            weight=weight,
        )

    if failures:
        return judged(Finding.FAILED, where, *failures)
    if metrics.unreadable:
        return judged(Finding.INCONCLUSIVE, where, *metrics.unreadable)
    if requests < policy.min_requests:
        return judged(
            Finding.INCONCLUSIVE,
            f"only {requests:.0f} requests reached {where} (fewer than "
            f"{policy.min_requests}): too little traffic to judge",
        )
    if p99 is None:
        return judged(
            Finding.INCONCLUSIVE, f"{where} reported no TargetResponseTime to read a p99 from"
        )
    return judged(
        Finding.PASSED,
        f"{where}: error rate {error_percent or 0:.2f} % {over} (at most "
        f"{policy.max_error_percent:g} %), p99 {p99:.3f} s (at most "
        f"{policy.max_p99_seconds:g} s)",
    )


def measure(
    metrics: TrafficMetrics,
    alarms: AlarmProbe | None,
    alarm_names: tuple[str, ...],
    policy: AnalysisPolicy,
    colour: Colour,
    *,
    start: datetime,
    end: datetime,
    weight: int,
) -> Judgement:
    """Read the canary's window and the alarms, and judge them."""
    found = metrics.measure(colour, start, end)
    states = alarms.states(alarm_names) if alarms and alarm_names else None
    return judge(
        found,
        states.alarming if states else (),
        states.missing if states else (),
        policy,
        start=start,
        end=end,
        weight=weight,
    )
