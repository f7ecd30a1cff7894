"""The colours' Deployments and their pods: images, rollouts, warnings, logs.

Reads are judged by the domain's rules (``bluegreen.domain.judgements``); the one
write, a Deployment's image, is a strategic-merge patch keyed by container name
that carries the resourceVersion it was computed from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bluegreen.adapters.kube.requests import Budget, KubeRequests, Refused
from bluegreen.config import Settings
from bluegreen.domain.errors import ClusterConflict, ClusterObjectMissing, InvalidInput
from bluegreen.domain.judgements import judge_rollout, one_line, pod_state
from bluegreen.domain.models import Colour, RolloutState
from bluegreen.domain.pods import PodState, PodWarning


class Workloads:
    """The two colours' Deployments (``Settings.deployment_name``) and their pods."""

    def __init__(self, requests: KubeRequests, settings: Settings) -> None:
        self._requests = requests
        self._settings = settings
        self._pod_selectors: dict[Colour, dict[str, str]] = {}

    @property
    def _namespace(self) -> str:
        return self._settings.namespace

    def what(self, colour: Colour) -> str:
        """That colour's Deployment, in words, for messages."""
        name = self._settings.deployment_name(colour)
        return f'Deployment "{name}" ({colour.value}) in namespace "{self._namespace}"'

    # reads ----------------------------------------------------------------------

    def read(self, colour: Colour, budget: Budget | None = None) -> dict[str, Any]:
        """That colour's Deployment as stored."""
        return self._requests.call(
            "read",
            self.what(colour),
            self._requests.apis.apps.read_namespaced_deployment,
            self._settings.deployment_name(colour),
            self._namespace,
            budget=budget,
        )

    def read_both(self) -> dict[Colour, dict[str, Any]]:
        """Both Deployments in one list request."""
        return self._requests.list_named(
            "Deployment",
            self._namespace,
            self._requests.apis.apps.list_namespaced_deployment,
            {colour: (self._settings.deployment_name(colour), "") for colour in Colour},
        )

    def container(self, deployment: Mapping[str, Any], colour: Colour) -> dict[str, Any]:
        """The configured container of a Deployment (``ClusterObjectMissing`` without it)."""
        containers = deployment.get("spec", {}).get("template", {}).get("spec", {})
        containers = containers.get("containers") or []
        for container in containers:
            if container.get("name") == self._settings.container_name:
                return dict(container)
        names = ", ".join(str(c.get("name")) for c in containers) or "none"
        raise ClusterObjectMissing(
            f"{self.what(colour)} has no container named "
            f"{self._settings.container_name!r} (its containers: {names})"
        )

    def image(self, colour: Colour, budget: Budget | None = None) -> str:
        """The image of the configured container of that colour's Deployment."""
        return str(self.container(self.read(colour, budget), colour).get("image", ""))

    def rollout(self, colour: Colour) -> RolloutState:
        """That colour's rollout, judged as ``kubectl rollout status`` judges it."""
        deployment = self.read(colour)
        selector = deployment.get("spec", {}).get("selector", {}).get("matchLabels")
        if selector:
            self._pod_selectors[colour] = dict(selector)
        return self.rollout_of(colour, deployment)

    def rollout_of(self, colour: Colour, deployment: Mapping[str, Any]) -> RolloutState:
        """The rollout a Deployment already read reports."""
        image = str(self.container(deployment, colour).get("image", ""))
        return judge_rollout(colour, deployment, image)

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
        listed = self._requests.call(
            "list",
            f"Pods of {self.what(colour)}",
            self._requests.apis.core.list_namespaced_pod,
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
        listed = self._requests.call(
            "list",
            f'Events in namespace "{self._namespace}"',
            self._requests.apis.core.list_namespaced_event,
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
                message=one_line(str(e.get("message") or "")),
            )
            for e in events
        ]

    def log(
        self,
        pod: str,
        container: str,
        lines: int,
        limit_bytes: int,
        *,
        previous: bool = False,
    ) -> str:
        """The last lines a container printed ("" when it has none to show: never
        started, or already gone)."""
        verb = "read the previous log of" if previous else "read the log of"
        options: dict[str, Any] = {"previous": True} if previous else {}
        try:
            raw = self._requests.call_raw(
                verb,
                f'Pod "{pod}" in namespace "{self._namespace}"',
                self._requests.apis.core.read_namespaced_pod_log,
                pod,
                self._namespace,
                container=container,
                tail_lines=max(1, lines),
                limit_bytes=limit_bytes,
                refusals=(400, 404),
                **options,
            )
        except Refused:
            return ""
        return raw.decode("utf-8", errors="replace").rstrip("\n")

    # the one write --------------------------------------------------------------

    def set_image(self, colour: Colour, image: str) -> bool:
        """Patch the container's image; False (nothing written) when already so.

        A strategic-merge patch keyed by container name touches that one
        container; it carries the resourceVersion it was computed from, so a
        concurrent change of the Deployment makes it re-read and re-decide.
        """
        if not isinstance(image, str) or not image.strip():
            raise InvalidInput("image", "must be a non-empty image reference")
        requests = self._requests
        for attempt in range(requests.conflict_attempts):
            deployment = self.read(colour)
            if self.container(deployment, colour).get("image") == image:
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
                requests.call(
                    "patch",
                    self.what(colour),
                    requests.apis.apps.patch_namespaced_deployment,
                    self._settings.deployment_name(colour),
                    self._namespace,
                    patch,
                    refusals=(409,),
                    _content_type="application/strategic-merge-patch+json",
                )
            except Refused:
                requests.back_off(attempt)
                continue
            return True
        raise ClusterConflict(
            f"{self.what(colour)} kept changing while its image was being set to "
            f"{image}; gave up after {requests.conflict_attempts} attempts"
        )
