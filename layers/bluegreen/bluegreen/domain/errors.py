"""Domain errors.

Each error's class name is what Step Functions shows as the task's Error, and what
the API maps to a status code, so names are part of the public contract.
"""

from __future__ import annotations


class BlueGreenError(Exception):
    """Base of every error the product raises on purpose."""

    @property
    def name(self) -> str:
        return type(self).__name__


class InvalidInput(BlueGreenError):
    """A request or flow input is malformed; ``field`` names the culprit."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class UnknownImage(BlueGreenError):
    """A tag or digest that neither the ledger nor the repository knows."""


class NotFound(BlueGreenError):
    """A ledger record (deployment, image) that does not exist."""


class LockHeld(BlueGreenError):
    """Another deployment of this application holds the lock."""


class LockTimeout(BlueGreenError):
    """The lock could not be taken within the bound."""


class NoHealthyDigest(BlueGreenError):
    """Nothing safe to roll back to; the cluster was left as it is."""


class ClusterUnavailable(BlueGreenError):
    """The Kubernetes API could not be reached or refused our credentials."""


class ClusterForbidden(ClusterUnavailable):
    """The Kubernetes API refused our credentials (401) or our rights (403): the function's
    role lacks its access entry or a rule of the shipped Role. The message names the
    request."""


class ClusterConflict(BlueGreenError):
    """A write lost a resourceVersion race more times than it retries."""


class ClusterObjectMissing(BlueGreenError):
    """A Deployment, Service or ConfigMap the configuration names does not exist."""


class RolloutFailed(BlueGreenError):
    """A colour's rollout stalled (``ProgressDeadlineExceeded``) or ran past its bound."""


class HookFailed(BlueGreenError):
    """A post-deploy hook Job failed or timed out and its policy is ``rollback``."""


class HealthCheckFailed(BlueGreenError):
    """The bake-time health checks found the new digest unhealthy."""


class NotPromotable(BlueGreenError):
    """The canary runs nothing that may go to production (no pinned digest, judged
    failed, or production already runs it)."""


class RolesDisagree(BlueGreenError):
    """canaryEnv and the Services do not say the same roles, or an action's colour is not
    what its role is any more: acting now could put canary work on production traffic."""


class SwitchRestored(BlueGreenError):
    """A selector switch could not complete; the Services and canaryEnv were put back as
    they were, and the message says why."""


class SwitchIncomplete(BlueGreenError):
    """A selector switch could neither complete nor put the previous roles back; the
    message names what each Service selects and what canaryEnv says now."""


class RouterObjectInvalid(ClusterObjectMissing):
    """The Ingress or HTTPRoute the stack routes traffic through lacks what the router needs
    (the production or canary rule it names); the message says what is missing and where."""


class TrafficNotWeighted(BlueGreenError):
    """A share of traffic was asked of the ``selector`` router, which moves all of a role's
    traffic at once: progressive promotion needs the ``alb`` or ``gateway`` router."""


class TrafficNotConfirmed(BlueGreenError):
    """The data plane did not apply a move of traffic within its budget (the Services'
    endpoints, the load balancer's listener rule, the proxy's accepted route): the
    message names the object, what was written and what the data plane reports, and
    whether the previous traffic was put back."""


class DigestFailed(BlueGreenError):
    """The ledger judged the digest failed; deploying it again needs ``force: true``."""


class RequestAbandoned(BlueGreenError):
    """The entry point recorded this request, could not start its execution and told its
    caller so; an execution of that name that runs after all changes nothing."""


class TagUnreadable(BlueGreenError):
    """The registry could not say where a tag points (throttled, denied, unreachable)."""


class EventNotPublished(BlueGreenError):
    """EventBridge refused a deployment event; the step is retried, and publishes it then
    (its outcome is recorded already, so the retry changes nothing else)."""


class LockLost(BlueGreenError):
    """Another deployment holds this application's lock now (this execution's lease ran
    out while it was not running steps), or a later attempt of the same step took over:
    this attempt stops without touching the cluster, the ledger or the router."""


class AppNotFound(BlueGreenError):
    """The registry holds no application of that name (never registered, or deleted)."""


class AppVersionConflict(BlueGreenError):
    """An application's spec changed since the caller read it (or exists already, or was
    deleted): nothing was written; the message says which version is there now."""


class AppManagedByStack(BlueGreenError):
    """The stack's default application is what the stack's parameters say: it is changed
    or removed by deploying the stack, not through the registry."""


class AppInUse(BlueGreenError):
    """A deployment of the application runs (it holds the lock, or its record is running):
    the application cannot be deleted until it ends."""


class MetricQueryInvalid(BlueGreenError):
    """A query of the canary's analysis that the metric provider cannot parse (Prometheus
    answers 400 ``bad_data``): the message names the stack parameter that holds it and
    what the provider said. Raised when a promotion begins, before any weight moves."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter}: {problem}")
        self.parameter = parameter
        self.problem = problem


JUDGEMENTS = frozenset(
    {"RolloutFailed", "HookFailed", "HealthCheckFailed", "AnalysisFailed", "RollbackRequested"}
)
"""The Errors that are a judgement of the digest: its rollout, its hooks, its health, its
canary analysis, or a person asking for a rollback. Only these mark a digest failed; any
other failure (a step that died, a timeout, a cluster out of reach) leaves it unjudged."""


def is_judgement(error_name: str) -> bool:
    """Whether a failure named so judged the digest (``JUDGEMENTS``)."""
    return error_name in JUDGEMENTS
