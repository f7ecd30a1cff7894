"""ecr_push: record every image pushed to the application's ECR repository.

Triggered by the EventBridge rule for ``aws.ecr`` / ``ECR Image Action``
(PUSH, SUCCESS, the application's repository). The rule already filters; the
handler checks again, because a widened rule or a replayed archive must not
write foreign images into the ledger. Events that are not a push of ours are
logged once with the reason and acknowledged, never raised: a retry would not
make them valid.

Cold start imports neither the Kubernetes client nor the X-Ray SDK; boto3
clients are created on the first push to record.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from bluegreen.autodeploy import on_recorded
from bluegreen.config import load_settings
from bluegreen.observability import logger, metrics, tracer
from bluegreen.pushes import (
    IgnoredEvent,
    ImagePush,
    OnRecorded,
    RecordImagePush,
    idempotency_config,
    idempotent_recorder,
    image_push,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from bluegreen.ports import Ledger

SETTINGS = load_settings()

AUTO_DEPLOY: OnRecorded | None = on_recorded(SETTINGS)
"""The auto-deploy seam: called once per recorded push with the record and its tag.

Starts the deploy state machine when the tag matches ``SETTINGS.auto_deploy_tags``
(``bluegreen.autodeploy``; see ``bluegreen.pushes.OnRecorded`` for the
exactly-once guarantee). None would record only.
"""


@lru_cache(maxsize=1)
def recorder() -> tuple[Ledger, RecordImagePush, IdempotencyConfig]:
    """The ledger and the idempotent recorder, built on the first push (one DynamoDB client)."""
    import boto3
    from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import (
        DynamoDBPersistenceLayer,
    )

    from bluegreen.ledger import DynamoLedger

    client = boto3.client("dynamodb", region_name=SETTINGS.region)
    ledger = DynamoLedger(
        SETTINGS.ledger_table, client, SETTINGS.application, repository=SETTINGS.repository
    )
    store = DynamoDBPersistenceLayer(table_name=SETTINGS.idempotency_table, boto3_client=client)
    config = idempotency_config()
    return ledger, idempotent_recorder(store, config), config


def parse(event: object) -> ImagePush | IgnoredEvent:
    """The push an EventBridge event reports, or why it is ignored."""
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        return IgnoredEvent("malformed-event", {"problem": "not an EventBridge event with detail"})
    envelope = EventBridgeEvent(event)
    return image_push(
        event_id=str(event.get("id") or ""),
        source=str(event.get("source") or ""),
        detail_type=str(event.get("detail-type") or ""),
        time=str(event.get("time") or ""),
        detail=envelope.detail,
        repository=SETTINGS.repository,
    )


@logger.inject_lambda_context(correlation_id_path="id")
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Record the pushed digest and tag; acknowledge anything else with its reason."""
    found = parse(event)
    if isinstance(found, IgnoredEvent):
        logger.info("event ignored", extra={"reason": found.reason, **found.facts})
        metrics.add_metric(name="EventsIgnored", unit=MetricUnit.Count, value=1)
        return {"recorded": False, "reason": found.reason}

    ledger, record, idempotency = recorder()
    idempotency.register_lambda_context(context)
    image = record(push=found, ledger=ledger, on_recorded=AUTO_DEPLOY)
    logger.info(
        "push recorded",
        extra={
            "digest": str(image.digest),
            "tag": found.tag,
            "tags": sorted(image.tags),
            "event_id": found.event_id,
        },
    )
    metrics.add_metric(name="PushesRecorded", unit=MetricUnit.Count, value=1)
    return {"recorded": True, "digest": str(image.digest), "tags": sorted(image.tags)}
