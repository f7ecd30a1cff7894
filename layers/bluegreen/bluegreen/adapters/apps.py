"""The application registry, on the ledger's DynamoDB table (``ports.AppRegistry``).

Items, next to the ledger's own (same table, same key attributes; key design of
the ledger in ``adapters/ledger.py``)::

    item         PK           SK                  GSI1 (PK / SK)   GSI2 (PK / SK)
    application  APP#<app>    SPEC                APPS             REPOSITORY#<repo>
                                                  <app>            <app>
    change       APP#<app>    CHANGE#<version>
    (deleted)    APP#<app>    SPEC  deleted=true  (no index keys)

- The spec item holds the spec (JSON text), its ``version`` and who changed it,
  when and from where. Every write is one transaction of two items: the spec
  item, conditional on the version the caller read, and the change record of the
  new version, conditional on its absence. Of two editors who read the same
  version, one transaction lands and the other's condition fails: it writes
  nothing and hears which version is there now.
- Versions count up per name for ever: a delete leaves the spec item as a
  tombstone (``deleted``, without index keys, so no listing sees it) holding the
  last version, and a create over it continues from there. An editor who read
  version 3 before a delete and a re-create can therefore never overwrite the new
  application's version 1, and change records (``CHANGE#<version>``, zero-padded
  so they sort) never collide.
- ``apps`` is a Query of GSI1 on ``APPS``, by name; ``by_repository`` a Query of
  GSI2 on the repository. Both indexes are the ledger's (sparse: only live
  application items carry these keys, and ``APPS`` and ``REPOSITORY#...`` never meet
  the ledger's ``APP#<app>#...`` partitions). A registry holds tens or hundreds of
  applications and changes rarely, so one ``APPS`` partition is no hot spot.
- A delete is refused while a deployment of the application runs: its newest
  deployment records (GSI1 ``APP#<app>#DEPLOYMENTS``, the ledger's) may not be
  running, and the transaction checks that nobody holds the ledger's lock item
  (``LOCK#<app>``) at the instant it removes the spec. A request recorded between
  those two reads still finds the lock checked by the flow's first step. The
  ledger's items of the application (images, verdicts, deployments) stay.
- Cursors are URL-safe base64 of the Query's ``LastEvaluatedKey``, checked on the
  way back in like the ledger's: another listing's cursor or garbage is an
  ``InvalidInput``, never a DynamoDB error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from bluegreen.domain.apps import NEVER_USED, AppChange, AppRecord, AppSpec, Editor, check_app_name
from bluegreen.domain.errors import AppInUse, AppNotFound, AppVersionConflict, InvalidInput
from bluegreen.domain.models import Outcome
from bluegreen.domain.paging import MAX_PAGE

Item = dict[str, dict[str, Any]]

RUNNING_LOOKBACK = 20
"""How many of an application's newest deployment records a delete reads for one still
running: requests queue behind the lock one at a time, so a running one is among them."""

_APPS = "APPS"
_SPEC = "SPEC"
_CHANGE = "CHANGE#"
_VERSION_DIGITS = 10


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _n(value: int) -> dict[str, Any]:
    return {"N": str(value)}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _pk(name: str) -> str:
    return f"APP#{name}"


def _change_sk(version: int) -> str:
    return f"{_CHANGE}{version:0{_VERSION_DIGITS}d}"


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error", {})
        if isinstance(error, Mapping):
            return str(error.get("Code", ""))
    return ""


def _cancelled(exc: Exception) -> list[str] | None:
    """The codes of a cancelled transaction's items, in order; None for any other error."""
    if _error_code(exc) != "TransactionCanceledException":
        return None
    response = getattr(exc, "response", {})
    reasons = response.get("CancellationReasons") or []
    return [str(reason.get("Code", "")) for reason in reasons]


