"""How the local stack reads template.yaml: handler environment and the EventBridge rule."""

from __future__ import annotations

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


def test_only_events_the_rule_matches_reach_ecr_push() -> None:
    # GIVEN the rule's pattern as the template declares it
    patterns = event_rule_patterns(load_template(), "ecr_push")
    assert patterns

    def delivered(name: str) -> bool:
        event = load_event(f"ecr_push/{name}")
        return any(pattern_matches(pattern, event) for pattern in patterns)

    # THEN successful pushes to the repository match, everything else does not
    assert delivered("tagged_push.json")
    assert delivered("untagged_push.json")
    assert not delivered("delete_action.json")
    assert not delivered("failed_push.json")
    assert not delivered("other_repository.json")
