"""The ``canaryEnv`` format: the JSON string the ConfigMap holds under its key.

``{"selector": "blue" | "green", "image": "<image>", "weights": {"blue": 90, "green": 10}}``:
which colour is the canary, what it runs, and (under the ``alb`` and ``gateway``
routers) production's weights. Reading it and writing it are pure functions here;
the ConfigMap around it is ``bluegreen.adapters.kube.canary_env``'s.
"""

from __future__ import annotations

import json

from bluegreen.domain.errors import ClusterUnavailable, InvalidInput
from bluegreen.domain.models import INITIAL_CANARY, CanaryEnv, Colour
from bluegreen.domain.traffic import Weights

REPAIR = (
    '; switching the canary colour (POST /services {"selector": "blue"|"green"}, '
    "or `bluegreen switch <colour>`) rewrites it"
)
"""How a person repairs a malformed canaryEnv, appended to every complaint about one."""


class CanaryEnvMalformed(ClusterUnavailable):
    """The ConfigMap's ``canaryEnv`` is there but is not ``{"selector": ..., "image": ...}``.

    To readers it is as unusable as an unreachable cluster (the API answers 502),
    while its own name says what is wrong. Only a switch of the canary colour
    writes over it, which is how it is repaired.
    """


def parse_canary_env(raw: str | None, where: str, resource_version: str | None) -> CanaryEnv:
    """canaryEnv from the ConfigMap's value (``None``: the key is missing, so the
    initial canary); ``CanaryEnvMalformed`` says what is wrong, naming ``where``."""
    if raw is None:
        return CanaryEnv(
            selector=INITIAL_CANARY, image="", resource_version=resource_version, present=False
        )
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError) as exc:
        problem = (
            f"{exc.msg} at character {exc.pos}"
            if isinstance(exc, json.JSONDecodeError)
            else "nested too deeply"
        )
        raise CanaryEnvMalformed(
            f"{where} is not valid JSON ({problem}); expected "
            f'{{"selector": "blue" | "green", "image": "<image>"}}, got {raw[:200]!r}'
            f"{REPAIR}"
        ) from None
    if not isinstance(value, dict):
        raise CanaryEnvMalformed(
            f'{where} must be a JSON object {{"selector": ..., "image": ...}}, '
            f"got {raw[:200]!r}{REPAIR}"
        )
    selector = value.get("selector")
    if not isinstance(selector, str) or selector not in {c.value for c in Colour}:
        raise CanaryEnvMalformed(
            f"{where} has selector {selector!r}; expected 'blue' or 'green'{REPAIR}"
        )
    image = value.get("image", "")
    if not isinstance(image, str):
        raise CanaryEnvMalformed(f"{where} has image {image!r}; expected a string{REPAIR}")
    weights = None
    if value.get("weights") is not None:
        try:
            weights = Weights.parse(value["weights"], field_name="weights")
        except InvalidInput as exc:
            raise CanaryEnvMalformed(
                f"{where} has weights {value['weights']!r}: {exc.problem} ({exc.field}); "
                f'expected {{"blue": <0-100>, "green": <0-100>}} adding up to 100{REPAIR}'
            ) from None
    return CanaryEnv(
        selector=Colour(selector),
        image=image,
        resource_version=resource_version,
        present=True,
        weights=weights,
    )


def format_canary_env(
    previous: str | None, selector: Colour, image: str, weights: Weights | None = None
) -> str:
    """The value to write: ``previous`` with the new selector and image (and weights,
    when given; otherwise whatever weights it had are kept).

    Keys other than these belong to whoever put them there and are kept; a malformed
    ``previous`` (being repaired by this write) is replaced whole.
    """
    try:
        value = json.loads(previous) if previous is not None else {}
    except (json.JSONDecodeError, RecursionError):
        value = {}
    if not isinstance(value, dict):
        value = {}
    value.update({"selector": selector.value, "image": image})
    if weights is not None:
        value["weights"] = weights.to_json()
    return json.dumps(value, separators=(",", ":"))
