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

Cold start imports neither the Kubernetes client nor the X-Ray SDK; boto3
clients are created on the first push to record.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from bluegreen.adapters.stepfunctions import lazy_flow
from bluegreen.config import load_settings
from bluegreen.domain.errors import InvalidInput, TagUnreadable
from bluegreen.domain.models import Digest
from bluegreen.logic.autodeploy import AutoDeployPorts, on_recorded
from bluegreen.logic.pushes import (
    IgnoredEvent,
    ImagePush,
    OnRecorded,
    PushPorts,
    RecordImagePush,
    idempotency_config,
    idempotent_recorder,
    image_push,
)
from bluegreen.observability import logger, metrics, tracer

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from bluegreen.domain.ports import Ledger, TagLookup

SETTINGS = load_settings()


class Recorder(NamedTuple):
    """What recording a push needs, built once per execution environment."""

    ledger: Ledger
    record: RecordImagePush
    idempotency: IdempotencyConfig
    tag_lookup: TagLookup


@lru_cache(maxsize=1)
def recorder() -> Recorder:
    """The ledger, the idempotent recorder and the ECR tag lookup, built on the first push."""
    import boto3
    from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import (
        DynamoDBPersistenceLayer,
    )

    from bluegreen.adapters.ledger import DynamoLedger

    client = boto3.client("dynamodb", region_name=SETTINGS.region)
    ledger = DynamoLedger(
        SETTINGS.ledger_table, client, SETTINGS.application, repository=SETTINGS.repository
    )
    store = DynamoDBPersistenceLayer(table_name=SETTINGS.idempotency_table, boto3_client=client)
    config = idempotency_config()
    ecr = boto3.client("ecr", region_name=SETTINGS.region)
    return Recorder(
        ledger,
        idempotent_recorder(store, config),
        config,
        ecr_tag_lookup(ecr, SETTINGS.repository, SETTINGS.registry),
    )


_FLOW = lazy_flow(SETTINGS.state_machine_arn, SETTINGS.region)


def _auto_deploy_ports() -> AutoDeployPorts:
    return AutoDeployPorts(SETTINGS, _FLOW(), recorder().ledger)


AUTO_DEPLOY: OnRecorded | None = on_recorded(
    SETTINGS, _auto_deploy_ports if SETTINGS.state_machine_arn else None
)
"""The auto-deploy seam: called once per recorded push with the record and its tag.

Starts the deploy state machine when the tag matches ``SETTINGS.auto_deploy_tags``
(``bluegreen.logic.autodeploy``; see ``bluegreen.logic.pushes.OnRecorded`` for the
exactly-once guarantee). None would record only.
"""


def ecr_tag_lookup(client: Any, repository: str, registry: str) -> TagLookup:
    """``TagLookup`` over ``ecr:DescribeImages`` on ``repository``.

    ``client`` is a boto3 ``ecr`` client. ``registry`` is the registry's host
    name; its account is passed as ``registryId`` when it is one, as the API's
    repository check does. A missing tag or repository is "no such tag"; any
    other failure is ``TagUnreadable``, so the push is still recorded.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    account = registry.partition(".")[0]
    request: dict[str, Any] = {"repositoryName": repository}
    if account.isdigit() and len(account) == 12:
        request["registryId"] = account

    def tag_points_at(tag: str) -> Digest | None:
        try:
            response = client.describe_images(**request, imageIds=[{"imageTag": tag}])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"ImageNotFoundException", "RepositoryNotFoundException"}:
                return None
            raise TagUnreadable(f"ecr:DescribeImages failed: {code or exc}") from exc
        except BotoCoreError as exc:  # no answer at all: endpoint, timeout, credentials
            raise TagUnreadable(f"ecr:DescribeImages failed: {exc}") from exc
        details = response.get("imageDetails") or []
        if not details:
            return None
        try:
            return Digest.parse(details[0].get("imageDigest"), field_name="imageDigest")
        except InvalidInput as exc:
            raise TagUnreadable(f"ecr:DescribeImages answered {exc}") from exc

    return tag_points_at


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
        account=str(event.get("account") or ""),
        region=str(event.get("region") or ""),
        expected_account=SETTINGS.registry_account,
        expected_region=SETTINGS.region,
    )


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Record the pushed digest and tag; acknowledge anything else with its reason.

    A delivery of a push that a concurrent invocation is recording now is a
    duplicate: answered as such, in one log line. A tagged push whose tag is
    left off (a later push of the tag is known) says why in ``tagLeftOff``.
    """
    found = parse(event)
    if isinstance(found, IgnoredEvent):
        logger.info("event ignored", extra={"reason": found.reason, **found.facts})
        metrics.add_metric(name="EventsIgnored", unit=MetricUnit.Count, value=1)
        return {"recorded": False, "reason": found.reason}

    ledger, record, idempotency, tag_lookup = recorder()
    idempotency.register_lambda_context(context)
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
    )

    try:
        recorded = record(found, PushPorts(ledger, tag_lookup, AUTO_DEPLOY))
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
