"""What the ``alb`` and ``gateway`` routers share: a flip is canaryEnv plus one object.

Under these routers the per-colour Services' selectors never change. Production's
weights and the canary's colour live in one router object (an Ingress, an
HTTPRoute), and ``canaryEnv`` says the same (``{"selector", "image", "weights"}``).
Every move (a step of a promotion, backing one out, a switch of the roles, a
flip-back) is one write of each, both guarded by the resourceVersion they were
computed from, a 409 re-read and re-decided.

The order of the two writes keeps production traffic off any colour canaryEnv
gives no weight, except where it already was (the project's invariant):

* when the new weights send production only to colours canaryEnv already gives
  weight (backing a canary out, handing the canary endpoint over), the router
  object is written first: production is where it must be after one write;
* otherwise (a step that gives the canary a share, a switch of the roles),
  canaryEnv first: until the router object follows, production stays where it was,
  while ``bluegreen.logic.roles`` sees the two disagree and refuses canary work.

A move that cannot complete (transient failures past the adapter's budget, a
refusal of ``confirm``) puts back what it wrote, newest first, and raises
``SwitchRestored``; a router-first move whose router write landed is not put
back (putting production back on a colour being backed out would be worse) and
raises ``SwitchIncomplete`` naming what is left, which repeating completes.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bluegreen.domain.errors import (
    BlueGreenError,
    ClusterConflict,
    SwitchIncomplete,
    SwitchRestored,
)
from bluegreen.domain.models import INITIAL_CANARY, CanaryEnv, Colour
from bluegreen.domain.traffic import RouterKind, Traffic, Weights
from bluegreen.observability import logger

if TYPE_CHECKING:
    from bluegreen.adapters.cluster import KubernetesCluster, _Budget

_CONFIGMAP = "canaryEnv"
_ROUTER = "router"


def granted(env: CanaryEnv | None) -> frozenset[Colour]:
    """The colours canaryEnv lets production traffic reach (none when it is unreadable)."""
    if env is None:
        return frozenset()
    if env.weights is not None:
        return env.weights.serving
    return frozenset({env.selector.other})


def expected_weights(env: CanaryEnv) -> Weights:
    """Production's weights as canaryEnv says them (all on production without weights)."""
    return env.weights if env.weights is not None else Weights.all_on(env.selector.other)


