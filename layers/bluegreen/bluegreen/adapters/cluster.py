"""The application's namespace, through the official Kubernetes client.

``KubernetesCluster`` implements ``bluegreen.domain.ports.Cluster``. What a reader needs
to know before changing it:

* Cold start. Nothing here imports ``kubernetes`` at module level; the client
  (and its ~1 s of generated models) is imported and the ``ApiClient`` built on
  the first request that needs the cluster (``bluegreen.adapters.kube_client``).
* Plain JSON. Every call asks the client for the raw response
  (``_preload_content=False``) and works on the JSON the server sent, as
  ``kubectl`` shows it: no model round-trip that drops unknown fields, and no
  deserialisation cost on a warm path.
* Timeouts. Every request carries ``_request_timeout=(connect, read)``; a hung
  API server becomes ``ClusterUnavailable`` well inside the Lambda's own timeout.
* Errors. The client's exceptions never leave this module: connection errors,
  timeouts, 5xx, 429, 401 and 403 become ``ClusterUnavailable`` (saying which),
  404 ``ClusterObjectMissing`` naming the object, a lost resourceVersion race
  (after bounded retries) ``ClusterConflict``, and 400/422 ``InvalidInput``.
* Writes carry ``metadata.resourceVersion``; a 409 is re-read and retried with
  jittered backoff, a bounded number of times.
* A selector switch (``switch_roles``) orders its writes so that production
  traffic never moves onto the canary colour, waits out transient failures
  within a budget (honouring ``Retry-After``), and either completes or puts
  back what it wrote.
* Requests are counted at the server in tests: ``snapshot()`` is 3 requests,
  a selector switch 6 when nothing conflicts (3 reads, 3 writes; 5 when the
  caller names the image), a switch that is already so 2 reads.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from bluegreen.config import Settings
from bluegreen.domain.errors import (
    BlueGreenError,
    ClusterConflict,
    ClusterObjectMissing,
    ClusterUnavailable,
    InvalidInput,
    SwitchIncomplete,
    SwitchRestored,
)
from bluegreen.domain.models import (
    INITIAL_CANARY,
    CanaryEnv,
    Colour,
    Hook,
    HookRun,
    Role,
    RolloutState,
)
from bluegreen.domain.pods import ContainerState, PodState, PodWarning
from bluegreen.domain.traffic import Traffic, Weights
from bluegreen.observability import logger

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from bluegreen.domain.ports import Router

MANAGED_BY = "eks-bluegreen"
"""Value of ``app.kubernetes.io/managed-by`` on everything this product creates."""

SWITCH_GENERATION = "bluegreen/switch-generation"
"""Annotation numbering selector switches, on the ConfigMap and on both Services.

