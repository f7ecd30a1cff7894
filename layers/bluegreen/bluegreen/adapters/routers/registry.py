"""Which router each ``RouterKind`` is: the one place that knows them all."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bluegreen.adapters.routers.httproute import HttpRouteRouter
from bluegreen.adapters.routers.ingress import IngressRouter
from bluegreen.adapters.routers.parts import RouterParts
from bluegreen.adapters.routers.selector import SelectorRouter
from bluegreen.domain.ports import Router
from bluegreen.domain.traffic import RouterKind

ROUTERS: Mapping[RouterKind, Callable[[RouterParts], Router]] = {
    RouterKind.SELECTOR: SelectorRouter,
    RouterKind.ALB: IngressRouter,
    RouterKind.GATEWAY: HttpRouteRouter,
}
"""How each kind of router is built."""


def build_router(parts: RouterParts) -> Router:
    """The router the settings name, built from ``parts``."""
    return ROUTERS[parts.settings.traffic_router](parts)
