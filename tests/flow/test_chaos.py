"""Every Task of the real deploy.asl.json dies once, each way a Lambda Task can die.

The matrix: each Task state of the deploy path (a good digest), the rollback path (a
broken digest), the failure before the apply (a queued deploy whose digest was
judged failed while it waited) and the progressive promotion (passing through a
manual gate, failing its analysis, stuck when backing out fails), each dying each way of
``tests.flow.chaos`` (before its work, after it with a retried error, after it with
``Lambda.Unknown``, outliving its timeout, a racing deployment taking the lock
between attempts), plus DynamoDB throttling and EventBridge failures at chosen
calls. Every case states what it expects the same way, ``assert_survived``:

- the execution ends within ``BOUND`` seconds;
- the lock is free, or held by a live deployment (the racer);
- the record has ended, and its outcome agrees with the execution and the cluster:
  succeeded ⇔ SUCCEEDED and the colour runs the digest; any other end ⇔ FAILED and the
  colour runs what it ran before the deploy (or when the racer took over);
- a fault is not a judgement: a good digest is never marked failed, a broken one never
  healthy, and a digest healthy before the case stays so;
- production never runs a failed digest nor canary work: the production colour's
  image never changes, and production's weights only move by the promotion's steps;
- each outcome's event is published once;
- a zombie changes nothing; after a race, nothing of the execution writes but closing
  its own record;
- then the next deploy of a good digest succeeds.

Waits and Retry intervals run at ``FACTOR`` of their length; the deploy paths' cluster
emulator runs its controllers 100 times faster than real time (a rollout in 0.1 s, a
hook's Job in 0.3 s) so the flow polls (CheckRollout, CheckHook, ...) rather than
finding every rollout done at its first reading.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.adapters.promotions import DynamoPromotions
from bluegreen.adapters.stepfunctions import StepFunctionsTaskTokens
from bluegreen.domain.models import Colour, Digest, Verdict
from bluegreen.domain.promotion import NotWaiting, Strategy
from bluegreen.logic import routing, services
from bluegreen.logic.requests import Caller
from bluegreen.logic.routing import GatePorts
from functions.deploy_steps import app as deploy_steps
from functions.deploy_steps import dependencies as deploy_steps_dependencies
from local.cloudwatch import percentiles_in_moto
from local.cluster import Clock, ClusterEmulator
from local.stepfunctions import ExecutionReport, shortened_waits
from local.traffic import TrafficSimulator
from tests.backends import emulator_backend
from tests.flow.chaos import (
    DEATHS,
    Chaos,
    Fault,
    Production,
    ProductionWatch,
    Racer,
    World,
    WorldReader,
    handler_for,
    wait_until,
)
from tests.flow.conftest import SEED_BLUE, SEED_GREEN, Stack
from tests.flow.fakes import digest
from tests.flow.harness import FlowRig, Router

pytestmark = pytest.mark.flow

NEW, NEXT = digest(0xC1), digest(0xC2)
"""The digest each case deploys, and the good digest deployed after it."""

FACTOR = 0.01
BOUND = 60.0
LEASE = 60
"""The lock's lease: a deploy that waits for the lock gives up once it asked to wait lease
+ 60 s, under 2 s at ``FACTOR``."""

ALICE = Caller("arn:aws:iam::123456789012:user/alice", "203.0.113.9", "req-chaos")
SUCCESS_EVENTS = {"succeeded": "Deployment Succeeded", "rolled_back": "Deployment Rolled Back"}
UNCHANGED = ("not changed", "nothing was changed", "changes nothing")
"""How a Cause says the cluster was left as the deployment found it."""


# --- the paths --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    """A way through the flow, and what its end must look like."""

    name: str
    states: tuple[str, ...]
    promotion: bool = False
    good: bool = True
    """Whether the digest the path deploys or promotes is good."""
    may_succeed: bool = True
    stuck: bool = False
    """Backing out fails (the router object refuses writes): production may keep the
    promotion's last step until the documented repair."""


