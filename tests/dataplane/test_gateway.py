"""Real requests through Traefik split by the gateway router's HTTPRoute, to pods on their IPs.

The seed's two Deployments run in a namespace created while the kubelet serves
pods in the pod network: each pod answers HTTP on its own address with its
colour. Traefik programs the seed's HTTPRoute (weighted ``backendRefs`` to the
per-colour Services), reports ``status.parents[]``, and carries the requests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.kube.controlplane import ControlPlane
from local.kube.dataplane import GATEWAY_CONTROLLER, GatewayProxy, PodNetwork
from tests.dataplane.traffic import Route, gateway_route
from tests.waiting import eventually

pytestmark = pytest.mark.kube

REQUESTS = 400
TOLERANCE = 5.0
"""Percentage points. A binomial 90/10 split over 400 requests has a standard deviation
of 1.5 points, so 5 is more than three of them; Traefik's weighted round robin is
in fact exact."""


@pytest.fixture(scope="module")
def route(
    control_plane: ControlPlane, pod_network: PodNetwork, gateway_proxy: GatewayProxy
) -> Iterator[Route]:
    with gateway_route(control_plane, gateway_proxy, pod_network, "gw") as route:
        yield route


def test_the_proxy_reports_the_route_accepted_with_its_references_resolved(route: Route) -> None:
    found = eventually("the HTTPRoute's status for its generation", route.confirmed, 30)

    (parent,) = found["status"]["parents"]
    assert parent["controllerName"] == GATEWAY_CONTROLLER
    assert parent["parentRef"]["name"] == "web-gateway"
    for condition in parent["conditions"]:
        assert condition["observedGeneration"] == found["metadata"]["generation"]
    assert {c["type"]: c["status"] for c in parent["conditions"]} == {
        "Accepted": "True",
        "ResolvedRefs": "True",
    }


def test_requests_split_by_the_weights_then_all_go_to_green_after_a_flip(route: Route) -> None:
    generation = route.set_weights(90, 10)
    confirmed = eventually("the status confirming 90/10", route.confirmed, 30)
    assert confirmed["metadata"]["generation"] == generation
    # The status is written when Traefik has built the configuration; it routes by it a
    # throttle later (2 s).
    eventually("Traefik routing 90/10", lambda: route.serving(90, 10), 15)

    tally = route.send(REQUESTS)

    assert tally.failures == []
    assert set(tally.colours) == {"blue", "green"}
    blue = 100.0 * tally.colours["blue"] / REQUESTS
    assert abs(blue - 90.0) <= TOLERANCE, tally
    assert abs((100.0 - blue) - 10.0) <= TOLERANCE, tally

    generation = route.set_weights(0, 100)
    confirmed = eventually("the status confirming 0/100", route.confirmed, 30)
    assert confirmed["metadata"]["generation"] == generation
    eventually("Traefik routing 0/100", lambda: route.serving(0, 100), 15)

    tally = route.send(REQUESTS)

    assert tally.failures == []
    assert tally.colours == {"green": REQUESTS}


def test_the_canary_rule_sends_everything_to_the_canary_colour(route: Route) -> None:
    eventually("the HTTPRoute's status for its generation", route.confirmed, 30)
    eventually(
        "Traefik routing the canary rule to blue",
        lambda: (
            route.proxy.serving_weights(route.namespace, route.name)[0]
            == {"blue-service": 100, "green-service": 0}
        ),
        15,
    )
    colours = set()
    for _ in range(20):
        answer = route.network.request(
            route.proxy.url + "/", headers={"Host": "www.example.com", "x-canary": "true"}
        )
        assert answer.status == 200
        colours.add(answer.json()["colour"])
    assert colours == {"blue"}