Every write of a switch stamps the switch's number (one more than the highest it
read), so the three objects carry the same number once a switch is done, and
different numbers while one is in flight: that is how a concurrent switcher knows
to wait for it (or take it over once it stalls) instead of writing across it. A
switch that is put back restores the numbers it found.
"""

HOOK_LABEL = "bluegreen/hook"
RUN_LABEL = "bluegreen/run"
COLOUR_LABEL = "bluegreen/colour"
RUN_ANNOTATION = "bluegreen/run-id"

DEFAULT_TIMEOUT = (3.0, 10.0)
"""(connect, read) seconds for every request."""

DEFAULT_SWITCH_BUDGET = 5.0
"""Seconds a selector switch may spend waiting out transient failures (``Retry-After``,
backoff on 5xx) before it puts the previous roles back; putting them back gets as long again."""

_DNS_LABEL_MAX = 63
_Key = TypeVar("_Key", Colour, Role)
_NOT_IN_HOOKS = ("args", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "ports")
"""Container fields of the serving pod that make no sense for a run-once command."""


class CanaryEnvMalformed(ClusterUnavailable):
    """The ConfigMap's ``canaryEnv`` is there but is not ``{"selector": ..., "image": ...}``.

    To readers it is as unusable as an unreachable cluster (the API answers 502),
    while its own name says what is wrong. Only a switch of the canary colour
    writes over it (``switch_roles``), which is how it is repaired.
    """


_REPAIR = (
    '; switching the canary colour (POST /services {"selector": "blue"|"green"}, '
    "or `bluegreen switch <colour>`) rewrites it"
)


@dataclass(frozen=True)
class ClusterSnapshot:
    """Everything ``GET /services`` shows, read in three requests."""

    canary_env: CanaryEnv
    rollouts: dict[Colour, RolloutState]
    selectors: dict[Role, Colour | None]
    traffic: Traffic | None = None


class _Refused(Exception):
    """A status the caller asked to handle itself (a 409 to retry, a failed ``test``)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class _Budget:
    """How long a switch (or putting it back) may still spend waiting out failures."""

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
class _Apis:
    client: Any
    core: Any
    apps: Any
    batch: Any
    networking: Any
    custom: Any


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
        switch_budget_seconds: float = DEFAULT_SWITCH_BUDGET,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``api_client`` is a client, or a factory called on the first request.

        ``clock`` and ``sleep`` are what every wait of the adapter reads and calls
        (tests hand in a fake pair, so waiting out a ``Retry-After`` costs no time).
        """
        self._settings = settings
        self._client_source = api_client
        self._timeout = timeout
        self._conflict_attempts = conflict_attempts
        self._hook_ttl_seconds = hook_ttl_seconds
        self._backoff_seconds = backoff_seconds
        self._switch_budget = switch_budget_seconds
        self._clock = clock
        self._sleep = sleep
        self._apis_built: _Apis | None = None
        self._pod_selectors: dict[Colour, dict[str, str]] = {}
        self._build_lock = threading.Lock()
        self._router: Router | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> KubernetesCluster:
        """The cluster the settings name; the client is built on the first request."""
        from bluegreen.adapters.kube_client import api_client_for

        return cls(settings, lambda: api_client_for(settings), **options)

    @property
    def api_client(self) -> ApiClient:
        """The ``ApiClient`` in use (built now if no request has needed it yet)."""
        return self._apis().client

    @property
    def settings(self) -> Settings:
        """The stack's settings: names of every object, and the traffic router."""
        return self._settings

    @property
    def router(self) -> Router:
        """The stack's traffic router (``bluegreen.adapters.routers``), built on first use."""
        if self._router is None:
            from bluegreen.adapters.routers import router_for

            self._router = router_for(self)
        return self._router

    # reads ----------------------------------------------------------------

    def canary_env(self) -> CanaryEnv:
        """The ``canaryEnv`` key of the ConfigMap (the initial canary when missing)."""
        env, _, _ = self._read_canary_env()
        return env

    def deployment_image(self, colour: Colour) -> str:
        """The image of the configured container of that colour's Deployment."""
        deployment = self._read_deployment(colour)
        return str(self._container(deployment, colour).get("image", ""))

    def rollout(self, colour: Colour) -> RolloutState:
        """That colour's rollout, judged as ``kubectl rollout status`` judges it."""
        deployment = self._read_deployment(colour)
        selector = deployment.get("spec", {}).get("selector", {}).get("matchLabels")
        if selector:
            self._pod_selectors[colour] = dict(selector)
        return self._rollout_state(colour, deployment)

    def new_pods(self, colour: Colour, image: str) -> list[PodState]:
        """The pods of that colour's new revision: those whose container runs ``image``.

        One list request, by the Deployment's own label selector (remembered from
        the last ``rollout`` read, so a rollout poll costs no extra read for it).
        Pods being deleted belong to no revision any more and are left out.
        """
        labels = self._pod_selectors.get(colour)
        if labels is None:
            self.rollout(colour)
            labels = self._pod_selectors.get(colour, {})
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        listed = self._call(
            "list",
            f"Pods of {self._deployment_what(colour)}",
            self._apis().core.list_namespaced_pod,
            self._namespace,
            label_selector=selector,
        )
        found = []
        for pod in listed.get("items", []):
            if pod.get("metadata", {}).get("deletionTimestamp"):
                continue
            containers = pod.get("spec", {}).get("containers") or []
            mine: dict[str, Any] = next(
                (c for c in containers if c.get("name") == self._settings.container_name), {}
            )
            if mine.get("image") == image:
                found.append(pod_state(pod))
        return found

    def pod_warnings(self, pods: Sequence[str]) -> list[PodWarning]:
        """Warning Events about these pods, oldest first (one list request)."""
        if not pods:
            return []
        listed = self._call(
            "list",
            f'Events in namespace "{self._namespace}"',
            self._apis().core.list_namespaced_event,
            self._namespace,
            field_selector="involvedObject.kind=Pod,type=Warning",
        )
        wanted = set(pods)
        events = [
            e
            for e in listed.get("items", [])
            if (e.get("involvedObject") or {}).get("name") in wanted
        ]
        events.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
        return [
            PodWarning(
                pod=str(e["involvedObject"]["name"]),
                reason=str(e.get("reason") or ""),
                message=_plain(str(e.get("message") or "")),
            )
            for e in events
        ]

    def previous_log(self, pod: str, container: str, lines: int, limit_bytes: int) -> str:
        """The last lines of a container's previous run ("" when it has none to show)."""
        try:
            raw = self._call_raw(
                "read the previous log of",
                f'Pod "{pod}" in namespace "{self._namespace}"',
                self._apis().core.read_namespaced_pod_log,
                pod,
                self._namespace,
                container=container,
                previous=True,
                tail_lines=max(1, lines),
                limit_bytes=limit_bytes,
                refusals=(400, 404),
            )
        except _Refused:
            return ""
        return raw.decode("utf-8", errors="replace").rstrip("\n")

    def service_selectors(self) -> dict[Role, Colour | None]:
        """``spec.selector.app`` of the canary and production Services (one list request).

        Under the ``alb`` and ``gateway`` routers the Services' selectors never change:
        this is then what the router object says, production's colour being the one
        that has all of its weight (None while it is split).
        """
        if self._settings.traffic_router.weighted:
            return selectors_of(self.traffic())
        services = self._list_services()
        return {role: _selected_colour(services[role]) for role in Role}

    def traffic(self) -> Traffic:
        """Where the router object sends production and canary traffic now (one request)."""
        return self.router.traffic()

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
        return self.router.shift(weights, canary, confirm=confirm)

    def snapshot(self) -> ClusterSnapshot:
        """canaryEnv, both rollouts and both selectors (or the router object) in three requests."""
        env, _, _ = self._read_canary_env()
        deployments = self._list_named(
            "Deployment",
            self._apis().apps.list_namespaced_deployment,
            {colour: (self._settings.deployment_name(colour), "") for colour in Colour},
        )
        rollouts = {colour: self._rollout_state(colour, deployments[colour]) for colour in Colour}
        traffic = self.router.traffic()
        return ClusterSnapshot(
            canary_env=env, rollouts=rollouts, selectors=selectors_of(traffic), traffic=traffic
        )

    # deployment image -------------------------------------------------------

    def set_deployment_image(self, colour: Colour, image: str) -> bool:
        """Patch the container's image; False (nothing written) when already so.

        A strategic-merge patch keyed by container name touches that one
        container; it carries the resourceVersion it was computed from, so a
        concurrent change of the Deployment makes it re-read and re-decide.
        """
        if not isinstance(image, str) or not image.strip():
            raise InvalidInput("image", "must be a non-empty image reference")
        name = self._settings.deployment_name(colour)
        for attempt in range(self._conflict_attempts):
            deployment = self._read_deployment(colour)
            if self._container(deployment, colour).get("image") == image:
                return False
            patch = {
                "metadata": {"resourceVersion": deployment["metadata"]["resourceVersion"]},
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": self._settings.container_name, "image": image}]
                        }
                    }
                },
            }
            try:
                self._call(
                    "patch",
                    self._deployment_what(colour),
                    self._apis().apps.patch_namespaced_deployment,
                    name,
                    self._namespace,
                    patch,
                    refusals=(409,),
                    _content_type="application/strategic-merge-patch+json",
                )
            except _Refused:
                self._back_off(attempt)
                continue
            return True
        raise ClusterConflict(
            f"{self._deployment_what(colour)} kept changing while its image was being set to "
            f"{image}; gave up after {self._conflict_attempts} attempts"
        )

    # canaryEnv and the roles ------------------------------------------------

    def set_canary_image(self, image: str) -> bool:
        """Set ``canaryEnv.image`` (resourceVersion-guarded); False when already so."""
        if not isinstance(image, str) or not image.strip():
            raise InvalidInput("image", "must be a non-empty image reference")
        for attempt in range(self._conflict_attempts):
            env, configmap, _ = self._read_canary_env()
            if env.present and env.image == image:
                return False
            try:
                self._replace_configmap(
                    self._canary_env_body(configmap, env.selector, image, generation=None)
                )
            except _Refused:
                self._back_off(attempt)
                continue
            return True
        raise ClusterConflict(
            f"{self._configmap_what} kept changing while canaryEnv.image was being set; "
            f"gave up after {self._conflict_attempts} attempts"
        )

    def switch_roles(
        self,
        canary: Colour,
        image: str | None = None,
        *,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """Make ``canary`` the canary: canaryEnv and both Services, never half-switched.

        A move from C to N = C.other writes, each write guarded by the resourceVersion
        it was computed from:

        1. the canary Service to N (canary traffic may reach the production colour);
        2. ``canaryEnv``: N the canary, with the image N's Deployment runs (or ``image``);
        3. the production Service to C.

        So the production Service only ever moves to the colour canaryEnv already
        calls production; between 2 and 3 it stays on the colour it was on, where the
        rule of ``bluegreen.logic.roles`` refuses canary work. ``confirm`` is called
        after 1 and before 2; an exception from it stops the switch (the caller's check
        that no deployment took the lock while the switch was under way).

        Transient failures (5xx, 429, lost connections) are retried, waiting what
        ``Retry-After`` asks or backing off, within ``switch_budget_seconds``. A switch
        that cannot complete puts back what it wrote, newest first (within as long
        again), and raises ``SwitchRestored``, or ``SwitchIncomplete`` naming the state
        it left when even that fails; an exception of ``confirm`` is re-raised once the
        writes are put back. A failure before anything was written is raised as it is.

        Concurrent switchers converge: every write stamps ``SWITCH_GENERATION``, so
        objects whose generations differ are a switch in flight. A switcher waits for
        someone else's to settle and takes it over only once it stops progressing (its
        first write is then the production Service, so the other's last write fails
        its guard); each switcher loops until canaryEnv and both Services are settled
        on its wish, so once the last one returns they agree.

        A ``canaryEnv`` that cannot be read (``CanaryEnvMalformed``) is written over.
        Requests: two reads when everything already says so; a move six (the
        ConfigMap, the Services, the new canary's Deployment, three writes).
        Returns False when nothing was written.
        """
        if not isinstance(canary, Colour):
            raise InvalidInput("selector", f"{canary!r} is not a colour: expected blue or green")
        return self.router.switch_roles(canary, image, confirm=confirm)

    def switch_selectors(
        self,
        canary: Colour,
        image: str | None = None,
        *,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """The selector router's switch, as ``switch_roles`` describes it."""
        return _Switch(self, canary, image, confirm).run()

    # hooks ------------------------------------------------------------------

    def start_hook(self, colour: Colour, hook: Hook, run_id: str) -> str:
        """Create the hook's Job from that colour's pod template; returns the Job name.

        The name is derived from ``run_id`` and the hook's name only, so a task
        that is retried after the Job was created finds and reuses it instead of
        running the hook twice.
        """
        if not run_id:
            raise InvalidInput("run_id", "must be a non-empty string")
        name = hook_job_name(run_id, hook.name)
        deployment = self._read_deployment(colour)
        job = self._hook_job(name, colour, hook, run_id, deployment)
        try:
            self._call(
                "create",
                f'Job "{name}" in namespace "{self._namespace}"',
                self._apis().batch.create_namespaced_job,
                self._namespace,
                job,
                refusals=(409,),
            )
        except _Refused as refused:
            if refused.reason != "AlreadyExists":
                raise ClusterConflict(
                    f'Job "{name}" could not be created: {refused.message}'
                ) from None
        return name

    def hook_run(self, job_name: str, log_lines: int = 50) -> HookRun:
        """Where a hook Job stands; once finished, with its pod's log tail and the reason."""
        what = f'Job "{job_name}" in namespace "{self._namespace}"'
        job = self._call(
            "read", what, self._apis().batch.read_namespaced_job, job_name, self._namespace
        )
        conditions = {
            c.get("type"): c
            for c in job.get("status", {}).get("conditions") or []
            if c.get("status") == "True"
        }
        if "Complete" not in conditions and "Failed" not in conditions:
            return HookRun(job_name=job_name, finished=False, succeeded=False)
        succeeded = "Complete" in conditions
        pod = self._newest_pod(job)
        log_tail = self._log_tail(pod, log_lines) if pod is not None else ""
        reason = "" if succeeded else _failure_reason(conditions["Failed"], pod)
        return HookRun(
            job_name=job_name,
            finished=True,
            succeeded=succeeded,
            log_tail=log_tail,
            reason=reason,
        )

    # reading and writing the objects -----------------------------------------------

    @property
    def _namespace(self) -> str:
        return self._settings.namespace

    @property
    def _configmap_what(self) -> str:
        return f'ConfigMap "{self._settings.configmap_name}" in namespace "{self._namespace}"'

    def _deployment_what(self, colour: Colour) -> str:
        name = self._settings.deployment_name(colour)
        return f'Deployment "{name}" ({colour.value}) in namespace "{self._namespace}"'

    def _service_what(self, role: Role) -> str:
        name = self._settings.service_name(role)
        return f'Service "{name}" ({role.value}) in namespace "{self._namespace}"'

    def _read_canary_env(self) -> tuple[CanaryEnv, dict[str, Any], int]:
        """canaryEnv, the ConfigMap it came from, and the ConfigMap's switch generation."""
        configmap = self._read_configmap()
        return self._parse_canary_env(configmap), configmap, _generation(configmap)

    def _read_configmap(self, budget: _Budget | None = None) -> dict[str, Any]:
        return self._call(
            "read",
            self._configmap_what,
            self._apis().core.read_namespaced_config_map,
            self._settings.configmap_name,
            self._namespace,
            budget=budget,
        )

    def _canary_env_or_none(
        self, configmap: Mapping[str, Any], *, written_over_by: str = ""
    ) -> CanaryEnv | None:
        """The ConfigMap's canaryEnv, or None where it is malformed.

        A switch or a flip is how a person repairs a broken canaryEnv: it is written
        over, so such a writer (``written_over_by``) reads it as absent and says so.
        """
        try:
            return self._parse_canary_env(configmap)
        except CanaryEnvMalformed as exc:
            if written_over_by:
                logger.warning(
                    f"canaryEnv malformed; {written_over_by} writes it over",
                    extra={"detail": str(exc)},
                )
            return None

    def _parse_canary_env(self, configmap: Mapping[str, Any]) -> CanaryEnv:
        """The ConfigMap's canaryEnv; ``CanaryEnvMalformed`` says what is wrong with it."""
        resource_version = configmap.get("metadata", {}).get("resourceVersion")
        key = self._settings.configmap_key
        raw = (configmap.get("data") or {}).get(key)
        if raw is None:
            return CanaryEnv(
                selector=INITIAL_CANARY, image="", resource_version=resource_version, present=False
            )
        where = f"{self._configmap_what}, key {key!r}"
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, RecursionError) as exc:
            problem = (
                f"{exc.msg} at character {exc.pos}"
                if isinstance(exc, json.JSONDecodeError)
                else "nested too deeply"
            )
            raise CanaryEnvMalformed(
                f"{where} is not valid JSON ({problem}); expected "
                f'{{"selector": "blue" | "green", "image": "<image>"}}, got {raw[:200]!r}'
                f"{_REPAIR}"
            ) from None
        if not isinstance(value, dict):
            raise CanaryEnvMalformed(
                f'{where} must be a JSON object {{"selector": ..., "image": ...}}, '
                f"got {raw[:200]!r}{_REPAIR}"
            )
        selector = value.get("selector")
        if not isinstance(selector, str) or selector not in {c.value for c in Colour}:
            raise CanaryEnvMalformed(
                f"{where} has selector {selector!r}; expected 'blue' or 'green'{_REPAIR}"
            )
        image = value.get("image", "")
        if not isinstance(image, str):
            raise CanaryEnvMalformed(f"{where} has image {image!r}; expected a string{_REPAIR}")
        weights = None
        if value.get("weights") is not None:
            try:
                weights = Weights.parse(value["weights"], field_name="weights")
            except InvalidInput as exc:
                raise CanaryEnvMalformed(
                    f"{where} has weights {value['weights']!r}: {exc.problem} ({exc.field}); "
                    f'expected {{"blue": <0-100>, "green": <0-100>}} adding up to 100{_REPAIR}'
                ) from None
        return CanaryEnv(
            selector=Colour(selector),
            image=image,
            resource_version=resource_version,
            present=True,
            weights=weights,
        )

    def _canary_env_body(
        self,
        configmap: Mapping[str, Any],
        selector: Colour,
        image: str,
        generation: int | None,
        weights: Weights | None = None,
    ) -> dict[str, Any]:
        """The ConfigMap as read, with the new canaryEnv (and switch generation, if given).

        ``weights`` are written when given; otherwise whatever weights it had are kept.
        """
        body = copy.deepcopy(dict(configmap))
        metadata = body.setdefault("metadata", {})
        metadata.pop("managedFields", None)
        data = body.get("data") or {}
        key = self._settings.configmap_key
        try:
            value = json.loads(data[key]) if key in data else {}
        except (json.JSONDecodeError, RecursionError):
            value = {}
        if not isinstance(value, dict):  # a malformed canaryEnv being repaired
            value = {}
        # Keys other than selector and image belong to whoever put them there: kept.
        value.update({"selector": selector.value, "image": image})
        if weights is not None:
            value["weights"] = weights.to_json()
        data[key] = json.dumps(value, separators=(",", ":"))
        body["data"] = data
        if generation is not None:
            annotations = metadata.get("annotations") or {}
            annotations[SWITCH_GENERATION] = str(generation)
            metadata["annotations"] = annotations
        return body

    def _replace_configmap(
        self, body: Mapping[str, Any], budget: _Budget | None = None
    ) -> dict[str, Any]:
        """PUT the ConfigMap (its resourceVersion guards it); a 409 raises ``_Refused``."""
        return self._call(
            "replace",
            self._configmap_what,
            self._apis().core.replace_namespaced_config_map,
            self._settings.configmap_name,
            self._namespace,
            body,
            refusals=(409,),
            budget=budget,
        )

    def _patch_service(
        self, role: Role, patch: Mapping[str, Any], budget: _Budget | None = None
    ) -> dict[str, Any]:
        """Strategic-merge patch of a Service (guarded by the resourceVersion in ``patch``)."""
        return self._call(
            "patch",
            self._service_what(role),
            self._apis().core.patch_namespaced_service,
            self._settings.service_name(role),
            self._namespace,
            patch,
            refusals=(409,),
            budget=budget,
            _content_type="application/strategic-merge-patch+json",
        )

    def _read_deployment(self, colour: Colour, budget: _Budget | None = None) -> dict[str, Any]:
        return self._call(
            "read",
            self._deployment_what(colour),
            self._apis().apps.read_namespaced_deployment,
            self._settings.deployment_name(colour),
            self._namespace,
            budget=budget,
        )

    def _list_services(self, budget: _Budget | None = None) -> dict[Role, dict[str, Any]]:
        return self._list_named(
            "Service",
            self._apis().core.list_namespaced_service,
            {role: (self._settings.service_name(role), f" ({role.value})") for role in Role},
            budget=budget,
        )

    def _list_named(
        self,
        kind: str,
        list_method: Callable[..., Any],
        wanted: Mapping[_Key, tuple[str, str]],
        budget: _Budget | None = None,
    ) -> dict[_Key, dict[str, Any]]:
        """One list request; the objects named in ``wanted`` (key -> (name, note)), all present."""
        listed = self._call(
            "list",
            f'{kind}s in namespace "{self._namespace}"',
            list_method,
            self._namespace,
            budget=budget,
        )
        by_name = {item["metadata"]["name"]: item for item in listed.get("items", [])}
        found = {}
        for key, (name, note) in wanted.items():
            if name not in by_name:
                raise ClusterObjectMissing(
                    f'{kind} "{name}"{note} does not exist in namespace "{self._namespace}"'
                )
            found[key] = by_name[name]
        return found

    def _container(self, deployment: Mapping[str, Any], colour: Colour) -> dict[str, Any]:
        containers = deployment.get("spec", {}).get("template", {}).get("spec", {})
        containers = containers.get("containers") or []
        for container in containers:
            if container.get("name") == self._settings.container_name:
                return dict(container)
        names = ", ".join(str(c.get("name")) for c in containers) or "none"
        raise ClusterObjectMissing(
            f"{self._deployment_what(colour)} has no container named "
            f"{self._settings.container_name!r} (its containers: {names})"
        )

    def _rollout_state(self, colour: Colour, deployment: Mapping[str, Any]) -> RolloutState:
        image = str(self._container(deployment, colour).get("image", ""))
        return judge_rollout(colour, deployment, image)

    def _hook_job(
        self, name: str, colour: Colour, hook: Hook, run_id: str, deployment: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The Job for a hook: the serving pod's template with the command overridden.

        Only the configured container is kept (a sidecar would keep the pod, and
        so the Job, running forever), without probes or ports. The template's
        labels are replaced by ours: a pod labelled ``app=<colour>`` would be
        selected by the colour's Service and receive traffic.
        """
        template = deployment.get("spec", {}).get("template", {})
        pod_spec = copy.deepcopy(template.get("spec", {}))
        container = {
            key: value
            for key, value in self._container(deployment, colour).items()
            if key not in _NOT_IN_HOOKS
        }
        container["command"] = list(hook.command)
        pod_spec["containers"] = [container]
        pod_spec["restartPolicy"] = "Never"
        pod_spec.pop("nodeName", None)
        labels = {
            "app.kubernetes.io/managed-by": MANAGED_BY,
            HOOK_LABEL: _label_value(hook.name),
            RUN_LABEL: _label_value(run_id),
            COLOUR_LABEL: colour.value,
        }
        annotations = dict(template.get("metadata", {}).get("annotations") or {})
        annotations.pop("kubectl.kubernetes.io/restartedAt", None)
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": self._namespace,
                "labels": labels,
                "annotations": {RUN_ANNOTATION: run_id},
            },
            "spec": {
                "backoffLimit": 0,
                "activeDeadlineSeconds": hook.timeout_seconds,
                "ttlSecondsAfterFinished": self._hook_ttl_seconds,
                "template": {
                    "metadata": {"labels": labels, "annotations": annotations},
                    "spec": pod_spec,
                },
            },
        }

    def _newest_pod(self, job: Mapping[str, Any]) -> dict[str, Any] | None:
        match_labels = job.get("spec", {}).get("selector", {}).get("matchLabels") or {
            "job-name": job["metadata"]["name"]
        }
        selector = ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))
        listed = self._call(
            "list",
            f'Pods of Job "{job["metadata"]["name"]}" in namespace "{self._namespace}"',
            self._apis().core.list_namespaced_pod,
            self._namespace,
            label_selector=selector,
        )
        pods: list[dict[str, Any]] = listed.get("items", [])
        if not pods:
            return None
        return max(pods, key=lambda pod: str(pod["metadata"].get("creationTimestamp", "")))

    def _log_tail(self, pod: Mapping[str, Any], lines: int) -> str:
        name = pod["metadata"]["name"]
        try:
            raw = self._call_raw(
                "read the log of",
                f'Pod "{name}" in namespace "{self._namespace}"',
                self._apis().core.read_namespaced_pod_log,
                name,
                self._namespace,
                container=self._settings.container_name,
                tail_lines=max(1, lines),
                limit_bytes=64 * 1024,
                refusals=(400, 404),
            )
        except _Refused:
            # The pod never started its container, or is already gone: no log to keep.
            return ""
        return raw.decode("utf-8", errors="replace").rstrip("\n")

    # the request itself -----------------------------------------------------------

    def _apis(self) -> _Apis:
        if self._apis_built is None:
            with self._build_lock:
                if self._apis_built is None:
                    from kubernetes.client import (
                        AppsV1Api,
                        BatchV1Api,
                        CoreV1Api,
                        CustomObjectsApi,
                        NetworkingV1Api,
                    )

                    source = self._client_source
                    client = source() if callable(source) else source
                    self._apis_built = _Apis(
                        client=client,
                        core=CoreV1Api(client),
                        apps=AppsV1Api(client),
                        batch=BatchV1Api(client),
                        networking=NetworkingV1Api(client),
                        custom=CustomObjectsApi(client),
                    )
        return self._apis_built

    def _call(self, verb: str, what: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """One request, its JSON body as a dict; the arguments are ``_call_raw``'s."""
        raw = self._call_raw(verb, what, *args, **kwargs)
        body = json.loads(raw) if raw else {}
        if not isinstance(body, dict):
            raise ClusterUnavailable(
                f"the Kubernetes API answered {verb} {what} with non-object JSON"
            )
        return body

    def _call_raw(
        self,
        verb: str,
        what: str,
        method: Callable[..., Any],
        *args: Any,
        refusals: tuple[int, ...] = (),
        budget: _Budget | None = None,
        **kwargs: Any,
    ) -> bytes:
        """One request with the timeout; the client's errors mapped to ours.

        Statuses in ``refusals`` raise ``_Refused`` for the caller to handle. With a
        ``budget``, a request the server failed transiently (5xx, 429, connection
        refused or reset before an answer) is repeated after what its ``Retry-After``
        asks, or an exponential backoff (whichever is longer), while the budget lasts.
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
                if budget is None or isinstance(error, _Refused) or not _transient(exc):
                    raise error from None
                # Capped at a second, so that a budget of a few seconds is several attempts.
                backoff = min(self._backoff_seconds * 5 * 2 ** min(attempt, 8), 1.0)
                wait = max(_retry_after(exc) or 0.0, backoff * random.uniform(0.5, 1.0))
                attempt += 1
                if not budget.wait(wait):
                    raise ClusterUnavailable(
                        f"{error}; gave up after {attempt} attempts in "
                        f"{budget.spent():.1f}s (a switch waits out failures for at most "
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
                return _Refused(status, reason, message)
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
                f"{_plain(str(cause))}"
            )
        raise exc

    def _budget(self) -> _Budget:
        """A fresh switch budget: ``switch_budget_seconds`` from now."""
        return _Budget(self._switch_budget, self._clock, self._sleep)

    def _back_off(self, attempt: int) -> None:
        """Full-jitter backoff so that racing writers spread out instead of colliding again."""
        cap = min(self._backoff_seconds * 2**attempt, self._backoff_seconds * 20)
        self._sleep(random.uniform(0, cap))


_CONFIGMAP = "configmap"
_OBJECTS = (_CONFIGMAP, Role.CANARY.value, Role.PRODUCTION.value)
"""What a switch reads and writes: the ConfigMap and the two Services, by role."""


@dataclass(frozen=True)
class _Roles:
    """canaryEnv and both Services as one read of a switch found them."""

    objects: dict[str, dict[str, Any]]
    env: CanaryEnv | None  # None: canaryEnv is there but malformed

    def generation(self, key: str) -> int:
        return _generation(self.objects[key])

    def version(self, key: str) -> str:
        return str(self.objects[key].get("metadata", {}).get("resourceVersion", ""))

    def selected(self, role: Role) -> Colour | None:
        return _selected_colour(self.objects[role.value])

    def settled_on(self, canary: Colour) -> bool:
        """canaryEnv and both Services say ``canary`` is the canary, all at one generation."""
        return (
            self.env is not None
            and self.env.selector is canary
            and self.selected(Role.CANARY) is canary
            and self.selected(Role.PRODUCTION) is canary.other
            and len({self.generation(key) for key in _OBJECTS}) == 1
        )

    def describe(self) -> str:
        """What each Service selects and what canaryEnv says, in words."""

        def shown(role: Role) -> str:
            colour = self.selected(role)
            return colour.value if colour is not None else "no colour"

        if self.env is None:
            said = "canaryEnv is malformed"
        elif not self.env.present:
            said = f"canaryEnv is missing (so {self.env.selector.value} is the canary)"
        else:
            said = f"canaryEnv makes {self.env.selector.value} the canary"
            if self.env.image:
                said += f" (image {self.env.image})"
        return (
            f"the canary Service selects {shown(Role.CANARY)}, the production Service "
            f"selects {shown(Role.PRODUCTION)}, and {said}"
        )


class _Switch:
    """One call of ``KubernetesCluster.switch_roles``: what it read, wrote, and must undo."""

    def __init__(
        self,
        cluster: KubernetesCluster,
        canary: Colour,
        image: str | None,
        confirm: Callable[[], None] | None,
    ) -> None:
        self._cluster = cluster
        self._canary = canary
        self._image = image
        self._confirm = confirm
        self._budget = cluster._budget()
        self._generation: int | None = None  # the switch generation this switch writes
        self._mine: set[str] = set()  # resourceVersions of this switch's own writes
        self._intended: dict[str, tuple[str | None, ...]] = {}  # what it wrote, per object
        self._before: dict[str, dict[str, Any]] = {}  # each object before it was written
        self._written: list[str] = []  # the objects written, in the order first written
        self._first: _Roles | None = None  # the roles as this switch found them
        self._last: _Roles | None = None  # the latest read, updated by the writes since
        self._stopped_by: Exception | None = None  # what ``confirm`` raised, if it did
        self._new_canary_image = image

    def run(self) -> bool:
        """Complete the switch, or put back what it wrote and say so (see ``switch_roles``)."""
        try:
            return self._forward()
        except Exception as failure:
            if not self._written:
                raise
            outcome = self._put_back(failure)
            if outcome is None:
                return True
            raise outcome from None

    # forward ---------------------------------------------------------------------

    def _forward(self) -> bool:
        cluster = self._cluster
        conflicts = waits = 0
        patience = cluster._switch_budget / 2
        progress: tuple[str, ...] = ()
        last_progress = cluster._clock()
        while True:
            roles = self._read()
            if roles.settled_on(self._canary):
                assert roles.env is not None
                if self._image is None or roles.env.image == self._image:
                    return bool(self._written)
            takeover = False
            if self._in_flight_elsewhere(roles):
                seen = tuple(roles.version(key) for key in _OBJECTS)
                if seen != progress:  # the other switch moves on: give it time afresh
                    progress, last_progress = seen, cluster._clock()
                stalled = cluster._clock() - last_progress >= patience
                if not stalled and not self._budget.expired():
                    waits += 1
                    cluster._back_off(min(waits, 8))
                    continue
                logger.warning(
                    "taking over a selector switch that stopped progressing",
                    extra={"state": roles.describe(), "canary": self._canary.value},
                )
                takeover = True
            try:
                self._write_towards(roles, takeover)
            except _Refused:
                conflicts += 1
                if conflicts >= cluster._conflict_attempts:
                    raise ClusterConflict(
                        f"{cluster._configmap_what} and the Services kept changing while "
                        f"switching the canary to {self._canary.value}; gave up after "
                        f"{conflicts} attempts"
                    ) from None
                cluster._back_off(conflicts)
                continue
            return True

    def _write_towards(self, roles: _Roles, takeover: bool) -> None:
        """The writes from ``roles`` to the wish, in the order that keeps production safe."""
        canary = self._canary
        image = self._image_of_new_canary()  # read before any write, so it cannot half-fail
        top = max(roles.generation(key) for key in _OBJECTS)
        if takeover or self._generation is None or top > self._generation:
            self._generation = top + 1
        generation = self._generation
        if takeover:
            # First write the production Service (its generation only): the stalled
            # switch's write of it was computed from the version this changes, so it can
            # no longer land after this switch's canaryEnv.
            self._write_service(roles, Role.PRODUCTION, None, generation)
        if not self._is_at(roles, Role.CANARY.value, (canary.value, str(generation))):
            self._write_service(roles, Role.CANARY, canary, generation)
        if self._confirm is not None:
            try:
                self._confirm()
            except Exception as exc:
                self._stopped_by = exc
                raise
        if not self._is_at(roles, _CONFIGMAP, (canary.value, image, str(generation))):
            self._write_configmap(roles, canary, image, generation)
        wanted = (canary.other.value, str(generation))
        if not self._is_at(roles, Role.PRODUCTION.value, wanted):
            self._write_service(roles, Role.PRODUCTION, canary.other, generation)

    def _in_flight_elsewhere(self, roles: _Roles) -> bool:
        """Another switch is under way: an object not written by this one is ahead of the rest."""
        lowest = min(roles.generation(key) for key in _OBJECTS)
        return any(
            roles.generation(key) > lowest and not self._is_mine(roles, key) for key in _OBJECTS
        )

    def _image_of_new_canary(self) -> str:
        if self._new_canary_image is None:
            cluster = self._cluster
            deployment = cluster._read_deployment(self._canary, budget=self._budget)
            self._new_canary_image = str(
                cluster._container(deployment, self._canary).get("image", "")
            )
        return self._new_canary_image

    # reading and writing ---------------------------------------------------------------

    def _read(self) -> _Roles:
        cluster = self._cluster
        configmap = cluster._read_configmap(budget=self._budget)
        services = cluster._list_services(budget=self._budget)
        env = cluster._canary_env_or_none(configmap, written_over_by="the switch")
        roles = _Roles(
            {
                _CONFIGMAP: configmap,
                Role.CANARY.value: services[Role.CANARY],
                Role.PRODUCTION.value: services[Role.PRODUCTION],
            },
            env,
        )
        if self._first is None:
            # A copy: the writes of this switch update ``roles.objects`` as they go.
            self._first = _Roles(dict(roles.objects), env)
        self._last = roles
        return roles

    def _content(self, roles: _Roles, key: str) -> tuple[str | None, ...]:
        generation = str(roles.generation(key))
        if key == _CONFIGMAP:
            if roles.env is None or not roles.env.present:
                return (None, None, generation)
            return (roles.env.selector.value, roles.env.image, generation)
        colour = roles.selected(Role(key))
        return (colour.value if colour is not None else None, generation)

    def _is_mine(self, roles: _Roles, key: str) -> bool:
        """Written by this switch: one of its resourceVersions, or exactly what it wrote
        (a write whose answer was lost, or another switcher that wanted the same)."""
        return roles.version(key) in self._mine or self._intended.get(key) == self._content(
            roles, key
        )

    def _is_at(self, roles: _Roles, key: str, wanted: tuple[str | None, ...]) -> bool:
        return self._content(roles, key) == wanted

    def _note_write(
        self,
        roles: _Roles,
        key: str,
        written: Mapping[str, Any],
        content: tuple[str | None, ...],
    ) -> None:
        if key not in self._before:
            self._before[key] = roles.objects[key]
            self._written.append(key)
        # The next write of this object in the same pass is guarded by this version.
        roles.objects[key] = dict(written)
        self._mine.add(str(written.get("metadata", {}).get("resourceVersion", "")))
        self._intended[key] = content

    def _write_service(
        self, roles: _Roles, role: Role, colour: Colour | None, generation: int
    ) -> None:
        """Point a Service at ``colour`` (None: keep its selector) and stamp ``generation``."""
        current = roles.objects[role.value]
        patch: dict[str, Any] = {
            "metadata": {
                "resourceVersion": current["metadata"]["resourceVersion"],
                "annotations": {SWITCH_GENERATION: str(generation)},
            }
        }
        if colour is not None:
            patch["spec"] = {"selector": {"app": colour.value}}
        written = self._cluster._patch_service(role, patch, budget=self._budget)
        selected = _selected_colour(written)
        self._note_write(
            roles,
            role.value,
            written,
            (selected.value if selected is not None else None, str(generation)),
        )

    def _write_configmap(self, roles: _Roles, canary: Colour, image: str, generation: int) -> None:
        cluster = self._cluster
        body = cluster._canary_env_body(roles.objects[_CONFIGMAP], canary, image, generation)
        written = cluster._replace_configmap(body, budget=self._budget)
        self._note_write(roles, _CONFIGMAP, written, (canary.value, image, str(generation)))

    # putting it back -------------------------------------------------------------------

    def _put_back(self, failure: Exception) -> Exception | None:
        """Undo what was written, newest first; None when the switch turned out complete.

        Every object this switch wrote must still be as it left it (or as it was
        before): anything else means another writer is at work, and this switch
        stops rather than write over it.
        """
        self._budget = self._cluster._budget()
        wish = f"switching the canary to {self._canary.value}"
        try:
            now = self._read()
        except Exception as exc:
            return SwitchIncomplete(
                f"{wish} could not complete ({failure}) and the cluster could not be read to "
                f"put it back ({exc}); as this switch last saw it, {self._last_seen()}; "
                f"{self._repair_hint()}"
            )
        if now.settled_on(self._canary) and (
            self._image is None or (now.env is not None and now.env.image == self._image)
        ):
            return None
        for key in self._written:
            if now.version(key) != self._before[key]["metadata"]["resourceVersion"] and (
                not self._is_mine(now, key)
            ):
                return SwitchIncomplete(
                    f"{wish} could not complete ({failure}), and another writer changed "
                    f"{self._what(key)} since, so it was not put back; now "
                    f"{now.describe()}; {self._repair_hint()}"
                )
        for key in reversed(self._written):
            if now.version(key) == self._before[key]["metadata"]["resourceVersion"]:
                continue
            try:
                self._restore(key, now.objects[key], self._before[key])
            except Exception as exc:
                return SwitchIncomplete(
                    f"{wish} could not complete ({failure}), nor be put back ({exc}); "
                    f"left as: {self._describe_now()}; {self._repair_hint()}"
                )
        assert self._first is not None
        restored = f"the previous roles were put back: {self._first.describe()}"
        logger.warning("selector switch put back", extra={"cause": str(failure)})
        if failure is self._stopped_by and isinstance(failure, BlueGreenError):
            # The caller's own refusal (the lock), now true of an unchanged cluster.
            again = _with_message(failure, f"{failure}; {restored}")
            if again is not None:
                return again
        if not isinstance(failure, BlueGreenError):
            return failure  # a fault of this code: put back, then let it show as what it is
        return SwitchRestored(f"{wish} could not complete ({failure}); {restored}")

    def _restore(self, key: str, current: Mapping[str, Any], before: Mapping[str, Any]) -> None:
        cluster = self._cluster
        version = current["metadata"]["resourceVersion"]
        if key == _CONFIGMAP:
            body = copy.deepcopy(dict(before))
            body.setdefault("metadata", {})["resourceVersion"] = version
            body["metadata"].pop("managedFields", None)
            cluster._replace_configmap(body, budget=self._budget)
            return
        annotations = before.get("metadata", {}).get("annotations") or {}
        selector = before.get("spec", {}).get("selector") or {}
        # None removes what the switch added: a Service that had no generation gets none.
        patch = {
            "metadata": {
                "resourceVersion": version,
                "annotations": {SWITCH_GENERATION: annotations.get(SWITCH_GENERATION)},
            },
            "spec": {"selector": {"app": selector.get("app")}},
        }
        cluster._patch_service(Role(key), patch, budget=self._budget)

    def _describe_now(self) -> str:
        try:
            return self._read().describe()
        except Exception:
            return f"as this switch last saw it, {self._last_seen()}"

    def _last_seen(self) -> str:
        """The roles as the last read and this switch's writes since left them."""
        if self._last is None:
            return "unknown"
        objects = self._last.objects
        env = self._cluster._canary_env_or_none(objects[_CONFIGMAP])
        return _Roles(objects, env).describe()

    def _what(self, key: str) -> str:
        cluster = self._cluster
        return cluster._configmap_what if key == _CONFIGMAP else cluster._service_what(Role(key))

    def _repair_hint(self) -> str:
        previous = self._first.env.selector if self._first and self._first.env else None
        back = f"; switching to {previous.value} puts the previous roles back" if previous else ""
        return f"repeating the switch completes it{back}"


def _with_message(error: BlueGreenError, message: str) -> BlueGreenError | None:
    """The same kind of error with another message (None when it cannot be built so)."""
    try:
        return type(error)(message)
    except TypeError:
        return None


def _retry_after(exc: Exception) -> float | None:
    """The seconds a ``Retry-After`` header of the answer asks for (None without one)."""
    headers = getattr(exc, "headers", None)
    raw = headers.get("Retry-After") if headers is not None else None
    try:
        seconds = float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date: the API server sends seconds
    return seconds if seconds is not None and seconds >= 0 else None


def judge_rollout(colour: Colour, deployment: Mapping[str, Any], image: str) -> RolloutState:
    """A Deployment's rollout as ``kubectl rollout status`` judges it, in the same order.

    Not yet observed (``observedGeneration < generation``) -> progressing; the
    Progressing condition's reason ``ProgressDeadlineExceeded`` -> stalled, with
    the condition's message; fewer updated replicas than desired, old replicas
    still running, or updated replicas not all available -> progressing;
    otherwise complete.
    """
    metadata = deployment.get("metadata", {})
    spec = deployment.get("spec", {})
    status = deployment.get("status") or {}
    name = metadata.get("name", "")
    desired = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    generation = int(metadata.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    progressing: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {}
    )
    complete = stalled = False
    if observed < generation:
        message = f'Waiting for deployment "{name}" spec update to be observed'
    elif progressing.get("reason") == "ProgressDeadlineExceeded":
        stalled = True
        message = f'deployment "{name}" exceeded its progress deadline'
        if progressing.get("message"):
            message += f": {progressing['message']}"
    elif updated < desired:
        message = (
            f'Waiting for deployment "{name}" rollout to finish: {updated} out of '
            f"{desired} new replicas have been updated"
        )
    elif total > updated:
        message = (
            f'Waiting for deployment "{name}" rollout to finish: {total - updated} old '
            "replicas are pending termination"
        )
    elif available < updated:
        message = (
            f'Waiting for deployment "{name}" rollout to finish: {available} of '
            f"{updated} updated replicas are available"
        )
    else:
        complete = True
        message = f'deployment "{name}" successfully rolled out'
    return RolloutState(
        colour=colour,
        image=image,
        desired=desired,
        updated=updated,
        ready=int(status.get("readyReplicas") or 0),
        available=available,
        generation=generation,
        observed_generation=observed,
        complete=complete,
        stalled=stalled,
        message=message,
        progress_deadline_seconds=int(spec.get("progressDeadlineSeconds") or 600),
    )


def pod_state(pod: Mapping[str, Any]) -> PodState:
    """What the rollout judgement needs of a pod, from its JSON."""
    metadata, status = pod.get("metadata", {}), pod.get("status") or {}
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled") or {}
    unschedulable = scheduled.get("status") == "False" and scheduled.get("reason") == (
        "Unschedulable"
    )
    containers = []
    for entry in status.get("containerStatuses") or []:
        state, last = entry.get("state") or {}, entry.get("lastState") or {}
        ended = last.get("terminated") or state.get("terminated") or {}
        waiting = state.get("waiting") or {}
        containers.append(
            ContainerState(
                name=str(entry.get("name", "")),
                ready=bool(entry.get("ready")),
                restart_count=int(entry.get("restartCount") or 0),
                running="running" in state,
                waiting_reason=str(waiting.get("reason") or ""),
                waiting_message=_plain(str(waiting.get("message") or "")),
                last_exit_code=int(ended["exitCode"]) if "exitCode" in ended else None,
                last_reason=str(ended.get("reason") or ""),
            )
        )
    return PodState(
        name=str(metadata.get("name", "")),
        created_at=_when(metadata.get("creationTimestamp")),
        ready=(conditions.get("Ready") or {}).get("status") == "True",
        phase=str(status.get("phase") or "Pending"),
        containers=tuple(containers),
        unschedulable_since=_when(scheduled.get("lastTransitionTime")) if unschedulable else None,
        unschedulable_message=_plain(str(scheduled.get("message") or "")) if unschedulable else "",
    )


def _when(stamp: object) -> datetime:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


def hook_job_name(run_id: str, hook_name: str) -> str:
    """The hook's Job name: deterministic, DNS-1123, at most 63 characters.

    Readable prefix (hook and run, sanitised and truncated) plus a hash of the
    exact pair, so that two runs whose sanitised names coincide still differ.
    """
    digest = hashlib.sha256(f"{run_id}\0{hook_name}".encode()).hexdigest()[:8]
    readable = re.sub(r"[^a-z0-9]+", "-", f"hook-{hook_name}-{run_id}".lower()).strip("-")
    readable = readable[: _DNS_LABEL_MAX - len(digest) - 1].rstrip("-")
    return f"{readable}-{digest}"


def _label_value(value: str) -> str:
    """A valid label value (63 characters of ``[A-Za-z0-9_.-]``, alphanumeric at both ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:_DNS_LABEL_MAX]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def _generation(obj: Mapping[str, Any]) -> int:
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(SWITCH_GENERATION, "0")
    try:
        return max(0, int(raw))
    except (TypeError, ValueError):
        return 0


def selectors_of(traffic: Traffic) -> dict[Role, Colour | None]:
    """The colour each role's traffic goes to, when it all goes to one (else None)."""
    production = traffic.production.sole if traffic.production is not None else None
    return {Role.CANARY: traffic.canary, Role.PRODUCTION: production}


def _selected_colour(service: Mapping[str, Any]) -> Colour | None:
    app = (service.get("spec", {}).get("selector") or {}).get("app")
    return Colour(app) if isinstance(app, str) and app in {c.value for c in Colour} else None


def _failure_reason(condition: Mapping[str, Any], pod: Mapping[str, Any] | None) -> str:
    """Why a Job failed, in words: the Job's condition, and how its container ended."""
    parts = [
        ": ".join(p for p in (condition.get("reason"), condition.get("message")) if p)
        or "the Job failed"
    ]
    for status in (pod or {}).get("status", {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            ended = f"container {status.get('name')} exited with code {terminated.get('exitCode')}"
            if terminated.get("reason"):
                ended += f" ({terminated['reason']})"
            if terminated.get("message"):
                ended += f": {terminated['message']}"
            parts.append(ended)
    return "; ".join(parts)


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
    return reason, _plain(message)


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
        return ClusterUnavailable(
            f"the Kubernetes API at {host} rejected our credentials (401 Unauthorized) when "
            f"asked to {verb} {what}: the bearer token is missing, expired or not for this "
            "cluster (on EKS: does the function's role have an access entry?)"
        )
    if status == 403:
        return ClusterUnavailable(
            f"the Kubernetes API at {host} forbids us to {verb} {what} (403 Forbidden): "
            f"{message}; the function's role needs the namespaced RBAC Role shipped with "
            "the stack"
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


def _transient(exc: Exception) -> bool:
    """True for a failure worth repeating at once: 5xx, 429, connection refused or reset.

    A timeout is not: the request may have been applied, and repeating it would
    double the time a caller waits on a hung server.
    """
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status:
        return status >= 500 or status == 429
    return not _timed_out(getattr(exc, "reason", None) or exc)


def _plain(text: str) -> str:
    """One line, without the client's object reprs, short enough for a log or a Cause."""
    return " ".join(text.split())[:500]
