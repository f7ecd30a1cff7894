"""Who may call which route of the local API: IAM policies, judged by moto's engine.

API Gateway authorises a caller of an ``AWS_IAM`` method by evaluating the
caller's IAM policies for ``execute-api:Invoke`` on the request's method ARN,
``arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<METHOD>/<path>``.
This module supplies the documents and the decision for the local gateway:

- ``shipped_policies``: the managed policies ``template.yaml`` ships
  (read-only, operator, administrator), their ``!Sub`` ARNs resolved for the
  local stage;
- ``app_operator_policy``: the policy that lets someone operate one application
  (the ``/apps/<app>/...`` routes) and nothing else;
- ``decision`` / ``allowed``: IAM's rule over several documents (an explicit
  ``Deny`` in any wins, else an ``Allow`` in some, else an implicit deny), each
  document judged by moto's evaluator (``moto.iam.access_control.IAMPolicy``).

moto's evaluator differs from IAM in a few places; rather than misjudge a
document, ``check_identity_policy`` refuses the elements it does not evaluate
as IAM does: ``NotResource``, ``Condition``, ``Principal``/``NotPrincipal``
(an identity policy has none), a statement without ``Resource``, policy
variables and ``?`` or other characters moto's matcher would read as a regular
expression. Actions are lowercased on both sides before moto compares them, as
IAM compares actions case-insensitively (resources stay case-sensitive).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.utilities.utils import get_partition

from bluegreen.domain.apps import APP_NAME_PATTERN, APP_NAME_RULE
from local.aws import TEMPLATE, load_template

if TYPE_CHECKING:
    from local.apigw import Stage

INVOKE = "execute-api:Invoke"
"""The action API Gateway authorises for every call of an ``AWS_IAM`` method."""

SHIPPED_POLICIES = (
    "ServicesApiReadOnlyPolicy",
    "ServicesApiOperatorPolicy",
    "ServicesApiAdministratorPolicy",
)
"""The logical ids of the ``AWS::IAM::ManagedPolicy`` resources that grant the API."""

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
# Characters moto's matcher (``re.match`` after ``*`` -> ``.*``) would not read as IAM does.
# ``.`` is let through: it matches itself too, and an ARN of this API never needs it escaped.
_NOT_LITERAL = re.compile(r"[?+()\[\]{}|^$\\]")


def partition(stage: Stage) -> str:
    """The ARN partition of the stage's region (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    return str(get_partition(stage.region))


def stage_arn(stage: Stage) -> str:
    """``arn:aws:execute-api:<region>:<account>:<api-id>/<stage>``."""
    return (
        f"arn:{partition(stage)}:execute-api:{stage.region}:{stage.account}:"
        f"{stage.api_id}/{stage.stage}"
    )


def method_arn(stage: Stage, method: str, path: str) -> str:
    """The ARN API Gateway authorises for ``METHOD path`` (the request's path, e.g.
    ``.../Prod/POST/apps/checkout/promote``; ``/`` is ``.../Prod/GET/``)."""
    return f"{stage_arn(stage)}/{method.upper()}/{path.lstrip('/')}"


def _pseudo_parameters(stage: Stage) -> dict[str, str]:
    return {
        "AWS::Partition": partition(stage),
        "AWS::Region": stage.region,
        "AWS::AccountId": stage.account,
        "ServicesApi": stage.api_id,
        "ApiStageName": stage.stage,
    }


def _substitute(text: str, values: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):  # ${!Literal} is the literal ${Literal}
            return "${" + name[1:] + "}"
        if name not in values:
            raise ValueError(f"no local value for ${{{name}}} in a shipped policy")
        return values[name]

    return _SUB_VARIABLE.sub(one, text)


