"""The fleet's routes: every release operation of one application, under ``/apps/{app}``.

``/apps/checkout/services`` is ``/services`` acting for the application ``checkout``
(``/apps/checkout/deployments/{id}/timeline`` is ``/deployments/{id}/timeline``, and so
on); the un-prefixed routes act for the stack's default application, as they always
have. One handler serves both: ``split`` takes the application out of the event before
the resolver routes it, and the resolver's middleware scopes the request to it
(``dependencies.acting_for``). IAM then tells the two apart by the method ARN alone
(``.../POST/apps/checkout/promote``), which is what per-application rights need.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

PREFIX = "/apps/{app}"
RELEASE_ROOTS = ("services", "images", "deployments", "promote", "rollback")
"""The first segments of the release operations, the routes an application has."""

_FLEET_PATH = re.compile(
    r"^/apps/(?P<app>[^/]+)(?P<rest>/(?:" + "|".join(RELEASE_ROOTS) + r")(?:/.*)?)$"
)
_FLEET_RESOURCE = re.compile(r"^/apps/\{app\}(?=/)")


def release_path(path: str) -> bool:
    """Whether ``path`` (``/services``, ``/deployments/{id}``) is a release operation's."""
    return path.split("/")[1:2] in ([root] for root in RELEASE_ROOTS)


def split(event: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The event as its un-prefixed route reads it, and the application it names (None for
    an un-prefixed route or any route that is not a release operation)."""
    found = _FLEET_PATH.match(str(event.get("path") or ""))
    if found is None:
        return event, None
    parameters = {k: v for k, v in (event.get("pathParameters") or {}).items() if k != "app"}
    resource = _FLEET_RESOURCE.sub("", str(event.get("resource") or ""), count=1)
    context = dict(event.get("requestContext") or {})
    if "resourcePath" in context:
        context["resourcePath"] = resource
    inner = dict(
        event,
        path=found.group("rest"),
        resource=resource,
        pathParameters=parameters or None,
        requestContext=context,
    )
    return inner, found.group("app")


def fleet_paths(paths: Mapping[str, Any], app_parameter: Mapping[str, Any]) -> dict[str, Any]:
    """``paths`` of an OpenAPI document with each release operation also under ``PREFIX``:
    the same operation, an ``app`` path parameter first, its operationId suffixed."""
    found = dict(paths)
    for path, item in paths.items():
        if not release_path(path):
            continue
        scoped = copy.deepcopy(dict(item))
        for operation in scoped.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            operation["parameters"] = [dict(app_parameter), *operation.get("parameters", [])]
            if "operationId" in operation:
                operation["operationId"] = f"{operation['operationId']}_app"
        found[PREFIX + path] = scoped
    return found
