"""The steps of a progressive promotion, the Tasks of ``deploy.asl.json``'s promotion states.

A promotion gives the canary colour a growing share of production, one step of the
strategy at a time, and judges it from CloudWatch between the steps:

``begin_promotion``
    claims the request's record (or records a console run), takes the lock, checks
    that the router is weighted, that canaryEnv and the router object agree with all
    of production on the production colour, and that the canary runs a pinned digest
    not judged failed; then returns the promotion's state.
``shift``
    sets the step's weights (canaryEnv, then the router object); at the end of the
    strategy swaps the roles: the canary colour becomes production at 100 %, the old
    production colour the canary, still running what it ran (the flip-back window).
``analyse``
    reads the canary's target group over the window since the last reading and
    judges it (``logic.analysis``): a failure past ``failureLimit`` backs out,
    inconclusive readings pause the step (past ``inconclusiveLimit`` a person is
    asked), a passed pause moves to the next step.
``open_gate`` / ``pass_gate``
    a manual pause: the flow waits on a Step Functions task token until a person
    resumes it (``POST /deployments/{id}/resume``) or aborts it.
``back_out``
    production back to 100 % on the old colour in one router write (canaryEnv
    after), the digest marked failed when its analysis failed, the record closed,
    the lock released; the execution then fails with the analysis in its Cause.

State carried between the states: ``promotion`` (see ``_state``). Every step
renews the lock's lease, so a long pause never lets another deployment in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bluegreen.config import Settings
from bluegreen.domain import events
from bluegreen.domain.errors import (
    InvalidInput,
    LockHeld,
    NotPromotable,
    RequestAbandoned,
    RolesDisagree,
    TrafficNotWeighted,
)
from bluegreen.domain.flow_input import CONSOLE, CONSOLE_ACTOR, TEXT_LIMIT
from bluegreen.domain.images import digest_of_image
from bluegreen.domain.models import Colour, Deployment, Digest, Outcome, Role, Verdict
from bluegreen.domain.ports import Cluster, Ledger, Promotions, TrafficMetrics
from bluegreen.domain.promotion import (
    Finding,
    FlipBack,
    PromotionAborted,
    PromotionInProgress,
    Strategy,
)
from bluegreen.domain.traffic import Weights
from bluegreen.logic import roles
from bluegreen.logic.analysis import measure
from bluegreen.logic.deploy.ports import DeployPorts, Json
from bluegreen.logic.deploy.record import refuse_failed_digest
from bluegreen.logic.deploy.report import error_text, publish
from bluegreen.logic.lease import renew_promotion_lease
from bluegreen.observability import logger

PROMOTE = "promote"
"""``Deployment.action`` and the flow input's ``action`` of a progressive promotion."""

FLOW_TIMEOUT_SECONDS = 604_800
"""The deploy flow's ``TimeoutSeconds``: a promotion must end well within it."""

_INPUT_FIELDS = frozenset({"action", "strategy", "reason"})
_KEPT_ANALYSES = 100


@dataclass(frozen=True)
class PromotionPorts:
    """The deploy steps' ports, CloudWatch's metrics, and the promotions' store."""

    deploy: DeployPorts
    metrics: TrafficMetrics
    promotions: Promotions


def _now(ports: PromotionPorts) -> datetime:
    return ports.deploy.now()


def parse_promotion_input(raw: object) -> tuple[Strategy | None, str]:
    """``{"action": "promote", "strategy"?: {...}, "reason"?: "..."}``."""
    if not isinstance(raw, Mapping) or raw.get("action") != PROMOTE:
        raise InvalidInput("action", f"a promotion's input has action {PROMOTE!r}")
    unknown = sorted(set(raw) - _INPUT_FIELDS)
    if unknown:
        raise InvalidInput(
            unknown[0],
            "is not a field of a promote input; allowed fields: "
            + ", ".join(sorted(_INPUT_FIELDS)),
        )
    reason = raw.get("reason", "")
    if not isinstance(reason, str) or len(reason) > TEXT_LIMIT:
        raise InvalidInput("reason", f"must be a string of at most {TEXT_LIMIT} characters")
    strategy = raw.get("strategy")
    return (Strategy.parse(strategy) if strategy is not None else None), reason.strip()


