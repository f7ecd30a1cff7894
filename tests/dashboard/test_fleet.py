"""The fleet in the page, in headless chromium in front of a fake API: the registry's
applications each at a glance, one of them chosen to show and drive through its own
``/apps/{app}/...`` routes, the choice kept in the URL, a registry the caller may not list,
and what the dashboard forwards of the registry (reads only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from bluegreen_cli.dashboard.server import DashboardServer

from tests.dashboard import answers
from tests.dashboard.conftest import Tab
from tests.dashboard.test_server import request
from tests.fake_api import FakeApi, Seen
from tests.waiting import eventually

Start = Callable[[str], DashboardServer]

CHECKOUT_CANARY = "sha256:" + "c0" * 32
CHECKOUT_PRODUCTION = "sha256:" + "d1" * 32
CHECKOUT_DEPLOYMENT = "checkout-promote-c0c0"
CURSOR = "page/2+="
"""The registry's cursor to its second page, with characters a URL must escape."""
HOSTILE = (
    '<img src=x onerror="window.pwned=1">canaryEnv.selector is green & canary-service selects blue'
)
HOSTILE_NAME = "<b onmouseover=window.pwned=1>Shop</b>"
REFUSED = {
    "message": "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: "
    "execute-api:Invoke on resource: arn:aws:execute-api:us-west-2:123456789012:a1b2/v1/GET/apps"
}


def checkout_services() -> dict[str, Any]:
    """checkout: green the canary at 10 % of production, a move not confirmed yet."""
    return answers.services(
        canary="green",
        production="blue",
        colours={
            "blue": answers.colour("blue", "production", CHECKOUT_PRODUCTION),
            "green": answers.colour("green", "canary", CHECKOUT_CANARY),
        },
        canaryEnv={
            "selector": "green",
            "image": f"{answers.REGISTRY}@{CHECKOUT_CANARY}",
            "present": True,
        },
        services={"canary": "green", "production": "blue"},
        traffic=answers.traffic(
            weights={"blue": 90, "green": 10},
            canary="green",
            confirmed=False,
            heldWeights={"blue": 100, "green": 0},
        ),
    )


def search_services() -> dict[str, Any]:
    """search: a rollout running on blue, and canaryEnv disagreeing with the cluster."""
    return answers.services(
        colours={
            "blue": answers.colour("blue", "canary", answers.NEW, rollout="progressing"),
            "green": answers.colour("green", "production", answers.GREEN),
        },
        inAgreement=False,
        disagreements=[HOSTILE],
    )


def registry(seen: Seen) -> tuple[int, Any]:
    """``GET /apps`` in two pages: the second only for the first page's cursor."""
    query = parse_qs(urlsplit(seen.path).query)
    if "cursor" not in query:
        first = [answers.app(answers.DEFAULT_APP, created_by="stack parameters")]
        return 200, {"apps": [*first, answers.app("checkout")], "nextCursor": CURSOR}
    if query["cursor"] != [CURSOR]:
        return 400, {"error": "InvalidInput", "detail": f"cursor {query['cursor']!r}"}
    return 200, {"apps": [answers.app("search"), answers.app(HOSTILE_NAME)], "nextCursor": None}


def serve_fleet(api: FakeApi) -> None:
    """The default application's release, and two more applications under /apps/{app}."""
    answers.serve_release(api)
    checkout = "/v1/apps/checkout"
    promotion = answers.record(
        id=CHECKOUT_DEPLOYMENT,
        application="checkout",
        action="promote",
        colour="green",
        fromDigest=CHECKOUT_PRODUCTION,
        toDigest=CHECKOUT_CANARY,
        reason="the basket fix",
    )
    waiting = {
        **answers.promotion_progress(),
        "status": "gate",
        "canary": "green",
        "production": "blue",
        "waitingForPerson": True,
        "waitingFor": "the gate after 10 %: checkout's error rate ok",
    }
    deployment = f"{checkout}/deployments/{CHECKOUT_DEPLOYMENT}"
    api.routes.update(
        {
            ("GET", "/v1/apps"): registry,
            ("GET", f"{checkout}/services"): (200, checkout_services()),
            ("GET", f"{checkout}/images"): (200, {**answers.images(), "images": []}),
            ("GET", f"{checkout}/deployments"): (
                200,
                {"deployments": [promotion], "nextCursor": None},
            ),
            ("GET", deployment): (
                200,
                answers.deployment(id=CHECKOUT_DEPLOYMENT, record=promotion, promotion=waiting),
            ),
            ("GET", f"{deployment}/timeline"): (
                200,
                {**answers.timeline(), "id": CHECKOUT_DEPLOYMENT},
            ),
            ("POST", f"{checkout}/services"): (
                200,
                {"canary": "blue", "production": "green", "changed": True},
            ),
            ("POST", f"{checkout}/promote"): (202, {"deploymentId": CHECKOUT_DEPLOYMENT}),
            ("POST", f"{deployment}/resume"): (200, {"deploymentId": CHECKOUT_DEPLOYMENT}),
            ("GET", "/v1/apps/search/services"): (200, search_services()),
        }
    )


