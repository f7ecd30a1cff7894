"""Traffic: writes per flip per router, and how fast a failed analysis puts production back.

1. Kubernetes requests of each router's moves, counted where the cluster sees them
   (the emulator's request log): a switch of the roles, a promotion's step, backing
   one out. Goal: one write of the router object and one of canaryEnv.
2. A promotion of an image answering 5 % 5xx on the real ``deploy.asl.json`` on moto,
   traffic from the simulator published into moto's CloudWatch (``local.traffic``),
   Wait states at 1/50 of their length: the seconds from the end of the reading that
   failed to production back at 100 % on the old colour (the router's write), which
   is flow time, since nothing waits on that path. Goal: under 5 s.

Reproduce: ``make bench`` or ``python -m bench traffic``.
"""

from __future__ import annotations

import json
import os
import statistics
import uuid
from datetime import datetime
from typing import Any

COMMAND = ".venv/bin/python -m bench traffic   (or: make bench)"
RUNS = 5
TARGET_SECONDS = 5.0
ROUTERS = ("selector", "alb", "gateway")


def _requests_per_move() -> list[tuple[str, str, int, int, str]]:
    from bluegreen.adapters.kube.client import api_client_for
    from bluegreen.adapters.kube.cluster import KubernetesCluster
    from bluegreen.config import Settings
    from bluegreen.domain.models import Colour
    from bluegreen.domain.traffic import RouterKind, Weights
    from local.cluster import Clock, ClusterEmulator

    rows = []
    for router in ROUTERS:
        moves: list[tuple[str, Colour | None, Weights | None]] = [
            ("switch the roles", Colour.GREEN, None)
        ]
        if router != "selector":
            moves += [
                ("promotion step: 10 % to the canary", None, Weights(90, 10)),
                ("back out: 100 % to production", None, Weights.all_on(Colour.BLUE)),
            ]
        with ClusterEmulator(seed="default", clock=Clock.instant()) as emulator:
            settings = Settings(kube_api_url=emulator.url, traffic_router=RouterKind(router))
            cluster = KubernetesCluster(settings, api_client_for(settings))
            cluster.canary_env()  # the client and its connection are made before counting
            for label, canary, weights in moves:
                emulator.reset_requests()
                if weights is None:
                    assert canary is not None
                    cluster.switch_roles(canary)
                else:
                    cluster.shift_traffic(weights)
                requests = list(emulator.requests)
                writes = [r for r in requests if r.method not in ("GET", "HEAD")]
                targets = ", ".join(
                    f"{r.method} {'/'.join(str(r.path).split('?')[0].rsplit('/', 2)[-2:])}"
                    for r in writes
                )
                rows.append((router, label, len(requests) - len(writes), len(writes), targets))
    return rows


def _back_out_seconds() -> tuple[list[float], Any]:
    import logging

    import boto3
    from moto import mock_aws

    from bluegreen.adapters.kube.client import api_client_for
    from bluegreen.adapters.kube.cluster import KubernetesCluster
    from bluegreen.adapters.promotions import DynamoPromotions
    from bluegreen.config import Settings
    from bluegreen.observability import logger
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

    # Every run fails on purpose: moto's interpreter would log each failure at length.
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    logger.setLevel("ERROR")
    seed_blue = "sha256:1274e8bc4d963536e88265781170e72a2939caae25127cd9d400ab124393f946"
    seconds: list[float] = []
    sample: Any = None
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        percentiles_in_moto(),
    ):
        from functions.deploy_steps import app

        session = boto3.Session(region_name="us-west-2")
        sfn, dynamodb = session.client("stepfunctions"), session.client("dynamodb")
        create_tables(dynamodb)
        machine = create_deploy_state_machine(
            lambda_client=session.client("lambda"),
            stepfunctions_client=sfn,
            iam_client=session.client("iam"),
        )
        handlers = dict.fromkeys(machine.function_names, app.lambda_handler)
        saved = {name: os.environ.get(name) for name in _ENVIRONMENT}
        try:
            with (
                dispatch_lambdas_in_process(handlers),
                shortened_waits(0.02),
                parse_definitions_once(),
            ):
                for n in range(RUNS + 1):
                    with ClusterEmulator(seed="default", clock=Clock.instant()) as emulator:
                        report, took = _one_promotion(
                            n,
                            emulator,
                            sfn,
                            dynamodb,
                            session,
                            machine.arn,
                            seed_blue,
                            app,
                            Settings,
                            KubernetesCluster,
                            api_client_for,
                            DynamoPromotions,
                            TrafficSimulator,
                            wait_for_execution,
                        )
                    if n:  # the first one pays for imports and connections
                        seconds.append(took)
                        sample = report
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return seconds, sample


