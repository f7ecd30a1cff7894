"""The one place that creates the shared Powertools logger, tracer and metrics.

The tracer is built on first use rather than at import: constructing a
Powertools ``Tracer`` imports the X-Ray SDK, creates its sampling clients and
patches boto3, which alone costs more cold-start time than everything else a
function like ``ecr_push`` imports. ``tracer`` behaves as a ``Tracer``: its
decorators wrap at import time and build the real tracer on the first call;
any other attribute is the real tracer's.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer

F = TypeVar("F", bound=Callable[..., Any])

TRACED_LIBRARIES = ("botocore", "httplib")
"""What the X-Ray SDK patches: AWS calls, and plain HTTP (the Kubernetes client's urllib3).

Patching every supported library (the default) imports each one that is
installed, such as requests, only to patch it; the functions here use none.
"""

logger = Logger()
metrics = Metrics(namespace="EksBlueGreen")


class _TracerOnFirstUse:
    """A ``Tracer`` stand-in whose real tracer is created when something first needs it."""

    def __init__(self) -> None:
        self._real: Tracer | None = None
        self._lock = threading.Lock()

    def _tracer(self) -> Tracer:
        with self._lock:
            if self._real is None:
                self._real = Tracer(patch_modules=TRACED_LIBRARIES)
            return self._real

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Any:
        """``Tracer.capture_lambda_handler``, applied when the handler is first invoked."""
        if lambda_handler is None:
            return functools.partial(
                self.capture_lambda_handler,
                capture_response=capture_response,
                capture_error=capture_error,
            )
        return self._deferred(
            lambda real: real.capture_lambda_handler(
                lambda_handler, capture_response=capture_response, capture_error=capture_error
            ),
            lambda_handler,
        )

    def capture_method(
        self,
        method: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Any:
        """``Tracer.capture_method``, applied when the method is first called."""
        if method is None:
            return functools.partial(
                self.capture_method, capture_response=capture_response, capture_error=capture_error
            )
        return self._deferred(
            lambda real: real.capture_method(
                capture_response=capture_response, capture_error=capture_error
            )(method),
            method,
        )

    def _deferred(self, wrap: Callable[[Tracer], Callable[..., Any]], original: F) -> F:
        traced: list[Callable[..., Any]] = []

        @functools.wraps(original)
        def call(*args: Any, **kwargs: Any) -> Any:
            if not traced:
                traced.append(wrap(self._tracer()))
            return traced[0](*args, **kwargs)

        return cast(F, call)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tracer(), name)


tracer = cast(Tracer, _TracerOnFirstUse())