def resolve_strategy(settings: Settings, asked: Strategy | None) -> Strategy:
    """The strategy to run: the one asked for or the stack's, pauses defaulted, bounded."""
    strategy = (asked or settings.promotion_strategy).with_default_pause(
        settings.promotion_pause_seconds
    )
    # Every step may end at a gate (a manual pause, or readings too quiet to judge).
    worst = sum(step.seconds() for step in strategy.steps) + len(strategy.steps) * (
        settings.gate_timeout_seconds + settings.analysis.interval_seconds
    )
    if worst >= FLOW_TIMEOUT_SECONDS:
        raise InvalidInput(
            "strategy",
            f"{strategy.describe()} may take {worst}s with gates of "
            f"{settings.gate_timeout_seconds}s (GateTimeoutSeconds), more than the flow's "
            f"{FLOW_TIMEOUT_SECONDS}s: fewer steps, shorter pauses or a shorter gate timeout",
        )
    return strategy


def refuse_during_promotion(ledger: Ledger) -> None:
    """``PromotionInProgress`` while a progressive promotion holds the lock, naming it."""
    holder = ledger.lock_holder()
    if not holder:
        return
    running = ledger.deployment(holder)
    if running is None or running.action != PROMOTE or running.outcome is not Outcome.RUNNING:
        return
    colour = f" to {running.colour.value}" if running.colour else ""
    raise PromotionInProgress(
        f"progressive promotion {holder} is shifting production{colour}; nothing else may "
        f"change the release until it ends: follow it with GET /deployments/{holder} "
        f"(bluegreen show {holder}), or stop it with POST /deployments/{holder}/abort"
    )


# --------------------------------------------------------------------------- state


def _state(
    promotion_id: str,
    arn: str,
    recorded: Deployment,
    canary: Colour,
    digest: Digest,
    canary_image: str,
    production_image: str,
    strategy: Strategy,
    ports: DeployPorts,
) -> Json:
    """The promotion's state, as the flow carries it from state to state."""
    return {
        "id": promotion_id,
        "arn": arn,
        "trigger": recorded.trigger,
        "actor": recorded.actor,
        "reason": recorded.reason,
        "canary": canary.value,
        "production": canary.other.value,
        "digest": str(digest),
        "image": canary_image,
        "fromImage": production_image,
        "fromDigest": str(digest_of_image(production_image) or "") or None,
        "steps": strategy.to_json()["steps"],
        "step": 0,
        "weights": Weights.all_on(canary.other).to_json(),
        "interval": ports.settings.analysis.interval_seconds,
        "elapsed": 0,
        "failures": 0,
        "inconclusive": 0,
        "waitSeconds": 0,
        "measuredUntil": ports.now().isoformat(),
        "status": "shift",
        "gate": {
            "timeoutSeconds": ports.settings.gate_timeout_seconds,
            "heartbeatSeconds": ports.settings.gate_heartbeat_seconds,
            "reason": "",
        },
        "cause": "",
    }


def _strategy_of(promotion: Mapping[str, Any]) -> Strategy:
    return Strategy.parse_steps(promotion["steps"])


def _save(ports: PromotionPorts, promotion: Json, **extra: object) -> None:
    """The progress ``GET /deployments/{id}`` shows: the state plus the analyses so far."""
    record = ports.promotions.record(str(promotion["id"]))
    before = dict(record.progress) if record else {}
    analyses = list(before.get("analyses", []))
    analysis = extra.pop("analysis", None)
    if analysis is not None:
        analyses = [*analyses, analysis][-_KEPT_ANALYSES:]
    shown = {
        key: promotion.get(key)
        for key in (
            "status",
            "step",
            "steps",
            "weights",
            "canary",
            "production",
            "digest",
            "failures",
            "inconclusive",
            "stepStartedAt",
            "cause",
        )
    }
    # What an earlier step noted (when the reading failed, when it waited) stays.
    ports.promotions.save(str(promotion["id"]), {**before, **shown, "analyses": analyses, **extra})


def _renew(ports: PromotionPorts, promotion: Mapping[str, Any], seconds: int = 0) -> None:
    deploy = ports.deploy
    lease = deploy.settings.lock_lease_seconds + seconds
    renew_promotion_lease(deploy.ledger, str(promotion["id"]), lease)


def _event(
    ports: PromotionPorts, promotion: Mapping[str, Any], outcome: Outcome, cause: str
) -> Json:
    return {
        "application": ports.deploy.settings.application,
        "deploymentId": promotion.get("id"),
        "executionArn": promotion.get("arn"),
        "action": PROMOTE,
        "service": Role.PRODUCTION.value,
        "colour": promotion.get("canary"),
        "digest": promotion.get("digest"),
        "fromDigest": promotion.get("fromDigest"),
        "trigger": promotion.get("trigger"),
        "actor": promotion.get("actor"),
        "outcome": outcome.value,
        "reason": cause,
        "weights": promotion.get("weights"),
    }


