"""What surviving a step's death costs: Kubernetes and DynamoDB requests per deploy and per
promotion step.

Every step of the deploy flow is idempotent and fenced (issue 18): it renews and checks
the lock's lease, writes its intent before its effect, claims each outcome's event once.
Those are requests; this module counts them, as the flow makes them, on the real
``statemachine/deploy.asl.json`` (moto's interpreter, the real ``deploy_steps`` handler
in-process, the ledger on moto tables from template.yaml):

- Kubernetes requests from the cluster emulator's own request log (``requests``), each
  attributed to the Task that was running;
- DynamoDB requests (and EventBridge's ``PutEvents``) through botocore's ``before-call``
  hooks on the handler's own clients (``functions.deploy_steps.dependencies.aws_client``).

A deploy is a canary deploy of a fresh digest on an instant emulator (rolled out at
Begin's first reading, its hook done at the first look); a promotion step is one
``ShiftTraffic`` and one ``Analyse`` reading of a progressive promotion under the
gateway router (10 % and 50 % for a minute each, then all of it), judged on the traffic
simulator's ALB metrics in moto's CloudWatch. The simulator reads the router through
its own client; it is held still while a Task runs, so that none of its requests is
counted.

The ``before`` column is this module's count on commit 23b898b, the last one before
issue 18 (``git worktree add /tmp/bench-before 23b898b``, this file copied there, run
there with ``--json``); ``make bench`` measures the current figures.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

COMMAND = ".venv/bin/python -m bench request_counts   (or: make bench)"
DEPLOYS = 3
"""Deploys measured, after one warm-up (each one alike: the figures must agree)."""
STRATEGY: dict[str, Any] = {
    "steps": [{"weight": 10, "pause": 60}, {"weight": 50, "pause": 60}, {"weight": 100}]
}
WAIT_FACTOR = 0.02
"""Waits at 1/50 of their length: a minute's analysis interval lasts 1.2 s."""
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})

BEFORE: dict[str, dict[str, float]] = {
    "deploy": {
        "kube": 20,
        "kube_reads": 17,
        "kube_writes": 3,
        "dynamodb": 17,
        "dynamodb_reads": 8,
        "dynamodb_writes": 9,
        "events": 1,
    },
    "promotion_step": {
        "kube": 4,
        "kube_reads": 2,
        "kube_writes": 2,
        "dynamodb": 8,
        "dynamodb_reads": 4,
        "dynamodb_writes": 4,
        "events": 0,
    },
    "last_step": {
        "kube": 5,
        "kube_reads": 3,
        "kube_writes": 2,
        "dynamodb": 8,
        "dynamodb_reads": 2,
        "dynamodb_writes": 6,
        "events": 1,
    },
    "promotion": {
        "kube": 17,
        "kube_reads": 11,
        "kube_writes": 6,
        "dynamodb": 34,
        "dynamodb_reads": 16,
        "dynamodb_writes": 18,
        "events": 1,
    },
}
"""This module's figures on commit 23b898b (before issue 18)."""


@dataclass
class Invocation:
    """One Task invocation and the requests it made."""

    state: str
    execution: str
    kube_reads: int = 0
    kube_writes: int = 0
    dynamodb: Counter[str] = field(default_factory=Counter)
    events: int = 0
    seconds: float = 0.0
    """How long the handler ran (in-process, on moto and the emulator)."""

    def figures(self) -> dict[str, float]:
        reads = sum(n for op, n in self.dynamodb.items() if op in DYNAMODB_READS)
        writes = sum(self.dynamodb.values()) - reads
        return {
            "kube": self.kube_reads + self.kube_writes,
            "kube_reads": self.kube_reads,
            "kube_writes": self.kube_writes,
            "dynamodb": reads + writes,
            "dynamodb_reads": reads,
            "dynamodb_writes": writes,
            "events": self.events,
        }


def _sum(invocations: list[Invocation]) -> dict[str, float]:
    total: Counter[str] = Counter()
    for invocation in invocations:
        total.update(invocation.figures())
    return {key: float(total[key]) for key in BEFORE["deploy"]}