DEPLOY = Path("deploy", ("Begin", "CheckRollout", "StartHook", "CheckHook", "Finish"))
CONSOLE = Path("console", ("Begin",))
BROKEN = Path(
    "broken",
    ("RollBack", "CheckRollbackRollout", "RerunStartHook", "RerunCheckHook", "ConcludeRollback"),
    good=False,
    may_succeed=False,
)
REFUSED = Path("refused", ("ReleaseAndFail",), good=False, may_succeed=False)
PROMOTE = Path(
    "promote",
    ("BeginPromotion", "ShiftTraffic", "Analyse", "PassGate", "ShiftTraffic#2"),
    promotion=True,
)
BACK_OUT = Path("backout", ("BackOut",), promotion=True, good=False, may_succeed=False)
STUCK = Path("stuck", ("PromotionStuck",), promotion=True, may_succeed=False, stuck=True)
PATHS = {p.name: p for p in (DEPLOY, CONSOLE, BROKEN, REFUSED, PROMOTE, BACK_OUT, STUCK)}

GATED: dict[str, Any] = {"steps": [{"weight": 10, "pause": "manual"}, {"weight": 100}]}
"""The promotion of ``promote`` and ``stuck``: 10 %, a person resumes, then all of it."""
JUDGED: dict[str, Any] = {"steps": [{"weight": 10, "pause": 120}, {"weight": 100}]}
"""The promotion of ``backout``: 10 % for two minutes, failed at the first reading (the
canary's p99 is 2 s)."""


def _fault(spec: str, kind: str, **extra: Any) -> Fault:
    state, _, entry = spec.partition("#")
    return Fault(state, kind, entry=int(entry or 1), **extra)


@dataclass(frozen=True)
class Case:
    path: Path
    faults: tuple[Fault, ...]

    @property
    def id(self) -> str:
        return f"{self.path.name}-{'+'.join(str(f) for f in self.faults)}"

    def has(self, kind: str) -> bool:
        return any(f.kind == kind for f in self.faults)


def _matrix() -> list[Case]:
    cases = [
        Case(path, (_fault(state, kind),))
        for path in PATHS.values()
        for state in path.states
        for kind in DEATHS
    ]
    infrastructure = [
        # the record written after the verdict healthy: a throttle there is no judgement
        (DEPLOY, _fault("Finish", "throttle", operation="UpdateItem", call=2)),
        # the hook's log kept in the record after the hook succeeded
        (
            DEPLOY,
            _fault("CheckHook", "throttle", operation="UpdateItem", code="ThrottlingException"),
        ),
        # the lock taken at Begin
        (DEPLOY, _fault("Begin", "throttle", operation="PutItem")),
        (DEPLOY, _fault("Finish", "events_down")),
        # the record written after the broken digest was marked failed
        (BROKEN, _fault("ConcludeRollback", "throttle", operation="UpdateItem", call=2)),
        (BROKEN, _fault("ConcludeRollback", "events_down")),
        # the record written after the roles were swapped and the digest marked healthy
        (PROMOTE, _fault("ShiftTraffic#2", "throttle", operation="UpdateItem", call=2)),
        (PROMOTE, _fault("ShiftTraffic#2", "events_down")),
        (BACK_OUT, _fault("BackOut", "events_down")),
    ]
    return cases + [Case(path, (fault,)) for path, fault in infrastructure]


MATRIX = _matrix()


# --- what a case observed ---------------------------------------------------------------------


@dataclass
class Observed:
    """Everything ``assert_survived`` judges, gathered by ``Trial``."""

    case: Case
    colour: str
    """The colour the deploy acts on (the canary colour a promotion promotes)."""
    deployed: Digest
    before: dict[str, str]
    """Each colour's image when the case began."""
    healthy_before: set[str]
    start: World | None = None
    """The world when the case began."""
    run: ExecutionReport | None = None
    timed_out: str = ""
    elapsed: float = 0.0
    chaos: Chaos | None = None
    end: World | None = None
    zombie_before: World | None = None
    zombie_after: World | None = None
    production: list[Production] = field(default_factory=list)
    """What production served, each distinct state in turn, from start to the zombie's end."""
    production_end: Production | None = None
    watch_errors: list[str] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock_at_end: str | None = None
    verdicts: dict[str, str] = field(default_factory=dict)
    repair: str = ""
    next_deploy: str = ""


