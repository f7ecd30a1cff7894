"""The services API under test: moto for DynamoDB, ECR and Step Functions, and the
cluster emulator for Kubernetes.

Requests go through ``lambda_handler`` with API Gateway REST proxy events from
``events/services_api/``; the adapters are the real ones (``DynamoLedger``,
``StepFunctionsFlow``, ``EcrRegistry``, ``KubernetesCluster``), built by the
function's own factories from ``BG_*`` settings. The state machine is created from
the real ASL and never executed: these tests assert what the API starts, not what
the flow does. Cluster state is read back through the emulator's API.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bluegreen.adapters.kube.client import api_client_for
from bluegreen.config import Settings
from bluegreen.domain.models import Colour, Digest
from functions.services_api import app as api_app
from functions.services_api.api import dependencies
from local.alb_controller import SimulatedLoadBalancerController
from local.aws import create_tables
from local.cluster.emulator import ClusterEmulator
from tests.events import load_event

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "wp-platform"
REGISTRY = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud"
ASL = ROOT / "statemachine" / "deploy.asl.json"
REPOSITORY = "rezfusion-cloud"

KNOWN = Digest("216c0204fa1e71f93603c0d5087ef16d6b2ba5bce9084874bf9b2aebcddebc77")
"""Pushed as ``release-1.4``; the sample events deploy it; green (production) runs it."""
OLDER = Digest("1274e8bc4d963536e88265781170e72a2939caae25127cd9d400ab124393f946")
"""Pushed as ``release-1.3``; blue (the canary) runs it in the emulator's default seed."""
IN_ECR_ONLY = Digest("ab" * 32)
UNKNOWN = Digest("deadbeef" * 8)


class LambdaContext:
    """The attributes Powertools' logger reads from a Lambda context."""

    function_name = "services-api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-west-2:123456789012:function:services-api"
    memory_limit_in_mb = 512
    aws_request_id = "6f1c7a4e-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/services-api"
    log_stream_name = "2026/11/27/[$LATEST]0123456789abcdef"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 29_000


@dataclass
class Answer:
    """An API Gateway proxy response, decoded."""

    status: int
    body: Any
    headers: dict[str, Any]


def call(event: dict[str, Any]) -> Answer:
    """Invoke the handler with a proxy event and decode its answer."""
    response = api_app.lambda_handler(event, LambdaContext())
    body = json.loads(response["body"]) if response.get("body") else None
    return Answer(response["statusCode"], body, response.get("headers") or {})


def event(name: str, **changes: Any) -> dict[str, Any]:
    """A sample event of ``events/services_api/``, with top-level fields replaced."""
    loaded: dict[str, Any] = load_event(f"services_api/{name}.json")
    for key, value in changes.items():
        loaded[key] = json.dumps(value) if key == "body" and not isinstance(value, str) else value
    return loaded


@dataclass
class Stack:
    """The moto side of the stack, with handles the tests assert through."""

    dynamodb: Any
    ecr: Any
    sfn: Any
    state_machine_arn: str
    application: str = "wp-platform"

    def execution_input(self, execution_arn: str) -> dict[str, Any]:
        described = self.sfn.describe_execution(executionArn=execution_arn)
        loaded: dict[str, Any] = json.loads(described["input"])
        return loaded

    def executions(self) -> list[dict[str, Any]]:
        """Executions this test's application started (names begin with the application)."""
        listed: list[dict[str, Any]] = self.sfn.list_executions(
            stateMachineArn=self.state_machine_arn
        )["executions"]
        return [e for e in listed if e["name"].startswith(f"{self.application}-")]


