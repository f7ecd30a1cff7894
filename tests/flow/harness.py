"""Running the real deploy.asl.json on moto and reading what happened.

``FlowRig`` holds the moto clients and the created state machine; ``run`` starts
an execution and waits for it to end; ``Run`` reads the execution history as
the states that ran, the errors that were raised and the final Error/Cause.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws

from local.lambdas import dispatch_lambdas_in_process
from local.stepfunctions import (
    DeployMachine,
    ExecutionReport,
    create_deploy_state_machine,
    parse_definitions_once,
    shortened_waits,
    wait_for_execution,
)

Handler = Callable[[Any, Any], Any]


Run = ExecutionReport


@dataclass
class FlowRig:
    machine: DeployMachine
    sfn: Any
    clients: dict[str, Any]

    def start(self, flow_input: Any, name: str) -> str:
        payload = flow_input if isinstance(flow_input, str) else json.dumps(flow_input)
        return str(
            self.sfn.start_execution(stateMachineArn=self.machine.arn, name=name, input=payload)[
                "executionArn"
            ]
        )

    def wait(self, arn: str, timeout: float = 20.0) -> Run:
        return wait_for_execution(self.sfn, arn, timeout)

    def entered(self, arn: str) -> list[str]:
        """The states an execution has entered so far, in order (it may still run)."""
        events = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        return [
            e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
        ]

    def run(self, flow_input: Any, name: str | None = None) -> Run:
        """Start an execution (a fresh name unless given) and wait for its end."""
        return self.wait(self.start(flow_input, name or f"run-{uuid.uuid4().hex[:12]}"))


class Router:
    """A handler that forwards to whichever handler the current test set."""

    def __init__(self) -> None:
        self.target: Handler | None = None

    def __call__(self, event: Any, context: Any) -> Any:
        assert self.target is not None, "no handler set for this test"
        return self.target(event, context)


@contextmanager
def flow_rig(handler: Handler, *, wait_factor: float = 0.0) -> Iterator[FlowRig]:
    """moto (with the interpreter on), the deploy machine, ``handler`` on its functions."""
    with ExitStack() as stack:
        stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        session = boto3.Session(region_name="us-west-2")
        clients = {
            name: session.client(name)
            for name in ("lambda", "stepfunctions", "iam", "dynamodb", "events", "sqs")
        }
        machine = create_deploy_state_machine(
            lambda_client=clients["lambda"],
            stepfunctions_client=clients["stepfunctions"],
            iam_client=clients["iam"],
        )
        stack.enter_context(
            dispatch_lambdas_in_process(dict.fromkeys(machine.function_names, handler))
        )
        stack.enter_context(shortened_waits(wait_factor))
        stack.enter_context(parse_definitions_once())
        # Failures are what many tests are about: moto logs each one with a huge repr.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        yield FlowRig(machine, clients["stepfunctions"], clients)
