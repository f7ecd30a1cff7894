"""Who is calling: the IAM identity API Gateway verified, and where from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bluegreen.logic.requests import Caller


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def caller_of(event: Mapping[str, Any]) -> Caller:
    """The caller of an API Gateway REST proxy event (``AWS_IAM`` authorizer).

    ``userArn`` names the role session or user; ``caller`` and ``accessKey`` are
    what API Gateway fills in when it has no ARN. The request id doubles as the
    correlation id in the logs and as the key that makes each call a new deployment.
    """
    context = event.get("requestContext")
    context = context if isinstance(context, Mapping) else {}
    identity = context.get("identity")
    identity = identity if isinstance(identity, Mapping) else {}
    actor = (
        _text(identity.get("userArn"))
        or _text(identity.get("caller"))
        or _text(identity.get("accessKey"))
        or "unknown"
    )
    return Caller(
        actor=actor,
        source_ip=_text(identity.get("sourceIp")),
        request_id=_text(context.get("requestId")),
    )