@pytest.fixture(scope="package")
def aws() -> Iterator[Stack]:
    """Ledger tables from template.yaml, the ECR repository and the deploy state machine.

    Built once for this folder (creating tables and clients dominates a test's time);
    each test gets its own application name, so ledger keys and execution names
    never meet across tests.
    """
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        dynamodb = boto3.client("dynamodb", region_name="us-west-2")
        create_tables(dynamodb)
        ecr = boto3.client("ecr", region_name="us-west-2")
        ecr.create_repository(repositoryName=REPOSITORY)
        ecr.put_image(
            repositoryName=REPOSITORY,
            imageManifest=json.dumps(
                {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
            ),
            imageTag="ecr-only",
            imageDigest=str(IN_ECR_ONLY),
        )
        sfn = boto3.client("stepfunctions", region_name="us-west-2")
        machine = sfn.create_state_machine(
            name="bluegreen-deploy",
            definition=ASL.read_text(),
            roleArn="arn:aws:iam::123456789012:role/bluegreen-deploy",
        )["stateMachineArn"]
        dependencies.reset()
        yield Stack(dynamodb, ecr, sfn, machine)
        dependencies.reset()


@pytest.fixture
def stack(
    aws: Stack,
    monkeypatch: pytest.MonkeyPatch,
    cluster_emulator: ClusterEmulator,
) -> Iterator[Stack]:
    """The function configured for a fresh application on the module's moto stack,
    talking to a fresh cluster emulator."""
    application = f"app-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("BG_APP_NAME", application)
    monkeypatch.setenv("BG_STATE_MACHINE_ARN", aws.state_machine_arn)
    monkeypatch.setenv("BG_KUBE_API_URL", cluster_emulator.url)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "services-api")
    dependencies.reset(clients=False)
    yield Stack(aws.dynamodb, aws.ecr, aws.sfn, aws.state_machine_arn, application)
    dependencies.reset(clients=False)


@pytest.fixture
def alb(
    monkeypatch: pytest.MonkeyPatch, stack: Stack, cluster_emulator: ClusterEmulator
) -> Iterator[Stack]:
    """The stack with the alb router, and the stand-in load balancer controller making its
    Ingress into moto's ELBv2 (where a flip is confirmed). Its cluster name is the
    application's, so the load balancers of earlier tests in this moto are not its own."""
    monkeypatch.setenv("BG_TRAFFIC_ROUTER", "alb")
    monkeypatch.setenv("BG_CLUSTER_NAME", stack.application)
    dependencies.reset(clients=False)
    controller = SimulatedLoadBalancerController(
        api_client_for(Settings(kube_api_url=cluster_emulator.url)),
        boto3.client("elbv2", region_name="us-west-2"),
        boto3.client("ec2", region_name="us-west-2"),
        stack.application,
        NAMESPACE,
    )
    with controller.running(interval=0.05):
        yield stack


@pytest.fixture
def ledger(stack: Stack) -> Any:
    """The function's own ledger adapter, seeded with two pushes."""
    adapter = dependencies.ledger()
    adapter.record_push(OLDER, "release-1.3", datetime(2026, 11, 20, tzinfo=UTC), "push-1")
    adapter.record_push(KNOWN, "release-1.4", datetime(2026, 11, 26, tzinfo=UTC), "push-2")
    return adapter


@pytest.fixture
def emu(stack: Stack, cluster_emulator: ClusterEmulator) -> ClusterEmulator:
    """The emulator the function talks to (default seed: blue canary on OLDER, green on KNOWN)."""
    return cluster_emulator


def roles(emu: ClusterEmulator) -> tuple[str, str | None, str | None]:
    """canaryEnv.selector and both Services' selectors, read through the emulator's API."""
    configmap = emu.get("configmaps", NAMESPACE, "canary-env")
    assert configmap is not None
    env = json.loads(configmap["data"]["canaryEnv"])

    def selected(name: str) -> str | None:
        service = emu.get("services", NAMESPACE, name)
        assert service is not None
        app: str | None = service["spec"].get("selector", {}).get("app")
        return app

    return env["selector"], selected("canary-service"), selected("production-service")


def versions(emu: ClusterEmulator) -> dict[str, str]:
    """resourceVersion of every object a request could change."""
    found = {}
    for resource in ("configmaps", "services", "deployments", "jobs"):
        for item in emu.list(resource, NAMESPACE):
            found[f"{resource}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return found


def set_image(emu: ClusterEmulator, colour: Colour, image: str) -> None:
    """Change a colour's container image behind the API's back (as a person with kubectl)."""

    def change(deployment: dict[str, Any]) -> None:
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image

    emu.mutate("deployments", NAMESPACE, f"{colour.value}-deployment", change)


def pinned(digest: Digest) -> str:
    """The image reference of ``digest`` in the application's repository."""
    return f"{REGISTRY}@{digest}"
