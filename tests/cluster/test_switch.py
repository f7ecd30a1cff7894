"""Switching the canary colour: ConfigMap and both Services together, whatever happens."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from bluegreen.adapters.cluster import SWITCH_GENERATION, KubernetesCluster
from bluegreen.domain.errors import ClusterUnavailable
from bluegreen.domain.models import Colour, Role
from local.cluster import ClusterEmulator
from tests.cluster.conftest import NAMESPACE, RequestLog, intercept
from tests.cluster.test_canary_env import NEW_IMAGE, SEED_IMAGE, stored_canary_env


def roles_in(emulator: ClusterEmulator) -> tuple[str, str, str]:
    """(canaryEnv.selector, canary Service's app, production Service's app) as stored."""
    canary = emulator.get("services", NAMESPACE, "canary-service")
    production = emulator.get("services", NAMESPACE, "production-service")
    assert canary is not None
    assert production is not None
    return (
        stored_canary_env(emulator)["selector"],
        canary["spec"]["selector"]["app"],
        production["spec"]["selector"]["app"],
    )


def assert_agreement(emulator: ClusterEmulator) -> str:
    """The ConfigMap and both Services say the same roles; returns the canary colour."""
    selector, canary_app, production_app = roles_in(emulator)
    assert canary_app == selector, (selector, canary_app, production_app)
    assert production_app == Colour(selector).other.value, (selector, canary_app, production_app)
    return selector


def test_switch_moves_configmap_and_both_services(
    cluster: KubernetesCluster, emulator: ClusterEmulator
) -> None:
    # GIVEN blue is the canary, green production
    # WHEN green is made the canary
    changed = cluster.switch_roles(Colour.GREEN)

    # THEN the ConfigMap and both Services say so, and canaryEnv.image was kept
    assert changed
    assert roles_in(emulator) == ("green", "green", "blue")
    assert stored_canary_env(emulator)["image"] == SEED_IMAGE
    assert cluster.service_selectors() == {Role.CANARY: Colour.GREEN, Role.PRODUCTION: Colour.BLUE}


def test_switch_there_and_back_again(cluster: KubernetesCluster, emulator: ClusterEmulator) -> None:
    # GIVEN a namespace where the canary already moved once
    cluster.switch_roles(Colour.GREEN)

    # WHEN it moves back, with a new image for the canary
    changed = cluster.switch_roles(Colour.BLUE, image=NEW_IMAGE)

    # THEN everything says blue again, with the new image
    assert changed
    assert roles_in(emulator) == ("blue", "blue", "green")
    assert stored_canary_env(emulator) == {"selector": "blue", "image": NEW_IMAGE}


def test_switch_to_the_current_canary_writes_nothing(
    cluster: KubernetesCluster, emulator: ClusterEmulator, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN blue is the canary everywhere
    log = request_log()

    # WHEN blue is made the canary
    changed = cluster.switch_roles(Colour.BLUE)

    # THEN nothing changed and nothing was written
    assert not changed
    assert log.writes() == []
    assert roles_in(emulator) == ("blue", "blue", "green")


def test_switch_that_only_changes_the_image_keeps_the_roles(
    cluster: KubernetesCluster, emulator: ClusterEmulator
) -> None:
    # GIVEN blue is the canary
    # WHEN blue is made the canary with a new image
    changed = cluster.switch_roles(Colour.BLUE, image=NEW_IMAGE)

    # THEN the image changed, the roles did not
    assert changed
    assert stored_canary_env(emulator) == {"selector": "blue", "image": NEW_IMAGE}
    assert roles_in(emulator) == ("blue", "blue", "green")


def test_switch_that_loses_the_configmap_race_rereads_and_keeps_the_other_change(
    cluster: KubernetesCluster, emulator: ClusterEmulator, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN another writer sets canaryEnv.image right after the adapter read the ConfigMap
    def other_writer(configmap: dict[str, Any]) -> None:
        configmap["data"]["canaryEnv"] = f'{{"selector":"blue","image":"{NEW_IMAGE}"}}'

    intercept(
        cluster,
        after=lambda method, url: method == "GET" and url.endswith("/configmaps/canary-env"),
        action=lambda: emulator.mutate("configmaps", NAMESPACE, "canary-env", other_writer),
    )
    log = request_log()

    # WHEN green is made the canary
    changed = cluster.switch_roles(Colour.GREEN)

    # THEN the stale write was refused and redone from a fresh read: the other writer's image
    # survives, and the ConfigMap and Services agree on green
    assert changed
    assert [m for m, _ in log.all()][:4] == ["GET", "PUT", "GET", "PUT"]
    assert stored_canary_env(emulator) == {"selector": "green", "image": NEW_IMAGE}
    assert assert_agreement(emulator) == "green"


def test_switch_when_another_switcher_already_did_it(
    cluster: KubernetesCluster,
    emulator: ClusterEmulator,
    make_cluster: Callable[..., KubernetesCluster],
) -> None:
    # GIVEN another switcher makes green the canary between the adapter's read and write
    other = make_cluster()
    intercept(
        cluster,
        after=lambda method, url: method == "GET" and url.endswith("/configmaps/canary-env"),
        action=lambda: other.switch_roles(Colour.GREEN),
    )

    # WHEN this one makes green the canary too
    cluster.switch_roles(Colour.GREEN)

    # THEN the end state is green everywhere, exactly once
    assert assert_agreement(emulator) == "green"
    configmap = emulator.get("configmaps", NAMESPACE, "canary-env")
    assert configmap is not None
    assert configmap["metadata"]["annotations"][SWITCH_GENERATION] == "1"


def test_switch_repairs_services_that_disagree_with_the_configmap(
    cluster: KubernetesCluster, emulator: ClusterEmulator
) -> None:
    # GIVEN somebody pointed the canary Service at green by hand; the ConfigMap says blue
    def point_at_green(service: dict[str, Any]) -> None:
        service["spec"]["selector"]["app"] = "green"

    emulator.mutate("services", NAMESPACE, "canary-service", point_at_green)

    # WHEN blue is made the canary (what the ConfigMap already says)
    changed = cluster.switch_roles(Colour.BLUE)

    # THEN the Service was made to follow the ConfigMap
    assert changed
    assert roles_in(emulator) == ("blue", "blue", "green")


def test_switch_after_a_hand_edit_of_the_configmap_still_ends_in_agreement(
    cluster: KubernetesCluster, emulator: ClusterEmulator
) -> None:
    # GIVEN switches happened, then somebody edited canaryEnv.selector by hand (no generation)
    cluster.switch_roles(Colour.GREEN)
    cluster.switch_roles(Colour.BLUE)
    emulator.mutate(
        "configmaps",
        NAMESPACE,
        "canary-env",
        lambda cm: cm["data"].update(canaryEnv=f'{{"selector":"green","image":"{SEED_IMAGE}"}}'),
    )

    # WHEN blue is made the canary again, then green
    cluster.switch_roles(Colour.BLUE)
    first = roles_in(emulator)
    cluster.switch_roles(Colour.GREEN)

    # THEN each switch ends with the ConfigMap and the Services agreeing
    assert first == ("blue", "blue", "green")
    assert assert_agreement(emulator) == "green"


def test_a_slow_switcher_never_undoes_a_later_switch(
    cluster: KubernetesCluster,
    emulator: ClusterEmulator,
    make_cluster: Callable[..., KubernetesCluster],
) -> None:
    # GIVEN this switcher wrote the ConfigMap (green) and, before it reached the Services,
    # another switcher made blue the canary again, ConfigMap and Services
    cluster.switch_roles(Colour.GREEN)
    cluster.switch_roles(Colour.BLUE)
    other = make_cluster()
    intercept(
        cluster,
        after=lambda method, url: method == "PUT" and url.endswith("/configmaps/canary-env"),
        action=lambda: other.switch_roles(Colour.BLUE),
    )

    # WHEN this switcher goes on to the Services
    cluster.switch_roles(Colour.GREEN)

    # THEN it did not point them back at its own, older wish: the later switch stands
    assert roles_in(emulator) == ("blue", "blue", "green")


def switch_all_at_once(switchers: list[KubernetesCluster], wanted: list[Colour]) -> list[Exception]:
    """Start every switch at the same instant, one thread each; the exceptions they raised."""
    start = threading.Barrier(len(switchers))
    failures: list[Exception] = []

    def switch(cluster: KubernetesCluster, colour: Colour) -> None:
        start.wait()
        try:
            cluster.switch_roles(colour)
        except Exception as exc:  # collected: a thread's exception would be lost
            failures.append(exc)

    threads = [
        threading.Thread(target=switch, args=pair) for pair in zip(switchers, wanted, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return failures


@pytest.mark.parametrize("round_seed", [1, 2, 3])
def test_twenty_concurrent_switchers_end_in_agreement(
    make_cluster: Callable[..., KubernetesCluster], emulator: ClusterEmulator, round_seed: int
) -> None:
    # GIVEN twenty switchers (each its own client, like twenty Lambdas) wanting random colours,
    # on a namespace never switched before (the first switch is the careful one)
    chooser = random.Random(round_seed)
    for _ in range(2):
        switchers = [make_cluster() for _ in range(20)]
        wanted = [chooser.choice(list(Colour)) for _ in switchers]

        # WHEN they all switch at once (twice: the second round takes the fast path)
        failures = switch_all_at_once(switchers, wanted)

        # THEN every switch succeeded, and the ConfigMap and Services agree on one of the wishes
        assert failures == []
        assert Colour(assert_agreement(emulator)) in wanted


def test_a_service_write_failing_once_is_completed(
    cluster: KubernetesCluster, emulator: ClusterEmulator
) -> None:
    # GIVEN the first write of the production Service fails with a 503
    cluster.switch_roles(Colour.GREEN)  # stamps the Services, so the next switch is the fast one
    emulator.faults.fail_requests("PATCH", "/services/production-service$", 503, count=1)

    # WHEN blue is made the canary
    changed = cluster.switch_roles(Colour.BLUE)

    # THEN the switch completed anyway: the ConfigMap and both Services say blue
    assert changed
    assert roles_in(emulator) == ("blue", "blue", "green")


def test_a_switch_cut_short_says_so_and_is_completed_by_repeating_it(
    cluster: KubernetesCluster, emulator: ClusterEmulator
) -> None:
    # GIVEN the production Service cannot be written at all for a while
    emulator.faults.fail_requests("PATCH", "/services/production-service$", 503, count=20)

    # WHEN green is made the canary
    with pytest.raises(ClusterUnavailable) as failure:
        cluster.switch_roles(Colour.GREEN)

    # THEN the error says how far it got and what finishes it
    assert "canaryEnv now makes green the canary" in str(failure.value)
    assert "repeating the switch completes it" in str(failure.value)
    assert roles_in(emulator)[0] == "green"

    # AND WHEN the API recovers and the same switch is repeated
    emulator.faults.clear()
    repeated = cluster.switch_roles(Colour.GREEN)

    # THEN it completes what was left: everything agrees on green
    assert repeated
    assert roles_in(emulator) == ("green", "green", "blue")


def test_a_switch_refused_before_any_write_changes_nothing(
    cluster: KubernetesCluster, emulator: ClusterEmulator
) -> None:
    # GIVEN the ConfigMap cannot be written
    emulator.faults.fail_requests("PUT", "/configmaps/canary-env$", 503, count=1)

    # WHEN green is made the canary
    with pytest.raises(ClusterUnavailable, match="503"):
        cluster.switch_roles(Colour.GREEN)

    # THEN nothing changed anywhere
    assert roles_in(emulator) == ("blue", "blue", "green")
