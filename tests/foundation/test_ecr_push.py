"""The ecr_push handler end to end: sample events in, ledger and idempotency table on moto."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from bluegreen import observability
from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.adapters.registry import EcrRegistry
from bluegreen.domain.models import Digest, ImageRecord
from functions.ecr_push import app, dependencies
from local.aws import create_tables
from local.stepfunctions import render_definition
from tests.events import load_event
from tests.foundation.conftest import REGION

ROOT = Path(__file__).resolve().parents[2]
PUSHED = Digest.parse("sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd12345678")
UNTAGGED = Digest.parse("sha256:3c1f8a0b9d2e4f6071829a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f")


@pytest.fixture
def lambda_context() -> SimpleNamespace:
    return SimpleNamespace(
        function_name="ecr-push",
        memory_limit_in_mb=256,
        invoked_function_arn="arn:aws:lambda:us-west-2:123456789012:function:ecr-push",
        aws_request_id=str(uuid.uuid4()),
        get_remaining_time_in_millis=lambda: 30_000,
    )


@pytest.fixture
def stack(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[DynamoLedger, str]]:
    """Fresh tables and application for one test, in the handler's environment."""
    suffix = uuid.uuid4().hex[:8]
    names = create_tables(
        dynamodb,
        names={"LedgerTable": f"ledger-{suffix}", "IdempotencyTable": f"idem-{suffix}"},
    )
    for name, value in {
        "BG_APP_NAME": f"app-{suffix}",
        "AWS_REGION": REGION,
        "BG_LEDGER_TABLE_NAME": names["LedgerTable"],
        "BG_IDEMPOTENCY_TABLE_NAME": names["IdempotencyTable"],
    }.items():
        monkeypatch.setenv(name, value)
    dependencies.reset()
    ledger = DynamoLedger(names["LedgerTable"], dynamodb, f"app-{suffix}")
    yield ledger, names["IdempotencyTable"]
    dependencies.reset()


def invoke(name: str, context: SimpleNamespace) -> dict[str, Any]:
    result: dict[str, Any] = app.lambda_handler(load_event(f"ecr_push/{name}"), context)
    return result


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the handler's Powertools logger writes, one JSON object per line."""
    stream = io.StringIO()
    monkeypatch.setattr(observability.logger.registered_handler, "stream", stream)
    return stream


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_a_tagged_push_is_recorded(
    stack: tuple[DynamoLedger, str], lambda_context: SimpleNamespace
) -> None:
    ledger, _ = stack
    # WHEN the tagged push event arrives
    result = invoke("tagged_push.json", lambda_context)
    # THEN the digest is in the ledger with its tag, push time and event id
    assert result == {"recorded": True, "digest": str(PUSHED), "tags": ["dev"]}
    image = ledger.image(PUSHED)
    assert image is not None
    assert image.tags == frozenset({"dev"})
    assert image.repository == "rezfusion-cloud"
    assert image.event_id == "13cde686-328b-6117-af20-0e5566167482"
    assert image.pushed_at.isoformat() == "2026-11-16T01:54:34+00:00"
    assert ledger.digest_for_tag("dev") == PUSHED


def test_an_untagged_push_is_recorded(
    stack: tuple[DynamoLedger, str], lambda_context: SimpleNamespace
) -> None:
    ledger, _ = stack
    result = invoke("untagged_push.json", lambda_context)
    assert result == {"recorded": True, "digest": str(UNTAGGED), "tags": []}
    image = ledger.image(UNTAGGED)
    assert image is not None
    assert image.tags == frozenset()


def test_a_second_tag_for_the_same_digest_merges(
    stack: tuple[DynamoLedger, str], lambda_context: SimpleNamespace
) -> None:
    ledger, _ = stack
    invoke("tagged_push.json", lambda_context)
    result = invoke("second_tag_push.json", lambda_context)
    assert result["tags"] == ["dev", "release-2026.11"]
    images, _ = ledger.images()
    assert [image.digest for image in images] == [PUSHED]