# --------------------------------------------------------------------------- begin


def _own_record(ports: DeployPorts, promotion_id: str, arn: str, reason: str) -> Deployment:
    ledger = ports.ledger
    recorded = ledger.deployment(promotion_id)
    if recorded is None:
        ledger.put_deployment(
            Deployment(
                id=promotion_id,
                application=ports.settings.application,
                action=PROMOTE,
                role=Role.PRODUCTION,
                colour=None,
                to_digest=None,
                from_digest=None,
                trigger=CONSOLE,
                actor=CONSOLE_ACTOR,
                started_at=ports.now(),
                execution_arn=arn,
                reason=reason,
                waits_behind=ledger.lock_holder() or "",
            )
        )
        recorded = ledger.deployment(promotion_id)
        assert recorded is not None
    if recorded.execution_arn != arn:
        claimed = ledger.claim_deployment(promotion_id, arn)
        if claimed is None:
            raise RequestAbandoned(
                f"promotion {promotion_id} was given up before its execution began "
                f"({recorded.outcome.value}: {recorded.cause}); this execution changes nothing"
            )
        recorded = claimed
    if recorded.action != PROMOTE:
        raise InvalidInput(
            "input",
            f"does not match the request recorded for {promotion_id} ({recorded.action}); "
            "nothing was changed",
        )
    if recorded.outcome is not Outcome.RUNNING:
        raise RequestAbandoned(
            f"promotion {promotion_id} has ended already ({recorded.outcome.value}); "
            "this execution changes nothing"
        )
    return recorded


def check_promotable(
    settings: Settings, ledger: Ledger, cluster: Cluster
) -> tuple[Colour, Digest, str, str]:
    """The canary colour, its digest and both colours' images, if the canary may be promoted.

    ``TrafficNotWeighted`` under the selector router, ``RolesDisagree`` unless
    canaryEnv and the router object agree with all of production on the production
    colour, ``NotPromotable`` when the canary runs no pinned digest or what
    production runs, ``DigestFailed`` when the canary's digest was judged failed.
    """
    if not settings.traffic_router.weighted:
        raise TrafficNotWeighted(
            "a progressive promotion shifts a share of production to the canary: it needs "
            f"TrafficRouter alb or gateway (this stack's is {settings.traffic_router.value})"
        )
    env = cluster.canary_env()
    traffic = cluster.traffic()
    problems = roles.traffic_disagreements(env, traffic)
    if problems:
        raise RolesDisagree(
            f"promotion refused: canaryEnv and {traffic.where} disagree ({'; '.join(problems)}); "
            f"nothing was changed; {roles.REPAIR}"
        )
    canary = env.selector
    expected = roles.expected_production(env)
    if expected != Weights.all_on(canary.other):
        raise RolesDisagree(
            f"promotion refused: production is split ({expected.describe()}), not all on "
            f"{canary.other.value}; a promotion starts from one colour; {roles.REPAIR}"
        )
    canary_image = cluster.deployment_image(canary)
    production_image = cluster.deployment_image(canary.other)
    digest = digest_of_image(canary_image)
    if digest is None:
        raise NotPromotable(
            f"the canary ({canary.value}) runs {canary_image!r}, not an image pinned by "
            "digest; deploy a digest to the canary first"
        )
    if digest_of_image(production_image) == digest:
        raise NotPromotable(f"production ({canary.other.value}) already runs {digest}")
    refuse_failed_digest(ledger, digest)
    return canary, digest, canary_image, production_image


def begin_promotion(event: Json, ports: PromotionPorts) -> Json:
    """Claim the record, take the lock, check the canary may be promoted, start at step 0."""
    deploy = ports.deploy
    execution = event.get("execution") or {}
    promotion_id = str(execution.get("name", ""))
    arn = str(execution.get("arn", ""))
    asked, reason = parse_promotion_input(event.get("input"))
    strategy = resolve_strategy(deploy.settings, asked)
    recorded = _own_record(deploy, promotion_id, arn, reason)
    if not deploy.ledger.acquire_lock(promotion_id, deploy.settings.lock_lease_seconds):
        holder = deploy.ledger.lock_holder() or "another deployment"
        raise LockHeld(
            f"deployment {holder} of {deploy.settings.application} holds the lock; a promotion "
            "does not wait for another deployment: promote once it has finished; nothing "
            "was changed"
        )
    canary, digest, canary_image, production_image = check_promotable(
        deploy.settings, deploy.ledger, deploy.cluster
    )
    deploy.ledger.update_deployment(
        promotion_id,
        colour=canary,
        to_digest=digest,
        from_digest=digest_of_image(production_image),
    )
    promotion = _state(
        promotion_id,
        arn,
        recorded,
        canary,
        digest,
        canary_image,
        production_image,
        strategy,
        deploy,
    )
    _save(ports, promotion)
    return promotion


