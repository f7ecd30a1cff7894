"""Progressive promotion: the real deploy.asl.json on moto, judged by moto's CloudWatch.

The deploy_steps handler runs every Task; the router object lives in the cluster
emulator; the traffic simulator (``local.traffic``) sends a steady request rate
through the router's weights and publishes ALB metrics per target group into
moto's CloudWatch (``local.cloudwatch`` gives moto the p99 it lacks). Wait states
run at 1/50 of their length, so an analysis interval of 60 s is 1.2 s here.
Assertions read the execution history, the router object as stored (sampled while
the flow runs, so each step's weights are seen), canaryEnv and the ledger.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from bluegreen.adapters.execution_history import StepFunctionsHistory
from bluegreen.adapters.kube.client import api_client_for
from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.adapters.promotions import DynamoPromotions
from bluegreen.adapters.stepfunctions import StepFunctionsFlow, StepFunctionsTaskTokens
from bluegreen.config import Settings
from bluegreen.domain.models import Digest, Outcome, Role, Verdict
from bluegreen.domain.promotion import NotWaiting
from bluegreen.logic import routing
from bluegreen.logic.history import HistoryPorts
from bluegreen.logic.requests import Caller
from bluegreen.logic.routing import GatePorts
from bluegreen.logic.timeline import deployment_timeline
from functions.deploy_steps import dependencies as deploy_steps_dependencies
from local.alb_controller import SimulatedLoadBalancerController
from local.cloudwatch import percentiles_in_moto
from local.stepfunctions import shortened_waits
from local.traffic import TrafficSimulator
from tests.flow.conftest import NAMESPACE, SEED_BLUE, Stack

pytestmark = pytest.mark.flow


def target_groups(unique: str) -> dict[str, str]:
    """Each colour's TargetGroup dimension, the test's own: moto's one CloudWatch serves
    the whole session, and two tests' traffic must never mix."""
    return {c: f"targetgroup/k8s-{unique}-{c}/0123456789abcdef" for c in ("blue", "green")}


ANNOTATION = "alb.ingress.kubernetes.io/actions.production-weights"
CANARY_ANNOTATION = "alb.ingress.kubernetes.io/actions.canary-forward"
FACTOR = 0.02


def _weights(emulator: Any, router: str) -> tuple[tuple[int, int], str]:
    """(production's blue and green weights, the canary rule's colour) as stored."""

    def split(groups: list[dict[str, Any]], key: str) -> dict[str, int]:
        found = {"blue": 0, "green": 0}
        for group in groups:
            colour = str(group[key]).removesuffix("-service")
            if colour in found:
                found[colour] += int(group.get("weight", 1))
        return found

    if router == "alb":
        annotations = emulator.get("ingresses", NAMESPACE, "web")["metadata"]["annotations"]
        production = split(
            json.loads(annotations[ANNOTATION])["forwardConfig"]["targetGroups"], "serviceName"
        )
        canary = split(
            json.loads(annotations[CANARY_ANNOTATION])["forwardConfig"]["targetGroups"],
            "serviceName",
        )
    else:
        rules = {
            r["name"]: r for r in emulator.get("httproutes", NAMESPACE, "web")["spec"]["rules"]
        }
        production = split(rules["production"]["backendRefs"], "name")
        canary = split(rules["canary"]["backendRefs"], "name")
    return (production["blue"], production["green"]), max(canary, key=lambda c: canary[c])


