"""Where a rollback goes, the lock lease a long deploy keeps, and the input contract's words.

Steps are called directly with in-memory ports, except the lease tests, which
use the real DynamoDB ledger (moto) with a clock they move, because the lease
expiry is the ledger's conditional write, not something a fake should imitate.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.config import Settings
from bluegreen.domain.errors import InvalidInput, LockLost
from bluegreen.domain.flow_input import parse_request
from bluegreen.domain.models import Colour, Deployment, Digest, Outcome, Role, Verdict
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

BEFORE, CURRENT, OTHER, NEWEST = digest(11), digest(12), digest(13), digest(14)
LEASE = 900


def _ports(ledger: Any, cluster: FakeCluster | None = None, **settings: Any) -> DeployPorts:
    base = {"registry": REPO.rsplit("/", 1)[0], "repository": "rezfusion-cloud"}
    return DeployPorts(
        settings=Settings(**{**base, **settings}),
        ledger=ledger,
        cluster=cluster or FakeCluster(blue=BEFORE, green=OTHER),
        notifier=FakeNotifier(),
        probes=HealthProbes(http=FakeHttp(), alarms=FakeAlarms()),
    )


def _deploy_state(service: str, colour: Colour, digest_: Digest, before: Digest) -> dict[str, Any]:
    return {
        "id": f"d-{uuid.uuid4().hex[:8]}",
        "arn": "arn",
        "action": "deploy",
        "service": service,
        "colour": colour.value,
        "digest": str(digest_),
        "image": f"{REPO}@{digest_}",
        "fromDigest": str(before),
        "fromImage": f"{REPO}@{before}",
        "trigger": "console",
        "actor": "tester",
        "reason": "",
    }


def _record(state: dict[str, Any], ledger: FakeLedger) -> None:
    ledger.put_deployment(
        Deployment(
            id=state["id"],
            application="wp-platform",
            action=state["action"],
            role=Role(state["service"]),
            colour=Colour(state["colour"]),
            to_digest=Digest.parse(state["digest"]) if state.get("digest") else None,
            from_digest=Digest.parse(state["fromDigest"]) if state.get("fromDigest") else None,
            trigger="console",
            actor="tester",
            started_at=datetime.now(UTC),
        )
    )
    # As Begin does: the execution holds the lock while its steps run.
    assert ledger.acquire_lock(state["id"], LEASE)


def test_failed_production_deploy_goes_back_to_productions_digest_not_the_canarys() -> None:
    # GIVEN production (green) runs OTHER, judged healthy, and the canary (blue) later passed
    # NEWEST, which never ran on production
    ledger = FakeLedger()
    ledger.set_verdict(OTHER, Verdict.HEALTHY)
    ledger.set_verdict(NEWEST, Verdict.HEALTHY)
    cluster = FakeCluster(blue=NEWEST, green=CURRENT)
    p = _ports(ledger, cluster)
    state = _deploy_state("production", Colour.GREEN, CURRENT, OTHER)
    _record(state, ledger)

    # WHEN the production deploy of CURRENT fails and rolls back
    result = run_step(
        {"step": "roll_back", "deployment": state, "error": {"Error": "RolloutFailed"}}, p
    )

    # THEN production is back on what it ran, not silently promoted to the canary's digest
    assert result["target"] == str(OTHER)
    assert cluster.images[Colour.GREEN] == f"{REPO}@{OTHER}"


# --- a requested rollback: what ran before comes from the deployments ------------------------


def _rollback_state(colour: Colour, running: Digest | None) -> dict[str, Any]:
    return {
        "id": f"r-{uuid.uuid4().hex[:8]}",
        "arn": "arn",
        "action": "rollback",
        "service": "canary",
        "colour": colour.value,
        "digest": None,
        "image": "",
        "fromDigest": str(running) if running else None,
        "fromImage": f"{REPO}@{running}" if running else f"{REPO}:latest",
        "trigger": "api",
        "actor": "alice",
        "reason": "500s",
    }


def _succeeded(ledger: FakeLedger, colour: Colour, before: Digest | None, to: Digest) -> None:
    state = _deploy_state("canary", colour, to, before or to)
    if before is None:
        state["fromDigest"] = None
    _record(state, ledger)
    ledger.finish_deployment(state["id"], Outcome.SUCCEEDED, "ok")
    ledger.release_lock(state["id"])


def test_requested_rollback_right_after_a_first_deploy_goes_to_what_ran_before() -> None:
    # GIVEN blue ran BEFORE (never judged), and the first deploy put CURRENT there, healthy
    ledger = FakeLedger()
    _succeeded(ledger, Colour.BLUE, BEFORE, CURRENT)
    ledger.set_verdict(CURRENT, Verdict.HEALTHY)
    cluster = FakeCluster(blue=CURRENT, green=OTHER)
    p = _ports(ledger, cluster)
    state = _rollback_state(Colour.BLUE, CURRENT)
    _record(state, ledger)

    # WHEN a rollback of blue is requested
    result = run_step({"step": "roll_back", "deployment": state, "error": None}, p)

    # THEN blue goes back to BEFORE
    assert result["status"] == "rolling_back", result.get("Cause")
    assert result["target"] == str(BEFORE)
    assert cluster.images[Colour.BLUE] == f"{REPO}@{BEFORE}"


@pytest.mark.parametrize(
    ("history", "running", "says"),
    [
        (
            False,
            CURRENT,
            f"the ledger's latest 200 deployments hold no successful one that put "
            f"{CURRENT.short} on blue",
        ),
        (True, CURRENT, f"what ran before, {BEFORE.short}, is judged failed"),
        (False, None, f"blue runs {REPO}:latest, which is not pinned to a digest"),
    ],
)
def test_requested_rollback_with_nowhere_to_go_says_why_truthfully(
    history: bool, running: Digest | None, says: str
) -> None:
    # GIVEN blue runs CURRENT, the only healthy digest (or an image by tag, and nothing is
    # healthy)
    ledger = FakeLedger()
    if running is not None:
        ledger.set_verdict(CURRENT, Verdict.HEALTHY)
    if history:
        _succeeded(ledger, Colour.BLUE, BEFORE, CURRENT)
        ledger.set_verdict(BEFORE, Verdict.FAILED)
    cluster = FakeCluster(blue=CURRENT, green=OTHER)
    if running is None:
        cluster.images[Colour.BLUE] = f"{REPO}:latest"
    p = _ports(ledger, cluster)
    state = _rollback_state(Colour.BLUE, running)
    _record(state, ledger)

    # WHEN a rollback of blue is requested
    result = run_step(
        {
            "step": "roll_back",
            "deployment": state,
            "error": {"Error": "RollbackRequested", "Cause": "rollback requested by alice"},
        },
        p,
    )

    # THEN nothing is touched and the Cause says why, and what blue runs
    assert result["status"] == "stuck"
    cause = result["Cause"]
    assert says in cause
    assert "none is marked healthy" not in cause
    assert "is this one" not in cause
    assert "The cluster was left as it is: blue runs" in cause
    assert cluster.writes == []
    if running is not None:
        assert f"no digest other than {CURRENT.short} is judged healthy" in cause
    else:
        assert "and no digest is judged healthy" in cause


# --- the lock lease --------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def dynamo(shared_rig: tuple[FlowRig, Router]) -> tuple[DynamoLedger, _Clock]:
    """The real ledger on moto for an application of its own, on a clock the test moves."""
    clock = _Clock()
    ledger = DynamoLedger(
        Settings().ledger_table,
        shared_rig[0].clients["dynamodb"],
        f"lease-{uuid.uuid4().hex[:10]}",
        clock=clock,
    )
    return ledger, clock


class _SlowCluster(FakeCluster):
    def rollout(self, colour: Colour) -> Any:
        return replace(super().rollout(colour), complete=False, ready=1, available=1)


def _events_after_begin(begun: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deployment = begun["deployment"]
    hook = begun["hooks"][0]
    run = {"job": "cache-flush-0", "waited": 0, "waitSeconds": 2, "polls": 0}
    return {
        "check_rollout": {"deployment": deployment, "rollout": begun["rollout"]},
        "start_hook": {"deployment": deployment, "hook": hook, "phase": "deploy"},
        "check_hook": {"deployment": deployment, "hook": hook, "phase": "deploy", "run": run},
        "roll_back": {"deployment": deployment, "error": {"Error": "RolloutFailed"}},
    }


@pytest.mark.parametrize("step", ["check_rollout", "start_hook", "check_hook", "roll_back"])
def test_the_holders_steps_renew_its_lease(dynamo: tuple[DynamoLedger, _Clock], step: str) -> None:
    # GIVEN a deploy that took a lease of LEASE seconds at Begin
    ledger, clock = dynamo
    cluster = _SlowCluster(blue=BEFORE, green=OTHER)
    p = _ports(ledger, cluster, lock_lease_seconds=LEASE, application=ledger.application)
    begun = run_step(
        {
            "step": "begin",
            "input": {"action": "deploy", "image": str(CURRENT)},
            "execution": {"name": "long-deploy", "arn": "arn"},
        },
        p,
    )
    assert begun["status"] == "applied"
    cluster.start_hook(Colour.BLUE, p.settings.hooks[0], "long-deploy")

    # WHEN one of its steps runs late in the lease, and time passes beyond the first lease
    clock.advance(LEASE - 100)
    run_step({"step": step, **_events_after_begin(begun)[step]}, p)
    clock.advance(200)

    # THEN a waiting deployment still cannot take the lock: the step renewed it
    assert not ledger.acquire_lock("waiting-deploy", LEASE)
    assert ledger.lock_holder() == "long-deploy"


def test_without_renewal_the_lease_would_have_expired(dynamo: tuple[DynamoLedger, _Clock]) -> None:
    # GIVEN the same lease, and no step in between (what the renewal protects against)
    ledger, clock = dynamo
    assert ledger.acquire_lock("long-deploy", LEASE)

    clock.advance(LEASE + 100)

    assert ledger.acquire_lock("waiting-deploy", LEASE)


@pytest.mark.parametrize("step", ["check_rollout", "roll_back"])
def test_a_step_that_lost_the_lock_stops_before_touching_anything(step: str) -> None:
    # GIVEN another deployment took the lock while this one was not running steps
    ledger = FakeLedger()
    ledger.holder = "usurper"
    cluster = _SlowCluster(blue=CURRENT, green=OTHER)
    p = _ports(ledger, cluster)
    deployment = _deploy_state("canary", Colour.BLUE, CURRENT, BEFORE)
    rollout = {"image": f"{REPO}@{CURRENT}", "waited": 0, "waitSeconds": 2, "polls": 0}
    events = {
        "check_rollout": {"deployment": deployment, "rollout": rollout},
        "roll_back": {"deployment": deployment, "error": {"Error": "RolloutFailed"}},
    }

    # WHEN its next step runs
    with pytest.raises(LockLost, match="usurper has taken it"):
        run_step({"step": step, **events[step]}, p)

    # THEN it wrote nothing to the cluster and left the lock to its holder
    assert cluster.writes == []
    assert ledger.holder == "usurper"


def test_a_step_overtaken_by_its_own_retry_stops() -> None:
    # GIVEN the lock is this deployment's, renewed by a later attempt of its steps
    ledger = FakeLedger()
    deployment = _deploy_state("canary", Colour.BLUE, CURRENT, BEFORE)
    assert ledger.acquire_lock(deployment["id"], LEASE)
    later = {"state": "CheckRollout", "entered": "2026-12-06T08:00:05+00:00", "retry": 1}
    earlier = {**later, "retry": 0}
    cluster = _SlowCluster(blue=CURRENT, green=OTHER)
    p = _ports(ledger, cluster)
    rollout = {"image": f"{REPO}@{CURRENT}", "waited": 0, "waitSeconds": 2, "polls": 0}
    event = {"step": "check_rollout", "deployment": deployment, "rollout": rollout}
    run_step({**event, "attempt": later}, p)

    # WHEN the earlier attempt (one that outlived its Task's timeout) goes on
    with pytest.raises(LockLost, match="a later attempt"):
        run_step({**event, "attempt": earlier}, p)

    # THEN the lock is still the holder's, for its later attempt
    assert ledger.holder == deployment["id"]


def test_a_failed_renewal_write_does_not_fail_the_step() -> None:
    class Throttled(FakeLedger):
        def renew_lock(self, holder: str, lease_seconds: int, attempt: str = "") -> bool:
            raise RuntimeError("ProvisionedThroughputExceededException")

    p = _ports(Throttled(), FakeCluster(blue=CURRENT, green=OTHER))
    deployment = _deploy_state("canary", Colour.BLUE, CURRENT, BEFORE)
    rollout = {"image": f"{REPO}@{CURRENT}", "waited": 0, "waitSeconds": 2, "polls": 0}

    reading = run_step({"step": "check_rollout", "deployment": deployment, "rollout": rollout}, p)

    assert reading["complete"] is True


# --- the input contract's words ---------------------------------------------------------------


@pytest.mark.parametrize("raw", [{}, {"action": ""}, {"action": "  "}, {"action": None}])
def test_a_missing_action_says_it_is_required(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_request(raw)

    assert str(raised.value) == "action: required, one of deploy, rollback"


def test_an_unknown_action_names_the_choices() -> None:
    with pytest.raises(InvalidInput, match="'launch' is not an action: one of deploy, rollback"):
        parse_request({"action": "launch"})


@pytest.mark.parametrize(
    ("raw", "got"),
    [(None, "got null"), (["deploy"], "got an array"), ("deploy", "got a string"), (3, "a number")],
)
def test_an_input_that_is_not_an_object_says_what_it_is_in_json_words(
    raw: object, got: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_request(raw)

    assert raised.value.field == "input"
    assert "must be a JSON object" in raised.value.problem
    assert raised.value.problem.endswith(got)
    assert "NoneType" not in str(raised.value)


def test_a_field_of_the_wrong_type_is_named_in_json_words() -> None:
    with pytest.raises(InvalidInput, match="reason: must be a string, got a number"):
        parse_request({"action": "rollback", "reason": 7})


def test_a_rollback_accepts_the_callers_reason() -> None:
    request = parse_request({"action": "rollback", "service": "production", "reason": "5xx"})

    assert request.reason == "5xx"
    assert request.service is Role.PRODUCTION


@pytest.mark.parametrize(
    ("image", "says"),
    [
        (f"sha512:{'a' * 64}", "only sha256"),
        (f"SHA256:{'a' * 64}", "digests are lowercase"),
        (f"sha256:{'A' * 64}", "digests are lowercase"),
        ("A" * 64, "digests are lowercase"),
        (f"{REPO}@sha256:{'a' * 64}", "pass the digest (sha256:<hex>), not the image reference"),
    ],
)
def test_an_image_that_cannot_be_a_tag_is_invalid_not_unknown(image: str, says: str) -> None:
    # GIVEN a ledger that knows no tags (a tag lookup would end UnknownImage)
    p = _ports(FakeLedger())

    # WHEN a deploy names it
    with pytest.raises(InvalidInput) as raised:
        run_step(
            {
                "step": "begin",
                "input": {"action": "deploy", "image": image},
                "execution": {"name": "d-bad-image", "arn": "arn"},
            },
            p,
        )

    # THEN the image field is named with a message that helps, and nothing started
    assert raised.value.field == "image"
    assert says in raised.value.problem
    assert p.ledger.lock_holder() is None
