"""The local API Gateway: HTTP request -> REST proxy event -> HTTP response."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel

from local.apigw import (
    DEFAULT_ROUTES,
    HttpRequest,
    LocalApiGateway,
    LocalCredential,
    Route,
    Stage,
    access_key_of,
    http_response,
    match_resource,
    proxy_event,
    routes_from_template,
)
from tests.events import load_event
from tests.stack.signing import signed_headers

SIGNED = (
    "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEALICE/20261127/us-west-2/execute-api/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)
STAGE = Stage(account="123456789012", region="us-west-2", api_id="a1b2c3d4e5", stage="prod")
NOW = datetime(2026, 11, 27, 6, 0, 0, tzinfo=UTC)
ALICE = LocalCredential("AKIAEXAMPLEALICE", "alice-secret", "arn:aws:iam::123456789012:user/alice")


def get_deployment_request() -> HttpRequest:
    return HttpRequest(
        method="GET",
        target="/deployments/wp-platform-deploy-example?limit=5&limit=6&q=a%20b",
        headers=[
            ("Accept", "application/json"),
            ("Host", "a1b2c3d4e5.execute-api.us-west-2.amazonaws.com"),
            ("User-Agent", "aws-cli/2.22.4"),
            ("X-Amz-Date", "20261127T060000Z"),
            ("Authorization", SIGNED),
        ],
        body=b"",
        source_ip="203.0.113.10",
    )


def keys(value: Any) -> set[str]:
    return set(value) if isinstance(value, dict) else set()


def test_event_has_exactly_the_fields_of_a_real_rest_proxy_event() -> None:
    # GIVEN a real-shaped API Gateway event for the same route (events/services_api/)
    real = load_event("services_api/get_deployment.json")
    # WHEN the same request is translated locally
    event = proxy_event(
        get_deployment_request(),
        Route("GET", "/deployments/{id}"),
        {"id": "wp-platform-deploy-example"},
        STAGE,
        caller=ALICE,
        request_id="req-1",
        now=NOW,
    )
    # THEN every level has the same fields
    assert keys(event) == keys(real)
    assert keys(event["requestContext"]) == keys(real["requestContext"])
    assert keys(event["requestContext"]["identity"]) == keys(real["requestContext"]["identity"])
    # AND the values that describe this request are those API Gateway would send
    assert event["resource"] == real["resource"] == "/deployments/{id}"
    assert event["path"] == real["path"]
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == real["pathParameters"]
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert event["stageVariables"] is None
    context = event["requestContext"]
    assert context["resourcePath"] == "/deployments/{id}"
    assert context["path"] == real["requestContext"]["path"]
    assert context["stage"] == "prod"
    assert context["requestId"] == "req-1"
    assert context["requestTime"] == "27/Nov/2026:06:00:00 +0000"
    assert context["requestTimeEpoch"] == 1795759200000
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == "a1b2c3d4e5"
    assert context["domainName"] == real["requestContext"]["domainName"]
    assert context["protocol"] == "HTTP/1.1"


def test_query_string_is_single_and_multi_valued() -> None:
    event = proxy_event(
        get_deployment_request(), Route("GET", "/deployments/{id}"), {"id": "x"}, STAGE
    )
    # THEN the single-valued map keeps the last value, the multi-valued one all, decoded
    assert event["queryStringParameters"] == {"limit": "6", "q": "a b"}
    assert event["multiValueQueryStringParameters"] == {"limit": ["5", "6"], "q": ["a b"]}


def test_identity_is_the_verified_credentials_user_and_the_client() -> None:
    # GIVEN a request whose signature names Alice's key, verified as hers
    event = proxy_event(
        get_deployment_request(),
        Route("GET", "/deployments/{id}"),
        {"id": "x"},
        STAGE,
        caller=ALICE,
    )
    identity = event["requestContext"]["identity"]
    # THEN the caller is the key's IAM user, from the client's address
    assert identity["accessKey"] == "AKIAEXAMPLEALICE"
    assert identity["userArn"] == "arn:aws:iam::123456789012:user/alice"
    assert identity["accountId"] == "123456789012"
    assert identity["caller"] == "AKIAEXAMPLEALICE"
    assert identity["sourceIp"] == "203.0.113.10"
    assert identity["userAgent"] == "aws-cli/2.22.4"
    assert identity["cognitoIdentityId"] is None


def test_an_unverified_authorization_header_gives_no_identity() -> None:
    # GIVEN the same request, its signature not verified (no caller)
    event = proxy_event(
        get_deployment_request(), Route("GET", "/deployments/{id}"), {"id": "x"}, STAGE
    )
    # THEN the access key it names is not believed
    identity = event["requestContext"]["identity"]
    assert identity["userArn"] is None
    assert identity["accessKey"] is None


def test_front_end_headers_are_added_like_api_gateway() -> None:
    event = proxy_event(
        get_deployment_request(), Route("GET", "/deployments/{id}"), {"id": "x"}, STAGE
    )
    # THEN forwarding and trace headers are present in both header maps
    assert event["headers"]["X-Forwarded-For"] == "203.0.113.10"
    assert event["headers"]["X-Forwarded-Proto"] == "https"
    assert event["headers"]["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert event["multiValueHeaders"]["Authorization"] == [SIGNED]
    assert event["headers"]["Host"] == "a1b2c3d4e5.execute-api.us-west-2.amazonaws.com"


def test_post_without_a_caller_has_a_text_body_and_no_identity() -> None:
    # GIVEN an unsigned POST with a JSON body (curl against the local stack)
    request = HttpRequest(
        "POST",
        "/services",
        [("Content-Type", "application/json")],
        b'{"selector": "green"}',
        "127.0.0.1",
    )
    # WHEN translated
    event = proxy_event(request, Route("POST", "/services"), {}, STAGE)
    # THEN the body is the text, no parameters, and no IAM identity beyond the address
    assert event["body"] == '{"selector": "green"}'
    assert event["isBase64Encoded"] is False
    assert event["pathParameters"] is None
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    identity = event["requestContext"]["identity"]
    assert identity["userArn"] is None
    assert identity["accessKey"] is None
    assert identity["sourceIp"] == "127.0.0.1"


def test_binary_body_is_base64() -> None:
    request = HttpRequest("POST", "/services", [], b"\xff\xfe\x00", "127.0.0.1")
    event = proxy_event(request, Route("POST", "/services"), {}, STAGE)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\xff\xfe\x00"


def test_events_parse_as_powertools_proxy_events() -> None:
    # GIVEN requests with and without a verified caller
    signed = proxy_event(
        get_deployment_request(),
        Route("GET", "/deployments/{id}"),
        {"id": "x"},
        STAGE,
        caller=ALICE,
    )
    unsigned = proxy_event(
        HttpRequest("POST", "/services", [], b"{}", "127.0.0.1"),
        Route("POST", "/services"),
        {},
        STAGE,
    )
    # THEN Powertools' own model of the REST proxy event accepts both
    for event in (signed, unsigned):
        model = APIGatewayProxyEventModel.model_validate(event)
        assert model.requestContext.identity.sourceIp is not None


@pytest.mark.parametrize(
    ("resource", "path", "params"),
    [
        ("/deployments/{id}", "/deployments/abc", {"id": "abc"}),
        ("/deployments/{id}", "/deployments/a%2Fb", {"id": "a/b"}),
        ("/deployments/{id}", "/deployments", None),
        ("/deployments/{id}", "/deployments/a/b", None),
        ("/services", "/services", {}),
        ("/services", "/services/", {}),
        ("/{proxy+}", "/a/b/c", {"proxy": "a/b/c"}),
        ("/images", "/services", None),
    ],
)
def test_resource_matching(resource: str, path: str, params: dict[str, str] | None) -> None:
    assert match_resource(resource, path) == params


def test_access_key_only_from_sigv4() -> None:
    assert access_key_of(SIGNED) == "AKIAEXAMPLEALICE"
    assert access_key_of("Bearer abc") is None
    assert access_key_of(None) is None


def test_routes_come_from_the_template() -> None:
    # WHEN the services_api function's Api events are read
    routes = routes_from_template()
    # THEN they are the documented API
    assert set(routes) >= set(DEFAULT_ROUTES)


def test_proxy_response_headers_and_base64_body() -> None:
    # GIVEN a proxy response with both header maps and a base64 body
    result = {
        "statusCode": 202,
        "headers": {"Content-Type": "application/json", "X-One": "1"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-One": ["1"]},
        "body": base64.b64encode(b'{"ok": true}').decode(),
        "isBase64Encoded": True,
    }
    # WHEN written back
    response = http_response(result, "req-9")
    # THEN status, every header once (multi-valued kept), the decoded body
    assert response.status == 202
    assert ("Set-Cookie", "a=1") in response.headers
    assert ("Set-Cookie", "b=2") in response.headers
    assert [h for h in response.headers if h[0] == "X-One"] == [("X-One", "1")]
    assert ("x-amzn-RequestId", "req-9") in response.headers
    assert response.body == b'{"ok": true}'


@pytest.mark.parametrize(
    "result",
    [None, {}, {"statusCode": "200"}, {"statusCode": 200, "body": {"not": "a string"}}, "text"],
)
def test_malformed_proxy_responses_are_api_gateways_502(result: Any) -> None:
    response = http_response(result, "r")
    assert response.status == 502
    assert json.loads(response.body) == {"message": "Internal server error"}


class Recorder:
    """A handler that remembers its events and answers a fixed proxy response."""

    def __init__(self, answer: Any = None, fail: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer = answer or {
            "statusCode": 200,
            "headers": {"Content-Type": "application/json"},
            "body": '{"seen": true}',
        }
        self.fail = fail

    def __call__(self, event: dict[str, Any], _context: Any) -> Any:
        self.events.append(event)
        if self.fail:
            raise RuntimeError("boom")
        return self.answer


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.putrequest(method, path)
    for name, value in headers or []:
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(body or b"")))
    connection.endheaders(body)
    answer = connection.getresponse()
    data = answer.read()
    connection.close()
    return answer.status, dict(answer.getheaders()), data


def signed_request(
    url: str,
    method: str,
    path: str,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    *,
    key: tuple[str, str] = (ALICE.access_key_id, ALICE.secret_access_key),
    region: str = STAGE.region,
    unsigned: list[tuple[str, str]] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """``request`` signed by botocore with ``key``; ``unsigned`` headers are added after."""
    signed = signed_headers(
        method, url + path, access_key=key, region=region, body=body, headers=dict(headers or [])
    )
    return request(url, method, path, body, [*signed.items(), *(unsigned or [])])


def gateway(handler: Recorder, **changes: Any) -> LocalApiGateway:
    """The endpoint on a free port that knows Alice's key."""
    return LocalApiGateway(
        handler=handler,
        port=0,
        stage=STAGE,
        credentials={ALICE.access_key_id: ALICE},
        **changes,
    )