class Counting:
    """The deploy-steps handler, counting each invocation's requests (see the module)."""

    def __init__(self, handler: Callable[[Any, Any], Any], emulator: Any) -> None:
        self._handler = handler
        self._emulator = emulator
        self.quiet = threading.Lock()
        """Held while a Task runs: the traffic simulator waits for it before each read."""
        self.invocations: list[Invocation] = []
        self.execution = ""
        """The execution running now (one at a time): its invocations are its own."""
        self._current = threading.local()

    def __call__(self, event: Any, context: Any) -> Any:
        attempt = event.get("attempt") if isinstance(event, dict) else None
        state = str((attempt or {}).get("state") or event.get("step") or "?")
        invocation = Invocation(state, self.execution)
        with self.quiet:
            before = len(self._emulator.requests)
            self._current.invocation = invocation
            started = time.perf_counter()
            try:
                return self._handler(event, context)
            finally:
                invocation.seconds = time.perf_counter() - started
                self._current.invocation = None
                for request in self._emulator.requests[before:]:
                    if str(request.method).upper() in {"GET", "HEAD"}:
                        invocation.kube_reads += 1
                    else:
                        invocation.kube_writes += 1
                self.invocations.append(invocation)

    def _count(self, service: str, model: Any, **_: Any) -> None:
        invocation: Invocation | None = getattr(self._current, "invocation", None)
        if invocation is None:
            return
        if service == "dynamodb":
            invocation.dynamodb[model.name] += 1
        elif model.name == "PutEvents":
            invocation.events += 1

    @contextmanager
    def hooked(self, client_of: Callable[[str], Any]) -> Iterator[None]:
        """Count through botocore's ``before-call`` hooks on the handler's own clients."""
        hooks = []
        for service, event_name in (
            ("dynamodb", "before-call.dynamodb"),
            ("events", "before-call.eventbridge"),
        ):
            events = client_of(service).meta.events
            unique = f"request-counts-{service}"

            def hook(model: Any, _service: str = service, **kwargs: Any) -> None:
                self._count(_service, model, **kwargs)

            events.register(event_name, hook, unique_id=unique)
            hooks.append((events, event_name, unique))
        try:
            yield
        finally:
            for events, event_name, unique in hooks:
                events.unregister(event_name, unique_id=unique)


class StillWhileCounting:
    """The traffic simulator's cluster: it waits while a Task is being counted."""

    def __init__(self, cluster: Any, quiet: threading.Lock) -> None:
        self._cluster, self._quiet = cluster, quiet

    def traffic(self) -> Any:
        with self._quiet:
            return self._cluster.traffic()

    def rollout(self, colour: Any) -> Any:
        with self._quiet:
            return self._cluster.rollout(colour)


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Measured:
    """What ``measure`` found: per deploy, per promotion step, and per Task state."""

    deploy: dict[str, float]
    promotion_step: dict[str, float]
    """A step before the last: ShiftTraffic to its weights, and one Analyse reading."""
    last_step: dict[str, float]
    """The last ShiftTraffic: all of production on the canary, roles swapped, record closed."""
    promotion: dict[str, float]
    deploy_states: list[str]
    deploy_by_state: dict[str, tuple[int, dict[str, float]]]
    """state -> (invocations, mean figures per invocation)."""
    promotion_by_state: dict[str, tuple[int, dict[str, float]]]
    promotion_states: list[str] = field(default_factory=list)
    deploy_tasks: list[Invocation] = field(default_factory=list)
    """One deploy's Task invocations (what its Lambda bill is made of)."""
    promotion_tasks: list[Invocation] = field(default_factory=list)


