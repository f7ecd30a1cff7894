"""ecr_push: record every image pushed to the application's ECR repository.

Triggered by the EventBridge rule for ``aws.ecr`` / ``ECR Image Action``
(PUSH, SUCCESS, the application's repository). The rule already filters; the
handler checks again (and that the event comes from the stack's own account
and region, and names a tag the API would accept), because a widened rule, a
cross-account bus or a replayed archive must not write foreign images into
the ledger. Events that are not a push of ours are
logged once with the reason and acknowledged, never raised: a retry would not
make them valid.

Where a pushed tag points is the repository's to say: before a tagged push
is recorded, ``ecr:DescribeImages`` is asked for the tag (see
``bluegreen.logic.pushes``), so two pushes of one tag within the same second leave
the ledger where ECR is.

The handler is thin: its environment model and adapters come from
``dependencies`` (built on first use), the decision and the recording from
``bluegreen.logic.pushes``. Cold start imports neither the Kubernetes client nor
the X-Ray SDK; boto3 clients are created on the first push to record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from bluegreen.config import checked_environment
from bluegreen.logic.pushes import IgnoredEvent, ImagePush, image_push
from bluegreen.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from bluegreen.domain.apps import AppRecord

if __package__:  # imported as functions.ecr_push.app (tests, the local stack)
    from . import dependencies
else:  # the Lambda runtime loads this file as the top-level module ``app``
    import dependencies  # type: ignore[import-not-found,no-redef]


def parse(event: object) -> ImagePush | IgnoredEvent:
    """The push an EventBridge event reports, or why it is ignored."""
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        return IgnoredEvent("malformed-event", {"problem": "not an EventBridge event with detail"})
    envelope = EventBridgeEvent(event)
    settings = dependencies.settings()
    return image_push(
        event_id=str(event.get("id") or ""),
        source=str(event.get("source") or ""),
        detail_type=str(event.get("detail-type") or ""),
        time=str(event.get("time") or ""),
        detail=envelope.detail,
        repository=settings.repository,
        account=str(event.get("account") or ""),
        region=str(event.get("region") or ""),
        expected_account=settings.registry_account,
        expected_region=settings.region,
        application=settings.application,
    )


@checked_environment(dependencies.environment)
@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Record the push for every application of the fleet whose repository it is.

    One application (the stack's own, or the only one naming the repository): its
    answer, as it always was. Several: ``{"recorded": ..., "applications": {name:
    answer}}``. None: the stack's own application says why the event is not its
    (``other-repository``, or whatever else is wrong with it), and nothing is recorded.
    """
    answers: dict[str, dict[str, Any]] = {}
    for app in applications_of(event):
        with dependencies.acting_for(app) as settings:
            logger.append_keys(app=settings.application)
            answers[settings.application] = record(event, context)
    logger.remove_keys(["app"])
    if len(answers) == 1:
        return next(iter(answers.values()))
    return {"recorded": any(a["recorded"] for a in answers.values()), "applications": answers}


def applications_of(event: object) -> list[AppRecord | None]:
    """The applications (None: the stack's own) a push to the event's repository is for;
    the stack's own alone when the event names no repository or none of the fleet's."""
    from bluegreen.logic.apps import applications_for

    detail = event.get("detail") if isinstance(event, dict) else None
    repository = detail.get("repository-name") if isinstance(detail, dict) else None
    if not isinstance(repository, str) or not repository:
        return [None]
    stack = dependencies.stack_settings()
    return applications_for(dependencies.app_registry(), stack, repository) or [None]


def record(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Record the pushed digest and tag for the current application; acknowledge anything
    else with its reason.

    A delivery of a push that a concurrent invocation is recording now is a
    duplicate: answered as such, in one log line. A tagged push whose tag is
    left off (a later push of the tag is known) says why in ``tagLeftOff``.
    """
    found = parse(event)
    if isinstance(found, IgnoredEvent):
        logger.info("event ignored", extra={"reason": found.reason, **found.facts})
        metrics.add_metric(name="EventsIgnored", unit=MetricUnit.Count, value=1)
        return {"recorded": False, "reason": found.reason}

    dependencies.idempotency().register_lambda_context(context)
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
    )

    try:
        recorded = dependencies.recorder()(found, dependencies.push_ports())
    except IdempotencyAlreadyInProgressError:
        # The same push is being recorded by a concurrent delivery right now; that one
        # answers for it (and is retried if it fails), so this one is done.
        logger.info(
            "duplicate delivery: the same push is being recorded by another invocation",
            extra={"event_id": found.event_id, "digest": str(found.digest), "tag": found.tag},
        )
        metrics.add_metric(name="DuplicateDeliveries", unit=MetricUnit.Count, value=1)
        return {"recorded": False, "duplicate": True, "reason": "duplicate-in-progress"}
    image = recorded.image
    logger.info(
        "push recorded",
        extra={
            "digest": str(image.digest),
            "tag": found.tag,
            "tags": sorted(image.tags),
            "event_id": found.event_id,
            "tag_left_off": recorded.tag_left_off or None,
        },
    )
    metrics.add_metric(name="PushesRecorded", unit=MetricUnit.Count, value=1)
    answer: dict[str, Any] = {
        "recorded": True,
        "digest": str(image.digest),
        "tags": sorted(image.tags),
    }
    if recorded.tag_left_off:
        answer["tagLeftOff"] = recorded.tag_left_off
    return answer
