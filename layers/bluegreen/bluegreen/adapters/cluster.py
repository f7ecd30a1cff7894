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
* Writes carry ``metadata.resourceVersion`` (or a JSON-patch ``test``); a 409 is
  re-read and retried with jittered backoff, a bounded number of times.
* Requests are counted at the server in tests: ``snapshot()`` is 3 requests,
  a selector switch 4 when nothing conflicts (5 for the first switch of a
  namespace, 1 more when it repairs a malformed ``canaryEnv``; see
  ``switch_roles``), a switch that is already so 2 reads.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from bluegreen.config import Settings
from bluegreen.domain.errors import (
    BlueGreenError,
    ClusterConflict,
    ClusterObjectMissing,
    ClusterUnavailable,
    InvalidInput,
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
from bluegreen.observability import logger

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

MANAGED_BY = "eks-bluegreen"
"""Value of ``app.kubernetes.io/managed-by`` on everything this product creates."""

SWITCH_GENERATION = "bluegreen/switch-generation"
"""Annotation counting selector switches, on the ConfigMap and on both Services.

The ConfigMap's value goes up by one with every switch of ``canaryEnv.selector``;
a Service's value says which switch its selector reflects. It lets a switch
write the Services blind yet safely (a JSON-patch ``test`` of the previous
value), which is what keeps a switch at four requests.
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


class _Refused(Exception):
    """A status the caller asked to handle itself (a 409 to retry, a failed ``test``)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class _Apis:
    client: Any
    core: Any
    apps: Any
    batch: Any


class KubernetesCluster:
    """The application's namespace (ConfigMap, Deployments, Services, Jobs, Pods)."""

    def __init__(
        self,
        settings: Settings,
        api_client: ApiClient | Callable[[], ApiClient],
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        conflict_attempts: int = 12,
        transient_retries: int = 2,
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
        self._transient_retries = transient_retries
        self._hook_ttl_seconds = hook_ttl_seconds
        self._backoff_seconds = backoff_seconds
        self._switch_budget = switch_budget_seconds
        self._clock = clock
        self._sleep = sleep
        self._apis_built: _Apis | None = None
        self._build_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> KubernetesCluster:
        """The cluster the settings name; the client is built on the first request."""
        from bluegreen.adapters.kube_client import api_client_for

        return cls(settings, lambda: api_client_for(settings), **options)

    @property
    def api_client(self) -> ApiClient:
        """The ``ApiClient`` in use (built now if no request has needed it yet)."""
        return self._apis().client

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
        return self._rollout_state(colour, self._read_deployment(colour))

    def service_selectors(self) -> dict[Role, Colour | None]:
        """``spec.selector.app`` of the canary and production Services (one list request)."""
        services = self._list_services()
        return {role: _selected_colour(services[role]) for role in Role}

    def snapshot(self) -> ClusterSnapshot:
        """canaryEnv, both rollouts and both selectors in three requests (not four)."""
        env, _, _ = self._read_canary_env()
        deployments = self._list_named(
            "Deployment",
            self._apis().apps.list_namespaced_deployment,
            {colour: (self._settings.deployment_name(colour), "") for colour in Colour},
        )
        rollouts = {colour: self._rollout_state(colour, deployments[colour]) for colour in Colour}
        return ClusterSnapshot(
            canary_env=env, rollouts=rollouts, selectors=self.service_selectors()
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
                self._replace_canary_env(configmap, env.selector, image, generation=None)
            except _Refused:
                self._back_off(attempt)
                continue
            return True
        raise ClusterConflict(
            f"{self._configmap_what} kept changing while canaryEnv.image was being set; "
            f"gave up after {self._conflict_attempts} attempts"
        )

    def switch_roles(self, canary: Colour, image: str | None = None) -> bool:
        """Make ``canary`` the canary: ConfigMap and both Services, conflict-safe.

        The ConfigMap is the source of truth and the Services follow it:

        1. read the ConfigMap; if ``canaryEnv`` already says so, only make the
           Services follow (one list; nothing written when they agree: False);
        2. otherwise replace ``canaryEnv`` with the ConfigMap's resourceVersion and
           ``SWITCH_GENERATION`` + 1 (a 409 re-reads and starts again);
        3. patch each Service with a JSON patch that first ``test``s that it
           reflects the previous generation, then sets ``spec.selector.app`` and
           the new generation. No read is needed, so a switch is four requests.
           A Service that fails the test (it lags behind, was edited by hand,
           was never stamped, or a later switch already passed it) is handled by
           the careful path: list the Services and write each one that reflects
           an older generation, guarded by its resourceVersion; one that
           reflects a newer generation means the ConfigMap moved on, so it is
           re-read and followed instead.

        Services only ever move to a newer generation, and whoever writes a
        generation to the ConfigMap carries the Services at least that far, so
        once the last switcher returns the ConfigMap and both Services agree,
        however many switch at once.

        A ``canaryEnv`` that cannot be read (``CanaryEnvMalformed``) is replaced
        with the new roles and, unless ``image`` is given, the image the new
        canary colour's Deployment runs (one more read, only in that case).

        A failure half-way (the ConfigMap written, a Service write refused) is
        *completed*, not compensated: the ConfigMap already says the new roles
        and may have been read by then, so undoing it would flap them, whereas
        the Service writes are idempotent. Transient failures (5xx, 429, lost
        connections) of the Service writes are retried here; if the API stays
        down, ``ClusterUnavailable`` says so, and repeating the same switch
        finishes it (step 1 makes the Services follow).

        The first switch of a namespace stamps the Services with the generation
        (five requests: they carry no generation to test yet).
        """
        if not isinstance(canary, Colour):
            raise InvalidInput("selector", f"{canary!r} is not a colour: expected blue or green")
        for attempt in range(self._conflict_attempts):
            configmap = self._read_configmap()
            generation = _generation(configmap)
            try:
                env = self._parse_canary_env(configmap)
            except CanaryEnvMalformed as exc:
                # A switch is how a person repairs a broken canaryEnv: it is written over.
                logger.warning(
                    "canaryEnv malformed; the switch writes it over", extra={"detail": str(exc)}
                )
                wanted_image = self.deployment_image(canary) if image is None else image
                moves = True
            else:
                wanted_image = env.image if image is None else image
                if env.selector is canary and (
                    image is None or (env.present and env.image == image)
                ):
                    return self._make_services_follow(canary, generation, previous=None)
                # Only a new image keeps the generation: the roles do not move.
                moves = env.selector is not canary
            new_generation = generation + 1 if moves else generation
            try:
                self._replace_canary_env(
                    configmap, canary, wanted_image, generation=new_generation if moves else None
                )
            except _Refused:
                self._back_off(attempt)
                continue
            try:
                self._make_services_follow(
                    canary, new_generation, previous=generation if moves else None
                )
            except (ClusterUnavailable, ClusterConflict, ClusterObjectMissing) as exc:
                raise type(exc)(
                    f"canaryEnv now makes {canary.value} the canary, but the Services did not "
                    f"follow yet ({exc}); repeating the switch completes it"
                ) from None
            return True
        raise ClusterConflict(
            f"{self._configmap_what} kept changing while switching the canary to "
            f"{canary.value}; gave up after {self._conflict_attempts} attempts"
        )

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

    # the careful part of a switch ------------------------------------------------

    def _make_services_follow(self, canary: Colour, generation: int, previous: int | None) -> bool:
        """Carry both Services to ``generation`` (see ``switch_roles``); True if written."""
        pending = list(Role)
        wrote = False
        if previous is not None and previous > 0:
            lagging = []
            for role in pending:
                try:
                    self._patch_service_if_at(role, canary, previous, generation)
                    wrote = True
                except _Refused:
                    lagging.append(role)
            pending = lagging
        if not pending:
            return wrote
        return self._make_services_follow_carefully(canary, generation, pending) or wrote

    def _make_services_follow_carefully(
        self, canary: Colour, generation: int, pending: list[Role]
    ) -> bool:
        wrote = False
        for attempt in range(self._conflict_attempts):
            services = self._list_services()
            if any(_generation(services[role]) > generation for role in pending):
                # A newer switch already reached a Service: its ConfigMap is the truth now.
                env, _, generation = self._read_canary_env()
                canary = env.selector
            conflicted = False
            for role in pending:
                service = services[role]
                colour = canary if role is Role.CANARY else canary.other
                if _selected_colour(service) is colour and _generation(service) == generation:
                    continue
                # Written even when the Service claims a newer generation than the
                # ConfigMap just re-read: the ConfigMap was recreated by hand, and it wins.
                try:
                    self._patch_service_guarded(role, service, colour, generation)
                    wrote = True
                except _Refused:
                    conflicted = True
            if not conflicted:
                return wrote
            self._back_off(attempt)
        raise ClusterConflict(
            f"the Services kept changing while following {self._configmap_what}; "
            f"gave up after {self._conflict_attempts} attempts (the ConfigMap says the "
            "canary is what the last switch made it; repeating the switch finishes it)"
        )

    def _patch_service_if_at(
        self, role: Role, colour_of_canary: Colour, previous: int, generation: int
    ) -> None:
        colour = colour_of_canary if role is Role.CANARY else colour_of_canary.other
        pointer = "/metadata/annotations/" + SWITCH_GENERATION.replace("~", "~0").replace("/", "~1")
        operations = [
            {"op": "test", "path": pointer, "value": str(previous)},
            {"op": "add", "path": "/spec/selector/app", "value": colour.value},
            {"op": "replace", "path": pointer, "value": str(generation)},
        ]
        self._call(
            "patch",
            self._service_what(role),
            self._apis().core.patch_namespaced_service,
            self._settings.service_name(role),
            self._namespace,
            operations,
            refusals=(409, 422),
            retries=self._transient_retries,
            _content_type="application/json-patch+json",
        )

    def _patch_service_guarded(
        self, role: Role, service: Mapping[str, Any], colour: Colour, generation: int
    ) -> None:
        patch = {
            "metadata": {
                "resourceVersion": service["metadata"]["resourceVersion"],
                "annotations": {SWITCH_GENERATION: str(generation)},
            },
            "spec": {"selector": {"app": colour.value}},
        }
        self._call(
            "patch",
            self._service_what(role),
            self._apis().core.patch_namespaced_service,
            self._settings.service_name(role),
            self._namespace,
            patch,
            refusals=(409,),
            retries=self._transient_retries,
            _content_type="application/strategic-merge-patch+json",
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

    def _read_configmap(self) -> dict[str, Any]:
        return self._call(
            "read",
            self._configmap_what,
            self._apis().core.read_namespaced_config_map,
            self._settings.configmap_name,
            self._namespace,
        )

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
        return CanaryEnv(
            selector=Colour(selector), image=image, resource_version=resource_version, present=True
        )

    def _replace_canary_env(
        self, configmap: dict[str, Any], selector: Colour, image: str, generation: int | None
    ) -> None:
        """Replace the ConfigMap as read, with the new canaryEnv; 409 raises ``_Refused``."""
        body = copy.deepcopy(configmap)
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
        data[key] = json.dumps(value, separators=(",", ":"))
        body["data"] = data
        if generation is not None:
            annotations = metadata.get("annotations") or {}
            annotations[SWITCH_GENERATION] = str(generation)
            metadata["annotations"] = annotations
        self._call(
            "replace",
            self._configmap_what,
            self._apis().core.replace_namespaced_config_map,
            self._settings.configmap_name,
            self._namespace,
            body,
            refusals=(409,),
        )

    def _read_deployment(self, colour: Colour) -> dict[str, Any]:
        return self._call(
            "read",
            self._deployment_what(colour),
            self._apis().apps.read_namespaced_deployment,
            self._settings.deployment_name(colour),
            self._namespace,
        )

    def _list_services(self) -> dict[Role, dict[str, Any]]:
        return self._list_named(
            "Service",
            self._apis().core.list_namespaced_service,
            {role: (self._settings.service_name(role), f" ({role.value})") for role in Role},
        )

    def _list_named(
        self, kind: str, list_method: Callable[..., Any], wanted: Mapping[_Key, tuple[str, str]]
    ) -> dict[_Key, dict[str, Any]]:
        """One list request; the objects named in ``wanted`` (key -> (name, note)), all present."""
        listed = self._call(
            "list", f'{kind}s in namespace "{self._namespace}"', list_method, self._namespace
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
                    from kubernetes.client import AppsV1Api, BatchV1Api, CoreV1Api

                    source = self._client_source
                    client = source() if callable(source) else source
                    self._apis_built = _Apis(
                        client=client,
                        core=CoreV1Api(client),
                        apps=AppsV1Api(client),
                        batch=BatchV1Api(client),
                    )
        return self._apis_built

    def _call(
        self,
        verb: str,
        what: str,
        method: Callable[..., Any],
        *args: Any,
        refusals: tuple[int, ...] = (),
        retries: int = 0,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One request, its JSON body as a dict; see ``_call_raw``."""
        raw = self._call_raw(
            verb, what, method, *args, refusals=refusals, retries=retries, **kwargs
        )
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
        retries: int = 0,
        **kwargs: Any,
    ) -> bytes:
        """One request with the timeout; the client's errors mapped to ours.

        Statuses in ``refusals`` raise ``_Refused`` for the caller to handle;
        ``retries`` repeats a request the server failed transiently (5xx, 429,
        connection refused or reset before an answer).
        """
        kwargs["_request_timeout"] = self._timeout
        kwargs["_preload_content"] = False
        for attempt in range(retries + 1):
            try:
                response = method(*args, **kwargs)
                data = response.data
                return bytes(data) if data is not None else b""
            except Exception as exc:  # the client's exceptions, classified below
                error = self._translate(exc, verb, what, refusals)
                if attempt < retries and _transient(exc):
                    self._sleep(self._backoff_seconds * 5 * 2**attempt)
                    continue
                raise error from None
        raise AssertionError("unreachable")  # pragma: no cover

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

    def _back_off(self, attempt: int) -> None:
        """Full-jitter backoff so that racing writers spread out instead of colliding again."""
        cap = min(self._backoff_seconds * 2**attempt, self._backoff_seconds * 20)
        self._sleep(random.uniform(0, cap))


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
