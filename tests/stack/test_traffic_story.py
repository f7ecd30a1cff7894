"""``make demo ROUTER=alb|gateway``: the traffic story on the local stack, re-checked
from outside.

The demo verifies its steps itself; these run its story (``local.demo.Story``) on a
stack with a weighted router and its traffic simulator (the alb router on the
emulator; the gateway router on the real control plane, RBAC on, at the demo's x10),
then look again through the Kubernetes API, moto's CloudWatch and the ledger,
independently of the demo's code.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from kubernetes import client as k8s

from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.config import Settings
from bluegreen.domain.models import Digest, Outcome, Verdict
from local.demo import KUBE_SPEED, StepResult, Story
from local.stack import LOCAL_TARGET_GROUPS, LocalStack, StackOptions
from tests.stack.admin import admin_client

PRODUCTION_ACTION = "alb.ingress.kubernetes.io/actions.production-weights"

pytestmark = [
    pytest.mark.stack,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(("emulator", "alb", 120.0), id="emulator-alb"),
        pytest.param(("kube", "gateway", KUBE_SPEED), id="kube-gateway", marks=pytest.mark.kube),
    ],
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    cluster, router, speed = request.param
    options = StackOptions.ephemeral(
        tmp_path_factory.mktemp(f"traffic-stack-{cluster}"),
        speed=speed,
        cluster=cluster,
        router=router,
        traffic_rate=400,
    )
    with LocalStack(options) as running:
        yield running


def _production_weights(stack: LocalStack) -> dict[str, int]:
    """The router object's production weights per Service, as stored."""
    assert stack.state is not None
    with admin_client(stack) as api:
        if stack.options.router == "alb":
            ingress = k8s.NetworkingV1Api(api).read_namespaced_ingress("web", "wp-platform")
            groups = json.loads(ingress.metadata.annotations[PRODUCTION_ACTION])
            return {g["serviceName"]: g["weight"] for g in groups["forwardConfig"]["targetGroups"]}
        route = k8s.CustomObjectsApi(api).get_namespaced_custom_object(
            "gateway.networking.k8s.io", "v1", "wp-platform", "httproutes", "web"
        )
        (rule,) = [r for r in route["spec"]["rules"] if r.get("name") == "production"]
        return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}


def _selectors(stack: LocalStack) -> dict[str, dict[str, str]]:
    with admin_client(stack) as api:
        core = k8s.CoreV1Api(api)
        return {
            colour: core.read_namespaced_service(f"{colour}-service", "wp-platform").spec.selector
            for colour in ("blue", "green")
        }


@pytest.fixture(scope="module")
def story(stack: LocalStack) -> list[StepResult]:
    return Story(stack, io.StringIO()).run()


def _aws(stack: LocalStack, service: str) -> Any:
    assert stack.state is not None
    return boto3.client(
        service,
        endpoint_url=stack.state.moto_url,
        region_name=stack.state.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _ledger(stack: LocalStack) -> DynamoLedger:
    assert stack.state is not None
    settings = Settings.from_env(stack.state.environment)
    return DynamoLedger(
        settings.ledger_table,
        _aws(stack, "dynamodb"),
        settings.application,
        repository=settings.repository,
    )


def test_every_step_of_the_traffic_story_is_verified(story: list[StepResult]) -> None:
    assert [r.number for r in story] == list(range(2, 12))
    assert all(r.verified for r in story), [r.problem for r in story if not r.verified]


def test_the_router_ends_with_production_all_on_green_and_no_selector_moved(
    stack: LocalStack, story: list[StepResult]
) -> None:
    # GIVEN the story ran (its last promotion was backed out)
    # THEN production is all on green in the router object, as stored
    assert _production_weights(stack) == {"blue-service": 0, "green-service": 100}
    # AND the per-colour Services still select their own colour
    assert _selectors(stack) == {"blue": {"app": "blue"}, "green": {"app": "green"}}


def test_the_simulated_traffic_reached_moto_cloudwatch_per_target_group(
    stack: LocalStack, story: list[StepResult]
) -> None:
    # WHEN blue's target group is read back for the last ten minutes
    cloudwatch = _aws(stack, "cloudwatch")
    now = datetime.now(UTC)
    assert stack.state is not None
    load_balancer = stack.state.environment["BG_ANALYSIS_LOAD_BALANCER"]
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "errors",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/ApplicationELB",
                        "MetricName": "HTTPCode_Target_5XX_Count",
                        "Dimensions": [
                            {"Name": "TargetGroup", "Value": LOCAL_TARGET_GROUPS["blue"]},
                            {
                                "Name": "LoadBalancer",
                                "Value": load_balancer,
                            },
                        ],
                    },
                    "Period": 600,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1),
    )
    # THEN the errors image's 5xx are there, as an ALB would have published them
    (result,) = answer["MetricDataResults"]
    assert sum(result["Values"]) >= 1


def test_the_ledger_holds_the_promotions_and_the_flip_back(
    stack: LocalStack, story: list[StepResult]
) -> None:
    ledger = _ledger(stack)
    promoted, flip_back, failed = story[7], story[8], story[9]
    passed_record = ledger.deployment(promoted.facts["deploymentId"])
    failed_record = ledger.deployment(failed.facts["deploymentId"])
    flip_record = ledger.deployment(flip_back.facts["recordId"])
    assert passed_record is not None
    assert failed_record is not None
    assert flip_record is not None
    assert (passed_record.action, passed_record.outcome) == ("promote", Outcome.SUCCEEDED)
    assert (failed_record.action, failed_record.outcome) == ("promote", Outcome.FAILED)
    assert failed_record.cause.startswith("AnalysisFailed: ")
    assert (flip_record.action, flip_record.outcome) == ("rollback", Outcome.SUCCEEDED)
    # the flipped-back digest and the failing one are judged failed
    assert ledger.verdict(Digest.parse(promoted.facts["digest"])) is Verdict.FAILED
    assert ledger.verdict(Digest.parse(failed.facts["digest"])) is Verdict.FAILED
