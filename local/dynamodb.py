"""DynamoDB on moto, one request at a time, as the real service applies each one.

DynamoDB applies every request atomically. moto's in-process backend does not: two
threads (the API's request threads, the interpreter's execution threads, a Lambda
handler run in-process) can interleave inside one request, and an item copied for
one request while another writes it fails with ``RuntimeError: dictionary changed
size during iteration`` — an error the real service can never give. Holding one
lock around each DynamoDB action gives moto the real service's atomicity. The lock
covers DynamoDB alone: a DynamoDB action never calls another service, so it cannot
wait on anything that waits on it.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_lock = threading.RLock()
_installed = False


def atomic_dynamodb_requests() -> None:
    """Make each moto DynamoDB request atomic for the rest of the process (idempotent)."""
    global _installed
    from moto.dynamodb.responses import DynamoHandler

    with _lock:
        if _installed:
            return
        original = DynamoHandler.call_action

        @functools.wraps(original)
        def call_action(self: DynamoHandler) -> Any:
            with _lock:
                return original(self)

        # Swapping moto's method is the point of this module; the ignore covers only
        # mypy's ban on assigning to a method.
        DynamoHandler.call_action = call_action  # type: ignore[method-assign]
        _installed = True
