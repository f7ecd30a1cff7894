"""The sequence every move of traffic follows, whatever the router.

A move (a switch of the roles, a step of weights, a back-out, a flip-back) writes a
few objects (canaryEnv and the Services, or canaryEnv and one router object), each
write guarded by the resourceVersion it was computed from, in the order that keeps
production traffic safe. ``GuardedMove.run`` is that sequence:

1. read what the move touches; stop when it already says what is wished;
2. write towards the wish, in the router's order, calling the caller's ``confirm``
   (its check that no deployment took the lock meanwhile) where the router says;
3. a write that loses a resourceVersion race (``Refused``) re-reads and re-decides,
   a bounded number of times, with jittered backoff;
4. the move counts as done once the data plane applies it (the router's
   ``confirm``: the Services' endpoints, the load balancer's listener rule, the
   proxy's accepted route), polled with back-off for ``RouterParts.confirm_seconds``;
5. a move that cannot complete, or that the data plane does not confirm in time,
   puts back what it wrote, newest first, and says so: the caller's own refusal
   re-worded, ``TrafficNotConfirmed``, ``SwitchRestored``, or ``SwitchIncomplete``
   naming what is left when even putting back fails. A failure before anything was
   written is raised as it is.

Transient failures of single requests are waited out inside the move's ``Budget``
(``bluegreen.adapters.kube.requests``). Each router says how it reads, in what order
it writes and how it puts back (``_step`` and ``_after``).
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from bluegreen.adapters.kube.requests import UNAUTHORISED_GRACE_SECONDS, Refused
from bluegreen.adapters.routers.parts import RouterParts
from bluegreen.domain.errors import (
    BlueGreenError,
    ClusterConflict,
    ClusterForbidden,
    SwitchRestored,
    TrafficNotConfirmed,
)
from bluegreen.domain.traffic import Confirmation
from bluegreen.observability import logger


class GuardedMove(ABC):
    """One call of a router's ``switch_roles`` or ``shift``: what it wrote and must undo."""

    put_back_log = "traffic move put back"
    """What the log says when a move is put back."""

    def __init__(self, parts: RouterParts, confirm: Callable[[], None] | None) -> None:
        self._requests = parts.requests
        self._budget = parts.requests.budget()
        self._confirm = confirm
        self._confirm_seconds = parts.confirm_seconds
        self._awaiting_data_plane = False  # the objects say the wish; the data plane not yet
        self._stopped_by: Exception | None = None  # what ``confirm`` raised, if it did
        self._written: list[str] = []  # the objects written, in the order first written
        self._before: dict[str, dict[str, Any]] = {}  # each object before it was written
        self._left: dict[str, dict[str, Any]] = {}  # each object as this move's last write left it
        self._all_versions: set[str] = set()  # every version this move's writes produced

    @property
    @abstractmethod
    def wish(self) -> str:
        """The move in words: ``switching the canary to green``."""

    @property
    @abstractmethod
    def contended(self) -> str:
        """The objects whose changes can make a write lose its race, in words."""

    @abstractmethod
    def _step(self) -> bool | None:
        """One pass: read, then write towards the wish.

        Returns what ``run`` returns (True: written, False: already so), or None to
        read again (another writer is mid-move); ``Refused`` when a write lost its race.
        """

    @abstractmethod
    def _after(self, failure: Exception) -> Exception | None:
        """Put back what was written; the error to raise (None: the move turned out done).

        While ``_awaiting_data_plane``, objects that say the wish are not the move done.
        """

    @abstractmethod
    def _data_plane(self) -> Confirmation:
        """Whether the data plane applies what the router's objects say (the router's
        ``confirm``)."""

    def run(self) -> bool:
        """Complete the move and see the data plane apply it, or put back what it wrote
        and say so."""
        try:
            done = self._forward()
            self._await_data_plane()
            return done
        except Exception as failure:
            if not self._written:
                raise
            outcome = self._after(failure)
            if outcome is None:
                return True
            raise outcome from None

    def _forward(self) -> bool:
        requests = self._requests
        conflicts = 0
        while True:
            try:
                result = self._step()
            except Refused:
                conflicts += 1
                if conflicts >= requests.conflict_attempts:
                    raise ClusterConflict(
                        f"{self.contended} kept changing while {self.wish}; gave up after "
                        f"{conflicts} attempts"
                    ) from None
                requests.back_off(conflicts)
                continue
            if result is not None:
                return result

    def _await_ready(self, unready: Callable[[], str]) -> str:
        """Poll ``unready`` (why the data plane cannot take the move yet) with back-off,
        inside the move's confirmation budget; "" once it can, else its last answer."""
        budget = self._requests.budget(max(self._confirm_seconds, 0.0))
        pause = 0.1
        while True:
            problem = unready()
            if not problem or not budget.wait(pause):
                return problem
            pause = min(pause * 2, 2.0)

    def _await_data_plane(self) -> None:
        """Poll the data plane, with back-off, until it applies the move or the budget ends.

        A reading that fails (the load balancer's API throttled, the cluster away for a
        moment) is not a confirmation, and not yet a failure: the next poll may answer.
        """
        if self._confirm_seconds <= 0:
            return
        self._awaiting_data_plane = True
        started = self._requests.clock()

        def unapplied() -> str:
            try:
                seen = self._data_plane()
            except ClusterForbidden:
                # A restarted API server refuses for a moment; a Role without the rule
                # the reading needs refuses for good, and says so.
                if self._requests.clock() - started >= UNAUTHORISED_GRACE_SECONDS:
                    raise
                return "could not be read (refused)"
            except BlueGreenError as exc:
                return f"could not be read ({exc})"
            return "" if seen.confirmed else seen.describe()

        reported = self._await_ready(unapplied)
        if reported:
            changed = "" if self._written else "; this move changed nothing"
            raise TrafficNotConfirmed(
                f"{self.wish}: the data plane did not apply it within "
                f"{self._confirm_seconds:g}s: {reported}{changed}"
            )
        self._awaiting_data_plane = False

    # what the routers' steps share -------------------------------------------------

    def _note(self, key: str, before: Mapping[str, Any], written: Mapping[str, Any]) -> None:
        """Remember a write: the object before the first one, and the version it left."""
        if key not in self._before:
            self._before[key] = copy.deepcopy(dict(before))
            self._written.append(key)
        self._left[key] = copy.deepcopy(dict(written))
        self._all_versions.add(self._version_left(key))

    def _version_left(self, key: str) -> str:
        """The resourceVersion this move's last write of ``key`` left."""
        return str(self._left[key].get("metadata", {}).get("resourceVersion", ""))

    def _check(self) -> None:
        """The caller's ``confirm``; what it raises stops the move (and is put back)."""
        if self._confirm is None:
            return
        try:
            self._confirm()
        except Exception as exc:
            self._stopped_by = exc
            raise

    def _restored(self, failure: Exception, restored: str) -> Exception:
        """The error to raise once the previous state is back (``restored`` says which).

        The caller's own refusal stays what it was, now true of an unchanged cluster; a
        fault of this code shows as what it is; anything else is ``SwitchRestored``.
        """
        logger.warning(self.put_back_log, extra={"cause": str(failure)})
        if isinstance(failure, (TrafficNotConfirmed, ClusterForbidden)):
            return type(failure)(f"{failure}; {restored}")
        if failure is self._stopped_by and isinstance(failure, BlueGreenError):
            try:
                return type(failure)(f"{failure}; {restored}")
            except TypeError:
                pass  # an error built from other arguments: said as SwitchRestored
        if not isinstance(failure, BlueGreenError):
            return failure
        return SwitchRestored(f"{self.wish} could not complete ({failure}); {restored}")
