"""Fixtures of the foundation tests: moto tables built from template.yaml, a movable clock.

The moto account and its tables live for a whole test module (creating them
dominates a test's time); each test gets a ledger of its own application name,
and the ledger keys every item by application, so tests never see each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bluegreen.adapters.ledger import DynamoLedger
from local.aws import create_tables

REPO = "rezfusion-cloud"
REGION = "us-west-2"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    """An in-process moto account (each DynamoDB request atomic: ``local.dynamodb``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        with mock_aws():
            yield


@pytest.fixture(scope="module")
def dynamodb(aws: None) -> Any:
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture(scope="module")
def tables(dynamodb: Any) -> dict[str, str]:
    return create_tables(dynamodb)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 16, 1, 0, tzinfo=UTC))


@pytest.fixture
def app_name() -> str:
    return f"app-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ledger(dynamodb: Any, tables: dict[str, str], clock: Clock, app_name: str) -> DynamoLedger:
    return DynamoLedger(tables["LedgerTable"], dynamodb, app_name, repository=REPO, clock=clock)
