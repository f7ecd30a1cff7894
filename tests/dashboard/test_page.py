"""The page in headless chromium, in front of a fake API whose answers each test sets:
what it draws, what it shows only when the API reports it, its confirmations, and the
API's errors shown as they came."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bluegreen_cli.dashboard.server import DashboardServer

from tests.dashboard import answers
from tests.dashboard.conftest import Tab
from tests.fake_api import FakeApi

if TYPE_CHECKING:
    from playwright.sync_api import Locator

Start = Callable[[str], DashboardServer]


def open_page(tab: Tab, server: DashboardServer) -> None:
    tab.page.goto(server.url)
    tab.page.wait_for_selector("body[data-ready]")


def posts(api: FakeApi) -> list[tuple[str, object]]:
    return [(seen.path, seen.body) for seen in api.seen if seen.method == "POST"]


def test_the_page_draws_the_colours_and_the_running_deployment(
    fake_api: FakeApi, dashboard_for: Start, tab: Tab
) -> None:
    # GIVEN an API with a deployment running on production
    answers.serve_release(fake_api)
    server = dashboard_for(fake_api.url)
    # WHEN the page is opened
    open_page(tab, server)
    page = tab.page
    # THEN both colours are side by side with their roles, digests and replicas
    blue, green = page.locator("#colour-cards .card").all()
    assert blue.get_attribute("data-role") == "canary"
    assert green.get_attribute("data-role") == "production"
    assert "sha256:1274e8bc4d96" in blue.inner_text()
    assert "2/2 ready" in green.inner_text()
    assert "Make green the canary" in green.inner_text()
    # AND the running deployment with its timeline and the console link
    page.wait_for_selector("#deployment .timeline .step[data-phase=lock]")
    deployment = page.locator("#deployment")
    assert "Running deployment" in deployment.inner_text()
    assert "promotion of the checkout fix" in deployment.inner_text()
    link = deployment.get_by_role("link", name="Open in the Step Functions console")
    assert link.get_attribute("href") == answers.deployment()["consoleUrl"]
    # AND the images and deployments tables, with nothing loaded from elsewhere
    assert "dev" in page.locator("#images-rows").inner_text()
    assert "arn:aws:iam::123456789012:user/alice" in page.locator("#deployments-rows").inner_text()
    assert tab.requests
    assert all(url.startswith(server.url) for url in tab.requests), tab.requests


def test_traffic_weights_show_only_once_the_api_reports_them(
    fake_api: FakeApi, dashboard_for: Start, tab: Tab
) -> None:
    # GIVEN an API without traffic
    answers.serve_release(fake_api)
    server = dashboard_for(fake_api.url)
    open_page(tab, server)
    # THEN no traffic area
    assert tab.page.locator("#weights").is_hidden()
    # WHEN the API starts reporting the router object's weights
    answers.serve_release(fake_api, traffic=answers.traffic())
    # THEN the page shows them without a reload
    tab.page.wait_for_selector("#weights:not([hidden])")
    assert "green 90%" in tab.page.locator("#weights .weight-bar").first.inner_text()
    assert "10%" in tab.page.locator(".card[data-colour=blue]").inner_text()


def test_what_the_data_plane_confirms_shows_beside_what_is_written(
    fake_api: FakeApi, dashboard_for: Start, tab: Tab
) -> None:
    # GIVEN an Ingress written at 10 % on blue while the ALB's rule still forwards none
    held = "listener rule forwards blue 0 %, green 100 % (the Ingress says blue 10 %)"
    pending = answers.traffic(
        confirmed=False, dataPlane=held, heldWeights={"blue": 0, "green": 100}
    )
    answers.serve_release(fake_api, traffic=pending)
    server = dashboard_for(fake_api.url)
    # WHEN the page is opened
    open_page(tab, server)
    box = tab.page.locator("#weights")
    # THEN it says the move is written but not confirmed, in the data plane's words, with
    # the weights the load balancer holds beside the written ones
    assert (box.get_attribute("data-router"), box.get_attribute("data-confirmed")) == (
        "alb",
        "false",
    )
    assert box.locator(".badge").inner_text() == "◷ not confirmed yet"
    assert held in box.inner_text()
    assert "Ingress production/www" in box.locator(".written").inner_text()
    written, holding = box.locator(".weight-bar").all()
    assert bar(written) == {"blue": "10", "green": "90"}
    assert bar(holding) == {"green": "100"}
    assert "not what is written" in box.locator(".held").inner_text()
    # WHEN the load balancer applies it
    answers.serve_release(fake_api, traffic=answers.traffic())
    # THEN the page shows it confirmed without a reload, the held weights the written ones
    tab.page.wait_for_selector("#weights[data-confirmed=true]")
    assert box.locator(".badge").inner_text() == "✓ confirmed by the data plane"
    held_now = box.locator(".held").inner_text()
    assert held_now == "The data plane holds the written weights: blue 10%, green 90%."
    assert box.locator(".weight-bar").count() == 1
    # WHEN the data plane cannot be read (a route whose status nobody wrote)
    unread = "the Gateway has not reported on HTTPRoute production/www yet"
    answers.serve_release(
        fake_api,
        traffic=answers.traffic(
            router="gateway", confirmed=None, dataPlane=unread, heldWeights=None
        ),
    )
    # THEN it says so, and shows no held weights it does not have
    tab.page.wait_for_selector("#weights[data-confirmed=unknown][data-router=gateway]")
    assert box.locator(".badge").inner_text() == "? the data plane could not be read"
    assert unread in box.inner_text()
    assert box.locator(".weight-bar").count() == 1


def bar(weight_bar: Locator) -> dict[str, str]:
    """The colours a weight bar draws, with their weights."""
    return {
        str(part.get_attribute("data-colour")): str(part.get_attribute("data-weight"))
        for part in weight_bar.locator(".weight").all()
    }


def test_resume_and_abort_show_only_for_a_deployment_waiting_for_a_person(
    fake_api: FakeApi, dashboard_for: Start, tab: Tab
) -> None:
    # GIVEN a running deployment that waits for nobody
    answers.serve_release(fake_api)
    path = f"/v1/deployments/{answers.DEPLOYMENT_ID}"
    fake_api.routes[("POST", f"{path}/resume")] = (202, {"deploymentId": answers.DEPLOYMENT_ID})
    server = dashboard_for(fake_api.url)
    open_page(tab, server)
    tab.page.wait_for_selector("#deployment .timeline")
    # THEN there is no gate
    assert tab.page.locator("#deployment .gate").count() == 0
    # WHEN the API reports it waiting at a manual gate
    waiting = answers.deployment(
        promotion={
            **answers.promotion_progress(),
            "status": "gate",
            "waitingForPerson": True,
            "waitingFor": "the gate after 50 %: error rate ok",
        }
    )
    fake_api.routes[("GET", path)] = (200, waiting)
    resume = tab.page.get_by_role("button", name="Resume…")
    resume.wait_for()
    assert (
        "the gate after 50 %: error rate ok" in tab.page.locator("#deployment .gate").inner_text()
    )
    assert tab.page.get_by_role("button", name="Abort…").is_visible()
    # AND a person resumes it after reading the confirmation
    resume.click()
    dialog = tab.page.locator("dialog#confirm")
    assert "The flow goes on past the gate" in dialog.inner_text()
    dialog.get_by_role("button", name="Resume the promotion").click()
    # THEN the resume was sent for that deployment
    tab.page.wait_for_selector("#action-result .done")
    assert posts(fake_api) == [(f"{path}/resume", {})]


def test_an_action_is_sent_only_after_its_confirmation_says_what_will_happen(
    fake_api: FakeApi, dashboard_for: Start, tab: Tab
) -> None:
    # GIVEN the page, and an API that refuses a digest it judged failed
    answers.serve_release(fake_api)
    refusal = {"error": "DigestFailed", "detail": f"{answers.NEW} was judged failed: HookFailed"}
    fake_api.routes[("POST", "/v1/services")] = (409, refusal)
    tab.expect_refusal("/api/services", 409)
    server = dashboard_for(fake_api.url)
    open_page(tab, server)
    page = tab.page
    # WHEN a person asks to deploy it to production, then cancels the confirmation
    page.fill("#deploy-image", answers.NEW)
    page.check("#deploy-form input[value=production]")
    page.fill("#deploy-reason", "the checkout fix")
    page.get_by_role("button", name="Deploy…").click()
    dialog = page.locator("dialog#confirm")
    text = dialog.inner_text()
    page.get_by_role("button", name="Cancel").click()
    # THEN the confirmation said what and where, and nothing was sent
    assert "Deploy to production?" in text
    assert "green's Deployment" in text
    assert "rolls green back to its last healthy digest" in text
    assert "the checkout fix" in text
    assert posts(fake_api) == []
    # WHEN it is confirmed
    page.get_by_role("button", name="Deploy…").click()
    dialog.get_by_role("button", name="Deploy to production").click()
    # THEN the request went, and the API's refusal shows as it came: status, error, detail
    error = page.locator("#action-result .error")
    error.wait_for()
    assert error.get_attribute("data-status") == "409"
    assert error.locator(".error-name").inner_text() == "DigestFailed"
    assert error.locator(".error-detail").inner_text() == refusal["detail"]
    assert '"error": "DigestFailed"' in error.locator(".raw").inner_text()
    body = {"imageTag": answers.NEW, "service": "production", "reason": "the checkout fix"}
    assert posts(fake_api) == [("/v1/services", body)]


def test_a_deploy_without_an_image_is_caught_before_any_call(
    fake_api: FakeApi, dashboard_for: Start, tab: Tab
) -> None:
    answers.serve_release(fake_api)
    server = dashboard_for(fake_api.url)
    open_page(tab, server)
    # WHEN Deploy is pressed with an empty image
    tab.page.get_by_role("button", name="Deploy…").click()
    # THEN the page says what is missing, asks for no confirmation and sends nothing
    assert "Enter a digest" in tab.page.locator("#action-result").inner_text()
    assert tab.page.locator("#deploy-image").get_attribute("aria-invalid") == "true"
    assert not tab.page.locator("dialog#confirm").is_visible()
    assert posts(fake_api) == []


def test_a_failing_api_shows_its_error_beside_what_still_answers(
    fake_api: FakeApi, dashboard_for: Start, tab: Tab
) -> None:
    # GIVEN an API whose cluster is unreachable while the ledger answers
    answers.serve_release(fake_api)
    outage = {"error": "ClusterUnavailable", "detail": "the EKS API answered 503 three times"}
    fake_api.routes[("GET", "/v1/services")] = (503, outage)
    tab.expect_refusal("/api/services", 503)
    server = dashboard_for(fake_api.url)
    # WHEN the page is opened
    open_page(tab, server)
    # THEN the colours say why they are missing, in the API's words, and the rest is drawn
    error = tab.page.locator("#colours-error .error")
    assert error.get_attribute("data-status") == "503"
    assert "ClusterUnavailable" in error.inner_text()
    assert outage["detail"] in error.inner_text()
    assert "dev" in tab.page.locator("#images-rows").inner_text()
    tab.page.wait_for_selector(".freshness.stale")
    assert "HTTP 503 ClusterUnavailable" in tab.page.locator("#freshness").inner_text()


def test_a_disagreement_of_canary_env_with_the_cluster_shows_in_red(
    fake_api: FakeApi, dashboard_for: Start, tab: Tab
) -> None:
    # GIVEN a canaryEnv that names green while the canary Service selects blue
    said = "canaryEnv.selector is green but canary-service selects blue"
    answers.serve_release(fake_api, inAgreement=False, disagreements=[said])
    server = dashboard_for(fake_api.url)
    # WHEN the page is opened
    open_page(tab, server)
    # THEN the disagreement is spelt out, as an alert, in red
    box = tab.page.locator("#disagreements")
    assert box.is_visible()
    assert box.get_attribute("role") == "alert"
    assert said in box.inner_text()
    colour = box.evaluate("node => getComputedStyle(node).color")
    assert colour == "rgb(180, 35, 24)"


def test_without_scripts_the_page_reads_as_text(
    fake_api: FakeApi, dashboard_for: Start, browser: object
) -> None:
    # GIVEN a browser with scripts off
    answers.serve_release(fake_api)
    server = dashboard_for(fake_api.url)
    context = browser.new_context(java_script_enabled=False)  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        # WHEN the page is opened
        page.goto(server.url)
        text = page.inner_text("body")
    finally:
        context.close()
    # THEN the release reads as the CLI's tables would print it
    assert "Scripts are off" in text
    assert "canary      blue" in text
    assert "production  green" in text
    assert "sha256:abababababab" in text
    assert "promotion of the checkout fix" in text
