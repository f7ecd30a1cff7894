"""The ConfigMap that holds ``canaryEnv``: read it, parse it, write it back guarded.

The format of the value is the domain's (``bluegreen.domain.canary_env``); this is
the object around it. Every write is a PUT of the ConfigMap as read, carrying its
resourceVersion, so a concurrent writer makes it fail with ``Refused`` (409) for
the caller to re-read and re-decide.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from bluegreen.adapters.kube.requests import Budget, KubeRequests, Refused
from bluegreen.config import Settings
from bluegreen.domain.canary_env import CanaryEnvMalformed, format_canary_env, parse_canary_env
from bluegreen.domain.errors import ClusterConflict, InvalidInput
from bluegreen.domain.models import CanaryEnv, Colour
from bluegreen.domain.traffic import Weights
from bluegreen.observability import logger


class CanaryEnvStore:
    """The application's ConfigMap and its ``canaryEnv`` key."""

    def __init__(self, requests: KubeRequests, settings: Settings) -> None:
        self._requests = requests
        self._settings = settings

    @property
    def what(self) -> str:
        """The ConfigMap, in words, for messages."""
        return (
            f'ConfigMap "{self._settings.configmap_name}" in namespace "{self._settings.namespace}"'
        )

    def read(self, budget: Budget | None = None) -> dict[str, Any]:
        """The ConfigMap as stored."""
        return self._requests.call(
            "read",
            self.what,
            self._requests.apis.core.read_namespaced_config_map,
            self._settings.configmap_name,
            self._settings.namespace,
            budget=budget,
        )

    def current(self) -> tuple[CanaryEnv, dict[str, Any]]:
        """canaryEnv and the ConfigMap it came from (one request)."""
        configmap = self.read()
        return self.parse(configmap), configmap

    def parse(self, configmap: Mapping[str, Any]) -> CanaryEnv:
        """The ConfigMap's canaryEnv (the initial canary when the key is missing);
        ``CanaryEnvMalformed`` says what is wrong with it."""
        key = self._settings.configmap_key
        return parse_canary_env(
            (configmap.get("data") or {}).get(key),
            f"{self.what}, key {key!r}",
            configmap.get("metadata", {}).get("resourceVersion"),
        )

    def parse_or_none(
        self, configmap: Mapping[str, Any], *, written_over_by: str = ""
    ) -> CanaryEnv | None:
        """The ConfigMap's canaryEnv, or None where it is malformed.

        A switch or a flip is how a person repairs a broken canaryEnv: it is written
        over, so such a writer (``written_over_by``) reads it as absent and says so.
        """
        try:
            return self.parse(configmap)
        except CanaryEnvMalformed as exc:
            if written_over_by:
                logger.warning(
                    f"canaryEnv malformed; {written_over_by} writes it over",
                    extra={"detail": str(exc)},
                )
            return None

    def body(
        self,
        configmap: Mapping[str, Any],
        selector: Colour,
        image: str,
        *,
        weights: Weights | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The ConfigMap as read, with the new canaryEnv and ``annotations`` added.

        ``weights`` are written when given; otherwise whatever weights it had are kept.
        """
        body = copy.deepcopy(dict(configmap))
        metadata = body.setdefault("metadata", {})
        metadata.pop("managedFields", None)
        data = body.get("data") or {}
        key = self._settings.configmap_key
        data[key] = format_canary_env(data.get(key), selector, image, weights)
        body["data"] = data
        if annotations:
            metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
        return body

    def replace(self, body: Mapping[str, Any], budget: Budget | None = None) -> dict[str, Any]:
        """PUT the ConfigMap (its resourceVersion guards it); a 409 raises ``Refused``."""
        return self._requests.call(
            "replace",
            self.what,
            self._requests.apis.core.replace_namespaced_config_map,
            self._settings.configmap_name,
            self._settings.namespace,
            body,
            refusals=(409,),
            budget=budget,
        )

    def restore(
        self, current: Mapping[str, Any], before: Mapping[str, Any], budget: Budget | None = None
    ) -> dict[str, Any]:
        """Put the ConfigMap back as ``before`` was, guarded by ``current``'s version."""
        body = copy.deepcopy(dict(before))
        body.setdefault("metadata", {})["resourceVersion"] = current["metadata"]["resourceVersion"]
        body["metadata"].pop("managedFields", None)
        return self.replace(body, budget=budget)

    def set_image(self, image: str) -> bool:
        """Set ``canaryEnv.image`` (resourceVersion-guarded); False when already so."""
        if not isinstance(image, str) or not image.strip():
            raise InvalidInput("image", "must be a non-empty image reference")
        requests = self._requests
        for attempt in range(requests.conflict_attempts):
            env, configmap = self.current()
            if env.present and env.image == image:
                return False
            try:
                self.replace(self.body(configmap, env.selector, image))
            except Refused:
                requests.back_off(attempt)
                continue
            return True
        raise ClusterConflict(
            f"{self.what} kept changing while canaryEnv.image was being set; "
            f"gave up after {requests.conflict_attempts} attempts"
        )