def open_page(tab: Tab, url: str) -> None:
    tab.page.goto(url)
    tab.page.wait_for_selector("body[data-ready]")


def gets(api: FakeApi, since: int = 0) -> list[str]:
    return [seen.path for seen in api.seen[since:] if seen.method == "GET"]


def posts(api: FakeApi) -> list[tuple[str, object]]:
    return [(seen.path, seen.body) for seen in api.seen if seen.method == "POST"]


def colours_shown(tab: Tab) -> dict[str, tuple[str | None, str]]:
    """The colour cards drawn: colour -> (role, its text)."""
    return {
        str(card.get_attribute("data-colour")): (card.get_attribute("data-role"), card.inner_text())
        for card in tab.page.locator("#colour-cards .card").all()
    }


def choose(tab: Tab, name: str) -> None:
    tab.page.locator("#fleet-rows").get_by_role("link", name=name, exact=True).click()
    tab.page.wait_for_function(
        "name => document.getElementById('app-name').textContent === name", arg=name
    )


def test_the_fleet_lists_every_application_with_its_state_at_a_glance(
    fake_api: FakeApi, dashboard_for: Start, tab: Tab
) -> None:
    # GIVEN a registry of four applications on two pages, one with a name no route takes
    serve_fleet(fake_api)
    server = dashboard_for(fake_api.url)
    # WHEN the page is opened
    open_page(tab, server.url)
    page = tab.page
    page.wait_for_selector("#fleet-rows tr[data-app=search] td[data-role=canary]")
    page.wait_for_selector("#fleet-rows tr[data-app=checkout] td[data-role=canary]")
    # THEN every application is listed by name, both pages of the registry followed
    rows = page.locator("#fleet-rows tr")
    names = [row.get_attribute("data-app") for row in rows.all()]
    assert names == [answers.DEFAULT_APP, "checkout", "search", HOSTILE_NAME]
    listed = [path for path in gets(fake_api) if path.startswith("/v1/apps?")]
    assert any(parse_qs(urlsplit(path).query).get("cursor") == [CURSOR] for path in listed)
    # AND the default application's row is marked as the one shown
    default = page.locator(f"#fleet-rows tr[data-app={answers.DEFAULT_APP}]")
    assert "default" in default.locator(".tag").inner_text()
    assert default.get_by_role("link").get_attribute("aria-current") == "page"
    assert page.locator("#fleet-rows [aria-current]").count() == 1
    # (its state is the views' own, read from the un-prefixed routes, not asked twice)
    assert answers.BLUE[:19] in default.locator("td[data-role=canary]").inner_text()
    # AND checkout at a glance: its colours with their digests, traffic split not confirmed
    # yet, a promotion holding the canary's share
    checkout = page.locator("#fleet-rows tr[data-app=checkout]")
    canary = checkout.locator("td[data-role=canary]")
    assert canary.get_attribute("data-colour") == "green"
    assert "sha256:c0c0c0c0c0c0" in canary.inner_text()
    production = checkout.locator("td[data-role=production]")
    assert production.get_attribute("data-colour") == "blue"
    assert "sha256:d1d1d1d1d1d1" in production.inner_text()
    assert checkout.locator("td[data-agree]").inner_text() == "✓ in agreement"
    traffic = checkout.locator("td[data-confirmed]")
    assert traffic.get_attribute("data-confirmed") == "false"
    assert "blue 90%, green 10%" in traffic.inner_text()
    assert "◷ not confirmed yet" in traffic.inner_text()
    assert "promotion: green takes 10% of production" in checkout.inner_text()
    # AND search: a rollout running, and its disagreement spelt out, as the text it is
    search = page.locator("#fleet-rows tr[data-app=search]")
    assert search.locator("td[data-agree]").get_attribute("data-agree") == "false"
    assert HOSTILE in search.locator("td[data-agree] li").inner_text()
    assert "blue: rollout progressing" in search.locator("td[data-moving=true]").inner_text()
    assert "no weights: the Services select" in search.inner_text()
    # AND a name no route takes is shown as text, not offered, never called
    hostile = page.locator("#fleet-rows tr").nth(3)
    assert HOSTILE_NAME in hostile.inner_text()
    assert hostile.get_by_role("link").count() == 0
    assert page.locator("#fleet img, #fleet b").count() == 0
    assert page.evaluate("window.pwned") is None
    called = {urlsplit(path).path for path in gets(fake_api)}
    assert {"/v1/apps/checkout/services", "/v1/apps/search/services"} <= called
    assert not [path for path in called if "Shop" in path or "%3C" in path]
    assert f"/v1/apps/{answers.DEFAULT_APP}/services" not in called
    # AND the views below still show the default application, from the un-prefixed routes
    assert page.locator("#app-name").inner_text() == "the stack's default application"
    assert page.locator("#fleet-showing").inner_text() == "Showing the stack's default application"
    assert colours_shown(tab)["blue"][0] == "canary"
    assert answers.BLUE[:19] in colours_shown(tab)["blue"][1]


