"""The whole local stack in-process on free ports: curl, the CLI and kubectl agree."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bluegreen_cli.main import main as bluegreen

from local.stack import (
    STATE_DIR,
    STATE_FILE,
    LocalStack,
    StackAlreadyRunning,
    StackError,
    StackOptions,
    parse_options,
    running_stack,
)
from tests.events import EVENTS, load_event
from tests.stack import signing

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
    options = StackOptions.ephemeral(
        state_dir, speed=300, secret_access_key="stack-secret", caller_name="release-engineer"
    )
    with LocalStack(options) as running:
        yield running


@pytest.fixture(autouse=True)
def _cli_finds_this_stack(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BLUEGREEN_ENDPOINT", raising=False)
    monkeypatch.setenv("BLUEGREEN_LOCAL_STATE", str(stack.options.state_dir / STATE_FILE))


def curl(stack: LocalStack, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
    """A JSON call to the stack's API, signed with the key the stack publishes."""
    return signing.call(stack, method, path, body)


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
    loaded: dict[str, Any] = json.loads(raw)
    return loaded


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
    # WHEN it is invoked in another process, started by hand (no PYTHONPATH from make)
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
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
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
    # WHEN the CLI (signing with the key the stack's state file publishes) deploys it
    code, out, err = cli("--json", "deploy", production, "--wait", "--interval", "0.2")
    # THEN the deploy succeeded and the ledger names the IAM user of the verified key
    assert code == 0, out + err
    record = json.loads(out)["record"]
    assert record["toDigest"] == production
    assert record["trigger"] == "api"
    assert record["actor"] == "arn:aws:iam::123456789012:user/release-engineer"
    assert record["sourceIp"] == "127.0.0.1"


def test_the_stack_publishes_the_key_its_api_accepts(stack: LocalStack) -> None:
    state = running_stack(stack.options.state_dir)
    assert state is not None
    assert (state.access_key_id, state.secret_access_key) == ("testing", "stack-secret")
    assert state.caller_arn == "arn:aws:iam::123456789012:user/release-engineer"
    banner = stack.banner()
    assert "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=stack-secret" in banner
    assert '--aws-sigv4 "aws:amz:us-west-2:execute-api"' in banner


