"""Starting and reading executions of the deploy state machine (Step Functions).

The deployment id IS the execution name, so a caller that derives the name from
its request (the ECR auto-deploy from the digest, the API from digest + request
id) gets idempotency for free: a duplicate start returns the existing execution.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

_NAME_MAX = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def execution_name(application: str, action: str, key: str) -> str:
    """A Step Functions execution name, deterministic from its arguments.

    At most 80 characters of ``[A-Za-z0-9-_]`` (what Step Functions allows and
    what CloudWatch Logs accepts); a name that would be longer keeps its readable
    prefix and ends with a hash of the whole, so two keys never share a name.
    """
    whole = _UNSAFE.sub("-", f"{application}-{action}-{key}").strip("-")
    if len(whole) <= _NAME_MAX:
        return whole
    fingerprint = hashlib.sha256(whole.encode()).hexdigest()[:16]
    return f"{whole[: _NAME_MAX - len(fingerprint) - 1]}-{fingerprint}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN an execution named ``name`` of that state machine has (or will have)."""
    head, marker, machine = state_machine_arn.rpartition(":stateMachine:")
    if not marker:
        raise ValueError(f"{state_machine_arn!r} is not a state machine ARN")
    return f"{head}:execution:{machine}:{name}"


class StepFunctionsFlow:
    """``ports.FlowStarter`` over a boto3 ``stepfunctions`` client."""

    def __init__(self, state_machine_arn: str, client: Any) -> None:
        self._arn = state_machine_arn
        self._client = client

    def start(self, name: str, flow_input: dict[str, object]) -> str:
        """Start an execution; a duplicate ``name`` returns the existing execution's ARN."""
        try:
            response = self._client.start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(flow_input)
            )
        except self._client.exceptions.ExecutionAlreadyExists:
            return execution_arn(self._arn, name)
        return str(response["executionArn"])

    def describe(self, execution_arn: str) -> dict[str, object]:
        """Status, start/stop dates, error, cause and output of an execution."""
        response = self._client.describe_execution(executionArn=execution_arn)
        output = response.get("output")
        return {
            "status": response["status"],
            "startDate": response.get("startDate"),
            "stopDate": response.get("stopDate"),
            "error": response.get("error"),
            "cause": response.get("cause"),
            "output": json.loads(output) if output else None,
        }