def test_choosing_an_application_switches_every_view_and_action_to_its_routes(
    fake_api: FakeApi, dashboard_for: Start, tab: Tab
) -> None:
    # GIVEN the page on the default application
    serve_fleet(fake_api)
    server = dashboard_for(fake_api.url)
    open_page(tab, server.url)
    page = tab.page
    # WHEN checkout is chosen in the fleet
    choose(tab, "checkout")
    # THEN its colours, deployments, promotion and timeline are drawn from its own routes
    page.wait_for_selector("#colour-cards .card[data-colour=green][data-role=canary]")
    assert "sha256:c0c0c0c0c0c0" in colours_shown(tab)["green"][1]
    assert "sha256:d1d1d1d1d1d1" in colours_shown(tab)["blue"][1]
    page.wait_for_selector("#deployment .timeline .step[data-phase=lock]")
    assert "the basket fix" in page.locator("#deployments-rows").inner_text()
    assert "Promotion" in page.locator("#deployment .promotion").inner_text()
    assert "No image pushed yet" in page.locator("#images-rows").inner_text()
    checkout = "/v1/apps/checkout"
    deployment = f"{checkout}/deployments/{CHECKOUT_DEPLOYMENT}"
    eventually(
        "the views' calls under /apps/checkout",
        lambda: (
            {
                f"{checkout}/services",
                f"{checkout}/images?limit=25",
                f"{checkout}/deployments?limit=25",
                deployment,
                f"{deployment}/timeline",
            }
            <= set(gets(fake_api))
        ),
        15,
        0.05,
    )
    # AND once it is shown, no call asks for the default application any more
    since = len(fake_api.seen)
    eventually(
        "two more refreshes of checkout",
        lambda: gets(fake_api, since).count(f"{checkout}/services") >= 2,
        15,
        0.05,
    )
    release = ("/v1/services", "/v1/images", "/v1/deployments", "/v1/rollback", "/v1/promote")
    assert not [path for path in gets(fake_api, since) if path.startswith(release)]
    # AND the switch offered on its cards posts to its route, the confirmation naming it
    page.get_by_role("button", name="Make blue the canary…").click()
    dialog = page.locator("dialog#confirm")
    assert "application: checkout" in dialog.inner_text()
    dialog.get_by_role("button", name="Make blue the canary").click()
    page.wait_for_selector("#action-result .done")
    # AND so do a promotion and the resume of its promotion waiting at a gate
    page.get_by_role("button", name="Promote…").click()
    dialog.get_by_role("button", name="Promote to production").click()
    page.wait_for_selector("#action-result .done")
    assert "checkout's error rate ok" in page.locator("#deployment .gate").inner_text()
    page.get_by_role("button", name="Resume…").click()
    dialog.get_by_role("button", name="Resume the promotion").click()
    eventually("the resume", lambda: len(posts(fake_api)) == 3, 15, 0.05)
    assert posts(fake_api) == [
        (f"{checkout}/services", {"selector": "blue"}),
        (f"{checkout}/promote", {}),
        (f"{deployment}/resume", {}),
    ]


