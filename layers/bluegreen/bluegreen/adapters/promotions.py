"""Progressive promotions' progress, gates and flip-back window, on the ledger's table.

Items (next to the ledger's own, same table, same key attributes)::

    item         PK                         SK
    promotion    PROMOTION#<app>#<id>       PROGRESS
    flip-back    PROMOTION#<app>            FLIP-BACK

- ``progress`` (a JSON string) is written by the flow alone, one step at a time.
- A gate: the flow's ``open_gate`` sets ``waiting`` and ``token`` unless an abort
  was asked already; a person's resume or abort removes ``waiting`` on condition
  that it is there, so of two decisions exactly one lands and only its caller
  sends the token back to Step Functions.
- An abort asked while no gate is open sets ``abort_by`` (once, and not on a
  promotion that ended); the flow's next step reads it and backs out.
- The flip-back window is one item per application, replaced by each promotion and
  deleted by the one flip-back that uses it (conditional on its promotion id).
- Items expire (``ttl``) a month after they were last written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bluegreen.domain.promotion import FlipBack, GateDecision, PromotionRecord

_TTL = timedelta(days=31)


def _s(value: str) -> dict[str, Any]:
    return {"S": value}


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


class DynamoPromotions:
    """``ports.Promotions`` on the ledger's DynamoDB table."""

    def __init__(
        self,
        table: str,
        client: Any,
        application: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._table = table
        self._client = client
        self._application = application
        self._clock = clock

    def _key(self, promotion_id: str) -> dict[str, Any]:
        return {"PK": _s(f"PROMOTION#{self._application}#{promotion_id}"), "SK": _s("PROGRESS")}

    @property
    def _window_key(self) -> dict[str, Any]:
        return {"PK": _s(f"PROMOTION#{self._application}"), "SK": _s("FLIP-BACK")}

    def _ttl(self) -> dict[str, Any]:
        return {"N": str(int((self._clock() + _TTL).timestamp()))}

    def _conditional(self, **request: Any) -> dict[str, Any] | None:
        """An update whose condition may fail: None when it did."""
        try:
            answer: dict[str, Any] = self._client.update_item(TableName=self._table, **request)
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return answer

    # progress ----------------------------------------------------------------------

    def save(self, promotion_id: str, progress: Mapping[str, object]) -> None:
        """Record the flow's progress (unconditional: the flow is its only writer)."""
        self._client.update_item(
            TableName=self._table,
            Key=self._key(promotion_id),
            UpdateExpression="SET progress = :p, updated_at = :now, #ttl = :ttl",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={
                ":p": _s(json.dumps(progress, separators=(",", ":"), default=str)),
                ":now": _s(self._clock().isoformat()),
                ":ttl": self._ttl(),
            },
        )

    def record(self, promotion_id: str) -> PromotionRecord | None:
        item = self._client.get_item(
            TableName=self._table, Key=self._key(promotion_id), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None

        def text(name: str) -> str:
            return str(item.get(name, {}).get("S", ""))

        gates = tuple(
            GateDecision(
                step=int(g["M"]["step"]["N"]),
                decision=g["M"]["decision"]["S"],
                actor=g["M"]["actor"]["S"],
                at=datetime.fromisoformat(g["M"]["at"]["S"]),
                reason=g["M"].get("reason", {}).get("S", ""),
            )
            for g in item.get("gates", {}).get("L", [])
        )
        progress = json.loads(text("progress")) if text("progress") else {}
        return PromotionRecord(
            promotion_id=promotion_id,
            progress=progress if isinstance(progress, dict) else {},
            waiting=text("waiting"),
            token=text("token"),
            gates=gates,
            abort_requested_by=text("abort_by"),
            abort_reason=text("abort_reason"),
        )

    # gates -------------------------------------------------------------------------

    def open_gate(self, promotion_id: str, token: str, reason: str) -> bool:
        """Wait for a person with ``token``; False when an abort was asked before."""
        return (
            self._conditional(
                Key=self._key(promotion_id),
                UpdateExpression="SET waiting = :why, #token = :token, gate_opened_at = :now",
                ConditionExpression="attribute_not_exists(abort_by)",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={
                    ":why": _s(reason or "waiting for a person"),
                    ":token": _s(token),
                    ":now": _s(self._clock().isoformat()),
                },
            )
            is not None
        )

    def close_gate(
        self, promotion_id: str, step: int, decision: str, actor: str, reason: str = ""
    ) -> str | None:
        """Take the open gate's decision; its token, or None when no gate is open."""
        gate = {
            "M": {
                "step": {"N": str(step)},
                "decision": _s(decision),
                "actor": _s(actor),
                "at": _s(self._clock().isoformat()),
                "reason": _s(reason),
            }
        }
        answer = self._conditional(
            Key=self._key(promotion_id),
            UpdateExpression=(
                "REMOVE waiting SET gates = list_append(if_not_exists(gates, :none), :gate)"
            ),
            ConditionExpression="attribute_exists(waiting)",
            ExpressionAttributeValues={":gate": {"L": [gate]}, ":none": {"L": []}},
            ReturnValues="ALL_NEW",
        )
        if answer is None:
            return None
        return str(answer["Attributes"].get("token", {}).get("S", "")) or None

    def request_abort(self, promotion_id: str, actor: str, reason: str = "") -> bool:
        """Ask the flow to back out at its next step; False when asked already or absent."""
        return (
            self._conditional(
                Key=self._key(promotion_id),
                UpdateExpression="SET abort_by = :actor, abort_reason = :why",
                ConditionExpression=(
                    "attribute_exists(PK) AND attribute_not_exists(abort_by) "
                    "AND attribute_not_exists(waiting)"
                ),
                ExpressionAttributeValues={":actor": _s(actor), ":why": _s(reason)},
            )
            is not None
        )

    # the flip-back window ----------------------------------------------------------

    def keep_flip_back(self, window: FlipBack) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                **self._window_key,
                "promotion_id": _s(window.promotion_id),
                "production": _s(window.production),
                "previous": _s(window.previous),
                "previous_image": _s(window.previous_image),
                "promoted_digest": _s(window.promoted_digest),
                "until": _s(window.until.isoformat()),
                "ttl": {"N": str(int(window.until.timestamp()) + 86_400)},
            },
        )

    def flip_back(self) -> FlipBack | None:
        item = self._client.get_item(
            TableName=self._table, Key=self._window_key, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return FlipBack(
            promotion_id=item["promotion_id"]["S"],
            production=item["production"]["S"],
            previous=item["previous"]["S"],
            previous_image=item["previous_image"]["S"],
            promoted_digest=item["promoted_digest"]["S"],
            until=datetime.fromisoformat(item["until"]["S"]),
        )

    def take_flip_back(self, promotion_id: str) -> bool:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=self._window_key,
                ConditionExpression="promotion_id = :id",
                ExpressionAttributeValues={":id": _s(promotion_id)},
            )
        except Exception as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True
