"""The ledger of images, verdicts, deployments and the lock, on one DynamoDB table.

Table (``LedgerTable`` in template.yaml): ``PK``/``SK`` strings, sparse GSIs
``GSI1`` (``GSI1PK``/``GSI1SK``) and ``GSI2`` (``GSI2PK``/``GSI2SK``), TTL on
``ttl``. Every read is a GetItem or a Query by key; nothing scans.

Key design (``<app>`` is the application: one stack serves one application and
its one repository; ``<digest>`` is the canonical ``sha256:<hex>``; times are
ISO-8601 UTC with microseconds, so that they sort as strings)::

    item         PK                      SK             GSI1 (PK / SK)         GSI2 (PK / SK)
    image        IMAGE#<app>#<digest>    IMAGE          APP#<app>#IMAGES
                                                        <pushed>#<digest>
    verdict      IMAGE#<app>#<digest>    VERDICT#<app>                         APP#<app>#HEALTHY
                                                                               <judged>#<digest>
    tag pointer  TAG#<app>#<tag>         TAG
    deployment   DEPLOYMENT#<app>#<id>   DEPLOYMENT     APP#<app>#DEPLOYMENTS
                                                        <started>#<id>
    lock         LOCK#<app>              LOCK

- Images newest-first: Query GSI1 on the application, descending. ``pushed_at``
  is the earliest push of the digest (``if_not_exists``, then a conditional
  backdate when an earlier push is delivered late), so a later second tag does
  not reorder history.
- Tags: the image's ``tags`` string set holds the tags that point at it now,
  kept with single-item conditional writes (no transactions, no
  read-modify-write). The tag pointer moves only to a newer push
  (``pushed_at < :when``; out-of-order deliveries never move a tag back) and
  records in the same write the digest it moved from (``SET previous =
  digest`` reads the old value). The tag is then added to the new image with
  ``ADD`` and removed from the previous one with ``DELETE``; each image keeps,
  per tag, the stamp of the last add or removal (``tag_decided:<tag>``)
  and both writes are conditional on being newer. So whatever order
  concurrent pushes land in, each tag ends on exactly the digest of its newest
  push.
- Push times come from EventBridge with one-second resolution, so two pushes
  of a tag within one second tie. The registry breaks the tie: a push recorded
  with ``confirmed_at`` (the registry was seen, at that moment, to point the
  tag at this digest) also moves the pointer over a tied push of another
  digest confirmed earlier or not at all; the pointer keeps ``confirmed_at``
  and the image stamps become ``<pushed>#<confirmed>``, which sort after the
  bare ``<pushed>`` of the same second. The registry is asked before the
  write, and a push's own event is caused by the push, so of two tied
  pushes the one whose confirmation is later is the one the registry ends on.
- Verdicts live next to the image (one Query reads both) and are keyed by
  application. Only healthy verdicts carry GSI2 keys (a sparse index), so
  ``last_healthy`` is a descending Query of GSI2 that stops at the first digest
  not excluded; a failed verdict removes the GSI2 keys.
- Deployments: ids come from ``new_deployment_id`` (time-sortable) or are
  execution names; creation is conditional on absence, updates on existence;
  newest-first via GSI1. A request recorded before its execution starts
  (``open_deployment``) is either claimed by its execution
  (``claim_deployment`` sets ``execution_arn``) or, when the start failed,
  abandoned (``abandon_deployment``); both are conditional on the other not
  having happened, so they cannot both win.
- Lock: one item per application, taken with a conditional put (absent, or
  expired, or already ours) and released with a conditional delete (ours);
  ``ttl`` lets DynamoDB remove long-expired leases.
- Cursors are URL-safe base64 of the Query's ``LastEvaluatedKey`` as JSON,
  checked on the way back in: a cursor of another listing or garbage is an
  ``InvalidInput``, never a DynamoDB error.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from bluegreen.domain.errors import InvalidInput, NotFound
from bluegreen.domain.models import (
    Colour,
    Deployment,
    Digest,
    ImageRecord,
    Outcome,
    Role,
    Verdict,
)

Item = dict[str, dict[str, Any]]
Clock = Callable[[], datetime]

_LOCK_TTL_GRACE_SECONDS = 86_400
_MAX_PAGE = 100
_DEPLOYMENT_FIELDS = frozenset(f.name for f in fields(Deployment))
_NEWER_PUSH_RECORDED = object()
# A deployment record no execution has claimed yet (``execution_arn`` absent or empty).
_UNCLAIMED = "(attribute_not_exists(execution_arn) OR execution_arn = :none)"


@dataclass(frozen=True)
class _Decision:
    """When a push of a tag was made and, if the registry confirmed it, when that was seen."""

    when: str
    confirmed: str | None = None

    @property
    def stamp(self) -> str:
        """What orders decisions about a tag on an image: push time, then confirmation.

        ``<when>`` is a prefix of ``<when>#<confirmed>``, so it sorts first: of
        two pushes in one second, a confirmed one is decided after an
        unconfirmed one, and of two confirmed ones the later confirmation last.
        """
        return self.when if self.confirmed is None else f"{self.when}#{self.confirmed}"


def _tag_decided(tag: str) -> str:
    """Name of the image attribute holding when the image's ``tag`` was last added/removed."""
    return f"tag_decided:{tag}"


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_deployment_id(now: datetime | None = None) -> str:
    """A deployment id that sorts by creation time: ``20260127T101500123456Z-1a2b3c4d``."""
    moment = (now or utc_now()).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise InvalidInput("time", f"{moment!r} has no timezone; the ledger stores UTC times")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error", {})
        if isinstance(error, Mapping):
            return str(error.get("Code", ""))
    return ""