def _split_taken_back(seen: Observed) -> bool:
    """Production ends all on the colour it served before the promotion, as Fenced says."""
    before = seen.production[0] if seen.production else None
    end = seen.production_end
    cause = (seen.run.cause or "") if seen.run else ""
    return (
        before is not None
        and end is not None
        and end.serving == before.serving
        and "was taken back to" in cause
    )


# --- the one assertion ------------------------------------------------------------------------


def assert_survived(seen: Observed) -> None:
    """Every promise of the module's list, checked for one case; all failures at once."""
    problems: list[str] = []
    case, path, chaos, run = seen.case, seen.case.path, seen.chaos, seen.run
    assert chaos is not None
    racing = case.has("race")

    unfired = chaos.unfired
    if unfired:
        reached = sorted({i.state for i in chaos.invocations})
        problems.append(f"fault never fired: {unfired} (states reached: {reached})")
    if run is None:
        problems.append(f"the execution did not end within {BOUND:.0f}s: {seen.timed_out}")
        _fail(seen, problems)
        return
    if seen.elapsed > BOUND:
        problems.append(f"the execution took {seen.elapsed:.1f}s, over {BOUND:.0f}s")

    # the lock
    allowed = {None, "racer"} if racing else {None}
    if seen.lock_at_end not in allowed:
        problems.append(f"the lock is held by {seen.lock_at_end!r} after the execution ended")

    # the record, the execution and the cluster agree
    end = seen.end
    assert end is not None
    record = end.record
    outcome = str(record["outcome"]) if record else None
    images = end.images
    if record is None:
        # Only a console run that never began is unrecorded: then nothing may have changed.
        if case.path.name != "console" or run.status != "FAILED":
            problems.append(f"no record of the deployment, and the execution {run.status}")
        elif images != seen.before:
            problems.append(f"no record, but the cluster changed: {seen.before} -> {images}")
    elif outcome == "running":
        problems.append(f"the record is left running while the execution {run.status}")
    succeeded = outcome in {"succeeded"}
    if run.status == "SUCCEEDED" and not succeeded:
        problems.append(f"the execution SUCCEEDED but the record says {outcome}")
    if run.status == "FAILED" and succeeded:
        problems.append(f"the execution FAILED ({run.error}) but the record says succeeded")
    if run.status not in {"SUCCEEDED", "FAILED"}:
        problems.append(f"the execution ended {run.status}")
    if run.status == "SUCCEEDED" and not path.may_succeed:
        problems.append(f"the {path.name} path SUCCEEDED: it cannot")
    colour = seen.colour
    if not path.promotion:
        race_images = chaos.race_world.images if racing and chaos.race_world else None
        ran_before = (race_images or seen.before)[colour]
        rolled_back_to = record.get("rolled_back_to") if record else None
        if succeeded and not images[colour].endswith(f"@{seen.deployed}"):
            problems.append(f"succeeded, but {colour} runs {images[colour]}, not the digest")
        if outcome not in {None, "running", "succeeded"}:
            if rolled_back_to and not images[colour].endswith(f"@{rolled_back_to}"):
                problems.append(
                    f"ended {outcome}, rolled back to {_short(rolled_back_to)}, but {colour} "
                    f"runs {_short(images[colour])}"
                )
            if not rolled_back_to and images[colour] != ran_before:
                problems.append(
                    f"ended {outcome} without a rollback, but {colour} runs "
                    f"{_short(images[colour])}, not what it ran before ({_short(ran_before)})"
                )
    else:
        selector = end.canary_env.get("selector")
        assert seen.production_end is not None
        weights = dict(seen.production_end.shares)
        canary, production = colour, Colour(colour).other.value
        if succeeded and (selector, weights.get(canary)) != (production, 100):
            problems.append(
                f"promoted, but the canary is {selector} and production's weights {weights}"
            )
        backed_out = (selector, weights.get(production)) == (canary, 100)
        if outcome not in {None, "running", "succeeded"} and not path.stuck and not backed_out:
            problems.append(
                f"ended {outcome}, but production is not back on {production}: the canary "
                f"is {selector} and production's weights {weights}"
            )
    said = f"{run.cause or ''} {record.get('cause', '') if record else ''}".lower()
    if any(words in said for words in UNCHANGED) and seen.start is not None:
        changed = [
            line
            for line in seen.start.differences(end, names=_NAMES)
            if line.split(":")[0] in {"images", "canary_env", "services", "router"}
        ]
        if changed:
            problems.append(f"the Cause says the cluster was not changed, but: {changed}")
    verdicts = seen.verdicts
    for digest_, verdict in verdicts.items():
        if digest_ in seen.healthy_before and verdict == "failed":
            problems.append(f"{_short(digest_)}, healthy before the case, was marked failed")
    mine = verdicts.get(str(seen.deployed), "unknown")
    if path.good and mine == "failed":
        problems.append(f"the good digest {_short(str(seen.deployed))} was marked failed")
    if not path.good and mine == "healthy":
        problems.append(f"the broken digest {_short(str(seen.deployed))} was marked healthy")
    if succeeded and mine != "healthy":
        problems.append(f"succeeded, but {_short(str(seen.deployed))} is judged {mine}")
    serving = seen.production_end.serving if seen.production_end else set()
    for serves in sorted(serving):
        ran = images[serves].rsplit("@", 1)[-1]
        if verdicts.get(ran) == "failed":
            problems.append(f"production reaches {serves}, which runs {_short(ran)}, judged failed")

    # production only changes by the promotion
    problems += _production_problems(seen)

    # the outcome's event, once
    ours = [(t, d) for t, d in seen.events if d.get("deploymentId") == run.name]
    kinds = [t for t, _ in ours]
    if record is not None and outcome != "running":
        expected = SUCCESS_EVENTS.get(str(outcome))
        if len(ours) != 1:
            problems.append(f"{len(ours)} events published for the {outcome} outcome: {kinds}")
        elif (expected is not None and kinds != [expected]) or (
            expected is None and kinds[0] in SUCCESS_EVENTS.values()
        ):
            problems.append(f"the {outcome} outcome was published as {kinds}")
        elif ours[0][1].get("outcome") != outcome:
            problems.append(f"the event says {ours[0][1].get('outcome')}, the record {outcome}")

    # a zombie changes nothing
    for zombie in chaos.zombies:
        if seen.zombie_before and seen.zombie_after:
            changed = seen.zombie_before.differences(seen.zombie_after, names=_NAMES)
            if changed:
                did = zombie.raised or f"returned {str(zombie.returned)[:200]}"
                problems.append(f"the zombie {zombie.fault} ({did}) changed: {changed}")

    # after a race, nothing of the execution writes but the close of its own record, and
    # for a promotion the split of production it leaves with no owner (the racer is no
    # promotion): Fenced takes that back to the old colour, and says so in the Cause
    if racing and chaos.race_world is not None:
        before = chaos.race_world
        closing = ("outcome", "finished_at", "cause")
        running_then = before.record is not None and before.record.get("outcome") == "running"
        changed = before.differences(
            end, ignore_record=closing if running_then else (), names=_NAMES
        )
        if path.promotion and changed and _split_taken_back(seen):
            changed = [c for c in changed if not c.startswith(("canary_env:", "router:"))]
        if changed:
            problems.append(f"after the racer took the lock, the execution changed: {changed}")

    if seen.repair:
        problems.append(seen.repair)
    if seen.next_deploy:
        problems.append(f"the next deploy of a good digest: {seen.next_deploy}")
    _fail(seen, problems)