def test_http_round_trip_through_the_local_endpoint() -> None:
    # GIVEN the endpoint on a free port in front of a recording handler
    handler = Recorder()
    with gateway(handler) as api:
        # WHEN a signed GET with a repeated header and a signed POST arrive over HTTP
        status, headers, body = signed_request(
            api.url,
            "GET",
            "/deployments/d-1?limit=2",
            headers=[("User-Agent", "aws-cli/2.22.4")],
            unsigned=[("X-Tag", "a"), ("X-Tag", "b")],
        )
        post_status, _, _ = signed_request(
            api.url,
            "POST",
            "/services",
            b'{"selector":"blue"}',
            [("Content-Type", "application/json")],
        )
    # THEN the handler saw the proxy events and its answer came back
    assert (status, post_status) == (200, 200)
    assert body == b'{"seen": true}'
    assert headers["Content-Type"] == "application/json"
    get_event, post_event = handler.events
    assert get_event["resource"] == "/deployments/{id}"
    assert get_event["pathParameters"] == {"id": "d-1"}
    assert get_event["multiValueHeaders"]["X-Tag"] == ["a", "b"]
    assert get_event["headers"]["X-Tag"] == "b"
    assert get_event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    assert get_event["requestContext"]["identity"]["userArn"] == ALICE.user_arn
    assert post_event["body"] == '{"selector":"blue"}'
    assert post_event["requestContext"]["identity"]["userArn"] == ALICE.user_arn


