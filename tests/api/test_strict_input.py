"""Strict input: no type coercion, one rule for strings, one JSON object per body, JSON only."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bluegreen.domain.models import Verdict
from local.cluster.emulator import ClusterEmulator
from tests.api.conftest import KNOWN, Stack, call, event, roles, versions


def with_content_type(sent: dict[str, Any], content_type: str | None) -> dict[str, Any]:
    """``sent`` with its Content-Type replaced in both header maps (None: no Content-Type)."""
    headers = {k: v for k, v in sent["headers"].items() if k.lower() != "content-type"}
    multi = {k: v for k, v in sent["multiValueHeaders"].items() if k.lower() != "content-type"}
    if content_type is not None:
        headers["Content-Type"] = content_type
        multi["Content-Type"] = [content_type]
    return dict(sent, headers=headers, multiValueHeaders=multi)


def assert_nothing_changed(stack: Stack, ledger: Any, emu: ClusterEmulator, before: Any) -> None:
    assert stack.executions() == []
    assert versions(emu) == before
    assert ledger.deployments()[0] == []


# -- no type coercion --------------------------------------------------------------


@pytest.mark.parametrize("force", ["yes", "true", 1, 1.0, [True], {"value": True}])
def test_force_is_a_json_boolean_or_nothing_is_deployed(
    stack: Stack, ledger: Any, emu: ClusterEmulator, force: object
) -> None:
    # GIVEN the ledger judged KNOWN failed, so only a real "force": true may deploy it
    ledger.set_verdict(KNOWN, Verdict.FAILED, "health check failed")
    before = versions(emu)
    # WHEN force arrives as something that only looks true
    answer = call(event("deploy_tag", body={"imageTag": "release-1.4", "force": force}))
    # THEN 422 names the field, and the failed digest is not deployed
    assert answer.status == 422, answer.body
    assert answer.body["error"] == "ValidationError"
    assert answer.body["detail"].startswith("force: ")
    assert "boolean" in answer.body["detail"]
    assert_nothing_changed(stack, ledger, emu, before)


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("deploy_tag", {"imageTag": 5}, "imageTag"),
        ("deploy_tag", {"imageTag": "release-1.4", "reason": 7}, "reason"),
        ("deploy_tag", {"imageTag": "release-1.4", "service": True}, "service"),
        ("switch_to_green", {"selector": ["green"]}, "selector"),
        ("rollback_canary", {"service": 1}, "service"),
        ("promote", {"reason": False}, "reason"),
    ],
)
def test_every_field_has_its_json_type(
    stack: Stack, ledger: Any, emu: ClusterEmulator, name: str, body: Any, field: str
) -> None:
    before = versions(emu)
    answer = call(event(name, body=body))
    assert answer.status == 422, answer.body
    assert answer.body["detail"].startswith(f"{field}: ")
    assert_nothing_changed(stack, ledger, emu, before)


@pytest.mark.parametrize("limit", [" 5", "5 ", "5.0", "+5", "1e1", "٣", "0x5"])
@pytest.mark.parametrize("name", ["get_images", "get_deployments"])
def test_a_page_size_is_decimal_digits(
    stack: Stack, ledger: Any, emu: ClusterEmulator, name: str, limit: str
) -> None:
    # WHEN limit is a number only after some reading between the lines
    query = {"limit": limit}
    answer = call(
        event(name, queryStringParameters=query, multiValueQueryStringParameters={"limit": [limit]})
    )
    # THEN 422 says what a limit is
    assert answer.status == 422, answer.body
    assert answer.body["detail"] == (
        "query.limit: must be a whole number written in decimal digits"
    )


# -- one rule for strings: never trimmed, refused ------------------------------------


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("deploy_tag", {"imageTag": " release-1.4"}, "imageTag"),
        ("deploy_tag", {"imageTag": f"{KNOWN}\n"}, "imageTag"),
        ("deploy_tag", {"imageTag": "release-1.4", "reason": "fix "}, "reason"),
        ("switch_to_green", {"selector": "green", "reason": "\tswap"}, "reason"),
        ("rollback_canary", {"reason": " bad deploy"}, "reason"),
        ("promote", {"reason": "ready\n"}, "reason"),
    ],
)
def test_strings_with_surrounding_whitespace_are_refused_in_every_field(
    stack: Stack, ledger: Any, emu: ClusterEmulator, name: str, body: Any, field: str
) -> None:
    before = versions(emu)
    answer = call(event(name, body=body))
    assert answer.status == 422, answer.body
    assert answer.body["detail"] == f"{field}: must not begin or end with whitespace"
    assert_nothing_changed(stack, ledger, emu, before)


@pytest.mark.parametrize("name", ["switch_to_green", "rollback_canary"])
def test_whitespace_around_an_enumerated_value_is_refused_too(
    stack: Stack, ledger: Any, emu: ClusterEmulator, name: str
) -> None:
    field = "selector" if name.startswith("switch") else "service"
    value = " green" if field == "selector" else "production "
    before = versions(emu)
    answer = call(event(name, body={field: value}))
    assert answer.status == 422, answer.body
    assert answer.body["detail"].startswith(f"{field}: ")
    assert_nothing_changed(stack, ledger, emu, before)


def test_whitespace_inside_a_reason_is_kept(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    answer = call(event("deploy_tag", body={"imageTag": "release-1.4", "reason": "a\n\tb c"}))
    assert answer.status == 202, answer.body
    assert stack.execution_input(answer.body["executionArn"])["reason"] == "a\n\tb c"


def test_a_cursor_with_whitespace_is_refused_as_no_cursor(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    answer = call(
        event(
            "get_images",
            queryStringParameters={"cursor": " "},
            multiValueQueryStringParameters={"cursor": [" "]},
        )
    )
    assert answer.status == 422, answer.body
    assert answer.body["detail"].startswith("query.cursor: is not a cursor this API handed out")


# -- a body is one JSON object -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("switch_to_green", '[{"selector": "blue"}]'),
        ("switch_to_green", '[{"selector": "green"}]'),
        ("rollback_canary", '[{"service": "production"}]'),
        ("rollback_canary", "null"),
        ("promote", '"promote"'),
        ("deploy_tag", '[{"imageTag": "release-1.4"}, {"imageTag": "release-1.3"}]'),
        ("deploy_tag", "42"),
    ],
)
def test_a_body_that_is_not_one_json_object_is_400_and_changes_nothing(
    stack: Stack, ledger: Any, emu: ClusterEmulator, name: str, body: str
) -> None:
    # GIVEN a blue canary
    before = versions(emu)
    # WHEN a body of JSON that is not an object arrives
    answer = call(event(name, body=body))
    # THEN 400 says a JSON object is needed, and nothing was switched, started or recorded
    assert answer.status == 400, answer.body
    assert answer.body["error"] == "MalformedBody"
    assert "must be one JSON object" in answer.body["detail"]
    assert_nothing_changed(stack, ledger, emu, before)
    assert roles(emu) == ("blue", "blue", "green")


# -- media types -------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "APPLICATION/JSON",
        "Application/Json",
        "application/json; charset=UTF-8",
        "application/json;charset=utf-8",
        "APPLICATION/X-WWW-FORM-URLENCODED",
    ],
)
def test_json_media_types_are_compared_case_insensitively(
    stack: Stack, emu: ClusterEmulator, content_type: str
) -> None:
    answer = call(with_content_type(event("switch_to_green"), content_type))
    assert answer.status == 200, answer.body
    assert roles(emu) == ("green", "green", "blue")


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "text/plain",
        "application/xml",
        "application/json; charset=latin-1",
        "application/jsonp",
    ],
)
@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("switch_to_green", '{"selector": "green"}'),
        ("rollback_canary", '{"service": "production"}'),
        ("deploy_tag", '{"imageTag": "release-1.4"}'),
    ],
)
def test_a_json_body_labelled_as_something_else_is_415(
    stack: Stack,
    ledger: Any,
    emu: ClusterEmulator,
    content_type: str,
    name: str,
    body: str,
) -> None:
    before = versions(emu)
    answer = call(with_content_type(event(name, body=body), content_type))
    assert answer.status == 415, answer.body
    assert answer.body["error"] == "UnsupportedContentType"
    assert "application/json" in answer.body["detail"]
    assert_nothing_changed(stack, ledger, emu, before)


def test_a_multipart_form_is_415_and_switches_nothing(
    stack: Stack, ledger: Any, emu: ClusterEmulator
) -> None:
    # GIVEN what `curl -F selector=green` sends (base64, as API Gateway passes binary media)
    form = b'--xyz\r\nContent-Disposition: form-data; name="selector"\r\n\r\ngreen\r\n--xyz--\r\n'
    sent = with_content_type(event("switch_to_green"), "multipart/form-data; boundary=xyz")
    before = versions(emu)
    for body, encoded in ((form.decode(), False), (base64.b64encode(form).decode(), True)):
        # WHEN it arrives, as text or base64
        answer = call(dict(sent, body=body, isBase64Encoded=encoded))
        # THEN 415, and green is not the canary
        assert answer.status == 415, answer.body
    assert_nothing_changed(stack, ledger, emu, before)
    assert roles(emu) == ("blue", "blue", "green")


@pytest.mark.parametrize("content_type", ["multipart/form-data", "text/plain", "APPLICATION/JSON"])
@pytest.mark.parametrize("name", ["rollback_no_body", "promote"])
def test_no_body_is_no_body_whatever_it_is_labelled(
    stack: Stack, ledger: Any, emu: ClusterEmulator, content_type: str, name: str
) -> None:
    # GIVEN a bodyless rollback or promotion carrying a Content-Type anyway
    sent = with_content_type(event(name, body=None), content_type)
    # WHEN it arrives
    answer = call(dict(sent, body=None))
    # THEN no content type is judged: there is nothing to read, and the flow starts
    assert answer.status == 202, answer.body
