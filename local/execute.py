"""``make execute INPUT=<file>``: start the deploy flow on the local stack, as the console does.

What pressing "Start execution" in the Step Functions console does, against the
running local stack: ``StartExecution`` of its deploy state machine (on moto)
with the input file, under a new name, then (unless ``--no-wait``) polling the
execution until it ends and printing its status, and its Error and Cause when
it failed. The input is the flow's own (``events/deploy_flow/*.json``); the
flow validates it, so a malformed input ends in ``InvalidInput``, as it would
in AWS.

    python -m local.execute events/deploy_flow/deploy_canary_by_digest.json
    python -m local.execute events/deploy_flow/rollback_canary.json --name my-rollback

The same, with the AWS CLI and the environment the stack's banner prints:

    aws stepfunctions start-execution --state-machine-arn <arn> --name <name> \\
        --input file://events/deploy_flow/deploy_canary_by_digest.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


class ExecuteError(Exception):
    """A problem with the command line, the input or the stack, reported in one line."""


def read_input(path: str) -> str:
    """The input file's JSON text (it must be a JSON object, as the flow's input is)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise ExecuteError(f"cannot read input file {path}: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExecuteError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(value, dict):
        raise ExecuteError(f"{path} is not a JSON object: the flow's input is one")
    return text


def console_name(application: str) -> str:
    """A fresh execution name of the console's kind: ``<application>-console-<12 hex>``."""
    return f"{application}-console-{uuid.uuid4().hex[:12]}"[-80:].lstrip("-_")


def wait_for(
    client: Any,
    execution_arn: str,
    *,
    timeout: float,
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """``DescribeExecution`` until the execution ends (or ``timeout`` seconds pass)."""
    deadline = clock() + timeout
    while True:
        described: dict[str, Any] = client.describe_execution(executionArn=execution_arn)
        if described["status"] in FINAL or clock() >= deadline:
            return described
        sleep(interval)


def main(argv: list[str] | None = None) -> int:
    """Start one execution of the running local stack's deploy flow and report it."""
    parser = argparse.ArgumentParser(
        prog="python -m local.execute",
        description="Start the deploy flow on the running local stack with an input file, "
        "as the Step Functions console's Start execution does.",
    )
    parser.add_argument("input", help="the flow's input JSON (events/deploy_flow/*.json), or -")
    parser.add_argument(
        "--name", help="the execution name, which is the deployment id (default: a new one)"
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="print the execution ARN and return at once"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the execution to end (default %(default)g)",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=Path(
            os.environ.get("BLUEGREEN_LOCAL_STATE") or ROOT / ".local-stack" / "stack.json"
        ),
        help="the running stack's state file (default .local-stack/stack.json)",
    )
    args = parser.parse_args(argv)
    try:
        text = read_input(args.input)
        if args.name is not None and not _NAME.fullmatch(args.name):
            raise ExecuteError(
                f"--name {args.name!r}: an execution name is 1 to 80 letters, digits, '-' or '_'"
            )
        from local.stack import running_stack_at

        state = running_stack_at(args.state)
        if state is None:
            raise ExecuteError(
                f"no local stack is running ({args.state}): start one with `make local`"
            )
    except ExecuteError as exc:
        sys.stderr.write(f"execute: error: {exc}\n")
        return 2

    import boto3

    client = boto3.client(
        "stepfunctions",
        endpoint_url=state.moto_url,
        region_name=state.region,
        aws_access_key_id=state.access_key_id or "testing",
        aws_secret_access_key=state.secret_access_key or "testing",
    )
    application = state.environment.get("BG_APP_NAME", "local")
    name = args.name or console_name(application)
    try:
        started = client.start_execution(
            stateMachineArn=state.state_machine_arn, name=name, input=text
        )
    except client.exceptions.ExecutionAlreadyExists:
        sys.stderr.write(f"execute: error: an execution named {name!r} exists already\n")
        return 2
    arn = started["executionArn"]
    print(f"started {name}\n  executionArn  {arn}", flush=True)
    if args.no_wait:
        return 0
    described = wait_for(client, arn, timeout=args.timeout)
    status = described["status"]
    print(f"  status        {status}")
    for key in ("error", "cause"):
        if described.get(key):
            print(f"  {key:<13} {described[key]}")
    if status not in FINAL:
        sys.stderr.write(
            f"execute: still {status} after {args.timeout:g}s; it goes on "
            f"(bluegreen watch {name})\n"
        )
        return 3
    return 0 if status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
