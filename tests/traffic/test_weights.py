"""Weights, router names and canaryEnv's weights: bad values are named errors that say why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bluegreen.adapters.kube.client import api_client_for
from bluegreen.adapters.kube.cluster import KubernetesCluster
from bluegreen.config import Settings
from bluegreen.domain.canary_env import CanaryEnvMalformed
from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.models import Colour
from bluegreen.domain.traffic import RouterKind, Weights
from local.cluster import ClusterEmulator
from tests.backends import emulator_backend
from tests.traffic.conftest import routed


@pytest.mark.parametrize(
    ("value", "field", "problem"),
    [
        ({"blue": 90, "green": 20}, "weights", "must add up to 100, got 90 + 20"),
        ({"blue": 101, "green": -1}, "weights.blue", "must be from 0 to 100, got 101"),
        ({"blue": 50.5, "green": 49.5}, "weights.blue", "must be a whole number"),
        ({"blue": True, "green": 0}, "weights.blue", "must be a whole number"),
        ({"blue": 100}, "weights.green", "is required"),
        ({"blue": 50, "green": 40, "red": 10}, "weights.red", "is not a colour"),
        ([90, 10], "weights", "must be an object"),
    ],
)
def test_weights_of_the_wrong_shape_are_refused_naming_the_field(
    value: object, field: str, problem: str
) -> None:
    # WHEN such weights are parsed
    with pytest.raises(InvalidInput) as refused:
        Weights.parse(value)

    # THEN the error names the field and what is wrong with it
    assert refused.value.field == field
    assert problem in refused.value.problem


def test_weights_that_add_up_are_read_as_given() -> None:
    weights = Weights.parse({"blue": 90, "green": 10})
    assert (weights.of(Colour.BLUE), weights.of(Colour.GREEN)) == (90, 10)
    assert weights.serving == {Colour.BLUE, Colour.GREEN}
    assert Weights.all_on(Colour.GREEN).sole is Colour.GREEN


@pytest.mark.parametrize("name", ["ALB", " gateway ", "selector"])
def test_router_names_are_read_whatever_their_case(name: str) -> None:
    assert RouterKind.parse(name).value == name.strip().lower()


def test_an_unknown_router_name_in_the_settings_is_refused_naming_the_routers() -> None:
    # WHEN the stack's settings name a router that does not exist
    with pytest.raises(InvalidInput) as refused:
        Settings.from_env({"BG_TRAFFIC_ROUTER": "istio"})

    # THEN the error names the variable and the three routers
    assert refused.value.field == "BG_TRAFFIC_ROUTER"
    assert "'istio' is not a traffic router: expected one of selector, alb, gateway" in str(
        refused.value
    )


def test_the_default_router_is_the_selector() -> None:
    assert Settings.from_env({}).traffic_router is RouterKind.SELECTOR


@pytest.mark.parametrize(
    "weights", [{"blue": 70, "green": 70}, {"blue": "all"}, "90/10"], ids=["sum", "type", "shape"]
)
def test_canary_env_with_weights_of_the_wrong_shape_is_malformed_and_says_how_to_repair(
    cluster_emulator: ClusterEmulator, weights: Any
) -> None:
    # GIVEN canaryEnv whose weights someone wrote by hand, wrongly
    def edit(configmap: dict[str, Any]) -> None:
        value = json.loads(configmap["data"]["canaryEnv"])
        value["weights"] = weights
        configmap["data"]["canaryEnv"] = json.dumps(value)

    cluster_emulator.mutate("configmaps", "wp-platform", "canary-env", edit)
    settings = Settings(kube_api_url=cluster_emulator.url, traffic_router=RouterKind.ALB)
    cluster = KubernetesCluster(settings, api_client_for(settings))

    # WHEN it is read
    with pytest.raises(CanaryEnvMalformed) as malformed:
        cluster.canary_env()

    # THEN the error says what is wrong and how to repair it
    assert "has weights" in str(malformed.value)
    assert "adding up to 100" in str(malformed.value)
    assert "bluegreen switch" in str(malformed.value)


def test_readers_of_the_original_keys_still_read_canary_env_with_weights(
    cluster_emulator: ClusterEmulator,
) -> None:
    # GIVEN a canaryEnv written by the alb router (it now carries weights)
    routed(emulator_backend(cluster_emulator), RouterKind.ALB).shift_traffic(
        Weights(blue=10, green=90)
    )
    configmap = cluster_emulator.get("configmaps", "wp-platform", "canary-env")
    assert configmap is not None

    # WHEN a reader of the original keys reads it
    value = json.loads(configmap["data"]["canaryEnv"])

    # THEN selector and image are where they always were
    assert value["selector"] == "blue"
    assert value["image"].endswith(
        "@sha256:" + "1274e8bc4d963536e88265781170e72a2939caae25127cd9d400ab124393f946"
    )
    assert value["weights"] == {"blue": 10, "green": 90}
