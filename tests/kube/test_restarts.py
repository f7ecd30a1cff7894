"""The flow on a real API server that restarts under it: kube-apiserver or etcd, in place.

A real cluster's API server restarts (an upgrade, a crash, EKS replacing a control-plane
node) and etcd with it or alone; its clients see refused connections, cut keep-alive
connections and, while etcd is away, answers that come late or as errors. Each case
restarts one program of the real control plane (``ControlPlane.restart_apiserver``,
``restart_etcd``: SIGTERM, as a graceful restart, or SIGKILL, as a crash) at one chosen
moment, and the product must converge within its own budgets (the Tasks' Retry, the
move budget of a switch) on what it promises:

- a deploy whose rollout is being polled (``CheckRollout``'s first attempt starts on a
  server that is going away, while the new pods roll out) ends SUCCEEDED, the digest
  healthy, the lock free, the record succeeded, the event published once;
- a selector switch whose first write is answered just before the restart (the canary
  Service moved, canaryEnv and the production Service still to write) ends either
  completed or put back (``SwitchRestored``), never half-switched: canaryEnv and both
  Services agree; a repeat completes it;
- a progressive promotion's step under the gateway router whose first write (canaryEnv)
  is answered just before the restart reaches the step's weights or is backed out,
  canaryEnv and the HTTPRoute agreeing, and then completes when a person resumes it.

The restart is triggered from inside the product's own path: a wrapper of the
deploy-steps handler names the Task state being run (as ``tests.flow.chaos`` wraps it),
and a wrapper of the adapter's ``ApiClient`` REST client fires after a chosen write is
answered. The restart returns once the program's port refuses connections; the new
process starts in the background, so the product's next requests meet the restart.

The control plane is this module's own (a restart disturbs no other test), its pods get
ready in 2 s, so that a rollout of two replicas lasts about 4 s. Waits and Retry
intervals run as long as the definition says: a restart takes the real time it takes,
so the Retry windows it has to fit in are the deployed ones (a fifth of them, as
``stack_on`` runs them, is often shorter than a graceful restart: the retries are
jittered). The seed's progress deadline is the shipped 600 s, since a restart is no
reason to call a rollout stalled.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from bluegreen.adapters.kube.client import api_client_for
from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.adapters.promotions import DynamoPromotions
from bluegreen.adapters.stepfunctions import StepFunctionsTaskTokens
from bluegreen.config import Settings
from bluegreen.domain.errors import SwitchIncomplete, SwitchRestored
from bluegreen.domain.models import Colour, Outcome, Verdict
from bluegreen.domain.promotion import NotWaiting, Strategy
from bluegreen.logic import routing, services
from bluegreen.logic.requests import Caller
from bluegreen.logic.routing import GatePorts
from functions.deploy_steps import app as deploy_steps
from functions.deploy_steps import dependencies as deploy_steps_dependencies
from local.aws import create_tables
from local.cloudwatch import percentiles_in_moto
from local.kube.controlplane import ControlPlane, Restart
from local.kube.kubelet import KubeletOptions
from local.kube.testing import KUBE_KUBELET_SPEED
from local.stepfunctions import ExecutionReport, shortened_waits
from local.traffic import TrafficSimulator
from tests.backends import kube_backend
from tests.flow.conftest import REGISTRY, REPOSITORY, SEED_BLUE, SEED_GREEN, Stack
from tests.flow.fakes import digest
from tests.flow.harness import FlowRig, Router, flow_rig
from tests.waiting import eventually

pytestmark = pytest.mark.kube

NEW = digest(0xD1)
ALICE = Caller("arn:aws:iam::123456789012:user/alice", "203.0.113.9")
READY_SECONDS = 10.0
"""A serving pod's readiness, in Kubernetes seconds: 2 s at the kubelet's speed."""
BOUND = 60.0
"""Seconds an execution may take from its start to its end, restart included."""
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

APISERVER_SIGTERM = ("kube-apiserver", "sigterm")
"""A graceful restart: it stops listening at once, is killed 5 s later (its watches keep
it from exiting), and serves again about 2 s after that."""
APISERVER_SIGKILL = ("kube-apiserver", "sigkill")
"""A crash: connections are cut, and it serves again about 2 s later."""
ETCD_SIGTERM = ("etcd", "sigterm")
"""etcd away for about 6 s, the API server up and waiting for it."""
ETCD_SIGKILL = ("etcd", "sigkill")
"""etcd away for about a second: the API server mostly absorbs it."""
DEPLOY_RESTARTS = [APISERVER_SIGTERM, ETCD_SIGTERM]
MOVE_RESTARTS = [APISERVER_SIGTERM, APISERVER_SIGKILL, ETCD_SIGTERM]
"""A move waits out 5 s of failures: the crash fits in, the graceful restart does not."""
SWITCH_RESTARTS = [*MOVE_RESTARTS, ETCD_SIGKILL]


# --- the control plane and what restarts it -------------------------------------------------


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    """A control plane of this module's own: its restarts disturb no other test."""
    with ControlPlane(
        seed=False,
        kubelet_options=KubeletOptions(speed=KUBE_KUBELET_SPEED, ready_seconds=READY_SECONDS),
        progress=lambda line: None,
    ) as started:
        yield started


