"""The deployment lock's lease: renewed by every step its holder runs, and the fence of
every write after the first step.

Begin takes the lease, but a deploy can outlive it (progress deadline, then a
rollback's rollout, then hooks), so every later step renews it, and the lease only
runs out when the holder stopped running steps (died) for a whole lease.

Renewing is also how a step proves it may still write. Step Functions runs a Task at
least once: an execution whose lease ran out may find another deployment holding the
lock (or holding it and gone again), and a step that outlived its Task's timeout may
find its own retry already running. Either way the renewal is refused, and the step
raises ``LockLost`` before it touches the cluster, the ledger or the router: the flow
then ends that execution (``Fenced``) without undoing anyone else's work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bluegreen.domain.errors import LockLost
from bluegreen.domain.ports import Ledger
from bluegreen.observability import logger


def attempt_of(event: Mapping[str, Any]) -> str:
    """The attempt a Task's payload is, as a string that sorts in the order attempts run.

    The ASL hands every step ``{"attempt": {"entered", "retry"}}`` (``$$.State``): a later
    state is entered later, and a retry of a state counts up. "" without it (a step
    called directly, as tests do): the fence then checks the holder only.
    """
    attempt = event.get("attempt")
    if not isinstance(attempt, Mapping) or not attempt.get("entered"):
        return ""
    retry = attempt.get("retry")
    return f"{attempt['entered']}#{int(retry) if isinstance(retry, int) else 0:04d}"


def renew_lease(ledger: Ledger, holder: str, lease_seconds: int, attempt: str = "") -> None:
    """Extend ``holder``'s lease by ``lease_seconds`` from now; ``LockLost`` when it is not
    ``holder``'s any more, or a later attempt renewed it.

    A failed write (DynamoDB throttled or out of reach) is logged, not raised: the
    lease is far longer than the longest poll interval, and the next step renews again.
    """
    if not holder:
        return
    try:
        renewed = ledger.renew_lock(holder, lease_seconds, attempt)
    except Exception:
        logger.exception("could not renew the deployment lock", extra={"holder": holder})
        return
    if renewed:
        return
    taken_by = ledger.lock_holder()
    if taken_by == holder:
        raise LockLost(
            f"a later attempt of {holder}'s steps holds the lock now (this attempt, "
            f"{attempt or 'unnumbered'}, outlived its Task); it stopped before it wrote anything"
        )
    raise LockLost(
        f"the deployment lock of {holder} ran out while it was not running steps, and "
        f"{taken_by or 'another deployment (done since)'} has taken it; {holder}'s step "
        "stopped before it wrote anything"
    )
