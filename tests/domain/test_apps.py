"""The application spec: what it accepts, what it refuses (naming the field), and how the
stack's settings become the default application's spec and a spec becomes settings."""

from __future__ import annotations

import copy
from dataclasses import fields, replace
from typing import Any

import pytest

from bluegreen.config import Settings
from bluegreen.domain.apps import (
    APP_NAME_PATTERN,
    AppSpec,
    app_settings,
    check_app_name,
    default_app_spec,
)
from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.models import Colour, Hook
from bluegreen.domain.promotion import AnalysisPolicy, Strategy
from bluegreen.domain.traffic import RouterKind
from local.aws import load_template

MINIMAL = {"cluster": "shop", "namespace": "checkout", "repository": "shop/checkout"}

STACK_FIELDS = {
    "region",
    "registry",
    "ledger_table",
    "idempotency_table",
    "state_machine_arn",
    "event_bus_name",
    "event_source",
    "kube_api_url",
    "kubeconfig",
    "kube_context",
    "extra",
}
"""What stays the stack's: every other setting is the application's."""


def with_change(path: str, value: Any) -> dict[str, Any]:
    """MINIMAL with ``value`` at a dotted path (objects created on the way)."""
    spec: dict[str, Any] = copy.deepcopy(MINIMAL)
    *parents, last = path.split(".")
    where = spec
    for part in parents:
        where = where.setdefault(part, {})
    where[last] = value
    return spec


def a_stack_unlike_the_defaults() -> Settings:
    return replace(
        Settings(),
        application="checkout",
        cluster_name="shop",
        namespace="checkout",
        repository="shop/checkout",
        configmap_name="roles",
        configmap_key="state",
        container_name="app",
        deployment_name_pattern="checkout-{colour}",
        canary_service_name="checkout-canary",
        production_service_name="checkout",
        traffic_router=RouterKind.ALB,
        colour_service_pattern="checkout-{colour}",
        colour_service_port="8080",
        ingress_name="checkout",
        ingress_production_action="weights",
        ingress_canary_action="canary",
        http_route_name="checkout-route",
        http_route_production_rule="prod",
        http_route_canary_rule="pre",
        promotion_strategy=Strategy.parse_steps(
            [{"weight": 5, "pause": "manual"}, {"weight": 100}]
        ),
        promotion_pause_seconds=30,
        gate_timeout_seconds=600,
        gate_heartbeat_seconds=60,
        flip_back_window_seconds=0,
        analysis=AnalysisPolicy(
            interval_seconds=30,
            max_error_percent=0.5,
            max_p99_seconds=2.5,
            min_requests=10,
            failure_limit=1,
            inconclusive_limit=3,
        ),
        analysis_target_groups={Colour.BLUE: "targetgroup/b/1", Colour.GREEN: "targetgroup/g/2"},
        analysis_load_balancer="app/shop/3",
        auto_deploy_tags=("main", "release"),
        hooks=(Hook("migrate", ("rails", "db:migrate"), "continue", 60),),
        bake_seconds=45,
        fail_after_restarts=3,
        fail_after_seconds=90,
        unschedulable_seconds=200,
        health_url="https://checkout.example.com/healthz",
        alarm_names=("checkout-5xx", "checkout-latency"),
        lock_lease_seconds=600,
        ledger_table="fleet-ledger",
        state_machine_arn="arn:aws:states:us-west-2:123456789012:stateMachine:deploy",
    )


# --- the stack's settings and the spec ---------------------------------------------------


@pytest.mark.parametrize(
    "stack", [Settings(), a_stack_unlike_the_defaults()], ids=["seed", "other"]
)
def test_the_default_application_turns_back_into_the_stacks_own_settings(stack: Settings) -> None:
    # GIVEN the spec the stack's parameters describe
    spec = default_app_spec(stack)
    # WHEN it is turned back into settings over the same stack
    again = app_settings(stack, stack.application, spec)
    # THEN today's use cases would see exactly the settings they see now
    assert again == stack


def test_the_seed_default_application_is_the_original_system() -> None:
    spec = default_app_spec(Settings()).to_json()
    assert (spec["cluster"], spec["namespace"], spec["repository"]) == (
        "wp-platform",
        "wp-platform",
        "rezfusion-cloud",
    )
    assert spec["deploy"]["hooks"] == [
        {
            "name": "cache-flush",
            "command": ["wp", "cache", "flush", "--allow-root"],
            "onFailure": "rollback",
            "timeoutSeconds": 300,
        }
    ]
    # AND a spec that names only where the application lives has the same defaults
    assert AppSpec.parse(
        {"cluster": "wp-platform", "namespace": "wp-platform", "repository": "rezfusion-cloud"}
    ) == default_app_spec(Settings())


