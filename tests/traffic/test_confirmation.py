"""A move of traffic is done once the data plane applies it, and put back when it does not.

Each router reads its own data plane (``Router.confirm``): the production Service's
EndpointSlices (selector), the Gateway's report on the HTTPRoute (gateway), ELBv2's
listener rules and target health (alb; here moto's, programmed by the stand-in
controller ``local.alb_controller`` whenever the product waits). The selector's runs on
both backends (the real control plane's EndpointSlice controller); the faults below
need what only the emulator and the stand-in controller give (a refused route, a
controller behind or refusing, a colour without targets).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bluegreen.domain.errors import TrafficNotConfirmed
from bluegreen.domain.models import Colour
from bluegreen.domain.traffic import RouterKind, Weights
from local.cluster import ClusterEmulator
from tests.backends import Backend, emulator_backend
from tests.traffic.conftest import (
    load_balancer_controller,
    routed,
    stored_canary_env,
    stored_weights,
)

BLUE, GREEN = Colour.BLUE, Colour.GREEN


def test_a_switch_is_confirmed_by_the_production_services_endpoint_slices(
    backend: Backend,
) -> None:
    # GIVEN the selector router on the seed (green production, both colours running)
    cluster = routed(backend, RouterKind.SELECTOR)

    # WHEN green becomes the canary (so blue production)
    cluster.switch_roles(GREEN)

    # THEN the switch returned once production's EndpointSlices list only blue's ready pods
    blue_pods = {
        pod["metadata"]["name"]
        for pod in backend.list("pods")
        if (pod["metadata"].get("labels") or {}).get("app") == "blue"
    }
    slices = [
        piece
        for piece in _endpoint_slices(backend)
        if piece["metadata"]["labels"]["kubernetes.io/service-name"] == "production-service"
    ]
    listed = {
        endpoint["targetRef"]["name"]
        for piece in slices
        for endpoint in piece.get("endpoints") or []
        if endpoint["conditions"].get("ready")
    }
    assert listed
    assert listed <= blue_pods
    confirmation = cluster.confirm_traffic()
    assert confirmation.confirmed, confirmation.applied
    assert "ready blue endpoint" in confirmation.applied


def test_a_route_the_gateway_does_not_accept_is_put_back_with_a_named_error(
    cluster_emulator: ClusterEmulator,
) -> None:
    # GIVEN the gateway router, and a Gateway that does not accept the HTTPRoute
    on = emulator_backend(cluster_emulator)
    cluster = routed(on, RouterKind.GATEWAY, confirm_seconds=0.5)
    cluster_emulator.faults.refuse_route("web")

    # WHEN 10 % of production goes to the canary blue
    with pytest.raises(TrafficNotConfirmed) as refused:
        cluster.shift_traffic(Weights(blue=10, green=90), BLUE)

    # THEN the error names the object, what was written and what the Gateway reports
    said = str(refused.value)
    assert 'HTTPRoute "web"' in said
    assert "blue 10 %, green 90 %" in said
    assert "Accepted False (NotAllowedByListeners" in said
    assert "the previous traffic was put back" in said
    # AND the route and canaryEnv say what they said before
    assert stored_weights(on, RouterKind.GATEWAY)[0] == {"blue": 0, "green": 100}
    assert "weights" not in stored_canary_env(on) or stored_canary_env(on)["weights"] == {
        "blue": 0,
        "green": 100,
    }


def test_a_flip_returns_only_once_the_listener_rule_holds_the_weights(
    cluster_emulator: ClusterEmulator,
) -> None:
    # GIVEN the alb router and a load balancer controller three passes behind
    on = emulator_backend(cluster_emulator)
    cluster = routed(on, RouterKind.ALB)
    controller, elbv2 = load_balancer_controller(on)
    controller.lag = 3

    # WHEN 10 % of production goes to the canary blue
    cluster.shift_traffic(Weights(blue=10, green=90), BLUE)

    # THEN by the time the move returns, ELBv2's rule for the production path holds it
    assert _production_rule_weights(elbv2) == {"blue-service": 10, "green-service": 90}
    held = cluster.confirm_traffic()
    assert held.confirmed, held.applied
    assert held.observed == Weights(blue=10, green=90)


def test_a_controller_that_never_applies_the_ingress_puts_the_move_back(
    cluster_emulator: ClusterEmulator,
) -> None:
    # GIVEN the alb router and a controller that refuses the Ingress (a bad annotation)
    on = emulator_backend(cluster_emulator)
    cluster = routed(on, RouterKind.ALB, confirm_seconds=0.5)
    controller, elbv2 = load_balancer_controller(on)
    controller.refuse = True

    # WHEN 10 % of production goes to the canary blue
    with pytest.raises(TrafficNotConfirmed) as refused:
        cluster.shift_traffic(Weights(blue=10, green=90), BLUE)

    # THEN the move is put back, and the error says what the load balancer holds
    said = str(refused.value)
    assert 'Ingress "web"' in said
    assert "its production rule forwards blue 0 %, green 100 %, not blue 10 %, green 90 %" in said
    assert "the previous traffic was put back" in said
    assert stored_weights(on, RouterKind.ALB)[0] == {"blue": 0, "green": 100}
    assert _production_rule_weights(elbv2) == {"blue-service": 0, "green-service": 100}


def test_a_colour_without_healthy_targets_is_never_given_weight(
    cluster_emulator: ClusterEmulator,
) -> None:
    # GIVEN the alb router, and blue (the canary) with no pod ready: no target registered
    on = emulator_backend(cluster_emulator)
    cluster = routed(on, RouterKind.ALB, confirm_seconds=0.5)
    controller, elbv2 = load_balancer_controller(on)

    def no_replicas(deployment: dict[str, Any]) -> None:
        deployment["spec"]["replicas"] = 0

    on.mutate("deployments", "blue-deployment", no_replicas)
    controller.sync()

    # WHEN 10 % of production is asked for blue
    with pytest.raises(TrafficNotConfirmed) as refused:
        cluster.shift_traffic(Weights(blue=10, green=90), BLUE)

    # THEN nothing was written: the Ingress, canaryEnv and the listener rule keep blue at 0
    said = str(refused.value)
    assert "blue's target group has no registered target" in said
    assert "nothing was changed" in said
    assert stored_weights(on, RouterKind.ALB)[0] == {"blue": 0, "green": 100}
    assert _production_rule_weights(elbv2) == {"blue-service": 0, "green-service": 100}


def _endpoint_slices(backend: Backend) -> list[dict[str, Any]]:
    answer: dict[str, Any] = backend._rest(
        "GET", f"/apis/discovery.k8s.io/v1/namespaces/{backend.namespace}/endpointslices", None
    )
    return list(answer["items"])


def _production_rule_weights(elbv2: Any) -> dict[str, str | int]:
    """The forward weights per Service of ELBv2's rule for the seed's production host."""
    groups = {
        g["TargetGroupArn"]: g["TargetGroupName"]
        for g in elbv2.describe_target_groups()["TargetGroups"]
    }
    for balancer in elbv2.describe_load_balancers()["LoadBalancers"]:
        for listener in elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])[
            "Listeners"
        ]:
            for rule in elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]:
                hosts = [
                    v
                    for c in rule["Conditions"]
                    if c["Field"] == "host-header"
                    for v in c["HostHeaderConfig"]["Values"]
                ]
                if hosts != ["www.example.com"]:
                    continue
                forward = rule["Actions"][0]["ForwardConfig"]["TargetGroups"]
                return {
                    _service_of(elbv2, g["TargetGroupArn"], groups): g["Weight"] for g in forward
                }
    return {"": json.dumps("no rule")}


def _service_of(elbv2: Any, arn: str, names: dict[str, str]) -> str:
    tags = elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
    resource = next(t["Value"] for t in tags if t["Key"] == "ingress.k8s.aws/resource")
    return str(resource.split("/", 1)[1].removeprefix("web-").split(":")[0])
