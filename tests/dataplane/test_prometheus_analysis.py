"""The Prometheus metric provider judges real traffic: Traefik's counts, scraped by Prometheus.

Real requests go through Traefik, split 50/50 by the seed's HTTPRoute, to pods
answering on their own addresses; blue's image answers 5 % of them 500. The
product's provider, with its default queries for Traefik, reads each colour's
window from the real Prometheus and the one analysis judges it: blue failed on its
error rate, green passed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bluegreen.adapters.metrics import build_metrics
from bluegreen.config import Settings
from bluegreen.domain.metric_queries import MetricProvider
from bluegreen.domain.models import Colour
from bluegreen.domain.ports import TrafficMetrics
from bluegreen.domain.promotion import AnalysisPolicy, Finding, Judgement
from bluegreen.logic.analysis import measure
from local.kube.controlplane import ControlPlane
from local.kube.dataplane import GatewayProxy, PodNetwork, Prometheus
from tests.dataplane.traffic import Route, gateway_route
from tests.waiting import eventually

pytestmark = pytest.mark.kube

REQUESTS = 400
POLICY = AnalysisPolicy(max_error_percent=1.0, max_p99_seconds=1.0, min_requests=50)


@pytest.fixture(scope="module")
def route(
    control_plane: ControlPlane, pod_network: PodNetwork, gateway_proxy: GatewayProxy
) -> Iterator[Route]:
    with gateway_route(control_plane, gateway_proxy, pod_network, "prma") as route:
        yield route


@pytest.fixture(scope="module")
def blue_errs(control_plane: ControlPlane, route: Route) -> Iterator[None]:
    """Blue's image answers 5 % of its requests 500 (the seed's other namespaces too, while
    this module runs: the mark is the image's)."""
    from kubernetes.client import AppsV1Api

    kubelet = control_plane.kubelet
    assert kubelet is not None
    with control_plane.admin_client() as client:
        deployment = AppsV1Api(client).read_namespaced_deployment(
            "blue-deployment", route.namespace
        )
    digest = deployment.spec.template.spec.containers[0].image.split("@", 1)[1]
    kubelet.behaviours.mark(digest, "errors")
    try:
        yield
    finally:
        kubelet.behaviours.mark(digest, "good")


def last_scrape(prometheus: Prometheus) -> float:
    """When Prometheus last scraped the proxy (its ``up`` sample's timestamp)."""
    (found,) = prometheus.query("timestamp(up)")
    return float(found["value"][1])


def scraped_after(prometheus: Prometheus, moment: float) -> None:
    """Waits for a scrape of the proxy taken after ``moment`` (a Unix time)."""
    eventually(f"a scrape after {moment:.3f}", lambda: last_scrape(prometheus) > moment, 15, 0.1)


def test_a_canary_answering_5_percent_5xx_fails_and_a_good_one_passes_on_real_counts(
    route: Route, prometheus: Prometheus, blue_errs: None
) -> None:
    # GIVEN production split 50/50, applied by Traefik
    route.set_weights(50, 50)
    eventually("the status confirming 50/50", route.confirmed, 30)
    eventually("Traefik routing 50/50", lambda: route.serving(50, 50), 15)
    # AND each colour's series exist before the window, 500s included, as under steady
    # traffic (Prometheus' increase() cannot count a series' first sample)
    warm = route.send(200)
    assert len(warm.failures) >= 4, warm
    scraped_after(prometheus, time.time())
    # AND the product's provider with its default queries for Traefik
    settings = dataclasses.replace(
        Settings(),
        namespace=route.namespace,
        metric_provider=MetricProvider.PROMETHEUS,
        prometheus_url=prometheus.url,
    )
    provider = build_metrics(settings, lambda service: None)
    provider.check()

    # WHEN real requests go through the proxy within a window
    start = datetime.now(UTC)
    scraped_after(prometheus, start.timestamp())
    tally = route.send(REQUESTS)
    sent = time.time()
    scraped_after(prometheus, sent)
    end = datetime.now(UTC)

    # THEN the clients saw blue answer 5 % 500, green never
    assert tally.sent == REQUESTS
    assert tally.colours["green"] == REQUESTS // 2
    assert tally.colours["blue"] + len(tally.failures) == REQUESTS // 2
    assert all(failure.startswith("500") for failure in tally.failures)
    assert len(tally.failures) == 10

    # AND from Prometheus' counts the analysis fails blue on its error rate
    blue = judged(provider, Colour.BLUE, start, end)
    assert blue.finding is Finding.FAILED, blue.reasons
    # (increase() extrapolates the counters to the window's edges: a burst inside a window
    # a few scrapes long reads as more requests than were sent, never fewer, since a
    # scrape preceded the first request; the share of 500s is what the rule reads)
    assert REQUESTS // 2 <= blue.requests <= REQUESTS
    assert blue.error_percent == pytest.approx(5.0, abs=1.0)
    assert any("error rate" in reason and "above 1 %" in reason for reason in blue.reasons)
    assert blue.p99_seconds is not None
    assert blue.p99_seconds <= POLICY.max_p99_seconds
    # AND passes green, the good image, on the same window
    green = judged(provider, Colour.GREEN, start, end)
    assert green.finding is Finding.PASSED, green.reasons
    assert REQUESTS // 2 <= green.requests <= REQUESTS
    assert green.error_percent == 0
    assert green.p99_seconds is not None
    assert green.p99_seconds <= POLICY.max_p99_seconds


def test_a_window_without_a_request_to_the_colour_is_inconclusive(
    route: Route, prometheus: Prometheus
) -> None:
    # GIVEN production all on green, as Traefik routes it
    route.set_weights(0, 100)
    eventually("the status confirming 0/100", route.confirmed, 30)
    eventually("Traefik routing 0/100", lambda: route.serving(0, 100), 15)
    # Its API shows the new weights a moment before its data path takes them: wait until
    # requests themselves all reach green.
    eventually("requests reaching green only", lambda: route.send(20).colours == {"green": 20}, 15)
    settings = dataclasses.replace(
        Settings(),
        namespace=route.namespace,
        metric_provider=MetricProvider.PROMETHEUS,
        prometheus_url=prometheus.url,
    )
    provider = build_metrics(settings, lambda service: None)

    # WHEN a window passes with requests to green only
    start = datetime.now(UTC)
    scraped_after(prometheus, start.timestamp())
    assert route.send(100).colours == {"green": 100}
    scraped_after(prometheus, time.time())
    end = datetime.now(UTC)

    # THEN blue's reading is inconclusive: never a pass without traffic
    blue = judged(provider, Colour.BLUE, start, end)
    assert blue.finding is Finding.INCONCLUSIVE, blue.reasons


def judged(provider: TrafficMetrics, colour: Colour, start: datetime, end: datetime) -> Judgement:
    found = measure(provider, None, (), POLICY, colour, start=start, end=end, weight=50)
    print(f"{colour.value} over {(end - start).total_seconds():.1f}s: {found.describe()}")
    return found