def test_an_applications_settings_keep_the_stacks_and_take_the_rest_from_the_spec() -> None:
    # GIVEN a stack whose own settings differ from the defaults, and another application's spec
    stack = a_stack_unlike_the_defaults()
    other = default_app_spec(Settings())
    # WHEN that application's settings are made over the stack
    made = app_settings(stack, "blog", other)
    # THEN what is the stack's stays the stack's; everything else is the application's
    for spec in fields(Settings):
        if spec.name in STACK_FIELDS:
            assert getattr(made, spec.name) == getattr(stack, spec.name), spec.name
        elif spec.name != "application":
            assert getattr(made, spec.name) == getattr(Settings(), spec.name), spec.name
    assert made.application == "blog"


def test_a_spec_reads_back_from_its_own_json() -> None:
    spec = default_app_spec(a_stack_unlike_the_defaults())
    assert AppSpec.parse(spec.to_json()) == spec


# --- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("cluster", "", "cluster"),
        ("namespace", "Checkout", "namespace"),
        ("repository", "Shop//x", "repository"),
        ("objects.deploymentPattern", "checkout", "objects.deploymentPattern"),
        ("objects.canaryService", "9lives", "objects.canaryService"),
        ("router.kind", "istio", "router.kind"),
        ("router.colourServicePort", 80, "router.colourServicePort"),
        ("router.ingress.name", "Web", "router.ingress.name"),
        ("promotion.steps", [{"weight": 50}, {"weight": 10}], "promotion.steps"),
        ("promotion.steps", [{"weight": 50, "pause": "later"}], "promotion.steps[0].pause"),
        ("promotion.gateTimeoutSeconds", 0, "promotion.gateTimeoutSeconds"),
        ("analysis.maxErrorPercent", 101, "analysis.maxErrorPercent"),
        ("analysis.targetGroups.blue", "tg-1", "analysis.targetGroups.blue"),
        ("analysis.targetGroups.red", "targetgroup/r/1", "analysis.targetGroups.red"),
        ("deploy.autoDeployTags", ["ok", "-bad"], "deploy.autoDeployTags[1]"),
        ("deploy.autoDeployTags", "dev", "deploy.autoDeployTags"),
        ("deploy.hooks", [{"name": "x", "command": []}], "deploy.hooks[0].command"),
        (
            "deploy.hooks",
            [{"name": "x", "command": ["a"], "onFailure": "ignore"}],
            "deploy.hooks[0].onFailure",
        ),
        ("deploy.hooks", [{"name": "x", "command": ["a"]}] * 2, "deploy.hooks"),
        ("deploy.bakeSeconds", "5", "deploy.bakeSeconds"),
        ("deploy.bakeSeconds", True, "deploy.bakeSeconds"),
        ("deploy.failAfterRestarts", 0, "deploy.failAfterRestarts"),
        ("deploy.healthUrl", "ftp://x", "deploy.healthUrl"),
        ("deploy.lockLeaseSeconds", 1, "deploy.lockLeaseSeconds"),
        ("deploy.lock_lease_seconds", 900, "deploy.lock_lease_seconds"),
        ("colour", "blue", "colour"),
    ],
)
def test_a_wrong_spec_is_refused_naming_the_field(path: str, value: Any, field: str) -> None:
    # WHEN a spec with one wrong value is read
    with pytest.raises(InvalidInput) as refused:
        AppSpec.parse(with_change(path, value))
    # THEN the refusal names that field
    assert refused.value.field == field


def test_a_heartbeat_must_come_within_the_gate_timeout() -> None:
    spec = with_change("promotion", {"gateTimeoutSeconds": 60, "gateHeartbeatSeconds": 60})
    with pytest.raises(InvalidInput) as refused:
        AppSpec.parse(spec)
    assert refused.value.field == "promotion"
    assert "gateHeartbeatSeconds" in refused.value.problem


def test_a_refusal_says_the_rule_not_the_pattern() -> None:
    with pytest.raises(InvalidInput) as refused:
        AppSpec.parse(with_change("namespace", "Checkout"))
    assert refused.value.problem.startswith("is not a DNS label")


@pytest.mark.parametrize("missing", ["cluster", "namespace", "repository"])
def test_where_the_application_lives_has_no_default(missing: str) -> None:
    spec = {key: value for key, value in MINIMAL.items() if key != missing}
    with pytest.raises(InvalidInput) as refused:
        AppSpec.parse(spec)
    assert refused.value.field == missing


# --- names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "checkout", "wp-platform", "a" * 40, "0x1"])
def test_application_names_that_are_dns_labels_of_40_at_most(name: str) -> None:
    assert check_app_name(name) == name


@pytest.mark.parametrize("name", ["", "-a", "a-", "Shop", "a_b", "a.b", "a" * 41, "a#b"])
def test_other_names_are_refused_on_the_app_field(name: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_app_name(name)
    assert refused.value.field == "app"


def test_the_name_rule_is_the_stacks_app_name_rule() -> None:
    parameter = load_template()["Parameters"]["AppName"]
    assert parameter["AllowedPattern"] == APP_NAME_PATTERN
