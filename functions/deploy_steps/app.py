"""The deploy flow's tasks: one Lambda function, dispatching on the payload's ``step``.

One function rather than one per step, because:

- the steps share everything but a few lines: the same settings, the same ledger,
  cluster and EventBridge adapters and the same IAM permissions, so one role and
  one set of access entries in the cluster cover them all;
- every Task of ``statemachine/deploy.asl.json`` then invokes the same warm
  execution environment: the Kubernetes client (about a second to import) and
  the EKS token are paid for once per container, not once per step, which keeps
  a deploy fast and cheap;
- the ASL still names every step (``{"step": "begin", ...}``), so the execution
  history reads as the flow, and Retry/Catch remain per state.

The handler is thin: its environment model and ports come from ``dependencies``
(built on first use), and it hands the payload to
``bluegreen.logic.steps.run_step``. A step's named error propagates unchanged, so the
Lambda runtime reports its class name and Step Functions uses it as the Error.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from bluegreen.config import checked_environment
from bluegreen.domain.errors import AppNotFound, InvalidInput
from bluegreen.logic.steps import run_step
from bluegreen.observability import logger, tracer

if __package__:  # imported as functions.deploy_steps.app (tests, the local stack)
    from . import dependencies
else:  # the Lambda runtime loads this file as the top-level module ``app``
    import dependencies  # type: ignore[import-not-found,no-redef]


LAST_RESORT = "abort"
"""The step every failed path ends in (release, record, explain)."""


def application_of(event: dict[str, Any]) -> Any:
    """The application the execution acts for: its input's ``"app"`` (every Task is given
    the execution's input), None for the stack's default application. Checked when the
    step is scoped to it (``dependencies.acting_for``)."""
    flow_input = event.get("input")
    return flow_input.get("app") if isinstance(flow_input, dict) else None


@checked_environment(dependencies.environment)
@logger.inject_lambda_context(
    correlation_id_path="execution.name || deployment.id || promotion.id || state.promotion.id",
    clear_state=True,
)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run the step named by ``event["step"]`` of the deploy flow and return its result."""
    logger.append_keys(step=event.get("step"))
    try:
        with ExitStack() as scope:
            try:
                scope.enter_context(dependencies.acting_for(application_of(event)))
            except (AppNotFound, InvalidInput) as exc:
                # Only a console run can name no application, or one the registry does not
                # hold (the API and pushes name registered ones, and one cannot be deleted
                # while it runs): nothing of it was locked or recorded; the last resort
                # says so.
                problem = exc if isinstance(exc, InvalidInput) else InvalidInput("app", str(exc))
                if event.get("step") == LAST_RESORT:
                    return {"Error": type(problem).__name__, "Cause": str(problem)}
                raise problem from None
            return run_step(event, dependencies.deploy_ports(), dependencies.promotion_ports)
    finally:
        # The logger is shared by every handler of a process (the local stack runs
        # them all in one): the step belongs to this invocation's lines only.
        logger.remove_keys(["step"])
