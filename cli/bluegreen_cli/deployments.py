"""Reading a deployment as ``GET /deployments/{id}`` returns it, and watching it end."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote

from bluegreen_cli.api import ApiClient
from bluegreen_cli.errors import EXIT_UNAVAILABLE, CliError

FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True)
class Progress:
    """Where a deployment stands: the execution's status and the ledger's outcome."""

    status: str
    outcome: str
    error: str
    cause: str

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        # A deploy that was rolled back ends its execution FAILED: the status decides.
        return self.status == "SUCCEEDED"


def record_of(body: Any) -> dict[str, Any]:
    """The ledger record inside a ``GET /deployments/{id}`` answer (empty until recorded)."""
    if isinstance(body, dict):
        inner = body.get("record")
        return inner if isinstance(inner, dict) else {}
    return {}


def execution_of(body: Any) -> dict[str, Any]:
    """The live execution part of a ``GET /deployments/{id}`` answer."""
    if isinstance(body, dict):
        inner = body.get("execution")
        if isinstance(inner, dict):
            return inner
    return {}


def progress_of(body: Any) -> Progress:
    """Status, outcome and failure of a deployment answer, whatever nesting it uses."""
    record, execution = record_of(body), execution_of(body)

    def first(*values: object) -> str:
        return next((str(v) for v in values if isinstance(v, str) and v), "")

    return Progress(
        status=first(
            execution.get("status"), record.get("executionStatus"), record.get("status")
        ).upper(),
        outcome=first(record.get("outcome")).lower(),
        error=first(execution.get("error"), record.get("error")),
        cause=first(execution.get("cause"), record.get("reason"), record.get("cause")),
    )


def describe(progress: Progress, record: dict[str, Any]) -> str:
    """``RUNNING (running) blue 1274e8bc4d96 -> 9fb2cb09bde2``: one progress line."""
    text = progress.status or "?"
    if progress.outcome:
        text += f" ({progress.outcome})"
    colour = record.get("colour")
    if colour:
        text += f" {colour}"
    to_digest = str(record.get("toDigest") or "")
    if to_digest:
        from_digest = str(record.get("fromDigest") or "")
        text += f" {from_digest[7:19] or '?'} -> {to_digest[7:19]}"
    return text


def watch(
    client: ApiClient,
    deployment_id: str,
    *,
    interval: float = 1.0,
    timeout: float = 1800.0,
    out: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """Poll the deployment until its execution ends; progress lines go to ``out``.

    Returns the last answer. A deployment that does not end within ``timeout``
    seconds raises ``CliError`` with exit code 3.
    """
    stream = out if out is not None else sys.stderr
    live = bool(getattr(stream, "isatty", lambda: False)())
    started = clock()
    last: tuple[str, str] | None = None
    while True:
        body = client.get(f"/deployments/{quote(deployment_id, safe='')}")
        progress = progress_of(body)
        elapsed = clock() - started
        seen = (progress.status, progress.outcome)
        line = f"[{elapsed:6.1f}s] {deployment_id}: {describe(progress, record_of(body))}"
        if live:
            # One line rewritten in place on a terminal; a new line when something changed.
            if last is not None and seen != last:
                stream.write("\n")
            stream.write("\r" + line + ("\n" if progress.finished else ""))
            stream.flush()
        elif seen != last:
            stream.write(line + "\n")
            stream.flush()
        last = seen
        if progress.finished:
            return body
        if elapsed > timeout:
            app = f" --app {client.app}" if client.app else ""
            raise CliError(
                f"deployment {deployment_id} still {progress.status or 'running'} after "
                f"{timeout:.0f}s; it continues: bluegreen{app} watch {deployment_id}",
                EXIT_UNAVAILABLE,
            )
        sleep(interval)