@pytest.fixture(scope="module")
def namespaces(request: pytest.FixtureRequest, plane: ControlPlane) -> Iterator[list[str]]:
    """One seeded namespace per test of this module that runs, all made before any restart.

    After a restart the controllers watch again only after their own back-off (the
    serviceaccount controller, a ReplicaSet's pod informer: tens of seconds at times, as
    on any cluster), which a namespace seeded then would wait for; these are ready before.
    Each has the seed (its 600 s progress deadline) and the shipped RBAC.
    """
    from kubernetes.client import CoreV1Api

    here = request.node.nodeid
    wanted = len([item for item in request.session.items if item.nodeid.startswith(here)])
    names = [f"r{uuid.uuid4().hex[:8]}" for _ in range(wanted)]
    for name in names:
        plane.seed_namespace(name, wait=False)
    for name in names:
        plane.seed_namespace(name)  # applied already: this waits for its rollouts
    yield list(names)
    with plane.admin_client() as client:
        for name in names:
            CoreV1Api(client).delete_namespace(name, _preload_content=False)


@pytest.fixture
def namespace(namespaces: list[str]) -> str:
    """A seeded namespace of the test's own."""
    return namespaces.pop()


@dataclass
class Restarter:
    """Restarts one program of the plane, one way, when called; keeps each ``Restart``."""

    plane: ControlPlane
    program: str
    way: str
    done: list[Restart] = field(default_factory=list)

    def __call__(self) -> None:
        restart = (
            self.plane.restart_apiserver
            if self.program == "kube-apiserver"
            else self.plane.restart_etcd
        )
        self.done.append(restart(kill=self.way == "sigkill", wait=False))

    def settle(self) -> list[Restart]:
        """Every restart waited for: the plane serves again."""
        return [restart.wait() for restart in self.done]


@pytest.fixture
def restarter(request: pytest.FixtureRequest, plane: ControlPlane) -> Iterator[Restarter]:
    """What restarts the plane as the test's parameter (program, way) says (``restarts``)."""
    program, way = request.param
    found = Restarter(plane, program, way)
    yield found
    found.settle()  # the next test finds the plane serving, whatever this one did


def restarts(cases: list[tuple[str, str]]) -> pytest.MarkDecorator:
    """Run a test once per (program, way), handing each to ``restarter``."""
    return pytest.mark.parametrize(
        "restarter", cases, ids=[f"{p}-{w}" for p, w in cases], indirect=True
    )


_current = threading.local()


class StepNamer:
    """The deploy-steps handler, telling ``current_state()`` which Task state runs, and
    calling ``on_start`` when the first attempt of ``state`` starts (before its work)."""

    def __init__(self, state: str = "", on_start: Callable[[], None] | None = None) -> None:
        self.state = state
        self._on_start = on_start
        self.fired = False

    def __call__(self, event: Any, context: Any) -> Any:
        attempt = event.get("attempt") if isinstance(event, dict) else None
        state = str(attempt.get("state") or "") if isinstance(attempt, dict) else ""
        if (
            self._on_start is not None
            and not self.fired
            and state == self.state
            and isinstance(attempt, dict)
            and not attempt.get("retry")
        ):
            self.fired = True
            self._on_start()
        _current.state = state
        try:
            return deploy_steps.lambda_handler(event, context)
        finally:
            _current.state = ""


def current_state() -> str:
    """The Task state the deploy-steps handler runs on this thread ("" outside one)."""
    return str(getattr(_current, "state", ""))