def test_the_url_keeps_the_choice_across_a_reload_history_and_a_shared_link(
    fake_api: FakeApi, dashboard_for: Start, tab: Tab, browser: Any
) -> None:
    # GIVEN the page with checkout chosen
    serve_fleet(fake_api)
    server = dashboard_for(fake_api.url)
    open_page(tab, server.url)
    page = tab.page
    page.wait_for_selector("#fleet-rows tr[data-app=checkout] a")
    choose(tab, "checkout")
    page.wait_for_selector("#colour-cards .card[data-colour=green][data-role=canary]")
    # THEN the URL names it
    assert urlsplit(page.url).query == "app=checkout"
    # WHEN the page is reloaded
    since = len(fake_api.seen)
    page.reload()
    page.wait_for_selector("body[data-ready]")
    # THEN it shows checkout at once (the server drew its first view from its routes), and
    # asks nothing of the default application
    assert page.locator("#app-name").inner_text() == "checkout"
    assert page.title() == "checkout · eks-bluegreen dashboard"
    assert colours_shown(tab)["green"][0] == "canary"
    assert "sha256:c0c0c0c0c0c0" in colours_shown(tab)["green"][1]
    assert {
        "/v1/apps/checkout/services",
        "/v1/apps/checkout/images?limit=25",
        "/v1/apps/checkout/deployments?limit=25",
    } <= set(gets(fake_api, since))
    checkout_row = page.locator("#fleet-rows tr[data-app=checkout] a")
    checkout_row.wait_for()
    assert checkout_row.get_attribute("aria-current") == "page"
    page.wait_for_selector("#deployment .timeline")
    assert "/v1/services" not in gets(fake_api, since)
    # WHEN the browser goes back
    page.go_back()
    # THEN the default application is shown again, and forward shows checkout again
    page.wait_for_function(
        "document.getElementById('app-name').textContent === \"the stack's default application\""
    )
    page.wait_for_selector("#colour-cards .card[data-colour=blue][data-role=canary]")
    assert answers.BLUE[:19] in colours_shown(tab)["blue"][1]
    page.go_forward()
    page.wait_for_function("document.getElementById('app-name').textContent === 'checkout'")
    page.wait_for_selector("#colour-cards .card[data-colour=green][data-role=canary]")
    # WHEN a link to search is opened in another tab, and a link naming no application
    shared = browser.new_context()
    try:
        other = shared.new_page()
        other.goto(server.url + "?app=search")
        other.wait_for_selector("body[data-ready]")
        # THEN it shows search
        assert other.locator("#app-name").inner_text() == "search"
        other.wait_for_selector("#disagreements:not([hidden])")
        assert HOSTILE in other.locator("#disagreements").inner_text()
        other.goto(server.url + "?app=Not_An_App")
        other.wait_for_selector("body[data-ready]")
        # AND a name no route takes says so and shows the default application
        assert "no application name" in other.locator("#fleet-showing").inner_text()
        assert other.locator("#app-name").inner_text() == "the stack's default application"
        assert answers.BLUE[:19] in other.locator("#colour-cards").inner_text()
    finally:
        shared.close()


def test_without_scripts_a_link_to_an_application_reads_as_its_text(
    fake_api: FakeApi, dashboard_for: Start, browser: Any
) -> None:
    serve_fleet(fake_api)
    server = dashboard_for(fake_api.url)
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(server.url + "?app=checkout")
        text = page.inner_text("body")
    finally:
        context.close()
    assert "application checkout" in text
    assert "canary      green" in text
    assert "the basket fix" in text


