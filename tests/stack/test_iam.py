"""IAM policies on the local API Gateway: who may invoke which route, judged by moto's engine."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.apigw import LocalApiGateway, LocalCredential, routes_from_template
from local.iam import (
    INVOKE,
    allowed,
    app_operator_policy,
    check_identity_policy,
    method_arn,
    shipped_policies,
    stage_arn,
)
from tests.stack.test_apigw import STAGE, Recorder, signed_request

ARN_PREFIX = "arn:aws:execute-api:us-west-2:123456789012:a1b2c3d4e5/prod"
SHIPPED = shipped_policies(STAGE)


def identity(name: str, *policies: dict[str, Any]) -> LocalCredential:
    return LocalCredential(
        f"AKIAEXAMPLE{name.upper()}",
        f"{name}-secret",
        f"arn:aws:iam::123456789012:user/{name}",
        policies=policies,
    )


ALICE = identity("alice", app_operator_policy(STAGE, "checkout"))
VIEWER = identity("viewer", SHIPPED["ServicesApiReadOnlyPolicy"])
OPS = identity("ops", SHIPPED["ServicesApiOperatorPolicy"])
ADMIN = identity("admin", SHIPPED["ServicesApiAdministratorPolicy"])

Call = tuple[str, str]
Answer = tuple[int, dict[str, str], Any]


def calls(caller: LocalCredential, *requests: Call) -> tuple[list[Answer], list[Call]]:
    """Each request signed by ``caller``; the answers, and the calls the handler received."""
    handler = Recorder()
    api = LocalApiGateway(
        handler=handler,
        port=0,
        stage=STAGE,
        routes=routes_from_template(),
        credentials={caller.access_key_id: caller},
    )
    answers: list[Answer] = []
    with api:
        for method, path in requests:
            body = b"{}" if method in ("POST", "PUT") else b""
            status, headers, data = signed_request(
                api.url,
                method,
                path,
                body,
                [("Content-Type", "application/json")] if body else None,
                key=(caller.access_key_id, caller.secret_access_key),
            )
            answers.append((status, headers, json.loads(data)))
    return answers, [(event["httpMethod"], event["path"]) for event in handler.events]


def refusal(caller: LocalCredential, method: str, path: str, explicit: bool = False) -> Any:
    """API Gateway's body for an AWS_IAM method the caller may not invoke."""
    message = (
        f"User: {caller.user_arn} is not authorized to perform: execute-api:Invoke "
        f"on resource: {ARN_PREFIX}/{method}{path}"
    )
    return {"Message": message + (" with an explicit deny" if explicit else "")}


def assert_refused(answers: list[Answer], caller: LocalCredential, denied: list[Call]) -> None:
    assert len(answers) == len(denied)
    for (status, headers, body), (method, path) in zip(answers, denied, strict=True):
        assert (status, body) == (403, refusal(caller, method, path))
        assert headers["x-amzn-ErrorType"] == "AccessDeniedException"
        assert headers["Content-Type"] == "application/json"


def test_an_application_operator_calls_only_its_applications_routes() -> None:
    # GIVEN alice, who may operate the checkout application and nothing else
    permitted = [("POST", "/apps/checkout/promote"), ("GET", "/apps/checkout/services")]
    denied = [
        ("POST", "/apps/payments/promote"),  # another application
        ("POST", "/promote"),  # the default application's un-prefixed route
        ("PUT", "/apps/checkout"),  # the registry's change of her own application
    ]
    # WHEN she calls all of them
    answers, handled = calls(ALICE, *permitted, *denied)
    # THEN only her application's routes reached the handler
    assert handled == permitted
    assert [status for status, _, _ in answers[:2]] == [200, 200]
    # AND the others are API Gateway's 403 naming her and the method ARN
    assert_refused(answers[2:], ALICE, denied)
    assert answers[2][2] == {
        "Message": "User: arn:aws:iam::123456789012:user/alice is not authorized to perform: "
        "execute-api:Invoke on resource: "
        "arn:aws:execute-api:us-west-2:123456789012:a1b2c3d4e5/prod/POST/apps/payments/promote"
    }


