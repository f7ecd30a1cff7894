"""The one way a test waits: for a condition, polled until a deadline, never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    what: str, check: Callable[[], T | None], seconds: float = 60.0, every: float = 0.2
) -> T:
    """``check()``'s first truthy answer, polled every ``every`` seconds until ``seconds``
    have passed; else fails naming ``what`` and the last answer."""
    deadline = time.monotonic() + seconds
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {seconds:g}s (last seen: {last!r})")
