"""The emulator's notion of time: instant, stepped by tests, or real time with fast controllers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Clock:
    """Time as the controllers see it.

    ``instant``: controller work takes no time (rollouts, Job runs, back-offs and the
    progress deadline all elapse at once), while wall time stays frozen unless advanced, so
    a TTL or a timestamp still means something. ``stepped``: frozen until ``advance``.
    ``scaled(f)``: the wall clock (plus whatever ``advance`` added), with every duration of
    controller work (rollouts, Job runs, back-offs, deadlines, TTLs) ``f`` times shorter.

    Every timestamp the emulator writes comes from ``now``. In scaled mode that is the real
    time, not a faster-running one: kubectl computes some ages itself (``describe``'s
    events) against the real time, so a clock running ahead would write timestamps from
    the future and kubectl would print ``<invalid>`` ages.
    """

    def __init__(self, mode: str, factor: float = 1.0) -> None:
        if mode not in {"instant", "stepped", "scaled"}:
            raise ValueError(f"unknown clock mode {mode!r}")
        if factor <= 0:
            raise ValueError("clock factor must be positive")
        self.mode = mode
        self.factor = factor
        self._origin = time.time()
        self._started = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    @classmethod
    def instant(cls) -> Clock:
        """Controllers converge at once: a read right after a write sees the result."""
        return cls("instant")

    @classmethod
    def stepped(cls) -> Clock:
        """Time only moves when the test calls ``advance``."""
        return cls("stepped")

    @classmethod
    def scaled(cls, factor: float = 1.0) -> Clock:
        """Real time; controller work ``factor`` times faster (a 10-minute deadline in 1 at 10)."""
        return cls("scaled", factor)

    @property
    def is_instant(self) -> bool:
        """Whether controller work takes no time at all."""
        return self.mode == "instant"

    def now(self) -> float:
        """Seconds since the epoch on this clock."""
        with self._lock:
            offset = self._offset
        if self.mode == "scaled":
            # Monotonic, so a wall-clock step (NTP) never moves the emulator backwards.
            return self._origin + (time.monotonic() - self._started) + offset
        return self._origin + offset

    def duration(self, seconds: float) -> float:
        """How long ``seconds`` of controller work lasts on this clock."""
        if self.is_instant:
            return 0.0
        return seconds / self.factor if self.mode == "scaled" else seconds

    def real_seconds(self, seconds: float) -> float:
        """Real seconds until ``seconds`` of clock time pass (``inf`` when time is frozen)."""
        if self.mode == "scaled":
            return seconds
        return float("inf")

    def advance(self, seconds: float) -> None:
        """Move time forward; controllers catch up before this returns."""
        if seconds < 0:
            raise ValueError("the clock never goes backwards")
        with self._lock:
            self._offset += seconds
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every ``advance``."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        """Stop calling ``listener``."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)
