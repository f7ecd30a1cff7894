"""``make invoke FN=<function> EVENT=<file>``: run one handler on an event, locally.

What ``sam local invoke`` does, without Docker: the handler runs in this
process with the environment of the running local stack (moto's endpoint, the
cluster emulator's URL, every ``BG_*`` setting), so it reads and writes the same
ledger, state machine and cluster that the stack, the CLI and kubectl see. The
response is printed as JSON; an exception is printed as Lambda reports it
(``errorType``, ``errorMessage``, ``stackTrace``) and the exit status is 1.

    python -m local.invoke ecr_push events/ecr_push/tagged_push.json
    python -m local.invoke ServicesApiFunction events/services_api/get_services.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"


@dataclass
class LocalLambdaContext:
    """The Lambda context object a handler receives, with a deadline like the real one."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    region: str = "us-west-2"
    account: str = "123456789012"
    timeout_seconds: float = 60.0
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{time.strftime('%Y/%m/%d')}/[$LATEST]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation's timeout."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InvokeError(Exception):
    """A problem with the command line or the stack, reported in one line."""


def function_names() -> list[str]:
    """The handlers in ``functions/`` (folders with an ``app.py``)."""
    return sorted(p.parent.name for p in FUNCTIONS.glob("*/app.py"))


def resolve_function(name: str) -> str:
    """A folder name (``ecr_push``) or the template's logical id (``EcrPushFunction``)."""
    if (FUNCTIONS / name / "app.py").exists():
        return name
    try:
        from local.aws import load_template

        resources = load_template().get("Resources", {})
    except (OSError, ValueError):
        resources = {}
    resource = resources.get(name) if isinstance(resources, dict) else None
    if isinstance(resource, dict):
        code_uri = str((resource.get("Properties") or {}).get("CodeUri", "")).rstrip("/")
        folder = code_uri.rsplit("/", 1)[-1]
        if (FUNCTIONS / folder / "app.py").exists():
            return folder
    known = ", ".join(function_names()) or "none yet"
    raise InvokeError(f"unknown function {name!r}: expected one of {known} or a logical id")


def load_event(path: str) -> Any:
    """The event JSON from a file (``-`` reads standard input)."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise InvokeError(f"cannot read event file {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvokeError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None


def check_event_fits(function: str, event: Any) -> None:
    """Refuse, with what to do instead, an event that is another entry point's input.

    deploy_steps runs one task of the flow (``{"step": ...}``); the flow's own
    input (``events/deploy_flow/``) is started as an execution, not invoked.
    """
    if function != "deploy_steps" or not isinstance(event, dict) or "step" in event:
        return
    if "action" in event:
        raise InvokeError(
            "this is the deploy flow's input, not a deploy_steps task: start an execution "
            "with it instead, `make execute INPUT=<file>` (python -m local.execute <file>)"
        )
    raise InvokeError(
        'deploy_steps takes one task of the deploy flow ({"step": ...}), as the state '
        "machine sends it; to run the flow, `make execute INPUT=events/deploy_flow/<file>`"
    )


def invoke(function: str, event: Any, context: LocalLambdaContext | None = None) -> Any:
    """Import ``functions.<function>.app`` and call its ``lambda_handler``."""
    from local.stack import make_project_importable

    make_project_importable()
    module = importlib.import_module(f"functions.{function}.app")
    return module.lambda_handler(event, context or LocalLambdaContext(function_name=function))


def lambda_error(exc: BaseException) -> dict[str, Any]:
    """An exception as the Lambda service reports an unhandled one."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_exception(exc)[1:],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the handler against the running local stack and print its response."""
    parser = argparse.ArgumentParser(
        prog="python -m local.invoke",
        description="Invoke a handler with an event file against the running local stack.",
    )
    parser.add_argument("function", help="ecr_push, services_api, deploy_steps or a logical id")
    parser.add_argument("event", help="the event JSON file (e.g. events/ecr_push/...json), or -")
    parser.add_argument(
        "--state",
        type=Path,
        default=Path(
            os.environ.get("BLUEGREEN_LOCAL_STATE") or ROOT / ".local-stack" / "stack.json"
        ),
        help="the running stack's state file (default .local-stack/stack.json)",
    )
    parser.add_argument(
        "--no-stack",
        action="store_true",
        help="use the current environment instead of the running local stack's",
    )
    args = parser.parse_args(argv)
    try:
        function = resolve_function(args.function)
        event = load_event(args.event)
        check_event_fits(function, event)
        if not args.no_stack:
            from local.stack import running_stack_at

            state = running_stack_at(args.state)
            if state is None:
                raise InvokeError(
                    "no local stack is running: start one with `make local` "
                    "(or pass --no-stack to use the current environment)"
                )
            os.environ.update(state.environment)
    except InvokeError as exc:
        sys.stderr.write(f"invoke: error: {exc}\n")
        return 2
    # A handler that publishes no metric makes Powertools warn; here that is noise.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    context = LocalLambdaContext(function_name=function)
    try:
        response = invoke(function, event, context)
    except Exception as exc:
        print(json.dumps(lambda_error(exc), indent=2))
        return 1
    print(json.dumps(response, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
