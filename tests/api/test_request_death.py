"""An API request that dies between writing its deployment's record and starting its execution.

``POST /services {"imageTag"}`` records the request first (``open_deployment``: the
flow takes who asked from the ledger), then calls ``StartExecution``. A Lambda that
dies in between (killed for memory or time: no ``except`` clause runs, so
``start_flow`` cannot abandon the record) leaves a record ``running``, claimed by no
execution; the caller sees API Gateway's 502 and sends a new request, with a new
request id. Here the death is a ``BaseException`` (``Died``) raised by the flow
starter instead of starting the execution.

What must hold: the record blocks nothing (the next request is accepted and starts its
own execution, the lock is free, a switch of the canary colour goes through), and it
does not stay ``running`` for ever: once the request that wrote it has certainly ended
(older than the services API's 29 s timeout; here it is made 15 minutes old, a lock's
lease), the next request finds it closed, or its start completed.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bluegreen.domain.models import Deployment, Outcome
from functions.services_api.api import dependencies
from tests.api.conftest import KNOWN, Stack, call, event


class Died(BaseException):
    """The sandbox is gone: no ``except Exception`` runs, nothing is cleaned up."""


def deploy_request(request_id: str) -> dict[str, Any]:
    """``POST /services {"imageTag": KNOWN}`` as API Gateway sends it, with its own id."""
    sent = event("deploy_sha256_digest", body={"imageTag": str(KNOWN)})
    context = copy.deepcopy(sent["requestContext"])
    context["requestId"] = request_id
    sent["requestContext"] = context
    return sent


def die_at_start(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The flow starter the handler builds dies once, instead of starting an execution."""
    flow = dependencies.flow()
    real = flow.start
    died: list[str] = []

    def start(name: str, flow_input: dict[str, object]) -> str:
        if died:
            return real(name, flow_input)
        died.append(name)
        raise Died(f"the invocation died before starting {name}")

    monkeypatch.setattr(flow, "start", start)
    return died


def orphan_of(ledger: Any, died: list[str]) -> Deployment:
    (name,) = died
    record: Deployment | None = ledger.deployment(name)
    assert record is not None, "the request died before it recorded the deployment"
    return record


def test_a_request_that_died_before_its_start_blocks_nothing(
    stack: Stack, ledger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deploy request whose invocation died after recording it, before starting it
    died = die_at_start(monkeypatch)
    with pytest.raises(Died):
        call(deploy_request(str(uuid.uuid4())))
    orphan = orphan_of(ledger, died)
    assert orphan.outcome is Outcome.RUNNING
    assert not orphan.execution_arn
    assert stack.executions() == []

    # WHEN the caller sends it again (a new request, a new id)
    answer = call(deploy_request(str(uuid.uuid4())))

    # THEN it is accepted and starts its own execution, behind nobody
    assert answer.status == 202, answer.body
    started = answer.body["deploymentId"]
    assert started != orphan.id
    assert [e["name"] for e in stack.executions()] == [started]
    assert answer.body.get("waitsBehind") is None
    assert ledger.lock_holder() is None
    # AND the canary colour can still be switched (refused only while the lock is held)
    switched = call(event("switch_to_green"))
    assert switched.status == 200, switched.body


def test_a_request_that_died_before_its_start_does_not_stay_running(
    stack: Stack, ledger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deploy request whose invocation died after recording it, before starting it,
    # long enough ago that the request has certainly ended (a lock's lease)
    died = die_at_start(monkeypatch)
    with pytest.raises(Died):
        call(deploy_request(str(uuid.uuid4())))
    orphan = orphan_of(ledger, died)
    ledger.update_deployment(orphan.id, started_at=datetime.now(UTC) - timedelta(minutes=15))

    # WHEN the next request comes
    answer = call(deploy_request(str(uuid.uuid4())))
    assert answer.status == 202, answer.body

    # THEN the record of the dead request is closed (it says why), or its start completed
    now = orphan_of(ledger, died)
    executions = {e["name"] for e in stack.executions()}
    closed = now.outcome is not Outcome.RUNNING and bool(now.cause)
    assert closed or orphan.id in executions, (
        f"the record of a request that died before its execution started is still "
        f"{now.outcome.value}, claimed by no execution, 15 minutes later"
    )