def test_a_duplicate_delivery_is_one_record_and_one_seam_call(
    stack: tuple[DynamoLedger, str],
    lambda_context: SimpleNamespace,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger, idempotency_table = stack
    # GIVEN an auto-deploy seam that counts its calls
    calls: list[tuple[ImageRecord, str | None]] = []
    monkeypatch.setattr(
        dependencies, "auto_deploy", lambda: lambda record, tag: calls.append((record, tag))
    )
    # WHEN the same event is delivered twice
    first = invoke("tagged_push.json", lambda_context)
    second = invoke("tagged_push.json", lambda_context)
    # THEN the second delivery returns the stored result, records nothing new,
    # and the seam ran once with the record and its tag
    assert second == first
    assert len(ledger.images()[0]) == 1
    assert [(record.digest, tag) for record, tag in calls] == [(PUSHED, "dev")]
    idempotency_records = dynamodb.scan(TableName=idempotency_table, Select="COUNT")
    assert idempotency_records["Count"] == 1


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_failing_seam_leaves_the_push_to_be_retried(
    stack: tuple[DynamoLedger, str],
    lambda_context: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger, _ = stack
    # GIVEN an auto-deploy seam that fails once
    attempts: list[str | None] = []

    def flaky(record: ImageRecord, tag: str | None) -> None:
        attempts.append(tag)
        if len(attempts) == 1:
            raise RuntimeError("state machine throttled")

    monkeypatch.setattr(dependencies, "auto_deploy", lambda: flaky)
    # WHEN the first delivery fails in the seam and the event is redelivered
    with pytest.raises(RuntimeError):
        invoke("tagged_push.json", lambda_context)
    result = invoke("tagged_push.json", lambda_context)
    # THEN the retry ran the seam again and the ledger holds one record
    assert attempts == ["dev", "dev"]
    assert result["recorded"] is True
    assert len(ledger.images()[0]) == 1


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("failed_push.json", "push-failed"),
        ("delete_action.json", "not-a-push"),
        ("other_repository.json", "other-repository"),
        ("malformed_digest.json", "malformed-digest"),
        ("other_account.json", "other-account"),
        ("other_region.json", "other-region"),
        ("malformed_tag.json", "malformed-tag"),
        ("no_result.json", "no-result"),
    ],
)
def test_events_that_are_not_our_pushes_are_ignored_with_one_log_line(
    stack: tuple[DynamoLedger, str],
    lambda_context: SimpleNamespace,
    logs: io.StringIO,
    name: str,
    reason: str,
) -> None:
    ledger, _ = stack
    # WHEN the event arrives
    result = invoke(name, lambda_context)
    # THEN nothing is recorded, and one structured line says why
    assert result == {"recorded": False, "reason": reason}
    assert ledger.images()[0] == []
    ignored = [line for line in log_lines(logs) if line.get("reason")]
    assert len(ignored) == 1
    assert ignored[0]["message"] == "event ignored"
    assert ignored[0]["reason"] == reason
    assert ignored[0]["correlation_id"] == load_event(f"ecr_push/{name}")["id"]


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"id": "x", "detail": "not an object"},
        {"id": "x", "source": "aws.s3", "detail-type": "Object Created", "detail": {}},
        {
            "id": "x",
            "source": "aws.ecr",
            "detail-type": "ECR Image Action",
            "time": "yesterday",
            "detail": {
                "result": "SUCCESS",
                "repository-name": "rezfusion-cloud",
                "action-type": "PUSH",
                "image-digest": str(PUSHED),
            },
        },
    ],
)
def test_malformed_events_are_ignored_not_raised(
    stack: tuple[DynamoLedger, str], lambda_context: SimpleNamespace, event: dict[str, Any]
) -> None:
    ledger, _ = stack
    result = app.lambda_handler(event, lambda_context)
    assert result["recorded"] is False
    assert result["reason"] in {"malformed-event", "not-an-ecr-image-action"}
    assert ledger.images()[0] == []


