"""A promotion's steps between begin and the end: shift the weights, analyse the canary,
wait at a gate for a person, and at the end swap the roles."""

from __future__ import annotations

from datetime import datetime, timedelta

from bluegreen.domain import events
from bluegreen.domain.errors import EventNotPublished, InvalidInput
from bluegreen.domain.models import Colour, Digest, Outcome, Verdict
from bluegreen.domain.promotion import Finding, FlipBack, PromotionAborted
from bluegreen.domain.traffic import Weights
from bluegreen.logic.analysis import measure
from bluegreen.logic.deploy.ports import Json
from bluegreen.logic.deploy.report import publish
from bluegreen.logic.lease import attempt_of
from bluegreen.logic.promotion.ports import PromotionPorts
from bluegreen.logic.promotion.progress import (
    aborted,
    current_time,
    event_detail,
    renew,
    save,
    strategy_of,
)
from bluegreen.observability import logger


def shift(event: Json, ports: PromotionPorts) -> Json:
    """Set the current step's weights, or at the end swap the roles."""
    promotion: Json = dict(event["promotion"])
    promoted = promoted_already(ports, promotion)
    if promoted is not None:
        return promoted
    renew(ports, promotion, attempt_of(event))
    if aborted(ports, promotion):
        save(ports, promotion)
        return promotion
    strategy = strategy_of(promotion)
    index = int(promotion["step"])
    canary = Colour(promotion["canary"])
    if index >= len(strategy.steps):
        return _complete(ports, promotion)
    step = strategy.steps[index]
    last = index == len(strategy.steps) - 1
    if last and step.seconds() == 0 and not step.manual:
        # All of production on the canary with nothing to wait for: one flip swaps the roles.
        return _complete(ports, promotion)
    weights = Weights.split(canary, step.weight)
    ports.deploy.cluster.shift_traffic(weights, canary)
    # shift_traffic returns once the data plane applies the weights (or raises
    # TrafficNotConfirmed, put back): the step's first window starts after that, so no
    # reading includes time the load balancer still sent the old weights.
    now = current_time(ports).isoformat()
    promotion.update(
        weights=weights.to_json(),
        elapsed=0,
        inconclusive=0,
        measuredUntil=now,
        stepStartedAt=now,
    )
    if step.seconds() > 0 or step.manual:
        promotion["status"] = "measure"
        promotion["waitSeconds"] = min(int(promotion["interval"]), step.seconds() or 10**9)
    else:
        promotion["status"] = "next"
        promotion["step"] = index + 1
        promotion["waitSeconds"] = 0
    save(ports, promotion)
    return promotion


def analyse(event: Json, ports: PromotionPorts) -> Json:
    """Judge the canary over the window since the last reading; decide what comes next."""
    deploy = ports.deploy
    promotion: Json = dict(event["promotion"])
    renew(ports, promotion, attempt_of(event))
    if aborted(ports, promotion):
        save(ports, promotion)
        return promotion
    strategy = strategy_of(promotion)
    index = int(promotion["step"])
    step = strategy.steps[index]
    policy = deploy.settings.analysis
    start = datetime.fromisoformat(str(promotion["measuredUntil"]))
    end = current_time(ports)
    if end <= start:
        end = start + timedelta(seconds=1)
    judgement = measure(
        ports.metrics,
        deploy.probes.alarms,
        deploy.settings.alarm_names,
        policy,
        Colour(promotion["canary"]),
        start=start,
        end=end,
        weight=step.weight,
    )
    # The pause counts the seconds the flow asked to wait, whatever the Wait really took
    # (tests shorten it); the window read is the real one since the last reading.
    window = max(0, int(promotion.get("waitSeconds") or 0))
    promotion["measuredUntil"] = end.isoformat()
    reading = {**judgement.to_json(), "step": index}
    logger.info(
        "canary analysis",
        extra={"finding": judgement.finding.value, "reasons": list(judgement.reasons)},
    )
    if judgement.finding is Finding.FAILED:
        promotion["failures"] = int(promotion["failures"]) + 1
        promotion["elapsed"] = int(promotion["elapsed"]) + window
        if int(promotion["failures"]) > policy.failure_limit:
            promotion["status"] = "failed"
            promotion["cause"] = (
                f"the canary {promotion['canary']} failed its analysis at {step.weight} % "
                f"(step {index + 1} of {len(strategy.steps)}; {promotion['failures']} failed "
                f"readings, failureLimit {policy.failure_limit}): {'; '.join(judgement.reasons)}"
            )
            save(ports, promotion, analysis=reading, failedAt=end.isoformat())
            return promotion
    elif judgement.finding is Finding.INCONCLUSIVE:
        # Too little traffic proves nothing: the step's pause does not advance.
        promotion["inconclusive"] = int(promotion["inconclusive"]) + 1
        if int(promotion["inconclusive"]) > policy.inconclusive_limit:
            return _to_gate(
                ports,
                promotion,
                reading,
                f"the analysis of step {index + 1} ({step.weight} %) was inconclusive "
                f"{promotion['inconclusive']} times in a row (inconclusiveLimit "
                f"{policy.inconclusive_limit}): {'; '.join(judgement.reasons)}",
            )
    else:
        promotion["inconclusive"] = 0
        promotion["elapsed"] = int(promotion["elapsed"]) + window
    if step.manual and judgement.finding is Finding.PASSED:
        return _to_gate(
            ports,
            promotion,
            reading,
            f"step {index + 1} ({step.weight} % on {promotion['canary']}) pauses for a person",
        )
    remaining = step.seconds() - int(promotion["elapsed"])
    if not step.manual and remaining <= 0 and judgement.finding is not Finding.INCONCLUSIVE:
        promotion["status"] = "next"
        promotion["step"] = index + 1
        promotion["waitSeconds"] = 0
    else:
        promotion["status"] = "measure"
        interval = int(promotion["interval"])
        promotion["waitSeconds"] = min(interval, remaining) if remaining > 0 else interval
    save(ports, promotion, analysis=reading)
    return promotion