class RouterSampler:
    """Reads the router object every few milliseconds and keeps each distinct state."""

    def __init__(self, emulator: Any, router: str) -> None:
        self._emulator, self._router = emulator, router
        self.seen: list[tuple[tuple[int, int], str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            state = _weights(self._emulator, self._router)
            if not self.seen or self.seen[-1] != state:
                self.seen.append(state)
            time.sleep(0.005)

    def __enter__(self) -> RouterSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Promotion:
    stack: Stack
    router: str
    simulator: TrafficSimulator

    @property
    def name(self) -> str:
        """The execution's name (the deployment id): the application's own."""
        return f"{self.stack.settings.application}-promote"

    def run(self, strategy: dict[str, Any], timeout: float = 40.0) -> tuple[Any, list[Any]]:
        with RouterSampler(self.stack.emulator, self.router) as sampler:
            arn = self.stack.rig.start({"action": "promote", "strategy": strategy}, self.name)
            run = self.stack.rig.wait(arn, timeout)
        return run, sampler.seen

    def canary_env(self) -> dict[str, Any]:
        configmap = self.stack.emulator.get("configmaps", NAMESPACE, "canary-env")
        assert configmap is not None
        value: dict[str, Any] = json.loads(configmap["data"]["canaryEnv"])
        return value

    def progress(self) -> Any:
        promotions = DynamoPromotions(
            self.stack.settings.ledger_table,
            self.stack.rig.clients["dynamodb"],
            self.stack.settings.application,
        )
        return promotions, promotions.record(self.name)


@pytest.fixture(params=["alb", "gateway"])
def promotion(request: pytest.FixtureRequest, stack_factory: Any) -> Iterator[Promotion]:
    """A stack with a weighted router, analysis on, traffic flowing through the router."""
    router = str(request.param)
    groups = target_groups(uuid.uuid4().hex[:10])
    stack = stack_factory(
        BG_TRAFFIC_ROUTER=router,
        BG_ANALYSIS_TARGET_GROUPS=",".join(f"{c}={t}" for c, t in groups.items()),
        BG_ANALYSIS_INTERVAL_SECONDS="60",
        BG_ANALYSIS_MIN_REQUESTS="5",
        BG_ANALYSIS_MAX_ERROR_PERCENT="1",
        BG_ANALYSIS_MAX_P99_SECONDS="0.5",
    )
    cluster = KubernetesCluster.from_settings(stack.settings)
    cloudwatch = boto3.client("cloudwatch", region_name="us-west-2")
    simulator = TrafficSimulator(cluster, cloudwatch, groups, rate=400.0, tick=0.05)
    with (
        percentiles_in_moto(),
        shortened_waits(FACTOR),
        simulator,
        load_balancer(stack.settings, router),
    ):
        yield Promotion(stack, router, simulator)


@contextlib.contextmanager
def load_balancer(settings: Settings, router: str) -> Iterator[None]:
    """Under ``alb``, the stand-in load balancer controller making the Ingress into moto's
    ELBv2, where the product reads whether a move is applied."""
    if router != "alb":
        yield
        return
    controller = SimulatedLoadBalancerController(
        api_client_for(settings),
        boto3.client("elbv2", region_name="us-west-2"),
        boto3.client("ec2", region_name="us-west-2"),
        settings.cluster_name,
        settings.namespace,
    )
    with controller.running(interval=0.05):
        yield


def test_a_promotion_that_passes_steps_the_weights_up_and_swaps_the_roles(
    promotion: Promotion,
) -> None:
    # GIVEN blue the canary on SEED_BLUE, green production, a good image everywhere
    stack = promotion.stack

    # WHEN blue is promoted 10 % -> 50 % -> 100 %, a minute's analysis per step
    run, seen = promotion.run(
        {"steps": [{"weight": 10, "pause": 60}, {"weight": 50, "pause": 60}, {"weight": 100}]}
    )

    # THEN the execution succeeded through the promotion's states, judging each step
    assert run.status == "SUCCEEDED", run.cause
    assert run.states[:3] == ["Begin", "Route", "BeginPromotion"]
    assert run.states.count("ShiftTraffic") == 3
    assert run.states.count("Analyse") >= 2
    assert run.states[-1] == "Promoted"
    # AND the router object held each step's weights in turn, then the swapped roles
    assert seen == [
        ((0, 100), "blue"),
        ((10, 90), "blue"),
        ((50, 50), "blue"),
        ((100, 0), "green"),
    ]
    # AND canaryEnv: green is the canary now (still running what production ran), blue
    # production with all of it
    env = promotion.canary_env()
    assert env["selector"] == "green"
    assert env["weights"] == {"blue": 100, "green": 0}
    assert env["image"] == stack.running("green")
    # AND the ledger: the promotion succeeded, blue's digest is healthy, the lock is free
    record = stack.ledger.deployment(promotion.name)
    assert record is not None
    assert record.outcome is Outcome.SUCCEEDED
    assert "flips back" in record.cause
    assert stack.ledger.verdict(SEED_BLUE) is Verdict.HEALTHY
    assert stack.ledger.lock_holder() is None
    # AND each analysis it ran passed, with real numbers
    promotions, progress = promotion.progress()
    analyses = progress.progress["analyses"]
    assert {a["finding"] for a in analyses} == {"passed"}
    assert all(a["requests"] >= 5 for a in analyses)
    window = promotions.flip_back()
    assert window is not None
    assert (window.production, window.previous) == ("blue", "green")
    # AND no simulated request failed on the way
    assert promotion.simulator.tally.failed == 0


def test_a_promotion_that_fails_analysis_at_10_percent_is_backed_out_in_one_write(
    promotion: Promotion,
) -> None:
    # GIVEN blue's image answers 5 % of its requests with a 5xx
    stack = promotion.stack
    promotion.simulator.mark(str(SEED_BLUE), "errors")

    # WHEN blue is promoted
    run, seen = promotion.run({"steps": [{"weight": 10, "pause": 120}, {"weight": 100}]})

    # THEN the execution FAILED with the analysis that failed in its Cause
    assert run.status == "FAILED"
    assert run.error == "AnalysisFailed"
    assert "error rate" in (run.cause or "")
    assert "above 1 %" in (run.cause or "")
    assert "Production was set back to 100 % on green" in (run.cause or "")
    assert run.states[-3:] == ["BackOut", "BackedOut?", "PromotionFailed"]
    # AND it was judged at 10 % and backed out right after the first failed reading (a
    # window of a few requests may show none of the 5 % yet, and pass)
    _, progress = promotion.progress()
    findings = [a["finding"] for a in progress.progress["analyses"]]
    assert findings[-1] == "failed"
    assert "failed" not in findings[:-1]
    assert run.states.count("Analyse") == len(findings)
    last = len(run.states) - 1 - run.states[::-1].index("Analyse")
    assert run.states[last:] == ["Analyse", "Judged?", "BackOut", "BackedOut?", "PromotionFailed"]
    assert seen == [((0, 100), "blue"), ((10, 90), "blue"), ((0, 100), "blue")]
    # AND canaryEnv agrees: green production at 100 %, blue still the canary
    env = promotion.canary_env()
    assert (env["selector"], env["weights"]) == ("blue", {"blue": 0, "green": 100})
    # AND the digest is marked failed, the record says why, the lock is free
    assert stack.ledger.verdict(SEED_BLUE) is Verdict.FAILED
    record = stack.ledger.deployment(promotion.name)
    assert record is not None
    assert record.outcome is Outcome.FAILED
    assert record.cause.startswith("AnalysisFailed: ")
    assert stack.ledger.lock_holder() is None
    # AND it was published for subscribers
    assert any(kind == "Deployment Failed" for kind, _ in stack.published())


def test_backing_out_takes_production_back_within_seconds_of_the_failed_reading(
    promotion: Promotion,
) -> None:
    # GIVEN blue's image is slow (about 2 s per request, above the 0.5 s p99 allowed)
    promotion.simulator.mark(str(SEED_BLUE), "slow")

    # WHEN blue is promoted
    run, _ = promotion.run({"steps": [{"weight": 10, "pause": 120}, {"weight": 100}]})

    # THEN the p99 failed it, and production was back on green well within 5 s of flow
    # time after the reading that failed
    assert run.error == "AnalysisFailed"
    assert "p99 latency" in (run.cause or "")
    _, progress = promotion.progress()
    failed = datetime.fromisoformat(progress.progress["failedAt"])
    backed_out = datetime.fromisoformat(progress.progress["backedOutAt"])
    assert timedelta(0) <= backed_out - failed < timedelta(seconds=5)


def test_a_rollback_of_production_after_a_promotion_flips_back_without_a_rollout(
    promotion: Promotion,
) -> None:
    # GIVEN blue promoted to production, green (the canary now) still runs production's image
    stack = promotion.stack
    run, _ = promotion.run({"steps": [{"weight": 50, "pause": 60}, {"weight": 100}]})
    assert run.status == "SUCCEEDED", run.cause
    green_before = stack.running("green")
    cluster = KubernetesCluster.from_settings(stack.settings)
    promotions, _ = promotion.progress()

    # WHEN a person rolls production back
    ports = replace(
        stack.release_ports(), settings=stack.settings, cluster=cluster, promotions=promotions
    )
    done = routing.rollback_or_flip_back(
        ports,
        Caller("arn:aws:iam::123456789012:user/alice", "203.0.113.9", "req-flip"),
        Role.PRODUCTION,
        reason="checkout errors",
    )

    # THEN production is all on green again at once, blue the canary, nothing rolled out
    assert isinstance(done, routing.FlipBackDone)
    assert _weights(stack.emulator, promotion.router) == ((0, 100), "blue")
    assert stack.running("green") == green_before
    env = promotion.canary_env()
    assert (env["selector"], env["weights"]) == ("blue", {"blue": 0, "green": 100})
    # AND it is in the ledger, with who asked; the promoted digest is judged failed
    record = stack.ledger.deployment(done.record_id)
    assert record is not None
    assert (record.action, record.outcome) == ("rollback", Outcome.SUCCEEDED)
    assert record.actor == "arn:aws:iam::123456789012:user/alice"
    assert stack.ledger.verdict(SEED_BLUE) is Verdict.FAILED


# --- manual gates --------------------------------------------------------------------------

ALICE = Caller("arn:aws:iam::123456789012:user/alice", "203.0.113.9", "req-gate")


def _gates(stack: Stack, promotions: DynamoPromotions) -> GatePorts:
    return GatePorts(
        ledger=stack.ledger, promotions=promotions, tokens=StepFunctionsTaskTokens(stack.rig.sfn)
    )


def _until(check: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def _started(promotion: Promotion, strategy: dict[str, Any]) -> tuple[str, RouterSampler]:
    sampler = RouterSampler(promotion.stack.emulator, promotion.router).__enter__()
    arn = promotion.stack.rig.start({"action": "promote", "strategy": strategy}, promotion.name)
    return arn, sampler


def _waiting(promotion: Promotion) -> Any:
    def check() -> Any:
        _, record = promotion.progress()
        return record if record is not None and record.waiting else None

    return _until(check, "the promotion waits at a gate")


def test_a_manual_gate_waits_for_a_person_and_resume_carries_it_to_100(
    promotion: Promotion,
) -> None:
    # GIVEN a promotion whose 50 % step waits for a person
    stack = promotion.stack
    arn, sampler = _started(
        promotion,
        {
            "steps": [
                {"weight": 10, "pause": 60},
                {"weight": 50, "pause": "manual"},
                {"weight": 100},
            ]
        },
    )

    # WHEN it reaches the gate
    record = _waiting(promotion)

    # THEN it waits at 50 % with a reason, and the execution is still running
    assert _weights(stack.emulator, promotion.router)[0] == (50, 50)
    assert "pauses for a person" in record.waiting
    assert stack.rig.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    # AND a second request to resume while it waits is answered; so is one after
    promotions, _ = promotion.progress()
    decided = routing.resume(_gates(stack, promotions), ALICE, promotion.name)
    run = stack.rig.wait(arn, 40)
    sampler.__exit__()
    assert decided == {"deploymentId": promotion.name, "decision": "resume", "step": 2}
    # AND it went on to 100 % and swapped the roles
    assert run.status == "SUCCEEDED", run.cause
    assert "WaitForPerson" in run.states
    assert run.states.index("PassGate") == run.states.index("WaitForPerson") + 1
    assert sampler.seen == [
        ((0, 100), "blue"),
        ((10, 90), "blue"),
        ((50, 50), "blue"),
        ((100, 0), "green"),
    ]
    # AND the decision is kept with who took it
    _, done = promotion.progress()
    (gate,) = done.gates
    assert (gate.step, gate.decision, gate.actor) == (1, "resume", ALICE.actor)
    with pytest.raises(NotWaiting, match="has ended"):
        routing.resume(_gates(stack, promotions), ALICE, promotion.name)


def test_another_applications_deploy_runs_while_a_promotion_waits_at_its_gate(
    promotion: Promotion,
) -> None:
    # GIVEN the stack's application waiting at the 10 % gate of a promotion (its lock held)
    stack = promotion.stack
    arn, sampler = _started(
        promotion, {"steps": [{"weight": 10, "pause": "manual"}, {"weight": 100}]}
    )
    _waiting(promotion)
    # AND a second application of the fleet with a pushed digest
    namespace = f"ns-{uuid.uuid4().hex[:6]}"
    app, theirs = stack.register_app(namespace)
    pushed = Digest.parse("b2" * 32)
    theirs.record_push(pushed, "dev", datetime.now(UTC), "evt-shop")

    # WHEN the second application is deployed meanwhile
    other = stack.rig.wait(
        stack.rig.start({"app": app, "action": "deploy", "image": str(pushed)}, f"{app}-d"), 40
    )

    # THEN it ran to the end, not waiting for the other's lock
    assert other.status == "SUCCEEDED", other.cause
    assert "WaitForLock" not in other.states
    assert theirs.verdict(pushed) is Verdict.HEALTHY
    # AND the promotion still waits at its gate, its weights and lock untouched
    assert stack.rig.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    assert _weights(stack.emulator, promotion.router)[0] == (10, 90)
    assert stack.ledger.lock_holder() == promotion.name
    promotions, _ = promotion.progress()
    routing.resume(_gates(stack, promotions), ALICE, promotion.name)
    run = stack.rig.wait(arn, 40)
    sampler.__exit__()
    assert run.status == "SUCCEEDED", run.cause


def test_a_resume_for_a_promotion_that_waits_for_nothing_is_refused_and_changes_nothing(
    promotion: Promotion,
) -> None:
    # GIVEN a promotion analysing its first step (no gate)
    stack = promotion.stack
    arn, sampler = _started(promotion, {"steps": [{"weight": 10, "pause": 180}, {"weight": 100}]})
    promotions, _ = promotion.progress()
    _until(lambda: promotion.progress()[1] or None, "the promotion has begun")

    # WHEN someone resumes it
    with pytest.raises(NotWaiting) as refused:
        routing.resume(_gates(stack, promotions), ALICE, promotion.name)

    # THEN the refusal says where it is, and the promotion goes on as it would have
    assert "waits for no person" in str(refused.value)
    run = stack.rig.wait(arn, 40)
    sampler.__exit__()
    assert run.status == "SUCCEEDED", run.cause
    assert "WaitForPerson" not in run.states


def test_an_abort_at_the_gate_backs_out_at_once_and_names_who(promotion: Promotion) -> None:
    # GIVEN a promotion waiting at its 10 % gate
    stack = promotion.stack
    arn, sampler = _started(
        promotion, {"steps": [{"weight": 10, "pause": "manual"}, {"weight": 100}]}
    )
    _waiting(promotion)
    promotions, _ = promotion.progress()

    # WHEN a person aborts it
    routing.abort(_gates(stack, promotions), ALICE, promotion.name, reason="wrong build")
    run = stack.rig.wait(arn, 40)
    sampler.__exit__()

    # THEN it ends FAILED, PromotionAborted, naming who and why; production back on green
    assert run.status == "FAILED"
    assert run.error == "PromotionAborted"
    assert f"aborted by {ALICE.actor}" in (run.cause or "")
    assert "wrong build" in (run.cause or "")
    assert run.states[-4:] == ["WaitForPerson", "BackOut", "BackedOut?", "PromotionFailed"]
    assert sampler.seen == [((0, 100), "blue"), ((10, 90), "blue"), ((0, 100), "blue")]
    # AND a person's abort says nothing about the image: its verdict is untouched
    assert stack.ledger.verdict(SEED_BLUE) is Verdict.UNKNOWN
    assert stack.ledger.lock_holder() is None


def test_an_abort_while_analysing_backs_out_at_the_next_reading(promotion: Promotion) -> None:
    # GIVEN a promotion analysing a long first step
    stack = promotion.stack
    arn, sampler = _started(promotion, {"steps": [{"weight": 10, "pause": 600}, {"weight": 100}]})
    _until(
        lambda: _weights(stack.emulator, promotion.router)[0] == (10, 90), "the first step is set"
    )
    promotions, _ = promotion.progress()

    # WHEN a person aborts it
    decided = routing.abort(_gates(stack, promotions), ALICE, promotion.name)
    run = stack.rig.wait(arn, 40)
    sampler.__exit__()

    # THEN it backs out at its next step: the reading after the abort was asked ends it,
    # long before the 600 s pause (ten readings)
    assert decided["decision"] == "abort"
    assert run.error == "PromotionAborted"
    assert f"aborted by {ALICE.actor}" in (run.cause or "")
    assert run.states.count("Analyse") < 10
    assert run.states[-5:] == ["Analyse", "Judged?", "BackOut", "BackedOut?", "PromotionFailed"]
    assert sampler.seen[-1] == ((0, 100), "blue")


def test_readings_too_quiet_to_judge_wait_for_a_person_instead_of_passing(
    promotion: Promotion, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack that needs far more requests than the traffic gives, one quiet reading
    # tolerated
    monkeypatch.setenv("BG_ANALYSIS_MIN_REQUESTS", "1000000")
    monkeypatch.setenv("BG_ANALYSIS_INCONCLUSIVE_LIMIT", "1")
    deploy_steps_dependencies.reset()
    stack = promotion.stack
    arn, sampler = _started(promotion, {"steps": [{"weight": 10, "pause": 60}, {"weight": 100}]})

    # WHEN it has read twice
    record = _waiting(promotion)

    # THEN it waits for a person at 10 %, saying why, rather than going on
    assert "inconclusive 2 times in a row" in record.waiting
    assert _weights(stack.emulator, promotion.router)[0] == (10, 90)
    assert [a["finding"] for a in record.progress["analyses"]] == ["inconclusive"] * 2
    # AND a person's resume takes it on
    promotions, _ = promotion.progress()
    routing.resume(_gates(stack, promotions), ALICE, promotion.name)
    run = stack.rig.wait(arn, 40)
    sampler.__exit__()
    assert run.status == "SUCCEEDED", run.cause


def test_a_gate_nobody_decides_times_out_and_backs_out(
    promotion: Promotion, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN gates that wait 2 seconds
    monkeypatch.setenv("BG_GATE_TIMEOUT_SECONDS", "2")
    deploy_steps_dependencies.reset()
    stack = promotion.stack

    # WHEN a promotion reaches a manual gate and nobody comes
    run, seen = promotion.run({"steps": [{"weight": 10, "pause": "manual"}, {"weight": 100}]})

    # THEN it is backed out, GateTimedOut, saying how long it waited
    assert run.status == "FAILED"
    assert run.error == "GateTimedOut"
    assert "within 2s" in (run.cause or "")
    assert seen[-1] == ((0, 100), "blue")
    assert stack.ledger.lock_holder() is None


def test_a_gate_with_a_heartbeat_stays_open_while_a_person_holds_it(
    promotion: Promotion, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN gates that need a heartbeat every 3 seconds
    heartbeat = 3
    monkeypatch.setenv("BG_GATE_HEARTBEAT_SECONDS", str(heartbeat))
    monkeypatch.setenv("BG_GATE_TIMEOUT_SECONDS", "60")
    deploy_steps_dependencies.reset()
    stack = promotion.stack
    arn, sampler = _started(
        promotion, {"steps": [{"weight": 10, "pause": "manual"}, {"weight": 100}]}
    )
    record = _waiting(promotion)
    # moto sets up a task's heartbeat only once the Lambda that was handed the token has
    # returned; a heartbeat sent in between finds none (real Step Functions has no such
    # gap). The gate can be held from the first heartbeat moto accepts for its token.
    tokens = StepFunctionsTaskTokens(stack.rig.sfn)
    _until(lambda: tokens.heartbeat(record.token), "moto accepts the gate's heartbeat", 10)
    held_since = time.monotonic()
    promotions, _ = promotion.progress()

    # WHEN a person holds it past two heartbeat periods (a heartbeat every half second),
    # then resumes it
    while time.monotonic() - held_since < 2 * heartbeat + 0.5:
        held = routing.resume(_gates(stack, promotions), ALICE, promotion.name, hold=True)
        assert held["decision"] == "hold"
        time.sleep(0.5)
    routing.resume(_gates(stack, promotions), ALICE, promotion.name)
    run = stack.rig.wait(arn, 40)
    sampler.__exit__()

    # THEN it lasted past two heartbeat periods and went on to 100 %
    assert run.status == "SUCCEEDED", run.cause
    assert "WaitForPersonWithHeartbeat" in run.states


def test_a_gate_whose_heartbeat_stops_times_out_and_backs_out(
    promotion: Promotion, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN gates that need a heartbeat every second, and a minute to be decided
    monkeypatch.setenv("BG_GATE_HEARTBEAT_SECONDS", "1")
    monkeypatch.setenv("BG_GATE_TIMEOUT_SECONDS", "60")
    deploy_steps_dependencies.reset()

    # WHEN a promotion reaches its manual gate and nobody holds it
    started = time.monotonic()
    run, seen = promotion.run({"steps": [{"weight": 10, "pause": "manual"}, {"weight": 100}]})

    # THEN it is backed out long before the minute, for want of a heartbeat
    assert run.error == "GateTimedOut"
    assert "no heartbeat came for 1s" in (run.cause or "")
    assert time.monotonic() - started < 30
    assert seen[-1] == ((0, 100), "blue")


def test_a_promotions_timeline_names_its_phases(promotion: Promotion) -> None:
    # GIVEN a promotion that failed its analysis and was backed out
    stack = promotion.stack
    promotion.simulator.mark(str(SEED_BLUE), "errors")
    run, _ = promotion.run({"steps": [{"weight": 10, "pause": 120}, {"weight": 100}]})
    assert run.error == "AnalysisFailed"

    # WHEN its timeline is read (GET /deployments/{id}/timeline)
    timeline = deployment_timeline(
        HistoryPorts(
            settings=stack.api_settings,
            ledger=stack.ledger,
            flow=StepFunctionsFlow(stack.rig.machine.arn, stack.rig.sfn),
            executions=StepFunctionsHistory(stack.rig.sfn),
        ),
        promotion.name,
    )

    # THEN its steps are the promotion's phases, in words, ending Failed
    titles = [step.title for step in timeline.steps]
    assert titles[:2] == ["Lock", "Traffic"]
    assert "Analysis" in titles
    assert titles[-2:] == ["Back out", "Failed"]