def test_a_registry_the_caller_may_not_list_leaves_the_default_application_working(
    fake_api: FakeApi, dashboard_for: Start, tab: Tab
) -> None:
    # GIVEN an identity allowed the release routes but refused the registry's listing
    serve_fleet(fake_api)
    fake_api.routes[("GET", "/v1/apps")] = (403, REFUSED)
    fake_api.routes[("POST", "/v1/services")] = (200, {"canary": "green", "production": "blue"})
    tab.expect_refusal("/api/apps", 403)
    server = dashboard_for(fake_api.url)
    # WHEN the page is opened
    open_page(tab, server.url)
    page = tab.page
    # THEN it says why the fleet is missing, in the API's words, with no list
    missing = page.locator("#fleet-error .fleet-missing")
    missing.wait_for()
    assert missing.get_attribute("data-status") == "403"
    assert "The list of applications is missing" in missing.inner_text()
    assert REFUSED["message"] in missing.inner_text()
    assert page.locator("#fleet-table").is_hidden()
    # AND the default application is drawn and driven as before
    assert colours_shown(tab)["blue"][0] == "canary"
    page.wait_for_selector("#deployment .timeline .step[data-phase=lock]")
    page.get_by_role("button", name="Make green the canary…").click()
    page.locator("dialog#confirm").get_by_role("button", name="Make green the canary").click()
    page.wait_for_selector("#action-result .done")
    assert posts(fake_api) == [("/v1/services", {"selector": "green"})]
    # AND an application the identity may drive opens by its name; a wrong name is caught
    page.fill("#app-input", "Check out")
    page.get_by_role("button", name="Open", exact=True).click()
    assert "lowercase letters" in page.locator("#app-form-error").inner_text()
    page.fill("#app-input", "checkout")
    page.get_by_role("button", name="Open", exact=True).click()
    page.wait_for_selector("#colour-cards .card[data-colour=green][data-role=canary]")
    assert urlsplit(page.url).query == "app=checkout"
    assert "/v1/apps/checkout/services" in gets(fake_api)
    assert gets(fake_api).count("/v1/apps?limit=100") == 1


@pytest.mark.parametrize(
    ("method", "target", "status", "said"),
    [
        ("PUT", "/api/apps/checkout", 405, "never changes it"),
        ("DELETE", "/api/apps/checkout", 405, "never changes it"),
        ("POST", "/api/apps", 405, "never changes it"),
        ("POST", "/api/apps/checkout/images", 405, "not a call"),
        ("GET", "/api/apps/Checkout/services", 404, "is not an application name"),
        ("GET", "/api/apps/-checkout/services", 404, "is not an application name"),
        ("GET", f"/api/apps/{'a' * 41}/services", 404, "is not an application name"),
        ("GET", "/api/apps/%2e%2e/services", 404, "is not an application name"),
        ("GET", "/api/apps/checkout%0A/services", 404, "is not an application name"),
        ("GET", "/api/apps/checkout/services/extra", 404, "not a route"),
        ("GET", "/api/apps/checkout/apps/search/services", 404, "not a route"),
        ("GET", "/api/apps/checkout/anything", 404, "not a route"),
        ("GET", "/api/apps?limit=5&owner=alice", 400, "not one the API takes"),
    ],
)
def test_the_dashboard_reads_the_registry_and_never_changes_it(
    fake_api: FakeApi, dashboard_for: Start, method: str, target: str, status: int, said: str
) -> None:
    # GIVEN a dashboard in front of the API
    server = dashboard_for(fake_api.url)
    # WHEN the page (with its token) asks to change the registry, or names no application
    answered, _, raw = request(server, method, target, token=server.token)
    # THEN it is refused with the reason, and nothing went to the API
    assert answered == status
    assert said in json.loads(raw)["detail"]
    assert fake_api.seen == []


def test_the_registry_and_each_applications_routes_are_forwarded(
    fake_api: FakeApi, dashboard_for: Start
) -> None:
    # GIVEN a dashboard in front of the API
    serve_fleet(fake_api)
    fake_api.routes[("GET", "/v1/apps/checkout")] = (200, answers.app("checkout"))
    server = dashboard_for(fake_api.url)
    # WHEN the page reads the registry's pages and an application, and acts for it
    cursor = quote(CURSOR, safe="")
    listed = request(server, "GET", f"/api/apps?limit=100&cursor={cursor}", token=server.token)
    one = request(server, "GET", "/api/apps/checkout", token=server.token)
    switched = request(
        server, "POST", "/api/apps/checkout/services", body={"selector": "blue"}, token=server.token
    )
    # THEN each reached the API at that path, the cursor as it was given
    assert [answer[0] for answer in (listed, one, switched)] == [200, 200, 200]
    assert json.loads(listed[2])["apps"][0]["name"] == "search"
    first, second, third = fake_api.seen
    assert urlsplit(first.path).path == "/v1/apps"
    assert parse_qs(urlsplit(first.path).query) == {"limit": ["100"], "cursor": [CURSOR]}
    assert (second.method, second.path) == ("GET", "/v1/apps/checkout")
    assert (third.method, third.path, third.body) == (
        "POST",
        "/v1/apps/checkout/services",
        {"selector": "blue"},
    )
