"""The deploy flow's input: the contract shared by the ECR auto-deploy, the API and the console.

``parse_request`` checks an input before anything is read or written, so a bad
one fails the execution at once with ``InvalidInput`` naming the field. Who
started an execution is never part of it: that is the ledger's record, written by
the entry point before the start (or by the flow itself for a console run).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.models import Digest, Role

ACTIONS = ("deploy", "rollback")
TRIGGERS = ("ecr-push", "api", "console")
"""What the ledger records as a deployment's trigger: who really started its execution."""
CONSOLE = "console"
CONSOLE_ACTOR = "unknown"
"""The actor of a console run: Step Functions does not tell an execution who started it."""
TEXT_LIMIT = 1024
"""Longest text an input field may carry (a reason, an image)."""

_DEPLOY_FIELDS = frozenset({"app", "action", "image", "service", "reason", "force"})
_ROLLBACK_FIELDS = frozenset({"app", "action", "service", "reason"})
_STARTER_FIELDS = ("trigger", "actor", "sourceIp")


@dataclass(frozen=True)
class FlowRequest:
    """A validated flow input.

    Who started the execution is not part of it: that is the ledger's record,
    written by the entry point before the start (or by ``begin`` for a console run).
    """

    action: str
    service: Role
    image: str = ""
    reason: str = ""
    force: bool = False


def json_type(value: object) -> str:
    """The JSON name of a value's type: what the caller wrote, not Python's name for it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _text(raw: Mapping[str, Any], name: str, default: str = "") -> str:
    value = raw.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidInput(name, f"must be a string, got {json_type(value)}")
    value = value.strip()
    if len(value) > TEXT_LIMIT:
        raise InvalidInput(name, f"must be at most {TEXT_LIMIT} characters, got {len(value)}")
    return value


def parse_request(raw: object) -> FlowRequest:
    """Validate a flow input; ``InvalidInput`` names the field and what is wrong with it."""
    if not isinstance(raw, dict):
        raise InvalidInput(
            "input",
            f'must be a JSON object like {{"action": "deploy", "image": "..."}}, '
            f"got {json_type(raw)}",
        )
    action = _text(raw, "action")
    if not action:
        raise InvalidInput("action", f"required, one of {', '.join(ACTIONS)}")
    if action not in ACTIONS:
        raise InvalidInput("action", f"{action!r} is not an action: one of {', '.join(ACTIONS)}")
    for name in _STARTER_FIELDS:
        if name in raw:
            raise InvalidInput(
                name,
                "is not accepted in the input: the ledger records who really started the "
                "execution (the API and the ECR auto-deploy record it before they start "
                "one; any other start is recorded as a console run), never what an input "
                "claims",
            )
    allowed = _DEPLOY_FIELDS if action == "deploy" else _ROLLBACK_FIELDS
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidInput(
            unknown[0],
            f"is not a field of a {action} input; allowed fields: {', '.join(sorted(allowed))}",
        )
    service = Role.parse(_text(raw, "service", Role.CANARY.value), field_name="service")
    image = ""
    force = raw.get("force", False)
    if not isinstance(force, bool):
        raise InvalidInput(
            "force", f"must be a JSON boolean, true or false, got {json_type(force)}"
        )
    if action == "deploy":
        image = _text(raw, "image")
        if not image:
            raise InvalidInput("image", "is required: a sha256 digest or a tag known to the ledger")
        if Digest.looks_like(image):
            Digest.parse(image, field_name="image")
    return FlowRequest(
        action=action, service=service, image=image, reason=_text(raw, "reason"), force=force
    )