class WeightedRouter(ABC):
    """A ``Router`` over one object holding production's weights and the canary's colour."""

    kind: RouterKind

    def __init__(self, cluster: KubernetesCluster) -> None:
        self._cluster = cluster
        self._settings = cluster.settings

    # what each object does differently ----------------------------------------------

    @property
    @abstractmethod
    def what(self) -> str:
        """The object, in words: ``Ingress "web" in namespace "wp-platform"``."""

    @abstractmethod
    def read(self, budget: _Budget | None = None) -> dict[str, Any]:
        """The object as stored (``ClusterObjectMissing`` when it does not exist)."""

    @abstractmethod
    def traffic_of(self, obj: Mapping[str, Any]) -> Traffic:
        """What the object says; ``RouterObjectInvalid`` when it lacks a rule it must have."""

    @abstractmethod
    def patch_for(self, obj: Mapping[str, Any], weights: Weights, canary: Colour) -> dict[str, Any]:
        """The write that makes ``obj`` say so, guarded by its resourceVersion."""

    @abstractmethod
    def restore_patch(
        self, current: Mapping[str, Any], before: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The write that puts back what ``before`` said, guarded by ``current``'s version."""

    @abstractmethod
    def write(self, patch: Mapping[str, Any], budget: _Budget | None = None) -> dict[str, Any]:
        """Send ``patch``; a 409 (a stale resourceVersion) raises the adapter's ``_Refused``."""

    # the Router port -------------------------------------------------------------------

    def traffic(self) -> Traffic:
        """What the router object says now (one request)."""
        return self.traffic_of(self.read())

    def switch_roles(
        self,
        canary: Colour,
        image: str | None = None,
        *,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """``canary`` the canary, all of production on the other colour: two writes."""
        return _Flip(self, canary, Weights.all_on(canary.other), image, confirm).run()

    def shift(
        self,
        weights: Weights,
        canary: Colour | None = None,
        *,
        image: str | None = None,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """Production's weights as given; ``canary`` the canary (default: as canaryEnv says)."""
        return _Flip(self, canary, weights, image, confirm).run()

    @property
    def cluster(self) -> KubernetesCluster:
        return self._cluster


def describe(env: CanaryEnv | None, traffic: Traffic | None) -> str:
    """What canaryEnv and the router object say, in words."""
    if env is None:
        said = "canaryEnv is malformed"
    else:
        weights = expected_weights(env)
        said = (
            f"canaryEnv makes {env.selector.value} the canary and gives production "
            f"{weights.describe()}"
        )
    if traffic is None:
        return said
    production = traffic.production.describe() if traffic.production else "no readable weights"
    canary = traffic.canary.value if traffic.canary else "no single colour"
    return f"{said}; {traffic.where} sends production {production} and the canary to {canary}"


class _Flip:
    """One move of a weighted router: what it read, wrote, and must put back."""

    def __init__(
        self,
        router: WeightedRouter,
        canary: Colour | None,
        weights: Weights,
        image: str | None,
        confirm: Callable[[], None] | None,
    ) -> None:
        self._router = router
        self._cluster = router.cluster
        self._canary = canary
        self._weights = weights
        self._image = image
        self._confirm = confirm
        self._confirmed = confirm is None
        self._budget = self._cluster._budget()
        self._written: list[str] = []
        self._before: dict[str, dict[str, Any]] = {}
        self._mine: dict[str, str] = {}
        self._router_first = False
        self._stopped_by: Exception | None = None
        self._new_canary_image: str | None = None
        self._last: tuple[CanaryEnv | None, Traffic | None] = (None, None)

    def run(self) -> bool:
        try:
            return self._forward()
        except Exception as failure:
            if not self._written:
                raise
            raise self._after(failure) from None

    # forward ---------------------------------------------------------------------------

    def _forward(self) -> bool:
        from bluegreen.adapters.cluster import _Refused

        cluster, router = self._cluster, self._router
        conflicts = 0
        while True:
            configmap = cluster._read_configmap(budget=self._budget)
            env = cluster._canary_env_or_none(configmap, written_over_by="the flip")
            obj = router.read(self._budget)
            traffic = router.traffic_of(obj)
            self._last = (env, traffic)
            canary = self._canary or (env.selector if env is not None else INITIAL_CANARY)
            image = self._image_for(env, canary)
            env_done = (
                env is not None
                and env.present
                and env.selector is canary
                and env.image == image
                and env.weights == self._weights
            )
            router_done = traffic.production == self._weights and traffic.canary is canary
            if env_done and router_done:
                return bool(self._written)
            if not self._written:
                self._router_first = self._weights.serving <= granted(env)
            order = (_ROUTER, _CONFIGMAP) if self._router_first else (_CONFIGMAP, _ROUTER)
            try:
                for key in order:
                    if key == _ROUTER and not router_done:
                        self._note(
                            key,
                            obj,
                            router.write(
                                router.patch_for(obj, self._weights, canary), self._budget
                            ),
                        )
                    elif key == _CONFIGMAP and not env_done:
                        body = cluster._canary_env_body(
                            configmap, canary, image, generation=None, weights=self._weights
                        )
                        self._note(
                            key, configmap, cluster._replace_configmap(body, budget=self._budget)
                        )
                    else:
                        continue
                    self._check_confirm()
            except _Refused:
                conflicts += 1
                if conflicts >= cluster._conflict_attempts:
                    raise ClusterConflict(
                        f"canaryEnv and {router.what} kept changing while moving production "
                        f"to {self._weights.describe()}; gave up after {conflicts} attempts"
                    ) from None
                cluster._back_off(conflicts)
                continue
            return True

    def _check_confirm(self) -> None:
        if self._confirmed or self._confirm is None:
            return
        self._confirmed = True
        try:
            self._confirm()
        except Exception as exc:
            self._stopped_by = exc
            raise

    def _image_for(self, env: CanaryEnv | None, canary: Colour) -> str:
        if self._image is not None:
            return self._image
        if env is not None and env.present and env.selector is canary and env.image:
            return env.image
        if self._new_canary_image is None:
            cluster = self._cluster
            deployment = cluster._read_deployment(canary, budget=self._budget)
            self._new_canary_image = str(cluster._container(deployment, canary).get("image", ""))
        return self._new_canary_image

    def _note(self, key: str, before: Mapping[str, Any], written: Mapping[str, Any]) -> None:
        if key not in self._before:
            self._before[key] = copy.deepcopy(dict(before))
            self._written.append(key)
        self._mine[key] = str(written.get("metadata", {}).get("resourceVersion", ""))

    # when it cannot complete -------------------------------------------------------------

    def _after(self, failure: Exception) -> Exception:
        """The error to raise once whatever must be put back is put back."""
        wish = f"moving production to {self._weights.describe()}"
        if self._router_first and _ROUTER in self._written and failure is not self._stopped_by:
            logger.warning("traffic moved, canaryEnv not written", extra={"cause": str(failure)})
            return SwitchIncomplete(
                f"{wish}: {self._router.what} was written, so production traffic is already "
                f"where it must be, but canaryEnv could not be written ({failure}); "
                f"{self._describe_now()}; repeating the move completes it"
            )
        self._budget = self._cluster._budget()
        try:
            self._put_back()
        except Exception as exc:
            return SwitchIncomplete(
                f"{wish} could not complete ({failure}), nor be put back ({exc}); "
                f"{self._describe_now()}; repeating the move completes it"
            )
        restored = "the previous traffic was put back"
        logger.warning("traffic move put back", extra={"cause": str(failure)})
        if failure is self._stopped_by and isinstance(failure, BlueGreenError):
            from bluegreen.adapters.cluster import _with_message

            again = _with_message(failure, f"{failure}; {restored}")
            if again is not None:
                return again
        if not isinstance(failure, BlueGreenError):
            return failure
        return SwitchRestored(f"{wish} could not complete ({failure}); {restored}")

    def _put_back(self) -> None:
        cluster, router = self._cluster, self._router
        for key in reversed(self._written):
            before = self._before[key]
            current = (
                cluster._read_configmap(budget=self._budget)
                if key == _CONFIGMAP
                else router.read(self._budget)
            )
            version = str(current.get("metadata", {}).get("resourceVersion", ""))
            if version != self._mine[key]:
                what = "canaryEnv" if key == _CONFIGMAP else router.what
                raise SwitchIncomplete(f"another writer changed {what} since; it was not put back")
            if key == _CONFIGMAP:
                body = copy.deepcopy(before)
                body.setdefault("metadata", {})["resourceVersion"] = version
                body["metadata"].pop("managedFields", None)
                cluster._replace_configmap(body, budget=self._budget)
            else:
                router.write(router.restore_patch(current, before), self._budget)

    def _describe_now(self) -> str:
        try:
            configmap = self._cluster._read_configmap()
            env = self._cluster._canary_env_or_none(configmap)
            return "now " + describe(env, self._router.traffic())
        except Exception:
            env, traffic = self._last
            return "as last read, " + describe(env, traffic)