def test_ecr_push_never_loads_the_kubernetes_client() -> None:
    # GIVEN a fresh interpreter WHEN it imports the handler and records a push on moto
    script = """
import sys
from moto import mock_aws
import boto3
from local.aws import create_tables
from local.stepfunctions import render_definition
with mock_aws():
    create_tables(boto3.client("dynamodb", region_name="us-west-2"))
    from functions.ecr_push import app
    from tests.events import load_event
    from types import SimpleNamespace
    context = SimpleNamespace(function_name="f", memory_limit_in_mb=128, aws_request_id="r",
        invoked_function_arn="arn:aws:lambda:us-west-2:123456789012:function:f",
        get_remaining_time_in_millis=lambda: 30000)
    result = app.lambda_handler(load_event("ecr_push/tagged_push.json"), context)
    assert result["recorded"], result
print("kubernetes" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            "PYTHONPATH": f"{ROOT / 'layers' / 'bluegreen'}:{ROOT}",
            "AWS_DEFAULT_REGION": "us-west-2",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    # THEN it worked and the Kubernetes client was never imported
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "False"


# ECR is the authority on where a tag points ------------------------------------------

SAME_SECOND = "2026-11-16T01:54:34Z"


@dataclasses.dataclass
class Repository:
    """The application's ECR repository on moto, and the events its pushes send."""

    name: str
    ecr: Any

    def push(self, tag: str) -> Digest:
        """Push a new image tagged ``tag``, as ``docker push`` would; returns its digest."""
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": 7023,
                    "digest": f"sha256:{uuid.uuid4().hex * 2}",
                },
                "layers": [],
            }
        )
        # A registry names a manifest by the sha256 of its bytes (moto needs telling).
        digest = f"sha256:{hashlib.sha256(manifest.encode()).hexdigest()}"
        self.ecr.put_image(
            repositoryName=self.name, imageManifest=manifest, imageTag=tag, imageDigest=digest
        )
        return Digest.parse(digest)

    def points_at(self, tag: str) -> Digest:
        """Where ECR says ``tag`` points."""
        found = self.ecr.describe_images(repositoryName=self.name, imageIds=[{"imageTag": tag}])
        return Digest.parse(found["imageDetails"][0]["imageDigest"])

    def event(self, digest: Digest, tag: str, time: str = SAME_SECOND) -> dict[str, Any]:
        """The ECR Image Action event of that push (EventBridge times have whole seconds)."""
        event: dict[str, Any] = load_event("ecr_push/tagged_push.json")
        event["id"] = str(uuid.uuid4())
        event["time"] = time
        event["detail"].update(
            {"repository-name": self.name, "image-digest": str(digest), "image-tag": tag}
        )
        return event


@pytest.fixture
def repository(
    stack: tuple[DynamoLedger, str], aws: None, monkeypatch: pytest.MonkeyPatch
) -> Repository:
    """A fresh ECR repository of this test's application, named in the handler's settings."""
    name = f"repo-{uuid.uuid4().hex[:8]}"
    ecr = boto3.client("ecr", region_name=REGION)
    ecr.create_repository(repositoryName=name)
    monkeypatch.setenv("BG_REPOSITORY_NAME", name)
    dependencies.reset()
    return Repository(name, ecr)


@pytest.fixture
def seam_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Digest, str | None]]:
    """The auto-deploy seam's calls, as (digest, tag)."""
    calls: list[tuple[Digest, str | None]] = []
    monkeypatch.setattr(
        dependencies, "auto_deploy", lambda: lambda record, tag: calls.append((record.digest, tag))
    )
    return calls


@pytest.mark.parametrize("arrival", ["in push order", "in reverse order"])
def test_same_second_pushes_of_a_tag_leave_the_ledger_where_ecr_is(
    stack: tuple[DynamoLedger, str],
    repository: Repository,
    seam_calls: list[tuple[Digest, str | None]],
    lambda_context: SimpleNamespace,
    arrival: str,
) -> None:
    ledger, _ = stack
    # GIVEN "dev" pushed twice within one second: ECR ends on the second image
    first, second = repository.push("dev"), repository.push("dev")
    events = [repository.event(first, "dev"), repository.event(second, "dev")]
    # WHEN both events, with the same time, arrive in either order
    for event in events if arrival == "in push order" else events[::-1]:
        app.lambda_handler(event, lambda_context)
    # THEN the ledger's tag is where ECR's is; both images are recorded, only one tagged
    assert repository.points_at("dev") == second
    assert ledger.digest_for_tag("dev") == second
    tagged = {image.digest: image.tags for image in ledger.images()[0]}
    assert tagged == {first: frozenset(), second: frozenset({"dev"})}
    # and only the image the tag points at is handed to the auto-deploy
    assert seam_calls == [(second, "dev")]


