"""The rollback target policy: where a colour goes back to, and why in words.

The policy reads verdicts and deployments through the ``Ledger`` port; these
tests hand it the in-memory ledger of the flow tests.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from bluegreen.domain.models import Colour, Deployment, Digest, Outcome, Role, Verdict
from bluegreen.domain.rollback_target import (
    RollbackChoice,
    choose_rollback_target,
    ran_before,
    ran_on_production,
)
from tests.flow.fakes import REPO, FakeLedger, digest

BEFORE, CURRENT, OTHER, NEWEST = digest(11), digest(12), digest(13), digest(14)


def _choose(ledger: FakeLedger, before: Digest | None = BEFORE) -> RollbackChoice:
    return choose_rollback_target(
        ledger, current=CURRENT, before=before, before_unknown="nothing is known about before"
    )


# --- the order of rollback targets ---------------------------------------------------------


def test_what_ran_before_wins_when_healthy_even_if_another_is_newer() -> None:
    # GIVEN what the colour ran before is healthy, and another digest was judged healthy later
    ledger = FakeLedger()
    ledger.set_verdict(BEFORE, Verdict.HEALTHY)
    ledger.set_verdict(NEWEST, Verdict.HEALTHY)

    # WHEN the target is chosen THEN it is what ran before
    assert _choose(ledger).target == BEFORE


def test_the_most_recent_healthy_digest_when_what_ran_before_is_not_judged() -> None:
    ledger = FakeLedger()
    ledger.set_verdict(OTHER, Verdict.HEALTHY)
    ledger.set_verdict(NEWEST, Verdict.HEALTHY)
    ledger.set_verdict(CURRENT, Verdict.HEALTHY)  # newest of all, but it is the bad one

    choice = _choose(ledger)

    assert choice.target == NEWEST
    assert "most recent" in choice.why


def test_what_ran_before_when_nothing_is_healthy_and_it_never_failed() -> None:
    choice = _choose(FakeLedger())

    assert choice.target == BEFORE
    assert "never judged failed" in choice.why


@pytest.mark.parametrize(
    ("before", "failed", "says"),
    [
        (BEFORE, True, f"what ran before, {BEFORE.short}, is judged failed"),
        (CURRENT, False, f"what ran before is {CURRENT.short}, the digest being rolled back"),
        (None, False, "nothing is known about before"),
    ],
)
def test_nothing_qualifies_and_the_reason_is_true(
    before: Digest | None, failed: bool, says: str
) -> None:
    # GIVEN only the bad digest is healthy, and what ran before is failed, the bad one or unknown
    ledger = FakeLedger()
    ledger.set_verdict(CURRENT, Verdict.HEALTHY)
    if failed:
        ledger.set_verdict(BEFORE, Verdict.FAILED)

    choice = _choose(ledger, before)

    assert choice.target is None
    assert says in choice.why
    assert f"no digest other than {CURRENT.short} is judged healthy" in choice.why


def test_a_failed_digest_is_never_chosen_even_if_once_healthy() -> None:
    ledger = FakeLedger()
    ledger.set_verdict(NEWEST, Verdict.HEALTHY)
    ledger.set_verdict(NEWEST, Verdict.FAILED)
    ledger.set_verdict(BEFORE, Verdict.FAILED)

    assert _choose(ledger).target is None


# --- production: what it ran comes first ----------------------------------------------------


def _deploy_state(service: str, colour: Colour, digest_: Digest, before: Digest) -> dict[str, Any]:
    return {
        "id": f"d-{uuid.uuid4().hex[:8]}",
        "arn": "arn",
        "action": "deploy",
        "service": service,
        "colour": colour.value,
        "digest": str(digest_),
        "image": f"{REPO}@{digest_}",
        "fromDigest": str(before),
        "fromImage": f"{REPO}@{before}",
        "trigger": "console",
        "actor": "tester",
        "reason": "",
    }


def _record(state: dict[str, Any], ledger: FakeLedger) -> None:
    ledger.put_deployment(
        Deployment(
            id=state["id"],
            application="wp-platform",
            action=state["action"],
            role=Role(state["service"]),
            colour=Colour(state["colour"]),
            to_digest=Digest.parse(state["digest"]) if state.get("digest") else None,
            from_digest=Digest.parse(state["fromDigest"]) if state.get("fromDigest") else None,
            trigger="console",
            actor="tester",
            started_at=datetime.now(UTC),
        )
    )


def _choose_for_production(ledger: FakeLedger, before: Digest | None = BEFORE) -> RollbackChoice:
    return choose_rollback_target(
        ledger,
        current=CURRENT,
        before=before,
        before_unknown="nothing is known about before",
        role=Role.PRODUCTION,
    )


def test_production_goes_back_to_what_it_ran_even_unjudged_rather_than_the_canarys_digest() -> None:
    # GIVEN what production ran before was never judged, and the canary passed NEWEST
    ledger = FakeLedger()
    ledger.set_verdict(NEWEST, Verdict.HEALTHY)

    # WHEN production's target is chosen THEN it is what production ran
    choice = _choose_for_production(ledger)
    assert choice.target == BEFORE
    assert choice.why == "what production ran before, never judged failed"


def test_production_then_goes_to_the_newest_healthy_digest_production_ran() -> None:
    # GIVEN what production ran before is judged failed; earlier, production ran OTHER
    # (judged healthy) and the canary since passed NEWEST
    ledger = FakeLedger()
    ledger.set_verdict(BEFORE, Verdict.FAILED)
    ledger.set_verdict(OTHER, Verdict.HEALTHY)
    earlier = _deploy_state("production", Colour.GREEN, OTHER, digest(20))
    _record(earlier, ledger)
    ledger.finish_deployment(earlier["id"], Outcome.SUCCEEDED, "ok")
    ledger.set_verdict(NEWEST, Verdict.HEALTHY)

    # THEN production goes back to OTHER, not to NEWEST, which it never ran
    choice = _choose_for_production(ledger)
    assert choice.target == OTHER
    assert choice.why == "the most recent healthy digest production ran"


def test_production_takes_a_digest_it_never_ran_only_when_nothing_it_ran_is_safe() -> None:
    # GIVEN nothing production ran is healthy (what it ran before is failed), NEWEST is
    ledger = FakeLedger()
    ledger.set_verdict(BEFORE, Verdict.FAILED)
    ledger.set_verdict(NEWEST, Verdict.HEALTHY)

    # THEN NEWEST, and the why says it never ran on production
    choice = _choose_for_production(ledger)
    assert choice.target == NEWEST
    assert "never ran on production, but nothing production ran is safe" in choice.why


# --- what a colour ran before, from the deployments -------------------------------------------


def _succeeded(ledger: FakeLedger, colour: Colour, before: Digest | None, to: Digest) -> None:
    state = _deploy_state("canary", colour, to, before or to)
    if before is None:
        state["fromDigest"] = None
    _record(state, ledger)
    ledger.finish_deployment(state["id"], Outcome.SUCCEEDED, "ok")


def test_ran_before_reads_the_newest_successful_deploy_of_that_digest_to_that_colour() -> None:
    # GIVEN deploys of CURRENT: an old one from NEWEST, one to the other colour, one that
    # failed, one that changed nothing, and the newest successful one from BEFORE
    ledger = FakeLedger()
    _succeeded(ledger, Colour.BLUE, NEWEST, CURRENT)
    _succeeded(ledger, Colour.BLUE, BEFORE, CURRENT)
    _succeeded(ledger, Colour.GREEN, OTHER, CURRENT)
    failed = _deploy_state("canary", Colour.BLUE, CURRENT, OTHER)
    _record(failed, ledger)
    ledger.finish_deployment(failed["id"], Outcome.ROLLED_BACK, "broken")
    _succeeded(ledger, Colour.BLUE, CURRENT, CURRENT)

    # THEN what blue ran before CURRENT is BEFORE
    assert ran_before(ledger, Colour.BLUE, CURRENT) == BEFORE
    assert ran_before(ledger, Colour.GREEN, CURRENT) == OTHER
    assert ran_before(ledger, Colour.BLUE, OTHER) is None


class _PagedLedger(FakeLedger):
    """Serves deployments one per page, counting the pages read."""

    def __init__(self) -> None:
        super().__init__()
        self.pages = 0

    def deployments(
        self, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Deployment], str | None]:
        self.pages += 1
        newest_first = list(self.records.values())[::-1]
        start = int(cursor or 0)
        return newest_first[start : start + 1], str(start + 1)


def test_ran_before_reads_a_bounded_number_of_pages() -> None:
    # GIVEN a ledger that always has another page and never the deployment looked for
    ledger = _PagedLedger()
    for n in range(20):
        _succeeded(ledger, Colour.GREEN, digest(100 + n), digest(200 + n))

    # THEN the search gives up after its bound
    assert ran_before(ledger, Colour.BLUE, CURRENT) is None
    assert ledger.pages == 4


def test_ran_on_production_reads_production_deployments_only_newest_first() -> None:
    # GIVEN production ran OTHER then NEWEST (both healthy), and the canary ran BEFORE (healthy)
    ledger = FakeLedger()
    for state in (
        _deploy_state("production", Colour.GREEN, OTHER, digest(30)),
        _deploy_state("production", Colour.GREEN, NEWEST, OTHER),
        _deploy_state("canary", Colour.BLUE, BEFORE, digest(31)),
    ):
        _record(state, ledger)
        ledger.finish_deployment(state["id"], Outcome.SUCCEEDED, "ok")
    for healthy in (OTHER, NEWEST, BEFORE):
        ledger.set_verdict(healthy, Verdict.HEALTHY)

    # THEN the newest digest production ran wins, unless excluded; the canary's never does
    assert ran_on_production(ledger) == NEWEST
    assert ran_on_production(ledger, exclude=[NEWEST]) == OTHER
    assert ran_on_production(ledger, exclude=[NEWEST, OTHER]) is None


def test_ran_on_production_reads_a_bounded_number_of_pages() -> None:
    # GIVEN a ledger that always has another page of canary deployments
    ledger = _PagedLedger()
    for n in range(20):
        _succeeded(ledger, Colour.BLUE, digest(100 + n), digest(200 + n))

    # THEN the search gives up after its bound
    assert ran_on_production(ledger) is None
    assert ledger.pages == 4
