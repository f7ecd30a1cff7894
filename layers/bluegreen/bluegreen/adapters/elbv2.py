"""What the AWS Load Balancer Controller made of an Ingress, read from ELBv2 (read only).

The controller tags what it creates: the load balancer with the cluster
(``elbv2.k8s.aws/cluster``) and the Ingress it serves (``ingress.k8s.aws/stack``:
``<namespace>/<ingress>``, or the group's name for an IngressGroup), each target group
with the Service and port it stands for (``ingress.k8s.aws/resource``:
``<namespace>/<ingress>-<service>:<port>``). Those tags are how the ``alb`` router
finds the listener rules that carry its weights and the targets behind each colour,
without a name or ARN to configure.

A reading is: the load balancers and their tags, its listeners, their rules, the
target groups' tags and each target group's health (``Describe*`` only, none of which
can be scoped to a resource in IAM). The load balancer's ARN and the target groups'
Services never change for an Ingress, so a warm function keeps them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from bluegreen.domain.traffic import ForwardRule, ProgrammedBalancer

CLUSTER_TAG = "elbv2.k8s.aws/cluster"
STACK_TAG = "ingress.k8s.aws/stack"
RESOURCE_TAG = "ingress.k8s.aws/resource"
_TAGS_PER_CALL = 20  # DescribeTags takes at most 20 ARNs


class Elbv2LoadBalancers:
    """``ports.LoadBalancers`` over a boto3 ``elbv2`` client."""

    def __init__(self, client: Any, cluster_name: str) -> None:
        self._client = client
        self._cluster = cluster_name
        self._balancers: dict[str, str] = {}  # stack -> load balancer ARN
        self._services: dict[str, str] = {}  # target group ARN -> Service name

    def programmed(self, namespace: str, ingress: str) -> ProgrammedBalancer:
        stack = f"{namespace}/{ingress}"
        arn = self._balancers.get(stack) or self._find(stack)
        if arn is None:
            return ProgrammedBalancer(
                where=f"no load balancer of {stack}",
                problem=(
                    f"no load balancer is tagged {STACK_TAG}={stack} and "
                    f"{CLUSTER_TAG}={self._cluster} yet (the controller has not reconciled "
                    "the Ingress, or refused it: see its events)"
                ),
            )
        where = f"load balancer {arn.rsplit('/', 2)[-2]}"
        try:
            listeners = self._client.describe_listeners(LoadBalancerArn=arn)["Listeners"]
        except self._client.exceptions.LoadBalancerNotFoundException:
            self._balancers.pop(stack, None)
            return ProgrammedBalancer(where=where, problem=f"{where} no longer exists")
        rules: list[ForwardRule] = []
        groups: set[str] = set()
        for listener in listeners:
            for rule in self._pages("describe_rules", "Rules", ListenerArn=listener["ListenerArn"]):
                weights = _forward_weights(rule)
                if not weights:
                    continue
                groups.update(weights)
                rules.append(
                    ForwardRule(
                        hosts=_condition(rule, "host-header"),
                        paths=_condition(rule, "path-pattern"),
                        weights=weights,
                    )
                )
        services = self._services_of(sorted(groups), f"{stack}-")
        named = tuple(
            ForwardRule(
                hosts=rule.hosts,
                paths=rule.paths,
                weights={services.get(g, g): w for g, w in rule.weights.items()},
            )
            for rule in rules
        )
        targets = {
            services.get(group, group): tuple(
                str(d["TargetHealth"]["State"])
                for d in self._client.describe_target_health(TargetGroupArn=group)[
                    "TargetHealthDescriptions"
                ]
            )
            for group in sorted(groups)
        }
        return ProgrammedBalancer(where=where, rules=named, targets=targets)

    # lookups -----------------------------------------------------------------------------

    def _find(self, stack: str) -> str | None:
        arns = [
            b["LoadBalancerArn"] for b in self._pages("describe_load_balancers", "LoadBalancers")
        ]
        for arn, tags in self._tags(arns).items():
            if tags.get(STACK_TAG) == stack and tags.get(CLUSTER_TAG) == self._cluster:
                self._balancers[stack] = arn
                return arn
        return None

    def _services_of(self, groups: Sequence[str], prefix: str) -> Mapping[str, str]:
        unknown = [g for g in groups if g not in self._services]
        for arn, tags in self._tags(unknown).items():
            resource = tags.get(RESOURCE_TAG, "")
            if resource.startswith(prefix):
                self._services[arn] = resource.removeprefix(prefix).rsplit(":", 1)[0]
        return {g: self._services[g] for g in groups if g in self._services}

    def _tags(self, arns: Sequence[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for start in range(0, len(arns), _TAGS_PER_CALL):
            answer = self._client.describe_tags(ResourceArns=list(arns[start : start + 20]))
            for description in answer["TagDescriptions"]:
                found[description["ResourceArn"]] = {
                    t["Key"]: t["Value"] for t in description.get("Tags", [])
                }
        return found

    def _pages(self, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        marker: str | None = None
        while True:
            answer = getattr(self._client, operation)(
                **kwargs, **({"Marker": marker} if marker else {})
            )
            yield from answer.get(key, [])
            marker = answer.get("NextMarker")
            if not marker:
                return


def _forward_weights(rule: Mapping[str, Any]) -> dict[str, int]:
    """Target group ARN -> weight of the rule's forward action ({} when it does not forward)."""
    for action in rule.get("Actions") or []:
        if action.get("Type") != "forward":
            continue
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
        if groups:
            return {str(g["TargetGroupArn"]): int(g.get("Weight", 1)) for g in groups}
        if action.get("TargetGroupArn"):
            return {str(action["TargetGroupArn"]): 1}
    return {}


def _condition(rule: Mapping[str, Any], field: str) -> tuple[str, ...]:
    """The values of a rule's ``host-header`` or ``path-pattern`` condition."""
    config = {"host-header": "HostHeaderConfig", "path-pattern": "PathPatternConfig"}[field]
    values: list[str] = []
    for condition in rule.get("Conditions") or []:
        if condition.get("Field") == field:
            values.extend(condition.get(config, {}).get("Values") or condition.get("Values") or [])
    return tuple(values)
