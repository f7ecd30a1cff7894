"""The registry's routes: ``PUT``, ``GET`` and ``DELETE /apps/{app}`` and ``GET /apps``, through
the handler, on moto's ledger table."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from bluegreen.domain.apps import default_app_spec
from bluegreen.domain.models import Digest
from bluegreen.logic.apps import STACK
from functions.services_api import app as api_app
from functions.services_api.api import dependencies
from tests.api.conftest import Answer, LambdaContext, Stack, call, event

ALICE = "arn:aws:sts::123456789012:assumed-role/release-engineer/alice"
SPEC = json.loads(event("put_app")["body"])


def unique() -> str:
    return f"shop-{uuid.uuid4().hex[:8]}"


def at(name: str, sample: str, **changes: Any) -> dict[str, Any]:
    """The sample event, addressed to application ``name``."""
    loaded = event(sample, **changes)
    loaded["path"] = loaded["path"].replace("checkout", name)
    loaded["pathParameters"] = {"app": name}
    return loaded


def with_if_match(loaded: dict[str, Any], value: str | None) -> dict[str, Any]:
    for field in ("headers", "multiValueHeaders"):
        loaded[field].pop("If-Match", None)
    if value is not None:
        loaded["headers"]["If-Match"] = value
        loaded["multiValueHeaders"]["If-Match"] = [value]
    return loaded


def etag(loaded: dict[str, Any]) -> str | None:
    """Call the handler; the ETag it answers with."""
    response = api_app.lambda_handler(loaded, LambdaContext())
    values = (response.get("multiValueHeaders") or {}).get("ETag") or []
    return str(values[0]) if values else None


def put(name: str, spec: dict[str, Any], if_match: str | None = None) -> Answer:
    return call(with_if_match(at(name, "put_app", body=spec), if_match))


def get(name: str) -> Answer:
    return call(at(name, "get_app"))


def test_an_application_is_registered_and_read_back_with_its_version_and_author(
    stack: Stack,
) -> None:
    name = unique()
    # WHEN alice registers it
    created = put(name, SPEC)
    # THEN 201, version 1, the spec with its defaults filled in, alice and where she called from
    assert created.status == 201, created.body
    assert created.body["version"] == 1
    assert created.body["spec"]["router"]["httpRoute"] == {
        "name": "checkout",
        "productionRule": "production",
        "canaryRule": "canary",
    }
    assert created.body["spec"]["deploy"]["hooks"] == []
    assert (created.body["changedBy"], created.body["createdBy"]) == (ALICE, ALICE)
    assert created.body["sourceIp"] == "203.0.113.10"
    # AND GET answers the same, with the version as its ETag
    read = get(name)
    assert read.status == 200
    assert read.body == created.body
    assert etag(at(name, "get_app")) == '"1"'


def test_a_replace_names_the_version_it_read_and_a_stale_one_is_a_conflict(stack: Stack) -> None:
    name = unique()
    put(name, SPEC)
    # WHEN alice replaces version 1
    changed = put(name, {**SPEC, "namespace": "checkout-v2"}, '"1"')
    # THEN 200 and version 2
    assert changed.status == 200, changed.body
    assert (changed.body["version"], changed.body["spec"]["namespace"]) == (2, "checkout-v2")
    # WHEN someone else writes from version 1 again (bare version, as the header allows)
    stale = put(name, {**SPEC, "namespace": "stale"}, "1")
    # THEN 409, naming the version there; the spec is alice's
    assert stale.status == 409
    assert stale.body["error"] == "AppVersionConflict"
    assert "version 2" in stale.body["detail"]
    assert get(name).body["spec"]["namespace"] == "checkout-v2"


def test_a_create_of_an_existing_application_is_a_conflict(stack: Stack) -> None:
    name = unique()
    put(name, SPEC)
    again = put(name, {**SPEC, "namespace": "other"})
    assert again.status == 409
    assert again.body["error"] == "AppVersionConflict"
    assert 'If-Match: "1"' in again.body["detail"]
    assert get(name).body["spec"]["namespace"] == "checkout"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"namespace": "Checkout"}, "namespace"),
        ({"deploy": {"bakeSeconds": "30"}}, "deploy.bakeSeconds"),
        ({"deploy": {"hooks": [{"name": "x", "command": []}]}}, "deploy.hooks.0.command"),
        ({"router": {"kind": "istio"}}, "router.kind"),
        ({"promotion": {"steps": [{"weight": 10}]}}, "promotion.steps"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_wrong_spec_is_a_422_naming_the_field_and_stores_nothing(
    stack: Stack, change: dict[str, Any], field: str
) -> None:
    name = unique()
    answer = put(name, {**SPEC, **change})
    assert answer.status == 422, answer.body
    assert answer.body["error"] == "ValidationError"
    assert answer.body["detail"].startswith(f"{field}: ")
    assert get(name).status == 404


def test_a_wrong_pattern_says_the_rule(stack: Stack) -> None:
    answer = put(unique(), {**SPEC, "namespace": "Checkout"})
    assert answer.body["detail"].startswith("namespace: is not a DNS label")


def test_a_spec_without_where_the_application_lives_is_a_422(stack: Stack) -> None:
    answer = put(unique(), {"deploy": {"bakeSeconds": 1}})
    assert answer.status == 422
    assert "cluster" in answer.body["detail"]


@pytest.mark.parametrize("name", ["Shop", "a_b", "a" * 41, "-shop"])
def test_a_name_that_is_no_dns_label_is_a_422(stack: Stack, name: str) -> None:
    answer = put(name, SPEC)
    assert answer.status == 422
    assert answer.body["detail"].startswith("path.app: must be 1 to 40 lowercase letters")


@pytest.mark.parametrize("value", ["abc", '"0"', "1.0"])
def test_an_if_match_that_is_no_version_is_a_422(stack: Stack, value: str) -> None:
    name = unique()
    put(name, SPEC)
    answer = put(name, SPEC, value)
    assert answer.status == 422
    assert answer.body["detail"].startswith("header.if-match: must be a version")


def test_an_unknown_application_is_a_404(stack: Stack) -> None:
    answer = get(unique())
    assert answer.status == 404
    assert answer.body["error"] == "AppNotFound"


def test_applications_page_through_by_name(stack: Stack) -> None:
    # GIVEN three applications of this test (the table holds other tests' too)
    prefix = f"page-{uuid.uuid4().hex[:6]}"
    mine = [f"{prefix}-c", f"{prefix}-a", f"{prefix}-b"]
    for name in mine:
        assert put(name, SPEC).status == 201
    # WHEN every page of two is read, following nextCursor
    names: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        answer = call(
            event(
                "get_apps",
                queryStringParameters=query,
                multiValueQueryStringParameters={k: [v] for k, v in query.items()},
            )
        )
        assert answer.status == 200, answer.body
        assert len(answer.body["apps"]) <= 2
        names += [app["name"] for app in answer.body["apps"]]
        cursor = answer.body["nextCursor"]
        pages += 1
        if cursor is None:
            break
    # THEN every application once, in name order, ours among them
    assert names == sorted(set(names))
    assert [n for n in names if n.startswith(prefix)] == sorted(mine)
    assert pages > 1


def test_a_cursor_not_handed_out_is_a_400(stack: Stack) -> None:
    answer = call(
        event(
            "get_apps",
            queryStringParameters={"cursor": "bm90LW91cnM"},
            multiValueQueryStringParameters={"cursor": ["bm90LW91cnM"]},
        )
    )
    assert answer.status == 400
    assert answer.body["error"] == "InvalidInput"


def test_the_stacks_default_application_is_registered_at_first_use(stack: Stack) -> None:
    # WHEN the registry is first read
    answer = get(stack.application)
    # THEN the stack's application is there, as its parameters describe it, by the stack
    assert answer.status == 200, answer.body
    assert answer.body["changedBy"] == STACK
    assert answer.body["spec"] == default_app_spec(dependencies.settings()).to_json()


def test_an_application_is_deleted_and_its_history_kept(stack: Stack) -> None:
    name = unique()
    put(name, SPEC)
    put(name, {**SPEC, "namespace": "v2"}, '"1"')
    # WHEN it is deleted at the version read
    answer = call(at(name, "delete_app"))
    # THEN 200 with what it was; it is gone; the delete is kept with who made it
    assert answer.status == 200, answer.body
    assert (answer.body["version"], answer.body["spec"]["namespace"]) == (2, "v2")
    assert get(name).status == 404
    changes, _ = dependencies.app_registry().changes(name)
    assert [(c.action, c.actor) for c in changes] == [
        ("delete", ALICE),
        ("replace", ALICE),
        ("create", ALICE),
    ]
    # AND deleting it again is a 404
    assert call(at(name, "delete_app")).status == 404


def test_a_delete_at_a_stale_version_is_a_conflict(stack: Stack) -> None:
    name = unique()
    put(name, SPEC)
    answer = call(with_if_match(at(name, "delete_app"), '"7"'))
    assert answer.status == 409
    assert get(name).status == 200


def test_a_delete_while_a_deployment_of_the_application_runs_is_a_409(stack: Stack) -> None:
    from bluegreen.adapters.ledger import DynamoLedger

    name = unique()
    put(name, SPEC)
    ledger = DynamoLedger(
        dependencies.settings().ledger_table, stack.dynamodb, name, repository="shop/checkout"
    )
    ledger.record_push(Digest("ab" * 32), "main", ledger_now(), "push-1")
    assert ledger.acquire_lock(f"{name}-deploy-1", 900)
    answer = call(with_if_match(at(name, "delete_app"), None))
    assert answer.status == 409
    assert answer.body["error"] == "AppInUse"
    assert get(name).status == 200
    ledger.release_lock(f"{name}-deploy-1")
    assert call(with_if_match(at(name, "delete_app"), None)).status == 200
    assert ledger.image(Digest("ab" * 32)) is not None


def ledger_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


@pytest.mark.parametrize(
    ("content_type", "status"),
    [("multipart/form-data", 415), ("text/plain", 415), ("application/json; charset=latin-1", 415)],
)
def test_a_spec_sent_as_anything_but_json_is_refused_before_routing(
    stack: Stack, content_type: str, status: int
) -> None:
    name = unique()
    loaded = at(name, "put_app")
    loaded["headers"]["Content-Type"] = content_type
    loaded["multiValueHeaders"]["Content-Type"] = [content_type]
    answer = call(loaded)
    assert answer.status == status
    assert answer.body["error"] == "UnsupportedContentType"
    assert get(name).status == 404


def test_a_put_without_a_body_is_a_422(stack: Stack) -> None:
    name = unique()
    loaded = at(name, "put_app")
    loaded["body"] = None
    answer = call(loaded)
    assert answer.status == 422
    assert answer.body["detail"] == "body: a JSON object is required"