def measure() -> Measured:
    """Run the deploys and the promotion; count (see the module)."""
    import boto3
    from moto import mock_aws

    from local.aws import create_tables
    from local.cloudwatch import percentiles_in_moto
    from local.cluster import Clock, ClusterEmulator
    from local.lambdas import dispatch_lambdas_in_process
    from local.stepfunctions import (
        create_deploy_state_machine,
        parse_definitions_once,
        shortened_waits,
        wait_for_execution,
    )
    from local.traffic import TrafficSimulator

    with ExitStack() as scope:
        scope.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        session = boto3.Session(region_name="us-west-2")
        sfn = session.client("stepfunctions")
        create_tables(session.client("dynamodb"))
        machine = create_deploy_state_machine(
            lambda_client=session.client("lambda"),
            stepfunctions_client=sfn,
            iam_client=session.client("iam"),
        )
        scope.enter_context(parse_definitions_once())

        def run(counting: Counting, flow_input: dict[str, Any], name: str) -> Any:
            counting.execution = name
            arn = sfn.start_execution(
                stateMachineArn=machine.arn, name=name, input=json.dumps(flow_input)
            )["executionArn"]
            report = wait_for_execution(sfn, arn, timeout=120.0, poll=0.005)
            if report.status != "SUCCEEDED":
                raise SystemExit(f"{name} {report.status}: {report.error} {report.cause}")
            return report

        # -- deploys -------------------------------------------------------------------
        with ExitStack() as deploys:
            emulator = deploys.enter_context(ClusterEmulator(seed="default", clock=Clock.instant()))
            deploys.enter_context(
                _environment(
                    {
                        "AWS_REGION": "us-west-2",
                        "BG_APP_NAME": f"bench-{uuid.uuid4().hex[:8]}",
                        "BG_KUBE_API_URL": emulator.url,
                    }
                )
            )
            from functions.deploy_steps import app, dependencies

            dependencies.reset()
            counting = Counting(app.lambda_handler, emulator)
            deploys.enter_context(counting.hooked(dependencies.aws_client))
            deploys.enter_context(
                dispatch_lambdas_in_process(dict.fromkeys(machine.function_names, counting))
            )
            deploys.enter_context(shortened_waits(0.0))
            per_deploy: list[dict[str, float]] = []
            measured_deploys: set[str] = set()
            states: list[str] = []
            for n in range(DEPLOYS + 1):
                name = f"bench-deploy-{uuid.uuid4().hex[:8]}"
                flow_input = {"action": "deploy", "image": f"sha256:{0xB0 + n:064x}"}
                report = run(counting, flow_input, name)
                if n:  # the first one pays for imports and connections
                    measured_deploys.add(name)
                    mine = [i for i in counting.invocations if i.execution == name]
                    per_deploy.append(_sum(mine))
                    states = report.states
            deploy_invocations = [
                i for i in counting.invocations if i.execution in measured_deploys
            ]
            dependencies.reset()
        if any(figures != per_deploy[0] for figures in per_deploy):
            raise SystemExit(f"the deploys made different requests: {per_deploy}")

        # -- a progressive promotion ---------------------------------------------------------
        from bluegreen.adapters.kube.cluster import KubernetesCluster
        from bluegreen.config import Settings

        with ExitStack() as promoting:
            emulator = promoting.enter_context(
                ClusterEmulator(seed="default", clock=Clock.instant())
            )
            groups = {c: f"targetgroup/k8s-bench-{c}/0123456789abcdef" for c in ("blue", "green")}
            variables = {
                "AWS_REGION": "us-west-2",
                "BG_APP_NAME": f"bench-{uuid.uuid4().hex[:8]}",
                "BG_KUBE_API_URL": emulator.url,
                "BG_TRAFFIC_ROUTER": "gateway",
                "BG_ANALYSIS_TARGET_GROUPS": ",".join(f"{c}={t}" for c, t in groups.items()),
                "BG_ANALYSIS_INTERVAL_SECONDS": "60",
                "BG_ANALYSIS_MIN_REQUESTS": "5",
                "BG_ANALYSIS_MAX_ERROR_PERCENT": "1",
                "BG_ANALYSIS_MAX_P99_SECONDS": "0.5",
            }
            promoting.enter_context(_environment(variables))
            from functions.deploy_steps import app, dependencies

            dependencies.reset()
            counting = Counting(app.lambda_handler, emulator)
            promoting.enter_context(counting.hooked(dependencies.aws_client))
            promoting.enter_context(
                dispatch_lambdas_in_process(dict.fromkeys(machine.function_names, counting))
            )
            promoting.enter_context(shortened_waits(WAIT_FACTOR))
            promoting.enter_context(percentiles_in_moto())
            simulator = TrafficSimulator(
                StillWhileCounting(
                    KubernetesCluster.from_settings(Settings.from_env(variables)), counting.quiet
                ),
                session.client("cloudwatch"),
                groups,
                rate=400.0,
                tick=0.05,
            )
            promoting.enter_context(simulator)
            name = f"bench-promote-{uuid.uuid4().hex[:8]}"
            promoted = run(counting, {"action": "promote", "strategy": STRATEGY}, name)
            promotion_invocations = [i for i in counting.invocations if i.execution == name]
            dependencies.reset()

    shifts = [i for i in promotion_invocations if i.state == "ShiftTraffic"]
    readings = [i for i in promotion_invocations if i.state == "Analyse"]
    if len(shifts) != len(STRATEGY["steps"]) or len(readings) != len(STRATEGY["steps"]) - 1:
        raise SystemExit(
            f"the promotion ran {len(shifts)} ShiftTraffic and {len(readings)} Analyse, not "
            f"one of each per step: {[i.state for i in promotion_invocations]}"
        )
    # Every step but the last: its weights, then one reading; the last swaps the roles.
    steps = [_sum([shift, reading]) for shift, reading in zip(shifts, readings, strict=False)]
    return Measured(
        deploy=per_deploy[0],
        promotion_step=_mean(steps),
        last_step=_sum(shifts[-1:]),
        promotion=_sum(promotion_invocations),
        deploy_states=states,
        deploy_by_state=_by_state(deploy_invocations),
        promotion_by_state=_by_state(promotion_invocations),
        promotion_states=promoted.states,
        deploy_tasks=[i for i in deploy_invocations if i.execution == min(measured_deploys)],
        promotion_tasks=promotion_invocations,
    )


