"""The DynamoDB ledger against moto, on tables built from template.yaml."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bluegreen.adapters.ledger import DynamoLedger, new_deployment_id
from bluegreen.domain.errors import InvalidInput, NotFound
from bluegreen.domain.models import Colour, Deployment, Digest, Outcome, Role, Verdict
from tests.foundation.conftest import REPO, Clock

T0 = datetime(2026, 11, 16, 1, 0, tzinfo=UTC)


def digest(n: int) -> Digest:
    return Digest(f"{n:064x}")


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def deployment(
    ledger: DynamoLedger, deployment_id: str, started: datetime, to: Digest | None = None
) -> Deployment:
    return Deployment(
        id=deployment_id,
        application=ledger.application,
        action="deploy",
        role=Role.CANARY,
        colour=Colour.BLUE,
        to_digest=to or digest(1),
        from_digest=digest(99),
        trigger="push",
        actor="ecr",
        started_at=started,
        tag="dev",
    )


def race(worker: Callable[[int], object], workers: list[int]) -> None:
    """Run ``worker(n)`` for every n at once; re-raise the first failure of any thread."""
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(n: int) -> None:
        start.wait()
        try:
            worker(n)
        except BaseException as exc:  # surfaced in the test below, not lost with the thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# images -------------------------------------------------------------------------------


def test_a_tagged_push_is_recorded_with_its_tag_time_and_event(ledger: DynamoLedger) -> None:
    # GIVEN an empty ledger
    # WHEN a tagged push is recorded
    record = ledger.record_push(digest(1), "dev", at(0), "event-1")
    # THEN the image carries digest, tag, push time, event id and repository
    assert record.digest == digest(1)
    assert record.tags == frozenset({"dev"})
    assert record.pushed_at == at(0)
    assert record.event_id == "event-1"
    assert record.repository == REPO
    assert record.verdict is Verdict.UNKNOWN
    assert ledger.image(digest(1)) == record
    assert ledger.digest_for_tag("dev") == digest(1)


def test_an_untagged_push_is_recorded_without_tags(ledger: DynamoLedger) -> None:
    # WHEN a push without a tag is recorded
    record = ledger.record_push(digest(2), None, at(0), "event-2")
    # THEN the image exists with no tags, and is listed
    assert record.tags == frozenset()
    assert [image.digest for image in ledger.images()[0]] == [digest(2)]


def test_a_second_tag_for_the_same_digest_merges_tags(ledger: DynamoLedger) -> None:
    # GIVEN a digest pushed as "dev"
    ledger.record_push(digest(1), "dev", at(0), "event-1")
    # WHEN the same digest is pushed again as "release"
    record = ledger.record_push(digest(1), "release", at(5), "event-2")
    # THEN it has both tags, keeps its first push time and event, and is one image
    assert record.tags == frozenset({"dev", "release"})
    assert record.pushed_at == at(0)
    assert record.event_id == "event-1"
    assert len(ledger.images()[0]) == 1


def test_recording_the_same_push_twice_changes_nothing(ledger: DynamoLedger) -> None:
    # GIVEN a recorded push
    first = ledger.record_push(digest(1), "dev", at(0), "event-1")
    # WHEN the same push is recorded again (a redelivery)
    second = ledger.record_push(digest(1), "dev", at(0), "event-1")
    # THEN the record is the same and still one image
    assert second == first
    assert len(ledger.images()[0]) == 1


def test_a_tag_follows_the_newest_push_and_leaves_the_older_digest(
    ledger: DynamoLedger,
) -> None:
    # GIVEN "dev" pushed for digest 1
    ledger.record_push(digest(1), "dev", at(0), "event-1")
    # WHEN "dev" is pushed for digest 2
    ledger.record_push(digest(2), "dev", at(1), "event-2")
    # THEN "dev" points at digest 2, and digest 1 no longer carries the tag
    assert ledger.digest_for_tag("dev") == digest(2)
    old = ledger.image(digest(1))
    assert old is not None
    assert old.tags == frozenset()
    new = ledger.image(digest(2))
    assert new is not None
    assert new.tags == frozenset({"dev"})


def test_a_late_delivery_of_an_older_push_does_not_move_the_tag_back(
    ledger: DynamoLedger,
) -> None:
    # GIVEN "dev" -> digest 2 pushed at minute 5
    ledger.record_push(digest(2), "dev", at(5), "event-new")
    # WHEN the event of an older push "dev" -> digest 1 (minute 1) arrives late
    late = ledger.record_push(digest(1), "dev", at(1), "event-old")
    # THEN the image is recorded but "dev" still points at digest 2
    assert late.tags == frozenset()
    assert ledger.digest_for_tag("dev") == digest(2)
    assert {image.digest for image in ledger.images()[0]} == {digest(1), digest(2)}


def seen(seconds: float) -> datetime:
    """When the registry was asked where a tag points (a moment just after the pushes)."""
    return at(0) + timedelta(seconds=seconds)


def carrying(ledger: DynamoLedger, tag: str) -> set[Digest]:
    return {image.digest for image in ledger.images()[0] if tag in image.tags}


def test_a_confirmed_push_takes_a_tag_tied_by_push_time(ledger: DynamoLedger) -> None:
    # GIVEN "dev" -> digest 1, confirmed by the registry, pushed in the same second as...
    ledger.record_push(digest(1), "dev", at(0), "event-1", confirmed_at=seen(1))
    # WHEN ...digest 2's push, confirmed later (the registry now says digest 2)
    record = ledger.record_push(digest(2), "dev", at(0), "event-2", confirmed_at=seen(2))
    # THEN the tie goes to the later confirmation, and only digest 2 carries the tag
    assert ledger.digest_for_tag("dev") == digest(2)
    assert record.tags == frozenset({"dev"})
    assert carrying(ledger, "dev") == {digest(2)}


def test_a_confirmed_push_takes_a_tie_from_an_unconfirmed_one(ledger: DynamoLedger) -> None:
    # GIVEN "dev" -> digest 1 recorded by push time alone (the registry did not answer)
    ledger.record_push(digest(1), "dev", at(0), "event-1")
    # WHEN a same-second push of digest 2 arrives that the registry confirms
    ledger.record_push(digest(2), "dev", at(0), "event-2", confirmed_at=seen(2))
    # THEN the tag moves to digest 2
    assert ledger.digest_for_tag("dev") == digest(2)
    assert carrying(ledger, "dev") == {digest(2)}


def test_an_earlier_confirmation_never_takes_a_tied_tag_back(ledger: DynamoLedger) -> None:
    # GIVEN "dev" -> digest 2, confirmed at second 2
    ledger.record_push(digest(2), "dev", at(0), "event-2", confirmed_at=seen(2))
    # WHEN the write of a same-second push of digest 1, confirmed before that, lands last
    late = ledger.record_push(digest(1), "dev", at(0), "event-1", confirmed_at=seen(1))
    # THEN the tag stays where the later look at the registry found it
    assert ledger.digest_for_tag("dev") == digest(2)
    assert late.tags == frozenset()
    assert carrying(ledger, "dev") == {digest(2)}


def test_an_unconfirmed_push_never_takes_a_tie_from_a_confirmed_one(
    ledger: DynamoLedger,
) -> None:
    # GIVEN "dev" -> digest 1, confirmed
    ledger.record_push(digest(1), "dev", at(0), "event-1", confirmed_at=seen(1))
    # WHEN a same-second push of digest 2 arrives unconfirmed
    ledger.record_push(digest(2), "dev", at(0), "event-2")
    # THEN the confirmed digest keeps the tag
    assert ledger.digest_for_tag("dev") == digest(1)
    assert carrying(ledger, "dev") == {digest(1)}


def test_a_confirmation_does_not_outrank_a_newer_push(ledger: DynamoLedger) -> None:
    # GIVEN "dev" -> digest 2 pushed at minute 1
    ledger.record_push(digest(2), "dev", at(1), "event-2")
    # WHEN an older push (minute 0) arrives confirmed (its own re-push is still on the way)
    ledger.record_push(digest(1), "dev", at(0), "event-1", confirmed_at=at(2))
    # THEN the newer push keeps the tag; only a tie is the registry's to break
    assert ledger.digest_for_tag("dev") == digest(2)
    assert carrying(ledger, "dev") == {digest(2)}


def test_a_confirmed_redelivery_changes_nothing(ledger: DynamoLedger) -> None:
    # GIVEN "dev" moved from digest 1 to a confirmed digest 2
    ledger.record_push(digest(1), "dev", at(0), "event-1")
    first = ledger.record_push(digest(2), "dev", at(1), "event-2", confirmed_at=at(1.5))
    # WHEN the same push is delivered and confirmed again
    second = ledger.record_push(digest(2), "dev", at(1), "event-2", confirmed_at=at(1.6))
    # THEN the record and the tags are as they were
    assert second == first
    assert ledger.digest_for_tag("dev") == digest(2)
    assert carrying(ledger, "dev") == {digest(2)}


def test_concurrent_same_second_confirmed_pushes_end_on_the_latest_confirmation(
    ledger: DynamoLedger,
) -> None:
    # GIVEN "dev" pushed for six digests within one second, each confirmed at its own moment,
    # their writes landing at once in mixed order
    def push(n: int) -> None:
        ledger.record_push(digest(n + 1), "dev", at(0), f"event-{n}", confirmed_at=seen(n + 1))

    race(push, [3, 0, 5, 1, 4, 2])
    # THEN the tag is on the digest confirmed last, and only there
    assert ledger.digest_for_tag("dev") == digest(6)
    assert carrying(ledger, "dev") == {digest(6)}


def test_an_untagged_push_cannot_be_confirmed(ledger: DynamoLedger) -> None:
    with pytest.raises(InvalidInput, match="confirmed_at"):
        ledger.record_push(digest(1), None, at(0), "event-1", confirmed_at=seen(1))
    assert ledger.image(digest(1)) is None


def test_a_tag_moved_back_to_an_earlier_digest_sits_only_there(ledger: DynamoLedger) -> None:
    # GIVEN "dev" pushed for digest 1, then 2, then 1 again
    ledger.record_push(digest(1), "dev", at(0), "event-1")
    ledger.record_push(digest(2), "dev", at(1), "event-2")
    ledger.record_push(digest(1), "dev", at(2), "event-3")
    # THEN "dev" is on digest 1 only
    assert ledger.digest_for_tag("dev") == digest(1)
    tagged = {image.digest: image.tags for image in ledger.images()[0]}
    assert tagged == {digest(1): frozenset({"dev"}), digest(2): frozenset()}


def test_a_late_earlier_push_of_a_digest_dates_it_back(ledger: DynamoLedger) -> None:
    # GIVEN digest 2 pushed at minute 5 as "release", then digest 1 at minute 3
    ledger.record_push(digest(2), "release", at(5), "event-late")
    ledger.record_push(digest(1), None, at(3), "event-1")
    # WHEN the event of digest 2's earlier push (minute 1, as "dev") arrives last
    record = ledger.record_push(digest(2), "dev", at(1), "event-early")
    # THEN digest 2 is dated by its first push and listed as the older image
    assert record.pushed_at == at(1)
    assert record.event_id == "event-early"
    assert record.tags == frozenset({"dev", "release"})
    assert [image.digest for image in ledger.images()[0]] == [digest(1), digest(2)]


def test_unknown_tags_and_digests_are_none(ledger: DynamoLedger) -> None:
    assert ledger.digest_for_tag("never-pushed") is None
    assert ledger.image(digest(7)) is None


def test_a_naive_push_time_is_refused(ledger: DynamoLedger) -> None:
    with pytest.raises(InvalidInput, match="timezone"):
        ledger.record_push(digest(1), "dev", datetime(2026, 1, 1), "event-1")


def test_images_are_listed_newest_first_across_pages(ledger: DynamoLedger) -> None:
    # GIVEN five pushes a minute apart
    for n in range(5):
        ledger.record_push(digest(n + 1), f"build-{n}", at(n), f"event-{n}")
    # WHEN listed two at a time, following the cursor
    seen: list[Digest] = []
    cursor: str | None = None
    pages = 0
    while True:
        page, cursor = ledger.images(limit=2, cursor=cursor)
        seen += [image.digest for image in page]
        pages += 1
        if cursor is None:
            break
    # THEN every image comes once, newest first
    assert seen == [digest(5), digest(4), digest(3), digest(2), digest(1)]
    assert pages == 3


def test_the_image_listing_carries_verdicts(ledger: DynamoLedger) -> None:
    ledger.record_push(digest(1), "dev", at(0), "event-1")
    ledger.set_verdict(digest(1), Verdict.FAILED, "rollout stalled")
    (image,), _ = ledger.images()
    assert image.verdict is Verdict.FAILED
    assert image.verdict_reason == "rollout stalled"


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(json.dumps({"PK": "x"}).encode()).decode(),
        # a well-formed key of another application's listing
        base64.urlsafe_b64encode(
            json.dumps({"PK": "a", "SK": "b", "GSI1PK": "APP#other#IMAGES", "GSI1SK": "c"}).encode()
        ).decode(),
        "",
    ],
)
def test_a_bad_cursor_is_invalid_input(ledger: DynamoLedger, cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ledger.images(cursor=cursor)
    assert caught.value.field == "cursor"


def test_a_deployments_cursor_is_not_an_images_cursor(ledger: DynamoLedger) -> None:
    # GIVEN a cursor from the deployments listing
    for n in range(3):
        ledger.put_deployment(deployment(ledger, f"d{n}", at(n)))
    _, cursor = ledger.deployments(limit=1)
    assert cursor is not None
    # WHEN it is handed to the images listing THEN it is refused
    with pytest.raises(InvalidInput):
        ledger.images(cursor=cursor)


@pytest.mark.parametrize("limit", [0, -1, 101, True])
def test_a_bad_limit_is_invalid_input(ledger: DynamoLedger, limit: int) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        ledger.images(limit=limit)


# verdicts -------------------------------------------------------------------------------


def test_a_verdict_is_kept_with_its_reason(ledger: DynamoLedger) -> None:
    ledger.record_push(digest(1), "dev", at(0), "event-1")
    assert ledger.verdict(digest(1)) is Verdict.UNKNOWN
    ledger.set_verdict(digest(1), Verdict.HEALTHY, "hooks and health checks passed")
    assert ledger.verdict(digest(1)) is Verdict.HEALTHY
    image = ledger.image(digest(1))
    assert image is not None
    assert image.verdict_reason == "hooks and health checks passed"


def test_last_healthy_is_the_newest_healthy_verdict_not_excluded(
    ledger: DynamoLedger, clock: Clock
) -> None:
    # GIVEN digests 1, 2, 3 judged healthy in that order, and 4 judged failed last
    for n in (1, 2, 3):
        ledger.set_verdict(digest(n), Verdict.HEALTHY)
        clock.advance(60)
    ledger.set_verdict(digest(4), Verdict.FAILED, "hook failed")
    # THEN the newest healthy is 3; excluding 3 (and an unknown digest) gives 2
    assert ledger.last_healthy() == digest(3)
    assert ledger.last_healthy(exclude=[digest(3), digest(42)]) == digest(2)
    assert ledger.last_healthy(exclude=[digest(1), digest(2), digest(3)]) is None


def test_a_digest_judged_failed_after_healthy_is_no_rollback_target(
    ledger: DynamoLedger, clock: Clock
) -> None:
    # GIVEN digest 1 healthy, then digest 2 healthy, then digest 2 judged failed
    ledger.set_verdict(digest(1), Verdict.HEALTHY)
    clock.advance(60)
    ledger.set_verdict(digest(2), Verdict.HEALTHY)
    clock.advance(60)
    ledger.set_verdict(digest(2), Verdict.FAILED, "health check failed")
    # THEN the last healthy is digest 1
    assert ledger.last_healthy() == digest(1)


def test_last_healthy_pages_past_many_exclusions(ledger: DynamoLedger, clock: Clock) -> None:
    for n in range(1, 8):
        ledger.set_verdict(digest(n), Verdict.HEALTHY)
        clock.advance(1)
    assert ledger.last_healthy(exclude=[digest(n) for n in range(2, 8)]) == digest(1)


def test_last_healthy_queries_by_key_never_scans(
    ledger: DynamoLedger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a client whose scan fails loudly
    def no_scan(**_: Any) -> None:
        raise AssertionError("the ledger must never scan")

    monkeypatch.setattr(ledger._client, "scan", no_scan)
    ledger.set_verdict(digest(1), Verdict.HEALTHY)
    ledger.record_push(digest(1), "dev", at(0), "event-1")
    # WHEN every read of the ledger runs THEN none scans
    assert ledger.last_healthy() == digest(1)
    ledger.images()
    ledger.deployments()
    ledger.lock_holder()


# deployments ---------------------------------------------------------------------------


def test_a_deployment_round_trips(ledger: DynamoLedger) -> None:
    # GIVEN a deployment with every kind of field
    original = deployment(ledger, "d1", at(0))
    original.hook_logs = {"cache-flush": "Success: The cache was flushed."}
    original.execution_arn = "arn:aws:states:us-west-2:123456789012:execution:deploy:d1"
    # WHEN it is put and read back
    ledger.put_deployment(original)
    # THEN it is equal
    assert ledger.deployment("d1") == original


def test_a_second_put_with_the_same_id_is_a_no_op(ledger: DynamoLedger) -> None:
    ledger.put_deployment(deployment(ledger, "d1", at(0), to=digest(1)))
    ledger.put_deployment(deployment(ledger, "d1", at(9), to=digest(2)))
    stored = ledger.deployment("d1")
    assert stored is not None
    assert stored.to_digest == digest(1)
    assert len(ledger.deployments()[0]) == 1


def test_deployments_are_listed_newest_first(ledger: DynamoLedger) -> None:
    for n in (2, 0, 1):
        ledger.put_deployment(deployment(ledger, f"d{n}", at(n)))
    first, cursor = ledger.deployments(limit=2)
    rest, end = ledger.deployments(limit=2, cursor=cursor)
    assert [d.id for d in first + rest] == ["d2", "d1", "d0"]
    assert end is None


def test_new_deployment_ids_sort_by_time() -> None:
    ids = [new_deployment_id(at(n)) for n in (0, 1, 60, 61)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 4


def test_update_and_finish_change_a_recorded_deployment(ledger: DynamoLedger, clock: Clock) -> None:
    # GIVEN a running deployment
    ledger.put_deployment(deployment(ledger, "d1", at(0)))
    # WHEN it gets its execution ARN, then finishes rolled back
    updated = ledger.update_deployment("d1", execution_arn="arn:x", colour=Colour.GREEN)
    finished = ledger.finish_deployment(
        "d1", Outcome.ROLLED_BACK, "hook failed", rolled_back_to=digest(99)
    )
    # THEN each returns the deployment as it is now
    assert updated.execution_arn == "arn:x"
    assert updated.colour is Colour.GREEN
    assert finished.outcome is Outcome.ROLLED_BACK
    assert finished.cause == "hook failed"
    assert finished.rolled_back_to == digest(99)
    assert finished.finished_at == clock.now
    assert ledger.deployment("d1") == finished


@pytest.mark.parametrize("outcome", [o for o in Outcome if o is not Outcome.RUNNING])
def test_every_outcome_keeps_the_callers_reason_next_to_its_cause(
    ledger: DynamoLedger, outcome: Outcome
) -> None:
    # GIVEN a deployment started with the caller's reason
    started = deployment(ledger, "d1", at(0))
    started.reason = "pin the checkout fix"
    ledger.put_deployment(started)
    # WHEN it ends, whichever way, with a cause
    ended = ledger.finish_deployment("d1", outcome, f"how it ended: {outcome.value}")
    # THEN the record still says why it was asked for, and says how it ended
    assert ended.reason == "pin the checkout fix"
    assert ended.cause == f"how it ended: {outcome.value}"
    assert ledger.deployment("d1") == ended


def _request(ledger: DynamoLedger, deployment_id: str) -> Deployment:
    """A request as an entry point records it before starting its execution."""
    return Deployment(
        id=deployment_id,
        application=ledger.application,
        action="rollback",
        role=Role.CANARY,
        colour=None,
        to_digest=None,
        from_digest=None,
        trigger="api",
        actor="arn:aws:iam::123456789012:user/alice",
        started_at=at(0),
        source_ip="203.0.113.9",
        reason="500s on /cart",
        force=True,
        seen_image=f"{REPO}@{digest(7)}",
        waits_behind="wp-platform-deploy-running",
    )


def test_a_request_round_trips_with_what_its_caller_saw(ledger: DynamoLedger) -> None:
    # WHEN an entry point records a request
    assert ledger.open_deployment(_request(ledger, "r1"))
    # THEN it reads back whole: force is a boolean, not a string
    assert ledger.deployment("r1") == _request(ledger, "r1")
    assert not ledger.open_deployment(_request(ledger, "r1"))


def test_a_claimed_request_cannot_be_abandoned_nor_opened_again(ledger: DynamoLedger) -> None:
    # GIVEN a request its execution claimed
    ledger.open_deployment(_request(ledger, "r1"))
    claimed = ledger.claim_deployment("r1", "arn:execution:r1")
    assert claimed is not None
    assert claimed.execution_arn == "arn:execution:r1"
    # WHEN its entry point, whose start call failed, gives it up, or a redelivery reopens it
    # THEN neither happens, and the same execution may claim it again (a retried step)
    assert not ledger.abandon_deployment("r1", "could not be started")
    assert not ledger.open_deployment(_request(ledger, "r1"))
    assert ledger.claim_deployment("r1", "arn:execution:r1") is not None
    assert ledger.claim_deployment("r1", "arn:execution:other") is None
    assert ledger.deployment("r1").outcome is Outcome.RUNNING  # type: ignore[union-attr]


def test_an_abandoned_request_cannot_be_claimed_but_may_be_opened_again(
    ledger: DynamoLedger, clock: Clock
) -> None:
    # GIVEN a request whose start failed
    ledger.open_deployment(_request(ledger, "r1"))
    assert ledger.abandon_deployment("r1", "could not be started: throttled")
    abandoned = ledger.deployment("r1")
    assert abandoned is not None
    assert (abandoned.outcome, abandoned.cause) == (
        Outcome.FAILED,
        "could not be started: throttled",
    )
    assert abandoned.reason == "500s on /cart"
    assert abandoned.finished_at == clock.now
    # WHEN an execution of that name runs after all THEN it may not claim it
    assert ledger.claim_deployment("r1", "arn:execution:r1") is None
    # WHEN the same request is delivered again THEN it is opened afresh
    assert ledger.open_deployment(_request(ledger, "r1"))
    assert ledger.deployment("r1").outcome is Outcome.RUNNING  # type: ignore[union-attr]


def test_an_execution_claiming_and_its_entry_point_giving_up_at_once_never_both_win(
    ledger: DynamoLedger,
) -> None:
    # GIVEN twenty requests, each raced for by its execution and its entry point at once
    results: dict[str, dict[str, bool]] = {}
    for n in range(20):
        ledger.open_deployment(_request(ledger, f"r{n}"))
        outcome: dict[str, bool] = {}

        def contend(side: int, n: int = n, outcome: dict[str, bool] = outcome) -> None:
            if side == 0:
                outcome["claimed"] = ledger.claim_deployment(f"r{n}", f"arn:{n}") is not None
            else:
                outcome["abandoned"] = ledger.abandon_deployment(f"r{n}", "start failed")

        race(contend, [0, 1])
        results[f"r{n}"] = outcome
    # THEN for each exactly one of them changed the record, and the record says which
    for name, outcome in results.items():
        assert outcome["claimed"] != outcome["abandoned"], name
        record = ledger.deployment(name)
        assert record is not None
        if outcome["claimed"]:
            assert (record.outcome, record.execution_arn) == (Outcome.RUNNING, f"arn:{name[1:]}")
        else:
            assert (record.outcome, record.execution_arn) == (Outcome.FAILED, "")


def test_updating_a_missing_deployment_is_not_found_and_creates_nothing(
    ledger: DynamoLedger,
) -> None:
    with pytest.raises(NotFound):
        ledger.update_deployment("nope", reason="x")
    with pytest.raises(NotFound):
        ledger.finish_deployment("nope", Outcome.FAILED)
    assert ledger.deployment("nope") is None


def test_updating_an_unknown_field_is_invalid_input(ledger: DynamoLedger) -> None:
    ledger.put_deployment(deployment(ledger, "d1", at(0)))
    with pytest.raises(InvalidInput, match="colur"):
        ledger.update_deployment("d1", colur="blue")
    with pytest.raises(InvalidInput):
        ledger.update_deployment("d1", id="d2")


def test_a_deployment_of_another_application_is_refused(ledger: DynamoLedger) -> None:
    other = deployment(ledger, "d1", at(0))
    other.application = "someone-else"
    with pytest.raises(InvalidInput, match="application"):
        ledger.put_deployment(other)


# lock ---------------------------------------------------------------------------------


def test_the_lock_is_exclusive_until_released(ledger: DynamoLedger) -> None:
    assert ledger.acquire_lock("exec-a", 900)
    assert not ledger.acquire_lock("exec-b", 900)
    assert ledger.lock_holder() == "exec-a"
    ledger.release_lock("exec-b")  # not the holder: nothing happens
    assert ledger.lock_holder() == "exec-a"
    ledger.release_lock("exec-a")
    assert ledger.lock_holder() is None
    assert ledger.acquire_lock("exec-b", 900)


def test_the_holder_may_renew_and_an_expired_lease_may_be_taken(
    ledger: DynamoLedger, clock: Clock
) -> None:
    assert ledger.acquire_lock("exec-a", 60)
    clock.advance(30)
    assert ledger.acquire_lock("exec-a", 60)  # renewal, lease now ends at +90
    clock.advance(45)
    assert not ledger.acquire_lock("exec-b", 60)
    clock.advance(16)
    assert ledger.lock_holder() is None
    assert ledger.acquire_lock("exec-b", 60)
    assert ledger.lock_holder() == "exec-b"


def test_a_renewal_is_the_holders_own_and_fences_what_overtook_it(
    ledger: DynamoLedger, clock: Clock
) -> None:
    # GIVEN exec-a holds the lock
    assert ledger.acquire_lock("exec-a", 60)
    # THEN it renews its own lease; nobody else can renew it
    assert ledger.renew_lock("exec-a", 60, "t1#0000")
    assert not ledger.renew_lock("exec-b", 60)
    # AND an earlier attempt of its steps cannot renew after a later one did
    assert ledger.renew_lock("exec-a", 60, "t2#0000")
    assert not ledger.renew_lock("exec-a", 60, "t1#0001")
    assert ledger.renew_lock("exec-a", 60, "t2#0001")
    # WHEN its lease runs out and exec-b takes the lock, does its work and releases it
    clock.advance(61)
    assert ledger.acquire_lock("exec-b", 60)
    ledger.release_lock("exec-b")
    # THEN exec-a cannot renew a lock it lost, though the lock is free again
    assert not ledger.renew_lock("exec-a", 60, "t3#0000")
    assert ledger.lock_holder() is None


def test_an_expired_lease_nobody_took_is_still_the_holders_to_renew(
    ledger: DynamoLedger, clock: Clock
) -> None:
    assert ledger.acquire_lock("exec-a", 60)
    clock.advance(61)
    assert ledger.renew_lock("exec-a", 60, "t1#0000")
    assert ledger.lock_holder() == "exec-a"


def test_an_outcome_event_is_claimed_once(ledger: DynamoLedger) -> None:
    assert ledger.claim_event("deploy-1", "succeeded")
    assert not ledger.claim_event("deploy-1", "succeeded")
    assert ledger.claim_event("deploy-1", "failed")
    assert ledger.claim_event("deploy-2", "succeeded")
    # AND the claims are not deployments
    assert [d.id for d in ledger.deployments()[0]] == []


def test_two_lock_takers_at_once_get_one_lock(ledger: DynamoLedger) -> None:
    # GIVEN eight executions racing for the free lock (boto3 clients are thread-safe)
    won: list[str] = []

    def take(n: int) -> None:
        if ledger.acquire_lock(f"exec-{n}", 900):
            won.append(f"exec-{n}")

    race(take, list(range(8)))
    # THEN exactly one won, and it is the holder
    assert len(won) == 1
    assert ledger.lock_holder() == won[0]


def test_concurrent_tag_pushes_of_one_digest_keep_every_tag(ledger: DynamoLedger) -> None:
    # GIVEN one digest pushed with eight different tags at the same time
    race(lambda n: ledger.record_push(digest(1), f"tag-{n}", at(n), f"event-{n}"), list(range(8)))
    # THEN the image carries all eight tags (no lost update), dated by its earliest push
    image = ledger.image(digest(1))
    assert image is not None
    assert image.tags == frozenset(f"tag-{n}" for n in range(8))
    assert image.pushed_at == at(0)
    assert image.event_id == "event-0"


def test_concurrent_pushes_of_one_tag_leave_it_on_exactly_the_newest_digest(
    ledger: DynamoLedger,
) -> None:
    # GIVEN "dev" pushed for six digests at once, in mixed push-time order
    race(
        lambda n: ledger.record_push(digest(n + 1), "dev", at(n), f"event-{n}"),
        [3, 0, 5, 1, 4, 2],
    )
    # THEN the tag points at the newest push and only that image carries it
    assert ledger.digest_for_tag("dev") == digest(6)
    carrying = {image.digest for image in ledger.images()[0] if "dev" in image.tags}
    assert carrying == {digest(6)}
