"""Where a colour goes back to when its digest is bad: the rollback target policy.

The policy reads verdicts and the deployment history through the ``Ledger``
port and nothing else; it never writes. ``choose_rollback_target`` is the order
of preference, ``ran_before`` and ``ran_on_production`` read the history it
needs. Both read at most ``HISTORY_PAGES * HISTORY_PAGE_SIZE`` deployments:
older history is not worth the reads, and a rollback target that old would
surprise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bluegreen.domain.flow_input import ACTIONS
from bluegreen.domain.models import Colour, Digest, Outcome, Role, Verdict
from bluegreen.domain.ports import Ledger

HISTORY_PAGES = 4
HISTORY_PAGE_SIZE = 50


@dataclass(frozen=True)
class RollbackChoice:
    """Where a colour goes back to, and in words why (or why nowhere)."""

    target: Digest | None
    why: str


def choose_rollback_target(
    ledger: Ledger,
    *,
    current: Digest | None,
    before: Digest | None,
    before_unknown: str,
    role: Role = Role.CANARY,
) -> RollbackChoice:
    """The digest a colour serving ``role`` rolls back to, away from ``current``.

    ``before`` is what the colour ran before ``current`` (``None`` when that is
    not known; ``before_unknown`` then says why, for the Cause). Never a digest
    judged failed, never ``current``. For the canary, in order:

    1. ``before``, when it is judged healthy;
    2. else the application's most recently judged healthy digest: it may have
       run on the other colour only, but it is known to be good, which
       ``before`` is not;
    3. else ``before``, when it was never judged failed;
    4. else nothing: the caller leaves the cluster as it is.

    For production, what production ran comes first, so that a failed deploy
    or rollback of production never quietly promotes what the canary passed:

    1. ``before``, when it is judged healthy;
    2. else ``before``, when it was never judged failed (it served production
       until now);
    3. else the most recent digest judged healthy among those the ledger's
       production deployments ran (``ran_on_production``);
    4. else the most recent digest judged healthy, though it never ran on
       production: nothing production ran is safe, and the Cause says so;
    5. else nothing.
    """
    usable = before if before is not None and before != current else None
    verdict = ledger.verdict(usable) if usable is not None else Verdict.UNKNOWN
    exclude = [current] if current is not None else []
    if usable is not None and verdict is Verdict.HEALTHY:
        return RollbackChoice(usable, "what ran before, judged healthy")
    if role is Role.PRODUCTION:
        if usable is not None and verdict is not Verdict.FAILED:
            return RollbackChoice(usable, "what production ran before, never judged failed")
        ran = ran_on_production(ledger, exclude=exclude)
        if ran is not None:
            return RollbackChoice(ran, "the most recent healthy digest production ran")
        healthy = ledger.last_healthy(exclude=exclude)
        if healthy is not None:
            return RollbackChoice(
                healthy,
                "the most recent digest judged healthy; it never ran on production, but "
                "nothing production ran is safe",
            )
    else:
        healthy = ledger.last_healthy(exclude=exclude)
        if healthy is not None:
            return RollbackChoice(healthy, "the most recent digest judged healthy")
        if usable is not None and verdict is not Verdict.FAILED:
            return RollbackChoice(
                usable, "what ran before, never judged failed; no other digest is judged healthy"
            )
    if before is None:
        about_before = before_unknown
    elif before == current:
        about_before = f"what ran before is {before.short}, the digest being rolled back"
    else:
        about_before = f"what ran before, {before.short}, is judged failed"
    others = f"other than {current.short} " if current is not None else ""
    return RollbackChoice(None, f"{about_before}, and no digest {others}is judged healthy")


def ran_on_production(ledger: Ledger, exclude: Sequence[Digest] = ()) -> Digest | None:
    """The newest digest judged healthy that production ran, from the ledger's deployments.

    A production deployment shows what production ran before it (its
    from-digest), what it put there when it succeeded and what it rolled back
    to; the newest of those judged healthy and not in ``exclude`` wins, among
    the newest ``HISTORY_PAGES * HISTORY_PAGE_SIZE`` deployments.
    """
    seen: set[Digest] = set(exclude)
    cursor: str | None = None
    for _ in range(HISTORY_PAGES):
        page, cursor = ledger.deployments(limit=HISTORY_PAGE_SIZE, cursor=cursor)
        for recorded in page:
            if recorded.role is not Role.PRODUCTION or recorded.action not in ACTIONS:
                continue
            landed = recorded.to_digest if recorded.outcome is Outcome.SUCCEEDED else None
            for candidate in (landed, recorded.rolled_back_to, recorded.from_digest):
                if candidate is None or candidate in seen:
                    continue
                seen.add(candidate)
                if ledger.verdict(candidate) is Verdict.HEALTHY:
                    return candidate
        if cursor is None:
            break
    return None


def ran_before(ledger: Ledger, colour: Colour, current: Digest) -> Digest | None:
    """What ``colour`` ran before ``current``, from the ledger's deployments.

    The from-digest of the newest successful deployment that put ``current`` on
    ``colour`` (one that changed the digest), among the newest
    ``HISTORY_PAGES * HISTORY_PAGE_SIZE`` deployments.
    """
    cursor: str | None = None
    for _ in range(HISTORY_PAGES):
        page, cursor = ledger.deployments(limit=HISTORY_PAGE_SIZE, cursor=cursor)
        for recorded in page:
            if (
                recorded.colour is colour
                and recorded.outcome is Outcome.SUCCEEDED
                and recorded.to_digest == current
                and recorded.from_digest is not None
                and recorded.from_digest != current
            ):
                return recorded.from_digest
        if cursor is None:
            break
    return None
