"""How a promotion ends when it does not complete: backed out to the old colour, or stuck."""

from __future__ import annotations

from bluegreen.domain import events
from bluegreen.domain.models import Colour, Digest, Outcome, Verdict
from bluegreen.domain.promotion import PromotionAborted
from bluegreen.domain.traffic import Weights
from bluegreen.logic.deploy.ports import Json
from bluegreen.logic.deploy.report import error_text, publish
from bluegreen.logic.lease import attempt_of
from bluegreen.logic.promotion.ports import PromotionPorts
from bluegreen.logic.promotion.progress import current_time, event_detail, renew, save
from bluegreen.logic.promotion.steps import promoted_already

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
    promoted = promoted_already(ports, promotion, last_chance=True)
    if promoted is not None:
        return {"status": "promoted", "promotion": promoted}
    recorded = deploy.ledger.deployment(str(promotion["id"]))
    if recorded is not None and recorded.outcome is not Outcome.RUNNING:
        # Backed out and recorded by an attempt that died (or whose event EventBridge
        # refused) before it answered: say it, once, and let the lock go.
        name, _, full = recorded.cause.partition(": ")
        detail = event_detail(ports, promotion, recorded.outcome, full or recorded.cause)
        publish(deploy, events.FAILED, detail)
        deploy.ledger.release_lock(str(promotion["id"]))
        return {"Error": _ended_error(recorded.cause), "Cause": full or recorded.cause}
    renew(ports, promotion, attempt_of(event))
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
    backed_out = current_time(ports)
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
    save(ports, promotion, backedOutAt=backed_out.isoformat(), error=name)
    if recorded is not None:
        deploy.ledger.finish_deployment(str(promotion["id"]), Outcome.FAILED, f"{name}: {full}")
    publish(deploy, events.FAILED, event_detail(ports, promotion, Outcome.FAILED, full))
    deploy.ledger.release_lock(str(promotion["id"]))
    return {"Error": name, "Cause": full, "backedOutAt": backed_out.isoformat()}


def _ended_error(cause: str) -> str:
    """The Error a recorded end carries: its cause is ``"<Error>: <words>"``."""
    name, _, rest = cause.partition(": ")
    return name if rest and name.replace(".", "").isalnum() else "PromotionFailed"


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
        save(ports, promotion)
    recorded = deploy.ledger.deployment(promotion_id) if promotion_id else None
    if recorded is not None and recorded.outcome is Outcome.RUNNING:
        deploy.ledger.finish_deployment(promotion_id, Outcome.FAILED, f"{second_name}: {cause}")
    if recorded is not None:
        publish(deploy, events.FAILED, event_detail(ports, promotion, Outcome.FAILED, cause))
    deploy.ledger.release_lock(promotion_id)
    return {"Error": second_name, "Cause": cause}
