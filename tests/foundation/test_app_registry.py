"""The application registry on moto's DynamoDB, over the ledger table of template.yaml:
conditional versions (two editors, one wins), pages, the repository index, deletes refused
while a deployment runs, and the changes kept with who made them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from bluegreen.adapters.apps import DynamoAppRegistry
from bluegreen.adapters.ledger import DynamoLedger
from bluegreen.config import Settings
from bluegreen.domain.apps import AppSpec, Editor, default_app_spec
from bluegreen.domain.errors import AppInUse, AppNotFound, AppVersionConflict, InvalidInput
from bluegreen.domain.models import Deployment, Digest, Outcome, Role
from bluegreen.logic.apps import STACK, register_default
from local.aws import create_tables
from tests.foundation.conftest import Clock
from tests.foundation.test_ledger import race

ALICE = Editor("arn:aws:sts::123456789012:assumed-role/admin/alice", "203.0.113.10", "req-a")
BOB = Editor("arn:aws:sts::123456789012:assumed-role/admin/bob", "203.0.113.20", "req-b")


class Recording:
    """A DynamoDB client that remembers the operations it was asked for."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.operations: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.operations.append(name)
        return getattr(self.client, name)


def spec(repository: str = "shop/checkout", **deploy: Any) -> AppSpec:
    return AppSpec.parse(
        {"cluster": "shop", "namespace": "checkout", "repository": repository, "deploy": deploy}
    )


@pytest.fixture
def table(dynamodb: Any) -> str:
    """A ledger table of this test's own: listings see only what the test registered."""
    name = f"ledger-{uuid.uuid4().hex[:8]}"
    return create_tables(dynamodb, names={"LedgerTable": name, "IdempotencyTable": name + "-i"})[
        "LedgerTable"
    ]


@pytest.fixture
def client(dynamodb: Any) -> Recording:
    return Recording(dynamodb)


@pytest.fixture
def registry(table: str, client: Recording, clock: Clock) -> DynamoAppRegistry:
    return DynamoAppRegistry(table, client, clock=clock)


# --- writes and versions ---------------------------------------------------------------


def test_a_new_application_is_version_one_recorded_with_its_creator(
    registry: DynamoAppRegistry, clock: Clock
) -> None:
    # WHEN alice registers checkout
    record, created = registry.put("checkout", spec(), ALICE, None)
    # THEN it is version 1, made by alice, now, from her address
    assert created
    assert (record.version, record.changed_by, record.created_by) == (1, ALICE.actor, ALICE.actor)
    assert record.changed_at == record.created_at == clock.now
    assert record.source_ip == ALICE.source_ip
    # AND a read gives the same, and the change is recorded with her request
    assert registry.get("checkout") == record
    (change,), _ = registry.changes("checkout")
    assert (change.version, change.action, change.actor, change.request_id) == (
        1,
        "create",
        ALICE.actor,
        "req-a",
    )
    assert change.spec == spec()


def test_a_create_over_an_existing_application_is_a_conflict_and_writes_nothing(
    registry: DynamoAppRegistry,
) -> None:
    first, _ = registry.put("checkout", spec(), ALICE, None)
    with pytest.raises(AppVersionConflict, match='If-Match: "1"'):
        registry.put("checkout", spec("other/repo"), BOB, None)
    assert registry.get("checkout") == first
    assert [c.version for c in registry.changes("checkout")[0]] == [1]


def test_a_replace_at_the_version_read_moves_it_on_and_keeps_its_creation(
    registry: DynamoAppRegistry, clock: Clock
) -> None:
    first, _ = registry.put("checkout", spec(), ALICE, None)
    clock.advance(60)
    # WHEN bob replaces version 1
    second, created = registry.put("checkout", spec(bakeSeconds=30), BOB, 1)
    # THEN it is version 2, changed by bob now, created by alice then
    assert not created
    assert second.version == 2
    assert second.spec.deploy.bake_seconds == 30
    assert (second.changed_by, second.changed_at) == (BOB.actor, clock.now)
    assert (second.created_by, second.created_at) == (ALICE.actor, first.created_at)
    assert [(c.version, c.action) for c in registry.changes("checkout")[0]] == [
        (2, "replace"),
        (1, "create"),
    ]