class AfterWrite:
    """Calls ``then`` once, right after the ``nth`` write request through ``api_client``
    that ``where()`` allows has been answered (the answer then reaches the product)."""

    def __init__(
        self,
        api_client: Any,
        then: Callable[[], None],
        *,
        nth: int = 1,
        where: Callable[[], bool] = lambda: True,
    ) -> None:
        self._rest = api_client.rest_client
        self._original = self._rest.request
        self._then, self._nth, self._where = then, nth, where
        self.writes: list[str] = []
        self.fired = False
        self._rest.request = self._request

    def _request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        answer = self._original(method, url, *args, **kwargs)
        if method.upper() in WRITES and not self.fired and self._where():
            self.writes.append(f"{method} {url.split('?')[0]}")
            if len(self.writes) == self._nth:
                self.fired = True
                self._then()
        return answer


# --- the stack ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rig() -> Iterator[tuple[FlowRig, Router]]:
    """moto with the real deploy state machine and the template's tables, for the module."""
    router = Router()
    with flow_rig(router) as started:
        create_tables(started.clients["dynamodb"])
        yield started, router


@pytest.fixture
def make_stack(
    rig: tuple[FlowRig, Router],
    plane: ControlPlane,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., Stack]]:
    """An application of the test's own on the real control plane (``BG_*`` extras allowed),
    its Waits and Retry intervals as long as the definition says."""
    flow, router = rig
    with plane.admin_client() as client, shortened_waits(1.0):
        backend = kube_backend(plane, namespace, client)

        def make(**env: str) -> Stack:
            monkeypatch.delenv("BG_KUBE_API_URL", raising=False)
            variables = {
                "BG_APP_NAME": f"app-{uuid.uuid4().hex[:10]}",
                "KUBECONFIG": backend.settings.kubeconfig,
                "BG_NAMESPACE": namespace,
                "BG_REGISTRY": REGISTRY,
                "BG_REPOSITORY_NAME": REPOSITORY,
                "BG_EVENT_SOURCE": "eks-bluegreen.test",
                **env,
            }
            for name, value in variables.items():
                monkeypatch.setenv(name, value)
            deploy_steps_dependencies.reset()
            settings = Settings.from_env(variables)
            ledger = DynamoLedger(
                settings.ledger_table,
                flow.clients["dynamodb"],
                settings.application,
                repository=REPOSITORY,
            )
            return Stack(settings, backend, ledger, flow, _subscribe(flow, settings), BOUND)

        yield make
    router.target = None
    deploy_steps_dependencies.reset()


