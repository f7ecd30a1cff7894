"""The ``make demo`` story against the local stack, re-checked from outside the demo.

The demo verifies each step itself; these tests run the same story
(``local.demo.run_story``) and then look again, independently of the demo's
code: through the official Kubernetes client, the ledger table in moto's
DynamoDB and the Step Functions execution.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kubernetes import client as k8s

from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.config import Settings
from bluegreen.domain.models import Digest, Outcome, Verdict
from local.demo import (
    CACHE_FLUSHED,
    DEFAULT_SPEED,
    Console,
    StepResult,
    main,
    render_timeline,
    run_story,
)
from local.stack import LocalStack, StackOptions
from tests.stack.admin import admin_client

pytestmark = [
    pytest.mark.stack,
    # The handlers publish no metric locally; Powertools warns about that on each call.
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]


@pytest.fixture(scope="module", params=["emulator", pytest.param("kube", marks=pytest.mark.kube)])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    """The story's stack on the emulator (a fast clock) and on the real control plane.

    On the real one the product is the shipped RoleBinding's group, and time is real:
    the crash loop is seen after Kubernetes' own 10 s back-off.
    """
    # The demo's own x120 on the emulator: at x300 the broken image's 600 s deadline is
    # 2 s of real time, which a loaded machine's flow can miss before its first poll.
    speed = DEFAULT_SPEED if request.param == "emulator" else 1.0
    folder = tmp_path_factory.mktemp(f"demo-stack-{request.param}")
    options = StackOptions.ephemeral(folder, speed=speed, cluster=request.param)
    with LocalStack(options) as running:
        yield running


@pytest.fixture(scope="module")
def story(stack: LocalStack) -> tuple[list[StepResult], str]:
    out = io.StringIO()
    results = run_story(stack, out)
    return results, out.getvalue()


@pytest.fixture(scope="module")
def settings(stack: LocalStack) -> Settings:
    assert stack.state is not None
    return Settings.from_env(stack.state.environment)


@pytest.fixture(scope="module")
def kube(stack: LocalStack) -> Iterator[k8s.ApiClient]:
    """An administrator's client of the story's cluster, whichever it is."""
    with admin_client(stack) as api:
        yield api


def aws(stack: LocalStack, service: str) -> Any:
    assert stack.state is not None
    return boto3.client(
        service,
        endpoint_url=stack.state.moto_url,
        region_name=stack.state.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def ledger(stack: LocalStack, settings: Settings) -> DynamoLedger:
    return DynamoLedger(settings.ledger_table, aws(stack, "dynamodb"), settings.application)


def step(results: list[StepResult], number: int) -> StepResult:
    return next(result for result in results if result.number == number)


def image_of(kube: k8s.ApiClient, settings: Settings, name: str) -> str:
    deployment = k8s.AppsV1Api(kube).read_namespaced_deployment(name, settings.namespace)
    containers = {c.name: c.image for c in deployment.spec.template.spec.containers}
    return str(containers[settings.container_name])


def test_every_step_of_the_story_is_verified(story: tuple[list[StepResult], str]) -> None:
    # WHEN the demo's story runs against a fresh local stack
    results, _ = story
    # THEN steps 2 to 8 ran in order and each one's outcome was verified
    assert [r.number for r in results] == [2, 3, 4, 5, 6, 7, 8]
    assert [r.problem for r in results] == [""] * 7
    assert all(r.verified for r in results)
    assert step(results, 5).facts["error"] == "RolloutFailed"


def test_the_cluster_ends_as_the_story_says(
    story: tuple[list[StepResult], str], kube: k8s.ApiClient, settings: Settings
) -> None:
    # GIVEN the digest the good push made healthy
    results, _ = story
    healthy = step(results, 4).facts["digest"]
    image = f"{settings.image_repository}@{healthy}"
    # WHEN the cluster is read with the official Kubernetes client
    core = k8s.CoreV1Api(kube)
    configmap = core.read_namespaced_config_map(settings.configmap_name, settings.namespace)
    canary_env = json.loads(configmap.data[settings.configmap_key])
    selectors = {
        name: core.read_namespaced_service(name, settings.namespace).spec.selector["app"]
        for name in (settings.canary_service_name, settings.production_service_name)
    }
    # THEN green is the canary, rolled back to the healthy digest, which production runs too
    assert canary_env == {"selector": "green", "image": image}
    assert selectors == {
        settings.canary_service_name: "green",
        settings.production_service_name: "blue",
    }
    assert image_of(kube, settings, "green-deployment") == image
    assert image_of(kube, settings, "blue-deployment") == image


def test_the_rollback_flushed_the_cache_on_the_healthy_image(
    story: tuple[list[StepResult], str], kube: k8s.ApiClient, settings: Settings
) -> None:
    # GIVEN the hook Job the broken push's rollback ran
    results, _ = story
    broken = step(results, 5)
    job_name = broken.facts["hookJob"]
    # WHEN the Job and its pod are read with the official Kubernetes client
    job = k8s.BatchV1Api(kube).read_namespaced_job(job_name, settings.namespace)
    pods = k8s.CoreV1Api(kube).list_namespaced_pod(
        settings.namespace, label_selector=f"job-name={job_name}"
    )
    log = k8s.CoreV1Api(kube).read_namespaced_pod_log(
        pods.items[0].metadata.name, settings.namespace
    )
    # THEN it completed on the digest rolled back to, and flushed the cache
    conditions = {c.type for c in job.status.conditions if c.status == "True"}
    assert "Complete" in conditions
    rolled_back_to = broken.facts["rolledBackTo"]
    assert job.spec.template.spec.containers[0].image.endswith("@" + rolled_back_to)
    assert job.spec.template.spec.containers[0].command == ["wp", "cache", "flush", "--allow-root"]
    assert CACHE_FLUSHED in log


def test_the_ledger_holds_the_verdicts_and_the_rollback(
    story: tuple[list[StepResult], str], stack: LocalStack, settings: Settings
) -> None:
    # GIVEN the digests of the good and the broken push
    results, _ = story
    good, broken = step(results, 4), step(results, 5)
    records = ledger(stack, settings)
    # WHEN the ledger table is read directly
    rollback = records.deployment(broken.facts["deploymentId"])
    # THEN the good digest is healthy, the broken one failed and rolled back from
    assert records.verdict(Digest.parse(good.facts["digest"])) is Verdict.HEALTHY
    assert records.verdict(Digest.parse(broken.facts["digest"])) is Verdict.FAILED
    assert rollback is not None
    assert rollback.outcome is Outcome.ROLLED_BACK
    assert rollback.rolled_back_to == Digest.parse(good.facts["digest"])
    assert any(CACHE_FLUSHED in log for log in rollback.hook_logs.values())
    # AND no deployment still holds the application's lock
    assert records.lock_holder() is None


def test_the_broken_push_execution_failed_with_a_readable_cause(
    story: tuple[list[StepResult], str], stack: LocalStack
) -> None:
    # GIVEN the broken push's deployment
    results, _ = story
    broken = step(results, 5)
    assert stack.state is not None
    arn = (
        f"{stack.state.state_machine_arn.replace(':stateMachine:', ':execution:')}:"
        + (broken.facts["deploymentId"])
    )
    # WHEN its execution is described by Step Functions
    execution = aws(stack, "stepfunctions").describe_execution(executionArn=arn)
    # THEN it failed with the rollout's error, seen from the crashing pods long before the
    # progress deadline, and a cause naming the pod's crash loop, its log and the rollback
    assert execution["status"] == "FAILED"
    assert execution["error"] == "RolloutFailed"
    assert "container web: CrashLoopBackOff after 2 restarts" in execution["cause"]
    assert "previous log: Error: the application exited with status 1" in execution["cause"]
    assert int(broken.facts["detectedAfterSeconds"]) < 60
    assert broken.facts["rolledBackTo"][7:19] in execution["cause"]


def test_the_fleets_second_application_was_deployed_alone_in_its_own_namespace(
    story: tuple[list[StepResult], str], stack: LocalStack, settings: Settings, kube: k8s.ApiClient
) -> None:
    # GIVEN the fleet step's push to the second application's repository
    assert stack.state is not None
    app = stack.state.fleet_app
    fleet = step(story[0], 8)
    digest = Digest.parse(fleet.facts["digest"])
    # WHEN each application's ledger is read
    theirs = DynamoLedger(settings.ledger_table, aws(stack, "dynamodb"), app)
    ours = ledger(stack, settings)
    # THEN only the second application recorded the image, and judged it healthy
    assert theirs.verdict(digest) is Verdict.HEALTHY
    assert ours.image(digest) is None
    # AND its namespace runs it, from its own repository
    deployments = k8s.AppsV1Api(kube).list_namespaced_deployment(app).items
    images = {c.image for d in deployments for c in d.spec.template.spec.containers}
    assert f"{stack.state.registry}/{app}@{digest}" in images
    # AND the seed's namespace runs no image of it
    ours_images = {
        c.image
        for d in k8s.AppsV1Api(kube).list_namespaced_deployment(settings.namespace).items
        for c in d.spec.template.spec.containers
    }
    assert not any(str(digest) in image for image in ours_images)


def test_the_output_is_plain_text_off_a_terminal(story: tuple[list[StepResult], str]) -> None:
    # WHEN the story printed into something that is not a terminal
    results, out = story
    # THEN there is no colour and no carriage return, and every step's heading is there
    assert "\x1b[" not in out
    assert "\r" not in out
    for result in results:
        assert f"[{result.number}/8] {result.title}" in out
    assert "Success: The cache was flushed." in out
    # AND the timeline lists each step with its digest, duration and outcome
    timeline = render_timeline(results)
    assert timeline.splitlines()[0].split() == [
        "STEP",
        "WHAT",
        "DIGEST",
        "WHERE",
        "DURATION",
        "OUTCOME",
    ]
    assert step(results, 5).digest in timeline
    assert timeline.count("ok: ") == 7


def test_a_cluster_not_as_the_story_expects_stops_at_that_step(
    story: tuple[list[StepResult], str], stack: LocalStack
) -> None:
    # GIVEN the stack after the story: green is the canary now, not blue
    assert all(result.verified for result in story[0])
    # WHEN the story is replayed against it
    out = io.StringIO()
    results = run_story(stack, out)
    # THEN it stops at the state before, saying what it saw instead
    assert len(results) == 1
    first = results[0]
    assert (first.number, first.verified) == (2, False)
    assert "canary=green production=blue, expected blue / green" in first.problem
    assert "FAILED" in out.getvalue()
    assert "FAILED: " in render_timeline(results)


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    # GIVEN a console on a terminal
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    console = Console(out)
    # WHEN progress is shown three times
    with console.progress("deploying") as show:
        show("a")
        show("b")
        show("b")
    # THEN each update rewrites the line in place and the line is cleared at the end
    text = out.getvalue()
    assert text.count("\r\x1b[K") == 4
    assert "\n" not in text


def test_a_speed_that_is_not_positive_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["--speed", "0"])
    assert refused.value.code == 2
    assert "--speed must be positive" in capsys.readouterr().err
