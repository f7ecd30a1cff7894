"""The ``gateway`` router: a Gateway API HTTPRoute whose rules carry weighted backendRefs.

The HTTPRoute (``Settings.http_route_name``, ``gateway.networking.k8s.io/v1``) has a
rule named ``production`` (``Settings.http_route_production_rule``) with a
``backendRef`` per colour's Service and a rule named ``canary`` that sends all its
requests to the canary colour (how requests reach it, a header or a path match, is
the route owner's choice). A flip rewrites the weights of the colours' backendRefs
in both rules, one JSON merge patch of ``spec.rules`` carrying the resourceVersion:
every other rule, match, filter and backendRef is written back exactly as read, so
it is left as it was. A colour's backendRef that is missing is added (kind Service,
the port ``Settings.colour_service_port``). Weights are 0-100 here, well inside
what Gateway API (0-1,000,000) and the Load Balancer Controller (0-999) accept.

A move is confirmed by the Gateway implementation's own report: for every parentRef,
an entry of ``status.parents`` whose ``Accepted`` and ``ResolvedRefs`` conditions are
True with ``observedGeneration`` equal to the route's ``metadata.generation`` (the
generation the write produced). Implementations may program the proxy a moment after
they write that status (Traefik does, by about 2 s here); the route's status is what
Gateway API promises, and what every implementation writes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from bluegreen.adapters.kube.requests import Budget
from bluegreen.adapters.routers.weighted import WeightedRouter
from bluegreen.domain.errors import InvalidInput, RouterObjectInvalid
from bluegreen.domain.models import Colour
from bluegreen.domain.traffic import Confirmation, RouterKind, Traffic, Weights

GROUP = "gateway.networking.k8s.io"
VERSION = "v1"
PLURAL = "httproutes"


class HttpRouteRouter(WeightedRouter):
    """``Router`` over two named rules of one HTTPRoute."""

    kind = RouterKind.GATEWAY

    @property
    def what(self) -> str:
        return (
            f'HTTPRoute "{self._settings.http_route_name}" in namespace '
            f'"{self._settings.namespace}"'
        )

    @property
    def _rules(self) -> dict[str, str]:
        return {
            "production": self._settings.http_route_production_rule,
            "canary": self._settings.http_route_canary_rule,
        }

    def read(self, budget: Budget | None = None) -> dict[str, Any]:
        return self._requests.call(
            "read",
            self.what,
            self._requests.apis.custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            self._settings.namespace,
            PLURAL,
            self._settings.http_route_name,
            budget=budget,
        )

    def write(self, patch: Mapping[str, Any], budget: Budget | None = None) -> dict[str, Any]:
        return self._requests.call(
            "patch",
            self.what,
            self._requests.apis.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            self._settings.namespace,
            PLURAL,
            self._settings.http_route_name,
            patch,
            refusals=(409,),
            budget=budget,
            _content_type="application/merge-patch+json",
        )

    def traffic_of(self, obj: Mapping[str, Any]) -> Traffic:
        rules = {role: self._rule(obj, role) for role in self._rules}
        production = self._weights(rules["production"])
        canary_weights = self._weights(rules["canary"])
        canary = canary_weights.sole
        problem = ""
        if canary is None:
            problem = (
                f"the canary rule {self._rules['canary']!r} sends "
                f"{canary_weights.describe()}, not one colour"
            )
        return Traffic(
            router=self.kind, production=production, canary=canary, where=self.what, problem=problem
        )

    def patch_for(self, obj: Mapping[str, Any], weights: Weights, canary: Colour) -> dict[str, Any]:
        rules = copy.deepcopy(list((obj.get("spec") or {}).get("rules") or []))
        wanted = {"production": weights, "canary": Weights.all_on(canary)}
        for role, name in self._rules.items():
            index = self._index(obj, role)
            rules[index] = self._with_weights(rules[index], wanted[role])
            assert rules[index].get("name") == name
        return {
            "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
            "spec": {"rules": rules},
        }

    def owned(self, obj: Mapping[str, Any]) -> Any:
        return (obj.get("spec") or {}).get("rules")

    def restore_patch(
        self, current: Mapping[str, Any], before: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {
            "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
            "spec": {"rules": copy.deepcopy((before.get("spec") or {}).get("rules") or [])},
        }

    def confirm(self) -> Confirmation:
        """Whether each parent Gateway accepted the route's current generation (one read)."""
        obj = self.read()
        written = self.traffic_of(obj)
        if written.problem or written.production is None:
            return Confirmation(written=written, confirmed=False, applied=written.problem)
        generation = (obj.get("metadata") or {}).get("generation")
        parents = (obj.get("spec") or {}).get("parentRefs") or []
        reported = (obj.get("status") or {}).get("parents") or []
        problems = [
            problem
            for parent in parents
            if isinstance(parent, dict)
            and (problem := self._parent_problem(parent, reported, generation))
        ]
        if not parents:
            problems.append("the route names no parentRefs: no Gateway serves it")
        if problems:
            return Confirmation(written=written, confirmed=False, applied="; ".join(problems))
        names = ", ".join(str(p.get("name")) for p in parents if isinstance(p, dict))
        return Confirmation(
            written=written,
            confirmed=True,
            applied=f"accepted at generation {generation} by {names}",
            observed=written.production,
        )

    def _parent_problem(
        self, parent: Mapping[str, Any], reported: list[Any], generation: object
    ) -> str:
        """Why ``parent``'s report does not confirm ``generation`` ("" when it does)."""
        name = str(parent.get("name"))
        namespace = parent.get("namespace") or self._settings.namespace
        section = parent.get("sectionName")
        entry = next(
            (
                r
                for r in reported
                if isinstance(r, dict)
                and (r.get("parentRef") or {}).get("name") == name
                and ((r.get("parentRef") or {}).get("namespace") or self._settings.namespace)
                == namespace
                and (r.get("parentRef") or {}).get("sectionName") == section
            ),
            None,
        )
        if entry is None:
            return f"Gateway {name!r} has not reported on the route"
        conditions = {
            c.get("type"): c for c in entry.get("conditions") or [] if isinstance(c, dict)
        }
        for kind in ("Accepted", "ResolvedRefs"):
            condition = conditions.get(kind)
            if condition is None:
                return f"Gateway {name!r} reports no {kind} condition"
            if condition.get("observedGeneration") != generation:
                return (
                    f"Gateway {name!r} last reported on generation "
                    f"{condition.get('observedGeneration')}, not {generation}"
                )
            if condition.get("status") != "True":
                return (
                    f"Gateway {name!r}: {kind} {condition.get('status')} "
                    f"({condition.get('reason')}: {condition.get('message', '')})"
                )
        return ""

    # reading the object ---------------------------------------------------------------

    def _index(self, obj: Mapping[str, Any], role: str) -> int:
        name = self._rules[role]
        rules = (obj.get("spec") or {}).get("rules") or []
        for index, rule in enumerate(rules):
            if isinstance(rule, dict) and rule.get("name") == name:
                return index
        names = ", ".join(repr(r.get("name")) for r in rules if isinstance(r, dict)) or "none"
        setting = (
            "BG_HTTP_ROUTE_PRODUCTION_RULE" if role == "production" else "BG_HTTP_ROUTE_CANARY_RULE"
        )
        raise RouterObjectInvalid(
            f"{self.what} has no {role} rule: no rule named {name!r} (the name {setting} "
            f"gives; rules are named by spec.rules[].name); its rules: {names}; nothing "
            "was changed"
        )

    def _rule(self, obj: Mapping[str, Any], role: str) -> dict[str, Any]:
        rule: dict[str, Any] = ((obj.get("spec") or {}).get("rules") or [])[self._index(obj, role)]
        return rule

    def _colour_of(self, ref: object) -> Colour | None:
        if not isinstance(ref, dict):
            return None
        if ref.get("kind", "Service") != "Service" or ref.get("group", "") not in ("", "core"):
            return None
        if ref.get("namespace") not in (None, self._settings.namespace):
            return None
        for colour in Colour:
            if ref.get("name") == self._settings.colour_service_name(colour):
                return colour
        return None

    def _weights(self, rule: Mapping[str, Any]) -> Weights:
        values = {colour: 0 for colour in Colour}
        for ref in rule.get("backendRefs") or []:
            colour = self._colour_of(ref)
            if colour is not None:
                # Gateway API: an unset weight is 1.
                weight = ref.get("weight", 1)
                values[colour] += weight if isinstance(weight, int) else 0
        return Weights(blue=values[Colour.BLUE], green=values[Colour.GREEN])

    def _with_weights(self, rule: Mapping[str, Any], weights: Weights) -> dict[str, Any]:
        updated = dict(rule)
        refs = [dict(r) if isinstance(r, dict) else r for r in rule.get("backendRefs") or []]
        seen: set[Colour] = set()
        for ref in refs:
            colour = self._colour_of(ref)
            if colour is None or not isinstance(ref, dict):
                continue
            # A second backendRef of the same colour gets nothing: its weight is the first's.
            ref["weight"] = 0 if colour in seen else weights.of(colour)
            seen.add(colour)
        for colour in Colour:
            if colour not in seen:
                refs.append(
                    {
                        "group": "",
                        "kind": "Service",
                        "name": self._settings.colour_service_name(colour),
                        "port": self._port,
                        "weight": weights.of(colour),
                    }
                )
        updated["backendRefs"] = refs
        return updated

    @property
    def _port(self) -> int:
        raw = self._settings.colour_service_port
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            raise InvalidInput(
                "BG_COLOUR_SERVICE_PORT",
                f"{raw!r} is not a port number; a Gateway API backendRef needs the Service's "
                "port number",
            )
        return int(raw)