def test_undefined_routes_get_the_gateways_403_without_calling_the_handler() -> None:
    handler = Recorder()
    with gateway(handler) as api:
        unknown = signed_request(api.url, "GET", "/nope")
        wrong_method = signed_request(api.url, "DELETE", "/services")
    for status, _, body in (unknown, wrong_method):
        assert status == 403
        assert json.loads(body) == {"message": "Missing Authentication Token"}
    assert handler.events == []


def test_a_raising_handler_is_a_502() -> None:
    with gateway(Recorder(fail=True)) as api:
        status, _, body = signed_request(api.url, "GET", "/services")
    assert status == 502
    assert json.loads(body) == {"message": "Internal server error"}


def test_control_paths_are_post_only_and_bypass_the_handler() -> None:
    # GIVEN a local-only control path
    handler = Recorder()
    got: list[bytes] = []

    def control(body: bytes) -> tuple[int, Any]:
        got.append(body)
        return 200, {"delivered": True}

    with gateway(handler, control_paths={"/_local/events": control}) as api:
        posted = signed_request(api.url, "POST", "/_local/events", b'{"id": "e"}')
        fetched = signed_request(api.url, "GET", "/_local/events")
        unsigned = request(api.url, "POST", "/_local/events", b'{"id": "forged"}')
    # THEN a signed POST reaches it, GET is refused, an unsigned POST too, and the API
    # handler saw nothing
    assert posted[0] == 200
    assert json.loads(posted[2]) == {"delivered": True}
    assert got == [b'{"id": "e"}']
    assert fetched[0] == 405
    assert unsigned[0] == 403
    assert json.loads(unsigned[2]) == {"message": "Missing Authentication Token"}
    assert handler.events == []


