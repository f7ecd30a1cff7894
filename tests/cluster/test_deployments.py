"""A colour's Deployment: its image (read, patch, no-op, conflict) and its rollout."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from bluegreen.adapters.kube.client import api_client_for
from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.config import Settings
from bluegreen.domain.errors import ClusterObjectMissing
from bluegreen.domain.models import Colour, RolloutState
from local.cluster import Clock, ClusterEmulator
from tests.backends import Backend
from tests.cluster.conftest import TIMEOUT, RequestLog, intercept
from tests.cluster.test_canary_env import NEW_IMAGE, SEED_IMAGE

SIDECAR = {"name": "metrics", "image": "prom/statsd-exporter:v0.28.0"}


def containers(backend: Backend, colour: Colour) -> dict[str, dict[str, Any]]:
    deployment = backend.get("deployments", f"{colour.value}-deployment")
    assert deployment is not None
    return {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}


def add_sidecar(deployment: dict[str, Any]) -> None:
    deployment["spec"]["template"]["spec"]["containers"].append(dict(SIDECAR))


def test_deployment_image_is_the_configured_containers(cluster: KubernetesCluster) -> None:
    # GIVEN the default seed
    # WHEN the blue Deployment's image is read
    # THEN it is the web container's image
    assert cluster.deployment_image(Colour.BLUE) == SEED_IMAGE


def test_set_image_patches_only_the_configured_container(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN the green Deployment runs a sidecar next to web
    backend.mutate("deployments", "green-deployment", add_sidecar)

    # WHEN web's image is set to a new digest
    changed = cluster.set_deployment_image(Colour.GREEN, NEW_IMAGE)

    # THEN web runs it, the sidecar is untouched, and blue was not touched at all
    assert changed
    after = containers(backend, Colour.GREEN)
    assert after["web"]["image"] == NEW_IMAGE
    assert (after["metrics"]["name"], after["metrics"]["image"]) == (
        SIDECAR["name"],
        SIDECAR["image"],
    )
    assert containers(backend, Colour.BLUE)["web"]["image"] == SEED_IMAGE
    assert cluster.deployment_image(Colour.GREEN) == NEW_IMAGE


def test_set_image_already_so_writes_nothing(
    cluster: KubernetesCluster, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN blue already runs the seed image
    log = request_log()

    # WHEN the same image is set
    changed = cluster.set_deployment_image(Colour.BLUE, SEED_IMAGE)

    # THEN nothing was written (so no new ReplicaSet, no restart)
    assert not changed
    assert log.writes() == []


def test_set_image_that_loses_a_race_rereads_and_retries(
    cluster: KubernetesCluster, backend: Backend, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN someone changes the Deployment right after the adapter read it
    intercept(
        cluster,
        after=lambda method, url: method == "GET" and url.endswith("/blue-deployment"),
        action=lambda: backend.mutate("deployments", "blue-deployment", add_sidecar),
    )
    log = request_log()

    # WHEN the image is set
    changed = cluster.set_deployment_image(Colour.BLUE, NEW_IMAGE)

    # THEN the first patch was refused (stale resourceVersion), the retry applied on top of
    # the other change, and both changes are there
    assert changed
    assert [m for m, _ in log.all()] == ["GET", "PATCH", "GET", "PATCH"]
    after = containers(backend, Colour.BLUE)
    assert after["web"]["image"] == NEW_IMAGE
    assert after["metrics"]["image"] == SIDECAR["image"]


def test_a_deployment_without_the_configured_container_is_named(
    make_cluster: Callable[..., KubernetesCluster], settings: Settings
) -> None:
    # GIVEN settings naming a container the Deployments do not have
    cluster = make_cluster(replace(settings, container_name="php"))

    # WHEN the image is read or set
    # THEN the error names the Deployment, the container wanted and the ones it has
    with pytest.raises(ClusterObjectMissing, match=r"no container named 'php' .*web"):
        cluster.deployment_image(Colour.BLUE)
    with pytest.raises(ClusterObjectMissing, match="blue-deployment"):
        cluster.set_deployment_image(Colour.BLUE, NEW_IMAGE)


def test_a_deployment_that_does_not_exist_is_named(
    make_cluster: Callable[..., KubernetesCluster], settings: Settings
) -> None:
    # GIVEN a Deployment name pattern that matches nothing in the namespace
    cluster = make_cluster(replace(settings, deployment_name_pattern="wp-{colour}"))

    # WHEN a rollout is read
    # THEN the missing Deployment is named
    with pytest.raises(ClusterObjectMissing, match='Deployment "wp-green"'):
        cluster.rollout(Colour.GREEN)


# rollout ------------------------------------------------------------------------------------


def test_seeded_rollout_is_complete(cluster: KubernetesCluster) -> None:
    # GIVEN the default seed, converged
    # WHEN blue's rollout is read
    state = cluster.rollout(Colour.BLUE)

    # THEN it is complete with both replicas, on the seed image
    assert state.complete
    assert not state.stalled
    assert (state.desired, state.updated, state.available, state.ready) == (2, 2, 2, 2)
    assert state.image == SEED_IMAGE
    assert state.observed_generation >= state.generation


@pytest.fixture
def stepped() -> Iterator[tuple[ClusterEmulator, KubernetesCluster]]:
    """An emulator whose time moves only when told, and an adapter on it."""
    with ClusterEmulator(seed="default", clock=Clock.stepped()) as emulator:
        settings = Settings(kube_api_url=emulator.url)
        yield emulator, KubernetesCluster(settings, api_client_for(settings), timeout=TIMEOUT)


def test_a_rollout_under_way_is_progressing_then_complete(
    stepped: tuple[ClusterEmulator, KubernetesCluster],
) -> None:
    # GIVEN a new image was set and time has not moved yet
    emulator, cluster = stepped
    cluster.set_deployment_image(Colour.GREEN, NEW_IMAGE)

    # WHEN the rollout is read now, and after the rollout's time has passed
    during = cluster.rollout(Colour.GREEN)
    for _ in range(6):
        emulator.clock.advance(10)
    after = cluster.rollout(Colour.GREEN)

    # THEN it was progressing (saying what it waits for), then complete on the new image
    assert not during.complete
    assert not during.stalled
    assert during.message.startswith('Waiting for deployment "green-deployment"')
    assert after.complete
    assert after.image == NEW_IMAGE


def test_a_broken_image_stalls_the_rollout_with_the_controllers_message(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN an image whose pods never become ready
    backend.mark_image(NEW_IMAGE, "CrashLoopBackOff")

    # WHEN it is rolled out and the progress deadline passes (at once on the instant
    # emulator; after the test namespace's short deadline on the real controller)
    cluster.set_deployment_image(Colour.GREEN, NEW_IMAGE)

    def stalled() -> RolloutState | None:
        found = cluster.rollout(Colour.GREEN)
        return found if found.stalled else None

    state = backend.eventually("the rollout stalled", stalled, seconds=60)

    # THEN the rollout is stalled, with the deadline message, and never complete
    assert state.stalled
    assert not state.complete
    assert 'deployment "green-deployment" exceeded its progress deadline' in state.message
    assert "green-deployment" in state.message


def test_snapshot_agrees_with_the_single_reads(cluster: KubernetesCluster) -> None:
    # GIVEN the default seed
    # WHEN everything is read at once and piece by piece
    snapshot = cluster.snapshot()

    # THEN both say the same
    assert snapshot.canary_env == cluster.canary_env()
    assert snapshot.selectors == cluster.service_selectors()
    assert snapshot.rollouts == {c: cluster.rollout(c) for c in Colour}
