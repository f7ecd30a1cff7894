"""Fixtures of the flow tests: moto with the real state machine, the emulator, the ledger.

One moto world (state machine, Lambda function, ledger table) serves the whole
folder, because creating it and parsing the ASL cost about a second; each test
gets its own application name, so its ledger rows (lock, verdicts, records) and
its executions are its own, and its own cluster emulator.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.adapters.promotions import DynamoPromotions
from bluegreen.adapters.stepfunctions import StepFunctionsFlow
from bluegreen.config import Settings
from bluegreen.domain.models import Digest, Role
from bluegreen.domain.ports import FlowStarter, ImageRegistry
from bluegreen.logic import services
from bluegreen.logic.requests import Caller, DeploymentStarted, ReleasePorts
from functions.deploy_steps import app as deploy_steps
from functions.deploy_steps import dependencies as deploy_steps_dependencies
from local.aws import create_tables
from local.cluster import Clock, ClusterEmulator
from local.kube.testing import KUBE_KUBELET_SPEED
from local.stepfunctions import shortened_waits
from tests.backends import BACKENDS, Backend, emulator_backend, kube_backend
from tests.flow.harness import FlowRig, Router, flow_rig

REGISTRY = "123456789012.dkr.ecr.us-west-2.amazonaws.com"
REPOSITORY = "rezfusion-cloud"
SEED_BLUE = Digest.parse("1274e8bc4d963536e88265781170e72a2939caae25127cd9d400ab124393f946")
SEED_GREEN = Digest.parse("216c0204fa1e71f93603c0d5087ef16d6b2ba5bce9084874bf9b2aebcddebc77")
NAMESPACE = "wp-platform"


@pytest.fixture(scope="session")
def shared_rig() -> Iterator[tuple[FlowRig, Router]]:
    """moto (interpreter on), the deploy machine and the template's tables, for the folder."""
    router = Router()
    with flow_rig(router) as rig:
        create_tables(rig.clients["dynamodb"])
        yield rig, router