class DynamoAppRegistry:
    """``bluegreen.domain.ports.AppRegistry`` over the ledger table.

    ``client`` is a low-level boto3 DynamoDB client; ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        table_name: str,
        client: Any,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._table = table_name
        self._client = client
        self._clock = clock

    # reads -------------------------------------------------------------------------
    def _item(self, name: str) -> Item | None:
        item: Item | None = self._client.get_item(
            TableName=self._table,
            Key={"PK": _s(_pk(name)), "SK": _s(_SPEC)},
            ConsistentRead=True,
        ).get("Item")
        return item

    def get(self, name: str) -> AppRecord | None:
        """The application as it is now; None when there is none (or it was deleted)."""
        item = self._item(check_app_name(name))
        if item is None or _deleted(item):
            return None
        return _record(item)

    def apps(
        self, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[AppRecord], str | None]:
        """Applications by name, a page at a time."""
        items, next_cursor = self._page("GSI1", _APPS, limit, cursor)
        return [_record(item) for item in items], next_cursor

    def by_repository(self, repository: str) -> list[AppRecord]:
        """Every application naming ``repository``, by name (every page of GSI2)."""
        found: list[AppRecord] = []
        cursor: str | None = None
        while True:
            items, cursor = self._page("GSI2", f"REPOSITORY#{repository}", MAX_PAGE, cursor)
            found += [_record(item) for item in items]
            if cursor is None:
                return found

    def changes(
        self, name: str, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[AppChange], str | None]:
        """The application's changes, newest first."""
        _check_limit(limit)
        partition = _pk(check_app_name(name))
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :change)",
            "ExpressionAttributeValues": {":pk": _s(partition), ":change": _s(_CHANGE)},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor is not None:
            request["ExclusiveStartKey"] = _decode_cursor(cursor, None, partition)
        response = self._client.query(**request)
        last = response.get("LastEvaluatedKey")
        changes = [_change(item) for item in response.get("Items", [])]
        return changes, None if last is None else _encode_cursor(last)

    # writes ------------------------------------------------------------------------
    def put(
        self, name: str, spec: AppSpec, editor: Editor, expected_version: int | None
    ) -> tuple[AppRecord, bool]:
        """Create or replace, conditional on the version read (see the module's notes)."""
        check_app_name(name)
        now = _iso(self._clock())
        spec_json = json.dumps(spec.to_json(), sort_keys=True, separators=(",", ":"))
        created = expected_version is None or expected_version == NEVER_USED
        values: dict[str, Any] = {}
        if expected_version == NEVER_USED:
            seen, condition = 0, "attribute_not_exists(PK)"
        elif expected_version is None:
            current = self._item(name)
            if current is not None and not _deleted(current):
                version = int(current["version"]["N"])
                raise AppVersionConflict(
                    f"application {name!r} exists already (version {version}, changed by "
                    f"{_text(current, 'changed_by')} at {_text(current, 'changed_at')}); "
                    f'to replace it send If-Match: "{version}"'
                )
            if current is None:
                seen, condition = 0, "attribute_not_exists(PK)"
            else:  # a tombstone: the name's versions go on from the last one
                seen, condition = (
                    int(current["version"]["N"]),
                    "version = :seen AND deleted = :true",
                )
                values[":true"] = {"BOOL": True}
        else:
            if isinstance(expected_version, bool) or expected_version < NEVER_USED:
                raise InvalidInput("If-Match", "must be a version: a whole number from 1")
            seen, condition = expected_version, "version = :seen AND attribute_not_exists(deleted)"
        if seen:
            values[":seen"] = _n(seen)
        version = seen + 1
        values |= {
            ":name": _s(name),
            ":spec": _s(spec_json),
            ":version": _n(version),
            ":actor": _s(editor.actor),
            ":ip": _s(editor.source_ip),
            ":request": _s(editor.request_id),
            ":now": _s(now),
            ":apps": _s(_APPS),
            ":repository_index": _s(f"REPOSITORY#{spec.repository}"),
        }
        creation = ", created_by = :actor, created_at = :now" if created else ""
        update = {
            "TableName": self._table,
            "Key": {"PK": _s(_pk(name)), "SK": _s(_SPEC)},
            "UpdateExpression": (
                "SET #name = :name, spec = :spec, version = :version, changed_by = :actor,"
                " changed_at = :now, source_ip = :ip, request_id = :request,"
                " GSI1PK = :apps, GSI1SK = :name, GSI2PK = :repository_index, GSI2SK = :name"
                f"{creation} REMOVE deleted"
            ),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#name": "name"},
            "ExpressionAttributeValues": values,
        }
        change = self._change_item(
            name, version, "create" if created else "replace", editor, now, spec_json
        )
        codes = self._transact([{"Update": update}, {"Put": change}])
        if codes is not None:
            raise self._conflict(name, expected_version)
        record = self.get(name)
        if record is None:  # pragma: no cover - deleted between our write and this read
            raise AppNotFound(f"application {name!r} was deleted as it was written")
        return record, created

    def delete(self, name: str, editor: Editor, expected_version: int | None = None) -> AppRecord:
        """Leave a tombstone in place of the application, unless a deployment of it runs."""
        current = self._item(check_app_name(name))
        if current is None or _deleted(current):
            raise AppNotFound(f"no application {name!r}")
        record = _record(current)
        if expected_version is not None and expected_version != record.version:
            raise self._conflict(name, expected_version)
        running = self._running_deployment(name)
        if running:
            raise AppInUse(
                f"deployment {running} of {name!r} is running; delete the application once "
                "it has ended"
            )
        now = _iso(self._clock())
        version = record.version + 1
        tombstone = {
            "TableName": self._table,
            "Key": {"PK": _s(_pk(name)), "SK": _s(_SPEC)},
            "UpdateExpression": (
                "SET deleted = :true, version = :version, changed_by = :actor, changed_at = :now,"
                " source_ip = :ip, request_id = :request"
                " REMOVE spec, created_by, created_at, GSI1PK, GSI1SK, GSI2PK, GSI2SK"
            ),
            "ConditionExpression": "version = :seen AND attribute_not_exists(deleted)",
            "ExpressionAttributeValues": {
                ":true": {"BOOL": True},
                ":version": _n(version),
                ":seen": _n(record.version),
                ":actor": _s(editor.actor),
                ":now": _s(now),
                ":ip": _s(editor.source_ip),
                ":request": _s(editor.request_id),
            },
        }
        # The ledger's lock item (adapters/ledger.py): no unexpired lease at this instant.
        unlocked = {
            "TableName": self._table,
            "Key": {"PK": _s(f"LOCK#{name}"), "SK": _s("LOCK")},
            "ConditionExpression": "attribute_not_exists(PK) OR expires_at < :epoch",
            "ExpressionAttributeValues": {":epoch": {"N": repr(self._clock().timestamp())}},
        }
        spec_json = _text(current, "spec")
        change = self._change_item(name, version, "delete", editor, now, spec_json)
        codes = self._transact(
            [{"Update": tombstone}, {"ConditionCheck": unlocked}, {"Put": change}]
        )
        if codes is None:
            return record
        if (
            len(codes) > 1
            and codes[1] == "ConditionalCheckFailed"
            and codes[0] != "ConditionalCheckFailed"
        ):
            holder = self._lock_holder(name)
            raise AppInUse(
                f"deployment {holder or 'of ' + repr(name)} holds the application's lock; "
                "delete the application once it has ended"
            )
        raise self._conflict(
            name, expected_version if expected_version is not None else record.version
        )

    # helpers -----------------------------------------------------------------------
    def _change_item(
        self,
        name: str,
        version: int,
        action: Literal["create", "replace", "delete"],
        editor: Editor,
        now: str,
        spec_json: str,
    ) -> dict[str, Any]:
        item: Item = {
            "PK": _s(_pk(name)),
            "SK": _s(_change_sk(version)),
            "name": _s(name),
            "version": _n(version),
            "action": _s(action),
            "actor": _s(editor.actor),
            "source_ip": _s(editor.source_ip),
            "request_id": _s(editor.request_id),
            "at": _s(now),
        }
        if spec_json:
            item["spec"] = _s(spec_json)
        return {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(PK)",
        }

    def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """Write the items at once; None when written, the cancellation codes when a
        condition failed. A conflict with another transaction in flight on the same items
        is a condition that failed as well: the caller's version is not the one there."""
        try:
            self._client.transact_write_items(TransactItems=items)
        except Exception as exc:
            codes = _cancelled(exc)
            if codes is None:
                raise
            return codes
        return None

    def _conflict(self, name: str, expected_version: int | None) -> AppVersionConflict:
        current = self._item(name)
        if current is None or _deleted(current):
            return AppVersionConflict(
                f"application {name!r} does not exist (any more); send the spec without "
                "If-Match to create it"
            )
        version = int(current["version"]["N"])
        sent = "no version" if expected_version is None else f"version {expected_version}"
        return AppVersionConflict(
            f"application {name!r} is at version {version} (changed by "
            f"{_text(current, 'changed_by')} at {_text(current, 'changed_at')}), you sent "
            f"{sent}; read it again and re-apply your change"
        )

    def _running_deployment(self, name: str) -> str:
        """The id of a running deployment among the application's newest records, or ""."""
        response = self._client.query(
            TableName=self._table,
            IndexName="GSI1",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": _s(f"APP#{name}#DEPLOYMENTS")},
            ScanIndexForward=False,
            Limit=RUNNING_LOOKBACK,
        )
        for item in response.get("Items", []):
            if _text(item, "outcome") in ("", Outcome.RUNNING.value):
                return _text(item, "id")
        return ""

    def _lock_holder(self, name: str) -> str:
        item = self._client.get_item(
            TableName=self._table,
            Key={"PK": _s(f"LOCK#{name}"), "SK": _s("LOCK")},
            ConsistentRead=True,
        ).get("Item")
        return _text(item, "holder") if item is not None else ""

    def _page(
        self, index: str, partition: str, limit: int, cursor: str | None
    ) -> tuple[list[Item], str | None]:
        _check_limit(limit)
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": f"{index}PK = :pk",
            "ExpressionAttributeValues": {":pk": _s(partition)},
            "Limit": limit,
        }
        if cursor is not None:
            request["ExclusiveStartKey"] = _decode_cursor(cursor, index, partition)
        response = self._client.query(**request)
        last = response.get("LastEvaluatedKey")
        return list(response.get("Items", [])), None if last is None else _encode_cursor(last)


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be a whole number from 1 to {MAX_PAGE}")