def _subscribe(flow: FlowRig, settings: Settings) -> str:
    """An SQS queue receiving the application's deployment events."""
    sqs, events = flow.clients["sqs"], flow.clients["events"]
    queue_url = str(sqs.create_queue(QueueName=settings.application)["QueueUrl"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name=settings.application,
        EventPattern=json.dumps(
            {"source": [settings.event_source], "detail": {"application": [settings.application]}}
        ),
    )
    events.put_targets(Rule=settings.application, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return queue_url


def _route(rig: tuple[FlowRig, Router], handler: Callable[[Any, Any], Any]) -> None:
    rig[1].target = handler


# --- what the cluster says -------------------------------------------------------------------


def canary_env(stack: Stack) -> dict[str, Any]:
    configmap = stack.backend.stored("configmaps", stack.settings.configmap_name)
    return dict(json.loads(configmap["data"][stack.settings.configmap_key]))


def selectors(stack: Stack) -> tuple[str, str]:
    """(what the canary Service selects, what the production Service selects)."""

    def app(name: str) -> str:
        return str(stack.backend.stored("services", name)["spec"]["selector"]["app"])

    return app(stack.settings.canary_service_name), app(stack.settings.production_service_name)


def route_weights(stack: Stack) -> tuple[dict[str, int], str]:
    """(production's weight per colour, the canary rule's colour) as the HTTPRoute says."""
    route = stack.backend.stored("httproutes", stack.settings.http_route_name)
    rules = {rule.get("name"): rule for rule in route["spec"]["rules"]}

    def weights(rule: str) -> dict[str, int]:
        found = {c.value: 0 for c in Colour}
        for ref in rules[rule].get("backendRefs") or []:
            colour = str(ref["name"]).removesuffix("-service")
            if colour in found:
                found[colour] += int(ref.get("weight", 1))
        return found

    canary = weights(stack.settings.http_route_canary_rule)
    production = weights(stack.settings.http_route_production_rule)
    return production, max(canary, key=lambda colour: canary[colour])


def rollout_complete(stack: Stack, colour: str) -> bool:
    deployment = stack.backend.stored("deployments", f"{colour}-deployment")
    status, wanted = deployment.get("status") or {}, deployment["spec"].get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == wanted
        and status.get("availableReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
    )


def _summary(run: ExecutionReport, restarts: list[Restart]) -> str:
    downs = ", ".join(f"{r.program} down {r.down_seconds:.1f}s" for r in restarts)
    return f"{run.status} {run.error or ''} ({downs}); task errors {run.task_errors}; {run.cause}"


# --- a deploy whose rollout is being polled ------------------------------------------------------


@restarts(DEPLOY_RESTARTS)
def test_a_deploy_whose_server_restarts_while_its_rollout_is_polled_succeeds(
    make_stack: Callable[..., Stack],
    rig: tuple[FlowRig, Router],
    restarter: Restarter,
) -> None:
    # GIVEN blue (the canary) on a healthy digest, and a deploy of a good one
    stack = make_stack()
    stack.ledger.set_verdict(SEED_BLUE, Verdict.HEALTHY, "judged before the case")
    rolling: list[bool] = []

    def restart_mid_rollout() -> None:
        rolling.append(not rollout_complete(stack, "blue"))
        restarter()

    # WHEN the program restarts as CheckRollout's first attempt starts
    _route(rig, StepNamer("CheckRollout", restart_mid_rollout))
    started = time.monotonic()
    request = stack.request_deploy(ALICE, str(NEW))
    run = stack.rig.wait(request.execution_arn, timeout=BOUND)
    elapsed = time.monotonic() - started
    restarts = restarter.settle()

    # THEN the restart met the rollout under way, and the deploy converged on success
    assert rolling == [True], "the restart did not land while the rollout was under way"
    assert run.status == "SUCCEEDED", _summary(run, restarts)
    assert elapsed < BOUND
    assert stack.running("blue") == stack.image(NEW)
    assert rollout_complete(stack, "blue")
    assert stack.ledger.verdict(NEW) is Verdict.HEALTHY
    assert stack.ledger.lock_holder() is None
    record = stack.ledger.deployment(request.deployment_id)
    assert record is not None
    assert record.outcome is Outcome.SUCCEEDED, record.cause
    assert [t for t, d in stack.published() if d.get("deploymentId") == run.name] == [
        "Deployment Succeeded"
    ]
    # AND production never moved
    assert stack.running("green") == stack.image(SEED_GREEN)
    assert canary_env(stack)["selector"] == "blue"


# --- a selector switch --------------------------------------------------------------------------


@restarts(SWITCH_RESTARTS)
def test_a_switch_whose_server_restarts_between_its_writes_completes_or_is_put_back(
    make_stack: Callable[..., Stack],
    restarter: Restarter,
) -> None:
    # GIVEN blue the canary, green production, under the selector router
    stack = make_stack()
    ports = stack.release_ports()
    cluster = ports.cluster
    assert isinstance(cluster, KubernetesCluster)
    # WHEN the program restarts right after the switch's first write (the canary Service)
    hook = AfterWrite(cluster.api_client, restarter)
    try:
        outcome = "completed" if services.switch_canary(ports, ALICE, Colour.GREEN).changed else ""
    except SwitchRestored:
        outcome = "put back"
    except SwitchIncomplete as incomplete:
        outcome = f"neither completed nor put back: {incomplete}"
    restarts = restarter.settle()
    assert hook.fired, hook.writes

    # THEN it completed, or it was put back: canaryEnv and both Services agree either way
    env, (canary, production) = canary_env(stack), selectors(stack)
    downs = ", ".join(f"{r.program} down {r.down_seconds:.1f}s" for r in restarts)
    said = (
        f"the switch {outcome or 'changed nothing'} ({downs}); canaryEnv makes "
        f"{env['selector']} the canary, the canary Service selects {canary}, the production "
        f"Service {production}"
    )
    wanted = {"completed": ("green", "green", "blue"), "put back": ("blue", "blue", "green")}
    assert (env["selector"], canary, production) == wanted.get(outcome), said

    # AND repeating the switch completes it
    again = services.switch_canary(stack.release_ports(), ALICE, Colour.GREEN)
    assert again.changed is (outcome == "put back")
    assert (canary_env(stack)["selector"], *selectors(stack)) == ("green", "green", "blue")


# --- a promotion step under the gateway router -------------------------------------------------


def _target_groups(unique: str) -> dict[str, str]:
    return {c: f"targetgroup/k8s-{unique}-{c}/0123456789abcdef" for c in ("blue", "green")}


@restarts(MOVE_RESTARTS)
def test_a_promotion_step_whose_server_restarts_between_its_writes_lands_or_backs_out(
    make_stack: Callable[..., Stack],
    rig: tuple[FlowRig, Router],
    restarter: Restarter,
) -> None:
    # GIVEN blue the canary on a good digest, the gateway router, traffic flowing
    groups = _target_groups(uuid.uuid4().hex[:10])
    stack = make_stack(
        BG_TRAFFIC_ROUTER="gateway",
        # No Gateway implementation runs beside this control plane to report on the route
        # (tests/dataplane runs Traefik): the move is not waited for here.
        BG_TRAFFIC_CONFIRM_SECONDS="0",
        BG_ANALYSIS_TARGET_GROUPS=",".join(f"{c}={t}" for c, t in groups.items()),
        BG_ANALYSIS_INTERVAL_SECONDS="5",
        BG_ANALYSIS_MIN_REQUESTS="5",
        BG_ANALYSIS_MAX_ERROR_PERCENT="1",
        BG_ANALYSIS_MAX_P99_SECONDS="0.5",
    )
    handler_cluster = deploy_steps_dependencies.cluster()
    assert isinstance(handler_cluster, KubernetesCluster)
    # WHEN the program restarts right after ShiftTraffic's first write (canaryEnv)
    hook = AfterWrite(
        handler_cluster.api_client, restarter, where=lambda: current_state() == "ShiftTraffic"
    )
    _route(rig, StepNamer())
    simulator = TrafficSimulator(
        KubernetesCluster(stack.settings, api_client_for(stack.settings)),
        boto3.client("cloudwatch", region_name="us-west-2"),
        groups,
        rate=400.0,
        tick=0.05,
    )
    promotions = DynamoPromotions(
        stack.settings.ledger_table, stack.rig.clients["dynamodb"], stack.settings.application
    )
    with percentiles_in_moto(), simulator:
        started = routing.request_promotion(
            stack.release_ports(),
            ALICE,
            strategy=Strategy.parse(
                {"steps": [{"weight": 10, "pause": "manual"}, {"weight": 100}]}
            ),
        )

        # the promotion waits for a person at 10 %, or it has ended (backed out)
        def at_gate_or_ended() -> bool:
            record = promotions.record(started.deployment_id)
            if record is not None and record.waiting:
                return True
            described = stack.rig.sfn.describe_execution(executionArn=started.execution_arn)
            return bool(described["status"] != "RUNNING")

        eventually("the promotion at its gate, or ended", at_gate_or_ended, BOUND, every=0.05)
        record = promotions.record(started.deployment_id)
        restarts = restarter.settle()
        assert hook.fired, hook.writes

        # THEN production is at the step's weights, or backed out: canaryEnv and the
        # HTTPRoute agree either way
        env, (weights, canary_rule) = canary_env(stack), route_weights(stack)
        downs = [f"{r.down_seconds:.1f}s" for r in restarts]
        if record is not None and record.waiting:
            assert weights == {"blue": 10, "green": 90}, downs
            assert (env["selector"], env["weights"], canary_rule) == ("blue", weights, "blue")
            # AND once a person resumes it, the promotion completes
            ports = GatePorts(
                ledger=stack.ledger,
                promotions=promotions,
                tokens=StepFunctionsTaskTokens(stack.rig.sfn),
            )
            with contextlib.suppress(NotWaiting):
                routing.resume(ports, ALICE, started.deployment_id)
            run = stack.rig.wait(started.execution_arn, timeout=BOUND)
            assert run.status == "SUCCEEDED", _summary(run, restarts)
            env, (weights, canary_rule) = canary_env(stack), route_weights(stack)
            assert weights == {"blue": 100, "green": 0}
            assert (env["selector"], env["weights"], canary_rule) == ("green", weights, "green")
            assert stack.ledger.verdict(SEED_BLUE) is Verdict.HEALTHY
        else:
            run = stack.rig.wait(started.execution_arn, timeout=BOUND)
            assert run.status == "FAILED", _summary(run, restarts)
            assert weights == {"blue": 0, "green": 100}, _summary(run, restarts)
            assert (env["selector"], env.get("weights", weights), canary_rule) == (
                "blue",
                weights,
                "blue",
            )
    assert stack.ledger.lock_holder() is None
    closed = stack.ledger.deployment(started.deployment_id)
    assert closed is not None
    assert closed.outcome is not Outcome.RUNNING
