"""The ports the domain logic receives: what it needs from the ledger, the
cluster, Step Functions, EventBridge, the image registry, CloudWatch and the
health probes, and nothing about how they are reached.

The modules of ``bluegreen.adapters`` implement these; tests may hand in
in-memory fakes. Every port the logic receives is declared here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bluegreen.domain.flow_events import FlowEvent
from bluegreen.domain.models import (
    AlarmStates,
    CanaryEnv,
    Colour,
    Deployment,
    Digest,
    Hook,
    HookRun,
    ImageRecord,
    Outcome,
    Role,
    RolloutState,
    Verdict,
)
from bluegreen.domain.pods import PodState, PodWarning
from bluegreen.domain.promotion import FlipBack, PromotionRecord, TargetGroupMetrics
from bluegreen.domain.snapshot import ClusterSnapshot
from bluegreen.domain.traffic import (
    Confirmation,
    ProgrammedBalancer,
    RouterKind,
    Traffic,
    Weights,
)

if TYPE_CHECKING:
    # The registry's types, for its port's signatures only: a cold start that never reads
    # the registry does not build its models.
    from bluegreen.domain.apps import AppChange, AppRecord, AppSpec, Editor


class Ledger(Protocol):
    """The DynamoDB ledger of images, verdicts, deployments and the lock."""

    # images -------------------------------------------------------------
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

        ``confirmed_at``: when the registry was seen to point ``tag`` at ``digest``
        (breaks a tie between pushes of the same tag within one second).
        """
        ...

    def image(self, digest: Digest) -> ImageRecord | None: ...

    def digest_for_tag(self, tag: str) -> Digest | None:
        """The digest the tag points at now (the newest push of that tag)."""
        ...

    def images(
        self, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[ImageRecord], str | None]:
        """Images newest-first with an opaque cursor for the next page (None at the end)."""
        ...

    # verdicts -----------------------------------------------------------
    def set_verdict(self, digest: Digest, verdict: Verdict, reason: str = "") -> None: ...

    def verdict(self, digest: Digest) -> Verdict: ...

    def last_healthy(self, exclude: Sequence[Digest] = ()) -> Digest | None:
        """The most recently judged healthy digest not in ``exclude`` and not failed."""
        ...

    # deployments ----------------------------------------------------------
    def put_deployment(self, deployment: Deployment) -> None:
        """Create the record; a second put with the same id is a no-op."""
        ...

    def update_deployment(self, deployment_id: str, **changes: object) -> Deployment:
        """Change fields of a recorded deployment and return it as it is now."""
        ...

    def finish_deployment(
        self,
        deployment_id: str,
        outcome: Outcome,
        cause: str = "",
        rolled_back_to: Digest | None = None,
    ) -> Deployment:
        """Record where it ended and ``cause`` (how); the caller's ``reason`` stays as it was."""
        ...

    def open_deployment(self, deployment: Deployment) -> bool:
        """Record a request before starting its execution (conditional write).

        True when written: the id is new, or its record is a request whose start
        failed and that no execution claimed (a retried delivery opens it again).
        """
        ...

    def abandon_deployment(self, deployment_id: str, cause: str) -> bool:
        """Mark an open, unclaimed request failed because its execution could not start.

        False when an execution has claimed it meanwhile (the start did happen).
        """
        ...

    def claim_deployment(self, deployment_id: str, execution_arn: str) -> Deployment | None:
        """The execution takes its recorded request (conditional on it being open and
        unclaimed, or claimed by that execution already); None when it may not."""
        ...

    def deployment(self, deployment_id: str) -> Deployment | None: ...

    def deployments(
        self, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Deployment], str | None]: ...

    # lock -----------------------------------------------------------------
    def acquire_lock(self, holder: str, lease_seconds: int) -> bool:
        """Take the per-application lease (conditional write); True when held by ``holder``."""
        ...

    def renew_lock(self, holder: str, lease_seconds: int, attempt: str = "") -> bool:
        """Extend ``holder``'s own lease (conditional write); False when it is no longer
        ``holder``'s (another took it, or it was released) or a later ``attempt`` of the
        holder's steps renewed it since: the fence of every step after the first.

        ``attempt`` orders the attempts of one execution's steps (a step that outlived
        its timeout must not write after its retry); "" fences on the holder only.
        """
        ...

    def release_lock(self, holder: str) -> None:
        """Release the lease if ``holder`` owns it; otherwise do nothing."""
        ...

    def claim_event(self, deployment_id: str, outcome: str) -> bool:
        """True for exactly one caller per deployment and outcome (conditional write):
        who publishes that outcome's event, so a retried step cannot publish it twice."""
        ...

    def unclaim_event(self, deployment_id: str, outcome: str) -> None:
        """Give a claim back (its event could not be published): the next caller gets it."""
        ...

    def lock_holder(self) -> str | None:
        """Who holds an unexpired lease, if anyone."""
        ...


