"""What a promotion is, and what is checked before one starts.

The services API checks these before it records a request (``logic.routing``),
and the flow's ``begin_promotion`` checks them again once it holds the lock.
"""

from __future__ import annotations

from collections.abc import Mapping

from bluegreen.config import Settings
from bluegreen.domain.errors import (
    InvalidInput,
    NotPromotable,
    RolesDisagree,
    TrafficNotWeighted,
)
from bluegreen.domain.flow_input import TEXT_LIMIT
from bluegreen.domain.images import digest_of_image
from bluegreen.domain.models import Colour, Digest, Outcome
from bluegreen.domain.ports import Cluster, Ledger
from bluegreen.domain.promotion import PromotionInProgress, Strategy
from bluegreen.domain.traffic import Weights
from bluegreen.logic import roles
from bluegreen.logic.deploy.record import refuse_failed_digest

PROMOTE = "promote"
"""``Deployment.action`` and the flow input's ``action`` of a progressive promotion."""

FLOW_TIMEOUT_SECONDS = 604_800
"""The deploy flow's ``TimeoutSeconds``: a promotion must end well within it."""

_INPUT_FIELDS = frozenset({"action", "strategy", "reason"})


def parse_promotion_input(raw: object) -> tuple[Strategy | None, str]:
    """``{"action": "promote", "strategy"?: {...}, "reason"?: "..."}``."""
    if not isinstance(raw, Mapping) or raw.get("action") != PROMOTE:
        raise InvalidInput("action", f"a promotion's input has action {PROMOTE!r}")
    unknown = sorted(set(raw) - _INPUT_FIELDS)
    if unknown:
        raise InvalidInput(
            unknown[0],
            "is not a field of a promote input; allowed fields: "
            + ", ".join(sorted(_INPUT_FIELDS)),
        )
    reason = raw.get("reason", "")
    if not isinstance(reason, str) or len(reason) > TEXT_LIMIT:
        raise InvalidInput("reason", f"must be a string of at most {TEXT_LIMIT} characters")
    strategy = raw.get("strategy")
    return (Strategy.parse(strategy) if strategy is not None else None), reason.strip()


def resolve_strategy(settings: Settings, asked: Strategy | None) -> Strategy:
    """The strategy to run: the one asked for or the stack's, pauses defaulted, bounded."""
    strategy = (asked or settings.promotion_strategy).with_default_pause(
        settings.promotion_pause_seconds
    )
    # Every step may end at a gate (a manual pause, or readings too quiet to judge).
    worst = sum(step.seconds() for step in strategy.steps) + len(strategy.steps) * (
        settings.gate_timeout_seconds + settings.analysis.interval_seconds
    )
    if worst >= FLOW_TIMEOUT_SECONDS:
        raise InvalidInput(
            "strategy",
            f"{strategy.describe()} may take {worst}s with gates of "
            f"{settings.gate_timeout_seconds}s (GateTimeoutSeconds), more than the flow's "
            f"{FLOW_TIMEOUT_SECONDS}s: fewer steps, shorter pauses or a shorter gate timeout",
        )
    return strategy


def refuse_during_promotion(ledger: Ledger) -> None:
    """``PromotionInProgress`` while a progressive promotion holds the lock, naming it."""
    holder = ledger.lock_holder()
    if not holder:
        return
    running = ledger.deployment(holder)
    if running is None or running.action != PROMOTE or running.outcome is not Outcome.RUNNING:
        return
    colour = f" to {running.colour.value}" if running.colour else ""
    raise PromotionInProgress(
        f"progressive promotion {holder} is shifting production{colour}; nothing else may "
        f"change the release until it ends: follow it with GET /deployments/{holder} "
        f"(bluegreen show {holder}), or stop it with POST /deployments/{holder}/abort"
    )


def check_promotable(
    settings: Settings, ledger: Ledger, cluster: Cluster
) -> tuple[Colour, Digest, str, str]:
    """The canary colour, its digest and both colours' images, if the canary may be promoted.

    ``TrafficNotWeighted`` under the selector router, ``RolesDisagree`` unless
    canaryEnv and the router object agree with all of production on the production
    colour, ``NotPromotable`` when the canary runs no pinned digest or what
    production runs, ``DigestFailed`` when the canary's digest was judged failed.
    """
    if not settings.traffic_router.weighted:
        raise TrafficNotWeighted(
            "a progressive promotion shifts a share of production to the canary: it needs "
            f"TrafficRouter alb or gateway (this stack's is {settings.traffic_router.value})"
        )
    env = cluster.canary_env()
    traffic = cluster.traffic()
    problems = roles.traffic_disagreements(env, traffic)
    if problems:
        raise RolesDisagree(
            f"promotion refused: canaryEnv and {traffic.where} disagree ({'; '.join(problems)}); "
            f"nothing was changed; {roles.REPAIR}"
        )
    canary = env.selector
    expected = roles.expected_production(env)
    if expected != Weights.all_on(canary.other):
        raise RolesDisagree(
            f"promotion refused: production is split ({expected.describe()}), not all on "
            f"{canary.other.value}; a promotion starts from one colour; {roles.REPAIR}"
        )
    canary_image = cluster.deployment_image(canary)
    production_image = cluster.deployment_image(canary.other)
    digest = digest_of_image(canary_image)
    if digest is None:
        raise NotPromotable(
            f"the canary ({canary.value}) runs {canary_image!r}, not an image pinned by "
            "digest; deploy a digest to the canary first"
        )
    if digest_of_image(production_image) == digest:
        raise NotPromotable(f"production ({canary.other.value}) already runs {digest}")
    refuse_failed_digest(ledger, digest)
    return canary, digest, canary_image, production_image
