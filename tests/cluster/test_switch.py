"""Switching the canary colour: ConfigMap and both Services together, whatever happens.

The invariant: production traffic goes to the colour canaryEnv calls production or,
in the middle of a switch, stays on the colour it was on. A switch either completes
or puts the previous roles back, and says which.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.adapters.routers.selector import SWITCH_GENERATION
from bluegreen.domain.errors import (
    ClusterUnavailable,
    LockHeld,
    SwitchIncomplete,
    SwitchRestored,
)
from bluegreen.domain.models import Colour, Role
from local.cluster import ClusterEmulator
from tests.backends import Backend
from tests.cluster.conftest import (
    RequestLog,
    intercept,
    production_moves_only_where_canary_env_says,
    role_history,
)
from tests.cluster.test_canary_env import NEW_IMAGE, SEED_IMAGE, stored_canary_env

GREEN_IMAGE = (
    "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud@sha256:"
    "216c0204fa1e71f93603c0d5087ef16d6b2ba5bce9084874bf9b2aebcddebc77"
)
"""What green's Deployment runs in the default seed."""


class FakeTime:
    """A clock and a sleep for the adapter: sleeping moves the clock, and costs nothing."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Interrupted(BaseException):
    """The process running the switch dies (a Lambda timeout): nothing after runs."""


def roles_in(backend: Backend) -> tuple[str, str, str]:
    """(canaryEnv.selector, canary Service's app, production Service's app) as stored."""
    canary = backend.get("services", "canary-service")
    production = backend.get("services", "production-service")
    assert canary is not None
    assert production is not None
    return (
        stored_canary_env(backend)["selector"],
        canary["spec"]["selector"]["app"],
        production["spec"]["selector"]["app"],
    )


def assert_agreement(backend: Backend) -> str:
    """The ConfigMap and both Services say the same roles; returns the canary colour."""
    selector, canary_app, production_app = roles_in(backend)
    assert canary_app == selector, (selector, canary_app, production_app)
    assert production_app == Colour(selector).other.value, (selector, canary_app, production_app)
    return selector


def role_objects(backend: Backend) -> dict[str, Any]:
    """What a switch may change and must put back: canaryEnv's data, selectors, generations."""
    configmap = backend.stored("configmaps", "canary-env")
    found: dict[str, Any] = {"configmap": (configmap.get("data"), _generation_of(configmap))}
    for name in ("canary-service", "production-service"):
        service = backend.stored("services", name)
        found[name] = (service["spec"]["selector"], _generation_of(service))
    return found


def _generation_of(obj: dict[str, Any]) -> str | None:
    annotations: dict[str, str] = obj["metadata"].get("annotations") or {}
    return annotations.get(SWITCH_GENERATION)