_ENVIRONMENT = (
    "AWS_REGION",
    "BG_APP_NAME",
    "BG_KUBE_API_URL",
    "BG_TRAFFIC_ROUTER",
    "BG_ANALYSIS_TARGET_GROUPS",
    "BG_ANALYSIS_MIN_REQUESTS",
)


def _one_promotion(
    n: int,
    emulator: Any,
    sfn: Any,
    dynamodb: Any,
    session: Any,
    arn: str,
    seed_blue: str,
    app: Any,
    settings_type: Any,
    cluster_type: Any,
    api_client_for: Any,
    promotions_type: Any,
    simulator_type: Any,
    wait: Any,
) -> tuple[Any, float]:
    """One promotion of the errors image under alb; the seconds to production back on green."""
    unique = uuid.uuid4().hex[:8]
    groups = {c: f"targetgroup/k8s-{unique}-{c}/0123456789abcdef" for c in ("blue", "green")}
    os.environ.update(
        {
            "AWS_REGION": "us-west-2",
            "BG_APP_NAME": f"bench-{unique}",
            "BG_KUBE_API_URL": emulator.url,
            "BG_TRAFFIC_ROUTER": "alb",
            "BG_ANALYSIS_TARGET_GROUPS": ",".join(f"{c}={g}" for c, g in groups.items()),
            "BG_ANALYSIS_MIN_REQUESTS": "10",
        }
    )
    app.dependencies.reset()
    settings = settings_type.from_env(os.environ)
    cluster = cluster_type(settings, api_client_for(settings))
    simulator = simulator_type(cluster, session.client("cloudwatch"), groups, rate=400.0, tick=0.05)
    simulator.mark(seed_blue, "errors")
    name = f"bench-promote-{n}"
    steps = [{"weight": 10, "pause": 120}, {"weight": 100}]
    with simulator:
        execution = sfn.start_execution(
            stateMachineArn=arn,
            name=name,
            input=json.dumps({"action": "promote", "strategy": {"steps": steps}}),
        )["executionArn"]
        report = wait(sfn, execution, timeout=60.0)
    if report.error != "AnalysisFailed":
        raise SystemExit(
            f"bench promotion {n} ended {report.status} {report.error}: {report.cause}"
        )
    record = promotions_type(settings.ledger_table, dynamodb, settings.application).record(name)
    assert record is not None
    failed = datetime.fromisoformat(record.progress["failedAt"])
    backed = datetime.fromisoformat(record.progress["backedOutAt"])
    return report, (backed - failed).total_seconds()


def main() -> None:
    """Print both tables."""
    rows = _requests_per_move()
    print(f"$ {COMMAND}")
    print("Kubernetes requests per move, per router (emulator, default seed)")
    headers = ("router", "move", "reads", "writes", "writes to")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*(str(v) for v in row)))
    weighted = [r for r in rows if r[0] != "selector"]
    met = "met" if all(r[3] <= 2 for r in weighted) else "MISSED"
    print(f"goal under alb and gateway: 1 router write + 1 canaryEnv write per flip ({met})")
    print()
    seconds, sample = _back_out_seconds()
    print(
        f"failed analysis -> production at 100 % on the old colour, {RUNS} promotions of an "
        "image answering 5 % 5xx (after one warm-up)"
    )
    figures = [
        ("seconds, median", f"{statistics.median(seconds):.3f} s"),
        ("seconds, max", f"{max(seconds):.3f} s"),
        (
            "goal",
            f"< {TARGET_SECONDS:.0f} s of flow time "
            f"({'met' if max(seconds) < TARGET_SECONDS else 'MISSED'})",
        ),
        ("states", " > ".join(sample.states)),
    ]
    width = max(len(label) for label, _ in figures)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 20}")
    for label, value in figures:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
