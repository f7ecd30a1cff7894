"""The ``selector`` router: the canary and production Services' selectors follow the roles.

The original system's contract, and the default. It moves all of a role's traffic
at once: a share of production cannot be given to a colour, so ``shift`` refuses
anything but all-or-nothing.

A switch from C to N = C.other is three writes, each guarded by the resourceVersion
it was computed from:

1. the canary Service to N (canary traffic may reach the production colour);
2. ``canaryEnv``: N the canary, with the image N's Deployment runs (or the one given);
3. the production Service to C.

So the production Service only ever moves to the colour canaryEnv already calls
production; between 2 and 3 it stays on the colour it was on, where the rule of
``bluegreen.logic.roles`` refuses canary work. ``confirm`` is called after 1 and
before 2.

Concurrent switchers converge: every write stamps ``SWITCH_GENERATION``, so objects
whose generations differ are a switch in flight. A switcher waits for someone else's
to settle and takes it over only once it stops progressing (its first write is then
the production Service, so the other's last write fails its guard); each switcher
loops until canaryEnv and both Services are settled on its wish, so once the last
one returns they agree.

Requests: two reads when everything already says so; a move six (the ConfigMap, the
Services, the new canary's Deployment, three writes), five when the image is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bluegreen.adapters.kube.requests import Budget
from bluegreen.adapters.routers.moves import GuardedMove
from bluegreen.adapters.routers.parts import RouterParts
from bluegreen.domain.errors import SwitchIncomplete, TrafficNotWeighted
from bluegreen.domain.models import CanaryEnv, Colour, Role
from bluegreen.domain.traffic import Confirmation, RouterKind, Traffic, Weights
from bluegreen.observability import logger

SWITCH_GENERATION = "bluegreen/switch-generation"
"""Annotation numbering selector switches, on the ConfigMap and on both Services.

Every write of a switch stamps the switch's number (one more than the highest it
read), so the three objects carry the same number once a switch is done, and
different numbers while one is in flight: that is how a concurrent switcher knows
to wait for it (or take it over once it stalls) instead of writing across it. A
switch that is put back restores the numbers it found.
"""

_CONFIGMAP = "configmap"
_OBJECTS = (_CONFIGMAP, Role.CANARY.value, Role.PRODUCTION.value)
"""What a switch reads and writes: the ConfigMap and the two Services, by role."""


class Services:
    """The canary and production Services (``Settings.service_name``)."""

    def __init__(self, parts: RouterParts) -> None:
        self._requests = parts.requests
        self._settings = parts.settings

    def what(self, role: Role) -> str:
        """That role's Service, in words, for messages."""
        name = self._settings.service_name(role)
        return f'Service "{name}" ({role.value}) in namespace "{self._settings.namespace}"'

    def read(self, budget: Budget | None = None) -> dict[Role, dict[str, Any]]:
        """Both Services, in one list request."""
        return self._requests.list_named(
            "Service",
            self._settings.namespace,
            self._requests.apis.core.list_namespaced_service,
            {role: (self._settings.service_name(role), f" ({role.value})") for role in Role},
            budget=budget,
        )

    def patch(
        self, role: Role, patch: Mapping[str, Any], budget: Budget | None = None
    ) -> dict[str, Any]:
        """Strategic-merge patch of a Service (guarded by the resourceVersion in ``patch``)."""
        return self._requests.call(
            "patch",
            self.what(role),
            self._requests.apis.core.patch_namespaced_service,
            self._settings.service_name(role),
            self._settings.namespace,
            patch,
            refusals=(409,),
            budget=budget,
            _content_type="application/strategic-merge-patch+json",
        )


