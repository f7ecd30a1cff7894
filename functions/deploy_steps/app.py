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

The handler is thin: it builds the ports on first use and hands the payload to
``bluegreen.logic.steps.run_step``. A step's named error propagates unchanged, so the
Lambda runtime reports its class name and Step Functions uses it as the Error.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from bluegreen.config import Settings, load_settings
from bluegreen.logic.deploy.ports import DeployPorts
from bluegreen.logic.promotion import PromotionPorts
from bluegreen.logic.steps import run_step
from bluegreen.observability import logger, tracer


@lru_cache(maxsize=8)
def _aws_client(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region)


def build_ports(settings: Settings) -> DeployPorts:
    """The real adapters for ``settings``: DynamoDB ledger, Kubernetes API, EventBridge."""
    from bluegreen.adapters.eventbridge import Notifier
    from bluegreen.adapters.kube.cluster import KubernetesCluster
    from bluegreen.adapters.ledger import DynamoLedger
    from bluegreen.adapters.probes import CloudWatchAlarms, UrllibProbe
    from bluegreen.logic.health import HealthProbes

    return DeployPorts(
        settings=settings,
        ledger=DynamoLedger(
            settings.ledger_table,
            _aws_client("dynamodb", settings.region),
            settings.application,
            repository=settings.repository,
        ),
        cluster=KubernetesCluster.from_settings(settings),
        notifier=Notifier(
            _aws_client("events", settings.region),
            source=settings.event_source,
            event_bus_name=settings.event_bus_name,
        ),
        probes=HealthProbes(
            http=UrllibProbe(), alarms=CloudWatchAlarms(_aws_client("cloudwatch", settings.region))
        ),
    )


@lru_cache(maxsize=1)
def ports() -> DeployPorts:
    """The process's ports, built once per execution environment."""
    return build_ports(load_settings())


@lru_cache(maxsize=1)
def promotion_ports() -> PromotionPorts:
    """The deploy ports plus CloudWatch's metrics and the promotions' store."""
    from bluegreen.adapters.cloudwatch import CloudWatchTrafficMetrics
    from bluegreen.adapters.promotions import DynamoPromotions

    deploy, settings = ports(), load_settings()
    return PromotionPorts(
        deploy=deploy,
        metrics=CloudWatchTrafficMetrics(
            _aws_client("cloudwatch", settings.region),
            settings.analysis_target_groups,
            settings.analysis_load_balancer,
        ),
        promotions=DynamoPromotions(
            settings.ledger_table, _aws_client("dynamodb", settings.region), settings.application
        ),
    )


def reset() -> None:
    """Forget the ports and settings (tests change the environment between cases)."""
    load_settings.cache_clear()
    ports.cache_clear()
    promotion_ports.cache_clear()
    _aws_client.cache_clear()


@logger.inject_lambda_context(
    correlation_id_path="execution.name || deployment.id || promotion.id || state.promotion.id",
    clear_state=True,
)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run the step named by ``event["step"]`` of the deploy flow and return its result."""
    logger.append_keys(step=event.get("step"))
    try:
        return run_step(event, ports(), promotion_ports)
    finally:
        # The logger is shared by every handler of a process (the local stack runs
        # them all in one): the step belongs to this invocation's lines only.
        logger.remove_keys(["step"])
