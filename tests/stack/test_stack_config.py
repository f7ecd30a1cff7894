"""How the local stack reads template.yaml: handler environment and the EventBridge rule."""

from __future__ import annotations

import copy
from typing import Any

from local.aws import load_template
from local.stack import event_rule_patterns, pattern_matches, template_environment
from tests.events import load_event


def test_handlers_get_the_templates_environment_with_parameter_defaults() -> None:
    # GIVEN the template and its parameters
    template = load_template()
    parameters = template["Parameters"]
    # WHEN the services_api function's environment is built
    environment = template_environment(template, "services_api")
    # THEN !Ref values are the parameters' defaults, and AWS-only values are left out
    assert environment["BG_REPOSITORY_NAME"] == str(parameters["RepositoryName"]["Default"])
    assert environment["BG_NAMESPACE"] == str(parameters["Namespace"]["Default"])
    assert "BG_REGISTRY" not in environment  # !Sub with the account: the stack fills it in
    assert "BG_STATE_MACHINE_ARN" not in environment


def delivered_by(template: dict[str, Any], name: str, repository: str | None = None) -> bool:
    """Whether the template's rule delivers the sample event (to ``repository``, if given)."""
    event = load_event(f"ecr_push/{name}")
    if repository is not None:
        event["detail"]["repository-name"] = repository
    return any(pattern_matches(p, event) for p in event_rule_patterns(template, "ecr_push"))


def test_only_successful_pushes_reach_ecr_push() -> None:
    # GIVEN the rule's pattern as the template declares it
    template = load_template()
    assert event_rule_patterns(template, "ecr_push")
    # THEN successful pushes match, everything else does not
    assert delivered_by(template, "tagged_push.json")
    assert delivered_by(template, "untagged_push.json")
    assert not delivered_by(template, "delete_action.json")
    assert not delivered_by(template, "failed_push.json")


def test_the_rule_takes_the_default_repository_and_the_fleets_prefix() -> None:
    # GIVEN the fleet's repositories narrowed to those starting with "shop/"
    template = copy.deepcopy(load_template())
    template["Parameters"]["FleetRepositoryPrefix"]["Default"] = "shop/"
    # THEN pushes to the default application's repository and under the prefix are delivered
    assert delivered_by(template, "tagged_push.json")
    assert delivered_by(template, "tagged_push.json", "shop/checkout")
    # AND a push to any other repository is not
    assert not delivered_by(template, "other_repository.json")
    assert not delivered_by(template, "tagged_push.json", "payroll")
    # WHILE with the default (empty) prefix every repository's push reaches the handler,
    # which records it for the applications naming the repository, and for none else
    assert delivered_by(load_template(), "other_repository.json")