def test_a_replace_at_a_version_no_longer_there_is_a_conflict_naming_who_changed_it(
    registry: DynamoAppRegistry,
) -> None:
    # GIVEN alice and bob both read version 1, and alice wrote version 2
    registry.put("checkout", spec(), ALICE, None)
    registry.put("checkout", spec(bakeSeconds=30), ALICE, 1)
    # WHEN bob writes over the version 1 he read
    with pytest.raises(AppVersionConflict) as conflict:
        registry.put("checkout", spec(bakeSeconds=99), BOB, 1)
    # THEN he hears it is at version 2, by alice; her change stands
    assert "version 2" in str(conflict.value)
    assert ALICE.actor in str(conflict.value)
    record = registry.get("checkout")
    assert record is not None
    assert (record.version, record.spec.deploy.bake_seconds) == (2, 30)


@pytest.mark.parametrize("expected", [None, 1], ids=["two-creates", "two-replaces"])
def test_of_two_editors_racing_from_the_same_version_exactly_one_wins(
    registry: DynamoAppRegistry, expected: int | None
) -> None:
    # GIVEN (for the replaces) version 1 that both editors read
    if expected is not None:
        registry.put("checkout", spec(), ALICE, None)
    editors = {1: (ALICE, spec(bakeSeconds=11)), 2: (BOB, spec(bakeSeconds=22))}
    won: list[int] = []
    lost: list[int] = []

    def write(n: int) -> None:
        editor, their_spec = editors[n]
        try:
            registry.put("checkout", their_spec, editor, expected)
        except AppVersionConflict:
            lost.append(n)
        else:
            won.append(n)

    # WHEN both write at once from what they read
    race(write, [1, 2])
    # THEN one wrote and the other heard of the conflict
    assert len(won) == len(lost) == 1
    winner, their_spec = editors[won[0]]
    # AND what is stored is the winner's, whole, at the next version, recorded as theirs
    record = registry.get("checkout")
    assert record is not None
    assert record.spec == their_spec
    assert record.changed_by == winner.actor
    newest = registry.changes("checkout")[0][0]
    assert (newest.version, newest.actor, newest.spec) == (record.version, winner.actor, their_spec)
    assert record.version == (1 if expected is None else 2)


def test_a_version_read_before_a_delete_cannot_overwrite_the_application_made_since(
    registry: DynamoAppRegistry,
) -> None:
    # GIVEN bob read version 1; alice deleted checkout and registered it again
    registry.put("checkout", spec(), ALICE, None)
    registry.delete("checkout", ALICE)
    again, created = registry.put("checkout", spec("shop/new"), ALICE, None)
    # THEN the new application goes on from the old versions, never back to 1
    assert created
    assert again.version == 3
    # AND bob's version 1 is a conflict
    with pytest.raises(AppVersionConflict):
        registry.put("checkout", spec(bakeSeconds=5), BOB, 1)
    assert registry.get("checkout") == again


def test_a_replace_of_an_application_that_does_not_exist_is_a_conflict(
    registry: DynamoAppRegistry,
) -> None:
    with pytest.raises(AppVersionConflict, match="without If-Match to create it"):
        registry.put("checkout", spec(), ALICE, 1)
    assert registry.get("checkout") is None


# --- listing -----------------------------------------------------------------------------


def test_applications_page_through_by_name_with_an_opaque_cursor(
    registry: DynamoAppRegistry,
) -> None:
    names = ["blog", "checkout", "search", "admin", "cart"]
    for name in names:
        registry.put(name, spec(), ALICE, None)
    seen: list[list[str]] = []
    cursor: str | None = None
    while True:
        page, cursor = registry.apps(limit=2, cursor=cursor)
        seen.append([record.name for record in page])
        if cursor is None:
            break
    # THEN each application once, by name, two at a time (a last empty page at most)
    flat = [name for page in seen for name in page]
    assert flat == sorted(names)
    assert [len(page) for page in seen][:3] == [2, 2, 1]


def test_a_deleted_application_leaves_the_listing(registry: DynamoAppRegistry) -> None:
    registry.put("blog", spec(), ALICE, None)
    registry.put("checkout", spec(), ALICE, None)
    registry.delete("blog", ALICE)
    page, cursor = registry.apps()
    assert [record.name for record in page] == ["checkout"]
    assert cursor is None