def test_the_read_only_policy_reads_everything_and_changes_nothing() -> None:
    permitted = [
        ("GET", "/services"),
        ("GET", "/apps"),
        ("GET", "/apps/x"),
        ("GET", "/apps/x/deployments/abc/timeline"),
        ("GET", "/deployments/abc/timeline"),
        ("GET", "/images"),
    ]
    denied = [
        ("POST", "/services"),
        ("POST", "/apps/x/promote"),
        ("POST", "/deployments/abc/abort"),
        ("PUT", "/apps/x"),
        ("DELETE", "/apps/x"),
    ]
    answers, handled = calls(VIEWER, *permitted, *denied)
    assert handled == permitted
    assert {status for status, _, _ in answers[: len(permitted)]} == {200}
    assert_refused(answers[len(permitted) :], VIEWER, denied)


def test_the_operator_policy_operates_every_application_but_not_the_registry() -> None:
    permitted = [
        ("POST", "/apps/any/services"),
        ("POST", "/apps/any/deployments/abc/resume"),
        ("POST", "/services"),
        ("POST", "/promote"),
        ("GET", "/apps/any"),
    ]
    denied = [("PUT", "/apps/any"), ("DELETE", "/apps/any")]
    answers, handled = calls(OPS, *permitted, *denied)
    assert handled == permitted
    assert {status for status, _, _ in answers[: len(permitted)]} == {200}
    assert_refused(answers[len(permitted) :], OPS, denied)


def test_the_administrator_policy_changes_the_registry_but_operates_nothing() -> None:
    permitted = [("PUT", "/apps/any"), ("DELETE", "/apps/any"), ("GET", "/apps")]
    denied = [("POST", "/apps/any/promote"), ("POST", "/services")]
    answers, handled = calls(ADMIN, *permitted, *denied)
    assert handled == permitted
    assert {status for status, _, _ in answers[: len(permitted)]} == {200}
    assert_refused(answers[len(permitted) :], ADMIN, denied)


def test_an_explicit_deny_on_one_application_beats_an_allow_on_everything() -> None:
    # GIVEN a policy allowing every route, and another denying one application's
    allow_all = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "execute-api:*", "Resource": "*"}],
    }
    deny_payments = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Deny",
            "Action": INVOKE,
            "Resource": f"{stage_arn(STAGE)}/*/apps/payments/*",
        },
    }
    carol = identity("carol", allow_all, deny_payments)
    # WHEN carol calls both applications
    answers, handled = calls(
        carol, ("POST", "/apps/checkout/promote"), ("POST", "/apps/payments/promote")
    )
    # THEN the denied application's route never reached the handler
    assert handled == [("POST", "/apps/checkout/promote")]
    assert answers[0][0] == 200
    status, headers, body = answers[1]
    assert status == 403
    assert body == refusal(carol, "POST", "/apps/payments/promote", explicit=True)
    assert headers["x-amzn-ErrorType"] == "AccessDeniedException"


def test_a_key_without_policies_is_not_restricted() -> None:
    unrestricted = LocalCredential(
        "AKIAEXAMPLEME", "me-secret", "arn:aws:iam::123456789012:user/me"
    )
    routes = [("PUT", "/apps/any"), ("POST", "/promote"), ("POST", "/apps/x/promote")]
    answers, handled = calls(unrestricted, *routes)
    assert handled == routes
    assert {status for status, _, _ in answers} == {200}


def test_a_key_with_no_policy_at_all_may_call_nothing() -> None:
    # GIVEN an identity with policies, but none of them (IAM's implicit deny)
    nobody = identity("nobody")
    answers, handled = calls(nobody, ("GET", "/services"))
    assert handled == []
    assert_refused(answers, nobody, [("GET", "/services")])


