"""The API's one table of error answers, and the routes its not-found answer lists."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest

from bluegreen.domain.canary_env import CanaryEnvMalformed
from bluegreen.domain.errors import (
    BlueGreenError,
    ClusterUnavailable,
    InvalidInput,
    RouterObjectInvalid,
    SwitchIncomplete,
    SwitchRestored,
    TagUnreadable,
)
from functions.services_api import app as api_app
from functions.services_api.api.errors import answer_error
from tests.api.conftest import Stack, call, event
from tests.template.cfn import load_template


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("imageTag", "is not a digest"), HTTPStatus.BAD_REQUEST),
        (ClusterUnavailable("no answer"), HTTPStatus.SERVICE_UNAVAILABLE),
        (CanaryEnvMalformed("not JSON"), HTTPStatus.BAD_GATEWAY),
        (RouterObjectInvalid("no production rule"), HTTPStatus.BAD_GATEWAY),
        (SwitchRestored("put back"), HTTPStatus.SERVICE_UNAVAILABLE),
        (SwitchIncomplete("left half-done"), HTTPStatus.SERVICE_UNAVAILABLE),
        (TagUnreadable("throttled"), HTTPStatus.CONFLICT),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BlueGreenError) else "",
)
def test_an_error_takes_the_answer_of_its_most_specific_class(
    error: BlueGreenError, status: HTTPStatus
) -> None:
    # WHEN the error is answered
    answer = answer_error(error)
    # THEN the status is its own class's (or its nearest listed ancestor's), named after it
    assert answer.status_code == status.value
    assert answer.body == {"error": type(error).__name__, "detail": str(error)}


def test_an_unreachable_cluster_without_a_message_still_says_why() -> None:
    answer = answer_error(ClusterUnavailable())
    assert answer.body == {
        "error": "ClusterUnavailable",
        "detail": "the cluster could not be reached",
    }


def _template_routes() -> set[str]:
    resources = load_template()["Resources"]
    events: dict[str, Any] = resources["ServicesApiFunction"]["Properties"]["Events"]
    return {
        f"{spec['Properties']['Method']} {spec['Properties']['Path']}"
        for spec in events.values()
        if spec["Type"] == "Api"
    }


def test_the_not_found_answer_lists_every_route_the_api_serves(stack: Stack) -> None:
    # WHEN a route that does not exist is asked for
    answer = call(event("error_unknown_route"))
    # THEN it lists the resolver's routes: exactly those API Gateway sends to the function
    assert answer.status == 404
    listed = answer.body["detail"].split("; the API serves ", 1)[1].split(", ")
    assert set(listed) == _template_routes()
    assert listed == list(api_app.served())
