"""Prometheus scrapes Traefik: its request counter per service shows what each colour served.

What the canary analysis will read (Amazon Managed Service for Prometheus in AWS):
after real requests through the proxy, a PromQL query of
``traefik_service_requests_total`` per Service returns a series for each colour,
counting exactly the requests each colour answered.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.kube.controlplane import ControlPlane
from local.kube.dataplane import GatewayProxy, PodNetwork, Prometheus
from tests.dataplane.traffic import Route, gateway_route
from tests.waiting import eventually

pytestmark = pytest.mark.kube


@pytest.fixture(scope="module")
def route(
    control_plane: ControlPlane, pod_network: PodNetwork, gateway_proxy: GatewayProxy
) -> Iterator[Route]:
    with gateway_route(control_plane, gateway_proxy, pod_network, "prom") as route:
        yield route


def test_the_request_counter_per_service_has_a_series_for_each_colour(
    route: Route, prometheus: Prometheus
) -> None:
    route.set_weights(50, 50)
    eventually("the status confirming 50/50", route.confirmed, 30)
    eventually("Traefik routing 50/50", lambda: route.serving(50, 50), 15)
    tally = route.send(200)
    assert tally.failures == []

    query = (
        "sum by (service) "
        f'(traefik_service_requests_total{{service=~"{route.namespace}-.*", code="200"}})'
    )
    seen = {
        f"{route.namespace}-{colour}-service-http-80@kubernetesgateway": count
        for colour, count in tally.colours.items()
    }

    def counted() -> dict[str, int] | None:
        found = {r["metric"]["service"]: int(float(r["value"][1])) for r in prometheus.query(query)}
        return found if found == seen else None

    eventually(f"Prometheus counting {seen}", counted, 30, 0.5)
    assert set(tally.colours) == {"blue", "green"}
