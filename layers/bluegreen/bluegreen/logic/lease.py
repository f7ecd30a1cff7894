"""The deployment lock's lease, renewed by every step its holder runs.

Begin takes one lease, but a deploy can outlive it (progress deadline, then a
rollback's rollout, then hooks), and an expired lease lets a waiting execution
in while this one still writes to the cluster. So every step the holder runs
while it holds the lock renews it, and the lease only runs out when the holder
stopped running steps (died) for a whole lease.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bluegreen.domain.ports import Ledger
from bluegreen.observability import logger


def renew_lease(ledger: Ledger, deployment: Mapping[str, Any], lease_seconds: int) -> None:
    """Extend the lock lease of ``deployment`` (the flow's state) by ``lease_seconds`` from now.

    A failed write or a lost lock is logged, never raised: see the comments below.
    """
    holder = str(deployment.get("id") or "")
    if not holder:
        return
    try:
        renewed = ledger.acquire_lock(holder, lease_seconds)
    except Exception:
        # One failed write costs nothing yet: the lease is far longer than the
        # longest poll interval, and the next step renews it again.
        logger.exception("could not renew the deployment lock", extra={"holder": holder})
        return
    if renewed:
        return
    taken_by = ledger.lock_holder() or "nobody (released meanwhile)"
    # Carry on rather than fail. The lease ran out while this execution was not
    # running steps, and another deployment took the lock: it is already changing
    # the cluster. Failing here would send this execution down the rollback path,
    # i.e. one more write to the colour behind the new holder's back, which is the
    # very race the lock exists to prevent; finishing what is under way ends this
    # execution soonest. The error log (and the other holder's name) is what an
    # operator needs to check both deployments' results.
    logger.error(
        "DEPLOYMENT LOCK LOST: another deployment took the lock while this one runs; "
        "both may be writing to the cluster",
        extra={
            "holder": holder,
            "lock_taken_by": taken_by,
            "colour": deployment.get("colour"),
            "lease_seconds": lease_seconds,
        },
    )


def renew_promotion_lease(ledger: Ledger, holder: str, lease_seconds: int) -> None:
    """Extend a progressive promotion's lease; a lost lock is logged.

    ``lease_seconds`` covers the step and, at a gate, the gate's timeout, so that
    nobody takes the lock while a person thinks.
    """
    if not ledger.acquire_lock(holder, lease_seconds):
        logger.error(
            "DEPLOYMENT LOCK LOST during a progressive promotion",
            extra={"holder": holder, "lock_taken_by": ledger.lock_holder()},
        )