def _to_gate(ports: PromotionPorts, promotion: Json, reading: Json, reason: str) -> Json:
    promotion["status"] = "gate"
    promotion["gate"] = {**promotion["gate"], "reason": reason}
    promotion["waitSeconds"] = 0
    save(ports, promotion, analysis=reading)
    return promotion


def open_gate(event: Json, ports: PromotionPorts) -> Json:
    """Wait for a person: keep the task token where resume and abort find it.

    The lock's lease is stretched to the gate's timeout, so nobody takes it while a
    person thinks. ``PromotionAborted`` when an abort was asked just before.
    """
    promotion: Json = dict(event["promotion"])
    token = str(event.get("token") or "")
    if not token:
        raise InvalidInput("token", "a gate needs the task token ($$.Task.Token)")
    gate = promotion.get("gate") or {}
    renew(ports, promotion, attempt_of(event), int(gate.get("timeoutSeconds", 0)))
    reason = str(gate.get("reason") or "waiting for a person")
    if not ports.promotions.open_gate(str(promotion["id"]), token, reason):
        aborted(ports, promotion)
        raise PromotionAborted(str(promotion.get("cause") or "aborted before the gate opened"))
    promotion["status"] = "waiting"
    save(ports, promotion, waitingFor=reason)
    return {"waiting": True}


def pass_gate(event: Json, ports: PromotionPorts) -> Json:
    """A person resumed the promotion: on to the next step."""
    promotion: Json = dict(event["promotion"])
    renew(ports, promotion, attempt_of(event))
    promotion["status"] = "next"
    promotion["step"] = int(promotion["step"]) + 1
    promotion["inconclusive"] = 0
    promotion["waitSeconds"] = 0
    promotion["gate"] = {**promotion["gate"], "reason": ""}
    save(ports, promotion, waitingFor="")
    return promotion


def _complete(ports: PromotionPorts, promotion: Json) -> Json:
    """All of production on the canary colour, and the roles swapped; the record closed."""
    deploy = ports.deploy
    canary, production = Colour(promotion["canary"]), Colour(promotion["production"])
    deploy.cluster.shift_traffic(Weights.all_on(canary), production)
    now = current_time(ports)
    digest = Digest.parse(promotion["digest"])
    deploy.ledger.set_verdict(digest, Verdict.HEALTHY, f"promotion {promotion['id']}")
    window = deploy.settings.flip_back_window_seconds
    until = now + timedelta(seconds=window)
    if window > 0:
        ports.promotions.keep_flip_back(
            FlipBack(
                promotion_id=str(promotion["id"]),
                production=canary.value,
                previous=production.value,
                previous_image=str(promotion["fromImage"]),
                promoted_digest=str(digest),
                until=until,
            )
        )
    flip_back = (
        f"; {production.value} (the canary now) keeps running what production ran, and "
        f"POST /rollback of production flips back to it until {until.isoformat()}"
        if window > 0
        else ""
    )
    cause = (
        f"{digest.short} promoted: {canary.value} serves 100 % of production after "
        f"{len(strategy_of(promotion).steps)} steps{flip_back}"
    )
    promotion.update(weights=Weights.all_on(canary).to_json(), waitSeconds=0, cause=cause)
    deploy.ledger.finish_deployment(str(promotion["id"]), Outcome.SUCCEEDED, cause)
    return _close_promoted(ports, promotion, now.isoformat())


def promoted_already(
    ports: PromotionPorts, promotion: Json, *, last_chance: bool = False
) -> Json | None:
    """The answer of a step run again after the promotion was recorded a success.

    Success is final: a retry of the last step, or a Catch that reached the back-out
    after the last step died, completes what may be missing (the event, the progress,
    the lock) and answers ``done``, never moves traffic back. None while it runs.
    ``last_chance``: the back-out's call, after the last step's own retries: an event
    EventBridge still refuses is logged there, for the execution must succeed.
    """
    recorded = ports.deploy.ledger.deployment(str(promotion["id"]))
    if recorded is None or recorded.outcome is not Outcome.SUCCEEDED:
        return None
    canary = Colour(promotion["canary"])
    promotion = {
        **promotion,
        "weights": Weights.all_on(canary).to_json(),
        "waitSeconds": 0,
        "cause": recorded.cause,
    }
    finished = recorded.finished_at or current_time(ports)
    return _close_promoted(ports, promotion, finished.isoformat(), last_chance=last_chance)


def _close_promoted(
    ports: PromotionPorts, promotion: Json, promoted_at: str, *, last_chance: bool = False
) -> Json:
    """What follows a recorded promotion, safe to repeat: event (once), progress, lock."""
    deploy = ports.deploy
    cause = str(promotion.get("cause", ""))
    detail = event_detail(ports, promotion, Outcome.SUCCEEDED, cause)
    try:
        publish(deploy, events.SUCCEEDED, detail)
    except EventNotPublished:
        if not last_chance:
            raise
        logger.error("the promotion's success event could not be published", extra=detail)
    save(ports, {**promotion, "status": "promoted"}, promotedAt=promoted_at)
    deploy.ledger.release_lock(str(promotion["id"]))
    return {**promotion, "status": "done"}
