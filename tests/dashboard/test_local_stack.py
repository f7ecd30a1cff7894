"""The dashboard in headless chromium against the whole local stack, in-process: the seed
state, a switch made in the page (checked with kubectl), a push made from the CLI
appearing without a reload, and a failing deploy running live, then showing its Cause.
The README's screenshot is taken here as `make screenshot` takes it, while that deploy
runs, into the test's own folder: docs/dashboard.png is written by `make screenshot` only."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bluegreen_cli.api import ApiClient
from bluegreen_cli.dashboard.command import DEFAULT_PORT
from bluegreen_cli.dashboard.server import DashboardServer
from bluegreen_cli.main import build_parser, make_signer, resolve_endpoint

from local.stack import STATE_FILE, LocalStack
from scripts.dashboard_screenshot import (
    ROLLBACK_SHOWN,
    SCREENSHOT,
    UNPULLABLE_PUSH,
    VIEWPORT,
    bluegreen,
    photograph_rollout,
    stack_options,
)
from tests.dashboard.conftest import Tab

pytestmark = [
    pytest.mark.stack,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
]

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
SEED_BLUE = "sha256:1274e8bc4d96"
SEED_GREEN = "sha256:216c0204fa1e"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # The stack `make screenshot` photographs: a rollout that cannot pull its image runs
    # long enough to be watched.
    with LocalStack(stack_options(tmp_path_factory.mktemp("dashboard-stack"))) as running:
        yield running


@pytest.fixture(autouse=True)
def _cli_finds_this_stack(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BLUEGREEN_ENDPOINT", raising=False)
    monkeypatch.setenv("BLUEGREEN_LOCAL_STATE", str(stack.options.state_dir / STATE_FILE))


@pytest.fixture(scope="module")
def dashboard(stack: LocalStack) -> Iterator[DashboardServer]:
    """The dashboard with the endpoint and signer `bluegreen dashboard` resolves."""
    previous = os.environ.get("BLUEGREEN_LOCAL_STATE")
    os.environ["BLUEGREEN_LOCAL_STATE"] = str(stack.options.state_dir / STATE_FILE)
    try:
        args = build_parser().parse_args(["dashboard", "--port", "0"])
        endpoint, local = resolve_endpoint(args)
        assert stack.state is not None
        assert endpoint == stack.state.api_url
        client = ApiClient(endpoint, make_signer(args, endpoint, local), timeout=args.timeout)
    finally:
        if previous is None:
            os.environ.pop("BLUEGREEN_LOCAL_STATE", None)
        else:
            os.environ["BLUEGREEN_LOCAL_STATE"] = previous
    with DashboardServer(client, 0) as server:
        yield server


def kubectl(stack: LocalStack, *args: str) -> str:
    """The real kubectl, through the kubeconfig the stack wrote."""
    assert stack.state is not None
    done = subprocess.run(
        [str(KUBECTL), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "KUBECONFIG": stack.state.kubeconfig},
    )
    return done.stdout


def open_page(tab: Tab, dashboard: DashboardServer) -> Any:
    tab.page.goto(dashboard.url)
    tab.page.wait_for_selector("body[data-ready]")
    return tab.page


def card(page: Any, colour: str) -> Any:
    return page.locator(f"#colour-cards .card[data-colour={colour}]")


def test_the_page_shows_the_seed_state(dashboard: DashboardServer, tab: Tab) -> None:
    # WHEN the page is opened on a fresh local stack
    page = open_page(tab, dashboard)
    # THEN blue is the canary and green production, each running its seeded digest, rolled out
    blue, green = card(page, "blue"), card(page, "green")
    assert blue.get_attribute("data-role") == "canary"
    assert green.get_attribute("data-role") == "production"
    assert SEED_BLUE in blue.inner_text()
    assert SEED_GREEN in green.inner_text()
    for colour in (blue, green):
        assert "2/2 ready" in colour.inner_text()
        assert "complete" in colour.inner_text()
    assert f"selector blue, image {SEED_BLUE}" in page.locator("#canary-env").inner_text()
    assert page.locator("#disagreements").is_hidden()
    # AND production's traffic as the router wrote it, confirmed by the data plane
    traffic = page.locator("#weights")
    assert traffic.get_attribute("data-confirmed") == "true", traffic.inner_text()
    assert "confirmed by the data plane" in traffic.inner_text()
    assert "No deployment yet" in page.locator("#deployment").inner_text()
    assert "No image pushed yet" in page.locator("#images").inner_text()
    assert all(url.startswith(dashboard.url) for url in tab.requests), tab.requests


def test_a_switch_made_in_the_page_changes_the_cluster(
    stack: LocalStack, dashboard: DashboardServer, tab: Tab
) -> None:
    # GIVEN the page, and the canary as the cluster has it
    page = open_page(tab, dashboard)
    canary = json.loads(
        kubectl(stack, "get", "configmap", "canary-env", "-o", "jsonpath={.data.canaryEnv}")
    )["selector"]
    target = "green" if canary == "blue" else "blue"
    # WHEN a person makes the other colour the canary and confirms
    card(page, target).get_by_role("button", name=f"Make {target} the canary…").click()
    dialog = page.locator("dialog#confirm")
    assert f"production traffic moves to {canary}" in dialog.inner_text()
    dialog.get_by_role("button", name=f"Make {target} the canary").click()
    page.wait_for_selector(f"#colour-cards .card[data-colour={target}][data-role=canary]")
    # THEN kubectl sees the ConfigMap and both Services changed together
    configmap = kubectl(stack, "get", "configmap", "canary-env", "-o", "jsonpath={.data.canaryEnv}")
    assert json.loads(configmap)["selector"] == target
    selectors = kubectl(
        stack,
        "get",
        "service",
        "canary-service",
        "production-service",
        "-o",
        "jsonpath={.items[*].spec.selector.app}",
    ).split()
    assert selectors == [target, canary]
    # AND the page records it as a switch in the deployments
    page.wait_for_selector("#deployments-rows tr td:text-is('switch')")


def test_a_push_from_the_cli_appears_in_the_page_without_a_reload(
    dashboard: DashboardServer, tab: Tab
) -> None:
    # GIVEN the page, open, marked so that a reload would show
    page = open_page(tab, dashboard)
    page.evaluate("window.openedOnce = true")
    # WHEN a good image is pushed with the auto-deployed tag from the command line
    code, pushed, err = bluegreen("push", "dev")
    assert code == 0, err
    digest, deployment_id = pushed["digest"], pushed["deploymentId"]
    # THEN the page shows the new image, its deployment and its timeline to the end
    page.wait_for_selector(f"#images-rows tr[data-digest='{digest}']")
    page.wait_for_selector(f"#deployments-rows tr[data-id='{deployment_id}']")
    page.wait_for_selector("#deployment .step[data-phase=end][data-status=succeeded]")
    timeline = page.locator("#deployment .timeline").inner_text()
    for phase in ("Lock", "Apply", "Rollout", "Hooks", "Bake", "Health and analysis", "Deployed"):
        assert phase in timeline
    hook = page.locator("#deployment .hook[data-hook=cache-flush]")
    assert "succeeded" in hook.inner_text()
    assert digest[:19] in card(page, pushed_colour(page)).inner_text()
    # AND all that without a reload
    assert page.evaluate("window.openedOnce") is True


def pushed_colour(page: Any) -> str:
    """The canary colour the page shows now (pushes deploy to it)."""
    return str(page.locator("#colour-cards .card[data-role=canary]").get_attribute("data-colour"))


def test_a_failing_deploy_runs_live_then_shows_its_cause(
    dashboard: DashboardServer, tab: Tab, tmp_path: Path
) -> None:
    # GIVEN the page, open
    page = open_page(tab, dashboard)
    # WHEN an image that cannot be pulled is pushed from the command line
    code, pushed, err = bluegreen(*UNPULLABLE_PUSH)
    assert code == 0, err
    # THEN the page follows its rollout while it runs, photographed as for the README
    shot = photograph_rollout(page, tmp_path / "dashboard.png")
    assert "Running deployment" in page.locator("#deployment").inner_text()
    assert png_width(shot) == VIEWPORT["width"]
    # AND once the flow rolled it back, why it failed, with the flow's Cause
    cause = page.locator(ROLLBACK_SHOWN)
    cause.wait_for(timeout=60_000)
    text = cause.inner_text()
    assert "Why it failed: RolloutFailed" in text
    assert "rolling out rezfusion-cloud@sha256:" in text
    assert "was rolled back to" in text
    failed = page.locator("#deployment .step[data-phase=rollout][data-status=failed]")
    assert "RolloutFailed" in failed.inner_text()
    page.wait_for_selector(f"#images-rows tr[data-digest='{pushed['digest']}'] .verdict-failed")


def png_width(path: Path) -> int:
    """The width of the PNG at ``path``, from its header (IHDR); fails on any other file."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big")


def test_the_readme_shows_the_screenshot_of_the_page() -> None:
    # GIVEN / WHEN the screenshot `make screenshot` wrote, as committed
    width = png_width(SCREENSHOT)
    # THEN it is a picture of a laptop-wide page, and the README shows it
    assert width == VIEWPORT["width"]
    assert "![" in (readme := (ROOT / "README.md").read_text())
    assert "(docs/dashboard.png)" in readme


def test_the_local_stack_prints_where_the_dashboard_serves(stack: LocalStack) -> None:
    # WHEN the banner `make local` prints is read
    banner = stack.banner()
    # THEN it says how to start the dashboard for this stack, and where it will serve
    assert "bluegreen dashboard" in banner
    assert f"http://127.0.0.1:{DEFAULT_PORT}/" in banner
