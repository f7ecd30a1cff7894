"""The Catch paths of the deploy flow: roll back, conclude the rollback, or abort.

Where a colour goes back to is the domain's policy
(``bluegreen.domain.rollback_target``); these steps feed it what the deployment
knows, apply its choice, and record, notify and release the lock whatever happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bluegreen.domain import events
from bluegreen.domain.errors import is_judgement
from bluegreen.domain.images import digest_of_image, short_image
from bluegreen.domain.models import Colour, Deployment, Digest, Outcome, Role, Verdict
from bluegreen.domain.rollback_target import (
    HISTORY_PAGE_SIZE,
    HISTORY_PAGES,
    RollbackChoice,
    choose_rollback_target,
    ran_before,
)
from bluegreen.logic import roles
from bluegreen.logic.deploy.finish import close_succeeded
from bluegreen.logic.deploy.hooks import hooks_json
from bluegreen.logic.deploy.ports import DeployPorts, Json
from bluegreen.logic.deploy.record import deployment_json
from bluegreen.logic.deploy.report import describe_colour, error_text, event_detail, publish
from bluegreen.logic.deploy.rollout import first_reading
from bluegreen.logic.lease import attempt_of, renew_lease


def _digest_or_none(value: object) -> Digest | None:
    return Digest.parse(value) if isinstance(value, str) and value else None


def _choose_for(ports: DeployPorts, deployment: Json, colour: Colour) -> RollbackChoice:
    """The rollback choice for a failed deploy or a requested rollback."""
    from_image = str(deployment.get("fromImage") or "")
    from_digest = _digest_or_none(deployment.get("fromDigest"))
    role = Role.parse(deployment.get("service", Role.CANARY.value))
    if deployment.get("action") != "rollback":
        shown = short_image(from_image) if from_image else "nothing"
        return choose_rollback_target(
            ports.ledger,
            current=_digest_or_none(deployment.get("digest")),
            before=from_digest,
            before_unknown=f"what {colour} ran before this deploy ({shown}) is not a digest",
            role=role,
        )
    # A requested rollback: the colour runs ``fromDigest`` now; what ran before it is
    # in the deployment history, not in this record.
    if from_digest is None:
        shown = from_image or "nothing"
        return choose_rollback_target(
            ports.ledger,
            current=None,
            before=None,
            before_unknown=(
                f"{colour} runs {shown}, which is not pinned to a digest, so what ran "
                "before it is unknown"
            ),
            role=role,
        )
    pages = HISTORY_PAGES * HISTORY_PAGE_SIZE
    return choose_rollback_target(
        ports.ledger,
        current=from_digest,
        before=ran_before(ports.ledger, colour, from_digest),
        before_unknown=(
            f"the ledger's latest {pages} deployments hold no successful one that put "
            f"{from_digest.short} on {colour}, so what ran before it is unknown"
        ),
        role=role,
    )


def _judge_failed(
    ports: DeployPorts,
    deployment: Mapping[str, Any],
    digest: Digest,
    error_name: str,
    error_message: str,
) -> str:
    """Mark ``digest`` failed when the failure judged it, unless the canary is concerned
    and production runs it. Returns what the Cause adds ("" when marked).

    Only a judgement marks a digest (``is_judgement``): a step that died, a timeout or a
    cluster out of reach says nothing about the image, which stays as judged before
    (unknown for a new one). A canary's failure or rollback says nothing certain about
    the digest production serves, and marking it failed would forbid every later
    rollback of production to what it runs.
    """
    if not is_judgement(error_name):
        return (
            f" {digest.short} was not judged: the deploy was interrupted ({error_name}) "
            "before its rollout, hooks or health said anything about it."
        )
    why = f"{error_name}: {error_message}"
    if deployment.get("service") == Role.CANARY.value:
        production = Colour.parse(deployment["colour"]).other
        if digest_of_image(ports.cluster.deployment_image(production)) == digest:
            return (
                f" {digest.short} was not marked failed: production ({production}) runs it; "
                "roll production back too if it is bad there."
            )
    ports.ledger.set_verdict(digest, Verdict.FAILED, why)
    return ""


def roll_back(event: Json, ports: DeployPorts) -> Json:
    """Point the colour at the digest ``choose_rollback_target`` picks, away from the bad one.

    For a failed deploy the bad digest is the one deployed and what ran before
    is the record's from-digest. For a requested rollback the bad digest is
    what the colour runs now and what ran before is read from the ledger's
    deployments (``ran_before``). Never a digest judged failed. With nothing to
    go back to, the cluster is left as it is: the failure is recorded, notified
    and the lock released, and ``status`` is ``stuck`` with an Error/Cause (which
    says why nothing qualified and what the colour runs) for the flow's Fail state.
    """
    settings, ledger, cluster = ports.settings, ports.ledger, ports.cluster
    deployment = event["deployment"]
    ended = _ended(ports, deployment)
    if ended is not None:
        return ended
    renew_lease(ledger, str(deployment["id"]), settings.lock_lease_seconds, attempt_of(event))
    colour = Colour.parse(deployment["colour"])
    manual = deployment.get("action") == "rollback"
    failed = _digest_or_none(deployment.get("fromDigest" if manual else "digest"))
    error_name, error_message = error_text(event.get("error"))
    choice = _choose_for(ports, deployment, colour)
    target = choice.target
    if target is None:
        now = describe_colour(cluster, colour)
        what = (
            (error_message or "rollback requested") if manual else f"{error_name}: {error_message}"
        )
        cause = (
            f"{what.rstrip('.')}. No digest to roll back to: {choice.why}. "
            f"The cluster was left as it is: {now}."
        )
        outcome = Outcome.FAILED
        if failed is not None and not manual:
            cause += _judge_failed(ports, deployment, failed, error_name, error_message)
            outcome = _outcome_of(error_name, Outcome.FAILED)
        ledger.finish_deployment(str(deployment["id"]), outcome, cause)
        kind = events.FAILED if outcome is Outcome.FAILED else events.INTERRUPTED
        publish(ports, kind, event_detail(ports, deployment, outcome, cause))
        ledger.release_lock(str(deployment["id"]))
        return {"status": "stuck", "Error": "NoHealthyDigest", "Cause": cause}
    image = settings.image_ref(target)
    roles.check_may_touch(cluster, "rollback", Role(deployment["service"]), colour)
    cluster.set_deployment_image(colour, image)
    ledger.update_deployment(str(deployment["id"]), rolled_back_to=target)
    rollout = first_reading(cluster, colour, image, ports.timing)
    return {
        "status": "rolling_back",
        "target": str(target),
        "why": choice.why,
        "image": image,
        "rollout": rollout,
    }


def conclude_rollback(event: Json, ports: DeployPorts) -> Json:
    """Mark the bad digest failed, record the rollback, notify and release the lock.

    Returns the Error/Cause the execution ends with (``manual`` when a person
    asked for the rollback: then the flow succeeds).
    """
    ledger, cluster = ports.ledger, ports.cluster
    deployment, rollback = event["deployment"], event["rollback"]
    manual = deployment.get("action") == "rollback"
    target = Digest.parse(rollback["target"])
    error_name, error_message = error_text(event.get("error"))
    recorded = ledger.deployment(str(deployment["id"]))
    if recorded is not None and recorded.outcome is not Outcome.RUNNING:
        # A retried step whose first attempt recorded the end: repeat only what is safe.
        _close(ports, deployment, recorded.outcome, recorded.cause, target)
        return {
            "manual": manual,
            "Error": error_name,
            "Cause": recorded.cause,
            "rolledBackTo": str(target),
        }
    renew_lease(ledger, str(deployment["id"]), ports.settings.lock_lease_seconds, attempt_of(event))
    colour = Colour.parse(deployment["colour"])
    failed = _digest_or_none(deployment.get("fromDigest" if manual else "digest"))
    why = f" ({rollback['why']})" if rollback.get("why") else ""
    hook_runs = event.get("hookRuns") or []
    hooks_said = (
        ", ".join(
            f"{run['hook']} {'ok' if run.get('succeeded') else 'FAILED: ' + str(run.get('reason'))}"
            for run in hook_runs
        )
        or "none configured"
    )
    spared = ""
    if failed is not None and failed != target:
        spared = _judge_failed(ports, deployment, failed, error_name, error_message)
    now = describe_colour(cluster, colour)
    what = (
        f"rolled back by request ({error_message})" if manual else f"{error_name}: {error_message}"
    )
    # Kubernetes messages end with a full stop of their own.
    what = what.rstrip(".")
    cause = (
        f"{what}. {colour} ({deployment['service']}) was rolled back to {target.short}{why}; "
        f"hooks re-run: {hooks_said}. Cluster now: {now}.{spared}"
    )
    if cluster.canary_env().selector is colour:
        cluster.set_canary_image(ports.settings.image_ref(target))
    outcome = Outcome.ROLLED_BACK if manual else _outcome_of(error_name, Outcome.ROLLED_BACK)
    ledger.finish_deployment(str(deployment["id"]), outcome, cause, rolled_back_to=target)
    _close(ports, deployment, outcome, cause, target)
    return {"manual": manual, "Error": error_name, "Cause": cause, "rolledBackTo": str(target)}


def _close(
    ports: DeployPorts, deployment: Json, outcome: Outcome, cause: str, target: Digest
) -> None:
    """What follows a recorded rollback, safe to repeat: the event (once), the lock."""
    publish(
        ports,
        events.ROLLED_BACK if outcome is Outcome.ROLLED_BACK else events.INTERRUPTED,
        {**event_detail(ports, deployment, outcome, cause), "rolledBackTo": str(target)},
    )
    ports.ledger.release_lock(str(deployment["id"]))


def _outcome_of(error_name: str, judged: Outcome) -> Outcome:
    """``judged`` when the failure was a judgement of the digest, else ``INTERRUPTED``."""
    return judged if is_judgement(error_name) else Outcome.INTERRUPTED


def _ended(ports: DeployPorts, deployment: Json) -> Json | None:
    """What a rollback step answers for a deployment whose record has ended already.

    A success is final (``close_succeeded``: the flow goes on to succeed); any other end
    is said as the ``stuck`` answer, whose Error and Cause the flow fails with. None
    while the deployment runs.
    """
    recorded = ports.ledger.deployment(str(deployment["id"]))
    if recorded is None or recorded.outcome is Outcome.RUNNING:
        return None
    if recorded.outcome is Outcome.SUCCEEDED:
        return close_succeeded(ports, deployment, recorded.cause, last_chance=True)
    ports.ledger.release_lock(str(deployment["id"]))
    return {"status": "stuck", "Error": recorded.outcome.value, "Cause": recorded.cause}


def abort(event: Json, ports: DeployPorts) -> Json:
    """Last resort of every path: record the failure, explain it, release the lock.

    Reached when Begin failed, or when the rollback itself failed (then the Cause says
    what the colour runs now). Begin records the colour before it applies the image, so
    when Begin failed after that this step reads the colour to learn the truth: if it
    runs the new image, the answer is ``status: rollback`` and the flow rolls back what
    was applied; only a colour that does not run it is reported "not changed". Safe to
    repeat: a record that has ended is not written again.
    """
    state = event.get("state") or {}
    execution = event.get("execution") or {}
    deployment_id = str(execution.get("name", ""))
    first_name, first_text = error_text(state.get("error"))
    ledger = ports.ledger
    recorded = ledger.deployment(deployment_id) if deployment_id else None
    deployment = state.get("deployment")
    if recorded is not None and recorded.outcome is not Outcome.RUNNING:
        ledger.release_lock(deployment_id)
        name = error_text(state["rollbackError"])[0] if "rollbackError" in state else first_name
        return {"Error": name, "Cause": recorded.cause}
    if "rollbackError" in state and isinstance(deployment, dict):
        second_name, second_text = error_text(state["rollbackError"])
        colour = Colour.parse(deployment["colour"])
        cause = (
            f"{first_name}: {first_text}. The rollback then failed too ({second_name}: "
            f"{second_text}). Cluster now: {describe_colour(ports.cluster, colour)}."
        )
        name = second_name
        failed = _digest_or_none(deployment.get("digest"))
        if failed is not None and deployment.get("action") == "deploy":
            cause += _judge_failed(ports, deployment, failed, first_name, first_text)
    else:
        applied = _applied_before_failing(ports, recorded)
        if applied is not None:
            return {**applied, "error": state.get("error") or {}}
        name, cause = first_name, first_text
        if recorded is not None:
            cause = f"{cause} ({_what_begin_left(ports, recorded)})"
    if recorded is not None:
        ledger.finish_deployment(deployment_id, Outcome.FAILED, f"{name}: {cause}")
        detail = event_detail(ports, deployment or {"id": deployment_id}, Outcome.FAILED, cause)
        publish(ports, events.FAILED, detail)
    ledger.release_lock(deployment_id)
    return {"Error": name, "Cause": cause}


def _applied_before_failing(ports: DeployPorts, recorded: Deployment | None) -> Json | None:
    """The deployment and hooks to roll back with, when Begin failed after its apply.

    Begin records the colour (and what it ran) before it applies the image: a record
    with a colour whose Deployment runs the new digest now was applied, by that attempt
    or by a concurrent one of the same execution, and must be rolled back, not left.
    """
    if recorded is None or recorded.action != "deploy" or recorded.colour is None:
        return None
    if recorded.to_digest is None or recorded.to_digest == recorded.from_digest:
        return None
    image = ports.settings.image_ref(recorded.to_digest)
    try:
        running = ports.cluster.deployment_image(recorded.colour)
    except Exception:
        # Unreadable: the flow's rollback reads it again, and is a no-op if it was not applied.
        running = image
    if running != image:
        return None
    return {
        "status": "rollback",
        "deployment": deployment_json(recorded, ports.settings),
        "hooks": hooks_json(ports.settings.hooks),
    }


def _what_begin_left(ports: DeployPorts, recorded: Deployment) -> str:
    """What a failed Begin left on the cluster, in words, as read (not as assumed)."""
    if recorded.colour is None:
        return "before the image was applied: the cluster was not changed"
    return (
        f"the image was not applied: {describe_colour(ports.cluster, recorded.colour)}; "
        "the cluster was not changed"
    )