class SelectorRouter:
    """``Router`` over the canary and production Services."""

    kind = RouterKind.SELECTOR

    def __init__(self, parts: RouterParts) -> None:
        self._parts = parts
        self._services = Services(parts)

    def traffic(self) -> Traffic:
        """What both Services select (one list request): production's is all its traffic."""
        return self._traffic_of(self._services.read())

    def _traffic_of(self, services: Mapping[Role, Mapping[str, Any]]) -> Traffic:
        production = selected_colour(services[Role.PRODUCTION])
        return Traffic(
            router=self.kind,
            production=Weights.all_on(production) if production else Weights(0, 0),
            canary=selected_colour(services[Role.CANARY]),
            where="the canary and production Services",
        )

    def confirm(self) -> Confirmation:
        """Whether the production Service's endpoints are the pods it now selects.

        What carries production's requests is the EndpointSlices the endpoint-slice
        controller derives from the Service's selector (kube-proxy and the load
        balancers read those, not the selector): the switch is applied once they list
        ready endpoints, every one of them a pod of the selected colour. Three reads:
        the Services, the production Service's EndpointSlices, that colour's pods.
        """
        services = self._services.read()
        written = self._traffic_of(services)
        colour = written.production.sole if written.production else None
        if colour is None:
            return Confirmation(
                written=written,
                confirmed=False,
                applied="the production Service selects no colour",
            )
        settings = self._parts.settings
        requests = self._parts.requests
        service = settings.service_name(Role.PRODUCTION)
        slices = requests.call(
            "list",
            f'EndpointSlices of Service "{service}" in namespace "{settings.namespace}"',
            requests.apis.discovery.list_namespaced_endpoint_slice,
            settings.namespace,
            label_selector=f"kubernetes.io/service-name={service}",
        ).get("items", [])
        pods = requests.call(
            "list",
            f'{colour.value} pods in namespace "{settings.namespace}"',
            requests.apis.core.list_namespaced_pod,
            settings.namespace,
            label_selector=",".join(
                f"{key}={value}"
                for key, value in sorted(
                    (services[Role.PRODUCTION].get("spec", {}).get("selector") or {}).items()
                )
            ),
        ).get("items", [])
        of_colour = {pod["metadata"]["name"] for pod in pods}
        ready = [
            endpoint
            for piece in slices
            for endpoint in piece.get("endpoints") or []
            if (endpoint.get("conditions") or {}).get("ready") is not False
        ]
        names = {str((e.get("targetRef") or {}).get("name", "")) for e in ready}
        strangers = sorted(names - of_colour)
        if not ready:
            applied = f'Service "{service}" has no ready endpoint yet'
        elif strangers:
            applied = (
                f'Service "{service}" still lists {len(strangers)} endpoint(s) not of '
                f"{colour.value} ({', '.join(strangers[:3])})"
            )
        else:
            return Confirmation(
                written=written,
                confirmed=True,
                applied=f'Service "{service}" lists {len(ready)} ready {colour.value} endpoint(s)',
                observed=written.production,
            )
        return Confirmation(written=written, confirmed=False, applied=applied)

    def switch_roles(
        self,
        canary: Colour,
        image: str | None = None,
        *,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """The three writes of the module's docstring, or none; put back when it cannot
        complete (``SwitchRestored``, or ``SwitchIncomplete`` naming what is left)."""
        return SelectorSwitch(self._parts, self, self._services, canary, image, confirm).run()

    def shift(
        self,
        weights: Weights,
        canary: Colour | None = None,
        *,
        image: str | None = None,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """All of production on one colour is a switch; anything else is refused."""
        sole = weights.sole
        if sole is None or weights.of(sole) == 0:
            raise TrafficNotWeighted(
                f"the selector router sends all of production to one colour; "
                f"{weights.describe()} needs TrafficRouter alb or gateway"
            )
        wanted_canary = canary or sole.other
        if wanted_canary is sole:
            raise TrafficNotWeighted(
                f"the selector router cannot send production to the canary colour "
                f"{sole.value}; switch the canary colour instead"
            )
        return self.switch_roles(wanted_canary, image, confirm=confirm)


@dataclass(frozen=True)
class _Roles:
    """canaryEnv and both Services as one read of a switch found them."""

    objects: dict[str, dict[str, Any]]
    env: CanaryEnv | None  # None: canaryEnv is there but malformed

    def generation(self, key: str) -> int:
        return switch_generation(self.objects[key])

    def version(self, key: str) -> str:
        return str(self.objects[key].get("metadata", {}).get("resourceVersion", ""))

    def selected(self, role: Role) -> Colour | None:
        return selected_colour(self.objects[role.value])

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


class SelectorSwitch(GuardedMove):
    """One selector switch: what it read, wrote, and must undo."""

    put_back_log = "selector switch put back"

    def __init__(
        self,
        parts: RouterParts,
        router: SelectorRouter,
        services: Services,
        canary: Colour,
        image: str | None,
        confirm: Callable[[], None] | None,
    ) -> None:
        super().__init__(parts, confirm)
        self._router = router
        self._canary_env = parts.canary_env
        self._workloads = parts.workloads
        self._services = services
        self._canary = canary
        self._image = image
        self._generation: int | None = None  # the switch generation this switch writes
        self._intended: dict[str, tuple[str | None, ...]] = {}  # what it wrote, per object
        self._first: _Roles | None = None  # the roles as this switch found them
        self._last: _Roles | None = None  # the latest read, updated by the writes since
        self._new_canary_image = image
        self._waits = 0
        self._progress: tuple[str, ...] = ()
        self._last_progress = self._requests.clock()

    @property
    def wish(self) -> str:
        return f"switching the canary to {self._canary.value}"

    @property
    def contended(self) -> str:
        return f"{self._canary_env.what} and the Services"

    def _data_plane(self) -> Confirmation:
        return self._router.confirm()

    # forward ---------------------------------------------------------------------

    def _step(self) -> bool | None:
        requests = self._requests
        roles = self._read()
        if roles.settled_on(self._canary):
            assert roles.env is not None
            if self._image is None or roles.env.image == self._image:
                return bool(self._written)
        takeover = False
        if self._in_flight_elsewhere(roles):
            seen = tuple(roles.version(key) for key in _OBJECTS)
            if seen != self._progress:  # the other switch moves on: give it time afresh
                self._progress, self._last_progress = seen, requests.clock()
            stalled = requests.clock() - self._last_progress >= requests.budget_seconds / 2
            if not stalled and not self._budget.expired():
                self._waits += 1
                requests.back_off(min(self._waits, 8))
                return None
            logger.warning(
                "taking over a selector switch that stopped progressing",
                extra={"state": roles.describe(), "canary": self._canary.value},
            )
            takeover = True
        self._write_towards(roles, takeover)
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
        self._check()
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
            self._new_canary_image = self._workloads.image(self._canary, self._budget)
        return self._new_canary_image

    # reading and writing ---------------------------------------------------------------

    def _read(self) -> _Roles:
        configmap = self._canary_env.read(budget=self._budget)
        services = self._services.read(budget=self._budget)
        env = self._canary_env.parse_or_none(configmap, written_over_by="the switch")
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
        return roles.version(key) in self._all_versions or self._intended.get(key) == self._content(
            roles, key
        )

    def _is_at(self, roles: _Roles, key: str, wanted: tuple[str | None, ...]) -> bool:
        return self._content(roles, key) == wanted

    def _wrote(
        self,
        roles: _Roles,
        key: str,
        written: Mapping[str, Any],
        content: tuple[str | None, ...],
    ) -> None:
        self._note(key, roles.objects[key], written)
        # The next write of this object in the same pass is guarded by this version.
        roles.objects[key] = dict(written)
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
        written = self._services.patch(role, patch, budget=self._budget)
        selected = selected_colour(written)
        self._wrote(
            roles,
            role.value,
            written,
            (selected.value if selected is not None else None, str(generation)),
        )

    def _write_configmap(self, roles: _Roles, canary: Colour, image: str, generation: int) -> None:
        body = self._canary_env.body(
            roles.objects[_CONFIGMAP],
            canary,
            image,
            annotations={SWITCH_GENERATION: str(generation)},
        )
        written = self._canary_env.replace(body, budget=self._budget)
        self._wrote(roles, _CONFIGMAP, written, (canary.value, image, str(generation)))

    # putting it back -------------------------------------------------------------------

    def _after(self, failure: Exception) -> Exception | None:
        """Undo what was written, newest first; None when the switch turned out complete.

        Every object this switch wrote must still be as it left it (or as it was
        before): anything else means another writer is at work, and this switch
        stops rather than write over it.
        """
        self._budget = self._requests.budget()
        try:
            now = self._read()
        except Exception as exc:
            return SwitchIncomplete(
                f"{self.wish} could not complete ({failure}) and the cluster could not be "
                f"read to put it back ({exc}); as this switch last saw it, "
                f"{self._last_seen()}; {self._repair_hint()}"
            )
        if (
            not self._awaiting_data_plane
            and now.settled_on(self._canary)
            and (self._image is None or (now.env is not None and now.env.image == self._image))
        ):
            return None
        for key in self._written:
            if now.version(key) != self._before[key]["metadata"]["resourceVersion"] and (
                not self._is_mine(now, key)
            ):
                return SwitchIncomplete(
                    f"{self.wish} could not complete ({failure}), and another writer changed "
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
                    f"{self.wish} could not complete ({failure}), nor be put back ({exc}); "
                    f"left as: {self._describe_now()}; {self._repair_hint()}"
                )
        assert self._first is not None
        return self._restored(
            failure, f"the previous roles were put back: {self._first.describe()}"
        )

    def _restore(self, key: str, current: Mapping[str, Any], before: Mapping[str, Any]) -> None:
        if key == _CONFIGMAP:
            self._canary_env.restore(current, before, budget=self._budget)
            return
        annotations = before.get("metadata", {}).get("annotations") or {}
        selector = before.get("spec", {}).get("selector") or {}
        # None removes what the switch added: a Service that had no generation gets none.
        patch = {
            "metadata": {
                "resourceVersion": current["metadata"]["resourceVersion"],
                "annotations": {SWITCH_GENERATION: annotations.get(SWITCH_GENERATION)},
            },
            "spec": {"selector": {"app": selector.get("app")}},
        }
        self._services.patch(Role(key), patch, budget=self._budget)

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
        env = self._canary_env.parse_or_none(objects[_CONFIGMAP])
        return _Roles(objects, env).describe()

    def _what(self, key: str) -> str:
        return self._canary_env.what if key == _CONFIGMAP else self._services.what(Role(key))

    def _repair_hint(self) -> str:
        previous = self._first.env.selector if self._first and self._first.env else None
        back = f"; switching to {previous.value} puts the previous roles back" if previous else ""
        return f"repeating the switch completes it{back}"


def switch_generation(obj: Mapping[str, Any]) -> int:
    """The ``SWITCH_GENERATION`` an object carries (0 without one)."""
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(SWITCH_GENERATION, "0")
    try:
        return max(0, int(raw))
    except (TypeError, ValueError):
        return 0


def selected_colour(service: Mapping[str, Any]) -> Colour | None:
    """The colour a Service's ``spec.selector.app`` names (None for anything else)."""
    app = (service.get("spec", {}).get("selector") or {}).get("app")
    return Colour(app) if isinstance(app, str) and app in {c.value for c in Colour} else None