def test_control_paths_need_the_policies_too() -> None:
    # GIVEN a local-only control path, and alice, whose policy does not name it
    seen: list[bytes] = []

    def control(body: bytes) -> tuple[int, Any]:
        seen.append(body)
        return 200, {"ok": True}

    api = LocalApiGateway(
        handler=Recorder(),
        port=0,
        stage=STAGE,
        control_paths={"/_local/push": control},
        credentials={ALICE.access_key_id: ALICE},
    )
    with api:
        status, _, body = signed_request(
            api.url, "POST", "/_local/push", b"{}", key=(ALICE.access_key_id, "alice-secret")
        )
    assert (status, json.loads(body)) == (403, refusal(ALICE, "POST", "/_local/push"))
    assert seen == []


# -- the policies themselves ---------------------------------------------------------------


def test_method_arns_are_api_gateways() -> None:
    assert method_arn(STAGE, "post", "/apps/checkout/promote") == (
        "arn:aws:execute-api:us-west-2:123456789012:a1b2c3d4e5/prod/POST/apps/checkout/promote"
    )
    assert method_arn(STAGE, "GET", "/") == f"{ARN_PREFIX}/GET/"


def test_shipped_policies_are_resolved_for_the_local_stage() -> None:
    assert set(SHIPPED) == {
        "ServicesApiReadOnlyPolicy",
        "ServicesApiOperatorPolicy",
        "ServicesApiAdministratorPolicy",
    }
    for document in SHIPPED.values():
        for statement in document["Statement"]:
            assert statement["Action"] == INVOKE
            for resource in statement["Resource"]:
                assert resource.startswith(f"{ARN_PREFIX}/"), resource
                assert "${" not in resource


def test_the_application_operator_policy() -> None:
    policy = app_operator_policy(STAGE, "checkout")
    assert policy["Statement"][0]["Resource"] == [
        f"{ARN_PREFIX}/GET/apps/checkout",
        f"{ARN_PREFIX}/GET/apps/checkout/*",
        f"{ARN_PREFIX}/POST/apps/checkout/*",
    ]
    # A look-alike application is another application.
    assert not allowed([policy], INVOKE, f"{ARN_PREFIX}/POST/apps/checkout2/promote")
    assert not allowed([policy], INVOKE, f"{ARN_PREFIX}/GET/apps/checkout2")
    for name in ("*", "check/out", "Checkout", "", "a?"):
        with pytest.raises(ValueError, match="application name"):
            app_operator_policy(STAGE, name)


def test_actions_compare_case_insensitively_as_in_iam() -> None:
    lower = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "execute-api:invoke", "Resource": "*"}],
    }
    assert allowed([lower], INVOKE, f"{ARN_PREFIX}/GET/services")
    # Resources do not: IAM compares them as written.
    assert not allowed(
        [app_operator_policy(STAGE, "checkout")], INVOKE, f"{ARN_PREFIX}/GET/APPS/checkout"
    )


@pytest.mark.parametrize(
    ("statement", "says"),
    [
        ({"Effect": "Allow", "Action": INVOKE, "NotResource": "*"}, "NotResource"),
        (
            {
                "Effect": "Allow",
                "Action": INVOKE,
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            },
            "Condition",
        ),
        ({"Effect": "Allow", "Action": INVOKE, "Resource": "*", "Principal": "*"}, "Principal"),
        ({"Effect": "Allow", "Action": INVOKE}, "needs a Resource"),
        ({"Effect": "Maybe", "Action": INVOKE, "Resource": "*"}, "Allow or Deny"),
        ({"Effect": "Allow", "Resource": "*"}, "Action and NotAction"),
        (
            {"Effect": "Deny", "Action": INVOKE, "Resource": f"{ARN_PREFIX}/*/${{aws:username}}"},
            "only literal text",
        ),
        ({"Effect": "Deny", "Action": INVOKE, "Resource": f"{ARN_PREFIX}/GET/?"}, "literal text"),
    ],
)
def test_documents_moto_would_misjudge_are_refused(statement: dict[str, Any], says: str) -> None:
    # moto would read these otherwise than IAM (e.g. a NotResource as any resource, a ? or a
    # policy variable as a regular expression): refused when the key is made, not misjudged.
    document = {"Version": "2012-10-17", "Statement": [statement]}
    with pytest.raises(ValueError, match=says):
        check_identity_policy(document)
    with pytest.raises(ValueError, match=says):
        identity("mallory", document)
