"""The services API in-process: Kubernetes requests per operation and warm latency per route.

The handler runs in this process on moto (DynamoDB tables from template.yaml,
ECR, a Step Functions state machine from the real ASL that is never executed)
and on the cluster emulator (default seed), driven by the sample events of
``events/services_api/``. Requests are counted where the cluster sees them (the
emulator's request log). A selector switch is three reads (the ConfigMap, the
Services, the new canary's Deployment) and three writes in the order that keeps
production traffic safe; deploys, rollbacks and promotions read canaryEnv and
the Services first (two requests) to refuse while they disagree.
Latencies are warm (after one call of each route) and include moto and the
emulator's HTTP round trips on loopback.

Reproduce: ``make bench`` or ``python -m bench services_api``
(``BENCH_CALLS=300 python -m bench services_api`` for more samples per route).
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import lambda_context

ROOT = Path(__file__).resolve().parent.parent
CALLS = max(20, int(os.environ.get("BENCH_CALLS", "100")))
KNOWN = "216c0204fa1e71f93603c0d5087ef16d6b2ba5bce9084874bf9b2aebcddebc77"
OLDER = "1274e8bc4d963536e88265781170e72a2939caae25127cd9d400ab124393f946"
TARGETS = {
    "GET /services": 4,
    "POST /services selector (switch)": 6,
    "POST /services selector (already so)": 2,
    "POST /services imageTag": 2,
}


def _event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (ROOT / "events" / "services_api" / f"{name}.json").read_text()
    )
    return loaded


def _with_request_id(event: dict[str, Any], n: int) -> dict[str, Any]:
    fresh = copy.deepcopy(event)
    fresh["requestContext"]["requestId"] = f"bench-{n}"
    return fresh


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    """Measure and print the table."""
    from bench import on_moto

    on_moto()
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    warnings.filterwarnings("ignore", message="No application metrics to publish")

    import boto3
    from moto import mock_aws

    from bluegreen.domain.models import Digest
    from local.aws import create_tables
    from local.cluster.clock import Clock
    from local.cluster.emulator import ClusterEmulator

    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": False}}),
        ClusterEmulator(seed="default", clock=Clock.instant()) as emu,
    ):
        create_tables(boto3.client("dynamodb", region_name="us-west-2"))
        boto3.client("ecr", region_name="us-west-2").create_repository(
            repositoryName="rezfusion-cloud"
        )
        machine = boto3.client("stepfunctions", region_name="us-west-2").create_state_machine(
            name="bluegreen-deploy",
            definition=(ROOT / "statemachine" / "deploy.asl.json").read_text(),
            roleArn="arn:aws:iam::123456789012:role/bluegreen-deploy",
        )["stateMachineArn"]
        os.environ["BG_STATE_MACHINE_ARN"] = machine
        os.environ["BG_KUBE_API_URL"] = emu.url

        from datetime import UTC, datetime

        from functions.services_api import app
        from functions.services_api.api import dependencies

        dependencies.reset()
        ledger = dependencies.ledger()
        ledger.record_push(Digest(OLDER), "release-1.3", datetime(2026, 11, 20, tzinfo=UTC), "b1")
        ledger.record_push(Digest(KNOWN), "release-1.4", datetime(2026, 11, 26, tzinfo=UTC), "b2")

        context = lambda_context("services-api")

        def call(event: dict[str, Any]) -> dict[str, Any]:
            answer: dict[str, Any] = app.lambda_handler(event, context)
            return answer

        def counted(event: dict[str, Any]) -> tuple[int, int]:
            emu.reset_requests()
            status = int(call(event)["statusCode"])
            return status, len(emu.requests)

        green, blue = _event("switch_to_green"), _event("switch_to_blue")
        call(green), call(blue)  # warm: the first calls build the adapters
        requests = [
            ("GET /services", *counted(_event("get_services"))),
            ("POST /services selector (switch)", *counted(green)),
            ("POST /services selector (already so)", *counted(green)),
            ("POST /services imageTag", *counted(_event("deploy_hex_digest"))),
            ("POST /promote", *counted(_event("promote"))),
            ("GET /images", *counted(_event("get_images"))),
        ]
        call(blue)

        started = json.loads(call(_event("deploy_tag"))["body"])["deploymentId"]
        one = _event("get_deployment")
        one["path"] = f"/deployments/{started}"
        one["pathParameters"] = {"id": started}
        toggle = [green, blue]
        routes: list[tuple[str, Callable[[int], dict[str, Any]]]] = [
            ("GET /services", lambda n: _event("get_services")),
            ("POST /services selector", lambda n: toggle[n % 2]),
            ("POST /services imageTag", lambda n: _with_request_id(_event("deploy_tag"), n)),
            ("POST /rollback", lambda n: _with_request_id(_event("rollback_canary"), n)),
            ("POST /promote", lambda n: _with_request_id(_event("promote"), n)),
            ("GET /images", lambda n: _event("get_images")),
            ("GET /deployments", lambda n: _event("get_deployments")),
            ("GET /deployments/{id}", lambda n: one),
            ("POST /services bad digest (400)", lambda n: _event("error_bad_digest")),
        ]
        latencies: list[tuple[str, int, float, float]] = []
        for label, make in routes:
            status = int(call(make(-1))["statusCode"])  # warm this route
            samples = []
            for n in range(CALLS):
                event = make(n)
                start = time.perf_counter()
                call(event)
                samples.append((time.perf_counter() - start) * 1000)
            latencies.append(
                (label, status, statistics.median(samples), _percentile(samples, 0.99))
            )

    print(f"$ make bench   # or: python -m bench services_api   ({CALLS} warm calls per route)")
    header = f"{'operation':<40} {'status':>6} {'k8s requests':>13} {'target':>8}"
    print(header)
    print("-" * len(header))
    for label, status, count in requests:
        target = TARGETS.get(label)
        verdict = f"<={target}" + (" ok" if count <= target else " MISS") if target else ""
        print(f"{label:<40} {status:>6} {count:>13} {verdict:>8}")
    print()
    header = f"{'route (warm, in-process)':<40} {'status':>6} {'p50 ms':>8} {'p99 ms':>8}"
    print(header)
    print("-" * len(header))
    for label, status, p50, p99 in latencies:
        print(f"{label:<40} {status:>6} {p50:>8.1f} {p99:>8.1f}")


if __name__ == "__main__":
    main()
