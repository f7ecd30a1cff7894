"""The ``bluegreen`` command line against a fake services API."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bluegreen_cli.main import MAX_PAGE, build_parser

from local.apigw import HttpRequest, LocalCredential, verify_sigv4
from tests.cli.conftest import Run
from tests.fake_api import FakeApi, Seen

ROOT = Path(__file__).resolve().parents[2]

HEX_A = "a" * 64
HEX_B = "b" * 64
REPO = "123456789012.dkr.ecr.us-west-2.amazonaws.com/rezfusion-cloud"

STATUS = {
    "canary": "blue",
    "production": "green",
    "colours": {
        "blue": {
            "colour": "blue",
            "role": "canary",
            "image": f"{REPO}@sha256:{HEX_A}",
            "digest": f"sha256:{HEX_A}",
            "replicas": {"desired": 2, "updated": 2, "ready": 2, "available": 2},
            "rollout": "complete",
            "message": "",
        },
        "green": {
            "colour": "green",
            "role": "production",
            "image": f"{REPO}@sha256:{HEX_B}",
            "digest": f"sha256:{HEX_B}",
            "replicas": {"desired": 2, "updated": 1, "ready": 1, "available": 1},
            "rollout": "progressing",
            "message": "",
        },
    },
    "canaryEnv": {"selector": "blue", "image": f"{REPO}@sha256:{HEX_A}", "present": True},
    "services": {"canary": "blue", "production": "green"},
    "inAgreement": True,
    "disagreements": [],
}

STARTED = {
    "deploymentId": "wp-platform-deploy-abc",
    "executionArn": "arn:aws:states:us-west-2:123456789012:execution:deploy:wp-platform-deploy-abc",
    "consoleUrl": "https://console.aws.amazon.com/states/home",
    "action": "deploy",
    "service": "production",
    "digest": f"sha256:{HEX_A}",
}


def deployment(status: str, outcome: str, error: str | None = None) -> dict[str, object]:
    return {
        "id": "wp-platform-deploy-abc",
        "executionArn": STARTED["executionArn"],
        "consoleUrl": STARTED["consoleUrl"],
        "record": {
            "id": "wp-platform-deploy-abc",
            "application": "wp-platform",
            "action": "deploy",
            "service": "canary",
            "colour": "blue",
            "toDigest": f"sha256:{HEX_A}",
            "fromDigest": f"sha256:{HEX_B}",
            "trigger": "api",
            "actor": "arn:aws:iam::1:user/x",
            "startedAt": "2026-11-27T06:00:00Z",
            "outcome": outcome,
        },
        "execution": {
            "status": status,
            "error": error,
            "cause": "rollout stalled" if error else None,
        },
    }


def use_local_stack_state(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    api_url: str,
    pid: int | None = None,
    *,
    access_key: tuple[str, str] = ("AKIALOCALSTACK", "local-secret"),
) -> Path:
    """Write a local stack state file (by default naming this live process) and point at it."""
    state = tmp_path / "stack.json"
    state.write_text(
        json.dumps(
            {
                "pid": os.getpid() if pid is None else pid,
                "api_url": api_url,
                "moto_url": "http://127.0.0.1:1",
                "cluster_url": "http://127.0.0.1:2",
                "region": "us-west-2",
                "account": "123456789012",
                "repository": "rezfusion-cloud",
                "registry": "r",
                "namespace": "wp-platform",
                "access_key_id": access_key[0],
                "secret_access_key": access_key[1],
            }
        )
    )
    monkeypatch.setenv("BLUEGREEN_LOCAL_STATE", str(state))
    return state


def test_status_prints_a_table_of_both_colours(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN an API reporting blue as canary, green half rolled out
    api.routes[("GET", "/services")] = (200, STATUS)
    # WHEN status is asked for
    run = bluegreen("--endpoint", api.url, "status")
    # THEN one row per colour with role, short digest, ready/desired and rollout state
    assert run.code == 0, run.err
    rows = {
        line.split()[0]: line.split()
        for line in run.out.splitlines()
        if line[:5] in ("blue ", "green")
    }
    assert rows["blue"][:5] == ["blue", "canary", f"sha256:{HEX_A[:12]}", "2/2", "complete"]
    assert rows["green"][:5] == [
        "green",
        "production",
        f"sha256:{HEX_B[:12]}",
        "1/2",
        "progressing",
    ]
    assert "DISAGREEMENT" not in run.out


def test_status_flags_a_disagreement(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN the ConfigMap and the Services disagree
    body = {**STATUS, "inAgreement": False, "disagreements": ["canary Service selects green"]}
    api.routes[("GET", "/services")] = (200, body)
    # WHEN status is printed
    run = bluegreen("--endpoint", api.url, "status")
    # THEN the disagreement is shown
    assert "DISAGREEMENT  canary Service selects green" in run.out


@pytest.mark.parametrize("where", ["before", "after"])
def test_json_gives_the_api_answer_unchanged(
    api: FakeApi, bluegreen: Callable[..., Run], where: str
) -> None:
    # GIVEN the services answer
    api.routes[("GET", "/services")] = (200, STATUS)
    # WHEN --json is given before or after the subcommand
    args = ["--json", "status"] if where == "before" else ["status", "--json"]
    run = bluegreen("--endpoint", api.url, *args)
    # THEN stdout is exactly the API's JSON
    assert run.code == 0
    assert run.json == STATUS


def test_switch_sends_the_selector(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN an API that switches
    api.routes[("POST", "/services")] = (
        200,
        {"changed": True, "canary": "green", "production": "blue"},
    )
    # WHEN green is made the canary
    run = bluegreen("--endpoint", api.url, "switch", "green")
    # THEN the body is the original system's {"selector": ...} and the new roles are printed
    assert run.code == 0
    assert api.seen[-1].body == {"selector": "green"}
    assert "canary: green  production: blue" in run.out


def test_switch_rejects_an_unknown_colour_without_calling(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    # WHEN a colour that does not exist is given
    run = bluegreen("--endpoint", api.url, "switch", "purple")
    # THEN usage error, one line, nothing sent
    assert run.code == 2
    assert run.err.count("\n") == 1
    assert run.err.startswith("bluegreen: error: argument colour: invalid choice: 'purple'")
    assert api.seen == []


def test_deploy_posts_image_and_service(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN the API starts a flow
    api.routes[("POST", "/services")] = (202, STARTED)
    # WHEN a digest is deployed to production
    run = bluegreen("--endpoint", api.url, "deploy", HEX_A, "--service", "production")
    # THEN the request carries imageTag + service and the deployment id is printed
    assert run.code == 0
    assert api.seen[-1].body == {"imageTag": HEX_A, "service": "production"}
    assert "deploymentId  wp-platform-deploy-abc" in run.out


def test_deploy_wait_follows_to_success(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN a deployment that runs, then succeeds
    api.routes[("POST", "/services")] = (202, STARTED)
    api.routes[("GET", "/deployments/wp-platform-deploy-abc")] = [
        (200, deployment("RUNNING", "running")),
        (200, deployment("SUCCEEDED", "succeeded")),
    ]
    # WHEN deploy --wait runs
    run = bluegreen("--endpoint", api.url, "deploy", "dev", "--wait", "--interval", "0.01")
    # THEN progress lines on stderr, exit 0
    assert run.code == 0, run.err
    assert "RUNNING (running)" in run.err
    assert "SUCCEEDED (succeeded)" in run.err
    assert "outcome" in run.out


def test_deploy_wait_exits_1_when_rolled_back(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN a deployment whose execution fails after rolling back
    api.routes[("POST", "/services")] = (202, STARTED)
    api.routes[("GET", "/deployments/wp-platform-deploy-abc")] = [
        (200, deployment("RUNNING", "running")),
        (200, deployment("FAILED", "rolled_back", "RolloutFailed")),
    ]
    # WHEN deploy --wait runs
    run = bluegreen("--endpoint", api.url, "deploy", HEX_A, "--wait", "--interval", "0.01")
    # THEN exit 1 with one line saying how it ended and why
    assert run.code == 1
    last = run.err.strip().splitlines()[-1]
    assert last == (
        "bluegreen: error: deployment wp-platform-deploy-abc ended rolled_back "
        "(RolloutFailed: rollout stalled)"
    )


def test_watch_json_exit_code_follows_the_outcome(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    # GIVEN a deployment that already failed
    api.routes[("GET", "/deployments/wp-platform-deploy-abc")] = (
        200,
        deployment("FAILED", "failed", "NoHealthyDigest"),
    )
    # WHEN a script watches it with --json
    run = bluegreen("--endpoint", api.url, "--json", "watch", "wp-platform-deploy-abc")
    # THEN the final answer is on stdout and the exit code says it failed
    assert run.code == 1
    assert run.json["execution"]["error"] == "NoHealthyDigest"


def test_rollback_and_promote_post_their_bodies(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    # GIVEN the API accepts both
    api.routes[("POST", "/rollback")] = (202, {**STARTED, "action": "rollback"})
    api.routes[("POST", "/promote")] = (202, STARTED)
    # WHEN each is run
    first = bluegreen("--endpoint", api.url, "rollback", "--service", "production")
    second = bluegreen("--endpoint", api.url, "promote")
    # THEN the bodies are the API's contract
    assert (first.code, second.code) == (0, 0)
    assert [s.body for s in api.seen] == [{"service": "production"}, {}]


def test_history_pages_with_limit_and_cursor(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN one page of images with a next cursor
    page = {
        "images": [
            {
                "digest": f"sha256:{HEX_A}",
                "repository": "rezfusion-cloud",
                "tags": ["dev", "v2"],
                "pushedAt": "2026-11-27T06:00:00Z",
                "verdict": "failed",
                "verdictReason": "rollout stalled",
                "runningOn": [{"colour": "blue", "role": "canary"}],
            }
        ],
        "nextCursor": "opaque123",
    }
    api.routes[("GET", "/images")] = (200, page)
    # WHEN the history is asked with a limit and a cursor
    run = bluegreen("--endpoint", api.url, "history", "--limit", "1", "--cursor", "c0")
    # THEN both are sent, and the row and the next cursor are printed
    assert run.code == 0
    assert api.seen[-1].path == "/images?cursor=c0&limit=1"
    row = next(line for line in run.out.splitlines() if line.startswith("sha256:"))
    assert "dev,v2" in row
    assert "failed: rollout stalled" in row
    assert "blue(canary)" in row
    assert run.out.rstrip().endswith("more: --cursor opaque123")


def test_deployments_lists_rows(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN one deployment
    record = deployment("SUCCEEDED", "succeeded")["record"]
    api.routes[("GET", "/deployments")] = (200, {"deployments": [record], "nextCursor": None})
    # WHEN listed
    run = bluegreen("--endpoint", api.url, "deployments")
    # THEN one row with its outcome
    assert run.code == 0
    assert [line.split()[0] for line in run.out.splitlines()[2:]] == ["wp-platform-deploy-abc"]
    assert "succeeded" in run.out


def test_show_prints_record_and_execution(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN a failed deployment
    api.routes[("GET", "/deployments/d1")] = (
        200,
        deployment("FAILED", "rolled_back", "HookFailed"),
    )
    # WHEN shown
    run = bluegreen("--endpoint", api.url, "show", "d1")
    # THEN record fields and the execution's error are there
    assert run.code == 0
    assert "execution.error   HookFailed" in run.out
    assert f"toDigest          sha256:{HEX_A[:12]}" in run.out


@pytest.mark.parametrize(
    ("status", "code"), [(400, 2), (404, 2), (409, 2), (422, 2), (502, 3), (503, 3)]
)
def test_api_errors_are_one_line_with_their_exit_code(
    api: FakeApi, bluegreen: Callable[..., Run], status: int, code: int
) -> None:
    # GIVEN an API that refuses or fails
    api.routes[("POST", "/services")] = (
        status,
        {"error": "InvalidInput", "detail": "imageTag: bad"},
    )
    # WHEN a deploy is asked
    run = bluegreen("--endpoint", api.url, "deploy", "nope")
    # THEN the exit code scripts rely on, and the API's error in one line
    assert run.code == code
    assert run.err == f"bluegreen: error: HTTP {status}: InvalidInput: imageTag: bad\n"
    assert run.out == ""


def test_gateway_403_message_is_reported(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # WHEN a path the API does not serve answers API Gateway's own 403
    run = bluegreen("--endpoint", api.url, "show", "x")
    # THEN its message is shown
    assert run.code == 2
    assert run.err == "bluegreen: error: HTTP 403: Missing Authentication Token\n"


def test_unreachable_api_exits_3(bluegreen: Callable[..., Run]) -> None:
    # GIVEN a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # WHEN the CLI calls it
    run = bluegreen("--endpoint", f"http://127.0.0.1:{port}", "status")
    # THEN exit 3, one line, no traceback
    assert run.code == 3
    assert run.err.startswith(f"bluegreen: error: cannot reach the API at http://127.0.0.1:{port}")
    assert run.err.count("\n") == 1


def test_no_endpoint_is_a_usage_error(bluegreen: Callable[..., Run]) -> None:
    # WHEN no endpoint is known at all
    run = bluegreen("status")
    # THEN it says how to give one
    assert run.code == 2
    assert "pass --endpoint URL" in run.err
    assert "make local" in run.err


def test_endpoint_from_the_environment(
    api: FakeApi, bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN BLUEGREEN_ENDPOINT
    api.routes[("GET", "/services")] = (200, STATUS)
    monkeypatch.setenv("BLUEGREEN_ENDPOINT", api.url)
    # WHEN status runs without --endpoint
    run = bluegreen("status")
    # THEN the variable's endpoint is used
    assert run.code == 0
    assert len(api.seen) == 1


def test_endpoint_from_the_running_local_stack(
    api: FakeApi, bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a local stack state file naming a live process (this one)
    use_local_stack_state(monkeypatch, tmp_path, api.url)
    api.routes[("GET", "/services")] = (200, STATUS)
    # WHEN status runs with no endpoint given
    run = bluegreen("status")
    # THEN it talks to the stack's API
    assert run.code == 0
    assert len(api.seen) == 1


DEAD_PID = 2**22 + 12345
"""Above Linux's largest pid: never a live process."""


