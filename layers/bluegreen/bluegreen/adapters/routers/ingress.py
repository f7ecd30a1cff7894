"""The ``alb`` router: an Ingress of the AWS Load Balancer Controller, weights in annotations.

The Ingress (``Settings.ingress_name``) has a production rule and a canary rule,
each a path whose backend is ``service.name: <action>``, ``service.port.name:
use-annotation``: the Load Balancer Controller then reads the rule's action from the
annotation ``alb.ingress.kubernetes.io/actions.<action>``. This router owns exactly
those two annotations::

    alb.ingress.kubernetes.io/actions.production-weights:
      {"type":"forward","forwardConfig":{"targetGroups":[
        {"serviceName":"blue-service","servicePort":"80","weight":90},
        {"serviceName":"green-service","servicePort":"80","weight":10}]}}
    alb.ingress.kubernetes.io/actions.canary-forward:   (100 on the canary colour)

and writes them with one JSON merge patch that carries the resourceVersion: the
rules, hosts, other annotations, other target groups of the action and its other
``forwardConfig`` keys (stickiness) are left as they are. The per-colour Services
(``Settings.colour_service_name``) select one colour each and never change, so a
flip re-registers no target: the controller changes the listener rule's weights.

A move is confirmed from ELBv2 itself (``RouterParts.load_balancers``): the listener
rule the controller made for each of the two paths forwards with the weights written
(per colour's target group), and every colour given weight has at least one target
registered and all of them ``healthy`` (as Argo Rollouts' ``VerifyWeight`` and
target-group verification read it). Until then the load balancer may still send the
old weights, or send requests to a colour it cannot reach.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bluegreen.adapters.kube.requests import Budget
from bluegreen.adapters.routers.weighted import WeightedRouter
from bluegreen.domain.errors import RouterObjectInvalid
from bluegreen.domain.models import Colour
from bluegreen.domain.traffic import (
    ROUTER_WEIGHT_MAX,
    Confirmation,
    ForwardRule,
    RouterKind,
    Traffic,
    Weights,
)

ACTION_ANNOTATION = "alb.ingress.kubernetes.io/actions.{action}"
USE_ANNOTATION = "use-annotation"


class IngressRouter(WeightedRouter):
    """``Router`` over the action annotations of one Ingress."""

    kind = RouterKind.ALB

    @property
    def what(self) -> str:
        return f'Ingress "{self._settings.ingress_name}" in namespace "{self._settings.namespace}"'

    @property
    def _actions(self) -> dict[str, str]:
        """Role (``production`` / ``canary``) -> the action name its rule forwards to."""
        return {
            "production": self._settings.ingress_production_action,
            "canary": self._settings.ingress_canary_action,
        }

    def read(self, budget: Budget | None = None) -> dict[str, Any]:
        return self._requests.call(
            "read",
            self.what,
            self._requests.apis.networking.read_namespaced_ingress,
            self._settings.ingress_name,
            self._settings.namespace,
            budget=budget,
        )

    def write(self, patch: Mapping[str, Any], budget: Budget | None = None) -> dict[str, Any]:
        return self._requests.call(
            "patch",
            self.what,
            self._requests.apis.networking.patch_namespaced_ingress,
            self._settings.ingress_name,
            self._settings.namespace,
            patch,
            refusals=(409,),
            budget=budget,
            _content_type="application/merge-patch+json",
        )

    def traffic_of(self, obj: Mapping[str, Any]) -> Traffic:
        for role, action in self._actions.items():
            self._check_rule(obj, role, action)
        production, production_problem = self._weights(obj, self._actions["production"])
        canary_weights, canary_problem = self._weights(obj, self._actions["canary"])
        canary = canary_weights.sole if canary_weights is not None else None
        if canary_weights is not None and canary is None:
            canary_problem = (
                f"the canary action {self._actions['canary']!r} forwards to "
                f"{canary_weights.describe()}, not to one colour"
            )
        return Traffic(
            router=self.kind,
            production=production,
            canary=canary,
            where=self.what,
            problem="; ".join(p for p in (production_problem, canary_problem) if p),
        )

    def patch_for(self, obj: Mapping[str, Any], weights: Weights, canary: Colour) -> dict[str, Any]:
        production, canary_action = self._actions["production"], self._actions["canary"]
        return {
            "metadata": {
                "resourceVersion": obj["metadata"]["resourceVersion"],
                "annotations": {
                    _key(production): self._action_json(obj, production, weights),
                    _key(canary_action): self._action_json(
                        obj, canary_action, Weights.all_on(canary)
                    ),
                },
            }
        }

    def owned(self, obj: Mapping[str, Any]) -> Any:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        return {action: annotations.get(_key(action)) for action in self._actions.values()}

    def restore_patch(
        self, current: Mapping[str, Any], before: Mapping[str, Any]
    ) -> dict[str, Any]:
        annotations = (before.get("metadata") or {}).get("annotations") or {}
        # None deletes an annotation this router added.
        return {
            "metadata": {
                "resourceVersion": current["metadata"]["resourceVersion"],
                "annotations": {
                    _key(action): annotations.get(_key(action)) for action in self._actions.values()
                },
            }
        }

    def confirm(self) -> Confirmation:
        """Whether the load balancer forwards by what the Ingress says, to healthy targets
        (the Ingress, then ELBv2's rules, target groups and target health)."""
        obj = self.read()
        written = self.traffic_of(obj)
        view = self._parts.load_balancers
        if written.problem or written.production is None:
            return Confirmation(written=written, confirmed=False, applied=written.problem)
        if view is None:
            return Confirmation(
                written=written,
                confirmed=False,
                applied="no load balancer can be read (the stack reaches no ELBv2)",
            )
        balancer = view.programmed(self._settings.namespace, self._settings.ingress_name)
        if balancer.problem:
            return Confirmation(written=written, confirmed=False, applied=balancer.problem)
        wanted = {
            "production": written.production,
            "canary": Weights.all_on(written.canary) if written.canary else None,
        }
        problems: list[str] = []
        observed: Weights | None = None
        for role, action in self._actions.items():
            weights = wanted[role]
            rule = self._rule_for(obj, action, balancer.rules)
            if rule is None:
                problems.append(f"{balancer.where} has no listener rule for the {role} path yet")
                continue
            held = self._held(rule)
            if role == "production":
                observed = held
            if weights is not None and held != weights:
                problems.append(
                    f"its {role} rule forwards {held.describe()}, not {weights.describe()}"
                )
        serving = set(written.production.serving)
        if written.canary is not None:
            serving.add(written.canary)
        for colour in sorted(serving, key=lambda c: c.value):
            if problem := self._target_problem(balancer.targets, colour):
                problems.append(problem)
        if problems:
            return Confirmation(
                written=written,
                confirmed=False,
                applied=f"{balancer.where}: " + "; ".join(problems),
                observed=observed,
            )
        return Confirmation(
            written=written,
            confirmed=True,
            applied=f"{balancer.where} forwards production {written.production.describe()} "
            "to healthy targets",
            observed=observed,
        )

    def unready(self, colours: frozenset[Colour]) -> str:
        """A colour's target group with no registered target, or one not ``healthy``."""
        view = self._parts.load_balancers
        if view is None:
            return ""
        balancer = view.programmed(self._settings.namespace, self._settings.ingress_name)
        if balancer.problem:
            return balancer.problem
        return "; ".join(
            problem
            for colour in sorted(colours, key=lambda c: c.value)
            if (problem := self._target_problem(balancer.targets, colour))
        )

    def _target_problem(self, targets: Mapping[str, tuple[str, ...]], colour: Colour) -> str:
        states = targets.get(self._settings.colour_service_name(colour), ())
        unhealthy = [state for state in states if state != "healthy"]
        if not states:
            return f"{colour.value}'s target group has no registered target"
        if unhealthy:
            return (
                f"{len(unhealthy)} of {colour.value}'s {len(states)} targets are not "
                f"healthy ({', '.join(sorted(set(unhealthy)))})"
            )
        return ""

    def _rule_for(
        self, obj: Mapping[str, Any], action: str, rules: tuple[ForwardRule, ...]
    ) -> ForwardRule | None:
        """The listener rule made from the Ingress path that forwards to ``action``: the
        one whose host and path conditions are that path's (the controller's pattern of
        a Prefix path ``/x`` is ``/x`` and ``/x/*``, of ``/`` it is ``/*``)."""
        for rule in (obj.get("spec") or {}).get("rules") or []:
            host = rule.get("host")
            for path in (rule.get("http") or {}).get("paths") or []:
                if ((path.get("backend") or {}).get("service") or {}).get("name") != action:
                    continue
                prefix = str(path.get("path") or "/").rstrip("/")
                for candidate in rules:
                    if host and host not in candidate.hosts:
                        continue
                    if not candidate.paths or any(
                        p.removesuffix("*").rstrip("/") == prefix for p in candidate.paths
                    ):
                        return candidate
        return None

    def _held(self, rule: ForwardRule) -> Weights:
        """The rule's weights per colour (its target groups told apart by Service)."""
        values = {
            colour: int(rule.weights.get(self._settings.colour_service_name(colour), 0))
            for colour in Colour
        }
        return Weights(blue=values[Colour.BLUE], green=values[Colour.GREEN])

    # reading the object ---------------------------------------------------------------

    def _check_rule(self, obj: Mapping[str, Any], role: str, action: str) -> None:
        """``RouterObjectInvalid`` unless a path of the Ingress forwards to ``action``."""
        seen: list[str] = []
        found = False
        for rule in (obj.get("spec") or {}).get("rules") or []:
            host = rule.get("host") or "*"
            for path in (rule.get("http") or {}).get("paths") or []:
                service = (path.get("backend") or {}).get("service") or {}
                name = service.get("name")
                port = service.get("port") or {}
                seen.append(f"{host}{path.get('path', '')} -> {name}")
                if name != action:
                    continue
                if port.get("name") != USE_ANNOTATION:
                    raise RouterObjectInvalid(
                        f"{self.what}: the {role} rule ({host}{path.get('path', '')}) forwards "
                        f"to {action!r} with port {port!r}; the Load Balancer Controller reads "
                        f"the action's annotation only with service.port.name: {USE_ANNOTATION}"
                    )
                found = True
        if not found:
            rules = ", ".join(seen) or "none"
            setting = (
                "BG_INGRESS_PRODUCTION_ACTION"
                if role == "production"
                else ("BG_INGRESS_CANARY_ACTION")
            )
            raise RouterObjectInvalid(
                f"{self.what} has no {role} rule: no path whose backend is service.name: "
                f"{action}, service.port.name: {USE_ANNOTATION} (the action named by "
                f"{setting}); its paths: {rules}; nothing was changed"
            )

    def _weights(self, obj: Mapping[str, Any], action: str) -> tuple[Weights | None, str]:
        """The weights the action's annotation gives each colour's Service, or why not."""
        key = _key(action)
        raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(key)
        if raw is None:
            return None, f"the annotation {key} is missing"
        parsed = _parse_action(raw)
        if parsed is None:
            return None, f"the annotation {key} is not a forward action: {raw[:200]!r}"
        groups = (parsed.get("forwardConfig") or {}).get("targetGroups")
        if not isinstance(groups, list):
            return None, f"the annotation {key} has no forwardConfig.targetGroups list"
        values = {colour: 0 for colour in Colour}
        for group in groups:
            colour = self._colour_of(group)
            if colour is None:
                continue
            weight = group.get("weight", 0)
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                return None, f"the annotation {key} gives {colour.value} the weight {weight!r}"
            values[colour] += weight
        return Weights(blue=values[Colour.BLUE], green=values[Colour.GREEN]), ""

    def _colour_of(self, group: object) -> Colour | None:
        if not isinstance(group, dict):
            return None
        for colour in Colour:
            if group.get("serviceName") == self._settings.colour_service_name(colour):
                return colour
        return None

    def _action_json(self, obj: Mapping[str, Any], action: str, weights: Weights) -> str:
        """The action's annotation with the colours' weights; all else it held is kept."""
        raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(_key(action))
        parsed = _parse_action(raw) if raw is not None else None
        value: dict[str, Any] = dict(parsed) if parsed is not None else {}
        value["type"] = "forward"
        forward = value.get("forwardConfig")
        forward = dict(forward) if isinstance(forward, dict) else {}
        groups = forward.get("targetGroups")
        groups = list(groups) if isinstance(groups, list) else []
        kept: list[Any] = []
        ours: dict[Colour, dict[str, Any]] = {}
        for group in groups:
            colour = self._colour_of(group)
            if colour is None:
                kept.append(group)
            elif colour not in ours:
                ours[colour] = dict(group)
        written = []
        for colour in Colour:
            group = ours.get(colour) or {
                "serviceName": self._settings.colour_service_name(colour),
                "servicePort": self._settings.colour_service_port,
            }
            group["weight"] = min(weights.of(colour), ROUTER_WEIGHT_MAX)
            written.append(group)
        forward["targetGroups"] = written + kept
        value["forwardConfig"] = forward
        return json.dumps(value, separators=(",", ":"))


def _key(action: str) -> str:
    return ACTION_ANNOTATION.format(action=action)


def _parse_action(raw: object) -> dict[str, Any] | None:
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or value.get("type", "forward") != "forward":
        return None
    return value