def _fail(seen: Observed, problems: Sequence[str]) -> None:
    if not problems:
        return
    run = seen.run
    summary = (
        f"{run.status} {run.error or ''} after {seen.elapsed:.1f}s; states: "
        f"{' > '.join(_compact(run.states))}; task errors: {run.task_errors}"
        if run
        else "no end"
    )
    raise AssertionError(
        f"{seen.case.id}: {len(problems)} broken promise(s)\n  - "
        + "\n  - ".join(problems)
        + f"\n  ({summary})\n  cause: {(run.cause or '')[:400] if run else ''}"
    )


def _compact(states: Sequence[str]) -> list[str]:
    out: list[str] = []
    for state in states:
        if out and out[-1].split(" x")[0] == state:
            head, _, count = out[-1].partition(" x")
            out[-1] = f"{head} x{int(count or 1) + 1}"
        else:
            out.append(state)
    return out


_NAMES = {
    str(d): name
    for d, name in (
        (SEED_BLUE, "SEED_BLUE"),
        (SEED_GREEN, "SEED_GREEN"),
        (NEW, "NEW"),
        (NEXT, "NEXT"),
    )
}


def _short(image: str) -> str:
    """An image or digest by the name this module gives it."""
    found = image.rsplit("@", 1)[-1]
    return _NAMES.get(found, found[-12:])


