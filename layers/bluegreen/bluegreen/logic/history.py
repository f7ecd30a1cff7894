"""What happened: the images pushed (and where each runs now) and the deployments.

Read-only domain logic over the ledger, the cluster and the deploy flow: the
images over ``requests.ReleasePorts``, a deployment over ``HistoryPorts``. The
paging arguments are checked before they reach the ledger (``domain.paging``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bluegreen.config import Settings
from bluegreen.domain.errors import ClusterUnavailable, InvalidInput, NotFound
from bluegreen.domain.executions import execution_arn
from bluegreen.domain.models import Colour, Deployment, Digest, ImageRecord, Role
from bluegreen.domain.paging import check_page
from bluegreen.domain.ports import Cluster, ExecutionHistory, FlowStarter, Ledger
from bluegreen.logic.requests import SWITCH_ACTION, ReleasePorts

# The deploy flow's execution names: Step Functions' own alphabet for them.
_DEPLOYMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")


@dataclass(frozen=True)
class HistoryPorts:
    """What reading a deployment's record and execution reaches."""

    settings: Settings
    ledger: Ledger
    flow: FlowStarter
    executions: ExecutionHistory


@dataclass(frozen=True)
class Placement:
    """A colour running a digest, and the role that colour has now."""

    colour: Colour
    role: Role


@dataclass(frozen=True)
class ImageView:
    """An image of the ledger and the colours that run it now.

    ``running_on`` is None when the cluster could not be asked (the page of
    history is still worth answering), and empty when no colour runs it.
    """

    record: ImageRecord
    running_on: tuple[Placement, ...] | None


@dataclass(frozen=True)
class ImagePage:
    """One page of images, newest first, with the cursor of the next page."""

    images: list[ImageView]
    next_cursor: str | None
    cluster_error: str = ""


@dataclass(frozen=True)
class DeploymentPage:
    """One page of deployments, newest first, with the cursor of the next page."""

    deployments: list[Deployment]
    next_cursor: str | None


@dataclass(frozen=True)
class DeploymentView:
    """A deployment as the ledger records it and as Step Functions runs it now.

    Either part may be missing: the record is written by the flow's first task,
    so a just-started execution has no record yet; a switch of the canary colour
    is recorded without any execution.
    """

    deployment_id: str
    record: Deployment | None
    execution_arn: str
    execution: dict[str, object] | None


def where_digests_run(cluster: Cluster) -> dict[Digest, tuple[Placement, ...]]:
    """Which colours run which digest right now, with their roles."""
    release = cluster.snapshot()
    canary = release.canary_env.selector
    placements: dict[Digest, list[Placement]] = {}
    for colour in Colour:
        digest = release.rollouts[colour].digest
        if digest is not None:
            role = Role.CANARY if colour is canary else Role.PRODUCTION
            placements.setdefault(digest, []).append(Placement(colour, role))
    return {digest: tuple(found) for digest, found in placements.items()}


def image_history(ports: ReleasePorts, limit: int = 50, cursor: str | None = None) -> ImagePage:
    """A page of the images pushed, newest first, each with where it runs now.

    An unreachable cluster does not hide the history: the page comes back with
    ``running_on`` unknown and the reason in ``cluster_error``.
    """
    check_page(limit, cursor)
    records, next_cursor = ports.ledger.images(limit=limit, cursor=cursor)
    cluster_error = ""
    running: dict[Digest, tuple[Placement, ...]] | None
    try:
        running = where_digests_run(ports.cluster) if records else {}
    except ClusterUnavailable as exc:
        running, cluster_error = None, str(exc) or "the cluster could not be reached"
    images = [
        ImageView(record, None if running is None else running.get(record.digest, ()))
        for record in records
    ]
    return ImagePage(images=images, next_cursor=next_cursor, cluster_error=cluster_error)


def deployment_history(
    ledger: Ledger, limit: int = 50, cursor: str | None = None
) -> DeploymentPage:
    """A page of deployments (and canary switches), newest first."""
    check_page(limit, cursor)
    deployments, next_cursor = ledger.deployments(limit=limit, cursor=cursor)
    return DeploymentPage(deployments=deployments, next_cursor=next_cursor)


def check_deployment_id(deployment_id: str) -> None:
    """Reject what cannot be a deployment id (an execution name) before anything is asked."""
    if not _DEPLOYMENT_ID.fullmatch(deployment_id):
        shown = deployment_id if len(deployment_id) <= 100 else deployment_id[:100] + "..."
        raise InvalidInput(
            "id",
            f"{shown!r} is not a deployment id: 1 to 80 letters, digits, '-' or '_' "
            "(the execution name)",
        )


def _is_missing_execution(exc: Exception) -> bool:
    # A boto3 ClientError carries its code in ``response``; checking the code keeps
    # botocore out of the domain while telling "no such execution" from an outage.
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = response.get("Error", {}).get("Code", "")
    return code in {"ExecutionDoesNotExist", "StateMachineDoesNotExist"}


def deployment_status(ports: HistoryPorts, deployment_id: str) -> DeploymentView:
    """The ledger's record of a deployment and the live state of its execution."""
    check_deployment_id(deployment_id)
    state_machine_arn = ports.settings.state_machine_arn
    record = ports.ledger.deployment(deployment_id)
    arn = record.execution_arn if record is not None else ""
    # A canary switch has no execution; anything else is named after its execution.
    is_switch = record is not None and record.action == SWITCH_ACTION
    if not arn and not is_switch and state_machine_arn:
        arn = execution_arn(state_machine_arn, deployment_id)
    execution: dict[str, object] | None = None
    if arn:
        try:
            execution = ports.flow.describe(arn)
        except NotFound:
            execution = None
        except Exception as exc:
            if not _is_missing_execution(exc):
                raise
            execution = None
    if record is None and execution is None:
        raise NotFound(f"no deployment or execution named {deployment_id!r}")
    return DeploymentView(
        deployment_id=deployment_id, record=record, execution_arn=arn, execution=execution
    )