# -- SigV4, as API Gateway checks it ----------------------------------------------


def test_an_unsigned_request_is_missing_authentication_token() -> None:
    handler = Recorder()
    with gateway(handler) as api:
        status, headers, body = request(
            api.url,
            "POST",
            "/services",
            b'{"selector":"green"}',
            [("Content-Type", "application/json")],
        )
    assert status == 403
    assert json.loads(body) == {"message": "Missing Authentication Token"}
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert handler.events == []


def test_a_forged_signature_naming_a_known_key_is_refused() -> None:
    # GIVEN an Authorization header that names Alice's key with a made-up signature
    handler = Recorder()
    with gateway(handler) as api:
        status, _, body = request(
            api.url,
            "GET",
            "/services",
            headers=[("Authorization", SIGNED), ("X-Amz-Date", NOW.strftime("%Y%m%dT%H%M%SZ"))],
        )
        # AND one signed now, but with the wrong secret
        wrong_secret = signed_request(
            api.url, "GET", "/services", key=(ALICE.access_key_id, "not-alices-secret")
        )
    # THEN the first is refused for its date or signature, the second for its signature
    assert status == 403
    assert "Signature" in json.loads(body)["message"]
    assert wrong_secret[0] == 403
    message = json.loads(wrong_secret[2])["message"]
    assert message.startswith("The request signature we calculated does not match")
    assert wrong_secret[1]["x-amzn-ErrorType"] == "InvalidSignatureException"
    # AND the handler never ran, so nobody was recorded as Alice
    assert handler.events == []


def test_an_unknown_access_key_is_an_invalid_security_token() -> None:
    handler = Recorder()
    with gateway(handler) as api:
        status, headers, body = signed_request(
            api.url, "GET", "/services", key=("AKIANOBODYKNOWS0000", "whatever")
        )
    assert status == 403
    assert json.loads(body) == {"message": "The security token included in the request is invalid."}
    assert headers["x-amzn-ErrorType"] == "UnrecognizedClientException"
    assert handler.events == []