def _production_problems(seen: Observed) -> list[str]:
    """Production's images never change; its shares only by the promotion's steps."""
    samples = seen.production
    if not samples:
        return ["production was never sampled"]
    if seen.watch_errors:
        return [f"production could not be sampled: {seen.watch_errors[:3]}"]
    first = samples[0]
    if not seen.case.path.promotion:
        # A canary deploy: the colours production reaches, and what they run, never change.
        def served(sample: Production) -> tuple[Any, ...]:
            return tuple(sorted((c, sample.images[c]) for c in sample.serving))

        changed = [served(s) for s in samples if served(s) != served(first)]
        if changed:
            return [f"production changed during a canary deploy: {served(first)} -> {changed[:3]}"]
        return []
    problems = []
    moved = [s for s in samples if s.images != first.images]
    if moved:
        problems.append(f"a colour's image changed during a promotion: {moved[0].images}")
    strategy = JUDGED if seen.case.path.name == "backout" else GATED
    steps = {0, 100} | {int(step["weight"]) for step in strategy["steps"]}
    odd = [s.shares for s in samples if s.shares.get(seen.colour, 0) not in steps]
    if odd:
        problems.append(f"production gave the canary a share no step asked for: {odd[:3]}")
    return problems


# --- running one case -------------------------------------------------------------------------