class Cluster(Protocol):
    """The application's namespace in the Kubernetes cluster."""

    def canary_env(self) -> CanaryEnv:
        """The ``canaryEnv`` key of the ConfigMap (the initial canary when missing)."""
        ...

    def deployment_image(self, colour: Colour) -> str:
        """The image of the configured container of that colour's Deployment."""
        ...

    def set_deployment_image(self, colour: Colour, image: str) -> bool:
        """Patch the container's image; False (nothing written) when already so."""
        ...

    def rollout(self, colour: Colour) -> RolloutState: ...

    def new_pods(self, colour: Colour, image: str) -> list[PodState]:
        """The pods of that colour's new revision (their container runs ``image``)."""
        ...

    def pod_warnings(self, pods: Sequence[str]) -> list[PodWarning]:
        """Warning Events about these pods, oldest first."""
        ...

    def previous_log(self, pod: str, container: str, lines: int, limit_bytes: int) -> str:
        """The last lines a container printed in its previous run ("" when none)."""
        ...

    def service_selectors(self) -> dict[Role, Colour | None]:
        """``spec.selector.app`` of the canary and production Services."""
        ...

    def switch_roles(
        self,
        canary: Colour,
        image: str | None = None,
        *,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """Make ``canary`` the canary: ConfigMap and both Services, conflict-safe.

        ``image`` replaces ``canaryEnv.image`` when given (else it becomes what the
        new canary colour runs). ``confirm`` runs once the canary Service has moved
        and before canaryEnv is written; an exception from it stops the switch and
        puts the canary Service back. Returns False when everything already said so
        (nothing written); a switch that cannot complete is put back and raises
        ``SwitchRestored`` (``SwitchIncomplete`` when even that fails).
        """
        ...

    def set_canary_image(self, image: str) -> bool:
        """Set ``canaryEnv.image`` (resourceVersion-guarded); False when already so."""
        ...

    def traffic(self) -> Traffic:
        """Where the stack's router object sends production and canary traffic now."""
        ...

    def shift_traffic(
        self,
        weights: Weights,
        canary: Colour | None = None,
        *,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """Set production's weights (and, given ``canary``, the roles): canaryEnv and the
        router object, one write each; ``TrafficNotWeighted`` under the selector router."""
        ...

    def confirm_traffic(self) -> Confirmation:
        """Whether the data plane applies what the router object says."""
        ...

    def snapshot(self) -> ClusterSnapshot:
        """canaryEnv, both rollouts and where the router sends each role, read at once."""
        ...

    def start_hook(self, colour: Colour, hook: Hook, run_id: str) -> str:
        """Create the hook's Job from that colour's pod template; returns the Job name."""
        ...

    def hook_run(self, job_name: str, log_lines: int = 50) -> HookRun: ...


class Router(Protocol):
    """How a stack moves traffic between the colours: Services' selectors, or the weights
    of one Ingress or HTTPRoute (``bluegreen.adapters.routers``)."""

    @property
    def kind(self) -> RouterKind: ...

    def traffic(self) -> Traffic:
        """What the router object says now: production's weights and the canary's colour."""
        ...

    def switch_roles(
        self,
        canary: Colour,
        image: str | None = None,
        *,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """Make ``canary`` the canary and send all of production to the other colour.

        Same contract as ``Cluster.switch_roles``: False when already so, put back and
        ``SwitchRestored`` (or ``SwitchIncomplete``) when it cannot complete.
        """
        ...

    def shift(
        self,
        weights: Weights,
        canary: Colour | None = None,
        *,
        image: str | None = None,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """Production's weights as given, ``canary`` (default: unchanged) the canary."""
        ...

    def confirm(self) -> Confirmation:
        """Whether the data plane applies what the router's object says now."""
        ...


class Promotions(Protocol):
    """A progressive promotion's progress, its manual gates and the flip-back window.

    The flow writes the progress (it is the only writer of it); a person's resume or
    abort and the flow's gate meet on conditional writes, so exactly one of two
    decisions about a gate lands.
    """

    def save(self, promotion_id: str, progress: Mapping[str, object]) -> None:
        """Record the flow's progress (step, weights, analyses, status)."""
        ...

    def record(self, promotion_id: str) -> PromotionRecord | None: ...

    def open_gate(self, promotion_id: str, token: str, reason: str) -> bool:
        """The flow waits for a person with ``token``; False when an abort was asked first."""
        ...

    def close_gate(
        self, promotion_id: str, step: int, decision: str, actor: str, reason: str = ""
    ) -> str | None:
        """A person's decision at the open gate: its token, or None when none is open."""
        ...

    def request_abort(self, promotion_id: str, actor: str, reason: str = "") -> bool:
        """Ask a running promotion (not at a gate) to back out; False when it has ended."""
        ...

    def keep_flip_back(self, window: FlipBack) -> None: ...

    def flip_back(self) -> FlipBack | None:
        """The latest promotion's flip-back window, if one is kept."""
        ...

    def take_flip_back(self, promotion_id: str) -> bool:
        """Use the window up (conditional): True for exactly one caller."""
        ...


class TaskTokens(Protocol):
    """Step Functions' callbacks: what resumes or fails a task that waits for a person."""

    def succeed(self, token: str, output: Mapping[str, object]) -> bool:
        """Resume the task; False when it waits no more (timed out, ended)."""
        ...

    def fail(self, token: str, error: str, cause: str) -> bool:
        """Fail the task with ``error``; False when it waits no more."""
        ...

    def heartbeat(self, token: str) -> bool:
        """Tell the task it is still being decided; False when it waits no more."""
        ...


class FlowStarter(Protocol):
    """Starts and reads executions of the deploy state machine."""

    def start(self, name: str, flow_input: dict[str, object]) -> str:
        """Start an execution; a duplicate ``name`` returns the existing ARN."""
        ...

    def describe(self, execution_arn: str) -> dict[str, object]:
        """Status, start/stop dates, error and cause of an execution."""
        ...


class Notifier(Protocol):
    """Publishes deployment events (EventBridge) for anyone to subscribe to."""

    def publish(self, detail_type: str, detail: dict[str, object]) -> None: ...


class ExecutionHistory(Protocol):
    """Reads the history of an execution of the deploy state machine.

    Separate from ``FlowStarter`` because only the timeline needs it (and the
    permission to read histories).
    """

    def events(self, execution_arn: str) -> tuple[list[FlowEvent], bool]:
        """The events, oldest first, and whether the history was cut short (too long).

        An execution that does not exist raises ``NotFound``.
        """
        ...


class ImageRegistry(Protocol):
    """The application's image repository (ECR): the digests it holds, where its tags point."""

    def has_digest(self, digest: Digest) -> bool:
        """True when the repository holds an image with that digest."""
        ...

    def tag_points_at(self, tag: str) -> Digest | None:
        """The digest ``tag`` points at; None when the registry knows no such tag or repository.

        Raises ``TagUnreadable`` when the registry cannot answer.
        """
        ...


class HttpProbe(Protocol):
    """Answers the HTTP status of a GET on a URL (0 when nothing answered)."""

    def status(self, url: str) -> tuple[int, str]: ...


class AlarmProbe(Protocol):
    """Reads the given CloudWatch alarms, metric and composite alike."""

    def states(self, names: Sequence[str]) -> AlarmStates:
        """Which of ``names`` are in state ALARM, and which name no alarm at all."""
        ...


class TrafficMetrics(Protocol):
    """The per-target-group metrics of the load balancer in front of each colour (CloudWatch),
    or the same figures of each colour's backend from another provider (Prometheus).

    ``bluegreen.adapters.metrics`` holds one module per provider and builds the stack's.
    """

    def check(self) -> None:
        """Before a promotion moves anything: ``MetricQueryInvalid`` when a query the provider
        would run cannot be parsed. A provider that does not answer is not refused here: its
        readings will be inconclusive."""
        ...

    def measure(self, colour: Colour, start: datetime, end: datetime) -> TargetGroupMetrics:
        """The colour's target group over ``[start, end)``; ``InvalidInput`` when the stack
        names no target group for that colour. A figure that cannot be read is named in
        ``unreadable`` (the reading is then inconclusive), not raised."""
        ...


class LoadBalancers(Protocol):
    """The Application Load Balancers the AWS Load Balancer Controller made (ELBv2, read only)."""

    def programmed(self, namespace: str, ingress: str) -> ProgrammedBalancer:
        """What the load balancer made for that Ingress holds now (``problem`` set when
        none can be found)."""
        ...


class EksCredentials(Protocol):
    """What reaching an EKS cluster needs: where its API server is and a bearer token for it
    (``bluegreen.adapters.eks_auth`` implements it; the Kubernetes client reads it)."""

    def endpoint(self) -> tuple[str, bytes]:
        """The API server URL and its CA certificate (PEM, or base64 of PEM)."""
        ...

    def token(self) -> str:
        """A current ``k8s-aws-v1.`` token (the source renews it before it expires)."""
        ...


class AppRegistry(Protocol):
    """The applications of the stack and every change made to them (the ledger's table).

    Writes are conditional on the version the caller read, so two editors cannot
    overwrite each other; each records the ``Editor`` with the change. Listings go
    through keys and indexes, never a scan.
    """

    def put(
        self, name: str, spec: AppSpec, editor: Editor, expected_version: int | None
    ) -> tuple[AppRecord, bool]:
        """Create ``name`` (``expected_version`` None: only if it does not exist;
        ``apps.NEVER_USED``: only if the name never held an application) or replace its
        spec (only if it is at ``expected_version``); the record and whether it was created.
        ``AppVersionConflict`` when the condition does not hold: nothing written."""
        ...

    def get(self, name: str) -> AppRecord | None:
        """The application as it is now (strongly consistent); None when there is none."""
        ...

    def apps(
        self, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[AppRecord], str | None]:
        """Applications by name, with an opaque cursor for the next page (None at the end)."""
        ...

    def by_repository(self, repository: str) -> list[AppRecord]:
        """Every application whose spec names ``repository``, by name."""
        ...

    def delete(self, name: str, editor: Editor, expected_version: int | None = None) -> AppRecord:
        """Remove the application (only at ``expected_version`` when given); the record
        deleted. ``AppNotFound`` when there is none, ``AppInUse`` while a deployment of it
        runs; its ledger history (images, verdicts, deployments) is kept."""
        ...

    def changes(
        self, name: str, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[AppChange], str | None]:
        """The application's changes, newest first (kept after it is deleted)."""
        ...
