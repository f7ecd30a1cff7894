"""A stand-in for the AWS Load Balancer Controller: the alb router's Ingress made into ELBv2.

Where the real controller does not run (the emulator, tests of the router on either
backend), this one does the part of its job the product reads back: one load
balancer per Ingress, a target group per Service the action annotations name, a
listener rule per Ingress path whose forward action carries the annotation's weights,
and each target group's targets the Service's ready endpoints (read from its
EndpointSlices, as the real controller's TargetGroupBinding does). Every object carries
the real controller's tags (``elbv2.k8s.aws/cluster``, ``ingress.k8s.aws/stack``,
``ingress.k8s.aws/resource``), so the product's ELBv2 reader
(``bluegreen.adapters.elbv2``) finds them as it finds the real controller's.

``sync()`` reconciles once and is idempotent; the stack calls it on a timer, the tests
from the product's own waits. ``lag`` makes it apply a change only on the sync after
the one that first saw it (a controller behind its queue); ``refuse`` makes it ignore
the Ingress, as the real one does with an annotation it cannot parse.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

CLUSTER_TAG = "elbv2.k8s.aws/cluster"
STACK_TAG = "ingress.k8s.aws/stack"
RESOURCE_TAG = "ingress.k8s.aws/resource"
ACTION_PREFIX = "alb.ingress.kubernetes.io/actions."

logger = logging.getLogger(__name__)


class SimulatedLoadBalancerController:
    """Reconciles one namespace's Ingresses into an ELBv2 (moto's) as the real controller."""

    def __init__(
        self, api_client: Any, elbv2: Any, ec2: Any, cluster_name: str, namespace: str
    ) -> None:
        self._api_client = api_client
        self._elbv2 = elbv2
        self._ec2 = ec2
        self._cluster = cluster_name
        self._namespace = namespace
        self.lag = 0
        """Syncs a change waits before it is applied (0: at once)."""
        self.refuse = False
        """Ignore every Ingress (an annotation the controller cannot parse)."""
        self._pending: dict[str, tuple[str, int]] = {}  # ingress -> (version seen, syncs since)
        self._lock = threading.Lock()
        self._subnets: list[str] | None = None
        self._vpc = ""

    @contextlib.contextmanager
    def running(self, interval: float = 0.2) -> Iterator[SimulatedLoadBalancerController]:
        """Reconcile every ``interval`` seconds in a thread, while the block runs."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                try:
                    self.sync()
                except Exception:  # the next pass retries, as the real controller requeues
                    logger.warning("load balancer sync failed", exc_info=True)
                stop.wait(interval)

        thread = threading.Thread(target=loop, name="alb-controller", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=10)

    def sync(self) -> None:
        """Reconcile every Ingress of the namespace once."""
        from kubernetes.client import NetworkingV1Api

        with self._lock:
            ingresses = NetworkingV1Api(self._api_client).list_namespaced_ingress(
                self._namespace, _preload_content=False
            )
            for ingress in json.loads(ingresses.data).get("items", []):
                if self.refuse or not self._due(ingress):
                    continue
                self._reconcile(ingress)

    def _due(self, ingress: Mapping[str, Any]) -> bool:
        name = ingress["metadata"]["name"]
        version = str(ingress["metadata"].get("resourceVersion"))
        seen, syncs = self._pending.get(name, ("", 0))
        syncs = syncs + 1 if seen == version else 0
        self._pending[name] = (version, syncs)
        return syncs >= self.lag

    # one Ingress ---------------------------------------------------------------------------

    def _reconcile(self, ingress: Mapping[str, Any]) -> None:
        name = ingress["metadata"]["name"]
        stack = f"{self._namespace}/{name}"
        balancer = self._balancer(stack, name)
        listener = self._listener(balancer)
        annotations = ingress["metadata"].get("annotations") or {}
        existing = {
            _key(rule): rule
            for rule in self._elbv2.describe_rules(ListenerArn=listener)["Rules"]
            if not rule.get("IsDefault")
        }
        priority = 0
        for rule in (ingress.get("spec") or {}).get("rules") or []:
            host = rule.get("host")
            for path in (rule.get("http") or {}).get("paths") or []:
                priority += 1
                backend = (path.get("backend") or {}).get("service") or {}
                action = annotations.get(ACTION_PREFIX + str(backend.get("name")))
                groups = self._forward(stack, name, action, backend)
                conditions = _conditions(host, str(path.get("path") or "/"))
                actions = [
                    {
                        "Type": "forward",
                        "ForwardConfig": {
                            "TargetGroups": [
                                {"TargetGroupArn": arn, "Weight": weight}
                                for arn, weight in groups.items()
                            ]
                        },
                    }
                ]
                found = existing.get(_key({"Conditions": conditions}))
                if found is None:
                    self._elbv2.create_rule(
                        ListenerArn=listener,
                        Priority=priority,
                        Conditions=conditions,
                        Actions=actions,
                        Tags=[{"Key": RESOURCE_TAG, "Value": f"80:{priority}"}],
                    )
                elif _weights(found) != groups:
                    self._elbv2.modify_rule(RuleArn=found["RuleArn"], Actions=actions)

    def _forward(
        self, stack: str, ingress: str, action: str | None, backend: Mapping[str, Any]
    ) -> dict[str, int]:
        """Target group ARN -> weight for a path: the action's groups, or its Service's."""
        if action is not None:
            groups = json.loads(action).get("forwardConfig", {}).get("targetGroups", [])
            return {
                self._target_group(
                    stack, ingress, str(g["serviceName"]), str(g["servicePort"])
                ): int(g.get("weight", 1))
                for g in groups
            }
        port = backend.get("port") or {}
        service_port = str(port.get("number") or port.get("name") or "80")
        return {self._target_group(stack, ingress, str(backend.get("name")), service_port): 1}

    # ELBv2 objects ---------------------------------------------------------------------------

    def _balancer(self, stack: str, ingress: str) -> str:
        arns = [
            b["LoadBalancerArn"] for b in self._elbv2.describe_load_balancers()["LoadBalancers"]
        ]
        for start in range(0, len(arns), 20):
            for description in self._elbv2.describe_tags(ResourceArns=arns[start : start + 20])[
                "TagDescriptions"
            ]:
                tags = {t["Key"]: t["Value"] for t in description["Tags"]}
                if tags.get(STACK_TAG) == stack and tags.get(CLUSTER_TAG) == self._cluster:
                    return str(description["ResourceArn"])
        # Named as the controller names them: short parts and a hash of what is unique.
        unique = zlib.crc32(f"{self._cluster}/{stack}".encode())
        created = self._elbv2.create_load_balancer(
            Name=f"k8s-{self._namespace[:8]}-{ingress[:8]}-{unique:08x}",
            Subnets=self._network(),
            Scheme="internet-facing",
            Tags=[
                {"Key": CLUSTER_TAG, "Value": self._cluster},
                {"Key": STACK_TAG, "Value": stack},
                {"Key": RESOURCE_TAG, "Value": "LoadBalancer"},
            ],
        )
        return str(created["LoadBalancers"][0]["LoadBalancerArn"])

    def _listener(self, balancer: str) -> str:
        listeners = self._elbv2.describe_listeners(LoadBalancerArn=balancer)["Listeners"]
        if listeners:
            return str(listeners[0]["ListenerArn"])
        created = self._elbv2.create_listener(
            LoadBalancerArn=balancer,
            Protocol="HTTP",
            Port=80,
            DefaultActions=[
                {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}
            ],
        )
        return str(created["Listeners"][0]["ListenerArn"])

    def _target_group(self, stack: str, ingress: str, service: str, port: str) -> str:
        resource = f"{self._namespace}/{ingress}-{service}:{port}"
        groups = self._elbv2.describe_target_groups()["TargetGroups"]
        arn = ""
        arns = [g["TargetGroupArn"] for g in groups]
        for start in range(0, len(arns), 20):
            for description in self._elbv2.describe_tags(ResourceArns=arns[start : start + 20])[
                "TagDescriptions"
            ]:
                tags = {t["Key"]: t["Value"] for t in description["Tags"]}
                if (
                    tags.get(RESOURCE_TAG) == resource
                    and tags.get(STACK_TAG) == stack
                    and tags.get(CLUSTER_TAG) == self._cluster
                ):
                    arn = str(description["ResourceArn"])
        if not arn:
            created = self._elbv2.create_target_group(
                Name=f"k8s-{service[:12]}-{zlib.crc32(f'{self._cluster}/{resource}'.encode()):08x}",
                Protocol="HTTP",
                Port=int(port) if port.isdigit() else 80,
                VpcId=self._vpc or (self._network() and self._vpc),
                TargetType="ip",
                Tags=[
                    {"Key": CLUSTER_TAG, "Value": self._cluster},
                    {"Key": STACK_TAG, "Value": stack},
                    {"Key": RESOURCE_TAG, "Value": resource},
                ],
            )
            arn = str(created["TargetGroups"][0]["TargetGroupArn"])
        self._register(arn, service)
        return arn

    def _register(self, group: str, service: str) -> None:
        """The Service's ready endpoints as the group's targets, and nothing else."""
        from kubernetes.client import DiscoveryV1Api

        answer = DiscoveryV1Api(self._api_client).list_namespaced_endpoint_slice(
            self._namespace,
            label_selector=f"kubernetes.io/service-name={service}",
            _preload_content=False,
        )
        ready = {
            (address, int(port.get("port") or 80))
            for piece in json.loads(answer.data).get("items", [])
            for port in (piece.get("ports") or [{}])[:1]
            for endpoint in piece.get("endpoints") or []
            if (endpoint.get("conditions") or {}).get("ready") is not False
            for address in endpoint.get("addresses") or []
        }
        held = {
            (d["Target"]["Id"], int(d["Target"]["Port"]))
            for d in self._elbv2.describe_target_health(TargetGroupArn=group)[
                "TargetHealthDescriptions"
            ]
        }
        if ready - held:
            self._elbv2.register_targets(
                TargetGroupArn=group,
                Targets=[{"Id": ip, "Port": port} for ip, port in sorted(ready - held)],
            )
        if held - ready:
            self._elbv2.deregister_targets(
                TargetGroupArn=group,
                Targets=[{"Id": ip, "Port": port} for ip, port in sorted(held - ready)],
            )

    def _network(self) -> list[str]:
        """Two subnets in two zones of a VPC of the pod network's range (made once)."""
        if self._subnets is None:
            vpc = self._ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
            zones = [
                z["ZoneName"] for z in self._ec2.describe_availability_zones()["AvailabilityZones"]
            ][:2]
            self._subnets = [
                self._ec2.create_subnet(
                    VpcId=vpc, CidrBlock=f"10.0.{100 + i}.0/24", AvailabilityZone=zone
                )["Subnet"]["SubnetId"]
                for i, zone in enumerate(zones)
            ]
            self._vpc = vpc
        return self._subnets


def _conditions(host: str | None, path: str) -> list[dict[str, Any]]:
    """The controller's conditions for an Ingress path: its host and ``/x``, ``/x/*``."""
    prefix = path.rstrip("/")
    patterns = ["/*"] if not prefix else [prefix, f"{prefix}/*"]
    conditions: list[dict[str, Any]] = []
    if host:
        conditions.append({"Field": "host-header", "HostHeaderConfig": {"Values": [host]}})
    conditions.append({"Field": "path-pattern", "PathPatternConfig": {"Values": patterns}})
    return conditions


def _key(rule: Mapping[str, Any]) -> str:
    return json.dumps(
        sorted(
            (
                c["Field"],
                tuple(c.get("HostHeaderConfig", c.get("PathPatternConfig", {})).get("Values", [])),
            )
            for c in rule.get("Conditions") or []
        )
    )


def _weights(rule: Mapping[str, Any]) -> dict[str, int]:
    for action in rule.get("Actions") or []:
        if action.get("Type") == "forward":
            return {
                g["TargetGroupArn"]: g.get("Weight", 1)
                for g in (action.get("ForwardConfig") or {}).get("TargetGroups") or []
            }
    return {}
