"""The whole local stack in-process on free ports: curl, the CLI and kubectl agree."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bluegreen_cli.main import main as bluegreen

from local.stack import (
    STATE_FILE,
    LocalStack,
    StackAlreadyRunning,
    StackError,
    StackOptions,
    running_stack,
)
from tests.events import EVENTS, load_event

pytestmark = [
    pytest.mark.stack,
    # The handlers publish no metric locally; Powertools warns about that on each call.
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state_dir = tmp_path_factory.mktemp("local-stack")
    # A fast clock: a broken image's 600 s progress deadline passes in about 2 s.
    with LocalStack(StackOptions.ephemeral(state_dir, speed=300)) as running:
        yield running


@pytest.fixture(autouse=True)
def _cli_finds_this_stack(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BLUEGREEN_ENDPOINT", raising=False)
    monkeypatch.setenv("BLUEGREEN_LOCAL_STATE", str(stack.options.state_dir / STATE_FILE))


def curl(stack: LocalStack, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
    assert stack.state is not None
    request = urllib.request.Request(
        stack.state.api_url + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def kubectl(stack: LocalStack, *args: str) -> str:
    assert stack.state is not None
    done = subprocess.run(
        [str(KUBECTL), f"--server={stack.state.cluster_url}", "-n", stack.state.namespace, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = bluegreen(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def canary_env(stack: LocalStack) -> dict[str, Any]:
    raw = kubectl(stack, "get", "configmap", "canary-env", "-o", "jsonpath={.data.canaryEnv}")
    return json.loads(raw)


def test_state_file_names_the_running_stack(stack: LocalStack) -> None:
    # WHEN the state folder is read as the CLI and make invoke read it
    state = running_stack(stack.options.state_dir)
    # THEN it is this process's stack with its live endpoints
    assert state is not None
    assert state.pid == os.getpid()
    assert state == stack.state
    assert state.environment["BG_KUBE_API_URL"] == state.cluster_url
    assert state.environment["AWS_ENDPOINT_URL"] == state.moto_url


def test_curl_the_cli_and_kubectl_see_the_same_roles(stack: LocalStack) -> None:
    # WHEN the roles are read three ways
    status, body = curl(stack, "GET", "/services")
    code, out, _ = cli("--json", "status")
    configmap = canary_env(stack)
    canary_selector = kubectl(
        stack, "get", "svc", "canary-service", "-o", "jsonpath={.spec.selector.app}"
    )
    # THEN they agree
    assert status == 200
    assert code == 0
    assert json.loads(out)["canary"] == body["canary"] == configmap["selector"] == canary_selector


def test_switch_through_the_cli_is_what_kubectl_and_curl_see(stack: LocalStack) -> None:
    # GIVEN the current canary
    _, before = curl(stack, "GET", "/services")
    target = "green" if before["canary"] == "blue" else "blue"
    # WHEN the CLI switches the canary
    code, out, err = cli("switch", target)
    # THEN the ConfigMap, both Services and the API all changed together
    assert code == 0, err
    assert f"canary: {target}" in out
    assert canary_env(stack)["selector"] == target
    selectors = kubectl(
        stack,
        "get",
        "svc",
        "canary-service",
        "production-service",
        "-o",
        "jsonpath={.items[*].spec.selector.app}",
    ).split()
    other = "blue" if target == "green" else "green"
    assert selectors == [target, other]
    _, after = curl(stack, "GET", "/services")
    assert (after["canary"], after["production"], after["inAgreement"]) == (target, other, True)


def test_a_good_push_deploys_to_the_canary(stack: LocalStack) -> None:
    # WHEN a good image is pushed with the auto-deployed tag and followed to its end
    code, out, err = cli("--json", "push", "dev", "--wait", "--interval", "0.2")
    final = json.loads(out)
    # THEN the deployment succeeded, kubectl shows the canary running that digest
    assert code == 0, err
    record = final["record"]
    assert record["outcome"] == "succeeded"
    assert record["trigger"] == "ecr-push"
    _, services = curl(stack, "GET", "/services")
    deployment = f"{services['canary']}-deployment"
    image = kubectl(
        stack,
        "get",
        "deployment",
        deployment,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    assert image.endswith("@" + record["toDigest"])
    # AND the ledger, through the CLI, holds the digest as healthy
    code, out, _ = cli("--json", "history")
    images = {item["digest"]: item for item in json.loads(out)["images"]}
    assert images[record["toDigest"]]["verdict"] == "healthy"


def test_a_broken_push_is_rolled_back(stack: LocalStack) -> None:
    # GIVEN the canary's image now
    _, services = curl(stack, "GET", "/services")
    canary = services["canary"]
    before = services["colours"][canary]["digest"]
    # WHEN a broken image is pushed and followed
    code, out, err = cli("--json", "push", "dev", "--broken", "--wait", "--interval", "0.2")
    final = json.loads(out)
    # THEN the CLI reports failure (exit 1) and the cluster runs the previous digest again
    assert code == 1, err
    assert final["execution"]["status"] == "FAILED"
    bad = final["record"]["toDigest"]
    image = kubectl(
        stack,
        "get",
        "deployment",
        f"{canary}-deployment",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    )
    assert image.endswith("@" + before)
    code, out, _ = cli("--json", "history")
    verdicts = {item["digest"]: item["verdict"] for item in json.loads(out)["images"]}
    assert verdicts[bad] == "failed"


def test_make_invoke_replays_an_event_file_against_the_stack(stack: LocalStack) -> None:
    # GIVEN an untagged push event from events/ (recorded, never auto-deployed)
    event = EVENTS / "ecr_push" / "untagged_push.json"
    digest = load_event("ecr_push/untagged_push.json")["detail"]["image-digest"]
    # WHEN it is invoked in another process, as `make invoke` does
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "local.invoke",
            "ecr_push",
            str(event),
            "--state",
            str(stack.options.state_dir / STATE_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'layers' / 'bluegreen'}:{ROOT}"},
    )
    # THEN it printed the handler's response and the stack's API sees the recorded digest
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["recorded"] is True
    _, page = curl(stack, "GET", "/images?limit=50")
    assert digest in {item["digest"] for item in page["images"]}


def test_events_the_rule_does_not_match_are_not_delivered(stack: LocalStack) -> None:
    # WHEN a DELETE action event is put on the local bus
    status, body = curl(stack, "POST", "/_local/events", load_event("ecr_push/delete_action.json"))
    # THEN the template's rule filters it out, as EventBridge would
    assert status == 200
    assert body["delivered"] is False


def test_undefined_routes_answer_like_api_gateway(stack: LocalStack) -> None:
    status, body = curl(stack, "GET", "/nothing-here")
    assert (status, body) == (403, {"message": "Missing Authentication Token"})


def test_bad_input_is_a_4xx_with_a_message(stack: LocalStack) -> None:
    code, _, err = cli("deploy", "not-a-known-tag")
    assert code == 2
    assert err.startswith("bluegreen: error: HTTP 404")
    assert err.count("\n") == 1


def test_a_second_start_says_one_is_running(stack: LocalStack) -> None:
    # WHEN another stack is started on the same state folder
    with pytest.raises(StackAlreadyRunning) as refused:
        LocalStack(StackOptions.ephemeral(stack.options.state_dir)).start()
    # THEN it names the running one, which keeps running
    assert stack.state is not None
    assert f"pid {os.getpid()}" in str(refused.value)
    assert stack.state.api_url in str(refused.value)
    assert running_stack(stack.options.state_dir) == stack.state


def test_a_taken_port_is_named_with_its_option(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StackError, match=f"port {port} .* --api-port"):
            LocalStack(StackOptions.ephemeral(tmp_path, api_port=port)).start()


def test_a_signed_deploy_of_a_seeded_digest_is_recorded_with_the_callers_identity(
    stack: LocalStack,
) -> None:
    # GIVEN the digest production runs since the cluster was seeded (never pushed through us)
    _, services = curl(stack, "GET", "/services")
    production = services["colours"][services["production"]]["digest"]
    # WHEN the CLI (signing with the test credentials' access key) deploys it to the canary
    code, out, err = cli("--json", "deploy", production, "--wait", "--interval", "0.2")
    # THEN the deploy succeeded and the ledger names the IAM identity API Gateway reported
    assert code == 0, err
    record = json.loads(out)["record"]
    assert record["toDigest"] == production
    assert record["trigger"] == "api"
    assert record["actor"] == "arn:aws:iam::123456789012:user/testing"
    assert record["sourceIp"] == "127.0.0.1"
