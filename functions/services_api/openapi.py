"""Print the services API's OpenAPI document, generated from the routes and models.

``python -m functions.services_api.openapi > docs/openapi.json`` refreshes the
committed copy; a test fails when the two differ.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server

from functions.services_api.api import fleet
from functions.services_api.app import app

TITLE = "eks-bluegreen services API"
DESCRIPTION = (
    "Switch the canary colour, deploy a digest to the canary or production through the "
    "deploy flow, roll back, promote, and read images and deployments. Every call is "
    "signed with SigV4 (API Gateway `AWS_IAM` authorization); errors answer "
    '`{"error": ..., "detail": ...}`.'
)


SIGV4 = "sigv4"
"""The security scheme every operation requires: API Gateway's ``AWS_IAM`` authorizer."""


def sigv4_scheme() -> APIKey:
    """SigV4 on the ``Authorization`` header, as API Gateway documents ``AWS_IAM``.

    OpenAPI has no SigV4 type; API Gateway's own exports describe it as an
    ``apiKey`` scheme on ``Authorization`` with ``x-amazon-apigateway-authtype``.
    """
    return APIKey.model_validate(
        {
            "type": "apiKey",
            "in": APIKeyIn.header,
            "name": "Authorization",
            "description": "AWS Signature Version 4 for service `execute-api` (callers need "
            "`execute-api:Invoke` on the method); API Gateway answers 403 "
            '`{"message": ...}` to a missing, malformed or wrong signature.',
            "x-amazon-apigateway-authtype": "awsSigv4",
        }
    )


def document() -> dict[str, Any]:
    """The OpenAPI document as data, with a stable key order."""
    schema = app.get_openapi_json_schema(
        title=TITLE,
        version="1.0.0",
        description=DESCRIPTION,
        servers=[Server(url="/", description="The API's stage URL (stack output ServicesApiUrl)")],
        security_schemes={SIGV4: sigv4_scheme()},
        security=[{SIGV4: []}],
    )
    document: dict[str, Any] = json.loads(schema)
    paths = document["paths"]
    registry_read = paths[fleet.PREFIX]["get"]
    (app_parameter,) = (p for p in registry_read["parameters"] if p["name"] == "app")
    document["paths"] = fleet.fleet_paths(paths, app_parameter)
    not_found = registry_read["responses"]["404"]
    not_set_up = {
        "description": "`ClusterObjectMissing`: the application's namespace lacks an object "
        "its spec names (`bluegreen manifests <app> --with-objects` prints what it needs); "
        "nothing was changed",
        "content": not_found["content"],
    }
    for path, item in document["paths"].items():
        if path.startswith(fleet.PREFIX + "/"):
            for operation in item.values():
                # Every operation of an application answers 404 when the registry has none,
                # and 409 when the application is not set up in its cluster.
                operation["responses"].setdefault("404", not_found)
                operation["responses"].setdefault("409", not_set_up)
    return document


def render() -> str:
    """The committed form of the document: sorted keys, two-space indent, final newline."""
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    """Write the document to standard output."""
    print(render(), end="")


if __name__ == "__main__":
    main()