@pytest.mark.parametrize(
    ("method", "path", "body", "tamper"),
    [
        ("POST", "/services", b'{"selector":"blue"}', {"body": b'{"selector":"green"}'}),
        ("GET", "/images?limit=1", b"", {"path": "/images?limit=100"}),
        ("GET", "/deployments/a", b"", {"path": "/deployments/b"}),
        ("POST", "/rollback", b"", {"method": "GET", "path": "/services"}),
    ],
)
def test_a_signed_request_changed_on_the_way_is_refused(
    method: str, path: str, body: bytes, tamper: dict[str, Any]
) -> None:
    # GIVEN a request signed by Alice
    handler = Recorder()
    with gateway(handler) as api:
        signed = signed_headers(
            method,
            api.url + path,
            access_key=(ALICE.access_key_id, ALICE.secret_access_key),
            region=STAGE.region,
            body=body,
        )
        # WHEN its method, path, query or body is changed after signing
        status, _, answer = request(
            api.url,
            tamper.get("method", method),
            tamper.get("path", path),
            tamper.get("body", body),
            list(signed.items()),
        )
    # THEN the signature no longer matches
    assert status == 403
    assert json.loads(answer)["message"].startswith("The request signature we calculated")
    assert handler.events == []


def test_a_signature_older_than_five_minutes_has_expired() -> None:
    # GIVEN a gateway whose clock is six minutes past the signature
    handler = Recorder()
    later = datetime.now(UTC) + timedelta(minutes=6)
    with gateway(handler, clock=lambda: later) as api:
        status, headers, body = signed_request(api.url, "GET", "/services")
    assert status == 403
    assert json.loads(body)["message"].startswith("Signature expired: ")
    assert headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert handler.events == []


@pytest.mark.parametrize(
    ("region", "says"),
    [("eu-west-1", "scoped to a valid region"), ("us-west-2", None)],
)
def test_a_signature_scoped_to_another_region_is_refused(region: str, says: str | None) -> None:
    handler = Recorder()
    with gateway(handler) as api:
        status, _, body = signed_request(api.url, "GET", "/services", region=region)
    if says is None:
        assert status == 200
    else:
        assert status == 403
        assert says in json.loads(body)["message"]


def test_an_authorization_header_that_is_not_sigv4_is_incomplete() -> None:
    handler = Recorder()
    with gateway(handler) as api:
        status, headers, body = request(
            api.url, "GET", "/services", headers=[("Authorization", "Bearer abc")]
        )
    assert status == 403
    message = json.loads(body)["message"]
    assert "Authorization header requires 'Credential' parameter." in message
    assert headers["x-amzn-ErrorType"] == "IncompleteSignatureException"
    assert handler.events == []


# -- HTTP framing -----------------------------------------------------------------


def raw_exchange(url: str, raw: bytes) -> bytes:
    """Send ``raw`` bytes as they are and read the whole answer (the server closes)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(raw)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                break
    return answer


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "FROB"])
def test_a_method_no_route_has_is_the_gateways_403_not_a_501(method: str) -> None:
    handler = Recorder()
    with gateway(handler) as api:
        status, _, body = request(api.url, method, "/services")
    assert status == 403
    assert json.loads(body) == {"message": "Missing Authentication Token"}
    assert handler.events == []


@pytest.mark.parametrize("length", ["abc", "-5", "1e3"])
def test_an_unreadable_content_length_is_a_400(length: str) -> None:
    handler = Recorder()
    with gateway(handler) as api:
        answer = raw_exchange(
            api.url,
            f"POST /services HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode(),
        )
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request"
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {
        "message": "The request body's length cannot be read"
    }
    assert handler.events == []


def test_a_chunked_body_is_read_whole_and_signed_as_such() -> None:
    # GIVEN a signed POST whose body is sent in two chunks
    handler = Recorder()
    body = b'{"selector":"green"}'
    with gateway(handler) as api:
        host = api.url.removeprefix("http://")
        signed = signed_headers(
            "POST",
            api.url + "/services",
            access_key=(ALICE.access_key_id, ALICE.secret_access_key),
            region=STAGE.region,
            body=body,
            headers={"Content-Type": "application/json"},
        )
        head = "".join(f"{name}: {value}\r\n" for name, value in signed.items())
        chunks = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (8, body[:8], len(body) - 8, body[8:])
        answer = raw_exchange(
            api.url,
            f"POST /services HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
            f"Connection: close\r\n{head}\r\n".encode()
            + chunks,
        )
    # THEN the handler saw the whole body, from Alice
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert handler.events[0]["body"] == body.decode()
    assert handler.events[0]["requestContext"]["identity"]["userArn"] == ALICE.user_arn