def _text(item: Mapping[str, Any], name: str) -> str:
    return str(item.get(name, {}).get("S", ""))


def _deleted(item: Mapping[str, Any]) -> bool:
    return bool(item.get("deleted", {}).get("BOOL", False))


def _record(item: Mapping[str, Any]) -> AppRecord:
    return AppRecord(
        name=_text(item, "name"),
        spec=AppSpec.parse(json.loads(_text(item, "spec"))),
        version=int(item["version"]["N"]),
        changed_by=_text(item, "changed_by"),
        changed_at=datetime.fromisoformat(_text(item, "changed_at")),
        created_by=_text(item, "created_by"),
        created_at=datetime.fromisoformat(_text(item, "created_at")),
        source_ip=_text(item, "source_ip"),
    )


def _change(item: Mapping[str, Any]) -> AppChange:
    spec = _text(item, "spec")
    action = _text(item, "action")
    return AppChange(
        name=_text(item, "name"),
        version=int(item["version"]["N"]),
        action="delete" if action == "delete" else "create" if action == "create" else "replace",
        actor=_text(item, "actor"),
        at=datetime.fromisoformat(_text(item, "at")),
        source_ip=_text(item, "source_ip"),
        request_id=_text(item, "request_id"),
        spec=AppSpec.parse(json.loads(spec)) if spec else None,
    )


def _encode_cursor(key: Mapping[str, Any]) -> str:
    plain = {name: value["S"] for name, value in key.items()}
    raw = json.dumps(plain, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, index: str | None, partition: str) -> dict[str, Any]:
    """The ExclusiveStartKey a cursor stands for, or ``InvalidInput`` if it is not one of
    this listing's (``index`` None: a listing of the table's own keys)."""
    problem = "is not a cursor returned by this listing"
    if not isinstance(cursor, str) or not cursor or len(cursor) > 2048:
        raise InvalidInput("cursor", problem)
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidInput("cursor", problem) from None
    expected = {"PK", "SK"} | ({f"{index}PK", f"{index}SK"} if index else set())
    partition_key = f"{index}PK" if index else "PK"
    if (
        not isinstance(plain, dict)
        or set(plain) != expected
        or not all(isinstance(value, str) and value for value in plain.values())
        or plain[partition_key] != partition
    ):
        raise InvalidInput("cursor", problem)
    return {name: _s(value) for name, value in plain.items()}
