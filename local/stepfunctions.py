"""The real deploy state machine on moto's Step Functions interpreter.

``create_deploy_state_machine`` registers the flow's Lambda functions on moto,
substitutes their ARNs into ``statemachine/deploy.asl.json`` exactly as the
template's ``DefinitionSubstitutions`` do, and creates the state machine. Pair it
with ``local.lambdas.dispatch_lambdas_in_process`` so the tasks run our handlers,
and with ``shortened_waits`` so Wait states and Retry intervals do not sleep in
real time. moto must run with ``{"stepfunctions": {"execute_state_machine": True}}``.
"""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Only for annotations: moto's interpreter is imported when a patch is applied.
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = ROOT / "statemachine" / "deploy.asl.json"

FUNCTIONS: Mapping[str, str] = {"DeployStepsFunctionArn": "deploy-steps"}
"""Each ``DefinitionSubstitutions`` key of the template and the local function name."""

_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass(frozen=True)
class DeployMachine:
    """What was created: the state machine and the functions its tasks invoke."""

    arn: str
    function_arns: Mapping[str, str]

    @property
    def function_names(self) -> list[str]:
        """Local function names, the keys ``dispatch_lambdas_in_process`` routes on."""
        return [arn.rsplit(":", 1)[-1] for arn in self.function_arns.values()]


def render_definition(substitutions: Mapping[str, str], path: Path = DEFINITION) -> str:
    """The definition with every ``${Name}`` replaced; an unknown name is an error."""
    text = path.read_text()
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        start = text.index("${")
        raise ValueError(f"unsubstituted placeholder in {path.name}: {text[start : start + 60]!r}")
    json.loads(text)
    return text


def _placeholder_zip() -> bytes:
    # moto stores the code but never runs it: invokes are dispatched in-process.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return event\n")
    return buffer.getvalue()


def create_deploy_state_machine(
    *,
    lambda_client: Any,
    stepfunctions_client: Any,
    iam_client: Any,
    name: str = "deploy",
    functions: Mapping[str, str] = FUNCTIONS,
) -> DeployMachine:
    """Create the flow's functions and the state machine on moto; idempotent by name."""
    try:
        role_arn = iam_client.create_role(
            RoleName=f"{name}-flow", AssumeRolePolicyDocument=json.dumps(_TRUST)
        )["Role"]["Arn"]
    except iam_client.exceptions.EntityAlreadyExistsException:
        role_arn = iam_client.get_role(RoleName=f"{name}-flow")["Role"]["Arn"]
    arns: dict[str, str] = {}
    for key, function_name in functions.items():
        try:
            arns[key] = lambda_client.create_function(
                FunctionName=function_name,
                Runtime="python3.13",
                Role=role_arn,
                Handler="app.lambda_handler",
                Code={"ZipFile": _placeholder_zip()},
                Timeout=120,
            )["FunctionArn"]
        except lambda_client.exceptions.ResourceConflictException:
            arns[key] = lambda_client.get_function(FunctionName=function_name)["Configuration"][
                "FunctionArn"
            ]
    definition = render_definition(arns)
    existing = {
        m["name"]: m["stateMachineArn"]
        for m in stepfunctions_client.list_state_machines()["stateMachines"]
    }
    if name in existing:
        stepfunctions_client.update_state_machine(
            stateMachineArn=existing[name], definition=definition
        )
        return DeployMachine(existing[name], arns)
    arn = stepfunctions_client.create_state_machine(
        name=name, definition=definition, roleArn=role_arn
    )["stateMachineArn"]
    return DeployMachine(arn, arns)


@dataclass
class ExecutionReport:
    """One finished execution: status, Error/Cause, output and its history."""

    arn: str
    status: str
    error: str | None
    cause: str | None
    output: Any
    history: list[dict[str, Any]]

    @property
    def name(self) -> str:
        """The execution name, which is the deployment id."""
        return self.arn.rsplit(":", 1)[-1]

    @property
    def states(self) -> list[str]:
        """Names of the states entered, in order (Map iterations included)."""
        return [
            e["stateEnteredEventDetails"]["name"]
            for e in self.history
            if "stateEnteredEventDetails" in e
        ]

    @property
    def task_errors(self) -> list[str]:
        """The Error of every failed task invocation, in order."""
        return [
            str(e["lambdaFunctionFailedEventDetails"].get("error", ""))
            for e in self.history
            if "lambdaFunctionFailedEventDetails" in e
        ]

    @property
    def invocations(self) -> int:
        """Lambda task invocations (retries included)."""
        return sum(1 for e in self.history if e["type"] == "LambdaFunctionScheduled")

    @property
    def transitions(self) -> int:
        """State transitions as Step Functions bills them: one per state entered."""
        return len(self.states)