def _mean(figures: list[dict[str, float]]) -> dict[str, float]:
    return {key: sum(f[key] for f in figures) / len(figures) for key in figures[0]}


def _by_state(invocations: list[Invocation]) -> dict[str, tuple[int, dict[str, float]]]:
    grouped: dict[str, list[Invocation]] = {}
    for invocation in invocations:
        grouped.setdefault(invocation.state, []).append(invocation)
    found = {}
    for state, group in grouped.items():
        total = _sum(group)
        found[state] = (len(group), {key: value / len(group) for key, value in total.items()})
    return found


def _shown(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


ROWS = (
    ("kube", "Kubernetes requests"),
    ("kube_reads", "  reads"),
    ("kube_writes", "  writes"),
    ("dynamodb", "DynamoDB requests"),
    ("dynamodb_reads", "  reads"),
    ("dynamodb_writes", "  writes"),
    ("events", "EventBridge PutEvents"),
)


def main() -> None:
    """Measure and print the tables (``--json``: the figures only, for the before column)."""
    measured = measure()
    now = {
        "deploy": measured.deploy,
        "promotion_step": measured.promotion_step,
        "last_step": measured.last_step,
        "promotion": measured.promotion,
    }
    if "--json" in sys.argv[1:]:
        print(json.dumps(now))
        return
    print(f"$ {COMMAND}")
    print(
        f"requests per deploy (a canary deploy of a fresh digest, instant rollout, {DEPLOYS} "
        "alike after a warm-up) and per step of a progressive promotion (gateway router: "
        f"{', '.join(str(step['weight']) for step in STRATEGY['steps'])} %)"
    )
    print(
        "step: one before the last (ShiftTraffic to its weights, one Analyse reading); last: "
        "all of production on the canary, roles swapped, record closed"
    )
    print(f"states of a deploy: {' > '.join(measured.deploy_states)}")
    columns = (
        ("deploy", "deploy"),
        ("promotion_step", "step"),
        ("last_step", "last"),
        ("promotion", "promotion"),
    )
    width = max(len(label) for _, label in ROWS)
    cells = [f"{title:>9} {'before':>6}" for _, title in columns]
    print(f"{'requests':<{width}}  {'  '.join(cells)}")
    print(f"{'-' * width}  {'  '.join(f'{chr(45) * 9} {chr(45) * 6}' for _ in columns)}")
    for key, label in ROWS:
        cells = [
            f"{_shown(now[column][key]):>9} {_shown(BEFORE[column][key]):>6}"
            for column, _ in columns
        ]
        print(f"{label:<{width}}  {'  '.join(cells)}")
    print("(before: this module on commit 23b898b, the last one before issue 18)")
    print()
    print("per Task invocation, by state (the deploys after the warm-up, then the promotion)")
    rows = [
        *(("deploy", state, found) for state, found in measured.deploy_by_state.items()),
        *(("promotion", state, found) for state, found in measured.promotion_by_state.items()),
    ]
    width = max(len(f"{path} {state}") for path, state, _ in rows)
    print(f"{'state':<{width}}  calls  kube r/w  dynamodb r/w  events")
    print(f"{'-' * width}  -----  --------  ------------  ------")
    for path, state, (calls, figures) in rows:
        kube = f"{_shown(figures['kube_reads'])}/{_shown(figures['kube_writes'])}"
        dynamo = f"{_shown(figures['dynamodb_reads'])}/{_shown(figures['dynamodb_writes'])}"
        print(
            f"{f'{path} {state}':<{width}}  {calls:>5}  {kube:>8}  {dynamo:>12}  "
            f"{_shown(figures['events']):>6}"
        )


if __name__ == "__main__":
    main()
