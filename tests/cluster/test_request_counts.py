"""Kubernetes requests per operation, counted at the emulator (each one is latency and cost)."""

from __future__ import annotations

from collections.abc import Callable

from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.domain.models import Colour
from tests.cluster.conftest import RequestLog
from tests.cluster.test_canary_env import NEW_IMAGE

CONFIGMAP = "/api/v1/namespaces/wp-platform/configmaps/canary-env"
SERVICES = "/api/v1/namespaces/wp-platform/services"
CONFIRMED = [
    ("GET", SERVICES),
    ("GET", "/apis/discovery.k8s.io/v1/namespaces/wp-platform/endpointslices"),
    ("GET", "/api/v1/namespaces/wp-platform/pods"),
]
"""The data plane's report on a switch: the Services, production's EndpointSlices and the
pods of its colour (the emulator's EndpointSlices follow at once: one reading)."""


def test_reading_everything_for_get_services_takes_three_requests(
    cluster: KubernetesCluster, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN the default seed
    log = request_log()

    # WHEN canaryEnv, both rollouts and both selectors are read at once
    cluster.snapshot()

    # THEN that was the ConfigMap, one list of Deployments, one list of Services
    assert log.all() == [
        ("GET", CONFIGMAP),
        ("GET", "/apis/apps/v1/namespaces/wp-platform/deployments"),
        ("GET", SERVICES),
    ]


def test_reading_the_same_through_the_port_takes_four_requests(
    cluster: KubernetesCluster, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN the default seed
    log = request_log()

    # WHEN the same is read with the Cluster port's methods
    cluster.canary_env()
    cluster.rollout(Colour.BLUE)
    cluster.rollout(Colour.GREEN)
    cluster.service_selectors()

    # THEN it took four requests (both Services come from one list)
    assert len(log.all()) == 4


def test_a_switch_without_conflict_takes_six_requests_and_three_to_confirm(
    cluster: KubernetesCluster, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN a namespace switched before
    cluster.switch_roles(Colour.GREEN)
    log = request_log()

    # WHEN the canary is switched
    cluster.switch_roles(Colour.BLUE)

    # THEN three reads (the ConfigMap, the Services, the new canary's Deployment for
    # canaryEnv.image) and three writes: the canary Service, the ConfigMap, the production one;
    # then the three reads of the data plane's report
    assert log.all() == [
        ("GET", CONFIGMAP),
        ("GET", SERVICES),
        ("GET", "/apis/apps/v1/namespaces/wp-platform/deployments/blue-deployment"),
        ("PATCH", f"{SERVICES}/canary-service"),
        ("PUT", CONFIGMAP),
        ("PATCH", f"{SERVICES}/production-service"),
        *CONFIRMED,
    ]


def test_the_first_switch_of_a_namespace_takes_the_same_requests(
    cluster: KubernetesCluster, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN a namespace never switched by this product (no switch generation anywhere)
    log = request_log()

    # WHEN the canary is switched
    cluster.switch_roles(Colour.GREEN)

    # THEN nothing extra: the writes are guarded by the versions just read
    assert [m for m, _ in log.all()] == ["GET", "GET", "GET", "PATCH", "PUT", "PATCH"] + [
        m for m, _ in CONFIRMED
    ]


def test_a_switch_that_is_already_so_takes_two_reads_and_three_to_confirm(
    cluster: KubernetesCluster, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN blue is the canary everywhere
    log = request_log()

    # WHEN blue is made the canary
    cluster.switch_roles(Colour.BLUE)

    # THEN the ConfigMap and the Services were read, nothing written; and the data plane's
    # report read (a switch whose objects say so may still not be applied)
    assert log.all() == [("GET", CONFIGMAP), ("GET", SERVICES), *CONFIRMED]


def test_setting_an_image_takes_two_requests_and_one_when_already_so(
    cluster: KubernetesCluster, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN the default seed
    log = request_log()

    # WHEN a new image is set, then the same image again
    cluster.set_deployment_image(Colour.GREEN, NEW_IMAGE)
    cluster.set_deployment_image(Colour.GREEN, NEW_IMAGE)

    # THEN read + patch, then a read alone
    assert [m for m, _ in log.all()] == ["GET", "PATCH", "GET"]
