"""Run moto's Lambda invocations in this process, on our real handlers.

moto executes a function's code in a Docker container, which this machine does
not have; and the point of a local run is our handlers anyway. Inside
``dispatch_lambdas_in_process({...})`` an invoke of a function named in the
mapping calls that handler directly (Step Functions tasks included, since moto's
interpreter invokes through the Lambda backend). A raised exception becomes
what the Lambda runtime returns for an unhandled error, a payload
``{"errorType": <exception class name>, "errorMessage": <message>}`` with the
function error flag set, so Step Functions shows our error class as the task's
Error (``InvalidInput``, ``RolloutFailed``, ...) and Retry/Catch match on it.
Functions not in the mapping keep moto's behaviour.
"""

from __future__ import annotations

import json
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda.models import LambdaFunction

Handler = Callable[[Any, Any], Any]

_lock = threading.Lock()
_routes: list[Mapping[str, Handler]] = []
_original_invoke: Callable[..., tuple[str, bool, str]] | None = None


@dataclass
class LambdaContext:
    """The attributes of the Lambda runtime's context object that handlers read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def _handler_for(function_name: str) -> Handler | None:
    with _lock:
        for routes in reversed(_routes):
            if function_name in routes:
                return routes[function_name]
    return None


def _invoke_in_process(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    handler = _handler_for(self.function_name)
    if handler is None:
        assert _original_invoke is not None
        return _original_invoke(self, event)
    if isinstance(event, (str, bytes)):
        event = json.loads(event or "{}")
    context = LambdaContext(
        function_name=self.function_name,
        invoked_function_arn=self.function_arn,
        memory_limit_in_mb=int(getattr(self, "memory_size", 512) or 512),
    )
    try:
        result = handler(event, context)
    except Exception as exc:
        payload = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
        return json.dumps(payload), True, traceback.format_exc()
    return json.dumps(result, default=str), False, ""


@contextmanager
def dispatch_lambdas_in_process(handlers: Mapping[str, Handler]) -> Iterator[None]:
    """Route invokes of the named moto functions to ``handlers`` while the block runs.

    Blocks may nest (the innermost mapping wins for a name) and may be used from
    several threads: moto's interpreter invokes from its execution threads.
    """
    global _original_invoke
    with _lock:
        if not _routes:
            _original_invoke = LambdaFunction._invoke_lambda
            # Swapping moto's method is the point of this module; the ignore covers only
            # mypy's ban on assigning to a method, the signatures are still checked.
            LambdaFunction._invoke_lambda = _invoke_in_process  # type: ignore[method-assign]
        routes = dict(handlers)
        _routes.append(routes)
    try:
        yield
    finally:
        with _lock:
            # Remove this block's own mapping: blocks of other threads may have ended first.
            del _routes[next(i for i, r in enumerate(_routes) if r is routes)]
            if not _routes and _original_invoke is not None:
                LambdaFunction._invoke_lambda = _original_invoke  # type: ignore[method-assign]
                _original_invoke = None
