"""samconfig.toml: a dev stack by default and a prod stack confirmed by hand, each
with parameter overrides the template accepts and the code can read."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.template.cfn import ROOT, function_environment, load_template, parameter_defaults
from tests.template.test_template import ENVIRONMENTS

CONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())


def overrides(environment: str) -> dict[str, str]:
    """The environment's parameter overrides as SAM CLI passes them (quotes removed)."""
    raw = CONFIG[environment]["deploy"]["parameters"]["parameter_overrides"]
    pairs = raw if isinstance(raw, list) else raw.split()
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        parsed[key] = value
    return parsed


def test_dev_is_the_default_and_prod_is_separate() -> None:
    # GIVEN the two environments
    dev, prod = CONFIG["default"], CONFIG["prod"]

    # THEN they deploy different stacks, and only prod waits for a person
    assert dev["global"]["parameters"]["stack_name"] != prod["global"]["parameters"]["stack_name"]
    assert dev["deploy"]["parameters"]["confirm_changeset"] is False
    assert prod["deploy"]["parameters"]["confirm_changeset"] is True
    for environment in (dev, prod):
        deploy = environment["deploy"]["parameters"]
        assert deploy["resolve_s3"] is True
        assert deploy["capabilities"] == "CAPABILITY_IAM"


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_overrides_are_template_parameters_with_values_it_accepts(environment: str) -> None:
    # GIVEN the template's parameters and the environment's overrides
    parameters = load_template()["Parameters"]
    values = overrides(environment)

    # THEN each override names a parameter and satisfies its constraint
    for name, value in values.items():
        assert name in parameters, f"{environment}: {name} is not a template parameter"
        parameter: dict[str, Any] = parameters[name]
        if "AllowedPattern" in parameter:
            assert re.fullmatch(parameter["AllowedPattern"], value), (environment, name, value)
        if "AllowedValues" in parameter:
            assert value in [str(v) for v in parameter["AllowedValues"]], (environment, name)


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_each_environment_yields_settings_the_code_accepts(environment: str) -> None:
    # GIVEN the environment each function of that stack gets
    template = load_template()
    parameters = parameter_defaults(template) | overrides(environment)
    tags = tuple(t for t in parameters["AutoDeployTags"].split(",") if t)

    # WHEN each function's environment model reads its own
    for function, model in ENVIRONMENTS.items():
        settings = model.read(function_environment(template, function, parameters)).settings()

        # THEN it names the application of the overrides, and its cluster and auto-deploy
        # tags wherever the function reads them
        assert settings.application == parameters["AppName"], function
        if function != "EcrPushFunction":
            assert settings.cluster_name == parameters["ClusterName"], function
        if function != "ServicesApiFunction":
            assert settings.auto_deploy_tags == tags, function


def test_prod_deploys_nothing_on_its_own() -> None:
    # GIVEN / WHEN prod's overrides
    values = overrides("prod")

    # THEN no tag push deploys itself there, and deploys bake before their verdict
    assert values["AutoDeployTags"] == ""
    assert int(values["BakeSeconds"]) > 0
