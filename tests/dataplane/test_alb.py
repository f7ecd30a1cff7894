"""The real AWS Load Balancer Controller reconciles the alb router's Ingress into moto's ELBv2.

The seed's Ingress (``web``) forwards its production rule to the two per-colour
Services through ``alb.ingress.kubernetes.io/actions.production-weights``; the
controller must turn it into a load balancer, a target group per colour (holding
that colour's pod addresses) and a listener rule whose forward action carries the
weights, and follow the annotation when the weights move. ELBv2 is read with
boto3 against moto, as the alb router will read it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from local.kube.controlplane import ControlPlane
from local.kube.dataplane import (
    AwsNetwork,
    LoadBalancerController,
    ingress_annotations,
    seed_network,
)
from tests.dataplane.support import seeded_namespace
from tests.waiting import eventually

pytestmark = pytest.mark.kube

REGION = "us-west-2"
HOST = "www.example.com"


@dataclass
class Alb:
    namespace: str
    elbv2: Any
    network: AwsNetwork
    plane: ControlPlane

    def set_weights(self, blue: int, green: int) -> None:
        """What the alb router writes: the production action's weights (one patch)."""
        from kubernetes.client import NetworkingV1Api

        action = {
            "type": "forward",
            "forwardConfig": {
                "targetGroups": [
                    {"serviceName": "blue-service", "servicePort": "80", "weight": blue},
                    {"serviceName": "green-service", "servicePort": "80", "weight": green},
                ]
            },
        }
        annotations = {
            **ingress_annotations(self.network),
            "alb.ingress.kubernetes.io/actions.production-weights": json.dumps(action),
        }
        with self.plane.admin_client() as client:
            NetworkingV1Api(client).patch_namespaced_ingress(
                "web", self.namespace, {"metadata": {"annotations": annotations}}
            )

    def production_weights(self) -> dict[str, int] | None:
        """The weights per Service of the listener rule for ``HOST``, as ELBv2 has them."""
        services = self.target_groups()
        for balancer in self.elbv2.describe_load_balancers()["LoadBalancers"]:
            listeners = self.elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])
            for listener in listeners["Listeners"]:
                for rule in self.elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]:
                    hosts = [
                        value
                        for condition in rule["Conditions"]
                        if condition["Field"] == "host-header"
                        for value in condition["HostHeaderConfig"]["Values"]
                    ]
                    forward = [a for a in rule["Actions"] if a["Type"] == "forward"]
                    if hosts == [HOST] and forward:
                        groups = forward[0]["ForwardConfig"]["TargetGroups"]
                        return {
                            services.get(g["TargetGroupArn"], g["TargetGroupArn"]): g["Weight"]
                            for g in groups
                        }
        return None

    def target_groups(self) -> dict[str, str]:
        """Target group ARN -> the Service it stands for (the controller's resource tag)."""
        arns = [g["TargetGroupArn"] for g in self.elbv2.describe_target_groups()["TargetGroups"]]
        if not arns:
            return {}
        named = {}
        for description in self.elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]:
            tags = {t["Key"]: t["Value"] for t in description["Tags"]}
            # "<namespace>/<ingress>-<service>:<port>"
            resource = tags.get("ingress.k8s.aws/resource", "")
            if resource.startswith(f"{self.namespace}/web-"):
                service = resource.split("/", 1)[1].removeprefix("web-").split(":")[0]
                named[description["ResourceArn"]] = service
        return named


@pytest.fixture(scope="module")
def alb(control_plane: ControlPlane, moto_url: str) -> Iterator[Alb]:
    from kubernetes.client import CustomObjectsApi, NetworkingV1Api
    from kubernetes.client.exceptions import ApiException

    aws = {
        "endpoint_url": moto_url,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    elbv2 = boto3.client("elbv2", **aws)
    network = seed_network(boto3.client("ec2", **aws))
    with (
        seeded_namespace(control_plane, "alb") as namespace,
        LoadBalancerController(
            control_plane,
            moto_url,
            REGION,
            network.vpc_id,
            "eks-bluegreen-local",
            watch_namespace=namespace,
        ),
    ):
        yield Alb(namespace, elbv2, network, control_plane)

        # The controller's finalizer holds the Ingress until it has deleted the load
        # balancer: delete it while the controller still runs.
        with control_plane.admin_client() as client:
            ingresses = NetworkingV1Api(client)
            ingresses.delete_namespaced_ingress("web", namespace)

            def gone() -> bool:
                try:
                    ingresses.read_namespaced_ingress("web", namespace)
                except ApiException as exc:
                    return bool(exc.status == 404)
                return False

            eventually("the Ingress deleted by its controller", gone, 60)
            bindings = CustomObjectsApi(client)
            eventually(
                "its TargetGroupBindings deleted by the controller",
                lambda: (
                    not bindings.list_namespaced_custom_object(
                        "elbv2.k8s.aws", "v1beta1", namespace, "targetgroupbindings"
                    )["items"]
                ),
                60,
            )
        eventually(
            "the load balancer deleted",
            lambda: not elbv2.describe_load_balancers()["LoadBalancers"],
            30,
        )


def test_the_ingress_weights_become_the_listener_rule_and_follow_a_change(alb: Alb) -> None:
    alb.set_weights(90, 10)
    weights = eventually(
        "the listener rule forwarding 90/10",
        lambda: (w := alb.production_weights()) == {"blue-service": 90, "green-service": 10} and w,
        90,
        0.5,
    )
    assert weights == {"blue-service": 90, "green-service": 10}

    balancers = alb.elbv2.describe_load_balancers()["LoadBalancers"]
    assert len(balancers) == 1
    assert balancers[0]["Scheme"] == "internet-facing"
    assert balancers[0]["VpcId"] == alb.network.vpc_id
    assert sorted(z["SubnetId"] for z in balancers[0]["AvailabilityZones"]) == sorted(
        alb.network.subnet_ids
    )
    assert balancers[0]["SecurityGroups"] == [alb.network.security_group_id]
    assert sorted(alb.target_groups().values()) == ["blue-service", "green-service"]

    alb.set_weights(50, 50)
    eventually(
        "the listener rule forwarding 50/50",
        lambda: alb.production_weights() == {"blue-service": 50, "green-service": 50},
        60,
        0.5,
    )


def test_each_colours_target_group_holds_its_pods(alb: Alb) -> None:
    from kubernetes.client import CoreV1Api

    alb.set_weights(90, 10)
    with alb.plane.admin_client() as client:
        pods = CoreV1Api(client).list_namespaced_pod(alb.namespace).items
    addresses = {
        colour: sorted(p.status.pod_ip for p in pods if p.metadata.labels.get("app") == colour)
        for colour in ("blue", "green")
    }

    def registered() -> dict[str, list[str]] | None:
        found = {}
        for arn, service in alb.target_groups().items():
            health = alb.elbv2.describe_target_health(TargetGroupArn=arn)
            found[service.removesuffix("-service")] = sorted(
                t["Target"]["Id"] for t in health["TargetHealthDescriptions"]
            )
        return found if found == addresses else None

    eventually("each colour's pods registered as its targets", registered, 60, 0.5)
