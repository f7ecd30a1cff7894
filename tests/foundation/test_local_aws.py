"""Tables built from template.yaml's own definitions (so tests and template cannot drift)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from local.aws import create_tables, load_template, table_definitions

TEMPLATE_WITH_TAGS = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Env: {Type: String}
Resources:
  Things:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "things-${Env}"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: k, AttributeType: S}]
      KeySchema: [{AttributeName: k, KeyType: HASH}]
      TimeToLiveSpecification: {AttributeName: gone_at, Enabled: true}
  Fixed:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: fixed-name
      AttributeDefinitions: [{AttributeName: k, AttributeType: S}]
      KeySchema: [{AttributeName: k, KeyType: HASH}]
      ProvisionedThroughput: {ReadCapacityUnits: 1, WriteCapacityUnits: 1}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Role: !GetAtt Things.Arn
      Policies: [!Ref Things]
      Env: !If [IsProd, !Ref Env, !Ref "AWS::NoValue"]
"""


def test_the_ledger_table_matches_the_key_design(dynamodb: Any, tables: dict[str, str]) -> None:
    # WHEN the template's tables exist on moto
    table = dynamodb.describe_table(TableName=tables["LedgerTable"])["Table"]
    # THEN they have the shape the ledger's key design needs
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
        "PK": "HASH",
        "SK": "RANGE",
    }
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"GSI1", "GSI2"}
    for name, index in indexes.items():
        assert [k["AttributeName"] for k in index["KeySchema"]] == [f"{name}PK", f"{name}SK"]
        assert index["Projection"]["ProjectionType"] == "ALL"
    ttl = dynamodb.describe_time_to_live(TableName=tables["LedgerTable"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "ttl"


def test_the_idempotency_table_has_powertools_default_schema(
    dynamodb: Any, tables: dict[str, str]
) -> None:
    table = dynamodb.describe_table(TableName=tables["IdempotencyTable"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    ttl = dynamodb.describe_time_to_live(TableName=tables["IdempotencyTable"])
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expiration"


def test_cloudformation_tags_load_and_names_resolve(dynamodb: Any, tmp_path: Path) -> None:
    # GIVEN a template with short-form intrinsic functions
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE_WITH_TAGS)
    # WHEN it is loaded
    template = load_template(path)
    # THEN tags become intrinsic dicts, and only tables are table definitions
    function = template["Resources"]["Fn"]["Properties"]
    assert function["Role"] == {"Fn::GetAtt": ["Things", "Arn"]}
    assert function["Policies"] == [{"Ref": "Things"}]
    assert set(table_definitions(template)) == {"Things", "Fixed"}
    # WHEN its tables are created THEN an intrinsic TableName falls back to ``names``,
    # a literal one is kept, and creating twice is harmless
    names = create_tables(dynamodb, path, names={"Things": "things-local"})
    assert names == {"Things": "things-local", "Fixed": "fixed-name"}
    assert create_tables(dynamodb, path, names={"Things": "things-local"}) == names
    ttl = dynamodb.describe_time_to_live(TableName="things-local")
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "gone_at"
