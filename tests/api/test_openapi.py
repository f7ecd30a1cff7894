"""The committed OpenAPI document is the one the code generates, and covers the template."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bluegreen.domain import paging
from bluegreen.logic import history
from bluegreen.logic.services import REASON_LIMIT
from functions.services_api import openapi
from functions.services_api.api import schemas
from local.aws import load_template

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"


def test_committed_openapi_matches_the_code() -> None:
    # GIVEN the committed document; WHEN the code generates it again; THEN they are identical
    assert COMMITTED.read_text() == openapi.render(), (
        "docs/openapi.json is stale: python -m functions.services_api.openapi > docs/openapi.json"
    )


def test_openapi_and_template_serve_the_same_routes() -> None:
    # GIVEN the Api events of the function in template.yaml
    events = load_template()["Resources"]["ServicesApiFunction"]["Properties"]["Events"]
    in_template = {
        (e["Properties"]["Method"].lower(), e["Properties"]["Path"])
        for e in events.values()
        if e["Type"] == "Api"
    }
    # WHEN the document lists its operations
    document = json.loads(COMMITTED.read_text())
    in_document = {(method, path) for path, ops in document["paths"].items() for method in ops}
    # THEN every route API Gateway sends is documented, and nothing more
    assert in_document == in_template


GATEWAY_ANSWERS = {"403", "429"}
"""What API Gateway answers itself, as ``{"message": ...}``."""


def test_every_error_answer_is_documented_with_its_body() -> None:
    document = json.loads(COMMITTED.read_text())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            # THEN API Gateway's own refusals are documented on every route
            assert set(operation["responses"]) >= GATEWAY_ANSWERS, (method, path)
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    body = "GatewayMessage" if status in GATEWAY_ANSWERS else "ErrorBody"
                    assert schema == {"$ref": f"#/components/schemas/{body}"}, (
                        method,
                        path,
                        status,
                    )
    gateway = document["components"]["schemas"]["GatewayMessage"]
    assert gateway["required"] == ["message"]


def test_every_operation_requires_sigv4_as_api_gateway_exports_it() -> None:
    document = json.loads(COMMITTED.read_text())
    # THEN the one scheme is API Gateway's awsSigv4 apiKey on the Authorization header
    assert document["components"]["securitySchemes"]["sigv4"] | {"description": ""} == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "x-amazon-apigateway-authtype": "awsSigv4",
        "description": "",
    }
    # AND it applies to the whole API
    assert document["security"] == [{"sigv4": []}]


def _parameter(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    parameters = document["paths"][path]["get"]["parameters"]
    found: dict[str, Any] = next(p for p in parameters if p["name"] == name)["schema"]
    return found


def _string_branch(schema: dict[str, Any]) -> dict[str, Any]:
    """The string schema of ``X | None`` fields (``anyOf`` with null), or the schema itself."""
    branches = schema.get("anyOf", [schema])
    found: dict[str, Any] = next(b for b in branches if b.get("type") == "string")
    return found


@pytest.mark.parametrize("path", ["/images", "/deployments"])
def test_page_parameters_carry_the_limits_the_code_enforces(path: str) -> None:
    document = json.loads(COMMITTED.read_text())
    limit = _parameter(document, path, "limit")
    assert (limit["type"], limit["minimum"], limit["maximum"]) == ("integer", 1, paging.MAX_PAGE)
    cursor = _string_branch(_parameter(document, path, "cursor"))
    assert (cursor["minLength"], cursor["maxLength"]) == (1, 2048)
    assert cursor["pattern"] == schemas.CURSOR_PATTERN


def test_the_deployment_id_and_body_strings_carry_their_patterns_and_lengths() -> None:
    document = json.loads(COMMITTED.read_text())
    parameters = document["paths"]["/deployments/{id}"]["get"]["parameters"]
    deployment_id = next(p for p in parameters if p["name"] == "id")["schema"]
    assert deployment_id["pattern"] == schemas.DEPLOYMENT_ID_PATTERN
    assert deployment_id["maxLength"] == 80
    models = document["components"]["schemas"]
    image_tag = _string_branch(models["ServicesChange"]["properties"]["imageTag"])
    assert (image_tag["minLength"], image_tag["maxLength"]) == (1, schemas.IMAGE_TAG_LIMIT)
    for model in ("ServicesChange", "RollbackRequest", "PromoteRequest"):
        reason = models[model]["properties"]["reason"]
        assert reason["maxLength"] == REASON_LIMIT, model
        assert reason["pattern"] == schemas.TRIMMED, model
        assert models[model]["additionalProperties"] is False, model


@pytest.mark.parametrize(
    ("pattern", "domain"),
    [
        (schemas.CURSOR_PATTERN, paging._CURSOR),
        (schemas.DEPLOYMENT_ID_PATTERN, history._DEPLOYMENT_ID),
    ],
)
def test_documented_patterns_are_the_alphabets_the_domain_checks(
    pattern: str, domain: re.Pattern[str]
) -> None:
    # GIVEN the domain's own check (the final word), and the pattern the schema documents
    # THEN both admit the same characters
    documented_class = pattern.removeprefix("^").removesuffix("+$")
    domain_class = domain.pattern.split("{")[0]
    assert documented_class == domain_class


def test_unsupported_content_type_is_documented_where_a_body_is_read() -> None:
    # GIVEN the committed document
    document = json.loads(COMMITTED.read_text())
    # WHEN the operations are listed with their documented answers
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            # THEN every operation that reads a body documents 415, and no other does
            takes_body = method in {"post", "put", "patch"}
            assert ("415" in operation["responses"]) is takes_body, (method, path)
