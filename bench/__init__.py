"""Benchmarks: ``python -m bench`` (see ``__main__``)."""

from __future__ import annotations

import os
from typing import Any


def on_moto() -> None:
    """The environment of a benchmark whose handlers run in-process on moto: a region,
    moto's well-known key (nothing real can be reached with it), quiet Powertools."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-west-2")
    os.environ.setdefault("AWS_REGION", os.environ["AWS_DEFAULT_REGION"])
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "bench")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


def lambda_context(function: str, memory_mb: int = 512) -> Any:
    """The Lambda context a handler run in-process by a benchmark is given."""
    from local.lambdas import LambdaContext

    return LambdaContext(
        function_name=function,
        invoked_function_arn=f"arn:aws:lambda:us-west-2:123456789012:function:{function}",
        memory_limit_in_mb=memory_mb,
        aws_request_id="bench",
    )
