"""``make demo ROUTER=alb``: the traffic story on the local stack, re-checked from outside.

The demo verifies its steps itself; these run its story (``local.demo.Story``) on a
stack with the alb router and its traffic simulator, then look again through the
Kubernetes API, moto's CloudWatch and the ledger, independently of the demo's code.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.config import Settings
from bluegreen.domain.models import Digest, Outcome, Verdict
from local.demo import StepResult, Story
from local.stack import LOCAL_TARGET_GROUPS, LocalStack, StackOptions

pytestmark = [
    pytest.mark.stack,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = StackOptions.ephemeral(
        tmp_path_factory.mktemp("traffic-stack"), speed=120, router="alb", traffic_rate=400
    )
    with LocalStack(options) as running:
        yield running


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


def test_the_ingress_ends_with_production_all_on_green_and_no_selector_moved(
    stack: LocalStack, story: list[StepResult]
) -> None:
    # GIVEN the story ran (its last promotion was backed out)
    assert stack.cluster is not None
    ingress = stack.cluster.get("ingresses", "wp-platform", "web")
    groups = json.loads(
        ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/actions.production-weights"]
    )["forwardConfig"]["targetGroups"]
    # THEN production is all on green, as stored
    assert {g["serviceName"]: g["weight"] for g in groups} == {
        "blue-service": 0,
        "green-service": 100,
    }
    # AND the per-colour Services still select their own colour
    for colour in ("blue", "green"):
        service = stack.cluster.get("services", "wp-platform", f"{colour}-service")
        assert service["spec"]["selector"] == {"app": colour}


def test_the_simulated_traffic_reached_moto_cloudwatch_per_target_group(
    stack: LocalStack, story: list[StepResult]
) -> None:
    # WHEN blue's target group is read back for the last ten minutes
    cloudwatch = _aws(stack, "cloudwatch")
    now = datetime.now(UTC)
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
                                "Value": stack.state.environment["BG_ANALYSIS_LOAD_BALANCER"],
                            },  # type: ignore[union-attr]
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
