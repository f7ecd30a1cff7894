"""The committed OpenAPI document is the one the code generates, and covers the template."""

from __future__ import annotations

import json
from pathlib import Path

from functions.services_api import openapi
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


def test_every_error_answer_is_documented_as_error_body() -> None:
    document = json.loads(COMMITTED.read_text())
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (
                        method,
                        path,
                        status,
                    )


def test_unsupported_content_type_is_documented_where_a_body_is_read() -> None:
    # GIVEN the committed document
    document = json.loads(COMMITTED.read_text())
    # WHEN the operations are listed with their documented answers
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            # THEN every operation that reads a body documents 415, and no other does
            takes_body = method in {"post", "put", "patch"}
            assert ("415" in operation["responses"]) is takes_body, (method, path)
