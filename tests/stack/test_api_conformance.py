"""The services API, over HTTP on the local stack, against its own OpenAPI document.

schemathesis generates requests from ``docs/openapi.json`` (the document the code
generates), valid and invalid ones, signs each with the stack's key as API
Gateway requires, and checks every answer: no 5xx, a status the document lists
for the operation, the documented content type and body schema, and every
invalid request refused with a 4xx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from local.stack import LocalStack, StackOptions
from tests.stack.signing import SigV4, stack_key

pytestmark = [
    pytest.mark.stack,
    pytest.mark.filterwarnings("ignore:No application metrics to publish"),
    # Generated requests may start rollbacks and deployments the flow then runs.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES = 12
"""Examples per operation and generation mode: the whole run stays well under a minute."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(StackOptions.ephemeral(tmp_path_factory.mktemp("conformance"))) as running:
        yield running


@pytest.fixture(scope="module")
def session(stack: LocalStack) -> Iterator[requests.Session]:
    assert stack.state is not None
    with requests.Session() as signed:
        signed.auth = SigV4(stack_key(stack), stack.state.region)
        yield signed


@pytest.fixture(scope="module")
def api_schema(stack: LocalStack) -> Any:
    assert stack.state is not None
    config = schemathesis.Config.from_dict(
        {
            "base-url": stack.state.api_url,
            "generation": {
                "mode": "all",
                "max-examples": EXAMPLES,
                # The Authorization header is the signature, never generated data.
                "with-security-parameters": False,
                "database": "none",
            },
            "phases": {"stateful": {"enabled": False}},
        }
    )
    return schemathesis.openapi.from_dict(json.loads(DOCUMENT.read_text()), config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_answer_conforms_to_the_document(case: Any, session: requests.Session) -> None:
    # GIVEN a generated request (valid or not), signed as API Gateway requires
    # WHEN it is sent to the local stack; THEN every check holds
    case.call_and_validate(session=session, checks=CHECKS, timeout=30)