@pytest.mark.parametrize("endpoint_from_env", [False, True])
def test_a_killed_stack_is_said_not_running_with_how_to_start_it(
    bluegreen: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    endpoint_from_env: bool,
) -> None:
    # GIVEN the state file a killed stack left behind (and, maybe, the banner's
    # BLUEGREEN_ENDPOINT still exported)
    state = use_local_stack_state(monkeypatch, tmp_path, "http://127.0.0.1:9", pid=DEAD_PID)
    if endpoint_from_env:
        monkeypatch.setenv("BLUEGREEN_ENDPOINT", "http://127.0.0.1:9")
    # WHEN status runs
    run = bluegreen("status")
    # THEN it says the stack is not running, why it thinks so and how to start it
    assert run.code == 3
    assert run.err.startswith("bluegreen: error: the local stack is not running: ")
    assert f"{state} names pid {DEAD_PID}, which is no longer alive" in run.err
    assert "make local" in run.err
    assert "refused" not in run.err
    assert run.err.count("\n") == 1


def test_an_endpoint_of_no_stack_is_still_used(
    api: FakeApi, bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a stale state file, and an explicit endpoint that is another API
    use_local_stack_state(monkeypatch, tmp_path, "http://127.0.0.1:9", pid=DEAD_PID)
    api.routes[("GET", "/services")] = (200, STATUS)
    # WHEN status runs against that endpoint
    run = bluegreen("--endpoint", api.url, "--no-sign", "status")
    # THEN the stale file is no reason to refuse
    assert run.code == 0, run.err


def test_a_live_pid_that_serves_nothing_says_the_stack_does_not_answer(
    bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a state file naming a live process (this one) that serves nothing at its URL
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    state = use_local_stack_state(monkeypatch, tmp_path, f"http://127.0.0.1:{port}")
    # WHEN status runs
    run = bluegreen("status")
    # THEN it is unreachable (3), and the message says which stack and what to do
    assert run.code == 3
    assert f"cannot reach the API at http://127.0.0.1:{port}" in run.err
    assert f"the local stack {state} names (pid {os.getpid()}) does not answer" in run.err
    assert "make local" in run.err


def test_an_unreachable_endpoint_says_so_even_without_credentials(
    bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN no AWS credentials at all
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # WHEN an endpoint where nothing listens is asked
    run = bluegreen("--endpoint", "http://127.0.0.1:1", "--region", "us-west-2", "status")
    # THEN the answer is that it cannot be reached (3), not that credentials are missing
    assert run.code == 3
    assert run.err.startswith("bluegreen: error: cannot reach the API at http://127.0.0.1:1")
    assert "credentials" not in run.err


def test_missing_credentials_are_named_when_the_endpoint_answers(
    api: FakeApi, bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    run = bluegreen("--endpoint", api.url, "--region", "us-west-2", "status")
    assert run.code == 2
    assert "no AWS credentials" in run.err
    assert api.seen == []


@pytest.mark.parametrize(
    ("argv", "code", "error"),
    [
        (("deploy", "not-a-tag"), 2, "UnknownImage"),
        (("status",), 3, "InternalError"),
        (("history", "--limit", "500"), 2, "UsageError"),
        (("switch", "purple"), 2, "UsageError"),
    ],
)
def test_json_errors_print_a_json_object_on_stdout(
    api: FakeApi, bluegreen: Callable[..., Run], argv: tuple[str, ...], code: int, error: str
) -> None:
    # GIVEN an API that refuses the deploy and fails the status
    api.routes[("POST", "/services")] = (
        404,
        {"error": "UnknownImage", "detail": "imageTag: no image tagged 'not-a-tag'"},
    )
    api.routes[("GET", "/services")] = (500, {"error": "InternalError", "detail": "boom"})
    # WHEN a command fails with --json
    run = bluegreen("--endpoint", api.url, "--json", *argv)
    # THEN the exit code is the error's, and stdout holds one JSON object saying it
    assert run.code == code
    answer = json.loads(run.out)
    assert answer["error"] == error
    assert answer["detail"]
    assert run.err.startswith("bluegreen: error: ")


def test_json_api_errors_carry_the_apis_detail_and_status(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    api.routes[("POST", "/services")] = (
        409,
        {"error": "DigestFailed", "detail": "sha256:abc was judged failed"},
    )
    run = bluegreen("--endpoint", api.url, "--json", "deploy", HEX_A)
    assert run.code == 2
    assert json.loads(run.out) == {
        "error": "DigestFailed",
        "detail": "sha256:abc was judged failed",
        "status": 409,
    }


def test_json_unreachable_is_a_json_object_too(bluegreen: Callable[..., Run]) -> None:
    run = bluegreen("--endpoint", "http://127.0.0.1:1", "--json", "--region", "us-west-2", "status")
    assert run.code == 3
    assert json.loads(run.out)["error"] == "Unreachable"


@pytest.mark.parametrize("command", ["history", "deployments"])
@pytest.mark.parametrize("limit", ["0", "101", "200", "-1"])
def test_a_page_size_out_of_range_is_a_usage_error_naming_the_range(
    api: FakeApi, bluegreen: Callable[..., Run], command: str, limit: str
) -> None:
    run = bluegreen("--endpoint", api.url, command, "--limit", limit)
    assert run.code == 2
    assert "from 1 to 100" in run.err
    assert api.seen == [], "refused before asking the API"


@pytest.mark.parametrize("command", ["history", "deployments"])
def test_the_help_names_the_largest_page(
    command: str, bluegreen: Callable[..., Run], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        bluegreen(command, "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "--limit N how many, 1 to 100 (default 20)" in text


def test_the_clis_largest_page_is_the_apis() -> None:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    for path in ("/images", "/deployments"):
        (limit,) = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "limit"]
        assert limit["schema"]["maximum"] == MAX_PAGE


def test_requests_are_sigv4_signed_for_execute_api(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    # GIVEN credentials in the environment (tests/conftest.py: key "testing", a session token)
    api.routes[("POST", "/services")] = (202, STARTED)
    # WHEN a request is sent with a region
    run = bluegreen("--endpoint", api.url, "--region", "eu-west-1", "deploy", HEX_A)
    # THEN it carries a SigV4 Authorization for execute-api in that region, and the token
    assert run.code == 0
    headers = {k.lower(): v for k, v in api.seen[-1].headers.items()}
    authorization = headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "SignedHeaders=" in authorization
    assert "Signature=" in authorization
    assert headers["x-amz-security-token"] == "testing"
    assert len(headers["x-amz-date"]) == 16


def test_region_comes_from_an_execute_api_host() -> None:
    # GIVEN a real stage URL
    from bluegreen_cli.api import region_of_endpoint

    # THEN its region is the host's
    assert region_of_endpoint("https://a1b2c3.execute-api.ap-southeast-2.amazonaws.com/Prod") == (
        "ap-southeast-2"
    )
    assert region_of_endpoint("http://127.0.0.1:3000") is None


def test_no_sign_sends_no_authorization(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    api.routes[("GET", "/services")] = (200, STATUS)
    # WHEN --no-sign is given
    run = bluegreen("--endpoint", api.url, "--no-sign", "status")
    # THEN no Authorization header is sent
    assert run.code == 0
    assert "authorization" not in {k.lower() for k in api.seen[-1].headers}


def test_missing_credentials_for_a_remote_api_is_one_line(
    api: FakeApi, bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN no credentials anywhere
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # WHEN a signed call is needed
    run = bluegreen("--endpoint", api.url, "status")
    # THEN a one-line usage error says what to do, nothing is sent
    assert run.code == 2
    assert run.err.startswith("bluegreen: error: no AWS credentials found")
    assert api.seen == []


def test_push_needs_the_local_stack(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # WHEN push targets a remote API
    run = bluegreen("--endpoint", api.url, "push", "dev")
    # THEN it refuses: pushes are simulated only locally
    assert run.code == 2
    assert "push works only against the local stack" in run.err


def subcommands() -> dict[str, argparse.ArgumentParser]:
    """The subcommands of the parser the command line runs, by name, in its order."""
    root = build_parser()
    found = [a for a in root._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(found) == 1, found
    return dict(found[0].choices)


SUBCOMMANDS = subcommands()


def help_of(bluegreen: Callable[..., Run], capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """What ``bluegreen <argv> --help`` prints; it must exit 0 and write nothing else."""
    with pytest.raises(SystemExit) as exit_info:
        bluegreen(*argv, "--help")
    assert exit_info.value.code == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    return printed.out


def test_the_top_level_help_lists_every_subcommand_with_what_it_does(
    bluegreen: Callable[..., Run], capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN --help is asked of the command line itself
    text = help_of(bluegreen, capsys)
    # THEN the commands it lists are the parser's subcommands, in the parser's order
    listed = re.findall(r"^ {4}([a-z][a-z-]*)(?: |$)", text, re.MULTILINE)
    assert listed == list(SUBCOMMANDS)
    # AND each one comes with the sentence its own help describes it with
    flat = " ".join(text.split())
    for name, parser in SUBCOMMANDS.items():
        assert parser.description
        assert f"{name} {' '.join(parser.description.split())}" in flat, name


@pytest.mark.parametrize("command", list(SUBCOMMANDS))
def test_every_subcommand_has_help(
    command: str, bluegreen: Callable[..., Run], capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN --help is asked of a subcommand
    text = help_of(bluegreen, capsys, command)
    # THEN it prints its usage, what it does and the exit codes, and exits 0
    assert text.startswith(f"usage: bluegreen {command}")
    description = SUBCOMMANDS[command].description
    assert description
    assert " ".join(description.split()) in " ".join(text.split())
    assert "exit codes:" in text


def test_a_request_seen_by_the_fake_is_json(api: FakeApi) -> None:
    # The fake itself: an unknown route answers like API Gateway does.
    assert api.answer(Seen("GET", "/nope", {})) == (
        403,
        {"message": "Missing Authentication Token"},
    )


def test_the_local_stack_is_signed_with_the_key_it_publishes(
    api: FakeApi, bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a running local stack that publishes its key, and other AWS credentials around
    use_local_stack_state(monkeypatch, tmp_path, api.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALACCOUNT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "real-secret")
    api.routes[("POST", "/services")] = (
        200,
        {"changed": True, "canary": "green", "production": "blue"},
    )
    # WHEN the canary is switched
    run = bluegreen("switch", "green")
    assert run.code == 0, run.err
    # THEN the request is signed with the stack's key, and the local gateway accepts it
    seen = api.seen[-1]
    assert seen.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIALOCALSTACK/")
    key = LocalCredential("AKIALOCALSTACK", "local-secret", "arn:aws:iam::123456789012:user/me")
    request = HttpRequest(seen.method, seen.path, list(seen.headers.items()), seen.raw, "")
    assert verify_sigv4(request, {key.access_key_id: key}, "us-west-2", datetime.now(UTC)) == key


def test_region_is_read_from_aws_region(
    api: FakeApi, bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN only AWS_REGION names a region (as in Lambda, CloudShell and most SDKs' setups)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    api.routes[("GET", "/services")] = (200, STATUS)
    # WHEN a signed call is made to an endpoint whose host names no region
    run = bluegreen("--endpoint", api.url, "status")
    # THEN it is signed for that region
    assert run.code == 0, run.err
    headers = {k.lower(): v for k, v in api.seen[-1].headers.items()}
    assert "/ap-south-1/execute-api/aws4_request" in headers["authorization"]


def test_no_region_anywhere_is_one_line_naming_both_variables(
    api: FakeApi, bluegreen: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    run = bluegreen("--endpoint", api.url, "status")
    assert run.code == 2
    assert run.err.startswith("bluegreen: error: no AWS region")
    assert "AWS_DEFAULT_REGION" in run.err
    assert api.seen == []


@pytest.mark.parametrize(
    "argv",
    [
        ("--timeout", "-1", "status"),
        ("status", "--timeout", "0"),
        ("--timeout", "nan", "status"),
        ("--timeout", "soon", "status"),
        ("watch", "d1", "--interval", "-1"),
        ("watch", "d1", "--max-wait", "inf"),
        ("deploy", HEX_A, "--wait", "--interval", "0"),
    ],
)
def test_seconds_that_are_not_above_zero_are_usage_errors(
    api: FakeApi, bluegreen: Callable[..., Run], argv: tuple[str, ...]
) -> None:
    # WHEN a duration is negative, zero, not finite or not a number
    run = bluegreen("--endpoint", api.url, *argv)
    # THEN it is a one-line usage error (exit 2) and nothing is sent
    assert run.code == 2, run.err
    assert run.err.startswith("bluegreen: error: argument ")
    assert "seconds" in run.err
    assert "unexpected" not in run.err
    assert api.seen == []


def test_a_failure_whose_cause_names_the_error_says_it_once(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    # GIVEN a failed deployment whose cause begins with the error's name, as the flow's do
    failed = deployment("FAILED", "rolled_back", "RolloutFailed")
    failed["execution"] = {
        "status": "FAILED",
        "error": "RolloutFailed",
        "cause": "RolloutFailed: blue stalled: ImagePullBackOff",
    }
    api.routes[("GET", "/deployments/wp-platform-deploy-abc")] = (200, failed)
    # WHEN it is watched
    run = bluegreen("--endpoint", api.url, "watch", "wp-platform-deploy-abc")
    # THEN the last line names the error once
    assert run.code == 1
    assert run.err.strip().splitlines()[-1] == (
        "bluegreen: error: deployment wp-platform-deploy-abc ended rolled_back "
        "(RolloutFailed: blue stalled: ImagePullBackOff)"
    )


def _without_record(status: str) -> dict[str, object]:
    return {
        "id": "d1",
        "record": None,
        "executionArn": STARTED["executionArn"],
        "execution": {
            "status": status,
            "error": "InvalidInput" if status == "FAILED" else None,
            "cause": "image: bad" if status == "FAILED" else None,
        },
        "consoleUrl": STARTED["consoleUrl"],
    }


def test_show_of_an_execution_that_ended_without_a_record_says_it_never_will(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    # GIVEN an execution that failed before its first task wrote the record
    api.routes[("GET", "/deployments/d1")] = (200, _without_record("FAILED"))
    # WHEN shown
    run = bluegreen("--endpoint", api.url, "show", "d1")
    # THEN it says no record will come, and the error follows
    assert run.code == 0
    lines = run.out.splitlines()
    record = next(i for i, line in enumerate(lines) if line.startswith("record"))
    error = next(i for i, line in enumerate(lines) if line.startswith("execution.error"))
    assert "no record: the execution ended before the deployment was recorded" in lines[record]
    assert "(see its error below)" in lines[record]
    assert record < error
    assert "not written yet" not in run.out


def test_show_of_a_running_execution_without_a_record_says_not_yet(
    api: FakeApi, bluegreen: Callable[..., Run]
) -> None:
    api.routes[("GET", "/deployments/d1")] = (200, _without_record("RUNNING"))
    run = bluegreen("--endpoint", api.url, "show", "d1")
    assert run.code == 0
    assert "not written yet (the flow has not reached it)" in run.out


def test_reason_and_force_go_into_the_bodies(api: FakeApi, bluegreen: Callable[..., Run]) -> None:
    # GIVEN the API accepts all three
    api.routes[("POST", "/services")] = (202, STARTED)
    api.routes[("POST", "/rollback")] = (202, {**STARTED, "action": "rollback"})
    api.routes[("POST", "/promote")] = (202, STARTED)
    # WHEN each is run with a reason (and deploy with --force)
    runs = [
        bluegreen("--endpoint", api.url, "deploy", HEX_A, "--force", "--reason", "known fix"),
        bluegreen("--endpoint", api.url, "rollback", "--reason", "500s on /cart"),
        bluegreen("--endpoint", api.url, "promote", "--reason", "canary baked 1h"),
    ]
    # THEN the bodies carry them
    assert [run.code for run in runs] == [0, 0, 0]
    assert [seen.body for seen in api.seen] == [
        {"imageTag": HEX_A, "service": "canary", "force": True, "reason": "known fix"},
        {"service": "canary", "reason": "500s on /cart"},
        {"reason": "canary baked 1h"},
    ]
