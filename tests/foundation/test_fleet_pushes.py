"""One EventBridge rule for the fleet: a push is recorded for, and auto-deploys to, every
application whose repository it is; a push to a repository nobody names is acknowledged
and recorded nowhere."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from bluegreen.adapters.apps import DynamoAppRegistry
from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.domain.apps import AppSpec, Editor, default_app_spec
from functions.ecr_push import app, dependencies
from tests.events import load_event
from tests.foundation.test_ecr_push import PUSHED, lambda_context, stack  # noqa: F401

Stack = tuple[DynamoLedger, str]


def register(name: str, repository: str) -> DynamoLedger:
    """Application ``name`` naming ``repository``; its own ledger."""
    config = dependencies.stack_settings()
    spec = default_app_spec(config).to_json()
    spec["repository"] = repository
    registry = DynamoAppRegistry(config.ledger_table, dependencies.aws_client("dynamodb"))
    registry.put(name, AppSpec.parse(spec), Editor(actor="test"), None)
    return DynamoLedger(
        config.ledger_table, dependencies.aws_client("dynamodb"), name, repository=repository
    )


def push(repository: str, context: SimpleNamespace, event_id: str = "") -> dict[str, Any]:
    event = load_event("ecr_push/tagged_push.json")
    event["detail"]["repository-name"] = repository
    event["id"] = event_id or event["id"]
    result: dict[str, Any] = app.lambda_handler(json.loads(json.dumps(event)), context)
    return result


def test_a_push_is_recorded_for_every_application_naming_its_repository(
    stack: Stack,  # noqa: F811
    lambda_context: SimpleNamespace,  # noqa: F811
) -> None:
    default, _ = stack
    shared = register("shop-shared", "rezfusion-cloud")
    other = register("shop-other", "payments")

    result = push("rezfusion-cloud", lambda_context)

    default_name = dependencies.stack_settings().application
    assert result["recorded"] is True
    assert set(result["applications"]) == {default_name, "shop-shared"}
    assert default.image(PUSHED) is not None
    assert shared.image(PUSHED) is not None
    assert other.image(PUSHED) is None


def test_a_push_to_a_repository_only_a_registered_application_names_is_its_alone(
    stack: Stack,  # noqa: F811
    lambda_context: SimpleNamespace,  # noqa: F811
) -> None:
    default, _ = stack
    other = register("shop-other", "payments")

    result = push("payments", lambda_context)

    assert result == {"recorded": True, "digest": str(PUSHED), "tags": ["dev"]}
    assert other.image(PUSHED) is not None
    assert default.image(PUSHED) is None


def test_a_push_to_a_repository_no_application_names_is_acknowledged_and_recorded_nowhere(
    stack: Stack,  # noqa: F811
    lambda_context: SimpleNamespace,  # noqa: F811
) -> None:
    default, _ = stack
    other = register("shop-other", "payments")

    result = push("nobodys-repository", lambda_context)

    assert result == {"recorded": False, "reason": "other-repository"}
    assert default.image(PUSHED) is None
    assert other.image(PUSHED) is None


def test_a_repeated_delivery_is_one_push_per_application(
    stack: Stack,  # noqa: F811
    lambda_context: SimpleNamespace,  # noqa: F811
) -> None:
    _, idempotency_table = stack
    register("shop-shared", "rezfusion-cloud")
    first = push("rezfusion-cloud", lambda_context)
    again = push("rezfusion-cloud", lambda_context)
    # The second delivery answers what the first recorded; each application has one key.
    assert again == first
    keys = dependencies.aws_client("dynamodb").scan(TableName=idempotency_table)["Items"]
    assert len(keys) == 2
