"""Every client mistake gets a 4xx naming what is wrong, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import Stack, call, event, versions

CASES = [
    ("error_malformed_json", 400, "MalformedJson", "not valid JSON"),
    ("error_wrong_type", 422, "ValidationError", "selector"),
    ("error_unknown_field", 422, "ValidationError", "colour: is not a field"),
    ("error_selector_and_image", 400, "InvalidInput", "not both"),
    ("error_neither", 400, "InvalidInput", "not neither"),
    ("error_selector_with_service", 400, "InvalidInput", "service: goes with imageTag only"),
    ("error_bad_digest", 400, "InvalidInput", "is not a sha256 digest"),
    ("error_bad_algorithm", 400, "InvalidInput", "only sha256"),
    ("error_unknown_tag", 404, "UnknownImage", "'never-pushed'"),
    ("error_unknown_digest", 404, "UnknownImage", "deadbeef"),
    ("error_unknown_colour", 422, "ValidationError", "selector: Input should be 'blue' or 'green'"),
    ("error_unknown_service", 422, "ValidationError", "service"),
    ("error_body_not_object", 400, "MalformedBody", "must be one JSON object"),
    ("error_no_body", 422, "ValidationError", "body"),
    ("error_bad_limit", 422, "ValidationError", "limit"),
    ("error_limit_not_number", 422, "ValidationError", "limit"),
    ("error_bad_cursor", 422, "ValidationError", "cursor: is not a cursor this API handed out"),
    ("error_unknown_deployment", 404, "NotFound", "wp-platform-deploy-nosuch"),
    ("error_unknown_route", 404, "RouteNotFound", "GET /colours"),
    ("error_wrong_content_type", 415, "UnsupportedContentType", "application/json"),
    ("error_body_not_base64", 400, "MalformedBody", "base64"),
    ("error_body_not_utf8", 400, "MalformedBody", "UTF-8"),
]


@pytest.mark.parametrize(("name", "status", "error", "says"), CASES, ids=[c[0] for c in CASES])
def test_client_mistakes_are_named_and_change_nothing(
    stack: Stack,
    ledger: Any,
    emu: ClusterEmulator,
    name: str,
    status: int,
    error: str,
    says: str,
) -> None:
    # GIVEN the seeded ledger and a blue canary
    before = versions(emu)
    # WHEN a mistaken request arrives
    answer = call(event(name))
    # THEN the status and body say what is wrong
    assert answer.status == status, answer.body
    assert set(answer.body) == {"error", "detail"}
    assert answer.body["error"] == error
    assert says in answer.body["detail"]
    # AND nothing was started, switched or recorded
    assert stack.executions() == []
    assert versions(emu) == before
    assert ledger.deployments()[0] == []


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_json_nested_past_the_parsers_limit_is_malformed_json(
    stack: Stack, ledger: Any, emu: ClusterEmulator, depth: int
) -> None:
    # GIVEN a selector nested deeper than Python's JSON parser recurses
    body = '{"selector":' + "[" * depth + "]" * depth + "}"
    before = versions(emu)
    # WHEN it is posted
    answer = call(event("switch_to_green", body=body))
    # THEN 400 MalformedJson says so, and nothing changed
    assert answer.status == 400, answer.body
    assert answer.body == {
        "error": "MalformedJson",
        "detail": "the body is not valid JSON (nested too deeply)",
    }
    assert versions(emu) == before
    assert ledger.deployments()[0] == []


@pytest.mark.parametrize(
    "path", ["/deployments/\u2713", "/deployments/\x00", "/deployments/a b", "/deployments/a.b"]
)
def test_a_deployment_id_out_of_its_alphabet_is_a_bad_id(
    stack: Stack, ledger: Any, emu: ClusterEmulator, path: str
) -> None:
    # GIVEN a path API Gateway decoded from /deployments/%E2%9C%93 (or %00, %20, a dot)
    # WHEN it is read
    answer = call(event("get_deployment", path=path))
    # THEN the same 422 says what a deployment id is, whether the route matched or not
    assert answer.status == 422, answer.body
    assert answer.body == {
        "error": "ValidationError",
        "detail": "path.id: is not a deployment id: letters, digits, '-' and '_' only",
    }


def test_a_path_below_a_deployment_is_still_no_route(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    answer = call(event("get_deployment", path="/deployments/abc/logs"))
    assert answer.status == 404
    assert answer.body["error"] == "RouteNotFound"
