"""``KubernetesCluster``: the ``Cluster`` port, composed of the namespace's parts.

It owns no request logic of its own: each method is one job's (the canaryEnv store,
the Deployments, the hook Jobs, the stack's router), all built over one
``KubeRequests`` so that every request shares the timeout, the error mapping and the
budgets. Nothing here imports ``kubernetes``: the client is built on the first
request that needs it.

Requests are counted at the server in tests: ``snapshot()`` is 3 requests, a
selector switch 6 when nothing conflicts (3 reads, 3 writes; 5 when the caller names
the image), a switch that is already so 2 reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from bluegreen.adapters.kube.canary_env import CanaryEnvStore
from bluegreen.adapters.kube.hooks import HookJobs
from bluegreen.adapters.kube.requests import DEFAULT_MOVE_BUDGET, DEFAULT_TIMEOUT, KubeRequests
from bluegreen.adapters.kube.workloads import Workloads
from bluegreen.adapters.routers.parts import RouterParts
from bluegreen.adapters.routers.registry import build_router
from bluegreen.config import Settings
from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.models import CanaryEnv, Colour, Hook, HookRun, Role, RolloutState
from bluegreen.domain.pods import PodState, PodWarning
from bluegreen.domain.ports import LoadBalancers, Router
from bluegreen.domain.snapshot import ClusterSnapshot, selectors_of
from bluegreen.domain.traffic import Confirmation, RouterKind, Traffic, Weights

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


class KubernetesCluster:
    """The application's namespace (ConfigMap, Deployments, Services, Jobs, Pods)."""

    def __init__(
        self,
        settings: Settings,
        api_client: ApiClient | Callable[[], ApiClient],
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        conflict_attempts: int = 12,
        hook_ttl_seconds: int = 3600,
        backoff_seconds: float = 0.01,
        switch_budget_seconds: float = DEFAULT_MOVE_BUDGET,
        confirm_seconds: float | None = None,
        load_balancers: LoadBalancers | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``api_client`` is a client, or a factory called on the first request.

        ``clock`` and ``sleep`` are what every wait of the adapter reads and calls
        (tests hand in a fake pair, so waiting out a ``Retry-After`` costs no time).
        ``confirm_seconds`` (default ``Settings.traffic_confirm_seconds``) is how long a
        move waits for the data plane; ``load_balancers`` is what the ``alb`` router
        reads it from.
        """
        self._settings = settings
        self._requests = KubeRequests(
            api_client,
            timeout=timeout,
            conflict_attempts=conflict_attempts,
            backoff_seconds=backoff_seconds,
            budget_seconds=switch_budget_seconds,
            clock=clock,
            sleep=sleep,
        )
        self._canary_env = CanaryEnvStore(self._requests, settings)
        self._workloads = Workloads(self._requests, settings)
        self._hooks = HookJobs(
            self._requests, self._workloads, settings, ttl_seconds=hook_ttl_seconds
        )
        self._router = build_router(
            RouterParts(
                settings=settings,
                requests=self._requests,
                canary_env=self._canary_env,
                workloads=self._workloads,
                confirm_seconds=(
                    settings.traffic_confirm_seconds if confirm_seconds is None else confirm_seconds
                ),
                load_balancers=load_balancers,
            )
        )

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> KubernetesCluster:
        """The cluster the settings name; the client is built on the first request. Under
        the ``alb`` router, ELBv2 in the settings' region is where moves are confirmed."""
        from bluegreen.adapters.kube.client import api_client_for

        if settings.traffic_router is RouterKind.ALB and "load_balancers" not in options:
            import boto3

            from bluegreen.adapters.elbv2 import Elbv2LoadBalancers

            options["load_balancers"] = Elbv2LoadBalancers(
                boto3.client("elbv2", region_name=settings.region), settings.cluster_name
            )
        return cls(settings, lambda: api_client_for(settings), **options)

    @property
    def api_client(self) -> ApiClient:
        """The ``ApiClient`` in use (built now if no request has needed it yet)."""
        client: ApiClient = self._requests.apis.client
        return client

    @property
    def settings(self) -> Settings:
        """The stack's settings: names of every object, and the traffic router."""
        return self._settings

    @property
    def router(self) -> Router:
        """The stack's traffic router (``bluegreen.adapters.routers``)."""
        return self._router

    # reads ----------------------------------------------------------------

    def canary_env(self) -> CanaryEnv:
        """The ``canaryEnv`` key of the ConfigMap (the initial canary when missing)."""
        env, _ = self._canary_env.current()
        return env

    def deployment_image(self, colour: Colour) -> str:
        """The image of the configured container of that colour's Deployment."""
        return self._workloads.image(colour)

    def rollout(self, colour: Colour) -> RolloutState:
        """That colour's rollout, judged as ``kubectl rollout status`` judges it."""
        return self._workloads.rollout(colour)

    def new_pods(self, colour: Colour, image: str) -> list[PodState]:
        """The pods of that colour's new revision: those whose container runs ``image``."""
        return self._workloads.new_pods(colour, image)

    def pod_warnings(self, pods: Sequence[str]) -> list[PodWarning]:
        """Warning Events about these pods, oldest first (one list request)."""
        return self._workloads.pod_warnings(pods)

    def previous_log(self, pod: str, container: str, lines: int, limit_bytes: int) -> str:
        """The last lines of a container's previous run ("" when it has none to show)."""
        return self._workloads.log(pod, container, lines, limit_bytes, previous=True)

    def service_selectors(self) -> dict[Role, Colour | None]:
        """Where each role's traffic goes, when it all goes to one colour (one request).

        Under the selector router, ``spec.selector.app`` of the canary and production
        Services; under ``alb`` and ``gateway`` (whose Services never change) what the
        router object says, production's colour being the one that has all of its
        weight (None while it is split).
        """
        return selectors_of(self._router.traffic())

    def traffic(self) -> Traffic:
        """Where the router object sends production and canary traffic now (one request)."""
        return self._router.traffic()

    def confirm_traffic(self) -> Confirmation:
        """Whether the data plane applies what the router object says."""
        return self._router.confirm()

    def snapshot(self) -> ClusterSnapshot:
        """canaryEnv, both rollouts and where the router sends each role, in three requests."""
        env, _ = self._canary_env.current()
        deployments = self._workloads.read_both()
        rollouts = {
            colour: self._workloads.rollout_of(colour, deployments[colour]) for colour in Colour
        }
        traffic = self._router.traffic()
        return ClusterSnapshot(
            canary_env=env, rollouts=rollouts, selectors=selectors_of(traffic), traffic=traffic
        )

    # writes -----------------------------------------------------------------

    def set_deployment_image(self, colour: Colour, image: str) -> bool:
        """Patch the container's image; False (nothing written) when already so."""
        return self._workloads.set_image(colour, image)

    def set_canary_image(self, image: str) -> bool:
        """Set ``canaryEnv.image`` (resourceVersion-guarded); False when already so."""
        return self._canary_env.set_image(image)

    def switch_roles(
        self,
        canary: Colour,
        image: str | None = None,
        *,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """Make ``canary`` the canary: canaryEnv and the router, never half-switched.

        ``image`` replaces ``canaryEnv.image`` when given (else it becomes what the new
        canary colour runs). The writes are ordered so that production traffic never
        moves onto the canary colour (each router's module says how); ``confirm`` is
        called between them and an exception from it stops the switch. Transient
        failures are waited out within ``switch_budget_seconds``; a switch that cannot
        complete puts back what it wrote and raises ``SwitchRestored``
        (``SwitchIncomplete`` when even that fails). A malformed ``canaryEnv`` is
        written over. Returns False when nothing was written.
        """
        if not isinstance(canary, Colour):
            raise InvalidInput("selector", f"{canary!r} is not a colour: expected blue or green")
        return self._router.switch_roles(canary, image, confirm=confirm)

    def shift_traffic(
        self,
        weights: Weights,
        canary: Colour | None = None,
        *,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """Production's weights (and the canary) in canaryEnv and the router object.

        One write each, ordered so that production traffic never reaches a colour
        canaryEnv gives no weight (``bluegreen.adapters.routers.weighted``);
        ``TrafficNotWeighted`` under the selector router. False when already so.
        """
        return self._router.shift(weights, canary, confirm=confirm)

    # hooks ------------------------------------------------------------------

    def start_hook(self, colour: Colour, hook: Hook, run_id: str) -> str:
        """Create the hook's Job from that colour's pod template; returns the Job name.

        The name is derived from ``run_id`` and the hook's name only, so a task
        that is retried after the Job was created finds and reuses it instead of
        running the hook twice.
        """
        return self._hooks.start(colour, hook, run_id)

    def hook_run(self, job_name: str, log_lines: int = 50) -> HookRun:
        """Where a hook Job stands; once finished, with its pod's log tail and the reason."""
        return self._hooks.run(job_name, log_lines)
