"""``GET /services`` and ``POST /services`` under the alb and gateway routers.

Through the real handler, on the cluster emulator's default seed (which carries the
Ingress and the HTTPRoute both routers read).
"""

from __future__ import annotations

import json

import pytest

from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import NAMESPACE, Stack, call, event

ANNOTATION = "alb.ingress.kubernetes.io/actions.production-weights"


@pytest.mark.parametrize(
    ("router", "where"),
    [("alb", 'Ingress "web"'), ("gateway", 'HTTPRoute "web"'), ("selector", "Services")],
)
def test_get_services_shows_the_router_and_its_live_weights(
    stack: Stack, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch, router: str, where: str
) -> None:
    # GIVEN a stack with that router, on the seed (blue canary, green production)
    monkeypatch.setenv("BG_TRAFFIC_ROUTER", router)

    # WHEN the release is read
    answer = call(event("get_services"))

    # THEN the router object's weights and canary are shown, in agreement with canaryEnv
    assert answer.status == 200
    traffic = answer.body["traffic"]
    assert traffic["router"] == router
    assert where in traffic["object"]
    assert traffic["weights"] == {"blue": 0, "green": 100}
    assert traffic["canary"] == "blue"
    assert answer.body["inAgreement"] is True
    assert answer.body["services"] == {"canary": "blue", "production": "green"}


def test_a_switch_under_alb_writes_the_weights_and_get_services_shows_them(
    alb: Stack, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the alb router

    # WHEN green is made the canary, and the release read
    switched = call(event("switch_to_green"))
    after = call(event("get_services")).body

    # THEN canaryEnv carries the weights, and the Ingress holds them
    assert switched.status == 200
    assert switched.body["canary"] == "green"
    assert after["canaryEnv"]["weights"] == {"blue": 100, "green": 0}
    assert after["traffic"]["weights"] == {"blue": 100, "green": 0}
    ingress = emu.get("ingresses", NAMESPACE, "web")
    assert ingress is not None
    groups = json.loads(ingress["metadata"]["annotations"][ANNOTATION])["forwardConfig"][
        "targetGroups"
    ]
    assert {g["serviceName"]: g["weight"] for g in groups} == {
        "blue-service": 100,
        "green-service": 0,
    }
    # AND the legacy Services were not touched
    production = emu.get("services", NAMESPACE, "production-service")
    assert production is not None
    assert production["spec"]["selector"]["app"] == "green"


def test_get_services_flags_an_ingress_edited_by_hand(
    alb: Stack, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the alb router and an Ingress whose production action someone set to 50/50

    def by_hand(ingress: dict[str, object]) -> None:
        annotations = ingress["metadata"]["annotations"]  # type: ignore[index]
        action = json.loads(annotations[ANNOTATION])
        for group in action["forwardConfig"]["targetGroups"]:
            group["weight"] = 50
        annotations[ANNOTATION] = json.dumps(action)

    emu.mutate("ingresses", NAMESPACE, "web", by_hand)

    # WHEN the release is read
    answer = call(event("get_services"))

    # THEN the disagreement is flagged and named
    assert answer.status == 200
    assert answer.body["inAgreement"] is False
    assert answer.body["traffic"]["weights"] == {"blue": 50, "green": 50}
    assert any("blue 50 %, green 50 %" in d for d in answer.body["disagreements"])


def test_an_ingress_without_the_expected_rule_answers_a_named_error(
    alb: Stack, emu: ClusterEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the alb router and an Ingress whose canary rule was removed

    def drop_canary_rule(ingress: dict[str, object]) -> None:
        ingress["spec"]["rules"] = ingress["spec"]["rules"][:1]  # type: ignore[index]

    emu.mutate("ingresses", NAMESPACE, "web", drop_canary_rule)
    before = emu.get("configmaps", NAMESPACE, "canary-env")

    # WHEN the release is read, and a switch is asked for
    read = call(event("get_services"))
    switched = call(event("switch_to_green"))

    # THEN both answer 502 RouterObjectInvalid naming the missing rule, and nothing changed
    for answer in (read, switched):
        assert answer.status == 502
        assert answer.body["error"] == "RouterObjectInvalid"
        assert "has no canary rule" in answer.body["detail"]
        assert "canary-forward" in answer.body["detail"]
    assert emu.get("configmaps", NAMESPACE, "canary-env") == before


def test_an_unknown_router_name_is_refused_at_configuration_by_name(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack configured with a router that does not exist
    monkeypatch.setenv("BG_TRAFFIC_ROUTER", "nginx")

    # WHEN any request arrives
    answer = call(event("get_services"))

    # THEN it answers with the setting and the routers that exist, not a stack trace
    assert answer.body["error"] == "InvalidInput"
    assert "BG_TRAFFIC_ROUTER: 'nginx' is not a traffic router" in answer.body["detail"]
    assert "selector, alb, gateway" in answer.body["detail"]