def wait_for_execution(
    stepfunctions_client: Any, execution_arn: str, timeout: float = 30.0, poll: float = 0.005
) -> ExecutionReport:
    """Wait until the execution is no longer RUNNING and report it with its history."""
    deadline = time.monotonic() + timeout
    while True:
        described = stepfunctions_client.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout}s")
        time.sleep(poll)
    history: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = stepfunctions_client.get_execution_history(**kwargs)
        history.extend(page["events"])
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    output = described.get("output")
    return ExecutionReport(
        arn=execution_arn,
        status=described["status"],
        error=described.get("error"),
        cause=described.get("cause"),
        output=json.loads(output) if output else None,
        history=history,
    )


_scale_lock = threading.Lock()
_scales: list[float] = []
_originals: dict[str, Any] = {}


class _ScaledTime:
    """Stands in for the ``time`` module inside moto's retrier: sleeps are scaled."""

    def __getattr__(self, name: str) -> Any:
        import time

        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        import time

        time.sleep(max(seconds, 0) * (_scales[-1] if _scales else 1.0))


@contextmanager
def shortened_waits(factor: float) -> Iterator[None]:
    """Make Wait states and Retry intervals last ``factor`` times as long (0 = no wait).

    A Wait's seconds come from the definition or, with ``SecondsPath``, from the
    data; both are scaled here, where they are slept, so the definition that runs
    is exactly the one deployed.
    """
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    def scaled_wait(self: WaitFunction, env: Environment, wait_seconds: int) -> None:
        seconds = max(wait_seconds, 0) * (_scales[-1] if _scales else 1.0)
        if seconds > 0:
            env.program_state_event.wait(seconds)

    # The retrier sleeps through its module-global ``time``, which moto does not export:
    # it is read and replaced through the module's namespace.
    retrier_globals = vars(retrier_decl)
    with _scale_lock:
        if not _scales:
            _originals["wait"] = wait_function.WaitFunction._wait_interval
            _originals["time"] = retrier_globals["time"]
            # Replacing moto's method is the point; the ignore covers only mypy's ban on
            # assigning to a method, the signatures are still checked.
            wait_function.WaitFunction._wait_interval = scaled_wait  # type: ignore[method-assign]
            retrier_globals["time"] = _ScaledTime()
        _scales.append(factor)
    try:
        yield
    finally:
        with _scale_lock:
            _scales.remove(factor)
            if not _scales:
                wait_function.WaitFunction._wait_interval = _originals.pop("wait")  # type: ignore[method-assign]
                retrier_globals["time"] = _originals.pop("time")


_parse_lock = threading.Lock()
_parse_users = 0
_parsed: dict[str, EvalComponent] = {}


@contextmanager
def parse_definitions_once() -> Iterator[None]:
    """Parse each definition once instead of at every execution's start.

    moto's interpreter parses the ASL (ANTLR, about half a second for the deploy
    flow) whenever an execution starts. Inside this block the parsed program is
    kept per definition text and each execution gets its own deep copy (a few
    milliseconds), so executions still share no state.
    """
    import copy

    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    global _parse_users

    def entrypoint(self: ExecutionWorker) -> EvalComponent:
        definition = self._evaluation_details.state_machine_details.definition
        with _parse_lock:
            program = _parsed.get(definition)
        if program is None:
            program = AmazonStateLanguageParser.parse(definition)[0]
            with _parse_lock:
                _parsed[definition] = program
        return copy.deepcopy(program)

    with _parse_lock:
        if _parse_users == 0:
            _originals["entrypoint"] = ExecutionWorker._get_evaluation_entrypoint
            ExecutionWorker._get_evaluation_entrypoint = entrypoint  # type: ignore[method-assign]
        _parse_users += 1
    try:
        yield
    finally:
        with _parse_lock:
            _parse_users -= 1
            if _parse_users == 0:
                ExecutionWorker._get_evaluation_entrypoint = _originals.pop("entrypoint")  # type: ignore[method-assign]
                _parsed.clear()