@pytest.mark.parametrize("cursor", ["not-a-cursor", "eyJQSyI6IkFQUCNibG9nIn0"])
def test_a_cursor_this_listing_did_not_hand_out_is_invalid_input(
    registry: DynamoAppRegistry, cursor: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        registry.apps(limit=2, cursor=cursor)
    assert refused.value.field == "cursor"


def test_a_cursor_of_another_listing_is_refused(registry: DynamoAppRegistry) -> None:
    for name in ("a", "b", "c"):
        registry.put(name, spec(), ALICE, None)
        registry.put(name, spec(bakeSeconds=1), ALICE, 1)
    _, changes_cursor = registry.changes("a", limit=1)
    assert changes_cursor is not None
    with pytest.raises(InvalidInput):
        registry.apps(limit=1, cursor=changes_cursor)


def test_applications_naming_a_repository_are_found_through_the_index(
    registry: DynamoAppRegistry, client: Recording
) -> None:
    # GIVEN two applications of one repository, one of another
    registry.put("checkout", spec("shop/web"), ALICE, None)
    registry.put("checkout-eu", spec("shop/web"), ALICE, None)
    registry.put("blog", spec("blog/web"), ALICE, None)
    # THEN the repository finds exactly its applications, by name
    assert [r.name for r in registry.by_repository("shop/web")] == ["checkout", "checkout-eu"]
    assert registry.by_repository("nobody/names-this") == []
    # AND a replace that moves an application to another repository moves it in the index
    registry.put("checkout-eu", spec("shop/eu"), ALICE, 1)
    assert [r.name for r in registry.by_repository("shop/web")] == ["checkout"]
    assert [r.name for r in registry.by_repository("shop/eu")] == ["checkout-eu"]
    # AND a deleted one is found no more
    registry.delete("checkout", ALICE)
    assert registry.by_repository("shop/web") == []


def test_every_read_is_a_key_or_index_query_never_a_scan(
    registry: DynamoAppRegistry, client: Recording
) -> None:
    registry.put("checkout", spec(), ALICE, None)
    registry.put("checkout", spec(bakeSeconds=3), ALICE, 1)
    registry.get("checkout")
    registry.apps()
    registry.by_repository("shop/checkout")
    registry.changes("checkout")
    registry.delete("checkout", ALICE)
    assert "scan" not in client.operations
    assert set(client.operations) <= {"get_item", "query", "transact_write_items"}


# --- deletes -------------------------------------------------------------------------------


def deployment_of(app: str, clock: Clock) -> Deployment:
    return Deployment(
        id=f"{app}-deploy-1",
        application=app,
        action="deploy",
        role=Role.CANARY,
        colour=None,
        to_digest=Digest("ab" * 32),
        from_digest=None,
        trigger="api",
        actor=ALICE.actor,
        started_at=clock.now,
    )


def test_a_delete_is_refused_while_a_deployment_holds_the_lock_and_kept_after(
    registry: DynamoAppRegistry, table: str, dynamodb: Any, clock: Clock
) -> None:
    # GIVEN checkout, with a deployment recorded and holding the ledger's lock
    registry.put("checkout", spec(), ALICE, None)
    ledger = DynamoLedger(table, dynamodb, "checkout", clock=clock)
    ledger.record_push(Digest("ab" * 32), "dev", clock.now, "push-1")
    ledger.put_deployment(deployment_of("checkout", clock))
    ledger.finish_deployment("checkout-deploy-1", Outcome.SUCCEEDED)
    assert ledger.acquire_lock("checkout-deploy-2", 900)
    # WHEN alice deletes it
    with pytest.raises(AppInUse, match="checkout-deploy-2"):
        registry.delete("checkout", ALICE)
    # THEN it is still there, at its version
    record = registry.get("checkout")
    assert record is not None
    assert record.version == 1
    # WHEN the lock is released, the delete goes through
    ledger.release_lock("checkout-deploy-2")
    deleted = registry.delete("checkout", BOB)
    assert deleted == record
    assert registry.get("checkout") is None
    # AND the ledger's history of the application is kept
    assert ledger.deployment("checkout-deploy-1") is not None
    assert ledger.image(Digest("ab" * 32)) is not None
    # AND the delete is recorded with who did it, and the spec deleted
    newest = registry.changes("checkout")[0][0]
    assert (newest.action, newest.actor, newest.version, newest.spec) == (
        "delete",
        BOB.actor,
        2,
        spec(),
    )


def test_an_expired_lock_does_not_hold_a_delete(
    registry: DynamoAppRegistry, table: str, dynamodb: Any, clock: Clock
) -> None:
    registry.put("checkout", spec(), ALICE, None)
    ledger = DynamoLedger(table, dynamodb, "checkout", clock=clock)
    assert ledger.acquire_lock("an-execution-that-died", 60)
    clock.advance(61)
    registry.delete("checkout", ALICE)
    assert registry.get("checkout") is None


def test_a_delete_is_refused_while_a_recorded_request_runs_without_the_lock(
    registry: DynamoAppRegistry, table: str, dynamodb: Any, clock: Clock
) -> None:
    # GIVEN a request recorded (it queues for the lock), nobody holding the lock
    registry.put("checkout", spec(), ALICE, None)
    ledger = DynamoLedger(table, dynamodb, "checkout", clock=clock)
    assert ledger.open_deployment(deployment_of("checkout", clock))
    # THEN the delete is refused, naming it
    with pytest.raises(AppInUse, match="checkout-deploy-1"):
        registry.delete("checkout", ALICE)
    assert registry.get("checkout") is not None


def test_another_applications_deployment_does_not_hold_a_delete(
    registry: DynamoAppRegistry, table: str, dynamodb: Any, clock: Clock
) -> None:
    registry.put("checkout", spec(), ALICE, None)
    registry.put("checkout-eu", spec(), ALICE, None)
    other = DynamoLedger(table, dynamodb, "checkout-eu", clock=clock)
    assert other.acquire_lock("eu-deploy", 900)
    assert other.open_deployment(deployment_of("checkout-eu", clock))
    registry.delete("checkout", ALICE)
    assert registry.get("checkout") is None


def test_a_delete_of_an_unknown_application_is_not_found(registry: DynamoAppRegistry) -> None:
    with pytest.raises(AppNotFound):
        registry.delete("nothing", ALICE)
    registry.put("gone", spec(), ALICE, None)
    registry.delete("gone", ALICE)
    with pytest.raises(AppNotFound):
        registry.delete("gone", ALICE)


def test_a_delete_at_a_version_no_longer_there_is_a_conflict(registry: DynamoAppRegistry) -> None:
    registry.put("checkout", spec(), ALICE, None)
    registry.put("checkout", spec(bakeSeconds=1), ALICE, 1)
    with pytest.raises(AppVersionConflict):
        registry.delete("checkout", BOB, 1)
    assert registry.get("checkout") is not None


# --- the stack's default application ----------------------------------------------------


def test_the_default_application_is_registered_once_from_the_stacks_settings(
    registry: DynamoAppRegistry, clock: Clock
) -> None:
    settings = Settings()
    # WHEN the registry is first used, and again
    assert register_default(registry, settings)
    assert not register_default(registry, settings)
    # THEN the stack's application is there, as its parameters say, registered by the stack
    record = registry.get(settings.application)
    assert record is not None
    assert (record.version, record.changed_by) == (1, STACK)
    assert record.spec == default_app_spec(settings)


def test_a_default_application_someone_changed_or_deleted_is_left_so(
    registry: DynamoAppRegistry,
) -> None:
    settings = Settings()
    register_default(registry, settings)
    registry.put(settings.application, spec(bakeSeconds=7), ALICE, 1)
    assert not register_default(registry, settings)
    record = registry.get(settings.application)
    assert record is not None
    assert record.spec.deploy.bake_seconds == 7
    registry.delete(settings.application, ALICE)
    assert not register_default(registry, settings)
    assert registry.get(settings.application) is None


def test_times_are_utc(registry: DynamoAppRegistry) -> None:
    record, _ = registry.put("checkout", spec(), ALICE, None)
    assert record.changed_at.tzinfo is not None
    assert record.changed_at.utcoffset() == datetime(2026, 1, 1, tzinfo=UTC).utcoffset()