# --------------------------------------------------------------------------- steps


def _aborted(ports: PromotionPorts, promotion: Json) -> bool:
    record = ports.promotions.record(str(promotion["id"]))
    if record is None or not record.abort_requested_by:
        return False
    why = f": {record.abort_reason}" if record.abort_reason else ""
    promotion["status"] = "aborted"
    promotion["cause"] = f"aborted by {record.abort_requested_by}{why}"
    return True


def shift(event: Json, ports: PromotionPorts) -> Json:
    """Set the current step's weights, or at the end swap the roles."""
    promotion: Json = dict(event["promotion"])
    _renew(ports, promotion)
    if _aborted(ports, promotion):
        _save(ports, promotion)
        return promotion
    strategy = _strategy_of(promotion)
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
    now = _now(ports).isoformat()
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
    _save(ports, promotion)
    return promotion


def analyse(event: Json, ports: PromotionPorts) -> Json:
    """Judge the canary over the window since the last reading; decide what comes next."""
    deploy = ports.deploy
    promotion: Json = dict(event["promotion"])
    _renew(ports, promotion)
    if _aborted(ports, promotion):
        _save(ports, promotion)
        return promotion
    strategy = _strategy_of(promotion)
    index = int(promotion["step"])
    step = strategy.steps[index]
    policy = deploy.settings.analysis
    start = datetime.fromisoformat(str(promotion["measuredUntil"]))
    end = _now(ports)
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
            _save(ports, promotion, analysis=reading, failedAt=end.isoformat())
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
    _save(ports, promotion, analysis=reading)
    return promotion


def _to_gate(ports: PromotionPorts, promotion: Json, reading: Json, reason: str) -> Json:
    promotion["status"] = "gate"
    promotion["gate"] = {**promotion["gate"], "reason": reason}
    promotion["waitSeconds"] = 0
    _save(ports, promotion, analysis=reading)
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
    _renew(ports, promotion, int(gate.get("timeoutSeconds", 0)))
    reason = str(gate.get("reason") or "waiting for a person")
    if not ports.promotions.open_gate(str(promotion["id"]), token, reason):
        _aborted(ports, promotion)
        raise PromotionAborted(str(promotion.get("cause") or "aborted before the gate opened"))
    promotion["status"] = "waiting"
    _save(ports, promotion, waitingFor=reason)
    return {"waiting": True}


def pass_gate(event: Json, ports: PromotionPorts) -> Json:
    """A person resumed the promotion: on to the next step."""
    promotion: Json = dict(event["promotion"])
    _renew(ports, promotion)
    promotion["status"] = "next"
    promotion["step"] = int(promotion["step"]) + 1
    promotion["inconclusive"] = 0
    promotion["waitSeconds"] = 0
    promotion["gate"] = {**promotion["gate"], "reason": ""}
    _save(ports, promotion, waitingFor="")
    return promotion


def _complete(ports: PromotionPorts, promotion: Json) -> Json:
    """All of production on the canary colour, and the roles swapped; the record closed."""
    deploy = ports.deploy
    canary, production = Colour(promotion["canary"]), Colour(promotion["production"])
    deploy.cluster.shift_traffic(Weights.all_on(canary), production)
    now = _now(ports)
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
        f"{len(_strategy_of(promotion).steps)} steps{flip_back}"
    )
    promotion.update(
        status="done", weights=Weights.all_on(canary).to_json(), waitSeconds=0, cause=cause
    )
    deploy.ledger.finish_deployment(str(promotion["id"]), Outcome.SUCCEEDED, cause)
    publish(deploy, events.SUCCEEDED, _event(ports, promotion, Outcome.SUCCEEDED, cause))
    promotion["status"] = "promoted"
    _save(ports, promotion, promotedAt=now.isoformat())
    promotion["status"] = "done"
    deploy.ledger.release_lock(str(promotion["id"]))
    return promotion


_ERRORS = {"failed": "AnalysisFailed", "aborted": "PromotionAborted"}


