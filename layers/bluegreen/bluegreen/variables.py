"""How an environment variable's text becomes a value of the settings.

The value types of the environment models (``bluegreen.config``): each parses the
text of one kind of variable and says what is wrong with it in the variable's
own terms, so a bad one fails a function's cold start with a message that helps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, InstanceOf

from bluegreen.domain.errors import InvalidInput
from bluegreen.domain.metric_queries import MetricProvider, QueryTemplate
from bluegreen.domain.models import Colour, Hook
from bluegreen.domain.promotion import Strategy
from bluegreen.domain.traffic import RouterKind


def parse_hooks(raw: str) -> tuple[Hook, ...]:
    """Parse the ``BG_HOOKS`` variable: a JSON list of hook objects.

    Each item: ``{"name": "cache-flush", "command": "wp cache flush --allow-root"
    | ["wp", ...], "onFailure": "rollback" | "continue", "timeoutSeconds": 300}``.
    """
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput("BG_HOOKS", f"is not valid JSON: {exc.msg}") from None
    if not isinstance(items, list):
        raise InvalidInput("BG_HOOKS", "must be a JSON list of hook objects")
    hooks = []
    for index, item in enumerate(items):
        where = f"BG_HOOKS[{index}]"
        if not isinstance(item, dict):
            raise InvalidInput(where, "must be an object with 'name' and 'command'")
        name, command = item.get("name"), item.get("command")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"{where}.name", "must be a non-empty string")
        if isinstance(command, str):
            command = command.split()
        if (
            not isinstance(command, list)
            or not command
            or not all(isinstance(part, str) for part in command)
        ):
            raise InvalidInput(f"{where}.command", "must be a string or a list of strings")
        on_failure = item.get("onFailure", "rollback")
        if on_failure not in ("rollback", "continue"):
            raise InvalidInput(f"{where}.onFailure", "must be 'rollback' or 'continue'")
        timeout = item.get("timeoutSeconds", 300)
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
            raise InvalidInput(f"{where}.timeoutSeconds", "must be a positive whole number")
        hooks.append(
            Hook(name=name, command=tuple(command), on_failure=on_failure, timeout_seconds=timeout)
        )
    return tuple(hooks)


def parse_strategy(raw: str) -> Strategy:
    """The ``BG_PROMOTION_STEPS`` variable: a JSON list of steps, or ``{"steps": [...]}``."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput("BG_PROMOTION_STEPS", f"is not valid JSON: {exc.msg}") from None
    if isinstance(value, dict):
        return Strategy.parse(value, field_name="BG_PROMOTION_STEPS")
    return Strategy.parse_steps(value, field_name="BG_PROMOTION_STEPS")


def parse_target_groups(raw: str) -> dict[Colour, str]:
    """``BG_ANALYSIS_TARGET_GROUPS``: ``blue=targetgroup/<name>/<id>,green=...``.

    The value of each is the ALB metrics' ``TargetGroup`` dimension (the end of the
    target group's ARN) of the target group the Load Balancer Controller made for
    that colour's Service.
    """
    found: dict[Colour, str] = {}
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        colour, sep, dimension = part.partition("=")
        if not sep or not dimension.strip().startswith("targetgroup/"):
            raise InvalidInput(
                "BG_ANALYSIS_TARGET_GROUPS",
                f"{part!r} is not <colour>=targetgroup/<name>/<id> (the TargetGroup dimension "
                "of the colour's target group)",
            )
        found[Colour.parse(colour.strip(), field_name="BG_ANALYSIS_TARGET_GROUPS")] = (
            dimension.strip()
        )
    return found


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _whole_number(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"must be a whole number, got {value!r}") from None


def _non_negative(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"must be a number, got {value!r}") from None
    if not number >= 0:
        raise ValueError(f"must be 0 or more, got {value!r}")
    return number


def _words(value: object) -> object:
    if not isinstance(value, str):
        return value
    return tuple(word.strip() for word in value.split(",") if word.strip())


def _http_url(value: str) -> str:
    if value and not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        raise ValueError(f"must be an http:// or https:// address without a query, got {value!r}")
    return value


def _promql(value: str) -> str:
    try:
        QueryTemplate.parse(value, "")
    except InvalidInput as exc:
        raise ValueError(exc.problem) from None
    return value


def _parsed(parse: Callable[[str], object], value: object) -> object:
    return parse(value) if isinstance(value, str) else value


def _at_least_one(value: int) -> int:
    return max(1, value)


Text = Annotated[str, BeforeValidator(_strip)]
WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
Words = Annotated[tuple[str, ...], BeforeValidator(_words)]
"""A comma-separated list; an empty variable is an empty list, not the default."""
Hooks = Annotated[tuple[InstanceOf[Hook], ...], BeforeValidator(partial(_parsed, parse_hooks))]
"""``BG_HOOKS``: a JSON list of hook objects (``parse_hooks``)."""
PromotionSteps = Annotated[InstanceOf[Strategy], BeforeValidator(partial(_parsed, parse_strategy))]
"""``BG_PROMOTION_STEPS``: a JSON list of steps, or ``{"steps": [...]}``."""
TargetGroups = Annotated[dict[Colour, str], BeforeValidator(partial(_parsed, parse_target_groups))]
"""``BG_ANALYSIS_TARGET_GROUPS``: ``blue=targetgroup/<name>/<id>,green=...``."""
Router = Annotated[
    RouterKind,
    BeforeValidator(partial(_parsed, partial(RouterKind.parse, field_name="BG_TRAFFIC_ROUTER"))),
]
"""``BG_TRAFFIC_ROUTER``: ``selector``, ``alb`` or ``gateway``."""
AtLeastOne = Annotated[WholeNumber, AfterValidator(_at_least_one)]
"""A whole number, 1 when smaller."""
NonNegative = Annotated[float, BeforeValidator(_non_negative)]
"""A number, 0 or more."""
Metrics = Annotated[
    MetricProvider,
    BeforeValidator(
        partial(_parsed, partial(MetricProvider.parse, field_name="BG_METRIC_PROVIDER"))
    ),
]
"""``BG_METRIC_PROVIDER``: ``cloudwatch`` or ``prometheus``."""
HttpAddress = Annotated[str, BeforeValidator(_strip), AfterValidator(_http_url)]
"""An ``http://`` or ``https://`` address, or nothing."""
PromQL = Annotated[str, BeforeValidator(_strip), AfterValidator(_promql)]
"""A PromQL query whose ``{{placeholders}}`` all exist (``domain.metric_queries``)."""