def test_a_push_whose_event_arrives_before_the_next_push_still_yields_to_it(
    stack: tuple[DynamoLedger, str],
    repository: Repository,
    seam_calls: list[tuple[Digest, str | None]],
    lambda_context: SimpleNamespace,
) -> None:
    ledger, _ = stack
    # GIVEN "dev" pushed and its event recorded...
    first = repository.push("dev")
    app.lambda_handler(repository.event(first, "dev"), lambda_context)
    # WHEN "dev" is pushed again within the same second and that event arrives
    second = repository.push("dev")
    result = app.lambda_handler(repository.event(second, "dev"), lambda_context)
    # THEN the tie of event times goes to the push ECR confirms last
    assert result == {"recorded": True, "digest": str(second), "tags": ["dev"]}
    assert ledger.digest_for_tag("dev") == repository.points_at("dev") == second
    first_image = ledger.image(first)
    assert first_image is not None
    assert first_image.tags == frozenset()
    # each push was where the tag pointed when its event arrived: each may deploy
    assert seam_calls == [(first, "dev"), (second, "dev")]


def test_a_stale_event_neither_moves_the_tag_nor_starts_a_deploy(
    stack: tuple[DynamoLedger, str],
    repository: Repository,
    seam_calls: list[tuple[Digest, str | None]],
    lambda_context: SimpleNamespace,
    logs: io.StringIO,
) -> None:
    ledger, _ = stack
    # GIVEN "dev" pushed twice; ECR says the second
    stale, current = repository.push("dev"), repository.push("dev")
    # WHEN only the first push's event has arrived, dated a second after the other's would be
    result = app.lambda_handler(
        repository.event(stale, "dev", time="2026-11-16T01:54:35Z"), lambda_context
    )
    # THEN the image is recorded without the tag, the tag is not moved, nothing deploys,
    # and the answer says why
    assert result == {
        "recorded": True,
        "digest": str(stale),
        "tags": [],
        "tagLeftOff": f"the registry points dev at {current}, pushed later: this image is "
        "recorded without the tag and not deployed (that push's own event moves the tag and "
        "deploys it)",
    }
    assert ledger.digest_for_tag("dev") is None
    assert seam_calls == []
    (line,) = [line for line in log_lines(logs) if line.get("tag_points_at")]
    assert line["tag_points_at"] == str(current)
    assert line["digest"] == str(stale)


