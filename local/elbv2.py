"""What the load balancer holds for an Ingress: the controller's listener rule, read from ELBv2.

The AWS Load Balancer Controller turns an Ingress into a load balancer, a target
group per backend Service and a listener rule per host and path; it tags what
it makes so that it can find it again:

- the load balancer: ``elbv2.k8s.aws/cluster: <cluster>``, ``ingress.k8s.aws/stack:
  <namespace>/<ingress>`` (an Ingress outside any group is a stack of its own) and
  ``ingress.k8s.aws/resource: LoadBalancer``;
- each target group: ``ingress.k8s.aws/resource: <namespace>/<ingress>-<service>:<port>``.

``IngressRules`` finds the load balancer by those tags and reads the forward
action of the rule for a host, per Service: what the load balancer sends where,
as opposed to what the Ingress's annotation asks. Read-only: Describe calls only.
The local stack's traffic simulator reads the weights here (``--cluster kube
--router alb``); the tests compare them with what the product wrote.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

CLUSTER_TAG = "elbv2.k8s.aws/cluster"
STACK_TAG = "ingress.k8s.aws/stack"
RESOURCE_TAG = "ingress.k8s.aws/resource"


@dataclass(frozen=True)
class ListenerRule:
    """A listener rule of the Ingress's load balancer, its forward weights per Service."""

    rule_arn: str
    listener_arn: str
    load_balancer_arn: str
    hosts: tuple[str, ...]
    weights: dict[str, int]
    """Backend Service name -> weight, as the rule's forward action holds it."""
    target_groups: dict[str, str]
    """Backend Service name -> target group ARN."""


class IngressRules:
    """The listener rules the controller made for one Ingress, read from ELBv2 (boto3 client).

    The load balancer's and the target groups' ARNs are remembered once found
    and looked up again when the load balancer they name is gone.
    """

    def __init__(self, elbv2: Any, cluster: str, namespace: str, ingress: str) -> None:
        self._elbv2 = elbv2
        self.cluster = cluster
        self.namespace = namespace
        self.ingress = ingress
        self._lock = threading.Lock()
        self._load_balancer = ""
        self._services: dict[str, str] = {}

    def load_balancer_arn(self) -> str:
        """The Ingress's load balancer (empty while the controller has made none)."""
        wanted = {
            CLUSTER_TAG: self.cluster,
            STACK_TAG: f"{self.namespace}/{self.ingress}",
            RESOURCE_TAG: "LoadBalancer",
        }
        arns = [
            b["LoadBalancerArn"]
            for page in self._elbv2.get_paginator("describe_load_balancers").paginate()
            for b in page["LoadBalancers"]
        ]
        for description in self._tags(arns):
            tags = {t["Key"]: t["Value"] for t in description["Tags"]}
            if all(tags.get(key) == value for key, value in wanted.items()):
                return str(description["ResourceArn"])
        return ""

    def services(self, load_balancer_arn: str) -> dict[str, str]:
        """Target group ARN -> the backend Service it stands for, by the controller's tag."""
        groups = self._elbv2.describe_target_groups(LoadBalancerArn=load_balancer_arn)
        arns = [g["TargetGroupArn"] for g in groups["TargetGroups"]]
        prefix = f"{self.namespace}/{self.ingress}-"
        named = {}
        for description in self._tags(arns):
            tags = {t["Key"]: t["Value"] for t in description["Tags"]}
            resource = tags.get(RESOURCE_TAG, "")
            if tags.get(CLUSTER_TAG) == self.cluster and resource.startswith(prefix):
                named[str(description["ResourceArn"])] = resource[len(prefix) :].rsplit(":", 1)[0]
        return named

    def rule_for(self, host: str) -> ListenerRule | None:
        """The rule forwarding requests for ``host`` (None until the controller made it)."""
        with self._lock:
            for attempt in range(2):
                if not self._load_balancer or attempt:
                    self._load_balancer = self.load_balancer_arn()
                    self._services = (
                        self.services(self._load_balancer) if self._load_balancer else {}
                    )
                if not self._load_balancer:
                    return None
                try:
                    return self._read(host)
                except self._elbv2.exceptions.LoadBalancerNotFoundException:
                    continue
                except self._elbv2.exceptions.ListenerNotFoundException:
                    continue
            return None

    def weights_for(self, host: str) -> dict[str, int] | None:
        """``rule_for(host).weights``, or None while there is no such rule."""
        rule = self.rule_for(host)
        return dict(rule.weights) if rule is not None else None

    def _read(self, host: str) -> ListenerRule | None:
        listeners = self._elbv2.describe_listeners(LoadBalancerArn=self._load_balancer)
        for listener in listeners["Listeners"]:
            rules = self._elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
            for rule in rules:
                hosts = tuple(
                    value
                    for condition in rule.get("Conditions") or []
                    if condition.get("Field") == "host-header"
                    for value in (condition.get("HostHeaderConfig") or {}).get("Values") or []
                )
                forward = [a for a in rule.get("Actions") or [] if a.get("Type") == "forward"]
                if host not in hosts or not forward:
                    continue
                groups = (forward[0].get("ForwardConfig") or {}).get("TargetGroups") or []
                if not groups and forward[0].get("TargetGroupArn"):
                    groups = [{"TargetGroupArn": forward[0]["TargetGroupArn"], "Weight": 1}]
                if any(g["TargetGroupArn"] not in self._services for g in groups):
                    # A target group made after the last look: read the tags again.
                    self._services = self.services(self._load_balancer)
                weights: dict[str, int] = {}
                arns: dict[str, str] = {}
                for group in groups:
                    service = self._services.get(group["TargetGroupArn"], group["TargetGroupArn"])
                    weights[service] = weights.get(service, 0) + int(group.get("Weight", 1))
                    arns[service] = group["TargetGroupArn"]
                return ListenerRule(
                    rule_arn=rule["RuleArn"],
                    listener_arn=listener["ListenerArn"],
                    load_balancer_arn=self._load_balancer,
                    hosts=hosts,
                    weights=weights,
                    target_groups=arns,
                )
        return None

    def _tags(self, arns: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        # DescribeTags takes at most 20 ARNs.
        for start in range(0, len(arns), 20):
            answer = self._elbv2.describe_tags(ResourceArns=arns[start : start + 20])
            found += answer["TagDescriptions"]
        return found
