"""Names of deploy flow executions: the deployment id IS the execution name.

A caller that derives the name from its request (the ECR auto-deploy from the
digest, the API from digest + request id) gets idempotency for free: a
duplicate start returns the existing execution.
"""

from __future__ import annotations

import hashlib
import re

_NAME_MAX = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def execution_name(application: str, action: str, key: str) -> str:
    """A Step Functions execution name, deterministic from its arguments.

    At most 80 characters of ``[A-Za-z0-9-_]`` (what Step Functions allows and
    what CloudWatch Logs accepts); a name that would be longer keeps its readable
    prefix and ends with a hash of the whole, so two keys never share a name.
    """
    whole = _UNSAFE.sub("-", f"{application}-{action}-{key}").strip("-")
    if len(whole) <= _NAME_MAX:
        return whole
    fingerprint = hashlib.sha256(whole.encode()).hexdigest()[:16]
    return f"{whole[: _NAME_MAX - len(fingerprint) - 1]}-{fingerprint}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN an execution named ``name`` of that state machine has (or will have)."""
    head, marker, machine = state_machine_arn.rpartition(":stateMachine:")
    if not marker:
        raise ValueError(f"{state_machine_arn!r} is not a state machine ARN")
    return f"{head}:execution:{machine}:{name}"
