"""The promotions' store on DynamoDB (moto): a gate's decision lands once, an abort once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bluegreen.adapters.promotions import DynamoPromotions
from bluegreen.domain.promotion import FlipBack
from local.aws import create_tables


@pytest.fixture
def store() -> Iterator[DynamoPromotions]:
    with mock_aws():
        client: Any = boto3.client("dynamodb", region_name="us-west-2")
        create_tables(client)
        promotions = DynamoPromotions("bluegreen-ledger", client, "wp-platform")
        promotions.save("p-1", {"status": "measure", "step": 1})
        yield promotions


def test_of_two_decisions_about_one_gate_exactly_one_lands(store: DynamoPromotions) -> None:
    # GIVEN the flow waits at a gate
    assert store.open_gate("p-1", "token-1", "step 2 pauses for a person")

    # WHEN a resume and an abort arrive, both having seen it wait
    first = store.close_gate("p-1", 1, "resume", "alice")
    second = store.close_gate("p-1", 1, "abort", "bob")

    # THEN only the first gets the token to send; its decision alone is kept
    assert (first, second) == ("token-1", None)
    record = store.record("p-1")
    assert record is not None
    assert [(g.decision, g.actor) for g in record.gates] == [("resume", "alice")]


def test_an_abort_asked_before_the_gate_opens_keeps_it_shut(store: DynamoPromotions) -> None:
    # GIVEN an abort asked while the promotion was analysing
    assert store.request_abort("p-1", "bob", "wrong build")
    assert not store.request_abort("p-1", "carol")  # asked once only

    # WHEN the flow then reaches a gate
    opened = store.open_gate("p-1", "token-1", "step 2 pauses for a person")

    # THEN it does not open: the flow backs out instead
    assert opened is False
    record = store.record("p-1")
    assert record is not None
    assert (record.waiting, record.abort_requested_by) == ("", "bob")


def test_the_flip_back_window_is_taken_once(store: DynamoPromotions) -> None:
    store.keep_flip_back(
        FlipBack(
            "p-1",
            "blue",
            "green",
            "repo@sha256:" + "a" * 64,
            "sha256:" + "b" * 64,
            datetime.now(UTC) + timedelta(hours=1),
        )
    )
    assert store.take_flip_back("p-1") is True
    assert store.take_flip_back("p-1") is False
    assert store.flip_back() is None