def back_out(event: Json, ports: PromotionPorts) -> Json:
    """Production back to 100 % on the old colour, in one router write; then record why.

    Reached when the analysis failed, a person aborted, a gate timed out, or a step
    failed (its Error is the execution's). Only a failed analysis marks the digest
    failed: an abort or an error of this product says nothing about the image.
    """
    deploy = ports.deploy
    state = event.get("state") or {}
    promotion: Json = dict(state["promotion"])
    _renew(ports, promotion)
    status = str(promotion.get("status", ""))
    if status in _ERRORS:
        name, cause = _ERRORS[status], str(promotion.get("cause", ""))
    else:
        name, text = error_text(state.get("error"))
        if name in ("States.Timeout", "States.HeartbeatTimeout"):
            gate = promotion.get("gate") or {}
            heartbeat = f"no heartbeat came for {gate.get('heartbeatSeconds')}s"
            waited = f"nobody resumed or aborted the gate within {gate.get('timeoutSeconds')}s"
            if name == "States.HeartbeatTimeout":
                waited = heartbeat
            elif int(gate.get("heartbeatSeconds") or 0) > 0:
                # moto's interpreter reports a missed heartbeat as States.Timeout too.
                waited = f"{waited}, or {heartbeat}"
            name = "GateTimedOut"
            text = f"{waited} ({gate.get('reason') or 'a manual pause'})"
        elif name == PromotionAborted.__name__:
            record = ports.promotions.record(str(promotion["id"]))
            gate = record.gates[-1] if record and record.gates else None
            if gate is not None and gate.decision == "abort":
                why = f": {gate.reason}" if gate.reason else ""
                text = f"aborted by {gate.actor} at the gate of step {gate.step + 1}{why}"
        cause = text
    production, canary = Colour(promotion["production"]), Colour(promotion["canary"])
    deploy.cluster.shift_traffic(Weights.all_on(production), canary)
    backed_out = _now(ports)
    if status == "failed":
        deploy.ledger.set_verdict(Digest.parse(promotion["digest"]), Verdict.FAILED, cause)
    full = (
        f"{cause.rstrip('.')}. Production was set back to 100 % on {production.value}; "
        f"{canary.value} stays the canary"
        + (
            f", and {Digest.parse(promotion['digest']).short} is marked failed"
            if status == "failed"
            else ""
        )
        + "."
    )
    promotion.update(status="backed_out", weights=Weights.all_on(production).to_json(), cause=full)
    _save(ports, promotion, backedOutAt=backed_out.isoformat(), error=name)
    recorded = deploy.ledger.deployment(str(promotion["id"]))
    if recorded is not None and recorded.outcome is Outcome.RUNNING:
        deploy.ledger.finish_deployment(str(promotion["id"]), Outcome.FAILED, f"{name}: {full}")
        publish(deploy, events.FAILED, _event(ports, promotion, Outcome.FAILED, full))
    deploy.ledger.release_lock(str(promotion["id"]))
    return {"Error": name, "Cause": full, "backedOutAt": backed_out.isoformat()}


def stuck(event: Json, ports: PromotionPorts) -> Json:
    """Backing out failed too: record it, release the lock, say what the cluster says."""
    deploy = ports.deploy
    state = event.get("state") or {}
    promotion: Json = dict(state.get("promotion") or {})
    promotion_id = str(promotion.get("id") or (event.get("execution") or {}).get("name", ""))
    first_name, first_text = error_text(state.get("error"))
    second_name, second_text = error_text(state.get("backOutError"))
    try:
        traffic = deploy.cluster.traffic()
        now = f"{traffic.where} gives production " + (
            traffic.production.describe() if traffic.production else "no readable weights"
        )
    except Exception as exc:
        now = f"the router object could not be read ({type(exc).__name__}: {exc})"
    cause = (
        f"{first_name + ': ' + first_text if first_text else 'the promotion stopped'}. "
        f"Backing out to 100 % on {promotion.get('production')} failed ({second_name}: "
        f"{second_text}); {now}. Set it by hand: bluegreen switch {promotion.get('canary')}"
    )
    if promotion:
        promotion.update(status="failed", cause=cause)
        _save(ports, promotion)
    recorded = deploy.ledger.deployment(promotion_id) if promotion_id else None
    if recorded is not None and recorded.outcome is Outcome.RUNNING:
        deploy.ledger.finish_deployment(promotion_id, Outcome.FAILED, f"{second_name}: {cause}")
        publish(deploy, events.FAILED, _event(ports, promotion, Outcome.FAILED, cause))
    deploy.ledger.release_lock(promotion_id)
    return {"Error": second_name, "Cause": cause}


STEPS: Mapping[str, Callable[[Json, PromotionPorts], Json]] = {
    "begin_promotion": begin_promotion,
    "shift": shift,
    "analyse": analyse,
    "open_gate": open_gate,
    "pass_gate": pass_gate,
    "back_out": back_out,
    "promotion_stuck": stuck,
}
