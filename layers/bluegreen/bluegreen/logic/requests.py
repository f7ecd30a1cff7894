"""A request that changes the release: who asked, the ports it reaches, and how it starts
the deploy flow.

Every change of an image goes through the flow, and the flow takes who started it
from the ledger, never from its input: so a request is recorded first
(``request_record``), then its execution is started (``start_flow``). The
services API's use cases (``logic.services``, ``logic.routing``) share these.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bluegreen.domain import executions
from bluegreen.domain.models import Deployment, Digest, Outcome, Role

if TYPE_CHECKING:  # annotations only: who asked (``Caller``) is read before any port is
    from bluegreen.config import Settings
    from bluegreen.domain.ports import Cluster, FlowStarter, ImageRegistry, Ledger, Promotions

SWITCH_ACTION = "switch"
"""``Deployment.action`` of a ledger record that tells who switched the canary colour."""


# How many of the newest records a request looks through for earlier requests that
# died before starting their flow: each request looks, so only the newest can be open.
DIED_REQUESTS_LOOKBACK = 10


@dataclass(frozen=True)
class ReleasePorts:
    """Everything a use case that reads or changes the release reaches."""

    settings: Settings
    ledger: Ledger
    cluster: Cluster
    flow: FlowStarter
    registry: ImageRegistry
    promotions: Promotions


@dataclass(frozen=True)
class Caller:
    """Who asked, from where, and the id of the request (the correlation id)."""

    actor: str
    source_ip: str = ""
    request_id: str = ""

    @property
    def request_key(self) -> str:
        """A key unique to this request, so each API call is its own deployment."""
        return self.request_id or uuid.uuid4().hex


@dataclass(frozen=True)
class DeploymentStarted:
    """A deploy flow execution the API started (or found already started).

    ``waits_behind`` is the deployment that held the lock when the request was
    made (None when nobody did): the execution is queued behind it and, when it
    gets the lock, acts only on the state this request recorded.
    """

    deployment_id: str
    execution_arn: str
    console_url: str
    action: str
    role: Role
    digest: Digest | None = None
    flow_input: dict[str, object] = field(default_factory=dict)
    waits_behind: str | None = None

    @property
    def queued(self) -> bool:
        """Whether the execution waits for another deployment to release the lock."""
        return self.waits_behind is not None


def console_url(region: str, execution_arn: str) -> str:
    """Link to the execution in the Step Functions console."""
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )


def request_record(
    settings: Settings,
    caller: Caller,
    *,
    name: str,
    action: str,
    role: Role,
    waits_behind: str | None,
    digest: Digest | None = None,
    tag: str = "",
    reason: str = "",
    force: bool = False,
    seen_image: str = "",
) -> Deployment:
    """What the API records about a request before it starts the flow for it."""
    return Deployment(
        id=name,
        application=settings.application,
        action=action,
        role=role,
        colour=None,
        to_digest=digest,
        from_digest=None,
        trigger="api",
        actor=caller.actor,
        started_at=datetime.now(UTC),
        source_ip=caller.source_ip,
        tag=tag,
        reason=reason,
        force=force,
        seen_image=seen_image,
        waits_behind=waits_behind or "",
    )


def close_requests_that_died(ports: ReleasePorts) -> list[str]:
    """Close the records of earlier requests that died between their record and their start.

    A request killed for time or memory after ``open_deployment`` runs no ``except``
    clause, so its record stays ``running`` and claimed by no execution. It blocks
    nothing (the lock is the flow's), but it would read as running for ever. A record
    still unclaimed one lock lease after it was written belongs to a request that has
    certainly ended (API Gateway gives it 29 s) and to no execution (the flow's first
    step claims it, within its retries, long before): it is abandoned, conditionally,
    so an execution that claims it meanwhile wins. One Query of the newest records.
    """
    settings, ledger = ports.settings, ports.ledger
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.lock_lease_seconds)
    newest, _ = ledger.deployments(limit=DIED_REQUESTS_LOOKBACK)
    closed = []
    for earlier in newest:
        if earlier.outcome is not Outcome.RUNNING or earlier.execution_arn:
            continue
        if earlier.started_at > cutoff:
            continue
        cause = (
            "the request that recorded this deployment ended before it started the "
            "deploy flow (its invocation was cut short); nothing was changed"
        )
        if ledger.abandon_deployment(earlier.id, cause):
            closed.append(earlier.id)
    return closed


def start_flow(
    ports: ReleasePorts, *, record: Deployment, flow_input: dict[str, object]
) -> DeploymentStarted:
    """Record the request, then start its execution; a failed start leaves no open record.

    The record comes first, so the flow takes who started it (and what the
    caller saw) from the ledger, never from its input. When the start fails the
    record is abandoned (failed, with why) and the error goes back to the
    caller; but if the execution did start after all (its answer was lost on the
    way back) and claimed the record first, the caller is told it started.
    """
    settings, ledger = ports.settings, ports.ledger
    close_requests_that_died(ports)
    ledger.open_deployment(record)
    try:
        execution_arn = ports.flow.start(record.id, flow_input)
    except Exception as exc:
        cause = (
            f"the deploy flow could not be started ({type(exc).__name__}: {exc}); "
            "nothing was changed"
        )
        if ledger.abandon_deployment(record.id, cause):
            raise
        execution_arn = executions.execution_arn(settings.state_machine_arn, record.id)
    return DeploymentStarted(
        deployment_id=record.id,
        execution_arn=execution_arn,
        console_url=console_url(settings.region, execution_arn),
        action=record.action,
        role=record.role,
        digest=record.to_digest,
        flow_input=flow_input,
        waits_behind=record.waits_behind or None,
    )