class UnavailableEcr:
    """An ECR client whose every DescribeImages fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def describe_images(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        raise self.error


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (
            ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "DescribeImages",
            ),
            "ThrottlingException",
        ),
        (
            ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}},
                "DescribeImages",
            ),
            "AccessDeniedException",
        ),
        (
            EndpointConnectionError(endpoint_url="https://api.ecr.us-west-2.amazonaws.com/"),
            "Could not connect",
        ),
    ],
)
def test_when_ecr_cannot_answer_the_push_is_still_recorded_by_push_time(
    stack: tuple[DynamoLedger, str],
    seam_calls: list[tuple[Digest, str | None]],
    lambda_context: SimpleNamespace,
    logs: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    problem: str,
) -> None:
    ledger, _ = stack
    # GIVEN ECR failing every question
    ecr = UnavailableEcr(error)
    settings = dependencies.settings()
    over_ecr = EcrRegistry(settings.repository, ecr, settings.registry)
    monkeypatch.setattr(dependencies, "registry", lambda: over_ecr)
    # WHEN a tagged push arrives
    result = invoke("tagged_push.json", lambda_context)
    # THEN it was asked, and the push is recorded and tagged as time ordering says
    assert ecr.calls == 1
    assert result == {"recorded": True, "digest": str(PUSHED), "tags": ["dev"]}
    assert ledger.digest_for_tag("dev") == PUSHED
    assert seam_calls == [(PUSHED, "dev")]
    # and the log says why the tag was ordered by time
    (line,) = [line for line in log_lines(logs) if line.get("problem")]
    assert line["level"] == "WARNING"
    assert problem in line["problem"]


def test_a_repository_ecr_does_not_know_still_records_the_push(
    stack: tuple[DynamoLedger, str],
    seam_calls: list[tuple[Digest, str | None]],
    lambda_context: SimpleNamespace,
    logs: io.StringIO,
) -> None:
    ledger, _ = stack
    # GIVEN no such repository in ECR (moto's account has none of that name)
    # WHEN a tagged push arrives
    result = invoke("tagged_push.json", lambda_context)
    # THEN it is recorded and tagged by push time, and the log says why
    assert result == {"recorded": True, "digest": str(PUSHED), "tags": ["dev"]}
    assert ledger.digest_for_tag("dev") == PUSHED
    assert seam_calls == [(PUSHED, "dev")]
    assert any(
        line["level"] == "WARNING" and "no such tag" in line["message"] for line in log_lines(logs)
    )


def test_a_redelivery_after_the_tag_moved_on_returns_the_first_answer(
    stack: tuple[DynamoLedger, str],
    repository: Repository,
    seam_calls: list[tuple[Digest, str | None]],
    lambda_context: SimpleNamespace,
) -> None:
    ledger, _ = stack
    # GIVEN a push recorded while ECR pointed "dev" at it, then a newer push and its event
    first = repository.push("dev")
    event = repository.event(first, "dev", time="2026-11-16T01:54:30Z")
    recorded = app.lambda_handler(event, lambda_context)
    second = repository.push("dev")
    app.lambda_handler(repository.event(second, "dev"), lambda_context)
    # WHEN EventBridge delivers the first event again
    again = app.lambda_handler(event, lambda_context)
    # THEN it is the same push: the stored answer, no second seam call, the tag unmoved
    assert again == recorded
    assert seam_calls == [(first, "dev"), (second, "dev")]
    assert ledger.digest_for_tag("dev") == second


# the stack's own account and region, the API's tag grammar, a missing result -------------


@pytest.mark.parametrize(
    ("change", "reason", "problem"),
    [
        ({"account": ""}, "malformed-event", "the event has no account"),
        ({"region": None}, "malformed-event", "the event has no region"),
        ({"detail": {"image-tag": "-dev"}}, "malformed-tag", "'-dev' is not a tag"),
        ({"detail": {"image-tag": "x" * 129}}, "malformed-tag", "is not a tag"),
        ({"detail": {"result": ""}}, "no-result", "neither SUCCESS nor FAILURE"),
    ],
)
def test_events_judged_unlike_a_push_say_why_in_one_line(
    stack: tuple[DynamoLedger, str],
    lambda_context: SimpleNamespace,
    logs: io.StringIO,
    change: dict[str, Any],
    reason: str,
    problem: str,
) -> None:
    ledger, _ = stack
    # GIVEN the tagged push sample with one thing wrong
    event = load_event("ecr_push/tagged_push.json")
    for key, value in change.items():
        if key == "detail":
            event["detail"].update(value)
        else:
            event[key] = value
    # WHEN it arrives
    result = app.lambda_handler(event, lambda_context)
    # THEN it is ignored with its reason, nothing recorded, and one line says what is wrong
    assert result == {"recorded": False, "reason": reason}
    assert ledger.images()[0] == []
    (line,) = [line for line in log_lines(logs) if line.get("reason")]
    assert problem in line["problem"]


def test_a_tag_the_api_accepts_is_recorded(
    stack: tuple[DynamoLedger, str], lambda_context: SimpleNamespace
) -> None:
    ledger, _ = stack
    # GIVEN a push tagged with every character the grammar allows
    event = load_event("ecr_push/tagged_push.json")
    event["detail"]["image-tag"] = "Release_2026.11-rc1"
    # WHEN it arrives THEN it is recorded with that tag
    assert app.lambda_handler(event, lambda_context)["tags"] == ["Release_2026.11-rc1"]
    assert ledger.digest_for_tag("Release_2026.11-rc1") == PUSHED


# ten identical deliveries at once, with the auto-deploy on ------------------------------


@pytest.fixture
def wired(
    stack: tuple[DynamoLedger, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DynamoLedger, Any, str]]:
    """The handler as deployed: built from its environment, with a state machine on moto.

    The handler's factories are reset with the test's tables and application in its
    environment, so that its settings and its auto-deploy seam are the ones it builds
    itself at cold start; they are reset again afterwards.
    """
    ledger, idempotency_table = stack
    sfn = boto3.client("stepfunctions", region_name=REGION)
    # Never executed here: only what is started matters (its tasks name no function).
    definition = render_definition(
        {"DeployStepsFunctionArn": "arn:aws:lambda:us-west-2:123456789012:function:none"}
    )
    machine = sfn.create_state_machine(
        name=f"deploy-{uuid.uuid4().hex[:8]}",
        definition=definition,
        roleArn="arn:aws:iam::123456789012:role/deploy",
    )["stateMachineArn"]
    for name, value in {
        "BG_APP_NAME": ledger.application,
        "BG_LEDGER_TABLE_NAME": dependencies.settings().ledger_table,
        "BG_IDEMPOTENCY_TABLE_NAME": idempotency_table,
        "BG_STATE_MACHINE_ARN": machine,
        "BG_REGISTRY": "123456789012.dkr.ecr.us-west-2.amazonaws.com",
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    dependencies.reset()
    yield ledger, sfn, machine
    monkeypatch.undo()
    dependencies.reset()


def test_ten_identical_deliveries_at_once_are_one_push_one_deployment_and_nine_duplicates(
    wired: tuple[DynamoLedger, Any, str],
    lambda_context: SimpleNamespace,
    logs: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger, sfn, machine = wired
    # GIVEN the registry answers the first delivery only once the nine others have been
    # answered, so that all ten are inside the handler at the same time
    answered = threading.Semaphore(0)
    real = dependencies.registry()

    class SlowRegistry:
        def has_digest(self, digest: Digest) -> bool:
            return real.has_digest(digest)

        def tag_points_at(self, tag: str) -> Digest | None:
            for _ in range(9):
                answered.acquire(timeout=5)
            return real.tag_points_at(tag)

    slow = SlowRegistry()
    monkeypatch.setattr(dependencies, "registry", lambda: slow)
    event = load_event("ecr_push/tagged_push.json")

    def deliver(_: int) -> Any:
        try:
            return app.lambda_handler(json.loads(json.dumps(event)), lambda_context)
        except Exception as exc:  # what the Lambda runtime would report as a failed invocation
            return exc
        finally:
            answered.release()

    # WHEN EventBridge delivers the same push ten times at once
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(deliver, range(10)))

    # THEN one invocation recorded it and nine answered "duplicate", none with an error
    assert [r for r in results if isinstance(r, Exception)] == []
    assert [r for r in results if r.get("recorded")] == [
        {"recorded": True, "digest": str(PUSHED), "tags": ["dev"]}
    ]
    duplicates = [r for r in results if not r.get("recorded")]
    assert (
        duplicates
        == [{"recorded": False, "duplicate": True, "reason": "duplicate-in-progress"}] * 9
    )
    # AND each duplicate logged one line, without a stack trace
    lines = log_lines(logs)
    said = [line for line in lines if line["message"].startswith("duplicate delivery")]
    assert len(said) == 9
    assert not [line for line in lines if "exception" in line or line["level"] == "ERROR"]
    # AND the ledger holds one image and one deployment, recorded before its execution started,
    # as a push deploy of dev; Step Functions holds one execution
    assert [image.digest for image in ledger.images()[0]] == [PUSHED]
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert len(executions) == 1
    record = ledger.deployment(executions[0]["name"])
    assert record is not None
    assert (record.trigger, record.actor, record.tag) == ("ecr-push", "ecr-push", "dev")
    assert record.to_digest == PUSHED
    assert record.reason == "push of rezfusion-cloud:dev"
    flow_input = json.loads(
        sfn.describe_execution(executionArn=executions[0]["executionArn"])["input"]
    )
    assert not {"trigger", "actor", "sourceIp"} & set(flow_input)