class DynamoLedger:
    """``bluegreen.domain.ports.Ledger`` over the ledger table, for one application.

    ``client`` is a boto3 DynamoDB client (low-level, so that importing this
    module costs nothing at cold start). ``repository`` is stored on the image
    records this ledger writes (the function that records pushes passes it).
    ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        table_name: str,
        client: Any,
        application: str,
        *,
        repository: str = "",
        clock: Clock = utc_now,
    ) -> None:
        if not application:
            raise InvalidInput("application", "the ledger needs the application's name")
        self._client = client
        self._table = table_name
        self._app = application
        self._repo = repository
        self._clock = clock

    @property
    def application(self) -> str:
        """The application whose records this ledger reads and writes."""
        return self._app

    # keys -------------------------------------------------------------------
    def _image_pk(self, digest: Digest) -> str:
        return f"IMAGE#{self._app}#{digest}"

    def _tag_pk(self, tag: str) -> str:
        return f"TAG#{self._app}#{tag}"

    def _deployment_pk(self, deployment_id: str) -> str:
        return f"DEPLOYMENT#{self._app}#{deployment_id}"

    @property
    def _images_index_pk(self) -> str:
        return f"APP#{self._app}#IMAGES"

    @property
    def _healthy_index_pk(self) -> str:
        return f"APP#{self._app}#HEALTHY"

    @property
    def _deployments_index_pk(self) -> str:
        return f"APP#{self._app}#DEPLOYMENTS"

    @property
    def _verdict_sk(self) -> str:
        return f"VERDICT#{self._app}"

    # images -------------------------------------------------------------------
    def record_push(
        self,
        digest: Digest,
        tag: str | None,
        pushed_at: datetime,
        event_id: str,
        *,
        confirmed_at: datetime | None = None,
    ) -> ImageRecord:
        """Record a push; a second tag for the same digest merges tags. Idempotent.

        The image item is an upsert: the first push fixes ``pushed_at`` and the
        event id, later pushes only add their tag. A tag is attached only when
        this push is the newest push of that tag the ledger has seen.

        ``confirmed_at`` is when the registry was asked and answered that ``tag``
        points at ``digest``; such a push also wins a tie of push times (same
        second) against a push of another digest confirmed earlier or not at all.
        """
        if tag is not None and not tag:
            raise InvalidInput("tag", "must be a non-empty string or absent (untagged push)")
        if confirmed_at is not None and tag is None:
            raise InvalidInput("confirmed_at", "only a tagged push can be confirmed")
        when = _iso(pushed_at)
        confirmed = None if confirmed_at is None else _iso(confirmed_at)
        image_update: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"PK": _s(self._image_pk(digest)), "SK": _s("IMAGE")},
            "UpdateExpression": (
                "SET repository = if_not_exists(repository, :repo), digest = :digest,"
                " pushed_at = if_not_exists(pushed_at, :when),"
                " event_id = if_not_exists(event_id, :event),"
                " GSI1PK = :index, GSI1SK = if_not_exists(GSI1SK, :order)"
            ),
            "ExpressionAttributeValues": {
                ":repo": _s(self._repo),
                ":digest": _s(str(digest)),
                ":when": _s(when),
                ":event": _s(event_id),
                ":index": _s(self._images_index_pk),
                ":order": _s(f"{when}#{digest}"),
            },
        }
        if tag is None:
            self._client.update_item(**image_update)
        else:
            self._attach_tag(digest, tag, _Decision(when, confirmed), event_id, image_update)
        record = self.image(digest)
        if record is not None and record.pushed_at > pushed_at.astimezone(UTC):
            # An earlier push of this digest arrived after a later one: history keeps the first.
            self._backdate(digest, when, event_id)
            record = self.image(digest)
        if record is None:  # pragma: no cover - written just above with a strong read
            raise NotFound(f"image {digest} vanished right after it was recorded")
        return record

    def _backdate(self, digest: Digest, when: str, event_id: str) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"PK": _s(self._image_pk(digest)), "SK": _s("IMAGE")},
                UpdateExpression="SET pushed_at = :when, event_id = :event, GSI1SK = :order",
                ConditionExpression="pushed_at > :when",
                ExpressionAttributeValues={
                    ":when": _s(when),
                    ":event": _s(event_id),
                    ":order": _s(f"{when}#{digest}"),
                },
            )
        except Exception as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise

    def _attach_tag(
        self,
        digest: Digest,
        tag: str,
        decision: _Decision,
        event_id: str,
        image_update: dict[str, Any],
    ) -> None:
        previous = self._move_pointer(digest, tag, decision, event_id)
        if previous is _NEWER_PUSH_RECORDED:
            # A newer push of this tag is already recorded: keep the image, not the tag.
            self._client.update_item(**image_update)
            return
        tagged = dict(image_update)
        tagged["UpdateExpression"] = (
            image_update["UpdateExpression"] + ", #tagged = :stamp ADD tags :tags"
        )
        tagged["ConditionExpression"] = "attribute_not_exists(#tagged) OR #tagged <= :stamp"
        tagged["ExpressionAttributeNames"] = {"#tagged": _tag_decided(tag)}
        tagged["ExpressionAttributeValues"] = {
            **image_update["ExpressionAttributeValues"],
            ":stamp": _s(decision.stamp),
            ":tags": {"SS": [tag]},
        }
        try:
            self._client.update_item(**tagged)
        except Exception as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            # The tag already moved past this push (a newer push removed it here).
            self._client.update_item(**image_update)
        if isinstance(previous, str) and previous != str(digest):
            self._detach_tag(previous, tag, decision.stamp)

    def _move_pointer(self, digest: Digest, tag: str, decision: _Decision, event_id: str) -> object:
        """Point ``tag`` at ``digest`` unless a newer push of it is recorded.

        Returns the digest the tag pointed at before (``None`` for a new tag),
        or ``_NEWER_PUSH_RECORDED``. ``previous = digest`` reads the item as it
        was before this update, so the move and its "from" are one atomic write;
        a redelivery of the same push finds the "from" stored by the first one.
        A confirmed push also takes a tied pointer from another digest whose
        confirmation is older or missing; an unconfirmed move drops the
        pointer's confirmation, which belonged to the digest it moved from.
        """
        key = {"PK": _s(self._tag_pk(tag)), "SK": _s("TAG")}
        values = {
            ":none": _s(""),
            ":digest": _s(str(digest)),
            ":when": _s(decision.when),
            ":event": _s(event_id),
            ":tag": _s(tag),
        }
        update = (
            "SET previous = if_not_exists(digest, :none), digest = :digest,"
            " pushed_at = :when, event_id = :event, tag = :tag"
        )
        condition = "attribute_not_exists(PK) OR pushed_at < :when"
        if decision.confirmed is None:
            update += " REMOVE confirmed_at"
        else:
            update += ", confirmed_at = :confirmed"
            condition += (
                " OR (pushed_at = :when AND digest <> :digest"
                " AND (attribute_not_exists(confirmed_at) OR confirmed_at < :confirmed))"
            )
            values[":confirmed"] = _s(decision.confirmed)
        try:
            moved = self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_NEW",
            )
        except Exception as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            current = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
            item = current.get("Item", {})
            if (
                item.get("digest", {}).get("S") == str(digest)
                and item["pushed_at"]["S"] == decision.when
            ):
                return item.get("previous", {}).get("S") or None  # redelivery
            return _NEWER_PUSH_RECORDED
        return moved.get("Attributes", {}).get("previous", {}).get("S") or None

    def _detach_tag(self, previous: str, tag: str, stamp: str) -> None:
        """Remove ``tag`` from the digest it pointed at before, unless decided later already.

        The tag's decision stamp on the image guards both directions: a removal
        older than the image's latest push of the tag does nothing, and it
        leaves a mark that stops an older, late-arriving push from re-adding it.
        """
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"PK": _s(self._image_pk(Digest.parse(previous))), "SK": _s("IMAGE")},
                UpdateExpression="SET #tagged = :stamp DELETE tags :tags",
                ConditionExpression="attribute_not_exists(#tagged) OR #tagged < :stamp",
                ExpressionAttributeNames={"#tagged": _tag_decided(tag)},
                ExpressionAttributeValues={":stamp": _s(stamp), ":tags": {"SS": [tag]}},
            )
        except Exception as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise

    def image(self, digest: Digest) -> ImageRecord | None:
        """The image with its verdict for this application, or None when never pushed."""
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": _s(self._image_pk(digest))},
            ConsistentRead=True,
        )
        items = {item["SK"]["S"]: item for item in response.get("Items", [])}
        if "pushed_at" not in items.get("IMAGE", {}):
            return None  # never pushed (at most a removal mark from a tag that moved on)
        return self._image_record(items["IMAGE"], items.get(self._verdict_sk))

    def _image_record(self, item: Item, verdict_item: Item | None) -> ImageRecord:
        verdict, reason = Verdict.UNKNOWN, ""
        if verdict_item is not None:
            verdict = Verdict(verdict_item["verdict"]["S"])
            reason = verdict_item.get("reason", {}).get("S", "")
        return ImageRecord(
            repository=item.get("repository", {}).get("S", ""),
            digest=Digest.parse(item["digest"]["S"]),
            tags=frozenset(item.get("tags", {}).get("SS", [])),
            pushed_at=_parse_time(item["pushed_at"]["S"]),
            event_id=item.get("event_id", {}).get("S", ""),
            verdict=verdict,
            verdict_reason=reason,
        )

    def digest_for_tag(self, tag: str) -> Digest | None:
        """The digest the tag points at now (the newest push of that tag)."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"PK": _s(self._tag_pk(tag)), "SK": _s("TAG")},
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else Digest.parse(item["digest"]["S"])

    def images(
        self, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[ImageRecord], str | None]:
        """Images of the repository newest-first, with an opaque cursor for the next page."""
        items, next_cursor = self._page("GSI1", self._images_index_pk, limit, cursor)
        verdicts = self._verdicts([item["PK"]["S"] for item in items])
        return [self._image_record(item, verdicts.get(item["PK"]["S"])) for item in items], (
            next_cursor
        )

    def _verdicts(self, image_pks: Sequence[str]) -> dict[str, Item]:
        found: dict[str, Item] = {}
        pending: list[dict[str, Any]] = [
            {"PK": _s(pk), "SK": _s(self._verdict_sk)} for pk in dict.fromkeys(image_pks)
        ]
        while pending:
            batch, pending = pending[:_MAX_PAGE], pending[_MAX_PAGE:]
            request: dict[str, Any] = {self._table: {"Keys": batch}}
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    found[item["PK"]["S"]] = item
                request = response.get("UnprocessedKeys") or {}
        return found

    # verdicts -------------------------------------------------------------------
    def set_verdict(self, digest: Digest, verdict: Verdict, reason: str = "") -> None:
        """Record the application's verdict on ``digest`` (healthy/failed), with reason and time."""
        judged = _iso(self._clock())
        values: dict[str, Any] = {
            ":verdict": _s(verdict.value),
            ":reason": _s(reason),
            ":judged": _s(judged),
            ":digest": _s(str(digest)),
        }
        expression = (
            "SET verdict = :verdict, reason = :reason, judged_at = :judged, digest = :digest"
        )
        if verdict is Verdict.HEALTHY:
            expression += ", GSI2PK = :healthy, GSI2SK = :order"
            values[":healthy"] = _s(self._healthy_index_pk)
            values[":order"] = _s(f"{judged}#{digest}")
        else:
            expression += " REMOVE GSI2PK, GSI2SK"
        self._client.update_item(
            TableName=self._table,
            Key={"PK": _s(self._image_pk(digest)), "SK": _s(self._verdict_sk)},
            UpdateExpression=expression,
            ExpressionAttributeValues=values,
        )

    def verdict(self, digest: Digest) -> Verdict:
        """The application's verdict on ``digest`` (``unknown`` when never judged)."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"PK": _s(self._image_pk(digest)), "SK": _s(self._verdict_sk)},
            ConsistentRead=True,
        ).get("Item")
        return Verdict.UNKNOWN if item is None else Verdict(item["verdict"]["S"])

    def last_healthy(self, exclude: Sequence[Digest] = ()) -> Digest | None:
        """The most recently judged healthy digest not in ``exclude`` (nor judged failed)."""
        excluded = {str(d) for d in exclude}
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "GSI2",
            "KeyConditionExpression": "GSI2PK = :pk",
            "ExpressionAttributeValues": {":pk": _s(self._healthy_index_pk)},
            "ScanIndexForward": False,
            "Limit": len(excluded) + 1,
        }
        while True:
            response = self._client.query(**request)
            for item in response.get("Items", []):
                if item["digest"]["S"] not in excluded:
                    return Digest.parse(item["digest"]["S"])
            if "LastEvaluatedKey" not in response:
                return None
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # deployments ------------------------------------------------------------------
    def put_deployment(self, deployment: Deployment) -> None:
        """Create the record; a second put with the same id is a no-op."""
        item = self._deployment_item(deployment)
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(PK)",
            )
        except Exception as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise

    def update_deployment(self, deployment_id: str, **changes: object) -> Deployment:
        """Change fields of a recorded deployment and return it as it is now.

        Field names are those of ``bluegreen.domain.models.Deployment``; ``id`` and
        ``application`` cannot change. ``NotFound`` when no such deployment.
        """
        unknown = sorted(set(changes) - _DEPLOYMENT_FIELDS)
        if unknown:
            raise InvalidInput(", ".join(unknown), "not a field of a deployment")
        if {"id", "application"} & set(changes):
            raise InvalidInput("id/application", "identify the deployment and cannot change")
        sets: list[str] = []
        removes: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        for index, (name, value) in enumerate(sorted(changes.items())):
            names[f"#f{index}"] = name
            encoded = _encode_field(name, value)
            if encoded is None:
                removes.append(f"#f{index}")
            else:
                sets.append(f"#f{index} = :v{index}")
                values[f":v{index}"] = encoded
            if name == "started_at" and isinstance(value, datetime):
                sets.append("GSI1SK = :order")
                values[":order"] = _s(f"{_iso(value)}#{deployment_id}")
        expression = " ".join(
            part
            for part in (
                f"SET {', '.join(sets)}" if sets else "",
                f"REMOVE {', '.join(removes)}" if removes else "",
            )
            if part
        )
        if not expression:
            found = self.deployment(deployment_id)
            if found is None:
                raise NotFound(f"deployment {deployment_id!r} is not in the ledger")
            return found
        return self._update_existing(deployment_id, expression, names, values)

    def _update_existing(
        self,
        deployment_id: str,
        expression: str,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> Deployment:
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"PK": _s(self._deployment_pk(deployment_id)), "SK": _s("DEPLOYMENT")},
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(PK)",
            "ReturnValues": "ALL_NEW",
        }
        if names:
            request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = values
        try:
            response = self._client.update_item(**request)
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                raise NotFound(f"deployment {deployment_id!r} is not in the ledger") from None
            raise
        return _deployment_from_item(response["Attributes"])

    def finish_deployment(
        self,
        deployment_id: str,
        outcome: Outcome,
        cause: str = "",
        rolled_back_to: Digest | None = None,
    ) -> Deployment:
        """Record where the deployment ended, when and why; ``NotFound`` when no such deployment.

        ``cause`` says how it ended; the caller's ``reason`` is left as it was
        recorded at the start, whatever the outcome.
        """
        changes: dict[str, object] = {"outcome": outcome, "finished_at": self._clock()}
        if cause:
            changes["cause"] = cause
        if rolled_back_to is not None:
            changes["rolled_back_to"] = rolled_back_to
        return self.update_deployment(deployment_id, **changes)

    def open_deployment(self, deployment: Deployment) -> bool:
        """Record a request before its execution is started; False when one is recorded already.

        Conditional: the id is new, or its record is a request whose start failed
        (``abandon_deployment``) and that no execution ever claimed, which a
        retried delivery of the same request may open again.
        """
        item = self._deployment_item(deployment)
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=(
                    f"attribute_not_exists(PK) OR (outcome = :failed AND {_UNCLAIMED})"
                ),
                ExpressionAttributeValues={":failed": _s(Outcome.FAILED.value), ":none": _s("")},
            )
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def abandon_deployment(self, deployment_id: str, cause: str) -> bool:
        """Close a request whose execution could not be started; False when one claimed it.

        Conditional on the record being open and unclaimed, so that an execution
        which did start after all (a start that timed out on its way back) and
        this write cannot both win: exactly one of them changes the record.
        """
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"PK": _s(self._deployment_pk(deployment_id)), "SK": _s("DEPLOYMENT")},
                UpdateExpression="SET outcome = :failed, cause = :cause, finished_at = :now",
                ConditionExpression=f"outcome = :running AND {_UNCLAIMED}",
                ExpressionAttributeValues={
                    ":none": _s(""),
                    ":failed": _s(Outcome.FAILED.value),
                    ":running": _s(Outcome.RUNNING.value),
                    ":cause": _s(cause),
                    ":now": _s(_iso(self._clock())),
                },
            )
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def claim_deployment(self, deployment_id: str, execution_arn: str) -> Deployment | None:
        """The execution ``execution_arn`` takes the recorded request as its own.

        Conditional on the record being open and unclaimed or claimed by that
        same execution (a retried step); None when the request was abandoned,
        finished, or belongs to another execution.
        """
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={"PK": _s(self._deployment_pk(deployment_id)), "SK": _s("DEPLOYMENT")},
                UpdateExpression="SET execution_arn = :arn",
                ConditionExpression=(
                    f"outcome = :running AND ({_UNCLAIMED} OR execution_arn = :arn)"
                ),
                ExpressionAttributeValues={
                    ":none": _s(""),
                    ":arn": _s(execution_arn),
                    ":running": _s(Outcome.RUNNING.value),
                },
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return _deployment_from_item(response["Attributes"])

    def deployment(self, deployment_id: str) -> Deployment | None:
        """One deployment, or None."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"PK": _s(self._deployment_pk(deployment_id)), "SK": _s("DEPLOYMENT")},
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else _deployment_from_item(item)

    def deployments(
        self, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Deployment], str | None]:
        """The application's deployments newest-first, with an opaque cursor for the next page."""
        items, next_cursor = self._page("GSI1", self._deployments_index_pk, limit, cursor)
        return [_deployment_from_item(item) for item in items], next_cursor

    def _deployment_item(self, deployment: Deployment) -> Item:
        if deployment.application != self._app:
            raise InvalidInput(
                "application",
                f"{deployment.application!r} is not this ledger's application {self._app!r}",
            )
        if not deployment.id:
            raise InvalidInput("id", "a deployment needs an id (see new_deployment_id)")
        item: Item = {
            "PK": _s(self._deployment_pk(deployment.id)),
            "SK": _s("DEPLOYMENT"),
            "GSI1PK": _s(self._deployments_index_pk),
            "GSI1SK": _s(f"{_iso(deployment.started_at)}#{deployment.id}"),
        }
        for spec in fields(Deployment):
            encoded = _encode_field(spec.name, getattr(deployment, spec.name))
            if encoded is not None:
                item[spec.name] = encoded
        return item

    # lock -------------------------------------------------------------------------
    def acquire_lock(self, holder: str, lease_seconds: int) -> bool:
        """Take the per-application lease (conditional write); True when held by ``holder``.

        Succeeds when nobody holds it, the lease expired, or ``holder`` already
        holds it (which renews the lease).
        """
        if not holder:
            raise InvalidInput("holder", "must be a non-empty string")
        if lease_seconds <= 0:
            raise InvalidInput("lease_seconds", "must be positive")
        now = self._clock().timestamp()
        expires = now + lease_seconds
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "PK": _s(f"LOCK#{self._app}"),
                    "SK": _s("LOCK"),
                    "holder": _s(holder),
                    "acquired_at": _s(_iso(self._clock())),
                    "expires_at": {"N": repr(expires)},
                    "ttl": {"N": str(int(expires) + _LOCK_TTL_GRACE_SECONDS)},
                },
                ConditionExpression=(
                    "attribute_not_exists(PK) OR expires_at < :now OR holder = :holder"
                ),
                ExpressionAttributeValues={":now": {"N": repr(now)}, ":holder": _s(holder)},
            )
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def renew_lock(self, holder: str, lease_seconds: int, attempt: str = "") -> bool:
        """Extend ``holder``'s own lease; False when it is not ``holder``'s any more, or a
        later ``attempt`` renewed it (see ``ports.Ledger.renew_lock``).

        Unlike ``acquire_lock``, an expired lease is not taken again: a holder whose
        lease ran out may have been overtaken (another deployment took the lock, did its
        work and released it), and only the holder's own item still being there proves
        it was not.
        """
        if not holder:
            raise InvalidInput("holder", "must be a non-empty string")
        if lease_seconds <= 0:
            raise InvalidInput("lease_seconds", "must be positive")
        expires = self._clock().timestamp() + lease_seconds
        values: dict[str, Any] = {
            ":holder": _s(holder),
            ":expires": {"N": repr(expires)},
            ":ttl": {"N": str(int(expires) + _LOCK_TTL_GRACE_SECONDS)},
        }
        update = "SET expires_at = :expires, #ttl = :ttl"
        condition = "holder = :holder"
        if attempt:
            update += ", attempt = :attempt"
            condition += " AND (attribute_not_exists(attempt) OR attempt <= :attempt)"
            values[":attempt"] = _s(attempt)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"PK": _s(f"LOCK#{self._app}"), "SK": _s("LOCK")},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def claim_event(self, deployment_id: str, outcome: str) -> bool:
        """True for the first caller per deployment and outcome (a conditional put)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "PK": _s(self._deployment_pk(deployment_id)),
                    "SK": _s(f"EVENT#{outcome}"),
                    "claimed_at": _s(_iso(self._clock())),
                },
                ConditionExpression="attribute_not_exists(PK)",
            )
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def unclaim_event(self, deployment_id: str, outcome: str) -> None:
        """Give a claim back, so that the next caller publishes the event."""
        self._client.delete_item(
            TableName=self._table,
            Key={"PK": _s(self._deployment_pk(deployment_id)), "SK": _s(f"EVENT#{outcome}")},
        )

    def release_lock(self, holder: str) -> None:
        """Release the lease if ``holder`` owns it; otherwise do nothing."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"PK": _s(f"LOCK#{self._app}"), "SK": _s("LOCK")},
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":holder": _s(holder)},
            )
        except Exception as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise

    def lock_holder(self) -> str | None:
        """Who holds an unexpired lease, if anyone."""
        item = self._client.get_item(
            TableName=self._table,
            Key={"PK": _s(f"LOCK#{self._app}"), "SK": _s("LOCK")},
            ConsistentRead=True,
        ).get("Item")
        if item is None or float(item["expires_at"]["N"]) <= self._clock().timestamp():
            return None
        return str(item["holder"]["S"])

    # paging -------------------------------------------------------------------------
    def _page(
        self, index: str, partition: str, limit: int, cursor: str | None
    ) -> tuple[list[Item], str | None]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_PAGE:
            raise InvalidInput("limit", f"must be a whole number from 1 to {_MAX_PAGE}")
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": f"{index}PK = :pk",
            "ExpressionAttributeValues": {":pk": _s(partition)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor is not None:
            request["ExclusiveStartKey"] = _decode_cursor(cursor, index, partition)
        response = self._client.query(**request)
        last = response.get("LastEvaluatedKey")
        return list(response.get("Items", [])), None if last is None else _encode_cursor(last)


def _encode_cursor(key: Mapping[str, Any]) -> str:
    plain = {name: value["S"] for name, value in key.items()}
    raw = json.dumps(plain, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, index: str, partition: str) -> dict[str, Any]:
    """The ExclusiveStartKey a cursor stands for, or ``InvalidInput`` if it is not one of ours."""
    problem = "is not a cursor returned by this listing"
    if not isinstance(cursor, str) or not cursor or len(cursor) > 2048:
        raise InvalidInput("cursor", problem)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        plain = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidInput("cursor", problem) from None
    expected = {"PK", "SK", f"{index}PK", f"{index}SK"}
    if (
        not isinstance(plain, dict)
        or set(plain) != expected
        or not all(isinstance(v, str) and v for v in plain.values())
        or plain[f"{index}PK"] != partition
    ):
        raise InvalidInput("cursor", problem)
    return {name: _s(value) for name, value in plain.items()}


def _encode_field(name: str, value: object) -> dict[str, Any] | None:
    """A Deployment field as a DynamoDB attribute value; None means 'absent'."""
    if value is None:
        return None
    if isinstance(value, bool):
        return {"BOOL": value}
    if name == "hook_logs":
        if not isinstance(value, Mapping):
            raise InvalidInput(name, "must be a mapping of hook name to log text")
        return {"M": {str(k): _s(str(v)) for k, v in value.items()}}
    if isinstance(value, datetime):
        return _s(_iso(value))
    if isinstance(value, Digest):
        return _s(str(value))
    if isinstance(value, str):  # also the str enums: Role, Colour, Outcome
        return _s(str(value))
    raise InvalidInput(name, f"cannot store a {type(value).__name__} in a deployment")


def _deployment_from_item(item: Item) -> Deployment:
    def text(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    def digest(name: str) -> Digest | None:
        return Digest.parse(text(name)) if text(name) else None

    def moment(name: str) -> datetime | None:
        return _parse_time(text(name)) if text(name) else None

    started = moment("started_at")
    if started is None:  # pragma: no cover - every put writes started_at
        raise NotFound(f"deployment item {text('id')!r} has no start time")
    return Deployment(
        id=text("id"),
        application=text("application"),
        action=text("action"),
        role=Role(text("role")),
        colour=Colour(text("colour")) if text("colour") else None,
        to_digest=digest("to_digest"),
        from_digest=digest("from_digest"),
        trigger=text("trigger"),
        actor=text("actor"),
        started_at=started,
        outcome=Outcome(text("outcome") or Outcome.RUNNING.value),
        execution_arn=text("execution_arn"),
        source_ip=text("source_ip"),
        tag=text("tag"),
        finished_at=moment("finished_at"),
        reason=text("reason"),
        rolled_back_to=digest("rolled_back_to"),
        hook_logs={
            k: str(v.get("S", "")) for k, v in item.get("hook_logs", {}).get("M", {}).items()
        },
        force=bool(item.get("force", {}).get("BOOL", False)),
        seen_image=text("seen_image"),
        waits_behind=text("waits_behind"),
        cause=text("cause"),
    )