def test_switch_moves_configmap_and_both_services(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN blue is the canary, green production
    # WHEN green is made the canary
    changed = cluster.switch_roles(Colour.GREEN)

    # THEN the ConfigMap and both Services say so
    assert changed
    assert roles_in(backend) == ("green", "green", "blue")
    assert cluster.service_selectors() == {Role.CANARY: Colour.GREEN, Role.PRODUCTION: Colour.BLUE}


def test_after_a_switch_canary_env_image_names_what_the_new_canary_runs(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN blue is the canary and canaryEnv.image names blue's image; green runs another
    assert stored_canary_env(backend)["image"] == SEED_IMAGE

    # WHEN green is made the canary, then blue again
    cluster.switch_roles(Colour.GREEN)
    after_green = stored_canary_env(backend)["image"]
    cluster.switch_roles(Colour.BLUE)

    # THEN each time canaryEnv.image names what the new canary colour's Deployment runs
    assert after_green == GREEN_IMAGE
    assert stored_canary_env(backend)["image"] == SEED_IMAGE
    assert cluster.canary_env().image == cluster.deployment_image(Colour.BLUE)


def test_switch_there_and_back_again(cluster: KubernetesCluster, backend: Backend) -> None:
    # GIVEN a namespace where the canary already moved once
    cluster.switch_roles(Colour.GREEN)

    # WHEN it moves back, with a new image for the canary
    changed = cluster.switch_roles(Colour.BLUE, image=NEW_IMAGE)

    # THEN everything says blue again, with the new image
    assert changed
    assert roles_in(backend) == ("blue", "blue", "green")
    assert stored_canary_env(backend) == {"selector": "blue", "image": NEW_IMAGE}


def test_switch_to_the_current_canary_writes_nothing(
    cluster: KubernetesCluster, backend: Backend, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN blue is the canary everywhere
    log = request_log()

    # WHEN blue is made the canary
    changed = cluster.switch_roles(Colour.BLUE)

    # THEN nothing changed and nothing was written
    assert not changed
    assert log.writes() == []
    assert roles_in(backend) == ("blue", "blue", "green")


def test_switch_that_only_changes_the_image_keeps_the_roles(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN blue is the canary
    # WHEN blue is made the canary with a new image
    changed = cluster.switch_roles(Colour.BLUE, image=NEW_IMAGE)

    # THEN the image changed, the roles did not
    assert changed
    assert stored_canary_env(backend) == {"selector": "blue", "image": NEW_IMAGE}
    assert roles_in(backend) == ("blue", "blue", "green")


def test_switch_that_loses_the_configmap_race_rereads_and_keeps_the_other_change(
    cluster: KubernetesCluster, backend: Backend, request_log: Callable[[], RequestLog]
) -> None:
    # GIVEN another writer adds a key to canaryEnv right after the adapter read the ConfigMap
    def other_writer(configmap: dict[str, Any]) -> None:
        configmap["data"]["canaryEnv"] = f'{{"selector":"blue","image":"{SEED_IMAGE}","by":"ops"}}'

    intercept(
        cluster,
        after=lambda method, url: method == "GET" and url.endswith("/configmaps/canary-env"),
        action=lambda: backend.mutate("configmaps", "canary-env", other_writer),
    )
    log = request_log()

    # WHEN green is made the canary
    changed = cluster.switch_roles(Colour.GREEN)

    # THEN the stale write was refused and redone from a fresh read: the other writer's key
    # survives, and the ConfigMap and Services agree on green
    assert changed
    assert [m for m, _ in log.all()][:9] == [
        "GET", "GET", "GET", "PATCH", "PUT", "GET", "GET", "PUT", "PATCH",
    ]  # fmt: skip
    assert stored_canary_env(backend) == {"selector": "green", "image": GREEN_IMAGE, "by": "ops"}
    assert assert_agreement(backend) == "green"


def test_switch_when_another_switcher_already_did_it(
    cluster: KubernetesCluster,
    backend: Backend,
    make_cluster: Callable[..., KubernetesCluster],
) -> None:
    # GIVEN another switcher makes green the canary between the adapter's reads
    other = make_cluster()
    intercept(
        cluster,
        after=lambda method, url: method == "GET" and url.endswith("/configmaps/canary-env"),
        action=lambda: other.switch_roles(Colour.GREEN),
    )

    # WHEN this one makes green the canary too
    changed = cluster.switch_roles(Colour.GREEN)

    # THEN the end state is green everywhere, switched exactly once, by the other one
    assert not changed
    assert assert_agreement(backend) == "green"
    configmap = backend.get("configmaps", "canary-env")
    assert configmap is not None
    assert configmap["metadata"]["annotations"][SWITCH_GENERATION] == "1"


def test_switch_repairs_services_that_disagree_with_the_configmap(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN somebody pointed the canary Service at green by hand; the ConfigMap says blue
    def point_at_green(service: dict[str, Any]) -> None:
        service["spec"]["selector"]["app"] = "green"

    backend.mutate("services", "canary-service", point_at_green)

    # WHEN blue is made the canary (what the ConfigMap already says)
    changed = cluster.switch_roles(Colour.BLUE)

    # THEN the Service was made to follow the ConfigMap
    assert changed
    assert roles_in(backend) == ("blue", "blue", "green")


def test_switch_repairs_a_production_service_pointed_at_the_canary(
    backend: Backend, cluster: KubernetesCluster, emulator: ClusterEmulator
) -> None:
    # GIVEN somebody pointed the production Service at blue, the canary, by hand
    since = emulator.store.revision
    backend.mutate(
        "services",
        "production-service",
        lambda service: service["spec"]["selector"].update(app="blue"),
    )

    # WHEN blue is made the canary
    cluster.switch_roles(Colour.BLUE)

    # THEN production went back to green, and only ever to a colour canaryEnv calls production
    # (the hand edit aside)
    assert roles_in(backend) == ("blue", "blue", "green")
    history = role_history(emulator, since)
    assert production_moves_only_where_canary_env_says(history) == [
        f"{('blue', 'blue', 'green')} -> {('blue', 'blue', 'blue')}"
    ]


def test_switch_after_a_hand_edit_of_the_configmap_still_ends_in_agreement(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN switches happened, then somebody edited canaryEnv.selector by hand (no generation)
    cluster.switch_roles(Colour.GREEN)
    cluster.switch_roles(Colour.BLUE)
    backend.mutate(
        "configmaps",
        "canary-env",
        lambda cm: cm["data"].update(canaryEnv=f'{{"selector":"green","image":"{SEED_IMAGE}"}}'),
    )

    # WHEN blue is made the canary again, then green
    cluster.switch_roles(Colour.BLUE)
    first = roles_in(backend)
    cluster.switch_roles(Colour.GREEN)

    # THEN each switch ends with the ConfigMap and the Services agreeing
    assert first == ("blue", "blue", "green")
    assert assert_agreement(backend) == "green"


# the order of the writes -------------------------------------------------------------------


def test_a_switch_moves_the_canary_service_then_canary_env_then_production(
    cluster: KubernetesCluster, emulator: ClusterEmulator
) -> None:
    # GIVEN blue is the canary, green production
    since = emulator.store.revision

    # WHEN green is made the canary
    cluster.switch_roles(Colour.GREEN)

    # THEN canary traffic moved first (onto the production colour, which is allowed), then
    # canaryEnv, and production moved last, to the colour canaryEnv then called production
    history = role_history(emulator, since)
    assert history == [
        ("blue", "blue", "green"),
        ("blue", "green", "green"),
        ("green", "green", "green"),
        ("green", "green", "blue"),
    ]
    assert production_moves_only_where_canary_env_says(history) == []


@pytest.mark.parametrize(
    ("writes", "left"),
    [
        (1, ("blue", "green", "green")),
        (2, ("green", "green", "green")),
        (3, ("green", "green", "blue")),
    ],
)
def test_a_switch_interrupted_after_any_write_leaves_production_where_it_was_or_should_be(
    cluster: KubernetesCluster,
    backend: Backend,
    make_cluster: Callable[..., KubernetesCluster],
    writes: int,
    left: tuple[str, str, str],
) -> None:
    # GIVEN the process switching dies right after its first, second or third write
    intercept(
        cluster,
        after=lambda method, _url: method in {"PUT", "PATCH"},
        action=lambda: None,
        times=writes - 1,
    )
    seen = intercept(
        cluster,
        after=lambda method, _url: method in {"PUT", "PATCH"} and _count_writes(seen) == writes,
        action=_die,
    )

    # WHEN green is made the canary
    with pytest.raises(Interrupted):
        cluster.switch_roles(Colour.GREEN)

    # THEN production is still on green (which canaryEnv called production until the second
    # write) or already on blue (once canaryEnv calls it production): never on the canary
    # by a move of its own
    assert roles_in(backend) == left

    # AND WHEN another switcher (a new Lambda, fake time) asks for green again
    time = FakeTime()
    again = make_cluster(clock=time.clock, sleep=time.sleep)
    again.switch_roles(Colour.GREEN)

    # THEN it completes what was left: everything agrees on green
    assert roles_in(backend) == ("green", "green", "blue")
    assert stored_canary_env(backend)["image"] == GREEN_IMAGE


def test_a_switch_interrupted_half_way_is_put_back_by_switching_back(
    backend: Backend,
    cluster: KubernetesCluster,
    emulator: ClusterEmulator,
    make_cluster: Callable[..., KubernetesCluster],
) -> None:
    # GIVEN a switch to green died after writing canaryEnv (both Services select green)
    seen = intercept(
        cluster,
        after=lambda method, _url: method in {"PUT", "PATCH"} and _count_writes(seen) == 2,
        action=_die,
    )
    with pytest.raises(Interrupted):
        cluster.switch_roles(Colour.GREEN)
    assert roles_in(backend) == ("green", "green", "green")
    since = emulator.store.revision

    # WHEN somebody switches back to blue
    time = FakeTime()
    make_cluster(clock=time.clock, sleep=time.sleep).switch_roles(Colour.BLUE)

    # THEN the previous roles are back, and production never left green meanwhile
    assert roles_in(backend) == ("blue", "blue", "green")
    assert stored_canary_env(backend)["image"] == SEED_IMAGE
    assert all(state[2] == "green" for state in role_history(emulator, since))


def _count_writes(seen: list[tuple[str, str]]) -> int:
    return sum(1 for method, _ in seen if method in {"PUT", "PATCH"})


def _die() -> None:
    raise Interrupted


# transient failures: waited out within the budget, else put back -----------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/services/canary-service$"),
        ("PUT", "/configmaps/canary-env$"),
        ("PATCH", "/services/production-service$"),
    ],
)
def test_three_429s_asking_to_retry_after_a_second_are_waited_out_and_the_switch_completes(
    backend: Backend,
    make_cluster: Callable[..., KubernetesCluster],
    emulator: ClusterEmulator,
    request_log: Callable[[], RequestLog],
    method: str,
    path: str,
) -> None:
    # GIVEN one of the switch's writes is throttled three times with Retry-After: 1
    time = FakeTime()
    cluster = make_cluster(clock=time.clock, sleep=time.sleep)
    emulator.faults.fail_requests(method, path, 429, count=3, retry_after=1)
    log = request_log()

    # WHEN green is made the canary
    changed = cluster.switch_roles(Colour.GREEN)

    # THEN it waited at least the second asked before each retry, and completed
    assert changed
    assert roles_in(backend) == ("green", "green", "blue")
    assert len([s for s in time.sleeps if s >= 1.0]) == 3
    assert time.now >= 3.0
    assert sum(1 for m, p in log.all() if m == method and p.endswith(path.rstrip("$"))) == 4


def test_a_503_asking_for_longer_than_the_budget_is_not_waited_for(
    backend: Backend, make_cluster: Callable[..., KubernetesCluster], emulator: ClusterEmulator
) -> None:
    # GIVEN the production Service is overloaded and asks to come back in 30 seconds
    time = FakeTime()
    cluster = make_cluster(clock=time.clock, sleep=time.sleep, switch_budget_seconds=5.0)
    emulator.faults.fail_requests(
        "PATCH", "/services/production-service$", 503, count=1, retry_after=30
    )
    before = role_objects(backend)

    # WHEN green is made the canary
    with pytest.raises(SwitchRestored, match="503"):
        cluster.switch_roles(Colour.GREEN)

    # THEN it did not sleep past its budget, and put the previous roles back
    assert time.now <= 5.0
    assert role_objects(backend) == before


def test_a_production_service_that_keeps_failing_gets_the_previous_roles_put_back(
    backend: Backend, make_cluster: Callable[..., KubernetesCluster], emulator: ClusterEmulator
) -> None:
    # GIVEN the production Service's patch fails with a 500 every time
    time = FakeTime()
    cluster = make_cluster(clock=time.clock, sleep=time.sleep, switch_budget_seconds=5.0)
    emulator.faults.fail_requests("PATCH", "/services/production-service$", 500, count=1000)
    before = role_objects(backend)
    since = emulator.store.revision

    # WHEN green is made the canary
    with pytest.raises(SwitchRestored) as failure:
        cluster.switch_roles(Colour.GREEN)

    # THEN it backed off within its budget, then put canaryEnv and the canary Service back as
    # they were, and said so, naming the cause and the roles it restored
    assert "500" in str(failure.value)
    assert "put back" in str(failure.value)
    assert "canary Service selects blue, the production Service selects green" in str(failure.value)
    assert 4.0 <= time.now <= 10.0
    assert role_objects(backend) == before
    assert roles_in(backend) == ("blue", "blue", "green")
    assert production_moves_only_where_canary_env_says(role_history(emulator, since)) == []


def test_a_switch_that_can_neither_complete_nor_be_put_back_names_what_it_left(
    backend: Backend, make_cluster: Callable[..., KubernetesCluster], emulator: ClusterEmulator
) -> None:
    # GIVEN the production Service cannot be patched, and once canaryEnv is written, the
    # ConfigMap cannot be written again
    time = FakeTime()
    cluster = make_cluster(clock=time.clock, sleep=time.sleep)
    emulator.faults.fail_requests("PATCH", "/services/production-service$", 500, count=1000)
    intercept(
        cluster,
        after=lambda method, url: method == "PUT" and url.endswith("/configmaps/canary-env"),
        action=lambda: emulator.faults.fail_requests(
            "PUT", "/configmaps/canary-env$", 503, count=1000
        ),
    )

    # WHEN green is made the canary
    with pytest.raises(SwitchIncomplete) as failure:
        cluster.switch_roles(Colour.GREEN)

    # THEN the error says what each Service selects and what canaryEnv says, and how to go on
    message = str(failure.value)
    assert (
        "the canary Service selects green, the production Service selects green, and "
        "canaryEnv makes green the canary" in message
    )
    assert "repeating the switch completes it" in message
    assert "switching to blue puts the previous roles back" in message
    assert roles_in(backend) == ("green", "green", "green")

    # AND WHEN the API recovers and the switch is repeated by another caller
    emulator.faults.clear()
    later = FakeTime()
    make_cluster(clock=later.clock, sleep=later.sleep).switch_roles(Colour.GREEN)

    # THEN it completes what was left
    assert roles_in(backend) == ("green", "green", "blue")


def test_a_switch_that_cannot_even_read_the_cluster_back_names_what_it_last_saw(
    backend: Backend, make_cluster: Callable[..., KubernetesCluster], emulator: ClusterEmulator
) -> None:
    # GIVEN the production Service cannot be patched and, once canaryEnv is written, nothing
    # in the namespace can be read any more
    time = FakeTime()
    cluster = make_cluster(clock=time.clock, sleep=time.sleep)
    emulator.faults.fail_requests("PATCH", "/services/production-service$", 503, count=1000)
    intercept(
        cluster,
        after=lambda method, url: method == "PUT" and url.endswith("/configmaps/canary-env"),
        action=lambda: emulator.faults.fail_requests("GET", "/namespaces/", 503, count=1000),
    )

    # WHEN green is made the canary
    with pytest.raises(SwitchIncomplete) as failure:
        cluster.switch_roles(Colour.GREEN)

    # THEN the error names the state its own writes left, which is what is stored
    assert (
        "as this switch last saw it, the canary Service selects green, the production "
        "Service selects green, and canaryEnv makes green the canary"
    ) in str(failure.value)
    assert roles_in(backend) == ("green", "green", "green")


def test_a_service_write_failing_once_is_completed(
    backend: Backend, cluster: KubernetesCluster, emulator: ClusterEmulator
) -> None:
    # GIVEN the first write of the production Service fails with a 503
    cluster.switch_roles(Colour.GREEN)
    emulator.faults.fail_requests("PATCH", "/services/production-service$", 503, count=1)

    # WHEN blue is made the canary
    changed = cluster.switch_roles(Colour.BLUE)

    # THEN the switch completed anyway: the ConfigMap and both Services say blue
    assert changed
    assert roles_in(backend) == ("blue", "blue", "green")


def test_a_switch_refused_before_any_write_changes_nothing(
    backend: Backend, make_cluster: Callable[..., KubernetesCluster], emulator: ClusterEmulator
) -> None:
    # GIVEN the canary Service, the switch's first write, cannot be written
    time = FakeTime()
    cluster = make_cluster(clock=time.clock, sleep=time.sleep)
    emulator.faults.fail_requests("PATCH", "/services/canary-service$", 503, count=1000)
    before = role_objects(backend)

    # WHEN green is made the canary
    with pytest.raises(ClusterUnavailable, match="503"):
        cluster.switch_roles(Colour.GREEN)

    # THEN nothing changed anywhere
    assert role_objects(backend) == before


def test_a_confirmation_that_fails_stops_the_switch_and_puts_the_canary_service_back(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN the caller's check, once the canary Service moved, finds a deployment holding the lock
    before = role_objects(backend)
    moved: list[tuple[str, str, str]] = []

    def deployment_took_the_lock() -> None:
        moved.append(roles_in(backend))
        raise LockHeld("deployment d-1 holds the lock")

    # WHEN green is made the canary
    with pytest.raises(LockHeld) as failure:
        cluster.switch_roles(Colour.GREEN, confirm=deployment_took_the_lock)

    # THEN the check ran after the canary Service moved and before canaryEnv; the canary
    # Service was put back and the refusal says so
    assert moved == [("blue", "green", "green")]
    assert "d-1" in str(failure.value)
    assert "put back" in str(failure.value)
    assert role_objects(backend) == before


def test_an_unexpected_fault_mid_switch_is_put_back_and_shown_as_it_is(
    cluster: KubernetesCluster, backend: Backend
) -> None:
    # GIVEN the caller's check fails with something that is no domain error (a bug)
    before = role_objects(backend)

    def broken() -> None:
        raise RuntimeError("the lock table is misconfigured")

    # WHEN green is made the canary
    with pytest.raises(RuntimeError, match="misconfigured"):
        cluster.switch_roles(Colour.GREEN, confirm=broken)

    # THEN the canary Service was put back before the fault surfaced as itself
    assert role_objects(backend) == before


# concurrent switchers --------------------------------------------------------------------------


def test_a_stalled_switch_is_taken_over_and_its_last_write_cannot_land_after(
    backend: Backend,
    cluster: KubernetesCluster,
    emulator: ClusterEmulator,
    make_cluster: Callable[..., KubernetesCluster],
) -> None:
    # GIVEN this switcher wrote the canary Service and canaryEnv (green) and, before it
    # reached the production Service, another switcher (tired of waiting) made blue the
    # canary again
    cluster.switch_roles(Colour.GREEN)
    cluster.switch_roles(Colour.BLUE)
    since = emulator.store.revision
    other = make_cluster(switch_budget_seconds=0.2)
    intercept(
        cluster,
        after=lambda method, url: method == "PUT" and url.endswith("/configmaps/canary-env"),
        action=lambda: other.switch_roles(Colour.BLUE),
    )

    # WHEN this switcher goes on to the production Service
    cluster.switch_roles(Colour.GREEN)

    # THEN its stale write of the production Service was refused (it would have moved
    # production onto blue, the canary then); it read again and switched to its own wish
    # in order, so the ConfigMap and Services agree, and production never moved onto a
    # colour canaryEnv called canary
    assert assert_agreement(backend) == "green"
    history = role_history(emulator, since)
    assert ("blue", "blue", "blue") not in history
    assert production_moves_only_where_canary_env_says(history) == []


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
    backend: Backend,
    make_cluster: Callable[..., KubernetesCluster],
    emulator: ClusterEmulator,
    round_seed: int,
) -> None:
    # GIVEN twenty switchers (each its own client, like twenty Lambdas) wanting random colours
    chooser = random.Random(round_seed)
    since = emulator.store.revision
    for _ in range(2):
        switchers = [make_cluster() for _ in range(20)]
        wanted = [chooser.choice(list(Colour)) for _ in switchers]

        # WHEN they all switch at once (twice)
        failures = switch_all_at_once(switchers, wanted)

        # THEN every switch succeeded, and the ConfigMap and Services agree on one of the wishes
        assert failures == []
        assert Colour(assert_agreement(backend)) in wanted

    # AND at no instant did production move onto a colour canaryEnv called canary
    assert production_moves_only_where_canary_env_says(role_history(emulator, since)) == []


def test_concurrent_switchers_on_a_flaky_api_end_in_agreement(
    backend: Backend, make_cluster: Callable[..., KubernetesCluster], emulator: ClusterEmulator
) -> None:
    # GIVEN eight switchers wanting random colours while writes of the Services and the
    # ConfigMap now and then fail with a 503 or a 429
    chooser = random.Random(7)
    since = emulator.store.revision
    emulator.faults.fail_requests("PATCH", "/services/", 503, count=6, retry_after=0)
    emulator.faults.fail_requests("PUT", "/configmaps/canary-env$", 429, count=4, retry_after=0)
    switchers = [make_cluster() for _ in range(8)]
    wanted = [chooser.choice(list(Colour)) for _ in switchers]

    # WHEN they all switch at once
    failures = switch_all_at_once(switchers, wanted)

    # THEN each one completed, they agree on one of the wishes, and production only ever
    # moved to a colour canaryEnv called production
    assert failures == []
    assert Colour(assert_agreement(backend)) in wanted
    assert production_moves_only_where_canary_env_says(role_history(emulator, since)) == []
