"""Fault injection: broken images, failing or hanging requests, failing or hanging Jobs."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from local.cluster.containers import IMAGE_MODES, ImageMarks
from local.cluster.errors import ApiError

__all__ = ["IMAGE_MODES", "JOB_MODES", "Faults"]
JOB_MODES = ("fail", "hang")
_REQUEST_FAILURES = {
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    429: (
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
    ),
}


@dataclass
class _RequestRule:
    method: str
    path: re.Pattern[str]
    remaining: int
    status: int = 0
    seconds: float = 0.0
    retry_after: int | None = None

    def matches(self, method: str, path: str) -> bool:
        return (self.method in {"*", method}) and bool(self.path.search(path))


@dataclass
class _JobRule:
    match: str
    mode: str
    remaining: int | None  # None: every matching Job until the faults are cleared


def _pattern(path: str) -> re.Pattern[str]:
    try:
        return re.compile(path)
    except re.error as error:
        raise ValueError(f"path {path!r} is not a valid regular expression: {error}") from None


def _count(count: int | None, *, optional: bool = False) -> None:
    if count is None and optional:
        return
    if count is None or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")


class Faults:
    """What is currently broken. Thread-safe; the server consults it on every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.images = ImageMarks()
        """Marked images: the convention the simulated kubelet shares (``containers``)."""
        self._failures: list[_RequestRule] = []
        self._hangs: list[_RequestRule] = []
        self._jobs: list[_JobRule] = []
        self._routes: dict[str, str] = {}

    def break_image(self, image: str, mode: str = "CrashLoopBackOff") -> None:
        """Pods running ``image`` (a full image string or a ``sha256:`` digest) never get ready."""
        self.images.mark(image, mode)

    def repair_image(self, image: str) -> None:
        """Undo ``break_image`` (new pods of that image start fine)."""
        self.images.clear(image)

    def image_fault(self, image: str) -> str | None:
        """The failure mode of ``image``, or None if it runs."""
        return self.images.mode_of(image)

    def fail_requests(
        self,
        method: str = "*",
        path: str = ".*",
        status: int = 500,
        count: int = 1,
        retry_after: int | None = None,
    ) -> None:
        """The next ``count`` requests matching ``method`` and the ``path`` regex fail.

        ``retry_after``: the seconds the answer's ``Retry-After`` header (and its
        Status' ``details.retryAfterSeconds``) asks the client to wait; a 429 asks for
        1 unless told otherwise, a 500 or 503 sends none unless told.
        """
        if status not in _REQUEST_FAILURES:
            raise ValueError(f"status must be one of {sorted(_REQUEST_FAILURES)}, not {status}")
        pattern = _pattern(path)
        _count(count)
        if retry_after is None and status == 429:
            retry_after = 1
        if retry_after is not None and (
            isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0
        ):
            raise ValueError(f"retry_after must be a whole number of seconds, not {retry_after!r}")
        with self._lock:
            self._failures.append(
                _RequestRule(method.upper(), pattern, count, status, retry_after=retry_after)
            )

    def hang_requests(
        self, method: str = "*", path: str = ".*", seconds: float = 5.0, count: int = 1
    ) -> None:
        """The next ``count`` matching requests stall ``seconds`` real seconds first."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        pattern = _pattern(path)
        _count(count)
        with self._lock:
            self._hangs.append(_RequestRule(method.upper(), pattern, count, seconds=seconds))

    def fail_jobs(self, match: str, mode: str = "fail", count: int | None = None) -> None:
        """Jobs whose name or command contains ``match`` fail (or never finish).

        ``count``: only the next ``count`` matching Job pods; None: every one until
        ``clear``.
        """
        if mode not in JOB_MODES:
            raise ValueError(f"mode must be one of {', '.join(JOB_MODES)}, not {mode!r}")
        if not match:
            raise ValueError("match must be a non-empty part of a Job's name or command")
        _count(count, optional=True)
        with self._lock:
            self._jobs.append(_JobRule(match, mode, count))

    def job_fault(self, name: str, command: str) -> str | None:
        """The injected outcome of a Job's pod (uses up one ``count``), or None if it runs."""
        with self._lock:
            for rule in self._jobs:
                if rule.match in name or rule.match in command:
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            self._jobs.remove(rule)
                    return rule.mode
        return None

    def refuse_route(self, name: str, reason: str = "NotAllowedByListeners") -> None:
        """HTTPRoutes named ``name`` are reported not Accepted (``reason``), as a Gateway
        whose listeners do not allow them reports them."""
        with self._lock:
            self._routes[name] = reason

    def route_refusal(self, name: str) -> str | None:
        """Why the HTTPRoute ``name`` is not accepted, or None when it is."""
        with self._lock:
            return self._routes.get(name)

    def clear(self) -> None:
        """Repair everything."""
        self.images.clear_all()
        with self._lock:
            self._routes.clear()
            self._failures.clear()
            self._hangs.clear()
            self._jobs.clear()

    def _take(self, rules: list[_RequestRule], method: str, path: str) -> _RequestRule | None:
        with self._lock:
            for rule in rules:
                if rule.matches(method, path) and rule.remaining > 0:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        rules.remove(rule)
                    return rule
        return None

    def hang_for(self, method: str, path: str) -> float:
        """Seconds this request must stall (0 if none)."""
        rule = self._take(self._hangs, method, path)
        return rule.seconds if rule else 0.0

    def failure_for(self, method: str, path: str) -> ApiError | None:
        """The injected error for this request, if one is due."""
        rule = self._take(self._failures, method, path)
        if rule is None:
            return None
        reason, message = _REQUEST_FAILURES[rule.status]
        if rule.retry_after is not None:
            return ApiError(
                rule.status,
                reason,
                message,
                {"retryAfterSeconds": rule.retry_after},
                headers={"Retry-After": str(rule.retry_after)},
            )
        return ApiError(rule.status, reason, message)
