"""The three traffic routers, one per stack (``Settings.traffic_router``).

``selector`` (``SelectorRouter``) re-points the canary and production Services, as
the original system did. ``alb`` (``IngressRouter``) and ``gateway``
(``HttpRouteRouter``) leave every Service alone and move traffic by rewriting the
weights of one object, an Ingress of the AWS Load Balancer Controller or a Gateway
API HTTPRoute; what they share (how a flip orders its two writes, canaryEnv and the
object, and what it does when one of them fails) is ``WeightedRouter``.

They implement ``bluegreen.domain.ports.Router`` over ``KubernetesCluster``'s requests,
so timeouts, error mapping and transient-failure budgets are the adapter's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bluegreen.domain.ports import Router
from bluegreen.domain.traffic import RouterKind

if TYPE_CHECKING:
    from bluegreen.adapters.cluster import KubernetesCluster


def router_for(cluster: KubernetesCluster) -> Router:
    """The router the cluster's settings name."""
    kind = cluster.settings.traffic_router
    if kind is RouterKind.ALB:
        from bluegreen.adapters.routers.ingress import IngressRouter

        return IngressRouter(cluster)
    if kind is RouterKind.GATEWAY:
        from bluegreen.adapters.routers.httproute import HttpRouteRouter

        return HttpRouteRouter(cluster)
    from bluegreen.adapters.routers.selector import SelectorRouter

    return SelectorRouter(cluster)