def _resolve(value: Any, values: Mapping[str, str]) -> Any:
    """``value`` with its ``Fn::Sub`` and ``Ref`` replaced; any other intrinsic is an error."""
    if isinstance(value, list):
        return [_resolve(item, values) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((name, argument),) = value.items()
        if name == "Fn::Sub":
            if isinstance(argument, str):
                return _substitute(argument, values)
            if isinstance(argument, list) and len(argument) == 2:
                text, extra = argument
                local = {**values, **{k: str(_resolve(v, values)) for k, v in extra.items()}}
                return _substitute(str(text), local)
            raise ValueError(f"unreadable Fn::Sub: {argument!r}")
        if name == "Ref":
            if argument not in values:
                raise ValueError(f"no local value for Ref {argument} in a shipped policy")
            return values[argument]
        if name.startswith("Fn::"):
            raise ValueError(f"{name} in a shipped policy cannot be resolved locally")
    return {key: _resolve(item, values) for key, item in value.items()}


def shipped_policies(stage: Stage, template: Path | str = TEMPLATE) -> dict[str, dict[str, Any]]:
    """The ``PolicyDocument`` of each of ``SHIPPED_POLICIES``, by logical id, for ``stage``."""
    resources = load_template(template).get("Resources") or {}
    policies: dict[str, dict[str, Any]] = {}
    for logical_id in SHIPPED_POLICIES:
        resource = resources.get(logical_id)
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::IAM::ManagedPolicy":
            raise ValueError(f"{template} has no AWS::IAM::ManagedPolicy {logical_id}")
        document = (resource.get("Properties") or {}).get("PolicyDocument")
        resolved = _resolve(document, _pseudo_parameters(stage))
        check_identity_policy(resolved)
        policies[logical_id] = resolved
    return policies


def app_operator_policy(stage: Stage, app: str) -> dict[str, Any]:
    """Operate one application: read it and call its ``/apps/<app>/...`` routes.

    ``GET /apps/<app>`` and every ``GET`` and ``POST`` under ``/apps/<app>/``
    (services, rollback, promote, images, deployments, resume, abort); not the
    registry's ``PUT``/``DELETE /apps/<app>``, nor another application, nor the
    un-prefixed routes of the stack's default application.
    """
    if not re.fullmatch(APP_NAME_PATTERN, app):
        raise ValueError(f"application name {app!r} {APP_NAME_RULE}")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OperateOneApplication",
                "Effect": "Allow",
                "Action": INVOKE,
                "Resource": [
                    method_arn(stage, "GET", f"/apps/{app}"),
                    method_arn(stage, "GET", f"/apps/{app}/*"),
                    method_arn(stage, "POST", f"/apps/{app}/*"),
                ],
            }
        ],
    }


def _strings(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def check_identity_policy(document: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` unless moto's engine judges ``document`` as IAM would."""
    if not isinstance(document, Mapping) or "Statement" not in document:
        raise ValueError(f"not an IAM policy document: {document!r}")
    for statement in _strings(document["Statement"]):
        if not isinstance(statement, Mapping):
            raise ValueError(f"not a policy statement: {statement!r}")
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise ValueError(f"Effect must be Allow or Deny: {statement!r}")
        unsupported = {"NotResource", "Condition", "Principal", "NotPrincipal"} & set(statement)
        if unsupported:
            names = ", ".join(sorted(unsupported))
            raise ValueError(f"{names}: not evaluated locally as IAM does: {statement!r}")
        if ("Action" in statement) == ("NotAction" in statement):
            raise ValueError(f"a statement needs one of Action and NotAction: {statement!r}")
        if not statement.get("Resource"):
            raise ValueError(f"a statement needs a Resource: {statement!r}")
        actions = _strings(statement.get("Action", statement.get("NotAction")))
        for pattern in [*actions, *_strings(statement["Resource"])]:
            if not isinstance(pattern, str) or _NOT_LITERAL.search(pattern):
                raise ValueError(
                    f"{pattern!r}: only literal text and * are matched locally as IAM does"
                )


def _for_moto(document: Mapping[str, Any]) -> str:
    """The document as moto reads it (JSON), its actions lowercased as IAM compares them."""
    statements = []
    for statement in _strings(document["Statement"]):
        statement = dict(statement)
        for element in ("Action", "NotAction"):
            if element in statement:
                statement[element] = [action.lower() for action in _strings(statement[element])]
        statements.append(statement)
    return json.dumps({**document, "Statement": statements})


def decision(policies: Iterable[Mapping[str, Any]], action: str, resource: str) -> PermissionResult:
    """IAM's answer for ``action`` on ``resource`` under the identity's ``policies``.

    ``DENIED`` when a statement of any document denies it explicitly,
    ``PERMITTED`` when none does and some allows it, else ``NEUTRAL`` (the
    implicit deny). Each document is judged by moto's ``IAMPolicy``.
    """
    permitted = False
    for document in policies:
        check_identity_policy(document)
        result = IAMPolicy(_for_moto(document)).is_action_permitted(action.lower(), resource)
        if result == PermissionResult.DENIED:
            return PermissionResult.DENIED
        if result == PermissionResult.PERMITTED:
            permitted = True
    return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


def allowed(policies: Iterable[Mapping[str, Any]], action: str, resource: str) -> bool:
    """Whether ``policies`` allow ``action`` on ``resource`` (no explicit deny, some allow)."""
    return bool(decision(policies, action, resource) == PermissionResult.PERMITTED)


__all__ = [
    "INVOKE",
    "SHIPPED_POLICIES",
    "PermissionResult",
    "allowed",
    "app_operator_policy",
    "check_identity_policy",
    "decision",
    "method_arn",
    "partition",
    "shipped_policies",
    "stage_arn",
]