class Gatekeeper:
    """A person who resumes each gate the promotion opens, once."""

    def __init__(self, stack: Stack, promotion_id: str) -> None:
        self._stack, self._id = stack, promotion_id
        self._promotions = DynamoPromotions(
            stack.settings.ledger_table, stack.rig.clients["dynamodb"], stack.settings.application
        )
        self._ports = GatePorts(
            ledger=stack.ledger,
            promotions=self._promotions,
            tokens=StepFunctionsTaskTokens(stack.rig.sfn),
        )
        self._done: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="gatekeeper")

    def _run(self) -> None:
        while not self._stop.is_set():
            record = self._promotions.record(self._id)
            if record is not None and record.waiting and record.token not in self._done:
                self._done.add(record.token)
                # The gate may have closed meanwhile: the flow decides what follows.
                with contextlib.suppress(NotWaiting):
                    routing.resume(self._ports, ALICE, self._id)
            self._stop.wait(0.01)

    def __enter__(self) -> Gatekeeper:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Trial:
    """One case on a stack of its own: arrange the path, run it through ``Chaos``, observe."""

    case: Case
    stack: Stack
    router: Router
    simulator: TrafficSimulator | None = None

    def reader(self, deployment_id: Callable[[], str | None]) -> WorldReader:
        return WorldReader(
            self.stack.settings,
            self.stack.backend,
            self.stack.rig.clients["dynamodb"],
            deployment_id,
            (SEED_BLUE, SEED_GREEN, NEW, NEXT),
        )

    def __call__(self) -> Observed:
        stack, path = self.stack, self.case.path
        ledger = stack.ledger
        name: dict[str, str] = {}
        read = self.reader(lambda: name.get("id"))
        if path.promotion:
            colour, deployed = "blue", SEED_BLUE
        elif path.name == "broken":
            # Back to green's digest, not to blue's own: a rollout of its own to poll.
            colour, deployed = "blue", NEW
            ledger.set_verdict(SEED_GREEN, Verdict.HEALTHY, "judged before the case")
            stack.backend.mark_image(str(NEW), "CrashLoopBackOff")
        else:
            colour, deployed = "blue", NEW
            ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY, "judged before the case")
        if path.name == "backout":
            assert self.simulator is not None
            self.simulator.mark(str(SEED_BLUE), "slow")
        before = {c.value: read.image(c) for c in Colour}
        healthy_before = {
            str(d) for d in (SEED_BLUE, SEED_GREEN, NEW) if ledger.verdict(d).value == "healthy"
        }
        racer = Racer(
            stack.settings.ledger_table,
            stack.rig.clients["dynamodb"],
            stack.settings.application,
            LEASE,
        )
        scenery: dict[str, Callable[[], None]] = {}
        if path.stuck:
            # From the first BackOut on, the router object cannot be written or read.
            scenery["BackOut"] = lambda: stack.emulator.faults.fail_requests(
                "*", "/httproutes", status=503, count=1_000_000
            )
        chaos = Chaos(
            deploy_steps.lambda_handler,
            self.case.faults,
            snapshot=read,
            racer=racer,
            on_first_entry=scenery,
        )
        seen = Observed(
            self.case, colour, deployed, before, healthy_before, start=read(), chaos=chaos
        )
        watch = ProductionWatch(read)
        with ExitStack() as scope:
            scope.enter_context(handler_for(self.router, chaos))
            scope.enter_context(chaos)
            scope.enter_context(watch)
            arn = self._start(name)
            started = time.monotonic()
            if path.name == "promote":
                scope.enter_context(Gatekeeper(stack, name["id"]))
            try:
                seen.run = stack.rig.wait(arn, timeout=BOUND)
            except TimeoutError as exc:
                seen.timed_out = str(exc)
            seen.elapsed = time.monotonic() - started
            if seen.run is None:
                seen.production, seen.watch_errors = watch.seen, watch.errors
                return seen
            if path.stuck:
                stack.emulator.faults.clear()  # the API server answers again
            seen.end = read()
            seen.production_end = watch.sample()
            seen.lock_at_end = ledger.lock_holder()
            seen.verdicts = {str(d): ledger.verdict(d).value for d in (SEED_BLUE, SEED_GREEN, NEW)}
            seen.events += stack.published()
            if chaos.zombies:
                seen.zombie_before = read()
                chaos.run_zombies()
                seen.zombie_after = read()
                seen.events += stack.published()
        seen.production, seen.watch_errors = watch.seen, watch.errors
        racer.release()
        if path.stuck:
            seen.repair = self._repair()
        seen.next_deploy = self._next_deploy()
        return seen

    def _start(self, name: dict[str, str]) -> str:
        stack, path = self.stack, self.case.path
        if path.promotion:
            strategy = Strategy.parse(JUDGED if path.name == "backout" else GATED)
            started = routing.request_promotion(stack.release_ports(), ALICE, strategy=strategy)
            name["id"] = started.deployment_id
            return started.execution_arn
        if path.name == "console":
            name["id"] = f"console-{uuid.uuid4().hex[:12]}"
            return stack.rig.start({"action": "deploy", "image": str(NEW)}, name["id"])
        if path.name == "refused":
            return self._refused(name)
        started = stack.request_deploy(ALICE, str(NEW))
        name["id"] = started.deployment_id
        return started.execution_arn

    def _refused(self, name: dict[str, str]) -> str:
        """A deploy queued behind another, whose digest is judged failed while it waits."""
        stack = self.stack
        assert stack.ledger.acquire_lock("earlier-deploy", LEASE)
        started = stack.request_deploy(ALICE, str(NEW))
        name["id"] = started.deployment_id
        wait_until(
            lambda: "WaitForLock" in stack.rig.entered(started.execution_arn),
            "the deploy waits for the lock",
        )
        stack.ledger.set_verdict(NEW, Verdict.FAILED, "judged failed while the deploy waited")
        stack.ledger.release_lock("earlier-deploy")
        return started.execution_arn

    def _repair(self) -> str:
        """The repair a stuck promotion's Cause names: the canary colour switched to again."""
        stack = self.stack
        try:
            services.switch_canary(stack.release_ports(), ALICE, Colour.BLUE)
        except Exception as exc:
            return f"the repair (switch to blue) failed: {type(exc).__name__}: {exc}"
        return ""

    def _next_deploy(self) -> str:
        """Deploy a good digest to the canary now; what went wrong, if anything."""
        stack = self.stack
        try:
            started = stack.request_deploy(ALICE, str(NEXT))
        except Exception as exc:
            return f"refused: {type(exc).__name__}: {exc}"
        try:
            run = stack.rig.wait(started.execution_arn, timeout=BOUND)
        except TimeoutError:
            return f"did not end within {BOUND:.0f}s"
        if run.status != "SUCCEEDED":
            return f"{run.status} {run.error}: {(run.cause or '')[:300]}"
        canary = self.reader(lambda: None).canary_env().get("selector", "blue")
        running = stack.running(canary)
        if not running.endswith(f"@{NEXT}"):
            return f"SUCCEEDED but the canary {canary} runs {running}"
        return ""