@dataclass
class Stack:
    """One test's application: its settings, cluster backend, ledger and the running flow."""

    settings: Settings
    backend: Backend
    ledger: DynamoLedger
    rig: FlowRig
    queue_url: str
    timeout: float = 20.0
    """How long an execution may take (the real control plane runs in real time)."""

    @property
    def emulator(self) -> ClusterEmulator:
        """The emulator behind this stack (a test of faults runs on the emulator alone)."""
        found: ClusterEmulator = self.backend.extras["emulator"]
        return found

    def image(self, digest: Digest) -> str:
        return self.settings.image_ref(digest)

    def running(self, colour: str) -> str:
        """The image of the colour's ``web`` container, read from the cluster's API."""
        deployment = self.backend.stored("deployments", f"{colour}-deployment")
        containers = deployment["spec"]["template"]["spec"]["containers"]
        return str(next(c["image"] for c in containers if c["name"] == "web"))

    def jobs(self) -> list[dict[str, Any]]:
        return self.backend.list("jobs")

    def push(self, digest: Digest, tag: str | None = "dev") -> None:
        self.ledger.record_push(digest, tag, datetime.now(UTC), f"evt-{uuid.uuid4().hex[:8]}")

    def register_app(self, namespace: str) -> tuple[str, DynamoLedger]:
        """Another application of the fleet, living in ``namespace`` (seeded in this
        stack's emulator), registered with this stack's settings; its name and ledger."""
        from bluegreen.adapters.apps import DynamoAppRegistry
        from bluegreen.domain.apps import AppSpec, Editor, default_app_spec

        self.emulator.seed_namespace(namespace)
        name = f"shop-{uuid.uuid4().hex[:8]}"
        spec = default_app_spec(self.settings).to_json()
        spec["namespace"] = namespace
        client = self.rig.clients["dynamodb"]
        DynamoAppRegistry(self.settings.ledger_table, client).put(
            name, AppSpec.parse(spec), Editor(actor="test"), None
        )
        return name, DynamoLedger(self.settings.ledger_table, client, name, repository=REPOSITORY)

    def run(self, flow_input: Any, name: str | None = None) -> Any:
        arn = self.rig.start(flow_input, name or f"run-{uuid.uuid4().hex[:12]}")
        return self.rig.wait(arn, timeout=self.timeout)

    @property
    def flow(self) -> StepFunctionsFlow:
        """The deploy state machine, as the API and the ECR auto-deploy start it."""
        return StepFunctionsFlow(self.rig.machine.arn, self.rig.sfn)

    @property
    def api_settings(self) -> Settings:
        return dataclasses.replace(self.settings, state_machine_arn=self.rig.machine.arn)

    def cluster(self) -> KubernetesCluster:
        """The product's cluster adapter for this stack (what the API's handler builds)."""
        return KubernetesCluster.from_settings(self.settings)

    def release_ports(
        self, *, flow: FlowStarter | None = None, registry: ImageRegistry | None = None
    ) -> ReleasePorts:
        """The API's ports, with the real adapters of this stack (the flow and the
        registry replaceable)."""
        settings = self.api_settings
        return ReleasePorts(
            settings=settings,
            ledger=self.ledger,
            cluster=self.cluster(),
            flow=flow or self.flow,
            registry=registry or _EverythingInEcr(),
            promotions=DynamoPromotions(
                settings.ledger_table, self.rig.clients["dynamodb"], settings.application
            ),
        )

    def request_rollback(
        self, caller: Caller, role: Role = Role.CANARY, reason: str = ""
    ) -> DeploymentStarted:
        """``POST /rollback``'s logic, with the real adapters of this stack."""
        return services.request_rollback(self.release_ports(), caller, role, reason=reason)

    def request_deploy(
        self,
        caller: Caller,
        image: str,
        role: Role = Role.CANARY,
        *,
        reason: str = "",
        force: bool = False,
    ) -> DeploymentStarted:
        """``POST /services {"imageTag"}``'s logic, with the real adapters of this stack."""
        return services.request_deploy(
            self.release_ports(), caller, image, role, reason=reason, force=force
        )

    def published(self) -> list[tuple[str, dict[str, Any]]]:
        """The deployment events EventBridge delivered for this application, oldest first."""
        sqs = self.rig.clients["sqs"]
        received: list[tuple[str, dict[str, Any]]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = batch.get("Messages", [])
            if not messages:
                return received
            for message in messages:
                event = json.loads(message["Body"])
                assert event["source"] == self.settings.event_source
                received.append((event["detail-type"], event["detail"]))


class _EverythingInEcr:
    """The image registry of these tests: every digest they deploy was pushed."""

    def has_digest(self, digest: Digest) -> bool:
        return True

    def tag_points_at(self, tag: str) -> Digest | None:
        return None


@pytest.fixture
def stack_factory(
    shared_rig: tuple[FlowRig, Router], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """Build a ``Stack`` (extra ``BG_*`` variables allowed), torn down after the test."""
    rig, router = shared_rig
    emulators: list[ClusterEmulator] = []

    def make(clock: Clock | None = None, backend: Backend | None = None, **env: str) -> Stack:
        if backend is None:
            emulator = ClusterEmulator(seed="default", clock=clock or Clock.instant()).start()
            emulators.append(emulator)
            backend = emulator_backend(emulator)
            where = {"BG_KUBE_API_URL": emulator.url}
        else:
            monkeypatch.delenv("BG_KUBE_API_URL", raising=False)
            where = {"KUBECONFIG": backend.settings.kubeconfig, "BG_NAMESPACE": backend.namespace}
        application = f"app-{uuid.uuid4().hex[:10]}"
        variables = {
            "BG_APP_NAME": application,
            **where,
            "BG_REGISTRY": REGISTRY,
            "BG_REPOSITORY_NAME": REPOSITORY,
            "BG_EVENT_SOURCE": "eks-bluegreen.test",
            **env,
        }
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        deploy_steps_dependencies.reset()
        settings = Settings.from_env(variables)
        router.target = deploy_steps.lambda_handler
        ledger = DynamoLedger(
            settings.ledger_table, rig.clients["dynamodb"], application, repository=REPOSITORY
        )
        timeout = 90.0 if backend.real else 20.0
        return Stack(settings, backend, ledger, rig, _subscribe(rig, settings), timeout)

    yield make
    router.target = None
    deploy_steps_dependencies.reset()
    for emulator in emulators:
        emulator.stop()


def _subscribe(rig: FlowRig, settings: Settings) -> str:
    """An SQS queue receiving this application's deployment events, as a subscriber would."""
    sqs, events = rig.clients["sqs"], rig.clients["events"]
    queue_url = sqs.create_queue(QueueName=settings.application)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name=settings.application,
        EventPattern=json.dumps(
            {
                "source": [settings.event_source],
                "detail": {"application": [settings.application]},
            }
        ),
    )
    events.put_targets(Rule=settings.application, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return str(queue_url)


@pytest.fixture
def stack(stack_factory: Any) -> Stack:
    """The default application on an instant emulator."""
    return stack_factory()  # type: ignore[no-any-return]


@pytest.fixture(params=BACKENDS)
def stack_on(request: pytest.FixtureRequest, stack_factory: Any) -> Iterator[Stack]:
    """The default application on each backend: the instant emulator, the real control plane.

    On the real one the flow's waits last a fifth of what they ask, as the kubelet's
    own delays do (``KUBE_KUBELET_SPEED``), so the flow and the cluster keep pace.
    """
    if request.param == "emulator":
        yield stack_factory()
        return
    plane = request.getfixturevalue("control_plane")
    namespace = request.getfixturevalue("kube_namespace")
    with plane.admin_client() as client, shortened_waits(1 / KUBE_KUBELET_SPEED):
        yield stack_factory(backend=kube_backend(plane, namespace, client))
