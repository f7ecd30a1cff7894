"""AWS resources of the stack, built on moto from template.yaml's own definitions.

Tests, the local stack and the demo create their DynamoDB tables here, from the
``AWS::DynamoDB::Table`` resources of ``template.yaml`` (key schema, attribute
definitions, GSIs, TTL), so that code tested locally and the deployed tables
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bluegreen.config import Settings

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"

TABLE_NAMES: Mapping[str, str] = {
    "LedgerTable": Settings().ledger_table,
    "IdempotencyTable": Settings().idempotency_table,
}
"""Physical names used locally for the template's tables (the defaults of ``Settings``)."""


class _CloudFormationLoader(yaml.SafeLoader):
    """A safe YAML loader that reads CloudFormation short tags (``!Ref``, ``!Sub`` ...)."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path | str = TEMPLATE, *, expand: bool = True) -> dict[str, Any]:
    """template.yaml as plain data; intrinsic functions become ``{"Fn::X": ...}`` dicts.

    ``expand``: each ``Fn::ForEach`` of ``Resources`` (AWS::LanguageExtensions) replaced by
    the resources it makes with the parameters' defaults, as CloudFormation makes them,
    so that every resource is a resource to the tools reading it.
    """
    document = yaml.load(Path(path).read_text(), Loader=_CloudFormationLoader)  # noqa: S506
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    if expand and isinstance(document.get("Resources"), dict):
        document["Resources"] = expand_for_each(document)
    return document


_FOR_EACH = "Fn::ForEach::"


def expand_for_each(template: Mapping[str, Any]) -> dict[str, Any]:
    """The template's resources, each ``Fn::ForEach`` replaced by what it makes with the
    parameters' defaults (a ``Ref`` collection is a CommaDelimitedList parameter)."""
    parameters = template.get("Parameters") or {}
    expanded: dict[str, Any] = {}
    for key, value in template["Resources"].items():
        if not key.startswith(_FOR_EACH):
            expanded[key] = value
            continue
        name, collection, body = value
        if isinstance(collection, dict) and set(collection) == {"Ref"}:
            default = str(parameters[collection["Ref"]].get("Default", ""))
            collection = default.split(",")
        for item in collection:
            for logical_id, resource in body.items():
                made = _replaced(resource, name, str(item))
                expanded[_replaced(logical_id, name, str(item))] = made
    return expanded


def _replaced(value: Any, name: str, item: str) -> Any:
    """``value`` with the loop's identifier ``name`` as ``item`` (``Ref``, ``${}``, ``&{}``)."""
    if isinstance(value, str):
        alphanumeric = "".join(c for c in item if c.isalnum())
        return value.replace(f"${{{name}}}", item).replace(f"&{{{name}}}", alphanumeric)
    if isinstance(value, list):
        return [_replaced(v, name, item) for v in value]
    if isinstance(value, dict):
        if value == {"Ref": name}:
            return item
        return {k: _replaced(v, name, item) for k, v in value.items()}
    return value


def table_definitions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The properties of every ``AWS::DynamoDB::Table`` of the template, by logical id."""
    resources = template.get("Resources", {})
    return {
        logical_id: dict(resource.get("Properties", {}))
        for logical_id, resource in resources.items()
        if isinstance(resource, dict) and resource.get("Type") == "AWS::DynamoDB::Table"
    }


def create_table_request(properties: Mapping[str, Any], table_name: str) -> dict[str, Any]:
    """The ``CreateTable`` request for one template table (same keys, indexes, billing)."""
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = properties.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        )
    indexes = properties.get("GlobalSecondaryIndexes")
    if indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index["IndexName"],
                "KeySchema": index["KeySchema"],
                "Projection": index.get("Projection", {"ProjectionType": "ALL"}),
                **(
                    {"ProvisionedThroughput": index["ProvisionedThroughput"]}
                    if "ProvisionedThroughput" in index
                    else {}
                ),
            }
            for index in indexes
        ]
    return request


def create_tables(
    dynamodb_client: Any,
    template_path: Path | str = TEMPLATE,
    names: Mapping[str, str] = TABLE_NAMES,
) -> dict[str, str]:
    """Create every DynamoDB table of the template; returns logical id -> table name.

    A table whose ``TableName`` is a plain string keeps it; otherwise the name
    comes from ``names`` (by logical id), else the logical id itself. Tables
    that already exist are left as they are, so calling this twice is harmless.
    """
    created: dict[str, str] = {}
    # ListTables answers 100 names a page: a moto account that many tests share holds more.
    existing = {
        name
        for page in dynamodb_client.get_paginator("list_tables").paginate()
        for name in page.get("TableNames", [])
    }
    for logical_id, properties in table_definitions(load_template(template_path)).items():
        given = properties.get("TableName")
        table_name = given if isinstance(given, str) else names.get(logical_id, logical_id)
        created[logical_id] = table_name
        if table_name in existing:
            continue
        dynamodb_client.create_table(**create_table_request(properties, table_name))
        ttl = properties.get("TimeToLiveSpecification")
        if isinstance(ttl, dict) and ttl.get("Enabled") in (True, "true", "True"):
            dynamodb_client.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
    return created