# --- the fixtures -----------------------------------------------------------------------------


def _target_groups(unique: str) -> dict[str, str]:
    return {c: f"targetgroup/k8s-{unique}-{c}/0123456789abcdef" for c in ("blue", "green")}


@pytest.fixture
def trial(
    stack_factory: Any,
    shared_rig: tuple[FlowRig, Router],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[Case], Observed]]:
    """Run a case on a stack of its own: waits shortened, traffic flowing for promotions."""
    _, router = shared_rig
    with ExitStack() as scope:

        def run(case: Case) -> Observed:
            scope.enter_context(shortened_waits(FACTOR))
            if not case.path.promotion:
                # Controllers 100 times faster than real time: a rollout takes 0.1 s and a
                # hook's Job 0.3 s, so that the flow polls them (a Job done by the first
                # check, on a loaded machine, would skip the check states the matrix hits).
                emulator = ClusterEmulator(
                    seed="default", clock=Clock.scaled(100), rollout_seconds=10, job_seconds=30
                ).start()
                scope.callback(emulator.stop)
                stack = stack_factory(
                    backend=emulator_backend(emulator),
                    BG_KUBE_API_URL=emulator.url,
                    BG_LOCK_LEASE_SECONDS=str(LEASE),
                )
                return Trial(case, stack, router)()
            groups = _target_groups(uuid.uuid4().hex[:10])
            env = {
                "BG_LOCK_LEASE_SECONDS": str(LEASE),
                "BG_TRAFFIC_ROUTER": "gateway",
                "BG_ANALYSIS_TARGET_GROUPS": ",".join(f"{c}={t}" for c, t in groups.items()),
                "BG_ANALYSIS_INTERVAL_SECONDS": "60",
                "BG_ANALYSIS_MIN_REQUESTS": "5",
                "BG_ANALYSIS_MAX_ERROR_PERCENT": "1",
                "BG_ANALYSIS_MAX_P99_SECONDS": "0.5",
            }
            if case.path.stuck:
                env["BG_GATE_TIMEOUT_SECONDS"] = "1"
            stack = stack_factory(**env)
            if case.path.stuck:
                # A move of traffic waits out a failing API server for 0.2 s, not 5 s, so
                # that BackOut's eight attempts take seconds.
                @functools.lru_cache(maxsize=1)
                def cluster_with_short_budget() -> KubernetesCluster:
                    return KubernetesCluster.from_settings(
                        deploy_steps_dependencies.settings(), switch_budget_seconds=0.2
                    )

                monkeypatch.setattr(deploy_steps_dependencies, "cluster", cluster_with_short_budget)
            cluster = KubernetesCluster.from_settings(stack.settings)
            cloudwatch = boto3.client("cloudwatch", region_name="us-west-2")
            simulator = TrafficSimulator(cluster, cloudwatch, groups, rate=400.0, tick=0.05)
            scope.enter_context(percentiles_in_moto())
            scope.enter_context(simulator)
            return Trial(case, stack, router, simulator)()

        yield run


@pytest.mark.parametrize("case", MATRIX, ids=[c.id for c in MATRIX])
def test_a_task_that_dies_breaks_no_promise(trial: Callable[[Case], Observed], case: Case) -> None:
    assert_survived(trial(case))


CONTROLS = [Case(path, ()) for path in PATHS.values()]


@pytest.mark.parametrize("case", CONTROLS, ids=[c.path.name for c in CONTROLS])
def test_each_path_without_faults_reaches_its_states_and_keeps_every_promise(
    trial: Callable[[Case], Observed], case: Case
) -> None:
    seen = trial(case)
    assert_survived(seen)
    assert seen.chaos is not None
    entries: dict[str, int] = {}
    for invocation in seen.chaos.invocations:
        entries[invocation.state] = max(entries.get(invocation.state, 0), invocation.entry)
    for spec in case.path.states:
        state, _, entry = spec.partition("#")
        assert entries.get(state, 0) >= int(entry or 1), (spec, entries)
