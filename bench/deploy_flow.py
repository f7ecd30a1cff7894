"""Deploy flow: wall time, Lambda invocations and state transitions per successful deploy.

The real ``statemachine/deploy.asl.json`` on moto's interpreter, its tasks run
in-process by the real ``deploy_steps`` handler, the DynamoDB ledger on moto
tables built from template.yaml, and the cluster emulator with instant rollouts
and Jobs; Wait states last zero seconds. What remains is the flow's own cost:
the steps, their Kubernetes and DynamoDB calls, and the interpreter.

Invocations and transitions are what Step Functions and Lambda bill per deploy.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

COMMAND = ".venv/bin/python -m bench deploy_flow   (or: make bench)"
RUNS = 7
TARGET_SECONDS = 3.0


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


def main() -> None:
    """Deploy ``RUNS`` fresh digests (after one warm-up) and print the figures."""
    import boto3
    from moto import mock_aws

    from local.aws import create_tables
    from local.cluster import Clock, ClusterEmulator
    from local.lambdas import dispatch_lambdas_in_process
    from local.stepfunctions import (
        create_deploy_state_machine,
        parse_definitions_once,
        shortened_waits,
        wait_for_execution,
    )

    saved = dict(os.environ)
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        ClusterEmulator(seed="default", clock=Clock.instant()) as emulator,
    ):
        # the handler reads its settings from the environment, as in Lambda
        ours = {"AWS_REGION": "us-west-2", "BG_APP_NAME": "bench", "BG_KUBE_API_URL": emulator.url}
        os.environ.update(ours)
        try:
            from bluegreen.observability import logger
            from functions.deploy_steps import app, dependencies

            logger.setLevel("ERROR")
            dependencies.reset()
            session = boto3.Session(region_name="us-west-2")
            sfn = session.client("stepfunctions")
            create_tables(session.client("dynamodb"))
            machine = create_deploy_state_machine(
                lambda_client=session.client("lambda"),
                stepfunctions_client=sfn,
                iam_client=session.client("iam"),
            )
            handlers = dict.fromkeys(machine.function_names, app.lambda_handler)
            with (
                dispatch_lambdas_in_process(handlers),
                shortened_waits(0.0),
                parse_definitions_once(),
            ):
                reports: list[tuple[float, Any]] = []
                for n in range(RUNS + 1):
                    flow_input = {"action": "deploy", "image": _digest(0xB0 + n), "reason": "bench"}
                    started = time.perf_counter()
                    arn = sfn.start_execution(
                        stateMachineArn=machine.arn, name=f"bench-{n}", input=_json(flow_input)
                    )["executionArn"]
                    report = wait_for_execution(sfn, arn, timeout=60.0, poll=0.002)
                    elapsed = time.perf_counter() - started
                    if report.status != "SUCCEEDED":
                        raise SystemExit(f"bench deploy {n} {report.status}: {report.cause}")
                    if n:  # the first one pays for imports and connections
                        reports.append((elapsed, report))
        finally:
            for name in ours:
                if name in saved:
                    os.environ[name] = saved[name]
                else:
                    os.environ.pop(name, None)

    walls = [wall for wall, _ in reports]
    _, sample = reports[0]
    rows = [
        ("wall time per deploy, median", f"{statistics.median(walls):.2f} s"),
        ("wall time per deploy, max", f"{max(walls):.2f} s"),
        (
            "target",
            f"< {TARGET_SECONDS:.0f} s  ({'met' if max(walls) < TARGET_SECONDS else 'MISSED'})",
        ),
        ("Lambda task invocations per deploy", str(sample.invocations)),
        ("state transitions per deploy", str(sample.transitions)),
        ("states", " > ".join(sample.states)),
    ]
    print(f"$ {COMMAND}")
    print(f"deploy flow, {RUNS} successful deploys after one warm-up (instant rollouts, 0 s waits)")
    width = max(len(label) for label, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 20}")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def _json(value: object) -> str:
    import json

    return json.dumps(value)


if __name__ == "__main__":
    main()
