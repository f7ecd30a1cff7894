"""One request to the Kubernetes API, as every adapter of the cluster makes it.

``KubeRequests`` is the layer the cluster's parts (the canaryEnv store, the workloads,
the hook Jobs, the routers) are built on; none of them touches the client directly.

* Cold start. Nothing here imports ``kubernetes`` at module level; the client
  (and its ~1 s of generated models) is imported and the ``ApiClient`` built on
  the first request that needs the cluster (``bluegreen.adapters.kube.client``).
* Plain JSON. Every call asks the client for the raw response
  (``_preload_content=False``) and works on the JSON the server sent, as
  ``kubectl`` shows it: no model round-trip that drops unknown fields, and no
  deserialisation cost on a warm path.
* Timeouts. Every request carries ``_request_timeout=(connect, read)``; a hung
  API server becomes ``ClusterUnavailable`` well inside the Lambda's own timeout.
* Errors. The client's exceptions never leave this module: connection errors,
  timeouts, 5xx, 429, 401 and 403 become ``ClusterUnavailable`` (saying which),
  404 ``ClusterObjectMissing`` naming the object, 409 ``ClusterConflict`` and
  400/422 ``InvalidInput``. A status the caller handles itself (a 409 to re-read
  and retry) is raised as ``Refused``.
* Budgets. A ``Budget`` bounds how long a move of traffic may wait out transient
  failures (``Retry-After``, backoff on 5xx); ``back_off`` spreads racing writers.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from bluegreen.domain.errors import (
    BlueGreenError,
    ClusterConflict,
    ClusterForbidden,
    ClusterObjectMissing,
    ClusterUnavailable,
    InvalidInput,
)
from bluegreen.domain.judgements import one_line

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

DEFAULT_TIMEOUT = (3.0, 10.0)
"""(connect, read) seconds for every request."""

DEFAULT_MOVE_BUDGET = 5.0
"""Seconds a move of traffic may spend waiting out transient failures (``Retry-After``,
backoff on 5xx) before it puts back what it wrote; putting back gets as long again."""

_Key = TypeVar("_Key")


class Refused(Exception):
    """A status the caller asked to handle itself (a 409 to retry, a failed ``test``)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class Budget:
    """How long a move of traffic (or putting it back) may still spend waiting out failures."""

    def __init__(
        self, seconds: float, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._sleep = sleep
        self._started = clock()

    def spent(self) -> float:
        return self._clock() - self._started

    def expired(self) -> bool:
        return self.spent() >= self.seconds

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` if the budget allows it (True), else do nothing (False)."""
        if self.spent() + seconds > self.seconds:
            return False
        self._sleep(seconds)
        return True


@dataclass(frozen=True)
class Apis:
    """The client and the API groups built over it, once."""

    client: Any
    core: Any
    apps: Any
    batch: Any
    networking: Any
    custom: Any
    discovery: Any


class KubeRequests:
    """Requests to one cluster: the client built on first use, the timeout, the error
    mapping, the conflict retries' backoff and the budgets of moves."""

    def __init__(
        self,
        api_client: ApiClient | Callable[[], ApiClient],
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        conflict_attempts: int = 12,
        backoff_seconds: float = 0.01,
        budget_seconds: float = DEFAULT_MOVE_BUDGET,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``api_client`` is a client, or a factory called on the first request.

        ``clock`` and ``sleep`` are what every wait reads and calls (tests hand in a
        fake pair, so waiting out a ``Retry-After`` costs no time).
        """
        self._client_source = api_client
        self._timeout = timeout
        self.conflict_attempts = conflict_attempts
        """How many times a write that loses a resourceVersion race is re-decided."""
        self._backoff_seconds = backoff_seconds
        self.budget_seconds = budget_seconds
        """How long a move may wait out transient failures (``budget()``)."""
        self.clock = clock
        self._sleep = sleep
        self._apis_built: Apis | None = None
        self._build_lock = threading.Lock()

    @property
    def apis(self) -> Apis:
        """The client and its API groups (built now if no request has needed them yet)."""
        return self._apis()

    def _apis(self) -> Apis:
        if self._apis_built is None:
            with self._build_lock:
                if self._apis_built is None:
                    from kubernetes.client import (
                        AppsV1Api,
                        BatchV1Api,
                        CoreV1Api,
                        CustomObjectsApi,
                        DiscoveryV1Api,
                        NetworkingV1Api,
                    )

                    source = self._client_source
                    client = source() if callable(source) else source
                    self._apis_built = Apis(
                        client=client,
                        core=CoreV1Api(client),
                        apps=AppsV1Api(client),
                        batch=BatchV1Api(client),
                        networking=NetworkingV1Api(client),
                        custom=CustomObjectsApi(client),
                        discovery=DiscoveryV1Api(client),
                    )
        return self._apis_built

    def call(self, verb: str, what: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """One request, its JSON body as a dict; the arguments are ``call_raw``'s."""
        raw = self.call_raw(verb, what, *args, **kwargs)
        body = json.loads(raw) if raw else {}
        if not isinstance(body, dict):
            raise ClusterUnavailable(
                f"the Kubernetes API answered {verb} {what} with non-object JSON"
            )
        return body

    def call_raw(
        self,
        verb: str,
        what: str,
        method: Callable[..., Any],
        *args: Any,
        refusals: tuple[int, ...] = (),
        budget: Budget | None = None,
        **kwargs: Any,
    ) -> bytes:
        """One request with the timeout; the client's errors mapped to ours.

        Statuses in ``refusals`` raise ``Refused`` for the caller to handle. With a
        ``budget``, a request the server failed transiently (5xx, 429, connection
        refused or reset before an answer; 401/403 in the move's first seconds) is
        repeated after what its ``Retry-After`` asks, or an exponential backoff
        (whichever is longer), while the budget lasts.
        """
        kwargs["_request_timeout"] = self._timeout
        kwargs["_preload_content"] = False
        attempt = 0
        while True:
            try:
                response = method(*args, **kwargs)
                data = response.data
                return bytes(data) if data is not None else b""
            except Exception as exc:  # the client's exceptions, classified below
                error = self._translate(exc, verb, what, refusals)
                if budget is None or isinstance(error, Refused):
                    raise error from None
                if not _transient(exc) and not (
                    _unauthorised(exc) and budget.spent() < UNAUTHORISED_GRACE_SECONDS
                ):
                    raise error from None
                # Capped at a second, so that a budget of a few seconds is several attempts.
                backoff = min(self._backoff_seconds * 5 * 2 ** min(attempt, 8), 1.0)
                wait = max(_retry_after(exc) or 0.0, backoff * random.uniform(0.5, 1.0))
                attempt += 1
                if not budget.wait(wait):
                    raise ClusterUnavailable(
                        f"{error}; gave up after {attempt} attempts in "
                        f"{budget.spent():.1f}s (a move of traffic waits out failures for at most "
                        f"{budget.seconds:g}s)"
                    ) from None

    def _translate(
        self, exc: Exception, verb: str, what: str, refusals: tuple[int, ...]
    ) -> Exception:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        host = getattr(self._apis().client.configuration, "host", "?")
        if isinstance(exc, ApiException):
            status = int(exc.status or 0)
            reason, message = _status_of(exc)
            if status in refusals:
                return Refused(status, reason, message)
            return _api_error(status, reason, message, verb, what, host)
        if isinstance(exc, HTTPError | OSError):
            cause = getattr(exc, "reason", None) or exc
            if _timed_out(cause):
                return ClusterUnavailable(
                    f"the Kubernetes API at {host} did not answer within "
                    f"{self._timeout[0]:g}s (connect) / {self._timeout[1]:g}s (read) "
                    f"while trying to {verb} {what}"
                )
            return ClusterUnavailable(
                f"could not reach the Kubernetes API at {host} to {verb} {what}: "
                f"{one_line(str(cause))}"
            )
        raise exc

    def list_named(
        self,
        kind: str,
        namespace: str,
        list_method: Callable[..., Any],
        wanted: Mapping[_Key, tuple[str, str]],
        budget: Budget | None = None,
    ) -> dict[_Key, dict[str, Any]]:
        """One list request; the objects named in ``wanted`` (key -> (name, note)), all present
        (``ClusterObjectMissing`` names the first that is not)."""
        listed = self.call(
            "list",
            f'{kind}s in namespace "{namespace}"',
            list_method,
            namespace,
            budget=budget,
        )
        by_name = {item["metadata"]["name"]: item for item in listed.get("items", [])}
        found = {}
        for key, (name, note) in wanted.items():
            if name not in by_name:
                raise ClusterObjectMissing(
                    f'{kind} "{name}"{note} does not exist in namespace "{namespace}"'
                )
            found[key] = by_name[name]
        return found

    def budget(self, seconds: float | None = None) -> Budget:
        """A fresh budget from now: ``seconds``, a move's ``budget_seconds`` by default."""
        return Budget(self.budget_seconds if seconds is None else seconds, self.clock, self._sleep)

    def back_off(self, attempt: int) -> None:
        """Full-jitter backoff so that racing writers spread out instead of colliding again."""
        cap = min(self._backoff_seconds * 2**attempt, self._backoff_seconds * 20)
        self._sleep(random.uniform(0, cap))


def _retry_after(exc: Exception) -> float | None:
    """The seconds a ``Retry-After`` header of the answer asks for (None without one)."""
    headers = getattr(exc, "headers", None)
    raw = headers.get("Retry-After") if headers is not None else None
    try:
        seconds = float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: the API server sends seconds
    return seconds if seconds is not None and seconds >= 0 else None


def _status_of(exc: Any) -> tuple[str, str]:
    """(reason, message) of a Kubernetes ``Status`` body, or what the exception says."""
    body = exc.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        status = json.loads(body) if body else {}
    except (TypeError, ValueError):
        status = {}
    if not isinstance(status, dict):
        status = {}
    reason = str(status.get("reason") or exc.reason or "")
    message = str(status.get("message") or (body or "")[:300] or exc.reason or "")
    return reason, one_line(message)


def _api_error(
    status: int, reason: str, message: str, verb: str, what: str, host: str
) -> BlueGreenError:
    if status == 404:
        return ClusterObjectMissing(
            f"{what} does not exist ({message}); its namespace and name come from the "
            "BG_* settings of the stack"
        )
    if status == 409:
        return ClusterConflict(f"could not {verb} {what}: {message}")
    if status in (400, 422):
        return InvalidInput(what, f"the Kubernetes API refused to {verb} it: {message}")
    if status == 401:
        return ClusterForbidden(
            f"the Kubernetes API at {host} rejected our credentials (401 Unauthorized) when "
            f"asked to {verb} {what}: the bearer token is missing, expired or not for this "
            "cluster (on EKS: does the function's role have an access entry?)"
        )
    if status == 403:
        return ClusterForbidden(
            f"the Kubernetes API at {host} forbids us to {verb} {what} (403 Forbidden): "
            f"{message}; the function's role needs the namespaced RBAC Role shipped with "
            "the stack (deploy/kubernetes/rbac.yaml, applied in the application's namespace)"
        )
    if status == 0:
        return ClusterUnavailable(f"could not talk to the Kubernetes API at {host}: {message}")
    return ClusterUnavailable(
        f"the Kubernetes API at {host} failed to {verb} {what}: {status} {reason}: {message}"
    )


def _timed_out(cause: object) -> bool:
    """Whether a transport failure is a timeout (the server may be alive but hung)."""
    from urllib3.exceptions import NewConnectionError
    from urllib3.exceptions import TimeoutError as TransportTimeout

    # urllib3 files a refused connection under its connect-timeout class: not a timeout here.
    if isinstance(cause, NewConnectionError):
        return False
    return isinstance(cause, TransportTimeout | TimeoutError) or "timed out" in str(cause)


# A kube-apiserver that has just restarted answers 401/403 until its authenticator and
# RBAC caches have synced (about a second here). Inside a move, a refusal that early is
# repeated for this long before it counts as the real denial it otherwise is: a move
# half made is worse than a few seconds' wait, and a Role truly missing a rule still
# fails with its own 403 message, only this much later.
UNAUTHORISED_GRACE_SECONDS = 10.0


def _unauthorised(exc: Exception) -> bool:
    return getattr(exc, "status", None) in (401, 403)


def _transient(exc: Exception) -> bool:
    """True for a failure worth repeating at once: 5xx, 429, connection refused or reset.

    A timeout is not: the request may have been applied, and repeating it would
    double the time a caller waits on a hung server.
    """
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        return status >= 500 or status == 429
    return not _timed_out(getattr(exc, "reason", None) or exc)
