"""The ``selector`` router: the canary and production Services' selectors follow the roles.

The original system's contract, and the default. A switch is ``KubernetesCluster``'s
own (canary Service, canaryEnv, production Service; put back when it cannot
complete). It moves all of a role's traffic at once: a share of production cannot be
given to a colour, so ``shift`` refuses anything but all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bluegreen.domain.errors import TrafficNotWeighted
from bluegreen.domain.models import Colour, Role
from bluegreen.domain.traffic import RouterKind, Traffic, Weights

if TYPE_CHECKING:
    from bluegreen.adapters.cluster import KubernetesCluster


class SelectorRouter:
    """``Router`` over the canary and production Services."""

    kind = RouterKind.SELECTOR

    def __init__(self, cluster: KubernetesCluster) -> None:
        self._cluster = cluster

    def traffic(self) -> Traffic:
        """What both Services select (one list request): production's is all its traffic."""
        from bluegreen.adapters.cluster import _selected_colour

        services = self._cluster._list_services()
        production = _selected_colour(services[Role.PRODUCTION])
        return Traffic(
            router=self.kind,
            production=Weights.all_on(production) if production else Weights(0, 0),
            canary=_selected_colour(services[Role.CANARY]),
            where="the canary and production Services",
        )

    def switch_roles(
        self,
        canary: Colour,
        image: str | None = None,
        *,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """The selector switch (``KubernetesCluster.switch_roles``)."""
        return self._cluster.switch_selectors(canary, image, confirm=confirm)

    def shift(
        self,
        weights: Weights,
        canary: Colour | None = None,
        *,
        image: str | None = None,
        confirm: Callable[[], None] | None = None,
    ) -> bool:
        """All of production on one colour is a switch; anything else is refused."""
        sole = weights.sole
        if sole is None or weights.of(sole) == 0:
            raise TrafficNotWeighted(
                f"the selector router sends all of production to one colour; "
                f"{weights.describe()} needs TrafficRouter alb or gateway"
            )
        wanted_canary = canary or sole.other
        if wanted_canary is sole:
            raise TrafficNotWeighted(
                f"the selector router cannot send production to the canary colour "
                f"{sole.value}; switch the canary colour instead"
            )
        return self.switch_roles(wanted_canary, image, confirm=confirm)