def raw_call(
    stack: LocalStack, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    assert stack.state is not None
    request = urllib.request.Request(
        stack.state.api_url + path, data=body or None, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_unsigned_and_forged_calls_are_refused_and_change_nothing(stack: LocalStack) -> None:
    # GIVEN the roles and the deployments now
    _, before = curl(stack, "GET", "/services")
    _, history_before = curl(stack, "GET", "/deployments")
    target = "green" if before["canary"] == "blue" else "blue"
    body = json.dumps({"selector": target}).encode()
    assert stack.state is not None
    url = stack.state.api_url + "/services"
    # WHEN a switch arrives unsigned, signed with a wrong secret, or with an unknown key,
    # and a push event arrives unsigned
    unsigned = raw_call(stack, "POST", "/services", body, {"Content-Type": "application/json"})
    wrong = signing.signed_headers(
        "POST", url, access_key=("testing", "testing"), region="us-west-2", body=body
    )
    forged = raw_call(stack, "POST", "/services", body, wrong)
    stranger = signing.call(
        stack, "POST", "/services", {"selector": target}, access_key=("AKIASTRANGER", "x")
    )
    event = load_event("ecr_push/tagged_push.json")
    push = raw_call(stack, "POST", "/_local/events", json.dumps(event).encode(), {})
    # THEN each is API Gateway's 403
    assert unsigned == (403, {"message": "Missing Authentication Token"})
    assert forged[0] == 403
    assert forged[1]["message"].startswith("The request signature we calculated does not match")
    assert stranger == (
        403,
        {"message": "The security token included in the request is invalid."},
    )
    assert push == (403, {"message": "Missing Authentication Token"})
    # AND nothing changed
    _, after = curl(stack, "GET", "/services")
    _, history_after = curl(stack, "GET", "/deployments")
    assert after["canary"] == before["canary"]
    assert history_after == history_before


def test_curl_signs_as_the_readme_says(stack: LocalStack) -> None:
    # GIVEN the README's curl command, with the stack's published credentials
    assert stack.state is not None
    version = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=True)
    major, minor = (int(part) for part in version.stdout.split()[1].split(".")[:2])
    assert (major, minor) >= (7, 75), "curl 7.75 or later signs with --aws-sigv4"
    sigv4 = ["--aws-sigv4", f"aws:amz:{stack.state.region}:execute-api"]
    user = ["--user", f"{stack.state.access_key_id}:{stack.state.secret_access_key}"]
    # WHEN it reads the services and asks for a page of images
    done = [
        subprocess.run(
            ["curl", "-sS", *sigv4, *user, stack.state.api_url + path],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        for path in ("/services", "/images?limit=2")
    ]
    # THEN both are the API's answers, not API Gateway's 403
    services, images = (json.loads(d.stdout) for d in done)
    assert services["canary"] in ("blue", "green"), services
    assert "images" in images, images
    # AND without the signature, the same command is refused
    unsigned = subprocess.run(
        ["curl", "-sS", stack.state.api_url + "/services"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(unsigned.stdout) == {"message": "Missing Authentication Token"}


def test_help_shows_the_default_ports_and_state_folder(capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN the command line's help is asked for
    with pytest.raises(SystemExit):
        parse_options(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    # THEN it names every default a second stack would have to change
    for shown in ("(default 3000)", "(default 5000)", "(default 8001)", ".local-stack"):
        assert shown in text
    assert "--state-dir" in text


def test_state_dir_option_moves_the_state_folder(tmp_path: Path) -> None:
    # WHEN the options are parsed with and without --state-dir
    moved = parse_options(["--state-dir", str(tmp_path / "second"), "--api-port", "3100"])
    default = parse_options([])
    # THEN the state goes where asked, else to .local-stack in the project
    assert moved.state_dir == (tmp_path / "second").resolve()
    assert moved.api_port == 3100
    assert default.state_dir == STATE_DIR


def test_a_second_stack_runs_beside_the_first_without_make(
    stack: LocalStack, tmp_path: Path
) -> None:
    # GIVEN a stack running (the module's), and an environment without make's PYTHONPATH
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    state_dir = tmp_path / "second-stack"
    # WHEN a second one is started as the docs say, on free ports and its own state folder
    second = subprocess.Popen(
        [
            *(sys.executable, "-m", "local.stack", "--state-dir", str(state_dir), "--quiet"),
            *("--api-port", "0", "--moto-port", "0", "--cluster-port", "0"),
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        state = running_stack(state_dir)
        while state is None and second.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            state = running_stack(state_dir)
        # THEN it serves its own endpoints while the first keeps its own
        assert state is not None, (
            second.stderr.read() if second.stderr and second.poll() is not None else ""
        )
        assert stack.state is not None
        assert state.pid == second.pid
        assert state.api_url != stack.state.api_url
        headers = signing.signed_headers(
            "GET",
            state.api_url + "/services",
            access_key=(state.access_key_id, state.secret_access_key),
            region=state.region,
        )
        request = urllib.request.Request(state.api_url + "/services", headers=headers)
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        assert running_stack(stack.options.state_dir) == stack.state
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=30)
    # AND stopping it removes only its own state file
    assert second.returncode == 0
    assert not (state_dir / STATE_FILE).exists()
    assert running_stack(stack.options.state_dir) == stack.state


def run_module(module: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m <module> ...`` from the project folder, without make's PYTHONPATH."""
    return subprocess.run(
        [sys.executable, "-m", module, *argv],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )


def test_make_execute_starts_a_console_execution_and_reports_its_end(stack: LocalStack) -> None:
    # GIVEN a console input of the deploy flow (a digest, deployable as given)
    state_file = str(stack.options.state_dir / STATE_FILE)
    flow_input = EVENTS / "deploy_flow" / "deploy_canary_by_digest.json"
    # WHEN it is executed as the README says (make execute runs this module)
    done = run_module("local.execute", str(flow_input), "--state", state_file)
    # THEN it started an execution of the stack's state machine and waited for its end
    assert done.returncode == 0, done.stdout + done.stderr
    assert stack.state is not None
    name = done.stdout.split()[1]
    assert name.startswith("wp-platform-console-")
    executions = stack.state.state_machine_arn.replace(":stateMachine:", ":execution:")
    assert f"executionArn  {executions}:{name}" in done.stdout
    assert "status        SUCCEEDED" in done.stdout
    # AND the API knows it as a console run by that name: Step Functions does not say who
    # pressed the button, and the input may not claim it
    status, body = curl(stack, "GET", f"/deployments/{name}")
    assert status == 200, body
    assert body["record"]["trigger"] == "console"
    assert body["record"]["actor"] == "unknown"


def test_make_execute_refuses_what_is_not_a_flow_input(stack: LocalStack, tmp_path: Path) -> None:
    array = tmp_path / "array.json"
    array.write_text("[1]")
    state_file = str(stack.options.state_dir / STATE_FILE)
    done = run_module("local.execute", str(array), "--state", state_file)
    assert done.returncode == 2
    assert done.stderr == f"execute: error: {array} is not a JSON object: the flow's input is one\n"
    done = run_module(
        "local.execute",
        str(EVENTS / "deploy_flow" / "rollback_canary.json"),
        "--state",
        str(tmp_path / "nothing.json"),
    )
    assert done.returncode == 2
    assert "no local stack is running" in done.stderr
    assert "make local" in done.stderr


def test_make_invoke_of_deploy_steps_with_a_flow_input_says_to_execute_it(
    stack: LocalStack,
) -> None:
    # WHEN the flow's input is given to the deploy_steps handler, as `make invoke` would
    done = run_module(
        "local.invoke",
        "deploy_steps",
        str(EVENTS / "deploy_flow" / "deploy_canary_by_digest.json"),
        "--state",
        str(stack.options.state_dir / STATE_FILE),
    )
    # THEN one line says what it is and what to run instead; no trace
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("invoke: error: this is the deploy flow's input")
    assert "make execute INPUT=<file>" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_the_banner_exports_what_the_aws_cli_needs(stack: LocalStack) -> None:
    assert stack.state is not None
    banner = stack.banner()
    region = stack.state.region
    assert f"AWS_REGION={region} AWS_DEFAULT_REGION={region}" in banner
    assert f"AWS_ENDPOINT_URL={stack.state.moto_url}" in banner
    assert "stopping the stack forgets it" in banner
