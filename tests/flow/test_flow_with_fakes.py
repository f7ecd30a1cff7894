"""The real deploy.asl.json on moto's interpreter, with the steps' ports faked.

These pin the shape of the flow (which states run, which Catch fires, what the
execution ends with) independently of the cluster emulator and the DynamoDB
ledger; ``test_deploy_flow.py`` runs the same flow against both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from bluegreen.config import Settings
from bluegreen.domain.models import Colour, Hook, Outcome, Verdict
from bluegreen.logic.deploy.ports import DeployPorts
from bluegreen.logic.health import HealthProbes
from bluegreen.logic.steps import run_step
from tests.flow.fakes import (
    REPO,
    FakeAlarms,
    FakeCluster,
    FakeHttp,
    FakeLedger,
    FakeNotifier,
    digest,
)
from tests.flow.harness import FlowRig, Router

pytestmark = pytest.mark.flow

BLUE, GREEN, NEW = digest(1), digest(2), digest(3)


class World:
    """The faked ports of one test, and the handler that serves the flow with them."""

    def __init__(self, **settings: Any) -> None:
        self.ledger = FakeLedger()
        self.cluster = FakeCluster(blue=BLUE, green=GREEN)
        self.notifier = FakeNotifier()
        self.http = FakeHttp()
        self.alarms = FakeAlarms()
        base = {"registry": REPO.rsplit("/", 1)[0], "repository": "rezfusion-cloud"}
        self.ports = DeployPorts(
            settings=Settings(**{**base, **settings}),
            ledger=self.ledger,
            cluster=self.cluster,
            notifier=self.notifier,
            probes=HealthProbes(http=self.http, alarms=self.alarms),
        )

    def handler(self, event: Any, context: Any) -> Any:
        return run_step(event, self.ports)


@pytest.fixture
def shared(shared_rig: tuple[FlowRig, Router]) -> Iterator[tuple[FlowRig, Router]]:
    yield shared_rig
    shared_rig[1].target = None


@pytest.fixture
def world(shared: tuple[FlowRig, Router]) -> World:
    world = World()
    shared[1].target = world.handler
    return world


@pytest.fixture
def rig(shared: tuple[FlowRig, Router], world: World) -> FlowRig:
    return shared[0]


def deploy(image: str, **extra: Any) -> dict[str, Any]:
    return {"action": "deploy", "image": image, **extra}


def test_happy_path_runs_hooks_marks_healthy_and_releases(world: World, rig: FlowRig) -> None:
    # GIVEN blue is the canary, running a digest known to be healthy
    world.ledger.set_verdict(BLUE, Verdict.HEALTHY)

    # WHEN a new digest is deployed to the canary
    run = rig.run(deploy(str(NEW)))

    # THEN the flow succeeded through the hooks and the health check
    assert run.status == "SUCCEEDED", run.cause
    assert run.states == [
        "Begin",
        "Route",
        "RunHooks",
        "StartHook",
        "HookFinished?",
        "HookDone",
        "Bake",
        "Finish",
        "Deployed",
    ]
    assert run.invocations == 3
    assert world.cluster.images[Colour.BLUE] == f"{REPO}@{NEW}"
    assert world.cluster.canary_image == f"{REPO}@{NEW}"
    assert world.ledger.verdict(NEW) is Verdict.HEALTHY
    record = world.ledger.deployment(run.name)
    assert record is not None
    assert record.outcome is Outcome.SUCCEEDED
    assert record.from_digest == BLUE
    assert record.to_digest == NEW
    assert "cache was flushed" in record.hook_logs["cache-flush"]
    assert world.ledger.holder is None
    assert [t for t, _ in world.notifier.events] == ["Deployment Succeeded"]


def test_broken_image_rolls_back_to_last_healthy(world: World, rig: FlowRig) -> None:
    # GIVEN an older healthy digest and a new one whose pods never become ready
    world.ledger.set_verdict(GREEN, Verdict.HEALTHY)
    world.ledger.set_verdict(BLUE, Verdict.HEALTHY)
    world.cluster.broken.add(str(NEW))

    # WHEN it is deployed
    run = rig.run(deploy(str(NEW)))

    # THEN the rollout check failed, the Catch rolled blue back to its healthy digest
    assert run.status == "FAILED"
    assert run.error == "RolloutFailed"
    assert "RolloutFailed" in run.task_errors
    assert run.states[:5] == ["Begin", "Route", "WaitForRollout", "CheckRollout", "RollBack"]
    assert "RerunStartHook" in run.states
    assert run.states[-2:] == ["RollbackRequested?", "DeploymentFailed"]
    assert world.cluster.images[Colour.BLUE] == f"{REPO}@{BLUE}"
    assert world.ledger.verdict(NEW) is Verdict.FAILED
    assert "rolled back to" in (run.cause or "")
    assert BLUE.short in (run.cause or "")
    record = world.ledger.deployment(run.name)
    assert record is not None
    assert record.outcome is Outcome.ROLLED_BACK
    assert record.rolled_back_to == BLUE
    assert "rollback:cache-flush" in record.hook_logs
    assert world.ledger.holder is None


def test_every_candidate_failed_leaves_cluster_and_names_it(world: World, rig: FlowRig) -> None:
    # GIVEN the digest running before is marked failed and none is healthy
    world.ledger.set_verdict(BLUE, Verdict.FAILED)
    world.cluster.broken.add(str(NEW))

    # WHEN a broken digest is deployed
    run = rig.run(deploy(str(NEW)))

    # THEN the execution ends NoHealthyDigest, saying what the colour runs now
    assert run.status == "FAILED"
    assert run.error == "NoHealthyDigest"
    assert run.states[-1] == "NoHealthyDigest"
    assert f"blue runs rezfusion-cloud@sha256:{NEW.hex[:12]}" in (run.cause or "")
    assert world.cluster.images[Colour.BLUE] == f"{REPO}@{NEW}"
    assert world.ledger.holder is None


@pytest.mark.parametrize(
    ("flow_input", "field"),
    [
        ({"action": "deploy"}, "image"),
        ({"action": "launch", "image": "dev"}, "action"),
        ({"action": "deploy", "image": "sha256:xyz"}, "image"),
        ({"action": "deploy", "image": "dev", "service": "staging"}, "service"),
        ({"action": "deploy", "image": "dev", "trigger": "cron"}, "trigger"),
        ({"action": "deploy", "image": "dev", "colour": "green"}, "colour"),
        ({"action": "rollback", "image": "dev"}, "image"),
        ({"action": "deploy", "image": 42}, "image"),
        ([], "input"),
        (None, "input"),
        ({"action": ""}, "action"),
        ({"action": "deploy", "image": f"sha512:{NEW.hex}"}, "image"),
        ({"action": "deploy", "image": f"SHA256:{NEW.hex}"}, "image"),
        ({"action": "deploy", "image": NEW.hex.upper().replace("0", "A")}, "image"),
        ({"action": "deploy", "image": f"{REPO}@{NEW}"}, "image"),
    ],
)
def test_invalid_input_fails_at_once(
    world: World, rig: FlowRig, flow_input: Any, field: str
) -> None:
    # WHEN the console starts the flow with a bad input
    run = rig.run(flow_input)

    # THEN it fails with InvalidInput naming the field, and nothing changed
    assert run.status == "FAILED"
    assert run.error == "InvalidInput"
    assert (run.cause or "").startswith(f"{field}:")
    assert run.states == ["Begin", "ReleaseAndFail", "AppliedBeforeFailing?", "DeploymentFailed"]
    assert world.cluster.writes == []
    assert world.ledger.records == {}


def test_unknown_tag_fails_without_touching_anything(world: World, rig: FlowRig) -> None:
    run = rig.run(deploy("nightly"))

    assert run.error == "UnknownImage"
    assert "nightly" in (run.cause or "")
    assert world.cluster.writes == []


def test_hook_without_allow_root_rolls_back(shared: tuple[FlowRig, Router]) -> None:
    # GIVEN the cache flush configured without --allow-root (the original system's bug)
    world = World(hooks=(Hook("cache-flush", ("wp", "cache", "flush")),))
    world.ledger.set_verdict(BLUE, Verdict.HEALTHY)
    rig, shared[1].target = shared[0], world.handler

    # WHEN a digest is deployed
    run = rig.run(deploy(str(NEW)))

    # THEN the hook's failure went down the Catch to the rollback
    assert run.error == "HookFailed"
    assert "YIKES" in (run.cause or "")
    assert world.cluster.images[Colour.BLUE] == f"{REPO}@{BLUE}"
    assert world.ledger.verdict(NEW) is Verdict.FAILED


def test_unhealthy_after_bake_rolls_back(shared: tuple[FlowRig, Router]) -> None:
    # GIVEN a health URL and an alarm that is in ALARM
    world = World(health_url="http://127.0.0.1:9/health", alarm_names=("p99-latency",))
    world.ledger.set_verdict(BLUE, Verdict.HEALTHY)
    world.alarms.names = ["p99-latency"]
    rig, shared[1].target = shared[0], world.handler

    # WHEN a digest is deployed
    run = rig.run(deploy(str(NEW)))

    # THEN the health check's failure rolled it back

    assert run.error == "HealthCheckFailed"
    assert "p99-latency" in (run.cause or "")
    assert "Finish" in run.states
    assert "RollBack" in run.states


def test_manual_rollback_succeeds_and_marks_running_digest_failed(
    world: World, rig: FlowRig
) -> None:
    # GIVEN the canary runs NEW, and BLUE was healthy before it
    world.ledger.set_verdict(BLUE, Verdict.HEALTHY)
    world.cluster.images[Colour.BLUE] = f"{REPO}@{NEW}"
    world.ledger.set_verdict(NEW, Verdict.HEALTHY)

    # WHEN someone asks for a rollback of the canary
    run = rig.run({"action": "rollback", "reason": "500s"})

    # THEN the canary is back on BLUE and the flow succeeded
    assert run.status == "SUCCEEDED", run.cause
    assert run.states[-1] == "RolledBack"
    assert world.cluster.images[Colour.BLUE] == f"{REPO}@{BLUE}"
    assert world.ledger.verdict(NEW) is Verdict.FAILED
    assert [t for t, _ in world.notifier.events] == ["Deployment Rolled Back"]


def test_lock_held_waits_then_times_out(world: World, rig: FlowRig) -> None:
    # GIVEN another deployment holds the lock and never lets go
    world.ledger.holder = "someone-else"
    world.ports = DeployPorts(
        **{**world.ports.__dict__, "settings": Settings(lock_lease_seconds=30)}
    )

    # WHEN a deploy starts
    run = rig.run(deploy(str(NEW)))

    # THEN it backed off in Wait states and gave up with LockTimeout, changing nothing
    assert run.error == "LockTimeout"
    assert run.states.count("WaitForLock") >= 2
    assert "someone-else" in (run.cause or "")
    assert world.cluster.writes == []
    assert world.ledger.holder == "someone-else"
