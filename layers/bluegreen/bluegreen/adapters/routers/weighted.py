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

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from bluegreen.adapters.kube.requests import Budget
from bluegreen.adapters.routers.moves import GuardedMove
from bluegreen.adapters.routers.parts import RouterParts
from bluegreen.domain.errors import SwitchIncomplete, TrafficNotConfirmed
from bluegreen.domain.models import INITIAL_CANARY, CanaryEnv, Colour
from bluegreen.domain.traffic import Confirmation, RouterKind, Traffic, Weights
from bluegreen.observability import logger

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

    def __init__(self, parts: RouterParts) -> None:
        self._parts = parts
        self._requests = parts.requests
        self._settings = parts.settings

    # what each object does differently ----------------------------------------------

    @property
    @abstractmethod
    def what(self) -> str:
        """The object, in words: ``Ingress "web" in namespace "wp-platform"``."""

    @abstractmethod
    def read(self, budget: Budget | None = None) -> dict[str, Any]:
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
    def owned(self, obj: Mapping[str, Any]) -> Any:
        """What of the object a move writes (its controller's status updates are not)."""

    @abstractmethod
    def write(self, patch: Mapping[str, Any], budget: Budget | None = None) -> dict[str, Any]:
        """Send ``patch``; a 409 (a stale resourceVersion) raises ``Refused``."""

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
        return WeightedMove(self, canary, Weights.all_on(canary.other), image, confirm).run()

    def shift(
        self,
        weights: Weights,
        canary: Colour | None = None,
        *,
        image: str | None = None,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """Production's weights as given; ``canary`` the canary (default: as canaryEnv says)."""
        return WeightedMove(self, canary, weights, image, confirm).run()

    @abstractmethod
    def confirm(self) -> Confirmation:
        """Whether the data plane applies what the router object says now."""

    def unready(self, colours: frozenset[Colour]) -> str:
        """Why the data plane cannot take production traffic to ``colours`` yet ("" when it
        can): asked before a move gives them weight they did not have."""
        return ""

    @property
    def parts(self) -> RouterParts:
        """What the router was built with (its moves use the same)."""
        return self._parts


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


class WeightedMove(GuardedMove):
    """One move of a weighted router: canaryEnv and the router object, in order."""

    def __init__(
        self,
        router: WeightedRouter,
        canary: Colour | None,
        weights: Weights,
        image: str | None,
        confirm: Callable[[], None] | None,
    ) -> None:
        super().__init__(router.parts, confirm)
        self._router = router
        self._canary_env = router.parts.canary_env
        self._workloads = router.parts.workloads
        self._canary = canary
        self._weights = weights
        self._image = image
        self._confirmed = confirm is None
        self._router_first = False
        self._new_canary_image: str | None = None
        self._last: tuple[CanaryEnv | None, Traffic | None] = (None, None)

    @property
    def wish(self) -> str:
        return f"moving production to {self._weights.describe()}"

    @property
    def contended(self) -> str:
        return f"canaryEnv and {self._router.what}"

    def _data_plane(self) -> Confirmation:
        return self._router.confirm()

    # forward ---------------------------------------------------------------------------

    def _step(self) -> bool | None:
        router = self._router
        configmap = self._canary_env.read(budget=self._budget)
        env = self._canary_env.parse_or_none(configmap, written_over_by="the flip")
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
            gaining = self._weights.serving - (traffic.production or Weights(0, 0)).serving
            # A colour's pods become targets as they pass health checks: wait for that
            # (within the move's budget) rather than refuse a move made just after a deploy.
            problem = (
                self._await_ready(lambda: router.unready(frozenset(gaining))) if gaining else ""
            )
            if problem:
                raise TrafficNotConfirmed(
                    f"{self.wish}: {problem}; nothing was changed (a colour is given "
                    "production traffic only once the data plane can send it there)"
                )
        order = (_ROUTER, _CONFIGMAP) if self._router_first else (_CONFIGMAP, _ROUTER)
        for key in order:
            if key == _ROUTER and not router_done:
                written = router.write(router.patch_for(obj, self._weights, canary), self._budget)
                self._note(key, obj, written)
            elif key == _CONFIGMAP and not env_done:
                body = self._canary_env.body(configmap, canary, image, weights=self._weights)
                self._note(key, configmap, self._canary_env.replace(body, budget=self._budget))
            else:
                continue
            if not self._confirmed:
                # Once, after the first write: the caller's check that the lock is still its.
                self._confirmed = True
                self._check()
        return True

    def _image_for(self, env: CanaryEnv | None, canary: Colour) -> str:
        if self._image is not None:
            return self._image
        if env is not None and env.present and env.selector is canary and env.image:
            return env.image
        if self._new_canary_image is None:
            self._new_canary_image = self._workloads.image(canary, self._budget)
        return self._new_canary_image

    # when it cannot complete -------------------------------------------------------------

    def _after(self, failure: Exception) -> Exception:
        """Put back what must be put back; the error to raise.

        A router-first move whose router write landed is not put back: production is
        already where it must be, and putting it back on a colour being backed out
        would be worse.
        """
        if (
            self._router_first
            and _ROUTER in self._written
            and isinstance(failure, TrafficNotConfirmed)
        ):
            # Kept, not put back: the move takes traffic off a colour, and putting it back
            # there while the data plane lags would be worse than waiting for it.
            return TrafficNotConfirmed(
                f"{failure}; the move was kept (it takes production off a colour): "
                f"{self._describe_now()}"
            )
        if self._router_first and _ROUTER in self._written and failure is not self._stopped_by:
            logger.warning("traffic moved, canaryEnv not written", extra={"cause": str(failure)})
            return SwitchIncomplete(
                f"{self.wish}: {self._router.what} was written, so production traffic is "
                f"already where it must be, but canaryEnv could not be written ({failure}); "
                f"{self._describe_now()}; repeating the move completes it"
            )
        self._budget = self._requests.budget()
        try:
            self._put_back()
        except Exception as exc:
            return SwitchIncomplete(
                f"{self.wish} could not complete ({failure}), nor be put back ({exc}); "
                f"{self._describe_now()}; repeating the move completes it"
            )
        return self._restored(failure, "the previous traffic was put back")

    def _put_back(self) -> None:
        router = self._router
        for key in reversed(self._written):
            before = self._before[key]
            current = (
                self._canary_env.read(budget=self._budget)
                if key == _CONFIGMAP
                else router.read(self._budget)
            )
            version = str(current.get("metadata", {}).get("resourceVersion", ""))
            # The router object's controller writes its status (a Gateway's report, the
            # load balancer's address): only a change of what this move wrote is another
            # writer's. The restore is still guarded by the version just read.
            changed = (
                version != self._version_left(key)
                if key == _CONFIGMAP
                else router.owned(current) != router.owned(self._left[key])
            )
            if changed:
                what = "canaryEnv" if key == _CONFIGMAP else router.what
                raise SwitchIncomplete(f"another writer changed {what} since; it was not put back")
            if key == _CONFIGMAP:
                self._canary_env.restore(current, before, budget=self._budget)
            else:
                router.write(router.restore_patch(current, before), self._budget)

    def _describe_now(self) -> str:
        try:
            env = self._canary_env.parse_or_none(self._canary_env.read())
            return "now " + describe(env, self._router.traffic())
        except Exception:
            env, traffic = self._last
            return "as last read, " + describe(env, traffic)
