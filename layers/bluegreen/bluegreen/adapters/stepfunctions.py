"""Starting and reading executions of the deploy state machine (Step Functions).

Execution names are the deployment ids (``bluegreen.domain.executions``), so a
duplicate start returns the existing execution.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bluegreen.domain.executions import execution_arn

if TYPE_CHECKING:
    from bluegreen.domain.ports import FlowStarter


class StepFunctionsFlow:
    """``ports.FlowStarter`` over a boto3 ``stepfunctions`` client.

    ``app`` names the application of the fleet the executions act for: every input
    carries it (``"app"``), and each step of the flow runs for that application. None,
    for the stack's default application, leaves the input as it always was.
    """

    def __init__(self, state_machine_arn: str, client: Any, app: str | None = None) -> None:
        self._arn = state_machine_arn
        self._client = client
        self._app = app

    def start(self, name: str, flow_input: dict[str, object]) -> str:
        """Start an execution; a duplicate ``name`` returns the existing execution's ARN."""
        if self._app is not None:
            flow_input = {**flow_input, "app": self._app}
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


def lazy_flow(state_machine_arn: str, region: str) -> Callable[[], FlowStarter]:
    """A factory of the flow starter that builds its boto3 client on the first call.

    A push that does not deploy never pays for creating the client.
    """

    @lru_cache(maxsize=1)
    def build() -> FlowStarter:
        import boto3

        client: Any = boto3.client("stepfunctions", region_name=region)
        return StepFunctionsFlow(state_machine_arn, client)

    return build


class StepFunctionsTaskTokens:
    """``ports.TaskTokens`` over a boto3 ``stepfunctions`` client.

    A token that waits no more (the task timed out, the execution ended) is
    ``TaskTimedOut``, ``TaskDoesNotExist`` or ``InvalidToken``: False, not an error.
    """

    _GONE = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})

    def __init__(self, client: Any) -> None:
        self._client = client

    def succeed(self, token: str, output: Mapping[str, object]) -> bool:
        return self._send(
            self._client.send_task_success, taskToken=token, output=json.dumps(dict(output))
        )

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._send(
            self._client.send_task_failure, taskToken=token, error=error, cause=cause[:32_000]
        )

    def heartbeat(self, token: str) -> bool:
        return self._send(self._client.send_task_heartbeat, taskToken=token)

    def _send(self, method: Callable[..., Any], **request: Any) -> bool:
        try:
            method(**request)
        except Exception as exc:
            code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
            if code in self._GONE:
                return False
            raise
        return True
