"""Reading template.yaml as CloudFormation would see it, for the template tests.

The template is parsed with cfn-lint's own YAML decoder (short-form intrinsics become
``{"Ref": ...}`` / ``{"Fn::GetAtt": [...]}`` dicts), and parameters are resolved from
their defaults (or from a samconfig.toml environment's overrides) the way a deploy
resolves them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

from local.aws import expand_for_each

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

ACCOUNT = "123456789012"
REGION = "us-west-2"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "eks-bluegreen-test",
}
_PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


@cache
def load_template() -> dict[str, Any]:
    """template.yaml as plain data (loaded once per test session), each ``Fn::ForEach`` of
    its resources made into the resources it makes with the parameters' defaults."""
    document = cfn_yaml.load(str(TEMPLATE))
    assert isinstance(document, dict), "template.yaml is not a mapping"
    document["Resources"] = expand_for_each(document)
    return document


def resources_of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one ``Type``, by logical id."""
    return {
        name: resource
        for name, resource in template["Resources"].items()
        if resource.get("Type") == kind
    }


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, str]:
    """Every parameter's default, as the string CloudFormation would pass on."""
    return {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}


def resolve(value: Any, parameters: Mapping[str, str]) -> Any:
    """Resolve ``Ref``/``Fn::Sub``/``Fn::GetAtt`` to the strings a deploy would produce.

    A resource's ``Ref`` becomes ``<LogicalId>-physical`` (tables, functions...) and a
    ``GetAtt`` ``<LogicalId>.<Attribute>``: distinct, recognisable stand-ins.
    """
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            if argument in parameters:
                return parameters[argument]
            if argument in PSEUDO:
                return PSEUDO[argument]
            return f"{argument}-physical"
        if function == "Fn::GetAtt":
            return ".".join(argument)
        if function == "Fn::Sub" and isinstance(argument, str):

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in parameters:
                    return parameters[name]
                if name in PSEUDO:
                    return PSEUDO[name]
                return name if "." in name else f"{name}-physical"

            return _PLACEHOLDER.sub(substitute, argument)
    if isinstance(value, dict):
        return {key: resolve(item, parameters) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, parameters) for item in value]
    return value


def function_environment(
    template: Mapping[str, Any], function: str, parameters: Mapping[str, str]
) -> dict[str, str]:
    """A function's environment as deployed: Globals merged with its own variables."""
    merged: dict[str, Any] = dict(
        template["Globals"]["Function"].get("Environment", {}).get("Variables", {})
    )
    own = template["Resources"][function]["Properties"].get("Environment", {})
    merged.update(own.get("Variables", {}))
    return {name: str(resolve(value, parameters)) for name, value in merged.items()}


def _both_branches(listed: list[Any]) -> list[Any]:
    # A conditional item counts with both of its branches (AWS::NoValue drops out).
    found: list[Any] = []
    for item in listed:
        if isinstance(item, dict) and set(item) == {"Fn::If"}:
            _, when_true, when_false = item["Fn::If"]
            found.extend(p for p in (when_true, when_false) if p != {"Ref": "AWS::NoValue"})
        else:
            found.append(item)
    return found


def own_role(resource: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``AWS::IAM::Role`` a function names in ``Role`` (None: SAM makes its role)."""
    role = resource["Properties"].get("Role")
    if not isinstance(role, dict) or "Fn::GetAtt" not in role:
        return None
    logical_id, attribute = role["Fn::GetAtt"]
    assert attribute == "Arn", role
    found: dict[str, Any] = load_template()["Resources"][logical_id]
    assert found["Type"] == "AWS::IAM::Role", logical_id
    return found


def policies(resource: Mapping[str, Any]) -> list[Any]:
    """The ``Policies`` of a SAM function or state machine, always as a list.

    For a function with its own role, the role's inline policy documents (as
    ``{"Statement": ...}``, as SAM writes inline policies).
    """
    role = own_role(resource)
    if role is not None:
        inline = _both_branches(role["Properties"].get("Policies", []))
        return [{"Statement": policy["PolicyDocument"]["Statement"]} for policy in inline]
    value = resource["Properties"].get("Policies", [])
    return _both_branches(value if isinstance(value, list) else [value])


def managed_policies(resource: Mapping[str, Any]) -> list[Any]:
    """The managed policy ARNs a function's own role carries, conditional ones included."""
    role = own_role(resource)
    if role is None:
        return []
    return _both_branches(role["Properties"].get("ManagedPolicyArns", []))


def statements(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The inline IAM statements among a resource's ``Policies``."""
    found: list[dict[str, Any]] = []
    for policy in policies(resource):
        if isinstance(policy, dict) and "Statement" in policy:
            body = policy["Statement"]
            found.extend(_both_branches(body if isinstance(body, list) else [body]))
    return found


def as_list(value: Any) -> list[Any]:
    """An IAM ``Action``/``Resource`` value as a list."""
    return value if isinstance(value, list) else [value]
