"""An ecr_push invocation that dies between recording a push and starting its deployment.

The push is recorded inside Powertools' idempotent section, and the auto-deploy seam
starts its deployment from there: the deployment's record first, then the execution.
A process that dies in between (the sandbox killed for memory or time) runs no
``except`` clause, so Powertools neither deletes its INPROGRESS record nor stores a
result: the record stays until its in-progress expiry, the remaining time the dying
invocation had when it began (``register_lambda_context``). Here the death is a
``BaseException`` (``Died``), which Powertools does not catch either, raised once at a
chosen point:

``before-record``
    the push is in the ledger, the deployment's record is not (``open_deployment``);
``before-start``
    the deployment's record is written, its execution not started (``StartExecution``);
``after-start``
    the execution is started, the invocation dies before it answers.

A delivery while the dead invocation's INPROGRESS record still holds is answered as a
duplicate and starts nothing. The next delivery after the in-progress expiry
(EventBridge's retry of the failed invocation), or a replay from the dead-letter queue
once DynamoDB's TTL removed the idempotency record, leads to exactly one deployment:
one execution, one deployment record, naming each other; a later duplicate adds none.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.domain.models import Digest, Outcome
from functions.ecr_push import app, dependencies
from local.aws import create_tables
from local.stepfunctions import render_definition
from tests.events import load_event
from tests.foundation.conftest import REGION
from tests.waiting import eventually

PUSHED = Digest.parse("sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678")
"""What ``events/ecr_push/tagged_push.json`` pushes, as ``dev`` (an auto-deploy tag)."""
DYING_MILLIS = 1500
"""The dying invocation's remaining time when it began: its INPROGRESS record's life."""
DEATHS = ("before-record", "before-start", "after-start")
DELIVERIES = ("retry", "dlq-replay")


class Died(BaseException):
    """The sandbox is gone: no ``except Exception`` runs, nothing is cleaned up."""


def context(remaining_millis: int) -> SimpleNamespace:
    """A Lambda context with ``remaining_millis`` left when the invocation began."""
    return SimpleNamespace(
        function_name="ecr-push",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-west-2:123456789012:function:ecr-push",
        aws_request_id=str(uuid.uuid4()),
        get_remaining_time_in_millis=lambda: remaining_millis,
    )


@dataclass
class Wired:
    """The handler as deployed over the test's tables and a state machine on moto."""

    ledger: DynamoLedger
    dynamodb: Any
    sfn: Any
    machine: str
    idempotency_table: str

    def deliver(self, remaining_millis: int = 30_000) -> dict[str, Any]:
        answer: dict[str, Any] = app.lambda_handler(
            load_event("ecr_push/tagged_push.json"), context(remaining_millis)
        )
        return answer

    def executions(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self.sfn.list_executions(stateMachineArn=self.machine)[
            "executions"
        ]
        return listed

    def idempotency_records(self) -> list[dict[str, Any]]:
        items = self.dynamodb.scan(TableName=self.idempotency_table)["Items"]
        return [{k: next(iter(v.values())) for k, v in item.items()} for item in items]


@pytest.fixture
def wired(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wired]:
    """Fresh tables, application and state machine (never executed: what starts matters),
    in the handler's environment; its factories reset before and after."""
    suffix = uuid.uuid4().hex[:8]
    names = create_tables(
        dynamodb,
        names={"LedgerTable": f"ledger-{suffix}", "IdempotencyTable": f"idem-{suffix}"},
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    definition = render_definition(
        {"DeployStepsFunctionArn": "arn:aws:lambda:us-west-2:123456789012:function:none"}
    )
    machine = sfn.create_state_machine(
        name=f"deploy-{suffix}",
        definition=definition,
        roleArn="arn:aws:iam::123456789012:role/deploy",
    )["stateMachineArn"]
    application = f"app-{suffix}"
    for name, value in {
        "BG_APP_NAME": application,
        "AWS_REGION": REGION,
        "BG_LEDGER_TABLE_NAME": names["LedgerTable"],
        "BG_IDEMPOTENCY_TABLE_NAME": names["IdempotencyTable"],
        "BG_STATE_MACHINE_ARN": machine,
        "BG_REGISTRY": "123456789012.dkr.ecr.us-west-2.amazonaws.com",
    }.items():
        monkeypatch.setenv(name, value)
    dependencies.reset()
    ledger = DynamoLedger(names["LedgerTable"], dynamodb, application)
    yield Wired(ledger, dynamodb, sfn, machine, names["IdempotencyTable"])
    dependencies.reset()


def die_once(monkeypatch: pytest.MonkeyPatch, death: str) -> list[str]:
    """Make the handler's own adapters die once at ``death``; what died is listed."""
    died: list[str] = []

    def dying(target: Any, method: str, after: bool) -> None:
        real: Callable[..., Any] = getattr(target, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            if died:
                return real(*args, **kwargs)
            if after:
                real(*args, **kwargs)
            died.append(death)
            raise Died(f"the invocation died {death}")

        monkeypatch.setattr(target, method, call)

    if death == "before-record":
        dying(dependencies.ledger(), "open_deployment", after=False)
    else:
        dying(dependencies.flow(), "start", after=death == "after-start")
    return died


@pytest.mark.parametrize("delivery", DELIVERIES)
@pytest.mark.parametrize("death", DEATHS)
def test_a_push_whose_invocation_died_deploys_once_on_the_next_delivery(
    wired: Wired, monkeypatch: pytest.MonkeyPatch, death: str, delivery: str
) -> None:
    # GIVEN an invocation that dies at the chosen point, its remaining time 1.5 s
    died = die_once(monkeypatch, death)
    with pytest.raises(Died):
        wired.deliver(remaining_millis=DYING_MILLIS)
    assert died == [death]

    # THEN the push is recorded, Powertools' record stays INPROGRESS, and only what came
    # before the death happened
    image = wired.ledger.image(PUSHED)
    assert image is not None
    assert image.tags == frozenset({"dev"})
    (held,) = wired.idempotency_records()
    assert held["status"] == "INPROGRESS"
    records = wired.ledger.deployments(limit=10)[0]
    assert len(records) == (0 if death == "before-record" else 1)
    assert len(wired.executions()) == (1 if death == "after-start" else 0)

    # WHEN the push is delivered again while that record holds: a duplicate, nothing starts
    assert wired.deliver() == {
        "recorded": False,
        "duplicate": True,
        "reason": "duplicate-in-progress",
    }
    assert len(wired.executions()) == (1 if death == "after-start" else 0)

    # WHEN it is delivered once more after the in-progress expiry (EventBridge's retry), or
    # replayed from the dead-letter queue after DynamoDB's TTL removed the record
    expiry = int(held["in_progress_expiration"])
    eventually(
        "the in-progress expiry passed",
        lambda: time.time() * 1000 > expiry,
        DYING_MILLIS / 1000 + 5,
        every=0.05,
    )
    if delivery == "dlq-replay":
        wired.dynamodb.delete_item(TableName=wired.idempotency_table, Key={"id": {"S": held["id"]}})
    answer = wired.deliver()

    # THEN it is recorded, and exactly one deployment exists: one execution, one record,
    # the record naming the push's deploy of dev, the execution named after the record
    assert answer == {"recorded": True, "digest": str(PUSHED), "tags": ["dev"]}
    (execution,) = wired.executions()
    (record,) = wired.ledger.deployments(limit=10)[0]
    assert execution["name"] == record.id
    assert (record.trigger, record.tag, record.to_digest) == ("ecr-push", "dev", PUSHED)
    assert record.outcome is Outcome.RUNNING  # open, for its execution's first step to claim
    (done,) = wired.idempotency_records()
    assert done["status"] == "COMPLETED"

    # AND a later duplicate gets the stored answer and adds nothing
    assert wired.deliver() == answer
    assert len(wired.executions()) == 1
    assert len(wired.ledger.deployments(limit=10)[0]) == 1
